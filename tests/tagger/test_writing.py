"""Captions written by `lorakit tag`: modes, the journal (undo), dry runs, JSON, datasets and bare folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_caption, write_image
from tests.tagger.conftest import by_name
from tests.tagger.onnx_models import constant, write_model_folder
from tui.cli import main

FEATURES = (constant("general", 9, 0.9), constant("sensitive", 9, 0.1), constant("questionable", 9, 0.1),
            constant("explicit", 9, 0.1), constant("solo", 0, 0.9), constant("long_hair", 0, 0.8))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("w") / "model", FEATURES)


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    write_image(root / "new.png")
    write_image(root / "empty.png")
    write_caption(root / "empty.txt", "  \n")
    write_image(root / "has.jpg")
    write_caption(root / "has.txt", "1girl, long hair")
    return root


def _captions(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(root.rglob("*.txt"))}


@pytest.mark.parametrize("mode, expected", [
    ("skip", b"1girl, long hair"),
    ("overwrite", b"solo, long hair"),
    ("append", b"1girl, long hair, solo, long hair"),
    ("prepend", b"solo, long hair, 1girl, long hair"),
    ("merge", b"1girl, long hair, solo"),
])
def test_modes_and_undo(folder, model, tag_json, tag, mode, expected):
    before = _captions(folder)
    report = tag_json(folder, "--model", model, "--mode", mode)
    after = _captions(folder)
    assert after["new.txt"] == b"solo, long hair" and after["empty.txt"] == b"solo, long hair"
    assert after["has.txt"] == expected
    assert report["images"] == 3
    assert report["written"] == (2 if mode == "skip" else 3)
    assert report["skipped"] == (1 if mode == "skip" else 0)
    assert main(["undo", str(folder)]) == 0
    assert _captions(folder) == before  # new.txt removed again, the others restored byte for byte


def test_skip_never_decodes_captioned_images(folder, model, tag_json):
    (folder / "has.jpg").write_bytes(b"corrupt, but never opened in skip mode")
    report = tag_json(folder, "--model", model)
    assert report["skipped"] == 1 and report["written"] == 2 and not report["errors"]
    assert {r["path"] for r in report["results"]} == {"empty.png", "new.png"}


def test_json_shape(folder, model, tag_json):
    report = tag_json(folder, "--model", model, "--mode", "overwrite")
    for key in ("images", "written", "skipped", "provider", "results"):
        assert key in report
    assert report["provider"] == "CPUExecutionProvider"
    result = by_name(report)["new.png"]
    assert set(result) == {"path", "rating", "tags"}
    assert result["path"] == "new.png" and result["rating"] == "general"
    assert result["tags"] == [["solo", pytest.approx(0.9)], ["long hair", pytest.approx(0.8)]]


def test_dry_run_changes_nothing(folder, model, tag):
    before = _captions(folder)
    code, out, err = tag(folder, "--model", model, "--dry-run", "--mode", "merge")
    assert code == 0, err
    assert "new.png: solo, long hair" in out and "has.jpg: 1girl, long hair, solo" in out
    assert _captions(folder) == before
    assert not (folder / ".lorakit").exists()  # no journal operation either
    code, out, _ = tag(folder, "--model", model, "--dry-run", "--json")
    report = json.loads(out)
    assert report["written"] == 0 and report["dry_run"] is True and report["would_write"] == 2


def test_a_second_run_writes_nothing_and_records_no_operation(folder, model, tag_json):
    tag_json(folder, "--model", model, "--mode", "overwrite")
    report = tag_json(folder, "--model", model, "--mode", "overwrite")
    assert report["written"] == 0
    assert main(["undo", str(folder)]) == 0  # undoes the first run (the second one recorded nothing)
    assert not (folder / "new.txt").exists()


def test_corrupt_images_are_reported_and_skipped(tmp_path, model, tag):
    root = tmp_path / "imgs"
    for i in range(6):
        write_image(root / f"ok{i}.png")
    (root / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "empty.jpg").write_bytes(b"")
    code, out, err = tag(root, "--model", model, "--json", "--workers", "2", "--batch-size", "2")
    assert code == 0, err
    report = json.loads(out)
    # counted once, as unreadable (issue 14 #21: they were counted as skipped too)
    assert report["written"] == 6 and report["failed"] == 2 and report["skipped"] == 0
    assert report["images"] == report["written"] + report["failed"]
    assert {e["path"] for e in report["errors"]} == {"bad.png", "empty.jpg"}
    assert "bad.png" in err and "empty.jpg" in err
    assert not (root / "bad.txt").exists()


def test_dataset_with_concept_folders(small_dataset, model, tag_json):
    report = tag_json(small_dataset, "--model", model)
    # 5 of the 6 images have captions already; only 1_LowRes/b.webp gets one.
    assert report["images"] == 6 and report["written"] == 1 and report["skipped"] == 5
    assert report["results"][0]["path"] == "1_LowRes/b.webp"
    assert (small_dataset / "1_LowRes" / "b.txt").read_text() == "solo, long hair"
    assert main(["undo", str(small_dataset)]) == 0
    assert not (small_dataset / "1_LowRes" / "b.txt").exists()


def test_bare_folder_recursive(tmp_path, model, tag_json):
    root = tmp_path / "raw"
    write_image(root / "top.png")
    write_image(root / "sub" / "deep.png")
    report = tag_json(root, "--model", model)
    assert [r["path"] for r in report["results"]] == ["top.png"]
    report = tag_json(root, "--model", model, "--recursive")
    assert [r["path"] for r in report["results"]] == ["sub/deep.png"]  # top.png is captioned now
    assert (root / "sub" / "deep.txt").read_text() == "solo, long hair"
    assert main(["undo", str(root)]) == 0 and not (root / "sub" / "deep.txt").exists()


def test_caption_extension_and_workspace_table(tmp_path, model, tag_json):
    ws = tmp_path / "ws"
    write_image(ws / "dataset" / "1_a" / "x.png")
    (ws / "lorakit.toml").write_text(f'[tagger]\nmodel = "{model.as_posix()}"\ncaption_extension = ".caption"\n')
    report = tag_json(ws / "dataset")
    assert report["written"] == 1 and (ws / "dataset" / "1_a" / "x.caption").read_text() == "solo, long hair"


def test_missing_dataset_and_bad_options(tmp_path, model, tag):
    code, _, err = tag(tmp_path / "nope", "--model", model)
    assert code == 2 and "nope" in err
    code, _, err = tag(tmp_path, "--model", model, "--general-threshold", "1.5")
    assert code == 1 and "between 0 and 1" in err
    with pytest.raises(SystemExit) as exc:
        main(["tag", str(tmp_path), "--mode", "sideways"])
    assert exc.value.code == 2
    code, _, err = tag()
    assert code == 2 and "DATASET" in err


def test_cli_subprocess_end_to_end(folder, model, run_cli):
    r = run_cli("tag", folder, "--model", model)
    assert r.code == 0, r.err
    assert "CPUExecutionProvider" in r.out and "2 written" in r.out and "1 skipped" in r.out
    r = run_cli("undo", folder)
    assert r.code == 0 and not (folder / "new.txt").exists()


def test_device_choice_is_reported(folder, model, tag):
    code, out, err = tag(folder, "--model", model, "--device", "cpu", "--json", "--dry-run")
    assert code == 0 and json.loads(out)["provider"] == "CPUExecutionProvider"
    code, out, err = tag(folder, "--model", model, "--device", "cuda", "--json", "--dry-run")
    if code == 0:  # a machine with a working CUDA onnxruntime
        assert json.loads(out)["provider"] == "CUDAExecutionProvider"
    else:
        assert code == 1 and len(err.strip().splitlines()) == 1 and "--device cpu" in err, err
        assert out == ""


def test_symlinks_leading_out_of_the_dataset_are_not_tagged(tmp_path, model, tag_json):
    """Issue 14 #18: a concept folder or image symlinked to another place gets no caption written there."""
    outside = tmp_path / "elsewhere"
    write_image(outside / "o.png")
    write_image(outside / "single.png")
    root = tmp_path / "ds"
    write_image(root / "1_x" / "a.png")
    (root / "2_out").symlink_to(outside, target_is_directory=True)
    (root / "1_x" / "linked.png").symlink_to(outside / "single.png")
    report = tag_json(root, "--model", model)
    assert report["images"] == 1 and report["written"] == 1
    assert sorted(p.name for p in outside.iterdir()) == ["o.png", "single.png"]
    assert not (root / "1_x" / "linked.txt").exists()
    report = tag_json(root, "--model", model, "--follow-symlinks")
    assert report["images"] == 4  # a.png, linked.png, 2_out/o.png, 2_out/single.png
    assert (outside / "o.txt").is_file()
