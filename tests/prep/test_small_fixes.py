"""Small things a new user hit (issue 14 #21): messages that repeat a path, print an object's repr
or suggest a nonsense folder name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_image


def test_dedupe_names_the_problem_not_a_bytesio(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    write_image(root / "1_x" / "good.png")
    (root / "1_x" / "junk.png").write_bytes(b"not an image at all")
    result = run_cli("dedupe", root)
    assert result.code == 0, result.err
    assert "junk.png" in result.err
    assert "BytesIO" not in result.err and "object at 0x" not in result.err


def test_fix_warnings_name_the_path_once(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    write_image(root / "1_x" / "a.png")
    (root / "1_x" / "a.txt").write_bytes(b"tag, tag\xff")
    (root / "1_x" / "z.png").write_bytes(b"junk")
    result = run_cli("fix", root, "--dedupe-tags", "--alpha", "white", "--dry-run")
    assert result.code == 0, result.err
    lines = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert len(lines) == 2, result.err
    for line in lines:
        name = "a.txt" if "a.txt" in line else "z.png"
        assert line.count(name) == 1, line


@pytest.mark.parametrize(("folder", "hint"), [("10_", "e.g. 10_name"), ("10", "e.g. 10_name"),
                                              ("x_chara", "e.g. 10_x_chara"), ("0_chara", "e.g. 10_chara")])
def test_bad_folder_hint_is_a_real_name(tmp_path: Path, run_cli, folder: str, hint: str):
    root = tmp_path / "ds"
    write_image(root / folder / "a.png")
    result = run_cli("validate", root)
    line = next(line for line in (result.out + result.err).splitlines() if "bad-folder-name" in line)
    assert hint in line and "10_10" not in line
