"""The bundled Danbooru tag list (prep/data/danbooru_tags.csv, the WD14 labels) as caption spellings."""

from __future__ import annotations

import csv
import io
from functools import lru_cache
from importlib import resources

RATING_CATEGORY = "9"


@lru_cache(maxsize=1)
def danbooru_tags() -> tuple[str, ...]:
    """Tag names, most used first, with spaces for underscores (kaomoji such as ^_^ kept as written)."""
    from prep.captions import KAOMOJI

    text = resources.files("prep").joinpath("data/danbooru_tags.csv").read_text(encoding="utf-8")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("category") == RATING_CATEGORY:
            continue
        name = row["name"]
        try:
            count = int(row.get("count") or 0)
        except ValueError:
            count = 0
        rows.append((-count, name if name in KAOMOJI else name.replace("_", " ")))
    rows.sort()
    return tuple(dict.fromkeys(name for _count, name in rows))
