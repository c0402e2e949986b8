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


def test_noobai_style_v_pred_sdxl_single_file_trains_as_v_prediction(tmp_path, monkeypatch):
    """A single-file SDXL checkpoint carrying NoobAI's `v_pred` and `ztsnr` marker keys: detected, trained
    with the v-prediction target and zero terminal SNR (with a line saying so), recorded in the file."""
    from safetensors.torch import load_file, save_file

    from tests.tiny_models import build_tiny_sdxl
    from trainer.safetensors_read import read_tensors

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build_tiny_sdxl(tmp_path / "xl", te2_hidden=48)
    name = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"
    noop = tmp_path / "noop.safetensors"  # merge takes a LoRA: one with no effect
    save_file({f"{name}.lora_down.weight": torch.zeros(2, 32), f"{name}.lora_up.weight": torch.zeros(32, 2),
               f"{name}.alpha": torch.tensor(2.0)}, str(noop))
    plain = tmp_path / "plain.safetensors"
    for _ in merge_into_checkpoint(model, [(noop, 1.0)], plain):
        pass
    tensors = load_file(str(plain))
    tensors.update({"v_pred": torch.zeros(0), "ztsnr": torch.zeros(0)})  # NoobAI-style marker keys
    marked = tmp_path / "noob-vpred.safetensors"
    save_file(tensors, str(marked))
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    config = tiny_config(marked, dataset, tmp_path / "out", pretrained_model_config=str(model),
                         train_unet_only=True, max_train_steps=2)
    path, events = run_training(config)
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert ("noob-vpred.safetensors: v-prediction model (v_pred/ztsnr marker keys): v_parameterization and "
            "zero_terminal_snr turned on") in warnings
    steps = [e for e in events if e["event"] == "step"]
    assert len(steps) == 2 and all(torch.isfinite(torch.tensor(e["loss"])) for e in steps)
    meta = read_tensors(path)[1]
    assert meta["ss_v_parameterization"] == "True" and meta["ss_zero_terminal_snr"] == "True"
    assert meta["ss_base_model_version"].startswith("sdxl")
