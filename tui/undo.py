"""Undo of a dataset's last operation, with the stores that must stay in step with the files.

One function for the CLI (`lorakit undo`) and the TUI: the journal restores the files; the booru
archive forgets the downloads the undo moved to the trash, so a new scrape fetches them again.
"""

from __future__ import annotations

from pathlib import Path

from prep.journal import Journal, UndoReport


def undo_dataset(dataset: Path, *, force: bool = False) -> UndoReport:
    report = Journal(dataset).undo(force=force)
    if report.trashed:
        from booru.archive import ARCHIVE_NAME, Archive
        from prep.dataset import LORAKIT_DIR

        if (Path(dataset) / LORAKIT_DIR / ARCHIVE_NAME).is_file():
            archive = Archive(Path(dataset), create=False)
            try:
                archive.forget_files([path for path, _trash in report.trashed])
            finally:
                archive.close()
    return report
