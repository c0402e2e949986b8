"""`dedupe --method clip` with a tiny randomly initialised CLIP vision model saved locally."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.prep.test_dedupe import picture, snapshot
from tui.cli import main


def save_tiny_clip(folder: Path, *, projection: bool = True) -> Path:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        CLIPVisionModelWithProjection,
    )

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=32, patch_size=8, projection_dim=16)
    model = CLIPVisionModelWithProjection(config) if projection else CLIPVisionModel(config)
    model.save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory) -> Path:
    return save_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture
def clip_dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "ds" / "2_thing"
    folder.mkdir(parents=True)
    original = picture(0, (96, 72))
    original.save(folder / "a.png")
    original.resize((80, 60), Image.Resampling.LANCZOS).save(folder / "b_small.png")
    original.save(folder / "c_copy.webp", lossless=True)
    (folder / "b_small.txt").write_text("small", encoding="utf-8")
    for seed in range(1, 6):
        picture(seed, (96, 72)).save(folder / f"other{seed}.png")
    return tmp_path / "ds"


def dedupe_json(capsys, *args: str) -> dict:
    assert main(["dedupe", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_clip_groups_copies_and_caches(clip_dataset: Path, tiny_clip: Path, capsys):
    args = (str(clip_dataset), "--method", "clip", "--model", str(tiny_clip), "--threshold", "0.999")
    found = dedupe_json(capsys, *args)
    assert found["images"] == 8
    assert len(found["groups"]) == 1
    group = found["groups"][0]
    assert group["keep"] == "2_thing/a.png"  # largest; the lossless webp copy ties on pixels, PNG is bigger
    assert sorted(group["drop"]) == ["2_thing/b_small.png", "2_thing/c_copy.webp"]
    assert 0.999 <= group["score"] <= 1.0 + 1e-6
    caches = list((clip_dataset / ".lorakit" / "cache").glob("clip-*.npz"))
    assert len(caches) == 1
    assert dedupe_json(capsys, *args) == found  # from the cache, the same answer

    before = snapshot(clip_dataset)
    assert main(["dedupe", *args, "--apply"]) == 0
    assert not (clip_dataset / "2_thing" / "b_small.png").exists()
    assert main(["undo", str(clip_dataset)]) == 0
    assert snapshot(clip_dataset) == before


def test_clip_low_threshold_links_everything(clip_dataset: Path, tiny_clip: Path, capsys):
    found = dedupe_json(capsys, str(clip_dataset), "--method", "clip", "--model", str(tiny_clip),
                        "--threshold", "-1", "--keep", "first")
    assert len(found["groups"]) == 1 and found["groups"][0]["keep"] == "2_thing/a.png"
    assert len(found["groups"][0]["drop"]) == 7


def test_clip_vision_model_without_projection(clip_dataset: Path, tmp_path: Path, capsys):
    model = save_tiny_clip(tmp_path / "pooled", projection=False)
    found = dedupe_json(capsys, str(clip_dataset), "--method", "clip", "--model", str(model),
                        "--threshold", "0.999")
    assert sorted([found["groups"][0]["keep"], *found["groups"][0]["drop"]]) == [
        "2_thing/a.png", "2_thing/b_small.png", "2_thing/c_copy.webp"]


def test_clip_bad_model_is_one_line_error(clip_dataset: Path, tmp_path: Path, capsys):
    empty = tmp_path / "empty_model"
    empty.mkdir()
    assert main(["dedupe", str(clip_dataset), "--method", "clip", "--model", str(empty)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "config.json" in err
    assert main(["dedupe", str(clip_dataset), "--method", "clip", "--model", str(tmp_path / "nope")]) == 1
    assert main(["dedupe", str(clip_dataset), "--method", "clip", "--threshold", "1.5"]) == 1
