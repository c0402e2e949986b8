import os
from pathlib import Path

import pytest

from prep.errors import JournalError
from prep.journal import Journal


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
    # no close(): as if the process was killed; a torn trailing record is ignored too
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
    journal.undo()
    assert f.read_bytes() == b"original"


def test_file_systems_without_hard_links_fall_back_to_copies(tmp_path: Path, monkeypatch):
    def no_links(*_args, **_kwargs):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    f = tmp_path / "a.txt"
    f.write_bytes(b"original")
    journal = Journal(tmp_path)
    with journal.begin("edit") as op:
        op.write_many([(f, b"edited")])
    assert f.read_bytes() == b"edited"
    journal.undo()
    assert f.read_bytes() == b"original"
