"""kohya key names from real (tiny) diffusers/transformers modules."""

from __future__ import annotations

import pytest

from trainer.lora_keys import (
    is_conv_rank,
    sdxl_ldm_path,
    text_encoder_lora_targets,
    text_encoder_prefixes,
    unet_lora_targets,
)


@pytest.fixture(scope="module")
def sd1_parts(tiny_sd1):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    return (UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet"),
            CLIPTextModel.from_pretrained(tiny_sd1, subfolder="text_encoder"))


@pytest.fixture(scope="module")
def sdxl_unet(tiny_sdxl):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(tiny_sdxl, subfolder="unet")


def test_sd1_unet_names_follow_diffusers_paths(sd1_parts):
    unet, _ = sd1_parts
    targets = unet_lora_targets(unet, "sd1")
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k" in targets
    assert "lora_unet_down_blocks_0_attentions_0_proj_in" in targets
    assert "lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj" in targets
    assert "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0" in targets
    path, module = targets["lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k"]
    assert unet.get_submodule(path) is module
    # Without conv, only transformer blocks: no resnet/sampler layers.
    assert not any("resnets" in k or "samplers" in k for k in targets)
    per_block = {"proj_in", "proj_out"} | {f"attn{a}_{p}" for a in (1, 2) for p in ("to_q", "to_k", "to_v", "to_out_0")}
    per_block |= {"ff_net_0_proj", "ff_net_2"}
    # down 0 and mid have one transformer, up 1 two (layers_per_block + 1); one block each.
    assert len(targets) == 4 * len(per_block)


def test_conv_targets_and_ranks(sd1_parts):
    unet, _ = sd1_parts
    targets = unet_lora_targets(unet, "sd1", conv=True)
    conv1 = targets["lora_unet_down_blocks_0_resnets_0_conv1"][1]
    assert is_conv_rank(conv1)
    assert "lora_unet_down_blocks_0_downsamplers_0_conv" in targets
    assert "lora_unet_up_blocks_0_upsamplers_0_conv" in targets
    shortcut = targets["lora_unet_up_blocks_0_resnets_0_conv_shortcut"][1]
    assert not is_conv_rank(shortcut)  # 1x1: linear rank, as kohya
    assert not is_conv_rank(targets["lora_unet_down_blocks_0_resnets_0_time_emb_proj"][1])
    assert not is_conv_rank(targets["lora_unet_down_blocks_0_attentions_0_proj_in"][1])


def test_text_encoder_names_keep_text_model_level(sd1_parts):
    _, te = sd1_parts
    paths = [name for name, _ in te.named_modules()]
    # transformers 5 has no text_model level in CLIPTextModel; the format still does.
    targets = text_encoder_lora_targets(te, "lora_te")
    assert set(targets) == {f"lora_te_text_model_encoder_layers_{i}_{m}" for i in range(3)
                            for m in ("self_attn_q_proj", "self_attn_k_proj", "self_attn_v_proj",
                                      "self_attn_out_proj", "mlp_fc1", "mlp_fc2")}
    for path, module in targets.values():
        assert path in paths and te.get_submodule(path) is module


def test_sdxl_names_are_ldm(sdxl_unet, tiny_sdxl):
    from transformers import CLIPTextModelWithProjection

    targets = unet_lora_targets(sdxl_unet, "sdxl", conv=True)
    assert targets["lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q"][0] == \
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q"
    assert targets["lora_unet_input_blocks_3_0_op"][0] == "down_blocks.0.downsamplers.0.conv"
    assert targets["lora_unet_output_blocks_2_2_conv"][0] == "up_blocks.0.upsamplers.0.conv"
    assert targets["lora_unet_middle_block_1_proj_in"][0] == "mid_block.attentions.0.proj_in"
    assert targets["lora_unet_middle_block_2_in_layers_2"][0] == "mid_block.resnets.1.conv1"
    assert targets["lora_unet_output_blocks_8_0_skip_connection"][0] == "up_blocks.2.resnets.2.conv_shortcut"
    assert targets["lora_unet_input_blocks_1_0_emb_layers_1"][0] == "down_blocks.0.resnets.0.time_emb_proj"
    assert not any("down_blocks" in k or "up_blocks" in k for k in targets)
    te2 = CLIPTextModelWithProjection.from_pretrained(tiny_sdxl, subfolder="text_encoder_2")
    names = text_encoder_lora_targets(te2, "lora_te2")
    assert "lora_te2_text_model_encoder_layers_0_mlp_fc1" in names
    assert not any("text_projection" in k for k in names)
    assert text_encoder_prefixes("sdxl") == ("lora_te1", "lora_te2")
    assert text_encoder_prefixes("sd1") == ("lora_te",)


def test_sdxl_ldm_path_real_layout():
    assert sdxl_ldm_path("down_blocks.2.attentions.1.transformer_blocks.9.ff.net.2") == \
        "input_blocks.8.1.transformer_blocks.9.ff.net.2"
    assert sdxl_ldm_path("up_blocks.1.attentions.2.proj_out") == "output_blocks.5.1.proj_out"
    assert sdxl_ldm_path("down_blocks.1.downsamplers.0.conv") == "input_blocks.6.0.op"
    assert sdxl_ldm_path("up_blocks.2.resnets.0.conv2") == "output_blocks.6.0.out_layers.3"
