"""The writing side of the undo journal: an open Operation, through which every change goes.

Each change is recorded (and flushed) in the operation's `entries.jsonl` *before* the file is
touched, with what the file held before and what the operation leaves there (size and hash), so
that undo can restore it exactly and can tell a file the user changed afterwards.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import shutil
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from prep.captions import format_caption
from prep.errors import JournalError, PrepError, describe_os_error
from prep.fsio import READ_FLAGS, atomic_write_bytes, exchange, write_new_file
from prep.journal_lock import JournalLock
from prep.provenance import ProvenanceWatcher

_INLINE_LIMIT = 64 * 1024  # larger previous contents go to a blob file, not the JSON line
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_META_SPARE = 256  # meta.json is written with this much padding, so a full disk can still mark it failed


def _read_all(fd: int, size: int) -> bytes:
    """Everything left in fd; `size` is its expected length (a file that grew is still read to its end)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def content_id(data: bytes) -> str:
    """The hash undo compares a file with to tell whether it still holds what an operation wrote."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _after(data: bytes) -> dict[str, object]:
    return {"size": len(data), "hash": content_id(data)}


def failure_message(exc: OSError, root: Path) -> str:
    """One line for an OSError that stopped a journaled operation (or an undo) part-way."""
    where = exc.filename or root
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on {where}; nothing was lost, free space and run lorakit undo {root}"
    return f"{describe_os_error(exc)}; stopped there, and `lorakit undo {root}` reverts what was written"


class Operation:
    """An open journal entry; every change to a user file goes through one of its methods."""

    def __init__(self, root: Path, folder: Path, command: str, lock: JournalLock | None = None) -> None:
        self.root = root
        self.lock = lock
        self.records = 0  # records appended: an operation that recorded none leaves no entry
        self.folder = folder
        self.command = command
        self.started = time.time()
        self.count = 0
        self._touched: set[str] = set()
        self._blob_seq = 0
        self._links_ok = True  # hard links into the journal work on this file system (until one fails)
        self._swap_ok = True  # atomic swaps (fsio.exchange) work here (until one is refused)
        self._links_dir = False
        self._folder_name = str(folder)
        self._dev = os.stat(folder).st_dev  # files on other file systems cannot be swapped into the journal
        self._pool = None  # write_many's threads, kept across calls until close()
        # surrogateescape: file names that are not UTF-8 round-trip through the journal byte for byte
        self._entries = open(folder / "entries.jsonl", "a", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
        self._meta_size = 0
        self._closed = False
        # Keeps .lorakit/tags.sqlite in step: sees each caption before it changes, writes the store at close.
        self.provenance = ProvenanceWatcher(root, command)
        self._write_meta("running")

    # -- helpers -------------------------------------------------------------------------------
    def _rel(self, path: Path) -> str:
        path = Path(path)
        absolute = path if path.is_absolute() else Path.cwd() / path
        try:
            return Path(os.path.relpath(absolute, self.root)).as_posix()
        except ValueError:
            raise JournalError(f"{path}: outside the dataset {self.root}; cannot journal it") from None

    def _write_meta(self, state: str, finished: float | None = None) -> None:
        meta = {
            "id": self.folder.name,
            "command": self.command,
            "started": self.started,
            "finished": finished,
            "count": self.count,
            "state": state,
        }
        data = json.dumps(meta).encode()
        if not self._meta_size:
            self._meta_size = len(data) + _META_SPARE
        data = data.ljust(self._meta_size)
        try:
            atomic_write_bytes(self.folder / "meta.json", data)
        except OSError:
            if len(data) > self._meta_size:
                raise
            # A full disk (no room for a new file): overwrite the padded meta.json in place, in the
            # blocks it already has, so the operation is never left looking [running].
            fd = os.open(self.folder / "meta.json", os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
            try:
                os.pwrite(fd, data, 0)
            finally:
                os.close(fd)
        else:
            self._meta_size = len(data)

    def _append(self, record: dict[str, object]) -> None:
        """Add a record; the caller flushes before it touches the file the record is about."""
        self._entries.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.records += 1

    def _remember(self, path: Path | str, rel: str, data: bytes, current: bytes | None | bool = False) -> None:
        """Record the bytes `path` holds now (once per operation), before it is changed to `data`.

        `current`: those bytes when the caller has just read them (None: no such file).
        """
        if rel in self._touched:
            self._append({"op": "left", "path": rel, **_after(data)})  # what undo should find there now
            return
        self._touched.add(rel)
        record: dict[str, object] = {"op": "write", "path": rel, **_after(data)}
        try:
            st = os.stat(path)
            if current is None:
                raise FileNotFoundError(path)
            if self._link_previous(path, record):
                # The old inode now lives on in the journal; the atomic write that follows gives the
                # path a new inode, so the old bytes stay intact (and the rename frees no blocks).
                record["mtime_ns"] = st.st_mtime_ns
                self._append(record)
                return
            previous = current if isinstance(current, bytes) else Path(path).read_bytes()
        except FileNotFoundError:
            record["before"] = None
        else:
            record["mtime_ns"] = st.st_mtime_ns
            if len(previous) <= _INLINE_LIMIT:
                record["before"] = base64.b64encode(previous).decode("ascii")
            else:
                self._blob_seq += 1
                blob = f"blobs/{self._blob_seq:08d}"
                (self.folder / "blobs").mkdir(exist_ok=True)
                atomic_write_bytes(self.folder / blob, previous)
                record["blob"] = blob
        self._append(record)

    def _link_previous(self, path: Path | str, record: dict[str, object]) -> bool:
        """Keep the file's current inode as a hard link in the journal; False where links don't work."""
        if not self._links_ok:
            return False
        self._blob_seq += 1
        name = f"links/{self._blob_seq:08d}"
        try:
            os.link(path, self.folder / name)
        except FileNotFoundError:
            if (self.folder / "links").is_dir():
                raise  # the file itself vanished
            (self.folder / "links").mkdir(exist_ok=True)
            return self._link_previous(path, record)
        except OSError:  # a file system without hard links (FAT, some network mounts): copy bytes
            self._links_ok = False
            return False
        record["link"] = name
        return True

    # -- the changes ----------------------------------------------------------------------------
    def _plan(self, name: str, rel: str, data: bytes) -> tuple[str, bytes, str | None, int] | None:
        """Journal the change of file `name` to `data` (records appended, not yet flushed).

        Returns what _apply needs — (path, data, journal name to swap through or None, mode) — or
        None when the file already holds `data`. A file that exists is replaced by swapping it
        with a new file made inside the journal, so its old inode stays there whole (bytes, mode,
        mtime): one atomic rename, no copy. The record (with the old inode number) is written
        first; undo tells from the inode number whether the swap happened.
        """
        st: os.stat_result | None
        try:
            fd = os.open(name, READ_FLAGS | _NOFOLLOW)
        except FileNotFoundError:
            st, current = None, None
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            # A symlink (the caption is replaced by a file; the file it points at is not touched):
            # journal the link's target text, which undo puts back as the same symlink.
            with open(name, "rb") as fh:
                if fh.read() == data:
                    return None
            if rel not in self._touched:
                self._touched.add(rel)
                self._append({"op": "write", "path": rel, "symlink": os.readlink(name), **_after(data)})
            else:
                self._append({"op": "left", "path": rel, **_after(data)})
            return (name, data, None, 0)
        else:
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
                current = _read_all(fd, st.st_size)
            finally:
                os.close(fd)
        if current == data:
            return None
        self.provenance.before_change(rel, current, data)
        if st is None or rel in self._touched or not self._can_swap(st):
            self._remember(name, rel, data, current)
            return (name, data, None, 0)
        self._touched.add(rel)
        self._blob_seq += 1
        kept = f"links/{self._blob_seq:08d}"
        if not self._links_dir:
            (self.folder / "links").mkdir(exist_ok=True)
            self._links_dir = True
        self._append({"op": "write", "path": rel, "swap": kept, "ino": st.st_ino, "mtime_ns": st.st_mtime_ns,
                      **_after(data)})
        return (name, data, os.path.join(self._folder_name, kept), st.st_mode & 0o7777)

    def _can_swap(self, st: os.stat_result) -> bool:
        return self._swap_ok and st.st_dev == self._dev and stat.S_ISREG(st.st_mode)

    def _apply(self, item: tuple[str, bytes, str | None, int]) -> bool:
        """Carry out one planned write; False when the swap turned out unavailable (nothing changed)."""
        name, data, kept, mode = item
        if kept is None:
            atomic_write_bytes(name, data)
            return True
        write_new_file(kept, data, mode)
        try:
            swapped = exchange(kept, name)
        except BaseException:
            os.unlink(kept)
            raise
        if not swapped:
            os.unlink(kept)  # undo finds no swapped-out inode under this record and skips it
        return swapped

    def _apply_unswapped(self, item: tuple[str, bytes, str | None, int]) -> None:
        """The swap was not available: journal the file the portable way, then replace it."""
        self._swap_ok = False
        name, data = item[0], item[1]
        rel = self._rel(Path(name))
        self._touched.discard(rel)
        self._remember(name, rel, data)
        self._entries.flush()
        atomic_write_bytes(name, data)

    def write_bytes(self, path: Path, data: bytes) -> bool:
        """Write a file (creating it or replacing it); False when it already held these bytes."""
        name = os.path.abspath(path)
        item = self._plan(name, self._rel(Path(name)), data)
        if item is None:
            return False
        self._entries.flush()
        if not self._apply(item):
            self._apply_unswapped(item)
        self.count += 1
        return True

    def write_text(self, path: Path, text: str) -> bool:
        return self.write_bytes(path, text.encode("utf-8"))

    def write_caption(self, path: Path, tags: Iterable[str]) -> bool:
        return self.write_text(path, format_caption(tags))

    def write_many(self, files: Iterable[tuple[Path | str, bytes]], *, workers: int = 2, batch: int = 256) -> int:
        """Write many files (as write_bytes does), `workers` at a time; returns how many changed.

        Every file of a batch is journaled (and flushed) before any of the batch is touched, so a
        kill anywhere still leaves each file old or new and the operation undoable.
        """
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None and workers > 1:
            self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lorakit-journal")
        run = self._pool.map if self._pool is not None else map
        written = 0
        pending: list[tuple[str, bytes, str | None, int]] = []
        pending_rels: set[str] = set()

        def drain() -> None:
            nonlocal written
            if pending:
                self._entries.flush()  # the records of the whole batch reach the file before any write
                for item, done in zip(pending, run(self._apply, pending), strict=True):
                    if not done:
                        self._apply_unswapped(item)
                    written += 1
                    self.count += 1
                pending.clear()
                pending_rels.clear()

        root_prefix = os.path.join(str(self.root), "")
        for path, data in files:
            name = os.path.abspath(path)
            if name.startswith(root_prefix):  # abspath is normalised: no `..` can climb out
                rel = name[len(root_prefix):].replace(os.sep, "/")
            else:
                rel = self._rel(Path(name))
            if rel in pending_rels:
                drain()  # the same file twice: its writes must not race
            item = self._plan(name, rel, data)
            if item is None:
                continue
            pending.append(item)
            pending_rels.add(rel)
            if len(pending) >= batch:
                drain()
        drain()
        return written

    def record_store_rows(self, rel: str, previous: bytes, created: bool) -> None:
        """Journal the tag store's rows an update is about to replace (prep.provenance; flushed
        before the store's transaction commits). Undo gives them back through restore_rows."""
        self._blob_seq += 1
        blob = f"blobs/{self._blob_seq:08d}"
        (self.folder / "blobs").mkdir(exist_ok=True)
        atomic_write_bytes(self.folder / blob, previous)
        self._append({"op": "rows", "path": rel, "blob": blob, "created": bool(created)})
        self._entries.flush()

    def move(self, src: Path, dst: Path) -> None:
        """Move a file (an image to the trash, a rename); undo moves it back."""
        src, dst = Path(src), Path(dst)
        if dst.exists():
            raise JournalError(f"{dst}: already exists; refusing to overwrite it with {src}")
        src_rel, dst_rel = self._rel(src), self._rel(dst)
        self._append({"op": "move", "src": src_rel, "dst": dst_rel})
        self._entries.flush()
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        self.count += 1
        self.provenance.image_renamed(src_rel, dst_rel)  # (a move out of the dataset is no rename)

    def image_renamed(self, src: Path, dst: Path) -> None:
        """`src` is now at `dst` in another form (fix: a conversion): the tag store's rows follow it.
        (`move` tells the store of plain renames itself.)"""
        self.provenance.image_renamed(self._rel(src), self._rel(dst))

    def add(self, src: Path, dst: Path) -> None:
        """Bring a new file into the dataset (a finished download); undo moves it to the trash."""
        src, dst = Path(src), Path(dst)
        if dst.exists() or dst.is_symlink():
            raise JournalError(f"{dst}: already exists; refusing to overwrite it with {src}")
        self._append({"op": "add", "path": self._rel(dst)})
        self._entries.flush()
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        self.count += 1

    def delete(self, path: Path) -> None:
        """Remove a file from the dataset by moving it into the journal (undo puts it back)."""
        self._blob_seq += 1
        self.move(Path(path), self.folder / "deleted" / f"{self._blob_seq:08d}")

    def close(self, state: str = "done") -> None:
        """Finish the entry (an operation that changed nothing leaves none) and release the lock."""
        if self._closed:
            return
        self._closed = True
        try:
            try:  # the watcher writes the tag store through this operation, once
                self.provenance.before_close(self, sorted(self._touched), completed=state == "done")
            except OSError:
                if state == "done":
                    raise
                # already failing (a full disk): the store catches up on the next run (hash mismatch)
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
            try:
                self._entries.close()
            except OSError:
                state = "failed"  # a full disk: the records that reached the file are what undo sees
            if self.records == 0 and self.count == 0:
                shutil.rmtree(self.folder, ignore_errors=True)
                return
            self._write_meta(state, time.time())
        finally:
            if self.lock is not None:
                self.lock.release()

    def __enter__(self) -> Operation:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # An exception still leaves a complete record of what was changed: marked failed, it is
        # undone like any other operation. An OSError becomes one line saying so.
        self.close("done" if exc_type is None else "failed")
        if isinstance(exc, OSError):
            raise PrepError(failure_message(exc, self.root)) from exc
