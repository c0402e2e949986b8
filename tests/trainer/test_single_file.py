"""Training from a single-file checkpoint (the A1111/ComfyUI layout), offline with a local config folder."""

from __future__ import annotations

import torch

from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
from trainer.lora_modules import read_lora
from trainer.lora_tools.merge import merge_into_checkpoint


def test_single_file_safetensors_trains_offline(tmp_path, tiny_sd1, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dataset = make_train_dataset(tmp_path / "ds")
    # A single-file checkpoint in the original layout: the tiny model with a first LoRA baked in.
    first, _ = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "first"))
    single = tmp_path / "base.safetensors"
    for _ in merge_into_checkpoint(tiny_sd1, [(first, 1.0)], single):
        pass
    assert single.is_file()
    config = tiny_config(single, dataset, tmp_path / "out", pretrained_model_config=str(tiny_sd1))
    path, events = run_training(config)
    assert events[-1]["event"] == "done"
    modules = read_lora(path).modules
    assert modules and any(name.startswith("lora_te_text_model_") for name in modules)
    assert all(torch.isfinite(m.delta()).all() for m in modules.values())
