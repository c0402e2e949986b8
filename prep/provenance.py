"""Where each caption tag came from: `.lorakit/tags.sqlite`, kept in step with the captions by the journal.

Rows: (image, tag, source, confidence or null, time); source is `booru:<site>:<post id>`,
`tagger:<model id>`, `caption:<model id>`, `user` or the lorakit command that wrote the tag. A
tagger run also keeps every label's confidence per model (`predictions`), so thresholds can be
re-applied later without the model (`lorakit tag --rethreshold`). The caption file stays the
training truth: a caption whose hash no longer matches the store was edited outside lorakit, and
its tags count as `user`.

The store is one file written whole through the operation that changed the captions (a journal
watcher runs at the operation's close), so `lorakit undo` restores both together. It exists once a
command that knows sources (the tagger) wrote one; plain edits keep an existing store up to date.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prep.captions import CaptionEncodingError, decode_caption_bytes, parse_caption
from prep.errors import PrepError
from prep.images import IMAGE_EXTENSIONS

STORE_NAME = "tags.sqlite"
USER = "user"
CAPTION_SUFFIXES = (".txt", ".caption")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tags (image TEXT NOT NULL, tag TEXT NOT NULL, source TEXT NOT NULL,
                                 confidence REAL, time REAL NOT NULL, PRIMARY KEY (image, tag));
CREATE TABLE IF NOT EXISTS captions (image TEXT PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS predictions (image TEXT NOT NULL, model TEXT NOT NULL, tag TEXT NOT NULL,
                                        category INTEGER NOT NULL, confidence REAL NOT NULL,
                                        PRIMARY KEY (image, model, tag));
"""


def store_path(root: Path) -> Path:
    return Path(root) / ".lorakit" / STORE_NAME


def caption_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def source_kind(source: str) -> str:
    """booru | tagger | caption | user | command (the source's first field)."""
    head = source.split(":", 1)[0]
    return head if head in ("booru", "tagger", "caption", USER) else "command"


@dataclass(frozen=True)
class TagSource:
    tag: str
    source: str
    confidence: float | None


def image_key(root: Path, caption_rel: str) -> str:
    """The dataset-relative image a caption belongs to (the caption's own path when no image is found)."""
    stem = caption_rel.rsplit(".", 1)[0]
    folder = (Path(root) / caption_rel).parent
    name = Path(stem).name
    try:
        for entry in os.scandir(folder):
            if entry.name.startswith(name) and Path(entry.name).stem == name \
                    and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS:
                return Path(stem).parent.joinpath(entry.name).as_posix()
    except OSError:
        pass
    return caption_rel


class TagStore:
    """The store read into memory (a private copy), queried, then serialised to bytes for the journal."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        fd, self._tmp = tempfile.mkstemp(suffix=".sqlite")
        os.close(fd)
        existing = store_path(self.root)
        if existing.is_file():
            try:
                with open(existing, "rb") as src, open(self._tmp, "wb") as dst:
                    dst.write(src.read())
            except OSError as exc:
                raise PrepError(f"{existing}: cannot read the tag store ({exc.strerror})") from None
        self.db = sqlite3.connect(self._tmp)
        try:
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError:
            raise PrepError(f"{existing}: not a lorakit tag store (SQLite); move it away to start a new one") from None

    def close(self) -> None:
        self.db.close()
        try:
            os.unlink(self._tmp)
        except OSError:
            pass

    def to_bytes(self) -> bytes:
        self.db.commit()
        self.db.execute("VACUUM")
        with open(self._tmp, "rb") as fh:
            return fh.read()

    # -- reading ---------------------------------------------------------------------------
    def sources(self, image: str, caption: bytes | None = None) -> dict[str, TagSource]:
        """The image's tags and sources; all `user` when `caption` no longer has the stored hash."""
        rows = self.db.execute("SELECT tag, source, confidence FROM tags WHERE image = ?", (image,)).fetchall()
        found = {tag: TagSource(tag, source, confidence) for tag, source, confidence in rows}
        if caption is not None and self.stored_hash(image) != caption_hash(caption):
            return {tag: TagSource(tag, USER, None) for tag in dict.fromkeys(_tags_of(caption))}
        return found

    def predictions(self, image: str, models: Iterable[str] | None = None) -> list[tuple[str, str, int, float]]:
        """(model, tag, category, confidence) rows stored for an image."""
        rows = self.db.execute("SELECT model, tag, category, confidence FROM predictions WHERE image = ?",
                               (image,)).fetchall()
        wanted = set(models) if models else None
        return [r for r in rows if wanted is None or r[0] in wanted]

    def models(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT DISTINCT model FROM predictions ORDER BY model")]

    # -- writing ---------------------------------------------------------------------------
    def update(self, image: str, caption: bytes | None, noted: Mapping[str, tuple[str, float | None]],
               default_source: str, edited_before: bool, before_tags: set[str] | frozenset[str] = frozenset()) -> None:
        """Bring one image's rows in line with its new caption (None: the caption is gone).

        Tags the operation did not note keep their stored source; when the caption was changed
        outside lorakit before this operation (edited_before), they are the user's.
        """
        if caption is None:
            self.db.execute("DELETE FROM tags WHERE image = ?", (image,))
            self.db.execute("DELETE FROM captions WHERE image = ?", (image,))
            return
        now = time.time()
        old = {tag: (source, conf) for tag, source, conf in
               self.db.execute("SELECT tag, source, confidence FROM tags WHERE image = ?", (image,))}
        tags = _tags_of(caption)
        self.db.execute("DELETE FROM tags WHERE image = ?", (image,))
        for tag in dict.fromkeys(tags):
            if edited_before and tag in before_tags:
                source, conf = USER, None  # the user wrote it (the caption changed outside lorakit)
            elif tag in noted:
                source, conf = noted[tag]
            elif tag in old and not edited_before:
                source, conf = old[tag]
            else:
                source, conf = default_source, None
            self.db.execute("INSERT INTO tags VALUES (?, ?, ?, ?, ?)", (image, tag, source, conf, now))
        self.db.execute("INSERT OR REPLACE INTO captions VALUES (?, ?)", (image, caption_hash(caption)))

    def stored_hash(self, image: str) -> str | None:
        row = self.db.execute("SELECT hash FROM captions WHERE image = ?", (image,)).fetchone()
        return row[0] if row else None

    def set_predictions(self, image: str, model: str, rows: Iterable[tuple[str, int, float]]) -> None:
        self.db.execute("DELETE FROM predictions WHERE image = ? AND model = ?", (image, model))
        self.db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?)",
                            [(image, model, tag, int(cat), float(p)) for tag, cat, p in rows])


def _tags_of(caption: bytes) -> list[str]:
    try:
        return parse_caption(decode_caption_bytes(caption))
    except CaptionEncodingError:
        return []


# -- the journal watcher --------------------------------------------------------------------------
class ProvenanceWatcher:
    """Runs inside a journal operation: notes caption hashes before changes, updates the store at close."""

    def __init__(self, root: Path, command: str) -> None:
        self.root = Path(root)
        self.command = command.split()[0] if command.split() else "lorakit"
        self.active = store_path(self.root).is_file()
        self.before: dict[str, str | None] = {}  # caption rel -> hash before this operation
        self.before_tags: dict[str, set[str]] = {}
        self.noted: dict[str, dict[str, tuple[str, float | None]]] = {}
        self.predictions: dict[str, tuple[str, list[tuple[str, int, float]]]] = {}

    @staticmethod
    def is_caption(rel: str) -> bool:
        return not rel.startswith(".lorakit/") and rel.lower().endswith(CAPTION_SUFFIXES)

    def before_change(self, rel: str, current: bytes | None) -> None:
        """A caption is about to change from `current` (None: it does not exist yet)."""
        if not self.active or not self.is_caption(rel) or rel in self.before:
            return
        self.before[rel] = caption_hash(current) if current is not None else None
        self.before_tags[rel] = set(_tags_of(current)) if current is not None else set()

    def note(self, rel: str, sources: Mapping[str, tuple[str, float | None]],
             predictions: tuple[str, list[tuple[str, int, float]]] | None = None) -> None:
        self.active = True
        self.noted[rel] = dict(sources)
        if predictions is not None:
            self.predictions[rel] = predictions

    def before_close(self, operation: Any, touched: Iterable[str]) -> None:
        if not self.active:
            return
        captions = [rel for rel in touched if self.is_caption(rel)]
        changed = set(captions)
        captions += [rel for rel in self.predictions if rel not in changed]
        if not captions:
            return
        store = TagStore(self.root)
        try:
            for rel in captions:
                image = image_key(self.root, rel)
                try:
                    data: bytes | None = (self.root / rel).read_bytes()
                except OSError:
                    data = None
                if rel in changed:
                    stored = store.stored_hash(image)
                    before = self.before.get(rel)
                    # Changed by hand since lorakit wrote it, or written before the store knew it: the user's.
                    edited = before is not None and before != stored
                    store.update(image, data, self.noted.get(rel, {}), self.command, edited,
                                 self.before_tags.get(rel, set()))
                if rel in self.predictions:
                    model, rows = self.predictions[rel]
                    store.set_predictions(image, model, rows)
            blob = store.to_bytes()
        finally:
            store.close()
        target = store_path(self.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        operation.write_bytes(target, blob)


def note_sources(operation: Any, caption_path: Path, sources: Mapping[str, tuple[str, float | None]],
                 predictions: tuple[str, list[tuple[str, int, float]]] | None = None) -> None:
    """Tell the operation's provenance watcher where the tags of a caption it writes came from."""
    watcher = getattr(operation, "provenance", None)
    if watcher is not None:
        watcher.note(operation._rel(caption_path), sources, predictions)


def read_store(root: Path) -> TagStore | None:
    """The dataset's store, or None when it has none."""
    return TagStore(root) if store_path(root).is_file() else None


def stored_predictions(root: Path, caption_rel: str, model: str, cache: dict[str, set[tuple[str, str]]]) -> bool:
    """Whether the store already holds `model`'s confidences for a caption's image (`cache` keeps the
    store's pairs across calls, read once)."""
    if "pairs" not in cache:
        store = read_store(root)
        pairs: set[tuple[str, str]] = set()
        if store is not None:
            try:
                pairs = {(image, m) for image, m in store.db.execute("SELECT DISTINCT image, model FROM predictions")}
            finally:
                store.close()
        cache["pairs"] = pairs
    return (image_key(root, caption_rel), model) in cache["pairs"]
