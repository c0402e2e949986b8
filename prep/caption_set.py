"""All captions of a dataset read once, and caption changes written through one journal operation.

The caption engine (clean, tag edits, stats) works on a snapshot: every caption file is read once
into memory (bytes and tags), rules run on the tags, and only captions whose bytes change are
written, inside a single journal Operation so `lorakit undo` reverts the whole command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from prep.captions import CaptionEncodingError, decode_caption_bytes, format_caption, parse_caption
from prep.dataset import DEFAULT_CAPTION_EXTENSION, Concept, Dataset, Item
from prep.errors import PrepError
from prep.journal import Journal

# Whitespace other than single spaces means a tag needs the full normaliser (collapse, tabs, NBSP).
_NEEDS_FULL_PARSE = re.compile(r"[^\S ]|  ")


def parse_caption_fast(text: str) -> list[str]:
    """Same result as prep.captions.parse_caption, without a regex per tag for ordinary captions."""
    if text.startswith("\ufeff") or _NEEDS_FULL_PARSE.search(text):
        return parse_caption(text)
    return [tag for tag in (raw.strip() for raw in text.split(",")) if tag]


@dataclass
class CaptionRecord:
    """One item with its caption as read: `data` None when the image has no caption file."""

    item: Item
    data: bytes | None
    tags: list[str]

    @property
    def path(self) -> Path:
        return self.item.caption_path

    @property
    def exists(self) -> bool:
        return self.data is not None

    def effective_tags(self) -> list[str]:
        """What kohya trains: the caption, or the concept name when there is no caption file."""
        if self.data is not None:
            return self.tags
        concept = self.item.concept
        return [concept.name] if concept else []


@dataclass
class Change:
    """A caption whose text changes (`before` is "" for a caption file that is created)."""

    path: Path
    before: str
    after: str
    created: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "before": self.before, "after": self.after}


@dataclass
class EditReport:
    """What a caption command changed (or, with dry_run, would change)."""

    changed: int = 0
    unchanged: int = 0
    changes: list[Change] = field(default_factory=list)
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    journal_id: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"changed": self.changed, "unchanged": self.unchanged,
                "changes": [c.to_dict() for c in self.changes]}


def load_dataset(root: str | Path, caption_extension: str = DEFAULT_CAPTION_EXTENSION) -> Dataset:
    """A kohya dataset, or a bare folder of images when it has no concept folder."""
    return Dataset.load(root, caption_extension, allow_bare=True)


def find_concept(dataset: Dataset, name: str) -> Concept:
    """The concept whose folder name (`5_alice`) or concept name (`alice`) is `name`."""
    for concept in dataset.concepts:
        if name in (concept.folder_name, concept.name):
            return concept
    known = ", ".join(c.folder_name for c in dataset.concepts) or "none"
    raise PrepError(f"{dataset.root}: no concept folder {name!r} (concept folders: {known})")


def read_captions(items: Iterable[Item], warnings: list[str] | None = None) -> list[CaptionRecord]:
    """Read each item's caption once; a caption that is not UTF-8 is skipped with a warning."""
    records: list[CaptionRecord] = []
    for item in items:
        try:
            with open(item.caption_path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            records.append(CaptionRecord(item, None, []))
            continue
        except IsADirectoryError:
            if warnings is not None:
                warnings.append(f"{item.caption_path}: is a folder, not a caption file; skipped")
            continue
        try:
            text = decode_caption_bytes(data, item.caption_path)
        except CaptionEncodingError as exc:
            if warnings is not None:
                warnings.append(f"{exc}; skipped")
            continue
        records.append(CaptionRecord(item, data, parse_caption_fast(text)))
    return records


def caption_text(data: bytes | None) -> str:
    """The caption text as stored (BOM stripped; undecodable bytes shown replaced)."""
    if data is None:
        return ""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "replace")


def plan_tag_changes(records: Iterable[CaptionRecord], edit: Callable[[CaptionRecord], list[str] | None],
                     report: EditReport) -> list[tuple[CaptionRecord, bytes]]:
    """Apply `edit` (new tags, or None for no change) to each record; fill report; return the writes."""
    writes: list[tuple[CaptionRecord, bytes]] = []
    for record in records:
        new_tags = edit(record)
        if new_tags is None:
            report.unchanged += 1
            continue
        after = format_caption(new_tags)
        data = after.encode("utf-8")
        if data == record.data:
            report.unchanged += 1
            continue
        report.changed += 1
        report.changes.append(Change(record.path, caption_text(record.data), after, created=record.data is None))
        writes.append((record, data))
    return writes


def write_planned(root: Path, command: str, writes: list[tuple[CaptionRecord, bytes]],
                  report: EditReport) -> None:
    """Write planned captions through ONE journal operation (none is opened when nothing changes)."""
    if report.dry_run or not writes:
        return
    with Journal(root).begin(command) as op:
        report.journal_id = op.folder.name
        for record, data in writes:
            op.write_bytes(record.path, data)
