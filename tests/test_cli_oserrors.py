"""OSErrors at the CLI boundary (issue 14 #17): one line naming the path and what to do, exit 1;
`LORAKIT_DEBUG=1` shows the traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import write_caption, write_image


def _one_line(result) -> str:
    assert result.code == 1, (result.out, result.err)
    assert "Traceback" not in result.err
    assert result.err.count("\n") == 1, result.err
    return result.err


def test_a_caption_path_that_is_a_folder(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    write_image(root / "1_x" / "a.png")
    (root / "1_x" / "a.txt").mkdir()  # where fix --all would write the missing caption
    err = _one_line(run_cli("fix", root, "--all"))
    assert "a.txt" in err and "folder" in err


def test_out_that_is_an_existing_folder(tmp_path: Path, run_cli):
    from tests.lora_tools.conftest import sd1_modules, write_lora

    lora = write_lora(tmp_path / "in.safetensors", sd1_modules(rank=4))
    out = tmp_path / "out.safetensors"
    out.mkdir()
    err = _one_line(run_cli("lora", "resize", lora, "--rank", "2", "--out", out))
    assert str(out) in err


@pytest.fixture
def read_only_mount(tmp_path: Path):
    mount = tmp_path / "ro"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_dataset_that_cannot_be_written(read_only_mount: Path, run_cli):
    root = read_only_mount / "ds"
    write_image(root / "1_x" / "a.png")
    write_caption(root / "1_x" / "a.txt", "a, a")
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_mount)], check=True)
    for args in (("tags", root, "add", "x"), ("clean", root, "--trigger", "t"), ("fix", root, "--dedupe-tags"),
                 ("undo", root)):
        err = _one_line(run_cli(*args))
        assert "read-only" in err or "nothing to undo" in err, err
    assert (root / "1_x" / "a.txt").read_text() == "a, a"


def test_a_move_across_file_systems(tmp_path: Path, run_cli):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system")
    elsewhere = Path(os.environ.get("TMPDIR_SHM", shm)) / f"lorakit-test-{os.getpid()}-{tmp_path.name}"
    try:
        write_image(elsewhere / "a.png", (64, 64), (5, 5, 5))
        write_image(elsewhere / "b.png", (64, 64), (5, 5, 5))  # a duplicate, to be moved to the trash
        root = tmp_path / "ds"
        root.mkdir()
        (root / "1_x").symlink_to(elsewhere, target_is_directory=True)
        err = _one_line(run_cli("dedupe", root, "--apply", "--follow-symlinks"))
        assert "another file system" in err
        assert sorted(p.name for p in elsewhere.iterdir()) == ["a.png", "b.png"]
    finally:
        import shutil

        shutil.rmtree(elsewhere, ignore_errors=True)


def test_debug_shows_the_traceback(tmp_path: Path, run_cli, monkeypatch):
    root = tmp_path / "ds"
    write_image(root / "1_x" / "a.png")
    (root / "1_x" / "a.txt").mkdir()
    monkeypatch.setenv("LORAKIT_DEBUG", "1")
    result = run_cli("fix", root, "--all")
    assert result.code != 0 and "Traceback" in result.err
