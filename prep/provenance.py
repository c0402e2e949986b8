"""Where each caption tag came from: `.lorakit/tags.sqlite`, kept in step with the captions by the journal.

Rows: (image, tag, source, confidence or null, time); source is `booru:<site>:<post id>`,
`tagger:<model id>`, `caption:<model id>`, `user` or the lorakit command that wrote the tag. A
tagger run also keeps every label's confidence per model (`predictions`), so thresholds can be
re-applied later without the model (`lorakit tag --rethreshold`). The caption file stays the
training truth: a caption whose hash no longer matches the store was edited outside lorakit, and
its tags count as `user`.

The store is updated in place at the close of the journal operation that changed the captions
(a watcher), only the changed images' rows, in one SQLite transaction. Before it commits, the
operation journals those images' previous rows (a `rows` record with a blob), so `lorakit undo`
puts them back (`restore_rows`) with the captions; a killed operation rolls the transaction back
(SQLite's own journal) and its undo restores rows that are already there. Rewriting the whole
file each time cost 8-9x a 10,000-caption edit (loaded machine, load 6.8); in place, writing only
the rows that differ, 1.8x for `tags add` on every caption and 1.9x for `tags remove` on 10%
(load 3.2; 1.3x and 1.6x at load 5.4; benchmarks/provenance.py). SQLite's default rollback journal is kept: one commit per
operation, WAL measured no better within the loaded machine's noise, and it would leave -wal/-shm
files beside the store. The store exists once a command that knows
sources (the tagger, a scrape) wrote one; plain edits keep an existing store up to date.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prep.captions import CaptionEncodingError, decode_caption_bytes
from prep.errors import PrepError
from prep.images import IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS

STORE_NAME = "tags.sqlite"
STORE_REL = ".lorakit/" + STORE_NAME  # the journal's `rows` records name it
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


def image_key(root: Path, caption_rel: str, listing: dict[str, dict[str, str]] | None = None) -> str:
    """The dataset-relative image a caption belongs to (the caption's own path when no image is found).

    `listing` caches each folder's {stem: image name} across calls (one scandir per folder)."""
    stem = caption_rel.rsplit(".", 1)[0]
    parent, _, name = stem.rpartition("/")
    cache = listing if listing is not None else {}
    images = cache.get(parent)
    if images is None:
        images = {}
        try:
            for entry in os.scandir(Path(root) / parent if parent else Path(root)):
                base, dot, ext = entry.name.rpartition(".")
                if dot and ("." + ext).lower() in IMAGE_EXTENSIONS:
                    images.setdefault(base, entry.name)
        except OSError:
            pass
        cache[parent] = images
    found = images.get(name)
    if found is None:
        return caption_rel
    return f"{parent}/{found}" if parent else found


class TagStore:
    """The dataset's store, opened read-only (the default) or for one writing transaction."""

    def __init__(self, root: Path, *, write: bool = False) -> None:
        self.root = Path(root)
        path = store_path(self.root)
        self.created = False
        try:
            if write:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.created = not path.exists()
                self.db = sqlite3.connect(path, isolation_level=None)
                self.db.executescript(_SCHEMA)
            else:
                self.db = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, isolation_level=None)
                self.db.execute("SELECT 1 FROM tags LIMIT 1")
        except sqlite3.DatabaseError:
            raise PrepError(f"{path}: not a lorakit tag store (SQLite); move it away to start a new one") from None
        except OSError as exc:
            raise PrepError(f"{path}: cannot open the tag store ({exc.strerror})") from None

    def close(self) -> None:
        self.db.close()

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def snapshot(self, images: Iterable[str]) -> dict[str, list]:
        """Every row of these images, in the form restore() takes back (JSON-able)."""
        wanted = sorted(set(images))
        out: dict[str, list] = {"images": wanted, "tags": [], "captions": [], "predictions": []}
        for table in ("tags", "captions", "predictions"):
            rows = out[table]
            for i in range(0, len(wanted), 500):  # SQLite caps the parameters of one statement
                chunk = wanted[i:i + 500]
                marks = ",".join("?" * len(chunk))
                rows.extend(self.db.execute(f"SELECT * FROM {table} WHERE image IN ({marks})", chunk).fetchall())
        return out

    def restore(self, snapshot: Mapping[str, list]) -> None:
        """Put back the rows of snapshot's images exactly (inside a transaction the caller holds)."""
        images = [(image,) for image in snapshot["images"]]
        for table in ("tags", "captions", "predictions"):
            self.db.executemany(f"DELETE FROM {table} WHERE image = ?", images)
        self.db.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?, ?)", snapshot["tags"])
        self.db.executemany("INSERT OR REPLACE INTO captions VALUES (?, ?)", snapshot["captions"])
        self.db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?)", snapshot["predictions"])

    def is_empty(self) -> bool:
        return not any(self.db.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone() for t in ("tags", "captions",
                                                                                             "predictions"))

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
    def update_captions(self, updates: Iterable[CaptionUpdate], default_source: str, previous: Mapping[str, list]) -> None:
        """Bring the updated images' rows in line with their new captions, in a few statements.

        `previous` is store.snapshot() of these images (their rows before). Tags an update did not
        note keep their stored source; when the caption was changed outside lorakit before this
        operation (edited), the tags it held then are the user's.
        """
        old: dict[str, dict[str, tuple[str, float | None]]] = {}
        for image, tag, source, conf, _time in previous["tags"]:
            old.setdefault(image, {})[tag] = (source, conf)
        now = time.time()
        gone: list[tuple[str]] = []
        dropped: list[tuple[str, str]] = []
        rows: list[tuple[str, str, str, float | None, float]] = []
        hashes: list[tuple[str, str]] = []
        for u in updates:
            had = old.get(u.image, {})
            if u.caption is None:
                gone.append((u.image,))
                continue
            before_tags = set(_tags_of(u.before)) if u.edited and u.before is not None else set()
            known = {} if u.edited else had
            tags = dict.fromkeys(_tags_of(u.caption))
            for tag in tags:
                if tag in before_tags:
                    found = (USER, None)  # the user wrote it (the caption changed outside lorakit)
                elif tag in u.noted:
                    found = u.noted[tag]
                elif tag in known:
                    found = known[tag]
                else:
                    found = (default_source, None)
                if had.get(tag) != found:  # a row that stays as it was is not rewritten (nor its time)
                    rows.append((u.image, tag, found[0], found[1], now))
            dropped.extend((u.image, tag) for tag in had if tag not in tags)
            hashes.append((u.image, caption_hash(u.caption)))
        self.db.executemany("DELETE FROM tags WHERE image = ?", gone)
        self.db.executemany("DELETE FROM captions WHERE image = ?", gone)
        self.db.executemany("DELETE FROM tags WHERE image = ? AND tag = ?", dropped)
        self.db.executemany("INSERT OR REPLACE INTO tags VALUES (?, ?, ?, ?, ?)", rows)
        self.db.executemany("INSERT OR REPLACE INTO captions VALUES (?, ?)", hashes)

    def stored_hash(self, image: str) -> str | None:
        row = self.db.execute("SELECT hash FROM captions WHERE image = ?", (image,)).fetchone()
        return row[0] if row else None

    def rename_images(self, renamed: Mapping[str, str]) -> None:
        """Move the rows of each image to its new path (rows already at a new path are replaced)."""
        pairs = [(new, old) for old, new in renamed.items()]
        for table in ("tags", "captions", "predictions"):
            self.db.executemany(f"DELETE FROM {table} WHERE image = ?", [(new,) for new, _old in pairs])
            self.db.executemany(f"UPDATE {table} SET image = ? WHERE image = ?", pairs)

    def set_predictions(self, entries: Iterable[tuple[str, str, Iterable[tuple[str, int, float]]]]) -> None:
        """Replace the stored confidences of (image, model, [(tag, category, confidence)]) entries."""
        entries = list(entries)
        self.db.executemany("DELETE FROM predictions WHERE image = ? AND model = ?",
                            [(image, model) for image, model, _ in entries])
        self.db.executemany("INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?)",
                            [(image, model, tag, int(cat), float(p)) for image, model, rows in entries
                             for tag, cat, p in rows])


@dataclass(frozen=True, slots=True)
class CaptionUpdate:
    """One caption an operation changed: its image, new bytes (None: gone), the sources noted for its
    tags, whether it had been edited outside lorakit before, and its bytes then."""

    image: str
    caption: bytes | None
    noted: Mapping[str, tuple[str, float | None]]
    edited: bool
    before: bytes | None


def _tags_of(caption: bytes) -> list[str]:
    from prep.caption_set import (
        parse_caption_fast,  # (prep.caption_set imports the journal, which imports this)
    )

    try:
        text = caption.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = decode_caption_bytes(caption)
        except CaptionEncodingError:
            return []
    return parse_caption_fast(text)


# -- the journal watcher --------------------------------------------------------------------------
class ProvenanceWatcher:
    """Runs inside a journal operation: notes caption hashes before changes, updates the store at close."""

    def __init__(self, root: Path, command: str) -> None:
        self.root = Path(root)
        words = command.split()
        if words[:1] == ["lorakit"] and len(words) > 1:
            words = words[1:]  # "lorakit tags DATASET add x" (a history line) is the `tags` command
        self.command = words[0] if words else "lorakit"
        self.active = store_path(self.root).is_file()
        self.before: dict[str, str | None] = {}  # caption rel -> hash before this operation
        self.before_data: dict[str, bytes | None] = {}  # caption rel -> bytes before this operation
        self.written: dict[str, bytes] = {}  # caption rel -> the bytes the operation last wrote there
        self.noted: dict[str, dict[str, tuple[str, float | None]]] = {}
        self.predictions: dict[str, tuple[str, list[tuple[str, int, float]]]] = {}
        self.renamed: dict[str, str] = {}  # image rel before this operation -> its rel now

    @staticmethod
    def is_caption(rel: str) -> bool:
        return not rel.startswith(".lorakit/") and rel.lower().endswith(CAPTION_SUFFIXES)

    def before_change(self, rel: str, current: bytes | None, new: bytes | None = None) -> None:
        """A caption is about to change from `current` (None: it does not exist yet) to `new`."""
        if not self.active or not self.is_caption(rel):
            return
        if new is not None:
            self.written[rel] = new
        if rel in self.before:
            return
        self.before[rel] = caption_hash(current) if current is not None else None
        self.before_data[rel] = current

    def image_renamed(self, src: str, dst: str) -> None:
        """An image now lives at `dst` (a rename, or a conversion to another format): its rows follow."""
        if not self.active or src.startswith(".lorakit/") or dst.startswith(".lorakit/"):
            return
        if not src.lower().endswith(tuple(IMAGE_EXTENSIONS | UNSUPPORTED_IMAGE_EXTENSIONS)) or src == dst:
            return
        for first, now in list(self.renamed.items()):  # renamed twice in one operation: one step
            if now == src:
                self.renamed[first] = dst
                return
        self.renamed[src] = dst

    def note(self, rel: str, sources: Mapping[str, tuple[str, float | None]],
             predictions: tuple[str, list[tuple[str, int, float]]] | None = None) -> None:
        self.active = True
        self.noted[rel] = dict(sources)
        if predictions is not None:
            self.predictions[rel] = predictions

    def before_close(self, operation: Any, touched: Iterable[str], *, completed: bool = True) -> None:
        """Update the store for the captions the operation touched (`completed`: every write it
        planned was made, so the bytes it wrote are what the files hold; else they are read)."""
        if not self.active:
            return
        captions = [rel for rel in touched if self.is_caption(rel)]
        changed = set(captions)
        captions += [rel for rel in self.predictions if rel not in changed]
        if not captions and not self.renamed:
            return
        listing: dict[str, dict[str, str]] = {}
        images = {rel: image_key(self.root, rel, listing) for rel in captions}
        store = TagStore(self.root, write=True)
        try:
            store.begin()
            previous = store.snapshot({*images.values(), *self.renamed, *self.renamed.values()})
            # The previous rows reach the journal before the transaction commits (see the docstring).
            operation.record_store_rows(STORE_REL, json.dumps(previous, separators=(",", ":")).encode(),
                                        store.created)
            if self.renamed:
                store.rename_images(self.renamed)
                previous = renamed_snapshot(previous, self.renamed)  # the rows as they now stand
            stored = {image: digest for image, digest in previous["captions"]}
            updates = []
            for rel in captions:
                if rel not in changed:
                    continue
                data = self.written.get(rel) if completed else None
                if data is None:
                    try:
                        data = (self.root / rel).read_bytes()
                    except OSError:
                        data = None
                before = self.before.get(rel)
                image = images[rel]
                # Changed by hand since lorakit wrote it, or written before the store knew it: the user's.
                edited = before is not None and before != stored.get(image)
                updates.append(CaptionUpdate(image, data, self.noted.get(rel, {}), edited,
                                             self.before_data.get(rel)))
            store.update_captions(updates, self.command, previous)
            store.set_predictions((images[rel], *self.predictions[rel]) for rel in captions if rel in self.predictions)
            store.commit()
        except BaseException:
            store.rollback()
            raise
        finally:
            store.close()


def renamed_snapshot(snapshot: Mapping[str, list], renamed: Mapping[str, str]) -> dict[str, list]:
    """A snapshot as TagStore.rename_images leaves its rows (each row's image is its first field)."""
    targets = set(renamed.values())
    out: dict[str, list] = {"images": sorted({renamed.get(i, i) for i in snapshot["images"]})}
    for table in ("tags", "captions", "predictions"):
        out[table] = [[renamed[row[0]], *row[1:]] if row[0] in renamed else list(row)
                      for row in snapshot[table] if row[0] in renamed or row[0] not in targets]
    return out


def restore_rows(root: Path, previous: bytes, created: bool) -> None:
    """Undo of a `rows` record: put back the rows an operation replaced (removing a store it created
    when nothing else is left in it). Idempotent, so a killed undo can run again."""
    snapshot = _checked_snapshot(previous)
    path = store_path(root)
    if not path.is_file() and not any(snapshot[t] for t in ("tags", "captions", "predictions")):
        return  # nothing to put back, and no store to put it in
    store = TagStore(root, write=True)
    try:
        store.begin()
        store.restore(snapshot)
        store.commit()
        empty = created and store.is_empty()
    except BaseException:
        store.rollback()
        raise
    finally:
        store.close()
    if empty:
        path.unlink(missing_ok=True)


def note_sources(operation: Any, caption_path: Path, sources: Mapping[str, tuple[str, float | None]],
                 predictions: tuple[str, list[tuple[str, int, float]]] | None = None) -> None:
    """Tell the operation's provenance watcher where the tags of a caption it writes came from."""
    watcher = getattr(operation, "provenance", None)
    if watcher is not None:
        watcher.note(operation._rel(caption_path), sources, predictions)


_ROW_WIDTHS = {"tags": 5, "captions": 2, "predictions": 5}


def _checked_snapshot(previous: bytes) -> dict[str, list]:
    """A journaled snapshot, refused (PrepError) unless it is exactly rows of plain values: a journal
    may come with a dataset someone else shared."""
    try:
        snapshot = json.loads(previous)
    except ValueError:
        snapshot = None
    ok = isinstance(snapshot, dict) and isinstance(snapshot.get("images"), list) \
        and all(isinstance(i, str) for i in snapshot["images"])
    for table, width in _ROW_WIDTHS.items():
        rows = snapshot.get(table) if ok else None
        ok = ok and isinstance(rows, list) and all(
            isinstance(r, list) and len(r) == width and isinstance(r[0], str)
            and all(v is None or isinstance(v, (str, int, float)) for v in r) for r in rows)
    if not ok:
        raise PrepError("the journal's copy of the tag store rows is damaged; nothing was restored "
                        "(move the operation's journal folder out of the dataset to skip it)")
    return snapshot


def read_store(root: Path) -> TagStore | None:
    """The dataset's store, opened read-only, or None when it has none."""
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
