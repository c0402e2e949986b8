"""SD 2.x single files: the text encoder in OpenCLIP layout (fused q/k/v in_proj) on export and as a base."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.lora_tools.conftest import linear_module, write_lora
from trainer.lora_tools.checkpoint import load_base
from trainer.lora_tools.ldm_keys import clip_path
from tui.cli import main

HIDDEN = 1024  # SD2's text width, which is how a diffusers folder is recognised as SD 2.x


@pytest.fixture(scope="module")
def tiny_sd2(tmp_path_factory) -> Path:
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.tiny_models import _tokenizer, _vae

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, layers_per_block=1, block_out_channels=(32, 64), norm_num_groups=32,
                                cross_attention_dim=HIDDEN, attention_head_dim=8, use_linear_projection=True,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    text = CLIPTextModel(CLIPTextConfig(vocab_size=1000, hidden_size=HIDDEN, intermediate_size=64,
                                        num_hidden_layers=2, num_attention_heads=16, max_position_embeddings=77,
                                        hidden_act="gelu", bos_token_id=0, eos_token_id=1, pad_token_id=1))
    pipe = StableDiffusionPipeline(vae=_vae(), text_encoder=text, tokenizer=_tokenizer(), unet=unet,
                                   scheduler=DDIMScheduler(), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    path = tmp_path_factory.mktemp("sd2") / "sd2"
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def test_sd2_text_encoder_openclip_layout(tiny_sd2: Path, tmp_path: Path, capsys):
    from diffusers.loaders.single_file_utils import convert_open_clip_checkpoint
    from transformers import CLIPTextModel

    assert load_base(tiny_sd2).arch == "SD2"
    g = torch.Generator().manual_seed(0)
    modules = {}
    for layer in range(2):
        for name, out, inp in (("self_attn_q_proj", HIDDEN, HIDDEN), ("self_attn_v_proj", HIDDEN, HIDDEN),
                               ("self_attn_out_proj", HIDDEN, HIDDEN), ("mlp_fc1", 64, HIDDEN)):
            down, up = linear_module(out, inp, 4, g)
            modules[f"lora_te_text_model_encoder_layers_{layer}_{name}"] = (down, up, 2.0)
    down, up = linear_module(32, HIDDEN, 4, g)
    modules["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"] = (down, up, 2.0)
    lora = write_lora(tmp_path / "sd2.safetensors", modules, {"ss_base_model_version": "sd_v2", "ss_v2": "True"})

    folder, single = tmp_path / "merged", tmp_path / "merged.safetensors"
    for out in (folder, single):
        assert main(["lora", "merge", "--base", str(tiny_sd2), "--lora", f"{lora}:0.9", "--out", str(out)]) == 0
    capsys.readouterr()
    ckpt = load_file(str(single))
    assert ckpt["cond_stage_model.model.transformer.resblocks.1.attn.in_proj_weight"].shape == (3 * HIDDEN, HIDDEN)
    assert "cond_stage_model.model.ln_final.weight" in ckpt
    merged_te = CLIPTextModel.from_pretrained(folder / "text_encoder")
    converted = convert_open_clip_checkpoint(merged_te, ckpt)
    # transformers 5's CLIPTextModel drops the text_model. level that diffusers' conversion writes
    expected = {clip_path(k): v for k, v in merged_te.state_dict().items()}
    assert set(converted) == set(expected)
    assert all(torch.equal(converted[k], expected[k]) for k in expected)
    base = load_file(str(tiny_sd2 / "text_encoder" / "model.safetensors"))
    name = "encoder.layers.1.self_attn.v_proj.weight"
    assert not torch.equal(expected[clip_path(name)], base[name])  # the merge moved it

    # the SD2 single file as a base: the LoRA's q/v rows land inside the fused in_proj
    base_single, again = tmp_path / "base.safetensors", tmp_path / "again.safetensors"
    assert main(["lora", "merge", "--base", str(tiny_sd2), "--lora", f"{lora}:0", "--out", str(base_single)]) == 0
    assert main(["lora", "merge", "--base", str(base_single), "--lora", f"{lora}:0.9", "--out", str(again)]) == 0
    capsys.readouterr()
    redone = load_file(str(again))
    assert set(redone) == set(ckpt)
    assert all(torch.allclose(redone[k], ckpt[k], atol=1e-6) for k in ckpt)
