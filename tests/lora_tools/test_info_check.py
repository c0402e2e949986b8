"""`lorakit lora info` and `lorakit lora check` on hand-built kohya files."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.lora_tools.conftest import KOHYA_METADATA, SDXL_LINEAR, linear_module, sd1_modules, write_lora
from tui.cli import main


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(list(args))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_info_sd1_with_foreign_metadata(sd1_lora: Path, capsys):
    code, info = run_json(capsys, "lora", "info", str(sd1_lora), "--json")
    assert code == 0
    assert info["architecture"] == "SD1"
    assert info["modules"] == {"te": 4, "unet": 4}
    assert info["ranks"] == {"4": 8} and not info["dynamic_rank"]
    assert info["alphas"] == {"2": 8}
    assert info["conv"] is False
    assert info["precision"] == {"float32": 16}
    # unknown keys from other tools are kept raw; undecodable JSON-looking values stay strings
    assert info["metadata"]["ot_custom_field"] == "{not json"
    assert info["metadata"]["another.tool/version"] == "7"
    assert info["top_tags"][:3] == [["1girl", 30], ["solo", 15], ["lowres", 10]]
    assert info["dataset_dirs"]["2_HighRes"] == {"n_repeats": 2, "img_count": 20}
    assert info["bucket_info"]["buckets"]["0"]["count"] == 40
    assert info["training"]["started"].startswith("2023-11-14")
    assert info["training"]["optimizer"] == KOHYA_METADATA["ss_optimizer"]

    assert main(["lora", "info", str(sd1_lora)]) == 0
    text = capsys.readouterr().out
    assert "architecture: SD1" in text and "ot_custom_field: {not json" in text and "1girl" in text


def test_info_sdxl_dynamic_conv_fp16(tmp_path: Path, capsys):
    g = torch.Generator().manual_seed(1)
    modules = {}
    for i, (name, out, inp) in enumerate(SDXL_LINEAR):
        down, up = linear_module(out, inp, 2 + 2 * (i % 2), g)
        modules[name] = (down, up, 1.0)
    modules["lora_unet_input_blocks_1_0_in_layers_2"] = (torch.randn(4, 16, 3, 3), torch.randn(32, 4, 1, 1), 1.0)
    path = write_lora(tmp_path / "xl.safetensors", modules, None, dtype=torch.float16)
    code, info = run_json(capsys, "lora", "info", str(path), "--json")
    assert code == 0
    assert info["architecture"] == "SDXL"
    assert info["modules"] == {"te1": 2, "te2": 2, "unet": 4}
    assert info["dynamic_rank"] and info["ranks"] == {"2": 4, "4": 4}
    assert info["conv"] and info["conv_modules"] == 1
    assert info["precision"] == {"float16": 16}
    assert info["metadata"] == {}
    main(["lora", "info", str(path)])
    text = capsys.readouterr().out
    assert "rank: dynamic" in text and "conv LoRA: yes" in text


def test_info_rejects_non_lora(tmp_path: Path, capsys):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a safetensors file")
    assert main(["lora", "info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert str(bad) in err and "safetensors" in err and len(err.strip().splitlines()) == 1
    assert main(["lora", "info", str(tmp_path / "missing.safetensors")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_check_clean_file(sd1_lora: Path, capsys):
    code, report = run_json(capsys, "lora", "check", str(sd1_lora), "--json")
    assert code == 0
    assert report["modules"] == 8 and report["ok"] is True
    assert report["zero"] == [] and report["nonfinite"] == [] and report["outliers"] == []
    stat = next(s for s in report["stats"] if s["name"].endswith("attn1_to_q"))
    down, up, _ = sd1_modules()["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"]
    assert abs(stat["update_norm"] - 0.5 * float(torch.linalg.norm(up.double() @ down.double()))) < 1e-9
    assert abs(stat["down_mean_abs"] - float(down.double().abs().mean())) < 1e-6


def test_check_flags_planted_zero_and_nan(tmp_path: Path, capsys):
    modules = sd1_modules()
    zero_name = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"
    nan_name = "lora_te_text_model_encoder_layers_0_mlp_fc1"
    down, up, alpha = modules[zero_name]
    modules[zero_name] = (down, torch.zeros_like(up), alpha)
    down, up, alpha = modules[nan_name]
    up = up.clone()
    up[0, 0] = float("nan")
    modules[nan_name] = (down, up, alpha)
    path = write_lora(tmp_path / "bad.safetensors", modules, {"ss_clip_skip": "1"})
    code, report = run_json(capsys, "lora", "check", str(path), "--json")
    assert code == 1
    assert report["zero"] == [zero_name]
    assert report["nonfinite"] == [nan_name]
    assert report["ok"] is False
    assert main(["lora", "check", str(path)]) == 1
    assert "NaN/Inf: " + nan_name in capsys.readouterr().out


def test_check_clip_skip_last_layer_is_expected(tmp_path: Path, capsys):
    modules = sd1_modules()
    last = [n for n in modules if n.startswith("lora_te_text_model_encoder_layers_1_")]
    for name in last:
        down, up, alpha = modules[name]
        modules[name] = (down, torch.zeros_like(up), alpha)
    with_skip = write_lora(tmp_path / "skip2.safetensors", modules, {"ss_clip_skip": "2"})
    code, report = run_json(capsys, "lora", "check", str(with_skip), "--json")
    assert code == 0 and report["ok"] and report["zero"] == []
    assert sorted(report["expected_zero"]) == sorted(last)
    assert main(["lora", "check", str(with_skip)]) == 0
    assert "clip_skip=2" in capsys.readouterr().out
    # without clip skip metadata the same zeros are a problem
    no_skip = write_lora(tmp_path / "skip1.safetensors", modules, {})
    code, report = run_json(capsys, "lora", "check", str(no_skip), "--json")
    assert code == 1 and sorted(report["zero"]) == sorted(last)


def test_check_outlier(tmp_path: Path, capsys):
    modules = sd1_modules()
    name = "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0"
    down, up, alpha = modules[name]
    modules[name] = (down * 100, up, alpha)
    path = write_lora(tmp_path / "outlier.safetensors", modules)
    code, report = run_json(capsys, "lora", "check", str(path), "--json")
    assert code == 0 and report["outliers"] == [name]


def test_check_as_a_process(tmp_path: Path, run_cli):
    modules = sd1_modules()
    name = "lora_te_text_model_encoder_layers_0_mlp_fc1"
    down, up, alpha = modules[name]
    modules[name] = (down, torch.full_like(up, float("inf")), alpha)
    path = write_lora(tmp_path / "inf.safetensors", modules)
    result = run_cli("lora", "check", str(path), "--json")
    assert result.code == 1
    assert json.loads(result.out)["nonfinite"] == [name]
