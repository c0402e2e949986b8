"""The undo side of the journal: reading an operation's records and reverting them.

A journal may come with a dataset someone else shared, so its records are untrusted: every
record is checked (well-formed, every path inside the dataset, no symlinked parent leading out)
before anything is touched. Undo never destroys what it did not make: a file that no longer
holds what the operation left is kept beside as `<name>.undo-kept.<n>` (unless `force`). Each
step is recorded in `undo-progress` before it is taken, so a killed undo can simply be run again.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from prep.dataset import LORAKIT_DIR
from prep.errors import JournalError
from prep.fsio import atomic_write_bytes, exchange
from prep.journal_write import content_id
from prep.provenance import STORE_REL, restore_rows

TRASH_DIR = "trash"
PROGRESS_NAME = "undo-progress"
_JOURNAL_FILE = re.compile(r"^(links|blobs)/\d{8}$")
_OPS = {"write", "left", "move", "add", "rows"}


def read_entries(folder: Path) -> list[dict]:
    """The records of one operation; a torn last line (killed mid-append) is dropped, damage is an error."""
    try:
        fh = open(folder / "entries.jsonl", encoding="utf-8", errors="surrogateescape")  # noqa: SIM115
    except FileNotFoundError:
        return []
    records = []
    with fh:
        for number, line in enumerate(fh, 1):
            if not line.endswith("\n"):
                break  # torn last line: the change it describes was never started
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if not isinstance(record, dict):
                raise JournalError(f"{folder / 'entries.jsonl'}: line {number} is not a journal record; "
                                   f"the journal is damaged, move {folder} out of the dataset to skip it")
            records.append(record)
    return records


def _damaged(folder: Path, record: object, why: str) -> JournalError:
    text = json.dumps(record, ensure_ascii=True)[:200]
    return JournalError(f"{folder}: refusing a journal record that {why}: {text}; nothing was changed")


def _inside(root_real: str, root: Path, rel: object, folder: Path, record: object) -> Path:
    """`root/rel`, refused unless rel is a plain relative path whose parent resolves inside the dataset."""
    if not isinstance(rel, str) or not rel or "\x00" in rel or "\\" in rel:
        raise _damaged(folder, record, "has a malformed path")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or os.path.isabs(rel) or ".." in pure.parts or not pure.parts:
        raise _damaged(folder, record, "names a path outside the dataset")
    path = root / Path(*pure.parts)
    parent = os.path.realpath(path.parent)
    if parent != root_real and not parent.startswith(root_real + os.sep):
        raise _damaged(folder, record, "names a path whose folder leads outside the dataset")
    return path


def check_records(root: Path, folder: Path, records: list[dict]) -> None:
    """Refuse the whole operation (JournalError, nothing touched) if any record is malformed or escapes."""
    root_real = os.path.realpath(root)
    for record in records:
        op = record.get("op")
        if op not in _OPS:
            raise _damaged(folder, record, "has an unknown kind")
        for key in ("src", "dst") if op == "move" else ("path",):
            _inside(root_real, root, record.get(key), folder, record)
        if op == "rows" and (record.get("path") != STORE_REL or "blob" not in record
                             or not isinstance(record.get("created", False), bool)):
            raise _damaged(folder, record, "is a tag-store record for another file or without its rows")
        for key in ("swap", "link", "blob"):
            if key in record and not (isinstance(record[key], str) and _JOURNAL_FILE.match(record[key])):
                raise _damaged(folder, record, f"names a journal file ({key}) outside the operation's folder")
        for key in ("ino", "mtime_ns", "size"):
            if key in record and (not isinstance(record[key], int) or isinstance(record[key], bool)):
                raise _damaged(folder, record, f"has a malformed {key}")
        for key in ("hash", "symlink"):
            if key in record and not isinstance(record[key], str):
                raise _damaged(folder, record, f"has a malformed {key}")
        if "before" in record and record["before"] is not None:
            try:
                base64.b64decode(str(record["before"]), validate=True)
            except ValueError:
                raise _damaged(folder, record, "has malformed previous bytes") from None


@dataclass
class UndoReport:
    """What `undo` did: the operation, the user's later versions it kept, the downloads it trashed."""

    info: object  # prep.journal.OperationInfo
    kept: list[tuple[str, str]] = field(default_factory=list)  # (dataset path, where the user's version is)
    trashed: list[tuple[str, str]] = field(default_factory=list)  # (dataset path, trash path)

    @property
    def id(self) -> str:
        return self.info.id  # type: ignore[attr-defined]

    @property
    def command(self) -> str:
        return self.info.command  # type: ignore[attr-defined]

    @property
    def count(self) -> int:
        return self.info.count  # type: ignore[attr-defined]

    @property
    def state(self) -> str:
        return self.info.state  # type: ignore[attr-defined]

    def to_dict(self) -> dict[str, object]:
        return self.info.to_dict() | {  # type: ignore[attr-defined]
            "kept": [{"path": p, "kept_as": k} for p, k in self.kept],
            "trashed": [{"path": p, "trash": t} for p, t in self.trashed],
        }


class Reverter:
    """Reverts one operation's records, newest first."""

    def __init__(self, root: Path, folder: Path, records: list[dict], report: UndoReport, force: bool) -> None:
        self.root, self.folder, self.records = root, folder, records
        self.report, self.force = report, force
        self.progress_path = folder / PROGRESS_NAME
        self.started = _read_progress(self.progress_path)
        # What the operation left at each path (its last write or "left" record says), and which
        # record of the path is reverted first (its last write): only that one compares.
        self.after: dict[str, tuple[int, str]] = {}
        self.final_write: dict[str, int] = {}
        for index, record in enumerate(records):
            if record["op"] in ("write", "left"):
                if "hash" in record and "size" in record:
                    self.after[record["path"]] = (record["size"], record["hash"])
                else:
                    self.after.pop(record["path"], None)
            if record["op"] == "write":
                self.final_write[record["path"]] = index

    def run(self) -> None:
        with open(self.progress_path, "a", encoding="ascii") as progress:
            for index in range(len(self.records) - 1, -1, -1):
                record = self.records[index]
                if record["op"] == "left":
                    continue
                if index not in self.started:
                    progress.write(f"{index}\n")
                    progress.flush()  # before the step: a killed undo knows which steps it began
                self._revert(index, record)

    # -- checks --------------------------------------------------------------------------------------
    def _path(self, rel: str) -> Path:
        return self.root / Path(*PurePosixPath(rel).parts)

    def _keep_if_changed(self, rel: str, path: Path, current: bytes | None = None) -> None:
        """If path no longer holds what the operation left there, move the user's version aside."""
        after = self.after.get(rel)
        if after is None:
            return  # recorded by an older lorakit: nothing to compare with
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not os.path.islink(path) and os.path.isfile(path) and st.st_size == after[0]:
            data = current if current is not None else path.read_bytes()
            if content_id(data) == after[1]:
                return
        if not self.force:
            self._keep_aside(path)

    # -- the records ---------------------------------------------------------------------------------
    def _revert(self, index: int, record: dict) -> None:
        op = record["op"]
        if op == "write":
            self._revert_write(index, record)
        elif op == "move":
            self._revert_move(record)
        elif op == "add":
            self._revert_add(record)
        elif op == "rows":
            restore_rows(self.root, (self.folder / record["blob"]).read_bytes(), record.get("created", False))

    def _revert_write(self, index: int, record: dict) -> None:
        path = self._path(record["path"])
        rel = record["path"]
        check = self.final_write.get(rel) == index  # reverted first: the file holds what the operation left
        if "swap" in record:
            self._revert_swap(rel, path, self.folder / record["swap"], record, check)
            return
        if "symlink" in record:
            target = record["symlink"]
            if path.is_symlink() and os.readlink(path) == target:
                return  # put back already (an undo run before this one)
            if check:
                self._keep_if_changed(rel, path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.lorakit-tmp")
            if tmp.is_symlink():
                tmp.unlink()
            os.symlink(target, tmp)
            os.replace(tmp, path)
            return
        if "link" in record:
            kept = self.folder / record["link"]
            try:
                kept_ino = os.stat(kept).st_ino
            except FileNotFoundError:
                if index in self.started:
                    return  # an earlier, killed undo already put it back (one rename)
                raise JournalError(f"{kept}: the journal's copy of {path} is missing; cannot undo") from None
            try:
                if os.lstat(path).st_ino == kept_ino:
                    return  # the operation stopped before replacing it
            except FileNotFoundError:
                pass
            if check:
                self._keep_if_changed(rel, path)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(kept, path)  # the previous inode, bytes, mode and mtime, back in one rename
            return
        if "blob" in record:
            data: bytes | None = (self.folder / record["blob"]).read_bytes()
        elif record.get("before") is None:
            data = None
        else:
            data = base64.b64decode(str(record["before"]))
        try:
            current: bytes | None = path.read_bytes() if not path.is_symlink() else None
        except (FileNotFoundError, IsADirectoryError):
            current = None
        if data is None:
            if not (path.exists() or path.is_symlink()):
                return
            if check:
                self._keep_if_changed(rel, path, current)
            try:
                path.unlink()
            except FileNotFoundError:
                pass  # kept aside as the user's version
            return
        if current == data:
            return  # holds the previous bytes already
        if check:
            self._keep_if_changed(rel, path, current)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
        if "mtime_ns" in record:
            os.utime(path, ns=(record["mtime_ns"], record["mtime_ns"]))

    def _revert_swap(self, rel: str, path: Path, kept: Path, record: dict, check: bool) -> None:
        """Swap the old inode back, if the operation got as far as swapping it out."""
        try:
            kept_st = os.stat(kept)
        except FileNotFoundError:
            return  # stopped before the new file was made, or the swap was refused: path is untouched
        path.parent.mkdir(parents=True, exist_ok=True)
        # The old inode stayed linked (at path, or here after the swap) throughout, so no other file
        # on that file system can have its number: the same number here means the swap happened.
        if kept_st.st_ino == record.get("ino") and kept_st.st_dev == os.stat(path.parent).st_dev:
            if check:
                self._keep_if_changed(rel, path)
            # The previous inode, bytes, mode and mtime, back in one rename. Swapping (where the
            # file is still there) keeps the undone version in the journal instead of freeing its
            # inode: on ext4 without a journal, thousands of freed inodes make every file created
            # in the next minute slow (the allocator skips recently deleted inodes one by one), and
            # an undo is often followed at once by another edit.
            try:
                swapped = exchange(kept, path)
            except FileNotFoundError:
                swapped = False  # the file was deleted (or kept aside) since: just put the old one back
            if not swapped:
                os.replace(kept, path)
        else:
            os.unlink(kept)  # the new bytes, never swapped in (or swapped back): path holds the old file

    def _revert_move(self, record: dict) -> None:
        src, dst = self._path(record["src"]), self._path(record["dst"])
        if not (dst.exists() or dst.is_symlink()):
            return  # moved back already
        if (src.exists() or src.is_symlink()) and not self.force:
            self._keep_aside(src)  # made since, at the place the file moves back to
        src.parent.mkdir(parents=True, exist_ok=True)
        os.replace(dst, src)
        remove_empty_parents(dst.parent, stop=self.root)

    def _keep_aside(self, path: Path) -> None:
        number = 1
        while (aside := path.with_name(f"{path.name}.undo-kept.{number}")).exists() or aside.is_symlink():
            number += 1
        os.rename(path, aside)
        self.report.kept.append((_rel(path, self.root), _rel(aside, self.root)))

    def _revert_add(self, record: dict) -> None:
        """A file the operation brought in (a download) goes to the dataset's trash, never away."""
        path = self._path(record["path"])
        if not (path.exists() or path.is_symlink()):
            return  # trashed already, or removed by the user
        trash = self.root / LORAKIT_DIR / TRASH_DIR / self.folder.name / Path(*PurePosixPath(record["path"]).parts)
        trash.parent.mkdir(parents=True, exist_ok=True)
        number = 1
        target = trash
        while target.exists() or target.is_symlink():
            target = trash.with_name(f"{trash.name}.{number}")
            number += 1
        os.rename(path, target)
        self.report.trashed.append((record["path"], _rel(target, self.root)))


def _rel(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _read_progress(path: Path) -> set[int]:
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return set()
    return {int(line) for line in text.split("\n") if line.strip().isdigit()}


def remove_empty_parents(folder: Path, stop: Path) -> None:
    """Tidy trash folders emptied by an undo (never the dataset root or anything outside it)."""
    stop = stop.resolve()
    current = folder.resolve()
    while current != stop and stop in current.parents and LORAKIT_DIR in current.relative_to(stop).parts:
        try:
            current.rmdir()
        except OSError:
            return
        current = current.parent
