"""The undo journal: every writing operation records the previous bytes of what it changes.

Layout inside a dataset: `.lorakit/journal/<id>/` holding `meta.json` (command, times, state,
count) and `entries.jsonl`, one record per file, appended and flushed *before* the file is
touched. A kill at any point leaves each file wholly old or wholly new (writes are atomic), and
`undo` restores the old state from the records, whether or not the operation finished.

The atomic swap (renameat2 RENAME_EXCHANGE through ctypes, `fsio.exchange`) is kept because it
pays: the old inode stays in the journal with no copy or link, and ext4 does not flush a swapped-in
file at once as it does one renamed over another. benchmarks/machinery.py (ext4, 2 cores, loaded:
load average 3.6-5.2; swap vs LORAKIT_NO_SWAP=1 interleaved in one run): one journaled rewrite of
100 / 1,000 / 5,000 / 20,000 captions is 1.2x / 2.1x / 4.7x / 2.9x faster with the swap, and
undoing it 4.0x / 5.3x / 7.1x / 6.2x (20,000: rewrite 24 s against 70 s, undo 17 s against 103 s).

One operation (or undo) at a time holds the dataset's lock (prep/journal_lock.py); the writing
side is prep/journal_write.py (Operation), the undo side prep/journal_undo.py.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from prep.dataset import LORAKIT_DIR
from prep.errors import JournalError
from prep.fsio import atomic_write_bytes
from prep.journal_lock import JournalLock
from prep.journal_undo import Reverter, UndoReport, check_records, read_entries
from prep.journal_write import Operation, failure_message

__all__ = ["Journal", "Operation", "OperationInfo", "UndoReport", "journal_root"]

JOURNAL_DIR = "journal"


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
    state: str  # "running" (or interrupted), "done", "failed", "undone"

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "count": self.count,
            "state": self.state,
        }


class Journal:
    """The undo journal of one dataset (or bare folder)."""

    def __init__(self, dataset_root: str | os.PathLike[str]) -> None:
        self.root = Path(os.path.abspath(dataset_root))
        self.folder = journal_root(self.root)

    def _check_folder(self) -> None:
        """The journal must lie inside the dataset (a shared dataset's `.lorakit` may be a symlink out)."""
        root_real = os.path.realpath(self.root)
        for path in (self.folder.parent, self.folder):
            if os.path.lexists(path):
                real = os.path.realpath(path)
                if os.path.islink(path) or not real.startswith(root_real + os.sep):
                    raise JournalError(f"{path}: is a symlink or leads outside the dataset {self.root}; "
                                       "refusing to use it as the undo journal (move it away)")

    def lock(self, command: str) -> JournalLock:
        """The dataset's one-writer lock (held by every operation and undo)."""
        self._check_folder()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._check_folder()
        return JournalLock(self.folder, command, self.root).acquire()

    def begin(self, command: str) -> Operation:
        """Start a journaled operation (holding the dataset's lock until it closes); use it as a context manager."""
        try:
            lock = self.lock(command)
        except OSError as exc:
            raise JournalError(failure_message(exc, self.root)) from exc
        try:
            existing = [int(p.name) for p in self._op_folders()]
            seq = max(existing, default=0) + 1
            while True:
                folder = self.folder / f"{seq:06d}"
                try:
                    folder.mkdir()
                    break
                except FileExistsError:
                    seq += 1
            try:
                return Operation(self.root, folder, command, lock)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        except OSError as exc:
            lock.release()
            raise JournalError(failure_message(exc, self.root)) from exc
        except BaseException:
            lock.release()
            raise

    def _op_folders(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir()
                      if p.name.isdigit() and p.is_dir() and not p.is_symlink())

    def _info(self, folder: Path) -> OperationInfo:
        meta_path = folder / "meta.json"
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            meta = {}  # killed between making the folder and writing meta.json
        except (OSError, ValueError) as exc:
            raise JournalError(f"{meta_path}: cannot read the journal entry ({exc}); move {folder} out of "
                               "the dataset to skip it") from None
        try:
            if not isinstance(meta, dict):
                raise TypeError("not an object")
            state = str(meta.get("state", "running"))
            count = int(meta.get("count", 0))
            if state == "running":
                # Killed before it finished: the entries say how many files it got to.
                count = sum(1 for r in read_entries(folder) if r.get("op") != "left")
            finished = meta.get("finished")
            return OperationInfo(
                id=folder.name,
                command=str(meta.get("command", "?")),
                started=float(meta.get("started", folder.stat().st_mtime)),
                finished=None if finished is None else float(finished),
                count=count,
                state=state,
            )
        except (TypeError, ValueError) as exc:
            raise JournalError(f"{meta_path}: not a journal entry ({exc}); move {folder} out of the "
                               "dataset to skip it") from None

    def history(self, include_undone: bool = False) -> list[OperationInfo]:
        """Operations, oldest first."""
        infos = [self._info(f) for f in self._op_folders()]
        return [i for i in infos if include_undone or i.state != "undone"]

    def undo(self, *, force: bool = False) -> UndoReport:
        """Restore the files of the last operation not yet undone; raise JournalError if none.

        Every record is checked before anything is touched. A file the user changed after the
        operation is kept beside as `<name>.undo-kept.<n>` (see UndoReport.kept) unless `force`.
        """
        try:
            lock = self.lock("undo")
        except OSError as exc:
            raise JournalError(failure_message(exc, self.root)) from exc
        with lock:
            candidates = self.history()
            if not candidates:
                raise JournalError(f"{self.root}: nothing to undo (no journaled operation)")
            info = candidates[-1]
            folder = self.folder / info.id
            records = read_entries(folder)
            check_records(self.root, folder, records)
            report = UndoReport(info)
            try:
                Reverter(self.root, folder, records, report, force).run()
                meta = info.to_dict() | {"state": "undone", "undone_at": time.time()}
                atomic_write_bytes(folder / "meta.json", json.dumps(meta).encode())
            except OSError as exc:
                raise JournalError(failure_message(exc, self.root)) from exc
            return report

    def prune(self, keep: int, *, empty_trash: bool = False) -> tuple[int, int]:
        """Forget all but the newest `keep` operations (see _prune), holding the dataset's lock."""
        with self.lock("history --prune"):
            return self._prune(keep, empty_trash)

    def _prune(self, keep: int, empty_trash: bool) -> tuple[int, int]:
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
