"""Every problem code of `lorakit validate`, each found in real files with its exact severity."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from prep.validation.report import CODES
from tests.prep.validate_fixtures import by_code, caption, check, encoded, only, picture, png_bytes


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "ds"


def good_concept(root: Path, name: str = "2_char", count: int = 2, seed: int = 0) -> Path:
    folder = root / name
    for i in range(count):
        picture(folder / f"img{i}.png", seed=seed + i)
        caption(folder / f"img{i}.txt", f"char, tag{seed + i}")
    return folder


def test_clean_dataset_has_no_problem(root: Path):
    good_concept(root)
    report = check(root)
    assert report.problems == [] and report.ok


def test_no_concepts_empty_dataset(root: Path):
    root.mkdir()
    report = check(root)
    problem = only(report, "no-concepts")
    assert (problem.severity, problem.path) == ("error", ".")
    assert not report.ok


def test_no_concepts_with_images_directly_in_dataset(root: Path):
    picture(root / "a.png")
    picture(root / "b.jpg", seed=1)
    report = check(root)
    assert by_code(report, "no-concepts") == ["."]
    assert "2 image(s)" in only(report, "no-concepts").message
    assert by_code(report, "stray-image") == ["a.png", "b.jpg"]


@pytest.mark.parametrize("name", ["photo", "0_x", "x_photo", "3_", "-1_x", "3_   "])
def test_bad_folder_name(root: Path, name: str):
    good_concept(root)
    picture(root / name / "a.png")
    problem = only(check(root), "bad-folder-name")
    assert (problem.severity, problem.path) == ("error", name)


def test_good_folder_names_with_spaces_and_underscores(root: Path):
    good_concept(root, "10_shiina mayuri")
    good_concept(root, "2_High_Res", seed=5)
    report = check(root)
    assert report.ok and report.problems == []
    assert [(c.folder, c.name, c.repeats) for c in report.concepts] == [
        ("10_shiina mayuri", "shiina mayuri", 10), ("2_High_Res", "High_Res", 2)]


def test_empty_concept(root: Path):
    good_concept(root)
    caption(root / "3_empty" / "orphan.txt", "x")
    (root / "3_empty" / "anim.gif").write_bytes(b"GIF89a")
    (root / "1_nothing").mkdir()
    report = check(root)
    assert by_code(report, "empty-concept") == ["1_nothing", "3_empty"]
    assert only(report, "unsupported-format").path == "3_empty/anim.gif"
    assert not report.ok


def test_stray_image(root: Path):
    good_concept(root)
    picture(root / "stray.webp", seed=9)
    problem = only(check(root), "stray-image")
    assert (problem.severity, problem.path) == ("error", "stray.webp")


@pytest.mark.parametrize("ext", [".gif", ".tif", ".tiff", ".avif", ".heic", ".jfif", ".GIF"])
def test_unsupported_format(root: Path, ext: str):
    folder = good_concept(root)
    (folder / f"clip{ext}").write_bytes(b"not read anyway")
    problem = only(check(root), "unsupported-format")
    assert (problem.severity, problem.path) == ("error", f"2_char/clip{ext}")
    assert ext.lower() in problem.message


def test_unsupported_format_in_dataset_root(root: Path):
    good_concept(root)
    Image.new("RGB", (8, 8)).save(root / "loose.gif")
    assert by_code(check(root), "unsupported-format") == ["loose.gif"]


@pytest.mark.parametrize("content", [b"", b"this is text, not a PNG", b"\x89PNG\r\n\x1a\n\x00\x00", b"\xff\xd8\xff"])
def test_corrupt_image(root: Path, content: bytes):
    folder = good_concept(root)
    (folder / "broken.png").write_bytes(content)
    caption(folder / "broken.txt", "x")
    report = check(root)
    problem = only(report, "corrupt-image")
    assert (problem.severity, problem.path) == ("error", "2_char/broken.png")
    assert not report.ok
    assert report.images == 3  # kohya would try (and fail) to load it


def test_extension_mismatch(root: Path):
    folder = good_concept(root)
    picture(folder / "really_png.jpg", seed=7, fmt="PNG")
    picture(folder / "really_jpeg.webp", seed=8, fmt="JPEG")
    picture(folder / "fine.jpeg", seed=9)
    report = check(root)
    assert by_code(report, "extension-mismatch") == ["2_char/really_jpeg.webp", "2_char/really_png.jpg"]
    problem = [p for p in report.problems if p.code == "extension-mismatch"][1]
    assert problem.severity == "warning" and "PNG" in problem.message
    assert report.ok


def test_missing_caption_names_the_fallback(root: Path):
    folder = good_concept(root, "6_photo of me")
    picture(folder / "bare.png", seed=20)
    report = check(root)
    problem = only(report, "missing-caption")
    assert (problem.severity, problem.path) == ("warning", "6_photo of me/bare.png")
    assert "photo of me" in problem.message
    assert report.ok and report.captioned == 2 and report.images == 3


def test_orphan_caption(root: Path):
    folder = good_concept(root)
    caption(folder / "gone.txt", "x")
    caption(folder / "IMG0.TXT", "wrong case")  # kohya looks for img0.txt exactly
    report = check(root)
    assert by_code(report, "orphan-caption") == ["2_char/IMG0.TXT", "2_char/gone.txt"]
    assert all(p.severity == "warning" for p in report.problems)


@pytest.mark.parametrize("text", ["", " , ,\n", "\ufeff"])
def test_empty_caption(root: Path, text: str):
    folder = good_concept(root)
    caption(folder / "img0.txt", text)
    problem = only(check(root), "empty-caption")
    assert (problem.severity, problem.path) == ("warning", "2_char/img0.txt")


def test_caption_encoding(root: Path):
    folder = good_concept(root)
    caption(folder / "img1.txt", "caf\xe9, tag".encode("latin-1"))
    caption(folder / "img0.txt", "\ufeffcafé, BOM is fine")
    report = check(root)
    problem = only(report, "caption-encoding")
    assert (problem.severity, problem.path) == ("error", "2_char/img1.txt")
    assert not report.ok


def test_ambiguous_caption(root: Path):
    folder = good_concept(root)
    picture(folder / "img0.jpg", seed=30)
    report = check(root)
    problem = only(report, "ambiguous-caption")
    assert (problem.severity, problem.path) == ("error", "2_char/img0.txt")
    assert "img0.jpg" in problem.message and "img0.png" in problem.message


def test_duplicate_image_reports_each_copy_after_the_first(root: Path):
    first = good_concept(root, "1_a")
    second = good_concept(root, "2_b", seed=10)
    shutil.copyfile(first / "img0.png", second / "copy.png")
    shutil.copyfile(first / "img0.png", first / "zz.png")
    report = check(root)
    assert by_code(report, "duplicate-image") == ["1_a/zz.png", "2_b/copy.png"]
    assert all("1_a/img0.png" in p.message for p in report.problems if p.code == "duplicate-image")
    assert {p.severity for p in report.problems if p.code == "duplicate-image"} == {"warning"}


def test_same_size_different_bytes_are_not_duplicates(root: Path):
    folder = root / "1_a"
    (folder).mkdir(parents=True)
    for i in range(5):
        (folder / f"{i}.png").write_bytes(png_bytes(2, 1, pixels=bytes([0, i, 0])))
        caption(folder / f"{i}.txt", "x")
    sizes = {(folder / f"{i}.png").stat().st_size for i in range(5)}
    assert len(sizes) == 1
    assert by_code(check(root), "duplicate-image") == []
    assert by_code(check(root, deep=True, workers=1), "duplicate-image") == []


def test_duplicate_image_in_deep_mode(root: Path):
    folder = good_concept(root)
    shutil.copyfile(folder / "img1.png", folder / "img9.png")
    assert by_code(check(root, deep=True, workers=2), "duplicate-image") == ["2_char/img9.png"]


def test_duplicate_tag(root: Path):
    folder = good_concept(root)
    caption(folder / "img0.txt", "1girl, smile,  1girl , smile, hat")
    problem = only(check(root), "duplicate-tag")
    assert (problem.severity, problem.path) == ("warning", "2_char/img0.txt")
    assert "1girl" in problem.message and "smile" in problem.message


@pytest.mark.parametrize("name, mode, save", [
    ("rgba.png", "RGBA", {}),
    ("la.png", "LA", {}),
    ("palette.png", "P", {"transparency": 0}),
    ("rgba.webp", "RGBA", {"lossless": True}),
    ("lossy.webp", "RGBA", {}),
])
def test_has_alpha(root: Path, name: str, mode: str, save: dict):
    folder = good_concept(root)
    picture(folder / name, seed=40, mode=mode, **save)
    for deep in (False, True):
        problem = only(check(root, deep=deep, workers=1), "has-alpha")
        assert (problem.severity, problem.path) == ("warning", f"2_char/{name}")


def test_opaque_modes_have_no_alpha(root: Path):
    folder = good_concept(root)
    picture(folder / "grey.png", seed=41, mode="L")
    picture(folder / "palette.png", seed=42, mode="P")
    picture(folder / "photo.jpg", seed=43)
    picture(folder / "lossy.webp", seed=44)
    assert by_code(check(root), "has-alpha") == []


def test_too_small(root: Path):
    folder = root / "1_x"
    picture(folder / "small.png", (600, 300), seed=1)
    picture(folder / "exact.png", (512, 700), seed=2)
    for name in ("small", "exact"):
        caption(folder / f"{name}.txt", "x")
    report = check(root, resolution=512)
    problem = only(report, "too-small")
    assert (problem.severity, problem.path) == ("warning", "1_x/small.png")
    assert "600x300" in problem.message
    assert by_code(check(root, resolution=256), "too-small") == []


def test_too_small_default_resolution_is_512(root: Path):
    good_concept(root)
    from prep.validate import ValidateOptions, validate

    assert len(by_code(validate(root, ValidateOptions()), "too-small")) == 2


def test_caption_too_long(root: Path):
    folder = good_concept(root)
    caption(folder / "img0.txt", ", ".join(f"word{i}" for i in range(40)))  # ~ 120 tokens
    caption(folder / "img1.txt", ", ".join(f"tag{i}" for i in range(120)))  # > 225 tokens
    report = check(root)
    problem = only(report, "caption-too-long")
    assert (problem.severity, problem.path) == ("error", "2_char/img1.txt")
    assert report.longest_caption_tokens > 225 and report.recommended_max_token_length == 225
    report = check(root, max_token_length=75)
    found = {p.path: p.severity for p in report.problems if p.code == "caption-too-long"}
    assert found == {"2_char/img0.txt": "warning", "2_char/img1.txt": "error"}
    assert {p.path for p in check(root, max_token_length=150).problems
            if p.code == "caption-too-long"} == {"2_char/img1.txt"}


def test_token_counts_and_recommendation(root: Path):
    from prep.clip_tokens import count_tokens

    folder = good_concept(root)
    caption(folder / "img0.txt", " 1girl ,long   hair,, smile ")
    caption(folder / "img1.txt", ", ".join(f"word{i}" for i in range(30)))
    report = check(root)
    assert report.longest_caption_tokens == count_tokens(", ".join(f"word{i}" for i in range(30)))
    assert 75 < report.longest_caption_tokens <= 150
    assert report.recommended_max_token_length == 150


def test_missing_caption_counts_the_concept_name_tokens(root: Path):
    from prep.clip_tokens import count_tokens

    picture(root / "1_a very long concept name here" / "a.png")
    report = check(root)
    assert report.longest_caption_tokens == count_tokens("a very long concept name here")


def test_unreadable_broken_symlink_and_loop(root: Path):
    folder = good_concept(root)
    os.symlink(folder / "nowhere.png", folder / "dangling.png")
    os.symlink(folder / "loop.png", folder / "loop.png")
    os.symlink(root / "missing_folder", root / "5_gone")
    os.symlink(folder / "nothing.txt", folder / "img0.txt.tmp")  # a dangling non-image is reported too
    report = check(root)
    assert by_code(report, "unreadable") == ["2_char/dangling.png", "2_char/img0.txt.tmp", "2_char/loop.png",
                                             "5_gone"]
    assert all(p.severity == "error" for p in report.problems if p.code == "unreadable")
    assert "broken symbolic link" in report.problems[0].message


def test_unreadable_caption_symlink_is_not_also_missing(root: Path):
    folder = good_concept(root)
    (folder / "img0.txt").unlink()
    os.symlink(folder / "nowhere.txt", folder / "img0.txt")
    report = check(root)
    assert by_code(report, "unreadable") == ["2_char/img0.txt"]
    assert by_code(report, "missing-caption") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_permissions(root: Path):
    folder = good_concept(root)
    locked = good_concept(root, "3_locked", seed=50)
    (folder / "img0.png").chmod(0)
    (folder / "img1.txt").chmod(0)
    locked.chmod(0)
    try:
        report = check(root)
    finally:
        locked.chmod(0o755)
    assert by_code(report, "unreadable") == ["2_char/img0.png", "2_char/img1.txt", "3_locked"]


def test_symlinked_folder_to_the_dataset_itself_does_not_loop(root: Path):
    good_concept(root)
    os.symlink(root, root / "1_self")
    report = check(root)
    assert "1_self" in by_code(report, "empty-concept")


def test_hidden_entries_are_ignored(root: Path):
    folder = good_concept(root)
    (root / ".lorakit" / "journal").mkdir(parents=True)
    (folder / ".hidden.png").write_bytes(b"junk")
    (root / ".DS_Store").write_bytes(b"junk")
    assert check(root).problems == []


def test_caption_extension_option(root: Path):
    folder = root / "1_x"
    picture(folder / "a.png")
    caption(folder / "a.caption", "tag, tag")
    report = check(root, caption_extension=".caption")
    assert by_code(report, "duplicate-tag") == ["1_x/a.caption"]
    assert by_code(report, "missing-caption") == [] and report.captioned == 1
    assert by_code(check(root, caption_extension="caption"), "missing-caption") == []


def test_every_code_is_documented_with_its_severity():
    issue = {
        "no-concepts": "error", "bad-folder-name": "error", "empty-concept": "error", "stray-image": "error",
        "unsupported-format": "error", "corrupt-image": "error", "extension-mismatch": "warning",
        "missing-caption": "warning", "orphan-caption": "warning", "empty-caption": "warning",
        "caption-encoding": "error", "ambiguous-caption": "error", "duplicate-image": "warning",
        "duplicate-tag": "warning", "has-alpha": "warning", "too-small": "warning", "caption-too-long": "error",
        "unreadable": "error",
    }
    assert {code: CODES[code] for code in issue} == issue
    issue17 = {"contradictory-tags": "warning", "trigger-missing": "warning", "bucket-upscale": "warning",
               "singleton-bucket": "info", "duplicate-caption": "info"}
    assert {code: CODES[code] for code in issue17} == issue17
    issue14 = {"truncated-image": "error", "symlink-outside": "warning"}
    assert {code: CODES[code] for code in issue14} == issue14
    assert set(CODES) - set(issue) - set(issue17) - set(issue14) == {"too-large"}


def test_truncated_files_are_found_from_their_tail(root: Path):
    """Issue 14 #20: the header reads fine, the end is missing; the default (header) run finds it too."""
    folder = good_concept(root)
    for name, fmt in (("cut.jpg", "JPEG"), ("cut.png", "PNG"), ("cut.webp", "WEBP")):
        data = encoded((256, 256), fmt)
        (folder / name).write_bytes(data[: len(data) * 2 // 3])
        caption(folder / f"{Path(name).stem}.txt", "x")
    cut = {"2_char/cut.jpg", "2_char/cut.png", "2_char/cut.webp"}
    for report in (check(root), check(root, deep=True, workers=1), check(root, deep=True, workers=2)):
        assert set(by_code(report, "truncated-image")) == cut
        assert not report.ok
        assert by_code(report, "corrupt-image") == []
    assert "end-of-image" in [p for p in check(root).problems if p.path == "2_char/cut.jpg"][0].message


def test_data_after_the_end_is_not_truncation(root: Path):
    folder = good_concept(root)
    for name, fmt in (("extra.jpg", "JPEG"), ("extra.png", "PNG")):
        (folder / name).write_bytes(encoded((64, 64), fmt) + b"\0" * 500)  # padding after EOI / IEND
        caption(folder / f"{Path(name).stem}.txt", "x")
    assert by_code(check(root), "truncated-image") == []


def test_deep_ignores_the_callers_truncated_images_setting(root: Path, monkeypatch):
    from PIL import ImageFile

    folder = good_concept(root)
    data = encoded((128, 128), "JPEG")
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    for workers in (1, 2):
        assert by_code(check(root, deep=True, workers=workers), "truncated-image") == ["2_char/cut.jpg"]
    assert by_code(check(root), "truncated-image") == ["2_char/cut.jpg"]
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True
