"""Symlinks leading out of the dataset (issue 14 #18) and control characters in printed names and
values (#19): writing commands never reach outside, validate reports such links, nothing printed
carries a raw ESC or a forged line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_caption, write_image
from tests.lora_tools.conftest import sd1_modules, write_lora


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    """A dataset whose `2_outside` concept folder and `1_x/linked.png` are symlinks to another folder."""
    outside = tmp_path / "someone_elses"
    write_image(outside / "o.png", (64, 64), (1, 2, 3))
    write_caption(outside / "o.txt", "o, o, tag")
    write_image(outside / "single.png", (64, 64), (9, 9, 9))
    write_caption(outside / "single.txt", "single, single")
    root = tmp_path / "ds"
    write_image(root / "1_x" / "a.png", (64, 64), (9, 9, 9))  # a duplicate of single.png
    write_caption(root / "1_x" / "a.txt", "a, a")
    (root / "2_outside").symlink_to(outside, target_is_directory=True)
    (root / "1_x" / "linked.png").symlink_to(outside / "single.png")
    (root / "1_x" / "linked.txt").write_text("linked")
    return root, outside


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("command", [["tags", "{root}", "add", "new"], ["clean", "{root}", "--trigger", "ohwx"],
                                     ["fix", "{root}", "--dedupe-tags"], ["dedupe", "{root}", "--apply"]],
                         ids=["tags", "clean", "fix", "dedupe"])
def test_writing_commands_skip_symlinks_leading_out(linked, run_cli, command):
    root, outside = linked
    before = _snapshot(outside)
    result = run_cli(*[part.format(root=root) for part in command])
    assert result.code == 0, result.err
    assert _snapshot(outside) == before
    assert (root / "1_x" / "linked.png").is_symlink()  # not moved to the trash either


def test_follow_symlinks_opts_in(linked, run_cli):
    root, outside = linked
    assert run_cli("tags", root, "add", "new", "--follow-symlinks").code == 0
    assert (outside / "o.txt").read_text() == "o, o, tag, new"


def test_validate_reports_symlinks_leading_out(linked, run_cli):
    root, _outside = linked
    report = json.loads(run_cli("validate", root, "--json").out)
    flagged = {p["path"] for p in report["problems"] if p["code"] == "symlink-outside"}
    assert flagged == {"2_outside", "1_x/linked.png"}
    inside = root / "1_x" / "inner.png"
    inside.symlink_to(root / "1_x" / "a.png")  # a link inside the dataset is fine
    report = json.loads(run_cli("validate", root, "--json").out)
    assert "1_x/inner.png" not in {p["path"] for p in report["problems"] if p["code"] == "symlink-outside"}


def test_file_names_cannot_forge_validate_lines(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    write_image(root / "1_x" / "a.png")
    write_caption(root / "1_x" / "a.txt", "a")
    evil = "b\x1b[2J\x1b[32m\nall good: error: forged [no-concepts]\r"
    write_image(root / "1_x" / f"{evil}.png")  # no caption: a missing-caption warning names it
    result = run_cli("validate", root)
    for stream in (result.out, result.err):
        assert "\x1b" not in stream and "\r" not in stream
    assert not any(line.startswith("all good") for line in result.out.splitlines())
    assert "\\x1b[2J" in result.out


def test_history_and_lora_metadata_print_escaped(tmp_path: Path, run_cli):
    root = tmp_path / "ds"
    write_image(root / "1_x" / "a.png")
    write_caption(root / "1_x" / "a.txt", "a")
    assert run_cli("tags", root, "add", "x\x1b]0;pwned\x07").code == 0
    history = run_cli("history", root)
    assert history.code == 0 and "\x1b" not in history.out and "\x07" not in history.out
    lora = write_lora(tmp_path / "m.safetensors", sd1_modules(),
                      {"ss_output_name": "name\x1b[31m\nforged: line", "ss_tag_frequency": "\x9b2J"})
    info = run_cli("lora", "info", lora)
    assert info.code == 0, info.err
    assert "\x1b" not in info.out and "\x9b" not in info.out and "\nforged: line" not in info.out
    as_json = run_cli("lora", "info", lora, "--json")
    assert "\x1b" not in as_json.out and "\x9b" not in as_json.out
