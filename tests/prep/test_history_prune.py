"""`lorakit history --prune KEEP`: old operations forgotten; trashed images only with --empty-trash."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tui.cli import main


def _dataset(root):
    concept = root / "1_a"
    concept.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (32, 32), (9, 9, 9)).save(concept / f"x{i}.png")  # two copies: dedupe drops one
        (concept / f"x{i}.txt").write_text("a, b", encoding="utf-8")
    return root


def test_prune_keeps_the_newest_and_images_need_empty_trash(tmp_path, capsys):
    root = _dataset(tmp_path / "ds")
    assert main(["dedupe", str(root), "--apply"]) == 0
    for tag in ("c", "d", "e"):
        assert main(["tags", str(root), "add", tag]) == 0
    capsys.readouterr()
    assert main(["history", str(root), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["operations"]) == 4
    assert main(["history", str(root), "--prune", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"pruned": 2, "kept_for_images": 1}  # dedupe's trash kept
    trashed = list((root / ".lorakit" / "trash").rglob("*.png"))
    assert len(trashed) == 1
    assert main(["history", str(root), "--prune", "1", "--empty-trash"]) == 0
    assert "pruned 1 operation(s)" in capsys.readouterr().out
    assert not list((root / ".lorakit" / "trash").rglob("*.png"))
    assert main(["history", str(root), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["operations"]) == 1
    assert main(["undo", str(root)]) == 0  # the kept one still undoes


def test_empty_trash_alone_is_a_usage_error(tmp_path, capsys):
    root = _dataset(tmp_path / "ds")
    with pytest.raises(SystemExit) as exit_:
        main(["history", str(root), "--empty-trash"])
    assert exit_.value.code == 2
