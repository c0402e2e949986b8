"""The undo journal under attack and accident (issue 14, items 1-3, 5-7): crafted journals stay
inside the dataset, one writer at a time, undo keeps what the user changed since, a killed undo on
the no-swap path runs again, empty operations leave no entry, a full disk is one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prep.journal import Journal

REPO = Path(__file__).resolve().parents[2]


def _crafted(root: Path, records: list[dict], meta: dict | None = None) -> Path:
    folder = root / ".lorakit" / "journal" / "000001"
    folder.mkdir(parents=True)
    (folder / "entries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "meta.json").write_text(json.dumps(meta or {"id": "000001", "command": "tags add x",
                                                          "started": 1.0, "finished": 2.0, "count": 1,
                                                          "state": "done"}))
    return folder


def _one_line_error(result) -> str:
    assert result.code == 1, (result.out, result.err)
    assert "Traceback" not in result.err
    assert result.err.count("\n") == 1, result.err
    return result.err


# -- 1. confinement --------------------------------------------------------------------------------
@pytest.mark.parametrize("record", [
    {"op": "write", "path": "../victim/notes.txt", "before": None},  # undo would delete it
    {"op": "write", "path": "{abs}", "before": None},
    {"op": "write", "path": "../victim/notes.txt", "before": "cHduZWQ="},  # would overwrite it
    {"op": "move", "src": "../victim/moved.txt", "dst": "../victim/notes.txt"},  # would rename it
    {"op": "write", "path": "out/notes.txt", "before": None},  # through a symlinked folder
    {"op": "write", "path": "a.txt", "swap": "../../../../victim/notes.txt", "ino": 1},
], ids=["relative-delete", "absolute-delete", "overwrite", "rename", "symlinked-parent", "journal-file"])
def test_crafted_journal_cannot_touch_files_outside(tmp_path: Path, run_cli, record: dict):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_bytes(b"precious")
    root = tmp_path / "shared_dataset"
    root.mkdir()
    (root / "a.txt").write_bytes(b"caption")
    (root / "out").symlink_to(victim, target_is_directory=True)
    record = {k: (str(victim / "notes.txt") if v == "{abs}" else v) for k, v in record.items()}
    # a harmless record first: undo runs newest first, so refusing must happen before any of it
    _crafted(root, [{"op": "write", "path": "a.txt", "before": "b2xk"}, record])
    err = _one_line_error(run_cli("undo", root))
    assert "refusing a journal record" in err
    assert sorted(p.name for p in victim.iterdir()) == ["notes.txt"]
    assert (victim / "notes.txt").read_bytes() == b"precious"
    assert (root / "a.txt").read_bytes() == b"caption"  # nothing was touched


@pytest.mark.parametrize("damage", ["entries", "meta", "meta-types"])
def test_damaged_journal_is_one_line(tmp_path: Path, run_cli, damage: str):
    root = tmp_path / "ds"
    root.mkdir()
    folder = _crafted(root, [{"op": "write", "path": "a.txt", "before": None}])
    if damage == "entries":
        (folder / "entries.jsonl").write_text('{"op": "write"\n[1, 2]\n')
    elif damage == "meta":
        (folder / "meta.json").write_bytes(b"\xff{not json")
    else:
        (folder / "meta.json").write_text(json.dumps({"count": "many", "started": [1]}))
    _one_line_error(run_cli("undo", root))
    if damage != "entries":  # history reads the entries of unfinished operations only
        _one_line_error(run_cli("history", root))


def test_journal_folder_symlinked_out_of_the_dataset_is_refused(tmp_path: Path, run_cli):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "journal").mkdir(parents=True)
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    (root / "a.txt").write_text("old")
    (root / ".lorakit").symlink_to(elsewhere, target_is_directory=True)
    err = _one_line_error(run_cli("tags", root, "add", "x"))
    assert ".lorakit" in err
    assert list((elsewhere / "journal").iterdir()) == []
    assert (root / "a.txt").read_text() == "old"


# -- 2. one writer at a time -----------------------------------------------------------------------
def test_second_writer_waits_then_names_the_first(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    (root / "1_x").mkdir(parents=True)
    (root / "1_x" / "a.png").write_bytes(b"")
    (root / "1_x" / "a.txt").write_text("old")
    op = Journal(root).begin("tags ds add first")  # e.g. the TUI, in another process
    try:
        started = time.monotonic()
        for args in (("tags", root, "add", "second"), ("undo", root), ("clean", root, "--trigger", "t")):
            err = _one_line_error(run_cli(*args))
            assert "tags ds add first" in err and f"pid {os.getpid()}" in err
        assert time.monotonic() - started < 60
        assert (root / "1_x" / "a.txt").read_text() == "old"
    finally:
        op.close()
    assert run_cli("tags", root, "add", "second").code == 0  # free again
    assert (root / "1_x" / "a.txt").read_text() == "old, second"


# -- 3. undo never destroys what it did not make ---------------------------------------------------
@pytest.fixture(params=["swap", "no-swap"])
def swap_mode(request, monkeypatch):
    if request.param == "no-swap":
        monkeypatch.setenv("LORAKIT_NO_SWAP", "1")  # as on NFS/FUSE/CIFS
    return request.param


def test_undo_keeps_a_caption_the_user_changed_since(tmp_path: Path, run_cli, swap_mode):
    root = tmp_path / "ds"
    (root / "1_x").mkdir(parents=True)
    for name in "abc":
        (root / "1_x" / f"{name}.png").write_bytes(b"")
        (root / "1_x" / f"{name}.txt").write_text(f"tag_{name}")
    assert run_cli("tags", root, "add", "bulk").code == 0
    (root / "1_x" / "b.txt").write_text("tag_b, bulk, my own edit")  # the user edits after the bulk edit
    undo = run_cli("undo", root)
    assert undo.code == 0, undo.err
    assert "1_x/b.txt.undo-kept.1" in undo.out
    assert [(root / "1_x" / f"{n}.txt").read_text() for n in "abc"] == ["tag_a", "tag_b", "tag_c"]
    assert (root / "1_x" / "b.txt.undo-kept.1").read_text() == "tag_b, bulk, my own edit"


def test_undo_keeps_a_created_caption_the_user_edited(tmp_path: Path):
    root = tmp_path / "ds"
    root.mkdir()
    journal = Journal(root)
    with journal.begin("tag") as op:
        op.write_text(root / "new.txt", "auto, tags")
        op.write_text(root / "other.txt", "auto")
    (root / "new.txt").write_text("auto, tags, hand written")
    report = journal.undo()
    assert not (root / "new.txt").exists() and not (root / "other.txt").exists()
    assert (root / "new.txt.undo-kept.1").read_text() == "auto, tags, hand written"
    assert report.kept == [("new.txt", "new.txt.undo-kept.1")]


def test_undo_force_overrides(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    (root / "a.txt").write_text("old")
    assert run_cli("tags", root, "add", "x").code == 0
    (root / "a.txt").write_text("changed")
    undo = run_cli("undo", root, "--force")
    assert undo.code == 0, undo.err
    assert (root / "a.txt").read_text() == "old"
    assert not (root / "a.txt.undo-kept.1").exists()


def test_the_last_write_of_a_file_is_what_undo_compares(tmp_path: Path):
    """A file written twice in one operation: its second version is the one the operation left."""
    f = tmp_path / "a.txt"
    f.write_text("v0")
    journal = Journal(tmp_path)
    with journal.begin("twice") as op:
        op.write_text(f, "v1")
        op.write_many([(f, b"v2")])
    report = journal.undo()
    assert f.read_text() == "v0" and report.kept == []


# -- 5. a killed undo on the no-swap path runs again -----------------------------------------------
def test_killed_undo_without_swaps_can_be_run_again(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    old = {}
    for c in range(2):
        folder = root / f"1_c{c}"
        folder.mkdir(parents=True)
        for i in range(1500):
            (folder / f"{i:05d}.png").write_bytes(b"")
            path = folder / f"{i:05d}.txt"
            path.write_bytes(b"tag%d, common" % i)
            old[path] = path.read_bytes()
    env = dict(os.environ, LORAKIT_NO_SWAP="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "tui", "tags", str(root), "add", "new"], env=env,
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    (op_folder,) = [p for p in (root / ".lorakit" / "journal").iterdir() if p.name.isdigit()]
    links = op_folder / "links"
    total = len(os.listdir(links))
    assert total > 2000  # the portable path: hard links into the journal
    killed = False
    for threshold in (total - 300, total - 1):
        proc = subprocess.Popen([sys.executable, "-m", "tui", "undo", str(root)], env=env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if len(os.listdir(links)) <= threshold:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        proc.wait(30)
        if proc.returncode == -signal.SIGKILL:
            killed = True
            break
        assert run_cli("tags", root, "add", "new").code == 0  # it finished first: edit again, retry
    assert killed, "the undo always finished before it could be killed"
    restored = sum(path.read_bytes() == data for path, data in old.items())
    assert 0 < restored < len(old)
    again = subprocess.run([sys.executable, "-m", "tui", "undo", str(root)], env=env, capture_output=True,
                           text=True, cwd=REPO, timeout=300)
    assert again.returncode == 0, again.stderr
    for path, data in old.items():
        assert path.read_bytes() == data
    assert not list(root.rglob("*.undo-kept.*"))


# -- 6. empty operations are not recorded ----------------------------------------------------------
def test_operations_that_change_nothing_leave_no_entry(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    root.mkdir()
    (root / "a.png").write_bytes(b"")
    (root / "a.txt").write_text("ohwx, a")
    journal = Journal(root)
    with journal.begin("nothing"):
        pass
    assert run_cli("clean", root, "--trigger", "ohwx").code == 0
    assert run_cli("tags", root, "remove", "not_there").code == 0
    assert journal.history(include_undone=True) == []
    assert not [p for p in (root / ".lorakit" / "journal").iterdir() if p.name[0].isdigit()]
    undo = run_cli("undo", root)
    assert undo.code == 1 and "nothing to undo" in undo.err


# -- 7. a full disk ---------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs (needs root, or skips): a real file system that fills up."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave: int) -> Path:
    filler = mount / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    with open(filler, "r+b") as fh:
        fh.truncate(max(0, filler.stat().st_size - leave))
    return filler


def _small_dataset(mount: Path, n: int = 120) -> dict[Path, bytes]:
    root = mount / "ds"
    (root / "1_x").mkdir(parents=True)
    old = {}
    for i in range(n):
        (root / "1_x" / f"{i:03d}.png").write_bytes(b"")
        path = root / "1_x" / f"{i:03d}.txt"
        path.write_bytes(b"t%d" % i)
        old[path] = path.read_bytes()
    return old


@pytest.mark.parametrize("swap_off", [False, True], ids=["swap", "no-swap"])
def test_full_disk_during_an_edit_is_one_line_and_undoable(small_disk: Path, run_cli, monkeypatch, swap_off):
    if swap_off:
        monkeypatch.setenv("LORAKIT_NO_SWAP", "1")
    old = _small_dataset(small_disk)
    root = small_disk / "ds"
    filler = _fill(small_disk, leave=64 * 1024)
    result = run_cli("tags", root, "add", "a_long_tag_" + "x" * 3000)
    err = _one_line_error(result)
    assert "no space left on" in err and "nothing was lost, free space and run lorakit undo" in err
    (op,) = json.loads(run_cli("history", root, "--json").out)["operations"]
    assert op["state"] == "failed"
    filler.unlink()
    undo = run_cli("undo", root)
    assert undo.code == 0, undo.err
    for path, data in old.items():
        assert path.read_bytes() == data


def test_full_disk_during_undo_is_one_line_and_undo_runs_again(small_disk: Path, run_cli):
    old = _small_dataset(small_disk, 40)
    root = small_disk / "ds"
    assert run_cli("tags", root, "add", "x" * 3000).code == 0
    filler = _fill(small_disk, leave=0)
    err = _one_line_error(run_cli("undo", root))
    assert "no space left on" in err and "nothing was lost, free space and run lorakit undo" in err
    assert json.loads(run_cli("history", root, "--json").out)["operations"][0]["state"] == "done"
    filler.unlink()
    again = run_cli("undo", root)
    assert again.code == 0, again.err
    for path, data in old.items():
        assert path.read_bytes() == data
