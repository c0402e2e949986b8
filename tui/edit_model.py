"""What the Edit screen shows and writes, without Textual: a QUERY's selection and one caption save."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from prep.caption_set import CaptionRecord
from prep.captions import parse_caption
from prep.errors import PrepError


@dataclass
class Selection:
    """The captions a QUERY selects, their tag counts and likely typos, and the journal's history."""

    query: str
    records: list[CaptionRecord]
    counts: Counter[str]
    typos: dict[str, list[str]]  # tag -> the other spellings of it in the selection
    history: list = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # image path -> tag -> (source, confidence) from .lorakit/tags.sqlite; None: the dataset has no store
    sources: dict[str, dict[str, tuple[str, float | None]]] | None = None

    @property
    def captioned(self) -> int:
        return sum(1 for r in self.records if r.exists)


def load_selection(dataset: Path, query: str) -> Selection:
    """Every item whose effective tags match QUERY (all items for a blank one), with tag counts."""
    from prep.journal import Journal
    from prep.tag_edit import find_items
    from prep.tag_stats import count_tags, likely_typos

    warnings: list[str] = []
    records = find_items(dataset, query, warnings=warnings)
    counts = count_tags(r.tags for r in records if r.exists)
    typos: dict[str, list[str]] = {}
    for group in likely_typos(counts):
        for tag in group:
            typos[tag] = [other for other in group if other != tag]
    selection = Selection(query, records, counts, typos, Journal(dataset).history(), warnings)
    selection.sources = read_sources(dataset, records[:SOURCES_FOR])
    return selection


SOURCES_FOR = 1000  # the images the list shows (the Edit screen's MAX_IMAGES)


def read_sources(dataset: Path, records: list[CaptionRecord]) -> dict[str, dict[str, tuple[str, float | None]]] | None:
    """Each record's tag sources from the provenance store (prep.provenance), read once; a caption
    changed outside lorakit since has `user` tags. None when the dataset has no store."""
    from prep.provenance import read_store

    dataset = Path(dataset)
    store = read_store(dataset)
    if store is None:
        return None
    out: dict[str, dict[str, tuple[str, float | None]]] = {}
    try:
        for record in records:
            if not record.exists:
                continue
            try:
                caption = Path(record.caption).read_bytes()
                key = Path(record.image).relative_to(dataset).as_posix()
            except (OSError, ValueError):
                continue
            out[record.image] = {tag: (found.source, found.confidence)
                                 for tag, found in store.sources(key, caption).items()}
    finally:
        store.close()
    return out


def save_caption(dataset: Path, caption: Path, text: str) -> tuple[Path, bool]:
    """Write one caption through the journal (one operation, undoable); the tags are normalised."""
    from prep.journal import Journal

    dataset = Path(dataset)
    caption = Path(caption)
    try:
        rel = caption.relative_to(dataset).as_posix()
    except ValueError:
        raise PrepError(f"{caption}: not inside the dataset {dataset}; not written") from None
    tags = parse_caption(text)
    from prep.captions import format_caption
    from prep.provenance import USER, note_sources, store_path

    try:
        current: bytes | None = caption.read_bytes()
    except FileNotFoundError:
        current = None
    if current == format_caption(tags).encode("utf-8"):
        return caption, False  # nothing to write: no empty journal entry either
    with Journal(dataset).begin(f"edit caption {rel}") as op:
        if store_path(dataset).is_file():
            # The tags typed here are the user's; the ones already there keep their source.
            had = set(parse_caption(current.decode("utf-8", "replace"))) if current is not None else set()
            note_sources(op, caption, {tag: (USER, None) for tag in tags if tag not in had})
        changed = op.write_caption(caption, tags)
    return caption, changed
