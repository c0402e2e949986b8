"""`lorakit lora resize` and LoRA+LoRA `lorakit lora merge --rank` against torch.linalg.svd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.lora_tools.conftest import KOHYA_METADATA, sd1_modules, write_lora
from trainer.lora_tools.io import load_lora
from tui.cli import main


def full_delta(down: torch.Tensor, up: torch.Tensor, alpha: float | None) -> torch.Tensor:
    rank = down.shape[0]
    scale = (alpha if alpha is not None else rank) / rank
    return scale * (up.reshape(up.shape[0], -1).double() @ down.reshape(rank, -1).double())


def best_rank(matrix: torch.Tensor, rank: int) -> torch.Tensor:
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    return u[:, :rank] @ torch.diag(s[:rank]) @ vh[:rank]


def loaded_delta(path: Path, name: str) -> torch.Tensor:
    m = load_lora(path).modules[name]
    return full_delta(m.down, m.up, m.alpha)


@pytest.fixture
def conv_lora(tmp_path: Path) -> Path:
    return write_lora(tmp_path / "conv.safetensors", sd1_modules(conv=True), KOHYA_METADATA)


def test_resize_full_rank_is_lossless(conv_lora: Path, tmp_path: Path, capsys):
    out = tmp_path / "same.safetensors"
    assert main(["lora", "resize", str(conv_lora), "--rank", "4", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert all(abs(m["retained"] - 1) < 1e-9 for m in summary["modules"])
    for name, (down, up, alpha) in sd1_modules(conv=True).items():
        assert torch.allclose(loaded_delta(out, name), full_delta(down, up, alpha), atol=1e-6)


def test_resize_lower_rank_is_best_approximation(conv_lora: Path, tmp_path: Path, capsys):
    out = tmp_path / "r2.safetensors"
    assert main(["lora", "resize", str(conv_lora), "--rank", "2", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "rank 4 -> 2" in text and "retained" in text
    lora = load_lora(out)
    for name, (down, up, alpha) in sd1_modules(conv=True).items():
        original = full_delta(down, up, alpha)
        m = lora.modules[name]
        assert m.rank == 2
        # strength kept: alpha = (old alpha / old rank) * new rank
        assert m.alpha == pytest.approx(alpha / 4 * 2)
        assert m.down.shape[1:] == down.shape[1:] and m.up.shape[2:] == up.shape[2:]
        assert torch.allclose(full_delta(m.down, m.up, m.alpha), best_rank(original, 2), atol=1e-6)
    assert lora.metadata["ss_network_dim"] == "2"
    assert lora.metadata["ss_network_alpha"] == "1"  # linear modules: 2/4*2; the conv module: 1/4*2
    assert "resized to rank 2 from 4" in lora.metadata["ss_training_comment"]
    assert lora.metadata["ot_custom_field"] == "{not json"  # foreign metadata carried over
    assert lora.metadata["sshs_model_hash"] != KOHYA_METADATA.get("sshs_model_hash")


def test_resize_dynamic_sv_fro(tmp_path: Path, capsys):
    modules = sd1_modules(rank=8)
    src = write_lora(tmp_path / "r8.safetensors", modules, {"ss_network_dim": "8"})
    out = tmp_path / "dyn.safetensors"
    assert main(["lora", "resize", str(src), "--dynamic", "sv_fro", "--param", "0.9", "--out", str(out),
                 "--json"]) == 0
    report = {m["name"]: m for m in json.loads(capsys.readouterr().out)["modules"]}
    lora = load_lora(out)
    for name, (down, up, alpha) in modules.items():
        s = torch.linalg.svdvals(full_delta(down, up, alpha))
        fro = torch.sqrt(torch.cumsum(s ** 2, 0) / (s ** 2).sum())
        expected = int((fro < 0.9).sum()) + 1
        assert lora.modules[name].rank == report[name]["new_rank"] == expected
        assert report[name]["retained"] == pytest.approx(float(fro[expected - 1]))
    assert lora.metadata["ss_network_dim"] == "Dynamic"
    assert lora.metadata["ss_network_alpha"] == "Dynamic"


@pytest.mark.parametrize("method,param", [("sv_ratio", 2.0), ("sv_cumulative", 0.8)])
def test_resize_dynamic_rules(tmp_path: Path, capsys, method: str, param: float):
    modules = sd1_modules(rank=8)
    src = write_lora(tmp_path / "r8.safetensors", modules)
    out = tmp_path / "dyn.safetensors"
    assert main(["lora", "resize", str(src), "--dynamic", method, "--param", str(param), "--rank", "6",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    lora = load_lora(out)
    for name, (down, up, alpha) in modules.items():
        s = torch.linalg.svdvals(full_delta(down, up, alpha))
        if method == "sv_ratio":
            expected = int((s >= s[0] / param).sum())
        else:
            expected = int((torch.cumsum(s, 0) / s.sum() < param).sum()) + 1
        assert lora.modules[name].rank == min(6, expected)


def test_resize_usage_errors(sd1_lora: Path, tmp_path: Path, capsys):
    assert main(["lora", "resize", str(sd1_lora), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert main(["lora", "resize", str(sd1_lora), "--dynamic", "sv_fro", "--out", str(tmp_path / "o.safetensors")]) == 2
    assert main(["lora", "resize", str(sd1_lora), "--dynamic", "sv_fro", "--param", "3",
                 "--out", str(tmp_path / "o.safetensors")]) == 1
    assert "sv_fro" in capsys.readouterr().err


def test_merge_loras_exact_svd(tmp_path: Path, capsys):
    a_mods, b_mods = sd1_modules(seed=1, conv=True), sd1_modules(rank=6, alpha=6.0, seed=2, conv=True)
    del b_mods["lora_te_text_model_encoder_layers_1_mlp_fc2"]  # a module only A has
    a = write_lora(tmp_path / "a.safetensors", a_mods, {"ss_base_model_version": "sd_v1"})
    b = write_lora(tmp_path / "b.safetensors", b_mods, {"ss_base_model_version": "sd_v1"})
    out = tmp_path / "c.safetensors"
    assert main(["lora", "merge", "--lora", f"{a}:0.7", "--lora", f"{b}:0.5", "--out", str(out),
                 "--rank", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["modules"] == len(a_mods) and summary["rank"] == 3
    merged = load_lora(out)
    for name in a_mods:
        total = 0.7 * full_delta(*a_mods[name])
        if name in b_mods:
            total = total + 0.5 * full_delta(*b_mods[name])
        m = merged.modules[name]
        assert m.rank == 3
        assert torch.allclose(full_delta(m.down, m.up, m.alpha), best_rank(total, 3), atol=1e-6)
    # enough rank: the merge is the exact sum
    exact = tmp_path / "exact.safetensors"
    assert main(["lora", "merge", "--lora", f"{a}:0.7", "--lora", f"{b}:0.5", "--out", str(exact),
                 "--rank", "10"]) == 0
    capsys.readouterr()
    merged = load_lora(exact)
    name = "lora_unet_down_blocks_0_resnets_0_conv1"
    total = 0.7 * full_delta(*a_mods[name]) + 0.5 * full_delta(*b_mods[name])
    m = merged.modules[name]
    assert m.down.shape[1:] == (16, 3, 3)
    assert torch.allclose(full_delta(m.down, m.up, m.alpha), total, atol=1e-6)
    assert merged.metadata["ss_network_dim"] == "10"
    assert json.loads(merged.metadata["lorakit_merged_from"])[1]["ratio"] == 0.5


def test_merge_loras_refuses_mixed_architectures(tmp_path: Path, sd1_lora: Path, capsys):
    xl = write_lora(tmp_path / "xl.safetensors", {"lora_te1_text_model_encoder_layers_0_mlp_fc1":
                                                 (torch.ones(2, 4), torch.ones(8, 2), 1.0)})
    assert main(["lora", "merge", "--lora", str(sd1_lora), "--lora", str(xl), "--rank", "2",
                 "--out", str(tmp_path / "o.safetensors")]) == 1
    err = capsys.readouterr().err
    assert "different model architectures" in err and "SDXL" in err
    assert main(["lora", "merge", "--lora", str(sd1_lora), "--out", str(tmp_path / "o.safetensors")]) == 2
    assert "--base" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["merge", "--rank", "2", "--out", "o.safetensors"],
                                     ["preview", "--base", "m", "--prompt", "x"]])
def test_lora_spec_with_a_bad_ratio_is_a_usage_error(command, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f").write_bytes(b"")
    assert main(["lora", command[0], "--lora", "f:abc", *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "'abc' is not a number" in err and "no such file" not in err
