"""All captions of a dataset read once, and caption changes written through one journal operation.

The caption engine (clean, tag edits, stats) reads every caption file once (bytes and tags), runs
its rules on the tags, and writes only captions whose bytes change, inside a single journal
Operation so `lorakit undo` reverts the whole command. Writes go out in batches from a background
thread while later captions are still being read and planned. The scan mirrors Dataset.load
(allow_bare=True) but keeps paths as strings: at 100k captions a Path per file costs more than
reading the file.
"""

from __future__ import annotations

import gc
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from prep.captions import CaptionEncodingError, decode_caption_bytes, format_caption, parse_caption
from prep.dataset import (
    DEFAULT_CAPTION_EXTENSION,
    Concept,
    Dataset,
    Item,
    normalize_caption_extension,
)
from prep.errors import PrepError
from prep.folder_scan import confinement, scan_tree
from prep.fsio import READ_FLAGS
from prep.journal import Journal
from prep.journal_write import failure_message

# Whitespace other than single spaces means a tag needs the full normaliser (collapse, tabs, NBSP).
_NEEDS_FULL_PARSE = re.compile(r"[^\S ]|  ")
_READ_CHUNK = 1 << 12  # most captions fit; a small buffer is cheaper to allocate


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while building many small lists that all stay alive.

    Reading 100k captions allocates millions of tracked objects, and each automatic collection
    rescans them all (a third of a `tags stats` run); reference counting still frees garbage.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_caption_fast(text: str) -> list[str]:
    """Same result as prep.captions.parse_caption, with C-level string operations for ordinary captions."""
    if text.isascii():
        # Printable ASCII holds no whitespace but the space; then only the ", " form needs checking.
        if (not text.isprintable() or "  " in text or " ," in text or ",," in text
                or text[:1] in " ," or text[-1:] in " ,"):
            return parse_caption(text)
        if text.count(",") == text.count(", "):
            return text.split(", ")
        return text.replace(", ", ",").split(",")
    if text.startswith("\ufeff") or _NEEDS_FULL_PARSE.search(text):
        return parse_caption(text)
    tags = list(map(str.strip, text.split(",")))
    return [tag for tag in tags if tag] if "" in tags else tags


def read_file_bytes(path: str) -> bytes:
    """A small file's bytes (os.read: half the cost of open().read() for a caption)."""
    fd = os.open(path, READ_FLAGS)
    try:
        data = os.read(fd, _READ_CHUNK)
        if len(data) == _READ_CHUNK:
            parts = [data]
            while chunk := os.read(fd, _READ_CHUNK):
                parts.append(chunk)
            data = b"".join(parts)
    finally:
        os.close(fd)
    return data


@dataclass(slots=True)
class CaptionRecord:
    """One image with its caption as read: `data` None when the image has no caption file.

    Paths are kept as strings (a Path per item costs more than reading the caption). `tags` is
    None only for records an edit's prefilter skipped without parsing (iter_records).
    """

    image: str
    caption: str
    concept: Concept | None
    data: bytes | None
    tags: list[str]

    @property
    def path(self) -> Path:
        return Path(self.caption)

    @property
    def item(self) -> Item:
        return Item(Path(self.image), Path(self.caption), self.concept)

    @property
    def exists(self) -> bool:
        return self.data is not None

    def effective_tags(self) -> list[str]:
        """What kohya trains: the caption, or the concept name when there is no caption file."""
        if self.data is not None:
            return self.tags
        return [self.concept.name] if self.concept else []


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


@dataclass
class CaptionScan:
    """A dataset's concepts and (image, caption path, concept) entries, as plain strings."""

    root: Path
    concepts: list[Concept]
    entries: list[tuple[str, str, Concept | None]]

    def only(self, concept: Concept) -> CaptionScan:
        return CaptionScan(self.root, [concept], [e for e in self.entries if e[2] == concept])


def load_dataset(root: str | Path, caption_extension: str = DEFAULT_CAPTION_EXTENSION) -> Dataset:
    """A kohya dataset, or a bare folder of images when it has no concept folder."""
    return Dataset.load(root, caption_extension, allow_bare=True)


def scan_dataset(dataset: Dataset | str | Path, caption_extension: str = DEFAULT_CAPTION_EXTENSION) -> CaptionScan:
    """The items of a dataset exactly as Dataset.load(allow_bare=True) finds them, without a Path per file."""
    with gc_paused():
        return _scan_dataset(dataset, caption_extension)


def _scan_dataset(dataset: Dataset | str | Path, caption_extension: str) -> CaptionScan:
    if isinstance(dataset, Dataset):
        return _from_dataset(dataset)
    root = Path(dataset)
    if not root.is_dir():
        return _from_dataset(load_dataset(root, caption_extension))  # raises DatasetNotFound
    ext = normalize_caption_extension(caption_extension)
    # The one dataset scan (prep.folder_scan), as Dataset.load sees it, without a Path per file;
    # Dataset.load reports unreadable folders, the caption engine just skips them.
    # Symlinks leading out of the dataset are left out unless --follow-symlinks.
    tree = scan_tree(str(root), "", ext, confinement(root), skip_outside=True)
    if not tree.concepts:
        return _from_dataset(load_dataset(root, caption_extension))
    concepts: list[Concept] = []
    entries: list[tuple[str, str, Concept | None]] = []
    for found in tree.concepts:
        concept = Concept(root / found.folder, found.name, found.repeats)
        concepts.append(concept)
        base = found.scan.path + os.sep
        for name in found.scan.images:  # sorted by name, as Dataset.load
            stem = base + name[:name.rfind(".")]
            entries.append((base + name, stem + ext, concept))
    return CaptionScan(root, concepts, entries)


def _from_dataset(dataset: Dataset) -> CaptionScan:
    entries = [(str(i.image), str(i.caption_path), i.concept) for i in dataset.items]
    return CaptionScan(dataset.root, list(dataset.concepts), entries)


def find_concept(scan: CaptionScan | Dataset, name: str) -> Concept:
    """The concept whose folder name (`5_alice`) or concept name (`alice`) is `name`."""
    for concept in scan.concepts:
        if name in (concept.folder_name, concept.name):
            return concept
    known = ", ".join(c.folder_name for c in scan.concepts) or "none"
    raise PrepError(f"{scan.root}: no concept folder {name!r} (concept folders: {known})")


def read_captions(entries: Iterable[tuple[str, str, Concept | None]],
                  warnings: list[str] | None = None) -> list[CaptionRecord]:
    """Read each entry's caption once; a caption that is not UTF-8 is skipped with a warning."""
    with gc_paused():
        return _read_captions(entries, warnings)


def _read_captions(entries: Iterable[tuple[str, str, Concept | None]],
                   warnings: list[str] | None) -> list[CaptionRecord]:
    return [CaptionRecord(image, caption, concept, data, tags)
            for (image, caption, concept), data, tags in iter_caption_data(entries, warnings)]


def iter_caption_data(entries: Iterable[tuple[str, str, Concept | None]], warnings: list[str] | None = None,
                      prefilter: Callable[[str], bool] | None = None,
                      ) -> Iterator[tuple[tuple[str, str, Concept | None], bytes | None, list[str] | None]]:
    """(entry, caption bytes or None when absent, tags) per entry; unreadable captions skipped with a warning.

    With `prefilter`, a caption whose text it rejects is not parsed: its tags come back as None
    (the caller knows such a caption cannot change, e.g. it cannot hold a tag being removed).
    """
    read_file = read_file_bytes
    parse = parse_caption_fast
    for entry in entries:
        caption = entry[1]
        try:
            data = read_file(caption)
        except FileNotFoundError:
            yield entry, None, []
            continue
        except IsADirectoryError:
            if warnings is not None:
                warnings.append(f"{caption}: is a folder, not a caption file; skipped")
            continue
        except OSError as exc:
            if warnings is not None:
                warnings.append(f"{caption}: cannot read ({exc.strerror}); skipped")
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = decode_caption_bytes(data, caption)  # BOM-aware; raises with the byte offset
            except CaptionEncodingError as exc:
                if warnings is not None:
                    warnings.append(f"{exc}; skipped")
                continue
        if prefilter is not None and not prefilter(text):
            yield entry, data, None
            continue
        yield entry, data, parse(text)


def caption_text(data: bytes | None) -> str:
    """The caption text as stored (BOM stripped; undecodable bytes shown replaced)."""
    if data is None:
        return ""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "replace")


class _BatchWriter:
    """Writes batches of changes through one journal operation in a background thread, so that
    writing (bound by the file system) overlaps reading and planning the rest (bound by the CPU)."""

    def __init__(self, root: Path, command: str) -> None:
        self.op = Journal(root).begin(command)
        self.error: BaseException | None = None
        self._queue: queue.Queue[list[tuple[str, bytes]] | None] = queue.Queue(maxsize=4)
        self._thread = threading.Thread(target=self._run, name="lorakit-caption-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self.op.write_many(batch)
                except BaseException as exc:  # handed to the caller's thread by submit/close
                    self.error = exc

    def submit(self, batch: list[tuple[str, bytes]]) -> None:
        if self.error is not None:
            self._raise()
        self._queue.put(batch)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self.op.close("done" if self.error is None else "failed")
        if self.error is not None:
            self._raise()

    def _raise(self) -> None:
        error = self.error
        if isinstance(error, OSError):
            raise PrepError(failure_message(error, self.op.root)) from error
        raise error  # type: ignore[misc]


def apply_changes(root: Path, command: str, records: Iterable[CaptionRecord],
                  edit: Callable[[CaptionRecord], list[str] | None], report: EditReport, *,
                  batch: int = 256) -> None:
    """Apply `edit` (new tags, or None for no change) to each record and fill `report`.

    Unless report.dry_run, captions whose bytes change are written through ONE journal operation
    (none is opened when nothing changes), batch by batch while later records are still planned.
    """
    writer: _BatchWriter | None = None
    pending: list[tuple[str, bytes]] = []
    try:
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
            report.changes.append(Change(record.path, caption_text(record.data), after,
                                         created=record.data is None))
            if report.dry_run:
                continue
            pending.append((record.caption, data))
            if len(pending) >= batch:
                if writer is None:
                    writer = _BatchWriter(root, command)
                    report.journal_id = writer.op.folder.name
                writer.submit(pending)
                pending = []
        if pending:
            if writer is None:
                writer = _BatchWriter(root, command)
                report.journal_id = writer.op.folder.name
            writer.submit(pending)
    finally:
        if writer is not None:
            writer.close()


def iter_records(entries: Iterable[tuple[str, str, Concept | None]], warnings: list[str] | None = None,
                 prefilter: Callable[[str], bool] | None = None) -> Iterator[CaptionRecord]:
    """CaptionRecords read one at a time (read_captions without holding them all).

    Records that `prefilter` rejects carry `tags` None (see iter_caption_data).
    """
    for (image, caption, concept), data, tags in iter_caption_data(entries, warnings, prefilter):
        yield CaptionRecord(image, caption, concept, data, tags)
