"""Each `lorakit fix` fix on real files, and its undo restoring every byte."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from tests.prep.test_dedupe import picture, snapshot
from tui.cli import main

CONCEPT = "cat girl"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "ds" / f"2_{CONCEPT}"
    path.mkdir(parents=True)
    return path


def fix(capsys, root: Path, *flags: str) -> tuple[int, dict]:
    code = main(["fix", str(root), *flags, "--json"])
    out = capsys.readouterr().out.strip().splitlines()[-1]  # after any earlier command's output
    return code, json.loads(out)


def undo_restores(root: Path, before: dict[str, bytes]) -> None:
    assert main(["undo", str(root)]) == 0
    assert snapshot(root) == before


def transparent_png(path: Path) -> None:
    image = picture(1, (64, 48)).convert("RGBA")
    alpha = Image.new("L", image.size, 255)
    alpha.paste(0, (0, 0, 32, 48))  # left half fully transparent
    image.putalpha(alpha)
    image.save(path)


@pytest.mark.parametrize("colour,value", [("white", (255, 255, 255)), ("black", (0, 0, 0))])
def test_alpha_flattened_in_same_format(folder: Path, capsys, colour: str, value: tuple):
    root = folder.parent
    transparent_png(folder / "a.png")
    Image.new("RGBA", (40, 30), (10, 200, 10, 0)).save(folder / "b.webp", lossless=True)
    palette = Image.new("P", (40, 30), 3)
    palette.putpalette([v for c in range(256) for v in (c, c, c)])
    palette.save(folder / "c.png", transparency=3)
    picture(2, (40, 30)).save(folder / "opaque.png")
    before = snapshot(root)
    code, out = fix(capsys, root, "--alpha", colour)
    assert code == 0 and out["fixed"] == {"has-alpha": 3}
    assert out["files"] == [f"2_{CONCEPT}/a.png", f"2_{CONCEPT}/b.webp", f"2_{CONCEPT}/c.png"]
    with Image.open(folder / "a.png") as a:
        assert a.format == "PNG" and a.mode == "RGB" and "transparency" not in a.info
        assert a.getpixel((5, 5)) == value
    with Image.open(folder / "b.webp") as b:
        assert b.format == "WEBP" and b.mode == "RGB" and b.getpixel((3, 3)) == value
    with Image.open(folder / "c.png") as c:
        assert "transparency" not in c.info and c.convert("RGB").getpixel((1, 1)) == value
    assert (folder / "opaque.png").read_bytes() == before[f"2_{CONCEPT}/opaque.png"]
    undo_restores(root, before)


def test_rename_jpeg_keeps_caption_paired(folder: Path, capsys):
    root = folder.parent
    picture(3, (40, 30)).save(folder / "a.jpeg")
    picture(4, (40, 30)).save(folder / "b.JPG", format="JPEG")
    picture(5, (40, 30)).save(folder / "c.jfif", format="JPEG")
    picture(6, (40, 30)).save(folder / "d.jpg")
    for stem in "abc":
        (folder / f"{stem}.txt").write_text(f"tag {stem}", encoding="utf-8")
    before = snapshot(root)
    code, out = fix(capsys, root, "--rename-jpeg")
    assert code == 0
    assert out["fixed"] == {"risky-extension": 2, "unsupported-format": 1}
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["a.jpg", "a.txt", "b.jpg", "b.txt", "c.jpg", "c.txt", "d.jpg"]
    assert (folder / "a.jpg").read_bytes() == before[f"2_{CONCEPT}/a.jpeg"]  # renamed, not re-encoded
    undo_restores(root, before)


def test_rename_refused_when_target_exists(folder: Path, capsys):
    root = folder.parent
    picture(3, (40, 30)).save(folder / "a.jpeg")
    picture(4, (40, 30)).save(folder / "a.jpg")
    picture(5, (40, 30)).save(folder / "b.JPEG", format="JPEG")
    before = snapshot(root)
    code, out = fix(capsys, root, "--rename-jpeg")
    assert code == 1
    assert "a.jpeg" in capsys.readouterr().err or out["refused"][0]["path"].endswith("a.jpeg")
    assert out["fixed"] == {"risky-extension": 1}
    assert (folder / "a.jpeg").read_bytes() == before[f"2_{CONCEPT}/a.jpeg"]
    assert (folder / "a.jpg").read_bytes() == before[f"2_{CONCEPT}/a.jpg"]
    assert (folder / "b.jpg").exists()
    undo_restores(root, before)


def test_caption_fixes(folder: Path, capsys):
    root = folder.parent
    for stem in ("bare", "dup", "empty", "fine"):
        picture(len(stem), (40, 30)).save(folder / f"{stem}.png")
    (folder / "dup.txt").write_text("1girl, long hair, 1girl, Long_Hair, smile", encoding="utf-8")
    (folder / "empty.txt").write_text(" , ,\n", encoding="utf-8")
    (folder / "fine.txt").write_text("1girl, smile", encoding="utf-8")
    before = snapshot(root)

    code, out = fix(capsys, root, "--missing-captions")
    assert code == 0 and out["fixed"] == {"missing-caption": 1}
    assert (folder / "bare.txt").read_text(encoding="utf-8") == CONCEPT
    undo_restores(root, before)

    code, out = fix(capsys, root, "--dedupe-tags")
    assert out["fixed"] == {"duplicate-tag": 1} and out["files"] == [f"2_{CONCEPT}/dup.txt"]
    assert (folder / "dup.txt").read_text(encoding="utf-8") == "1girl, long hair, smile"
    undo_restores(root, before)

    code, out = fix(capsys, root, "--drop-empty")
    assert out["fixed"] == {"empty-caption": 1} and not (folder / "empty.txt").exists()
    undo_restores(root, before)

    # together, an emptied caption is refilled with the concept name rather than left missing
    code, out = fix(capsys, root, "--drop-empty", "--missing-captions", "--dedupe-tags")
    assert out["fixed"] == {"duplicate-tag": 1, "empty-caption": 1, "missing-caption": 1}
    assert (folder / "empty.txt").read_text(encoding="utf-8") == CONCEPT
    assert (folder / "fine.txt").read_bytes() == before[f"2_{CONCEPT}/fine.txt"]
    undo_restores(root, before)


def test_convert_unsupported_to_png_original_in_trash(folder: Path, capsys):
    root = folder.parent
    frames = [picture(s, (40, 30)).convert("P", palette=Image.Palette.ADAPTIVE) for s in (7, 8, 9)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    first_frame = Image.open(folder / "anim.gif").convert("RGB")
    picture(10, (40, 30)).convert("CMYK").save(folder / "scan.tiff")
    picture(11, (40, 30)).save(folder / "photo.tif")
    picture(12, (40, 30)).save(folder / "new.avif")
    (folder / "anim.txt").write_text("gif caption", encoding="utf-8")
    before = snapshot(root)
    code, out = fix(capsys, root, "--convert-unsupported")
    assert code == 0 and out["fixed"] == {"unsupported-format": 4}
    assert sorted(p.name for p in folder.iterdir()) == ["anim.png", "anim.txt", "new.png", "photo.png",
                                                          "scan.png"]
    with Image.open(folder / "anim.png") as png:
        assert png.format == "PNG" and png.size == (40, 30)
        assert png.convert("RGB").tobytes() == first_frame.tobytes()
    trash = next((root / ".lorakit" / "trash").iterdir())
    assert (trash / f"2_{CONCEPT}" / "anim.gif").read_bytes() == before[f"2_{CONCEPT}/anim.gif"]
    undo_restores(root, before)


def test_convert_refused_when_it_would_share_a_caption(folder: Path, capsys):
    root = folder.parent
    picture(1, (40, 30)).save(folder / "a.gif")
    picture(2, (40, 30)).save(folder / "a.jpg")
    code, out = fix(capsys, root, "--convert-unsupported")
    assert code == 1 and out["fixed"] == {} and (folder / "a.gif").exists()


def test_max_side_downscales_keeping_aspect_and_format(folder: Path, capsys):
    root = folder.parent
    picture(1, (1200, 900)).save(folder / "big.jpg", quality=90)
    picture(2, (300, 1000)).save(folder / "tall.png")
    picture(3, (800, 600)).save(folder / "fits.png")
    before = snapshot(root)
    code, out = fix(capsys, root, "--max-side", "800")
    assert code == 0 and out["fixed"] == {"too-large": 2}
    with Image.open(folder / "big.jpg") as big:
        assert big.format == "JPEG" and big.size == (800, 600)
    with Image.open(folder / "tall.png") as tall:
        assert tall.format == "PNG" and tall.size == (240, 800)
    assert (folder / "fits.png").read_bytes() == before[f"2_{CONCEPT}/fits.png"]
    undo_restores(root, before)


def test_dry_run_changes_nothing_and_reports_the_same(folder: Path, capsys):
    root = folder.parent
    transparent_png(folder / "a.png")
    picture(1, (40, 30)).save(folder / "b.jpeg")
    before = snapshot(root)
    code, dry = fix(capsys, root, "--all", "--dry-run")
    assert code == 0 and snapshot(root) == before
    assert not (root / ".lorakit" / "journal").exists()
    code, done = fix(capsys, root, "--all")
    assert dry == done
    assert done["fixed"] == {"has-alpha": 1, "missing-caption": 2, "risky-extension": 1}


def test_human_output_and_usage(folder: Path, capsys):
    root = folder.parent
    picture(1, (40, 30)).save(folder / "a.png")
    assert main(["fix", str(root), "--missing-captions"]) == 0
    out = capsys.readouterr().out
    assert f"fixed 2_{CONCEPT}/a.txt" in out and "lorakit undo" in out
    with pytest.raises(SystemExit) as usage:
        main(["fix", str(root)])
    assert usage.value.code == 2
    assert main(["fix", str(root.parent / "missing"), "--all"]) == 2


def test_everything_is_one_journal_operation(folder: Path, capsys):
    root = folder.parent
    transparent_png(folder / "a.png")
    picture(1, (40, 30)).save(folder / "b.JPEG", format="JPEG")
    Image.new("P", (20, 20), 1).save(folder / "c.gif")
    (folder / "b.txt").write_text("x, x", encoding="utf-8")
    before = snapshot(root)
    code, out = fix(capsys, root, "--all")
    assert code == 0
    assert main(["history", str(root), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["operations"]) == 1
    undo_restores(root, before)


def test_corrupt_image_is_warned_not_fatal(folder: Path, capsys):
    root = folder.parent
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    transparent_png(folder / "a.png")
    code, out = fix(capsys, root, "--alpha", "white")
    assert code == 0 and out["fixed"] == {"has-alpha": 1}


def test_exif_and_icc_survive_a_rewrite(folder: Path, capsys):
    root = folder.parent
    image = picture(1, (1000, 500))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    icc = b"\0" * 128  # Pillow stores the profile bytes as given
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), icc_profile=icc)
    (folder / "photo.jpg").write_bytes(buffer.getvalue())
    fix(capsys, root, "--max-side", "500")
    with Image.open(folder / "photo.jpg") as out:
        assert out.size == (500, 250)
        assert out.getexif().get(0x0112) == 6
        assert out.info.get("icc_profile") == icc


def test_non_utf8_file_name_fixed_and_undone(folder: Path, capsys):
    import os

    root = folder.parent
    odd = os.fsencode(str(folder)) + b"/b\xff.jpeg"
    try:
        with open(odd, "wb") as fh:
            picture(1, (40, 30)).save(fh, format="JPEG")
    except OSError:
        pytest.skip("this file system rejects names that are not UTF-8")
    before = snapshot(root)
    code, out = fix(capsys, root, "--rename-jpeg", "--missing-captions")
    assert code == 0 and out["fixed"] == {"missing-caption": 1, "risky-extension": 1}
    assert any(p.endswith("\\xff.jpg") for p in out["files"])
    undo_restores(root, before)
