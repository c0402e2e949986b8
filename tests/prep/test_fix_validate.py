"""After `lorakit fix --all`, the validator reports none of the codes the fixes clear."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from prep.validate import ValidateOptions, validate
from tests.prep.test_dedupe import picture, snapshot
from tests.prep.test_fix import transparent_png
from tui.cli import main

FIXED_CODES = {"has-alpha", "unsupported-format", "missing-caption", "duplicate-tag", "empty-caption",
               "too-large"}


def codes(root: Path) -> set[str]:
    return {p.code for p in validate(root, ValidateOptions(resolution=16)).problems}


def test_fix_all_clears_every_fixed_code(tmp_path: Path, capsys):
    root = tmp_path / "ds"
    folder = root / "3_my char"
    folder.mkdir(parents=True)
    transparent_png(folder / "alpha.png")
    Image.new("RGBA", (40, 30), (0, 0, 255, 80)).save(folder / "alpha.webp")
    picture(1, (40, 30)).save(folder / "photo.jpeg")
    picture(2, (40, 30)).save(folder / "upper.JPG", format="JPEG")
    picture(3, (40, 30)).save(folder / "old.jfif", format="JPEG")
    frames = [Image.new("P", (40, 30), i) for i in range(3)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], transparency=0)
    picture(4, (40, 30)).convert("CMYK").save(folder / "scan.tiff")
    picture(5, (40, 30)).save(folder / "new.avif")
    # Over the pixel limit (the validator's too-large): one grey 9,500 px square.
    Image.new("L", (9500, 9500), 128).save(folder / "huge.png", compress_level=1)
    (folder / "alpha.txt").write_text("a, b, a", encoding="utf-8")
    (folder / "photo.txt").write_text(" , ", encoding="utf-8")
    (folder / "old.txt").write_text("x, x", encoding="utf-8")
    before_codes = codes(root)
    assert FIXED_CODES <= before_codes  # the dataset shows every problem the fixes clear
    before = snapshot(root)

    assert main(["fix", str(root), "--all", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["fixed"]) - {"risky-extension"} <= FIXED_CODES
    assert codes(root).isdisjoint(FIXED_CODES)
    with Image.open(folder / "huge.png") as huge:
        assert huge.size == (7071, 7071)
    assert {p.name for p in folder.iterdir() if p.suffix != ".txt"} == {
        "alpha.png", "alpha.webp", "photo.jpg", "upper.jpg", "old.jpg", "anim.png", "scan.png", "new.png",
        "huge.png"}

    assert main(["undo", str(root)]) == 0
    assert snapshot(root) == before
    assert codes(root) == before_codes
