"""Issue 17's validate codes on real files: contradictions, trigger, buckets, identical captions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prep.validate import ValidateOptions, validate
from prep.validation.report import CODES
from tests.prep.validate_fixtures import by_code, caption, check, picture
from tui.cli import main


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "ws" / "dataset"


def write_toml(root: Path, text: str) -> None:
    (root.parent / "lorakit.toml").write_text(text, encoding="utf-8")


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["validate", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_contradictory_tags_bundled_table(root: Path):
    folder = root / "1_a"
    for i, text in enumerate(["1girl, 2girls, smile", "solo, multiple_girls", "1boy, 2boys",
                              "monochrome, colorful", "1girl, solo, smile", "1girl, 1boy"]):
        picture(folder / f"{i}.png", seed=i)
        caption(folder / f"{i}.txt", text)
    report = check(root)
    assert by_code(report, "contradictory-tags") == ["1_a/0.txt", "1_a/1.txt", "1_a/2.txt", "1_a/3.txt"]
    found = [p for p in report.problems if p.code == "contradictory-tags"]
    assert all(p.severity == "warning" for p in found)
    assert "1girl + 2girls" in found[0].message
    assert report.ok  # a warning does not block training


def test_contradictory_tags_extended_in_validate_table(root: Path, capsys):
    folder = root / "1_a"
    picture(folder / "0.png")
    caption(folder / "0.txt", "day, night")
    picture(folder / "1.png", seed=1)
    caption(folder / "1.txt", "day, sky")
    assert by_code(check(root), "contradictory-tags") == []
    write_toml(root, '[validate]\ncontradictory_tags = [["day", "night"]]\n')
    code, out = run_json(capsys, root, "--resolution", "0")
    assert code == 0
    assert [p["path"] for p in out["problems"] if p["code"] == "contradictory-tags"] == ["1_a/0.txt"]


def test_trigger_missing_from_flag_and_position(root: Path):
    folder = root / "5_mayu"
    texts = {"first": "mayu, 1girl", "later": "1girl, mayu", "none": "1girl, smile"}
    for i, (stem, text) in enumerate(texts.items()):
        picture(folder / f"{stem}.png", seed=i)
        caption(folder / f"{stem}.txt", text)
    picture(root.parent / "reg" / "1_girl" / "r.png", seed=9)
    caption(root.parent / "reg" / "1_girl" / "r.txt", "1girl")
    # Without keep_tokens only a missing trigger counts; reg captions never need it.
    report = check(root, trigger="mayu", reg=root.parent / "reg")
    assert by_code(report, "trigger-missing") == ["5_mayu/none.txt"]
    report = check(root, trigger="mayu", keep_tokens=1)
    assert by_code(report, "trigger-missing") == ["5_mayu/later.txt", "5_mayu/none.txt"]
    assert {p.severity for p in report.problems if p.code == "trigger-missing"} == {"warning"}
    assert by_code(check(root), "trigger-missing") == []  # no trigger set: nothing to check


def test_trigger_from_concept_table_and_keep_tokens_from_train(root: Path, capsys):
    folder = root / "5_mayu"
    picture(folder / "a.png")
    caption(folder / "a.txt", "1girl, mayu")
    write_toml(root, '[concept]\ntrigger = "mayu"\n\n[train]\nkeep_tokens = 1\nresolution = 64\n')
    code, out = run_json(capsys, root)
    assert code == 0
    assert [p["path"] for p in out["problems"] if p["code"] == "trigger-missing"] == ["5_mayu/a.txt"]
    # The flag wins over the file: with --keep-tokens 0 the trigger's place does not matter.
    code, out = run_json(capsys, root, "--keep-tokens", "0")
    assert [p for p in out["problems"] if p["code"] == "trigger-missing"] == []
    code, out = run_json(capsys, root, "--trigger", "ohwx")
    assert [p["path"] for p in out["problems"] if p["code"] == "trigger-missing"] == ["5_mayu/a.txt"]


def test_bucket_histogram_and_upscale_from_train_table(root: Path, capsys):
    folder = root / "1_a"
    sizes = {"big": (512, 512), "wide": (768, 512), "wide2": (768, 512), "small": (200, 200)}
    for i, (stem, size) in enumerate(sizes.items()):
        picture(folder / f"{stem}.png", size, seed=i)
        caption(folder / f"{stem}.txt", f"tag {i}")
    write_toml(root, '[train]\nresolution = 512\ntrain_batch_size = 2\n')
    code, out = run_json(capsys, root)
    assert code == 0
    # kohya's buckets for 512: the 3:2 images share the nearest bucket (640x384); the small square is
    # upscaled 2.56x into 512x512.
    buckets = [(b["width"], b["height"], b["images"]) for b in out["buckets"]]
    assert buckets == [(512, 512, 2), (640, 384, 2)]
    assert all(set(b) == {"width", "height", "images"} for b in out["buckets"])
    upscaled = [p for p in out["problems"] if p["code"] == "bucket-upscale"]
    assert [p["path"] for p in upscaled] == ["1_a/small.png"] and upscaled[0]["severity"] == "warning"
    assert "2.56x" in upscaled[0]["message"]
    # Both buckets hold as many images as the batch size (2): no short batch.
    singles = [p for p in out["problems"] if p["code"] == "singleton-bucket"]
    assert singles == []
    write_toml(root, '[train]\nresolution = 512\ntrain_batch_size = 3\nbucket_no_upscale = true\n')
    code, out = run_json(capsys, root)
    assert [p for p in out["problems"] if p["code"] == "bucket-upscale"] == []
    singles = [p for p in out["problems"] if p["code"] == "singleton-bucket"]
    assert singles and {p["severity"] for p in singles} == {"info"}
    held = {(b["width"], b["height"]): b["images"] for b in out["buckets"]}
    assert len(singles) == sum(1 for n in held.values() if n < 3)
    # no_upscale: the small image gets its own 192x192 bucket (floored to the 64 step).
    assert held[(192, 192)] == 1


def test_bucket_histogram_matches_the_trainer(root: Path):
    from prep.buckets import BucketManager

    folder = root / "1_a"
    sizes = [(640, 480), (480, 640), (1024, 400), (300, 900), (512, 512)]
    for i, size in enumerate(sizes):
        picture(folder / f"{i}.png", size, seed=i)
        caption(folder / f"{i}.txt", f"tag {i}")
    report = validate(root, ValidateOptions(resolution=512))
    manager = BucketManager((512, 512))
    expected: dict[tuple[int, int], int] = {}
    for size in sizes:
        bucket = manager.select(*size).bucket
        expected[bucket] = expected.get(bucket, 0) + 1
    assert {(b.width, b.height): b.images for b in report.buckets} == expected


def test_duplicate_caption_is_info(root: Path):
    folder = root / "1_a"
    for i in range(4):
        picture(folder / f"{i}.png", seed=i)
    caption(folder / "0.txt", "1girl, smile")
    caption(folder / "1.txt", "1girl, smile")
    caption(folder / "2.txt", "1girl, smile")
    caption(folder / "3.txt", "1girl, smile, hat")
    report = check(root)
    found = [p for p in report.problems if p.code == "duplicate-caption"]
    assert [(p.path, p.severity) for p in found] == [("1_a/0.txt", "info")]
    assert "3 captions" in found[0].message and report.ok
    assert by_code(check(root, duplicate_caption_images=4), "duplicate-caption") == []


def test_help_documents_every_code_with_severity(capsys):
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    text = capsys.readouterr().out
    for code, severity in CODES.items():
        line = next(line for line in text.splitlines() if line.strip().startswith(code + " "))
        assert severity in line.split()


def test_human_output_shows_buckets_and_info_count(root: Path, capsys):
    folder = root / "1_a"
    for i in range(3):
        picture(folder / f"{i}.png", (512, 512), seed=i)
        caption(folder / f"{i}.txt", "same")
    code = main(["validate", str(root)])
    out = capsys.readouterr().out
    assert code == 0
    assert "buckets: 512x512: 3" in out
    assert "[duplicate-caption]" in out and "1 info" in out


def test_trigger_missing_only_in_the_concept_folder_it_is_for(root: Path, capsys):
    for i, (rel, text) in enumerate({"5_mayu/a": "1girl, smile", "5_mayu/b": "mayu, 1girl",
                                     "3_kurisu/c": "1girl, labcoat", "3_kurisu/d": "kurisu, 1girl"}.items()):
        picture(root / f"{rel}.png", seed=i)
        caption(root / f"{rel}.txt", text)
    write_toml(root, '[concept]\ntrigger = "mayu"\nconcept = "5_mayu"\n')
    code, out = run_json(capsys, root, "--resolution", "0")
    assert code == 0
    assert [p["path"] for p in out["problems"] if p["code"] == "trigger-missing"] == ["5_mayu/a.txt"]
    write_toml(root, '[concept]\ntrigger = "mayu"\nconcept = "mayu"\n')  # the concept name works too
    code, out = run_json(capsys, root, "--resolution", "0")
    assert [p["path"] for p in out["problems"] if p["code"] == "trigger-missing"] == ["5_mayu/a.txt"]
    write_toml(root, '[concept]\ntrigger = "mayu"\nconcept = ""\n')  # empty: every concept folder
    code, out = run_json(capsys, root, "--resolution", "0")
    assert sorted(p["path"] for p in out["problems"] if p["code"] == "trigger-missing") == [
        "3_kurisu/c.txt", "3_kurisu/d.txt", "5_mayu/a.txt"]
    # A trigger of the command line's own applies to all, unless --trigger-concept says which.
    write_toml(root, '[concept]\ntrigger = "mayu"\nconcept = "5_mayu"\n')
    code, out = run_json(capsys, root, "--resolution", "0", "--trigger", "kurisu")
    assert sorted(p["path"] for p in out["problems"] if p["code"] == "trigger-missing") == [
        "3_kurisu/c.txt", "5_mayu/a.txt", "5_mayu/b.txt"]
    code, out = run_json(capsys, root, "--resolution", "0", "--trigger", "kurisu", "--trigger-concept", "3_kurisu")
    assert [p["path"] for p in out["problems"] if p["code"] == "trigger-missing"] == ["3_kurisu/c.txt"]
    assert by_code(check(root, trigger="mayu", trigger_concept="3_kurisu"), "trigger-missing") == \
        ["3_kurisu/c.txt", "3_kurisu/d.txt"]


def test_duplicate_caption_needs_three_by_default_and_help_says_so(root: Path, capsys):
    folder = root / "1_a"
    for i in range(2):
        picture(folder / f"{i}.png", seed=i)
        caption(folder / f"{i}.txt", "1girl, smile")  # a pair of variants: common, not reported
    assert by_code(check(root), "duplicate-caption") == []
    assert by_code(check(root, duplicate_caption_images=2), "duplicate-caption") == ["1_a/0.txt"]
    write_toml(root, "[validate]\nduplicate_caption_images = 2\n")
    code, out = run_json(capsys, root, "--resolution", "0")
    assert [p["path"] for p in out["problems"] if p["code"] == "duplicate-caption"] == ["1_a/0.txt"]
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("duplicate-caption"))
    assert "3 or more" in line and "duplicate_caption_images" in line
