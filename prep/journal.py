"""The undo journal: every writing operation records the previous bytes of what it changes.

Layout inside a dataset: `.lorakit/journal/<id>/` holding `meta.json` (command, times, state,
count) and `entries.jsonl`, one record per file, appended and flushed *before* the file is
touched. A kill at any point leaves each file wholly old or wholly new (writes are atomic), and
`undo` restores the old state from the records, whether or not the operation finished.

The atomic swap (renameat2 RENAME_EXCHANGE through ctypes, `fsio.exchange`) is kept because it
pays: `tags remove` on 100,000 captions went from 3.22-3.49x to 1.98x of a bare read loop
(benchmarks/RESULTS.md, captions), the old inode staying in the journal with no copy or link.
"""

from __future__ import annotations

import base64
import errno
import json
import os
import shutil
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prep.captions import format_caption
from prep.dataset import LORAKIT_DIR
from prep.errors import JournalError
from prep.fsio import READ_FLAGS, atomic_write_bytes, exchange, write_new_file
from prep.provenance import ProvenanceWatcher

JOURNAL_DIR = "journal"
_INLINE_LIMIT = 64 * 1024  # larger previous contents go to a blob file, not the JSON line
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _read_all(fd: int, size: int) -> bytes:
    """Everything left in fd; `size` is its expected length (a file that grew is still read to its end)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:
        return data
    parts = [data]
    while chunk := os.read(fd, 1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def journal_root(dataset_root: Path) -> Path:
    return Path(dataset_root) / LORAKIT_DIR / JOURNAL_DIR


@dataclass(frozen=True)
class OperationInfo:
    """One journaled operation as `lorakit history` shows it."""

    id: str
    command: str
    started: float
    finished: float | None
    count: int
    state: str  # "running" (or interrupted), "done", "undone"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "count": self.count,
            "state": self.state,
        }


class Operation:
    """An open journal entry; every change to a user file goes through one of its methods."""

    def __init__(self, root: Path, folder: Path, command: str) -> None:
        self.root = root
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
        atomic_write_bytes(self.folder / "meta.json", json.dumps(meta).encode())

    def _append(self, record: dict[str, object]) -> None:
        """Add a record; the caller flushes before it touches the file the record is about."""
        self._entries.write(json.dumps(record, ensure_ascii=False) + "\n")

    def _remember(self, path: Path | str, rel: str, current: bytes | None | bool = False) -> None:
        """Record the bytes `path` holds now (once per operation), before it is changed.

        `current`: those bytes when the caller has just read them (None: no such file).
        """
        if rel in self._touched:
            return
        self._touched.add(rel)
        record: dict[str, object] = {"op": "write", "path": rel}
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
            data = current if isinstance(current, bytes) else Path(path).read_bytes()
        except FileNotFoundError:
            record["before"] = None
        else:
            record["mtime_ns"] = st.st_mtime_ns
            if len(data) <= _INLINE_LIMIT:
                record["before"] = base64.b64encode(data).decode("ascii")
            else:
                self._blob_seq += 1
                blob = f"blobs/{self._blob_seq:08d}"
                (self.folder / "blobs").mkdir(exist_ok=True)
                atomic_write_bytes(self.folder / blob, data)
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
                self._append({"op": "write", "path": rel, "symlink": os.readlink(name)})
            return (name, data, None, 0)
        else:
            try:
                st = os.fstat(fd)
                current = _read_all(fd, st.st_size)
            finally:
                os.close(fd)
        if current == data:
            return None
        self.provenance.before_change(rel, current)
        if st is None or rel in self._touched or not self._can_swap(st):
            self._remember(name, rel, current)
            return (name, data, None, 0)
        self._touched.add(rel)
        self._blob_seq += 1
        kept = f"links/{self._blob_seq:08d}"
        if not self._links_dir:
            (self.folder / "links").mkdir(exist_ok=True)
            self._links_dir = True
        self._append({"op": "write", "path": rel, "swap": kept, "ino": st.st_ino, "mtime_ns": st.st_mtime_ns})
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
        self._remember(name, rel)
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

    def move(self, src: Path, dst: Path) -> None:
        """Move a file (an image to the trash, a rename); undo moves it back."""
        src, dst = Path(src), Path(dst)
        if dst.exists():
            raise JournalError(f"{dst}: already exists; refusing to overwrite it with {src}")
        self._append({"op": "move", "src": self._rel(src), "dst": self._rel(dst)})
        self._entries.flush()
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        self.count += 1

    def delete(self, path: Path) -> None:
        """Remove a file from the dataset by moving it into the journal (undo puts it back)."""
        self._blob_seq += 1
        self.move(Path(path), self.folder / "deleted" / f"{self._blob_seq:08d}")

    def close(self, state: str = "done") -> None:
        if not self._entries.closed:  # the watcher writes the tag store through this operation, once
            self.provenance.before_close(self, sorted(self._touched))
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._entries.close()
        self._write_meta(state, time.time())

    def __enter__(self) -> Operation:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # An exception still leaves a complete record of what was changed: mark it done so that
        # undo treats it like any other operation.
        self.close("done" if exc_type is None else "failed")


class Journal:
    """The undo journal of one dataset (or bare folder)."""

    def __init__(self, dataset_root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.abspath(dataset_root))
        self.folder = journal_root(self.root)

    def begin(self, command: str) -> Operation:
        """Start a journaled operation; use it as a context manager."""
        self.folder.mkdir(parents=True, exist_ok=True)
        existing = [int(p.name) for p in self._op_folders()]
        seq = max(existing, default=0) + 1
        while True:
            folder = self.folder / f"{seq:06d}"
            try:
                folder.mkdir()
                break
            except FileExistsError:
                seq += 1
        return Operation(self.root, folder, command)

    def _op_folders(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if p.is_dir() and p.name.isdigit())

    def _info(self, folder: Path) -> OperationInfo:
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        count = meta.get("count", 0)
        state = meta.get("state", "running")
        if state == "running":
            # Killed before it finished: the entries say how many files it got to.
            count = sum(1 for _ in _read_entries(folder))
        return OperationInfo(
            id=folder.name,
            command=str(meta.get("command", "?")),
            started=float(meta.get("started", folder.stat().st_mtime)),
            finished=meta.get("finished"),
            count=int(count),
            state=str(state),
        )

    def history(self, include_undone: bool = False) -> list[OperationInfo]:
        """Operations, oldest first."""
        infos = [self._info(f) for f in self._op_folders()]
        return [i for i in infos if include_undone or i.state != "undone"]

    def undo(self) -> OperationInfo:
        """Restore the files of the last operation not yet undone; raise JournalError if none."""
        candidates = self.history()
        if not candidates:
            raise JournalError(f"{self.root}: nothing to undo (no journaled operation)")
        info = candidates[-1]
        folder = self.folder / info.id
        for record in reversed(list(_read_entries(folder))):
            self._revert(folder, record)
        meta = info.to_dict() | {"state": "undone", "undone_at": time.time()}
        atomic_write_bytes(folder / "meta.json", json.dumps(meta).encode())
        return info

    def _revert(self, folder: Path, record: dict[str, object]) -> None:
        if record.get("op") == "write":
            path = self.root / str(record["path"])
            if "swap" in record:
                self._revert_swap(path, folder / str(record["swap"]), record)
                return
            if "symlink" in record:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_name(f".{path.name}.{os.getpid()}.lorakit-tmp")
                if tmp.is_symlink():
                    tmp.unlink()
                os.symlink(str(record["symlink"]), tmp)
                os.replace(tmp, path)
                return
            if "link" in record:
                kept = folder / str(record["link"])
                if not kept.exists():
                    raise JournalError(f"{kept}: the journal's copy of {path} is missing; cannot undo")
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(kept, path)  # the previous inode, bytes, mode and mtime, back in one rename
                return
            if "blob" in record:
                data: bytes | None = (folder / str(record["blob"])).read_bytes()
            elif record.get("before") is None:
                data = None
            else:
                data = base64.b64decode(str(record["before"]))
            if data is None:
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, data)
            if "mtime_ns" in record:
                mtime = int(record["mtime_ns"])  # type: ignore[arg-type]
                os.utime(path, ns=(mtime, mtime))
        elif record.get("op") == "move":
            src = self.root / str(record["src"])
            dst = self.root / str(record["dst"])
            if dst.exists() or dst.is_symlink():
                if src.exists():
                    raise JournalError(f"{src}: exists again; move it away, then run undo again")
                src.parent.mkdir(parents=True, exist_ok=True)
                os.rename(dst, src)
                _remove_empty_parents(dst.parent, stop=self.root)
        else:
            raise JournalError(f"{folder}: unknown journal record {record!r}")

    @staticmethod
    def _revert_swap(path: Path, kept: Path, record: dict[str, object]) -> None:
        """Swap the old inode back, if the operation got as far as swapping it out."""
        try:
            kept_st = os.stat(kept)
        except FileNotFoundError:
            return  # stopped before the new file was made, or the swap was refused: path is untouched
        path.parent.mkdir(parents=True, exist_ok=True)
        # The old inode stayed linked (at path, or here after the swap) throughout, so no other file
        # on that file system can have its number: the same number here means the swap happened.
        if kept_st.st_ino == record.get("ino") and kept_st.st_dev == os.stat(path.parent).st_dev:
            # The previous inode, bytes, mode and mtime, back in one rename. Swapping (where the
            # file is still there) keeps the undone version in the journal instead of freeing its
            # inode: on ext4 without a journal, thousands of freed inodes make every file created
            # in the next minute slow (the allocator skips recently deleted inodes one by one), and
            # an undo is often followed at once by another edit.
            try:
                swapped = exchange(kept, path)
            except FileNotFoundError:
                swapped = False  # the file was deleted since: just put the old one back
            if not swapped:
                os.replace(kept, path)
        else:
            os.unlink(kept)  # the new bytes, never swapped in: path still holds the old file

    def prune(self, keep: int, *, empty_trash: bool = False) -> tuple[int, int]:
        """Forget all but the newest `keep` operations (`lorakit history --prune KEEP`): their records
        and the previous caption versions they hold go, so they can no longer be undone.

        An operation holding a user's image (dedupe's or fix's `.lorakit/trash/<id>/`, a file the
        journal deleted) is kept unless `empty_trash`, which deletes those images too.
        Returns (operations pruned, operations kept because they hold images).
        """
        if keep < 0:
            raise JournalError(f"--prune {keep}: give how many operations to keep (0 or more)")
        folders = self._op_folders()
        pruned = held = 0
        for folder in folders[: max(0, len(folders) - keep)]:
            trash = self.root / LORAKIT_DIR / "trash" / folder.name
            holds_images = trash.exists() or any((folder / "deleted").glob("*"))
            if holds_images and not empty_trash:
                held += 1
                continue
            if trash.exists():
                shutil.rmtree(trash)
            shutil.rmtree(folder)
            pruned += 1
        return pruned, held


def _read_entries(folder: Path):
    try:
        fh = open(folder / "entries.jsonl", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    except FileNotFoundError:
        return
    with fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn last line: the change it describes was never started
            try:
                yield json.loads(line)
            except ValueError:
                break


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    """Tidy trash folders emptied by an undo (never the dataset root or anything outside it)."""
    stop = stop.resolve()
    current = folder.resolve()
    while current != stop and stop in current.parents and LORAKIT_DIR in current.relative_to(stop).parts:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent
