import json
import os
from pathlib import Path

import pytest

from prep import fsio
from prep import journal_write as journal_module
from prep.errors import JournalError
from prep.journal import Journal

needs_exchange = pytest.mark.skipif(not fsio._load_renameat2(), reason="no renameat2 on this system")


def test_write_and_undo_restores_bytes_and_mtime(tmp_path: Path):
    a = tmp_path / "1_x" / "a.txt"
    a.parent.mkdir()
    a.write_bytes(b"\xef\xbb\xbfold, tags\n")
    os.utime(a, ns=(1_000_000_000, 1_000_000_000))
    created = tmp_path / "1_x" / "new.txt"
    journal = Journal(tmp_path)
    with journal.begin("test edit") as op:
        assert op.write_text(a, "new, tags")
        assert op.write_text(created, "fresh")
        assert not op.write_text(created, "fresh")  # same bytes: no write, no count
    assert a.read_text() == "new, tags"
    assert [h.count for h in journal.history()] == [2]
    info = journal.undo()
    assert info.command == "test edit"
    assert a.read_bytes() == b"\xef\xbb\xbfold, tags\n"
    assert a.stat().st_mtime_ns == 1_000_000_000
    assert not created.exists()
    assert journal.history() == []
    with pytest.raises(JournalError):
        journal.undo()


def test_undo_walks_back(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("v1")
    journal = Journal(tmp_path)
    for version in ("v2", "v3"):
        with journal.begin(f"set {version}") as op:
            op.write_text(f, version)
    journal.undo()
    assert f.read_text() == "v2"
    journal.undo()
    assert f.read_text() == "v1"


def test_move_and_delete_undo(tmp_path: Path):
    img = tmp_path / "1_x" / "a.png"
    img.parent.mkdir()
    img.write_bytes(b"png bytes")
    gone = tmp_path / "1_x" / "b.txt"
    gone.write_bytes(b"caption")
    journal = Journal(tmp_path)
    with journal.begin("trash") as op:
        op.move(img, tmp_path / ".lorakit" / "trash" / "op" / "1_x" / "a.png")
        op.delete(gone)
    assert not img.exists() and not gone.exists()
    journal.undo()
    assert img.read_bytes() == b"png bytes"
    assert gone.read_bytes() == b"caption"
    assert not (tmp_path / ".lorakit" / "trash" / "op").exists()


def test_large_previous_contents_go_to_blobs(tmp_path: Path):
    f = tmp_path / "big.bin"
    data = os.urandom(200_000)
    f.write_bytes(data)
    journal = Journal(tmp_path)
    with journal.begin("big") as op:
        op.write_bytes(f, b"small")
    journal.undo()
    assert f.read_bytes() == data


def test_interrupted_operation_is_undone(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_text("old")
    journal = Journal(tmp_path)
    op = journal.begin("crashed")
    op.write_text(f, "new")
    # no close(): as if the process was killed (which releases its lock); a torn trailing record is ignored too
    op.lock.release()
    with open(op.folder / "entries.jsonl", "a") as fh:
        fh.write('{"op": "write", "pa')
    assert journal.history()[0].state == "running"
    journal.undo()
    assert f.read_text() == "old"


def test_previous_bytes_survive_in_place_edits_after_the_operation(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"original")
    journal = Journal(tmp_path)
    with journal.begin("edit") as op:
        op.write_text(f, "edited")
    with open(f, "r+b") as fh:  # an editor writing in place, not by rename
        fh.write(b"EDITED")
    report = journal.undo()
    assert f.read_bytes() == b"original"
    assert (tmp_path / "a.txt.undo-kept.1").read_bytes() == b"EDITED"  # the user's edit is kept beside
    assert report.kept == [("a.txt", "a.txt.undo-kept.1")]


def test_file_systems_without_hard_links_fall_back_to_copies(tmp_path: Path, monkeypatch):
    def no_links(*_args, **_kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(journal_module, "exchange", lambda _a, _b: False)  # no atomic swap either
    f = tmp_path / "a.txt"
    f.write_bytes(b"original")
    journal = Journal(tmp_path)
    with journal.begin("edit") as op:
        op.write_many([(f, b"edited")])
    assert f.read_bytes() == b"edited"
    journal.undo()
    assert f.read_bytes() == b"original"


def _records(op_folder: Path) -> list[dict]:
    return [json.loads(line) for line in (op_folder / "entries.jsonl").read_text().splitlines()]


@needs_exchange
def test_exchange_swaps_two_paths(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    ino_a = a.stat().st_ino
    assert fsio.exchange(a, b)
    assert (a.read_bytes(), b.read_bytes()) == (b"B", b"A")
    assert b.stat().st_ino == ino_a
    with pytest.raises(FileNotFoundError):
        fsio.exchange(a, tmp_path / "missing")


@needs_exchange
def test_replaced_file_is_swapped_into_the_journal_whole(tmp_path: Path):
    f = tmp_path / "1_x" / "a.txt"
    f.parent.mkdir()
    f.write_bytes(b"old, tags")
    os.chmod(f, 0o640)
    os.utime(f, ns=(2_000_000_000, 2_000_000_000))
    old_ino = f.stat().st_ino
    journal = Journal(tmp_path)
    with journal.begin("edit") as op:
        assert op.write_many([(f, b"new, tags"), (tmp_path / "1_x" / "b.txt", b"created")]) == 2
    assert f.read_bytes() == b"new, tags"
    assert f.stat().st_mode & 0o777 == 0o640  # the new file keeps the caption's mode
    swap, created = _records(op.folder)
    assert swap["ino"] == old_ino and "swap" in swap and created["before"] is None
    kept = op.folder / swap["swap"]
    assert kept.stat().st_ino == old_ino and kept.read_bytes() == b"old, tags"  # the old inode, not a copy
    journal.undo()
    assert f.read_bytes() == b"old, tags"
    st = f.stat()
    assert (st.st_ino, st.st_mode & 0o777, st.st_mtime_ns) == (old_ino, 0o640, 2_000_000_000)
    assert not (tmp_path / "1_x" / "b.txt").exists()
    assert kept.read_bytes() == b"new, tags"  # undo swapped back: the undone version stays in the journal


@needs_exchange
def test_undo_of_a_swap_puts_back_a_caption_deleted_since(tmp_path: Path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"old")
    journal = Journal(tmp_path)
    with journal.begin("edit") as op:
        op.write_bytes(f, b"new")
    f.unlink()
    journal.undo()
    assert f.read_bytes() == b"old"


@needs_exchange
def test_undo_of_a_swap_that_never_happened_leaves_the_file(tmp_path: Path):
    """Killed after the new file was made in the journal but before the swap: undo keeps the file."""
    f = tmp_path / "a.txt"
    f.write_bytes(b"old")
    journal = Journal(tmp_path)
    op = journal.begin("killed")
    item = op._plan(str(f), "a.txt", b"new")
    op._entries.flush()
    kept = Path(item[2])
    fsio.write_new_file(kept, b"new")  # made, then the process was killed before the swap
    op.lock.release()
    assert kept.read_bytes() == b"new" and f.read_bytes() == b"old"
    assert journal.history()[0].state == "running"
    journal.undo()
    assert f.read_bytes() == b"old"
    assert not kept.exists()


def test_refused_swap_falls_back_to_links(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(journal_module, "exchange", lambda _a, _b: False)  # e.g. NFS, or another OS
    files = [tmp_path / f"{i}.txt" for i in range(5)]
    for i, f in enumerate(files):
        f.write_bytes(b"old %d" % i)
    journal = Journal(tmp_path)
    with journal.begin("edit") as op:
        assert op.write_many([(f, b"new") for f in files]) == 5
        assert op.write_bytes(files[0], b"newer")  # the same file twice in one operation
    assert [f.read_bytes() for f in files] == [b"newer"] + [b"new"] * 4
    records = _records(op.folder)
    assert sum("link" in r for r in records) == 5  # each file journaled again, the portable way
    assert not any((op.folder / r["swap"]).exists() for r in records if "swap" in r)  # refused: removed
    journal.undo()
    assert [f.read_bytes() for f in files] == [b"old %d" % i for i in range(5)]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinked_caption_is_restored_as_a_symlink(tmp_path: Path):
    (tmp_path / "real.txt").write_bytes(b"old")
    link = tmp_path / "1_x" / "a.txt"
    link.parent.mkdir()
    link.symlink_to(Path("..") / "real.txt")
    journal = Journal(tmp_path)
    with journal.begin("edit") as op:
        assert op.write_many([(link, b"new")]) == 1
    assert link.read_bytes() == b"new"
    assert not link.is_symlink() and (tmp_path / "real.txt").read_bytes() == b"old"
    journal.undo()
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "real.txt")
    assert link.read_bytes() == b"old"


def test_undo_reads_journals_of_earlier_versions(tmp_path: Path):
    """Operations recorded with hard links (lorakit before swaps) still undo."""
    f = tmp_path / "a.txt"
    f.write_bytes(b"old")
    folder = tmp_path / ".lorakit" / "journal" / "000001"
    (folder / "links").mkdir(parents=True)
    os.link(f, folder / "links" / "00000001")
    fsio.atomic_write_bytes(f, b"new")
    (folder / "entries.jsonl").write_text(json.dumps({"op": "write", "path": "a.txt", "link": "links/00000001"}) + "\n")
    (folder / "meta.json").write_text(json.dumps({"id": "000001", "command": "old", "started": 1.0,
                                                  "finished": 2.0, "count": 1, "state": "done"}))
    Journal(tmp_path).undo()
    assert f.read_bytes() == b"old"
