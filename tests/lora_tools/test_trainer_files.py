"""Every LoRA tool on a file written by our own trainer (tiny SD1, clip_skip=2, conv LoRA)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.lora_tools.test_merge_checkpoint import COMPONENTS, assert_same, fused_reference, pipeline_class
from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
from trainer.lora_tools.io import load_lora
from tui.cli import main


@pytest.fixture(scope="module")
def trained(tiny_sd1: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    dataset = make_train_dataset(root / "dataset", images=2, repeats=2)
    config = tiny_config(tiny_sd1, dataset, root / "out", save_precision="fp32", clip_skip=2, conv_dim=2,
                         conv_alpha=1.0, learning_rate=1e-2, max_train_steps=2, output_name="tiny")
    path, _ = run_training(config)
    return Path(path)


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(list(args))
    return code, json.loads(capsys.readouterr().out)


def test_info_and_check_on_trained_file(trained: Path, capsys):
    code, info = run_json(capsys, "lora", "info", str(trained), "--json")
    assert code == 0
    assert info["architecture"] == "SD1" and info["conv"] is True
    assert info["modules"]["te"] > 0 and info["modules"]["unet"] > 0
    assert info["ranks"].keys() >= {"2", "4"}
    assert info["training"]["clip skip"] == "2"
    assert info["dataset_dirs"] == {"2_chara": {"n_repeats": 2, "img_count": 2}}
    assert dict(info["top_tags"])["1girl"] == 2
    code, report = run_json(capsys, "lora", "check", str(trained), "--json")
    assert code == 0 and report["ok"] and report["nonfinite"] == [] and report["zero"] == []
    # clip_skip=2: the last of the tiny encoder's 3 layers never trained, reported not flagged
    assert report["expected_zero"] and all("_layers_2_" in n for n in report["expected_zero"])


def test_resize_merge_extract_on_trained_file(trained: Path, tiny_sd1: Path, tmp_path: Path, capsys):
    resized = tmp_path / "r1.safetensors"
    assert main(["lora", "resize", str(trained), "--rank", "1", "--out", str(resized), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all(0 <= m["retained"] <= 1 + 1e-9 for m in report["modules"])
    small = load_lora(resized)
    assert {m.rank for m in small.modules.values()} == {1}
    assert small.metadata["ss_network_dim"] == "1" and small.metadata["ss_clip_skip"] == "2"

    merged = tmp_path / "merged"
    assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", f"{trained}:1.0", "--out", str(merged),
                 "--format", "diffusers"]) == 0
    assert_same(pipeline_class("sd1").from_pretrained(merged), fused_reference("sd1", tiny_sd1, [(trained, 1.0)]),
                COMPONENTS["sd1"])
    extracted = tmp_path / "x.safetensors"
    assert main(["lora", "extract", "--base", str(tiny_sd1), "--tuned", str(merged), "--rank", "4",
                 "--conv-rank", "2", "--clamp-quantile", "1", "--min-diff", "0", "--out", str(extracted)]) == 0
    capsys.readouterr()
    source, got = load_lora(trained), load_lora(extracted)
    for name, m in source.modules.items():
        assert torch.allclose(got.modules[name].delta(), m.delta(), atol=1e-5), name


def test_trained_sdxl_file(tiny_sdxl: Path, tmp_path: Path, capsys):
    dataset = make_train_dataset(tmp_path / "dataset", images=2)
    config = tiny_config(tiny_sdxl, dataset, tmp_path / "out", save_precision="fp16", learning_rate=1e-2,
                         max_train_steps=2, conv_dim=2)
    path, _ = run_training(config)
    capsys.readouterr()
    code, info = run_json(capsys, "lora", "info", str(path), "--json")
    assert code == 0 and info["architecture"] == "SDXL" and info["precision"] == {"float16": 2 * info["total_modules"]}
    assert info["modules"]["te1"] > 0 and info["modules"]["te2"] > 0 and not info["dynamic_rank"]
    code, report = run_json(capsys, "lora", "check", str(path), "--json")
    assert code == 0 and report["ok"]
    # text encoder 1's last layer is unused by SDXL conditioning; encoder 2's feeds the pooled embedding
    assert report["expected_zero"] and all(n.startswith("lora_te1_") for n in report["expected_zero"])
    # every module lands on a tensor of the tiny SDXL base (LDM UNet names, te1/te2)
    assert main(["lora", "merge", "--base", str(tiny_sdxl), "--lora", str(path), "--out",
                 str(tmp_path / "merged.safetensors")]) == 0
