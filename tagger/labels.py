"""`selected_tags.csv`: the model's labels, one per output column, split by Danbooru category."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prep.captions import clean_tag
from tagger.errors import TaggerError

CATEGORY_GENERAL = 0
CATEGORY_CHARACTER = 4
CATEGORY_RATING = 9


@dataclass(frozen=True)
class Labels:
    """Label names (raw Danbooru spelling) and the output columns of each category."""

    names: list[str]
    categories: np.ndarray
    rating: np.ndarray
    general: np.ndarray
    character: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


def parse_labels(text: str, source: str = "selected_tags.csv") -> Labels:
    """Parse the CSV (header `tag_id,name,category,count`); the category column decides the split."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise TaggerError(f"{source}: empty label file; it needs a header row with name and category columns")
    columns = [h.strip().lower() for h in header]
    if "name" not in columns or "category" not in columns:
        raise TaggerError(f"{source}: header {header!r} has no name and category columns (expected tag_id,name,category,count)")
    name_col, cat_col = columns.index("name"), columns.index("category")
    names: list[str] = []
    categories: list[int] = []
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            name = clean_tag(row[name_col])  # one line: no control characters, no commas
            category = int(row[cat_col])
        except (IndexError, ValueError):
            raise TaggerError(f"{source}: line {line_no} is not a label row (name, integer category): {row!r}") from None
        if not name:
            raise TaggerError(f"{source}: line {line_no} has an empty tag name")
        names.append(name)
        categories.append(category)
    if not names:
        raise TaggerError(f"{source}: no labels below the header")
    cats = np.asarray(categories, dtype=np.int64)
    return Labels(
        names=names,
        categories=cats,
        rating=np.flatnonzero(cats == CATEGORY_RATING),
        general=np.flatnonzero(cats == CATEGORY_GENERAL),
        character=np.flatnonzero(cats == CATEGORY_CHARACTER),
    )


def read_labels(path: Path) -> Labels:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TaggerError(f"{path}: cannot read the label file ({exc.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TaggerError(f"{path}: the label file is not UTF-8 text") from None
    return parse_labels(text, str(path))
