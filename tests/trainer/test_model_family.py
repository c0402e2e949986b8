"""One answer to "which family is this model" (trainer.model_family) for every caller that asks
before a model load: the config checks, the VRAM estimate, --export-kohya and the LoRA tools."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from trainer.config import TrainConfig
from trainer.estimate import model_family
from trainer.export_kohya import model_kind
from trainer.feature_checks import guess_is_sdxl
from trainer.model_family import config_family, family_of_files


def _folder(root: Path, index: dict, unet: dict) -> Path:
    root.mkdir()
    (root / "model_index.json").write_text(json.dumps(index))
    (root / "unet").mkdir()
    (root / "unet" / "config.json").write_text(json.dumps(unet))
    return root


def _single(path: Path, keys: list[str]) -> Path:
    save_file({k: np.zeros(1, dtype=np.float32) for k in keys}, str(path))
    return path


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    return {
        "sd1": _folder(tmp_path / "sd1", {"_class_name": "StableDiffusionPipeline", "text_encoder": []},
                       {"cross_attention_dim": 768}),
        "sd2": _folder(tmp_path / "sd2", {"_class_name": "StableDiffusionPipeline"}, {"cross_attention_dim": 1024}),
        "sdxl": _folder(tmp_path / "sdxl", {"_class_name": "StableDiffusionXLPipeline", "text_encoder_2": []},
                        {"cross_attention_dim": 2048, "addition_embed_type": "text_time"}),
        "sdxl-file": _single(tmp_path / "xl.safetensors", ["model.diffusion_model.x", "conditioner.embedders.1.model.y"]),
        "sd2-file": _single(tmp_path / "v2.safetensors", ["model.diffusion_model.x", "cond_stage_model.model.y"]),
        "sd1-file": _single(tmp_path / "v1.safetensors", ["model.diffusion_model.x", "cond_stage_model.transformer.y"]),
    }


@pytest.mark.parametrize("name", ["sd1", "sd2", "sdxl", "sdxl-file", "sd2-file", "sd1-file"])
def test_every_caller_gives_the_files_answer(models, name):
    expected = name.split("-")[0]
    config = TrainConfig(pretrained_model=str(models[name]))
    assert family_of_files(models[name]) == expected
    assert config_family(config) == expected
    assert model_family(config) == expected
    assert guess_is_sdxl(config) is (expected == "sdxl")
    assert model_kind(config) == ("sdxl" if expected == "sdxl" else "auto")


def test_model_type_wins_and_unknown_sources_wait_for_the_model(tmp_path, models):
    assert config_family(TrainConfig(pretrained_model=str(models["sdxl"]), model_type="sd1")) == "sd1"
    assert config_family(TrainConfig(pretrained_model=str(models["sd1"]), model_type="sd2-v")) == "sd2"
    damaged = tmp_path / "bad.safetensors"
    damaged.write_bytes(b"\xff" * 16)
    for source in ("stabilityai/stable-diffusion-xl-base-1.0", str(damaged), str(tmp_path / "missing")):
        config = TrainConfig(pretrained_model=source)
        assert config_family(config) is None
        assert guess_is_sdxl(config) is None
    # The estimate still needs a family before the download: a hub id's name decides.
    assert model_family(TrainConfig(pretrained_model="stabilityai/stable-diffusion-xl-base-1.0")) == "sdxl"
