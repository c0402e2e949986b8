"""The diffusers <-> original (LDM) key mapping used for single-file checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from trainer.lora_keys import sdxl_ldm_path
from trainer.lora_tools import ldm_keys
from tui.cli import main


def unet_keys(model: Path) -> list[str]:
    with safe_open(str(model / "unet" / "diffusion_pytorch_model.safetensors"), "pt") as fh:
        return list(fh.keys())


def test_unet_mapping_is_a_bijection(tiny_sd1: Path, tiny_sdxl: Path):
    for model in (tiny_sd1, tiny_sdxl):
        config = json.loads((model / "unet" / "config.json").read_text())
        layers = config["layers_per_block"]
        up_attn = {i: "CrossAttn" in t for i, t in enumerate(config["up_block_types"])}
        keys = unet_keys(model)
        ldm = [ldm_keys.unet_to_ldm(k, layers, up_attn) for k in keys]
        assert len(set(ldm)) == len(keys)
        assert ldm_keys.ldm_layers_per_block(ldm) == layers
        assert [ldm_keys.unet_from_ldm(k, layers) for k in ldm] == keys
        # agrees with the trainer's kohya SDXL naming
        for key, new in zip(keys, ldm, strict=True):
            if ".attentions." in key:
                assert new == sdxl_ldm_path(key, layers, up_attn)


def test_known_sd15_names():
    up_attn = {0: False, 1: True, 2: True, 3: True}
    cases = {
        "down_blocks.0.attentions.1.transformer_blocks.0.attn2.to_k.weight":
            "input_blocks.2.1.transformer_blocks.0.attn2.to_k.weight",
        "down_blocks.1.downsamplers.0.conv.weight": "input_blocks.6.0.op.weight",
        "down_blocks.2.resnets.0.conv_shortcut.weight": "input_blocks.7.0.skip_connection.weight",
        "mid_block.resnets.1.time_emb_proj.bias": "middle_block.2.emb_layers.1.bias",
        "up_blocks.0.upsamplers.0.conv.weight": "output_blocks.2.1.conv.weight",
        "up_blocks.1.upsamplers.0.conv.weight": "output_blocks.5.2.conv.weight",
        "up_blocks.3.attentions.2.proj_out.weight": "output_blocks.11.1.proj_out.weight",
        "conv_norm_out.weight": "out.0.weight",
        "time_embedding.linear_2.bias": "time_embed.2.bias",
    }
    for diffusers, ldm in cases.items():
        assert ldm_keys.unet_to_ldm(diffusers, 2, up_attn) == ldm
        assert ldm_keys.unet_from_ldm(ldm, 2) == diffusers
    assert ldm_keys.vae_to_ldm("decoder.up_blocks.0.resnets.2.conv_shortcut.weight", 4) == (
        "decoder.up.3.block.2.nin_shortcut.weight", False)
    assert ldm_keys.vae_to_ldm("encoder.mid_block.attentions.0.to_q.weight", 4) == (
        "encoder.mid.attn_1.q.weight", True)
    assert ldm_keys.openclip_from_clip("encoder.layers.3.self_attn.k_proj.bias") == (
        "transformer.resblocks.3.attn.in_proj_bias", "k")


def test_single_file_to_diffusers_fails_cleanly_offline(tiny_sd1: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from tests.lora_tools.conftest import model_lora

    lora = model_lora(tiny_sd1, tmp_path / "a.safetensors")
    single = tmp_path / "base.safetensors"
    assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", f"{lora}:0", "--out", str(single)]) == 0
    capsys.readouterr()
    code = main(["lora", "merge", "--base", str(single), "--lora", str(lora), "--out", str(tmp_path / "d"),
                 "--format", "diffusers"])
    err = capsys.readouterr().err.strip()
    # diffusers needs the model's configs from the Hub for a single file, and none fits a tiny model
    assert code == 1 and "merge to OUT.safetensors instead" in err.splitlines()[-1]
    assert not (tmp_path / "d").exists()
