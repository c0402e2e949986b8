"""Hostile datasets: decompression bombs, non-UTF-8 names, huge folders; never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from prep.events import Advanced, Finished, Started, Warned
from prep.validate import ValidateOptions, iter_validate
from tests.prep.validate_fixtures import by_code, caption, check, only, picture, png_bytes, tiny_png
from tui.cli import main


def test_decompression_bomb_header_is_reported_not_raised(tmp_path: Path):
    root = tmp_path / "ds"
    folder = root / "1_x"
    folder.mkdir(parents=True)
    # 40,000 x 40,000 claimed in a few hundred bytes: Pillow refuses anything over 2x its limit.
    (folder / "bomb.png").write_bytes(png_bytes(40000, 40000))
    caption(folder / "bomb.txt", "x")
    for deep in (False, True):
        report = check(root, deep=deep, workers=1)
        problem = only(report, "corrupt-image")
        assert problem.path == "1_x/bomb.png" and "decompression" in problem.message
        assert not report.ok


def test_real_decompression_bomb_image(tmp_path: Path):
    """A real 1-bit 14,000 x 14,000 PNG (196M pixels, over twice Pillow's limit; small on disk)."""
    root = tmp_path / "ds"
    folder = root / "1_x"
    folder.mkdir(parents=True)
    Image.new("1", (14000, 14000)).save(folder / "bomb.png")
    for deep, workers in ((False, None), (True, 2)):
        assert by_code(check(root, deep=deep, workers=workers), "corrupt-image") == ["1_x/bomb.png"]


def test_over_pillows_limit_but_openable_is_too_large(tmp_path: Path, monkeypatch):
    root = tmp_path / "ds"
    picture(root / "1_x" / "big.png", (64, 64))
    picture(root / "1_x" / "huge.webp", (200, 200), seed=2)
    picture(root / "1_x" / "huge.bmp", (200, 200), seed=3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # 4,096 px: only warned; 40,000 px: refused
    report = check(root)
    problem = only(report, "too-large")
    assert (problem.severity, problem.path) == ("warning", "1_x/big.png")
    assert by_code(report, "corrupt-image") == ["1_x/huge.bmp", "1_x/huge.webp"]


def test_unknown_format_with_image_extension(tmp_path: Path):
    root = tmp_path / "ds"
    folder = root / "1_x"
    folder.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(folder / "really.png", format="GIF")
    Image.new("RGB", (8, 8)).save(folder / "icon.bmp", format="ICO")
    report = check(root)
    assert set(by_code(report, "extension-mismatch")) == {"1_x/really.png", "1_x/icon.bmp"}
    assert "GIF" in [p.message for p in report.problems if p.path == "1_x/really.png"
                     and p.code == "extension-mismatch"][0]


def test_non_utf8_names(tmp_path: Path, capsys):
    root = tmp_path / "ds"
    root.mkdir()
    broot = os.fsencode(root)
    folder = os.path.join(broot, b"1_caf\xe9")
    os.mkdir(folder)
    picture(Path(os.fsdecode(os.path.join(folder, b"ok.png"))))
    with open(os.path.join(folder, b"na\xefve.png"), "wb") as fh:
        fh.write(png_bytes(4, 4, color_type=6, pixels=b"\x00" + b"\x00" * 16 * 4 * 4))
    with open(os.path.join(folder, b"or\xff.txt"), "wb") as fh:
        fh.write(b"x")
    os.mkdir(os.path.join(broot, b"bad\xfe"))
    report = check(root)
    paths = {p.path for p in report.problems}
    assert {"1_caf\\xe9/na\\xefve.png", "1_caf\\xe9/or\\xff.txt", "bad\\xfe"} <= paths
    assert report.concepts[0].folder == "1_caf\\xe9" and report.concepts[0].images == 2
    json.dumps(report.to_dict(), ensure_ascii=False).encode("utf-8")  # no lone surrogates left

    assert main(["validate", str(root), "--json", "--resolution", "0"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert "1_caf\\xe9/na\\xefve.png" in {p["path"] for p in out["problems"]}
    assert main(["validate", str(root)]) == 1
    assert "bad\\xfe" in capsys.readouterr().out


def test_forty_thousand_file_folder(tmp_path: Path):
    root = tmp_path / "ds"
    folder = root / "1_many"
    folder.mkdir(parents=True)
    for i in range(20000):
        (folder / f"{i:05d}.png").write_bytes(tiny_png(i))
        (folder / f"{i:05d}.txt").write_bytes(b"tag a, tag b")
    report = check(root)
    assert report.images == 20000 and report.captioned == 20000
    assert [(p.code, p.path) for p in report.problems] == [("duplicate-caption", "1_many/00000.txt")]
    assert report.ok
    assert report.steps_per_epoch == 20000


def test_events_stream(tmp_path: Path):
    root = tmp_path / "ds"
    for i in range(3):
        picture(root / "1_x" / f"{i}.png", seed=i)
    picture(root / "stray.png", seed=9)
    events = list(iter_validate(root, ValidateOptions(resolution=0)))
    started = [e for e in events if isinstance(e, Started)]
    assert len(started) == 1 and started[0].total == 3
    assert sum(e.n for e in events if isinstance(e, Advanced)) == 3
    warned = [e for e in events if isinstance(e, Warned)]
    report = events[-1].summary
    assert isinstance(events[-1], Finished)
    assert sorted(w.path for w in warned) == sorted(p.path for p in report.problems)
    assert any("stray-image" in w.message for w in warned)


def test_iter_validate_raises_at_once_for_a_missing_folder(tmp_path: Path):
    from prep.errors import DatasetNotFound

    with pytest.raises(DatasetNotFound):
        iter_validate(tmp_path / "nope")
    with pytest.raises(DatasetNotFound):
        iter_validate(tmp_path, ValidateOptions(reg=tmp_path / "nope"))


def test_bad_option_values_are_user_errors(tmp_path: Path):
    from prep.errors import UserError

    for options in (ValidateOptions(batch_size=0), ValidateOptions(epochs=-1), ValidateOptions(resolution=-5),
                    ValidateOptions(max_token_length=100)):
        with pytest.raises(UserError):
            iter_validate(tmp_path, options)


def test_broken_pool_finishes_in_this_process(tmp_path: Path):
    """A pool that cannot start its workers (forkserver re-running a script read from stdin) must not
    lose the run: the remaining images are decoded in-process."""
    import subprocess
    import sys

    root = tmp_path / "ds"
    for i in range(4):
        picture(root / "1_x" / f"{i}.png", seed=i)
    (root / "1_x" / "cut.png").write_bytes(png_bytes(64, 64)[:40])
    script = (
        "import json, threading\n"
        "from prep.validate import ValidateOptions, validate\n"
        "gate = threading.Event()\n"
        "threading.Thread(target=gate.wait).start()  # a threaded process: the pool uses forkserver\n"
        "try:\n"
        f"    report = validate({str(root)!r}, ValidateOptions(deep=True, workers=2, resolution=0))\n"
        "finally:\n"
        "    gate.set()\n"
        "print(json.dumps(report.to_dict()))\n")
    proc = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["images"] == 5
    assert [p["path"] for p in out["problems"] if p["code"] == "corrupt-image"] == ["1_x/cut.png"]


def test_thousands_of_orphan_captions(tmp_path: Path):
    root = tmp_path / "ds"
    folder = root / "1_x"
    picture(folder / "only.png")
    for i in range(3000):
        (folder / f"c{i:04d}.txt").write_bytes(b"x")
    report = check(root)
    assert len(by_code(report, "orphan-caption")) == 3000
    assert by_code(report, "missing-caption") == ["1_x/only.png"]


def test_long_concept_name_fallback_is_reported_on_the_image(tmp_path: Path):
    root = tmp_path / "ds"
    picture(root / ("1_" + " ".join("a" * 100)) / "a.png")  # 100 tokens in 201 bytes
    report = check(root, max_token_length=75)
    problem = only(report, "caption-too-long")
    assert problem.severity == "warning" and problem.path.endswith("/a.png")
    assert report.longest_caption_tokens == 100
