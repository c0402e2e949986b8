"""Diffusers <-> original (LDM/SGM, A1111/ComfyUI) checkpoint key names for UNet, VAE and CLIP encoders.

diffusers ships only the LDM->diffusers direction (`loaders.single_file_utils`); the UNet block
arithmetic here reuses the trainer's `sdxl_ldm_path` (the kohya SDXL naming), which is general in
`layers_per_block`, and adds the inverse so LoRAs can be merged into single-file checkpoints.
"""

from __future__ import annotations

import re

from trainer.lora_keys import sdxl_ldm_path

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_TE_PREFIX = "cond_stage_model.transformer."
SD2_TE_PREFIX = "cond_stage_model.model."
SDXL_TE1_PREFIX = "conditioner.embedders.0.transformer."
SDXL_TE2_PREFIX = "conditioner.embedders.1.model."

_UNET_TOP = {
    "time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2",
    "class_embedding.linear_1": "label_emb.0.0", "class_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
}
_UNET_TOP_INV = {v: k for k, v in _UNET_TOP.items() if not k.startswith("class_")}
_RESNET_INV = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
               "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}


def _split_param(key: str) -> tuple[str, str]:
    path, _, param = key.rpartition(".")
    return path, param


def unet_to_ldm(key: str, layers_per_block: int, up_has_attention: dict[int, bool]) -> str:
    """`down_blocks.1.attentions.0.proj_in.weight` -> `input_blocks.4.1.proj_in.weight` (SD1/SD2/SDXL)."""
    path, param = _split_param(key)
    if path in _UNET_TOP:
        return f"{_UNET_TOP[path]}.{param}"
    return sdxl_ldm_path(key, layers_per_block, up_has_attention)


def _resnet_from_ldm(rest: str) -> str:
    for ldm, name in _RESNET_INV.items():
        if rest.startswith(ldm + "."):
            return name + rest[len(ldm):]
    return rest


_LDM_BLOCK = re.compile(r"^(input_blocks|output_blocks)\.(\d+)\.(\d+)\.(.+)$")
_LDM_MID = re.compile(r"^middle_block\.(\d+)\.(.+)$")


def unet_from_ldm(key: str, layers_per_block: int) -> str:
    """The inverse of `unet_to_ldm`; keys it does not know are returned unchanged."""
    path, param = _split_param(key)
    if path in _UNET_TOP_INV:
        return f"{_UNET_TOP_INV[path]}.{param}"
    per_level = layers_per_block + 1
    if m := _LDM_MID.match(key):
        index, rest = int(m[1]), m[2]
        if index == 1:
            return f"mid_block.attentions.0.{rest}"
        return f"mid_block.resnets.{index // 2}.{_resnet_from_ldm(rest)}"
    m = _LDM_BLOCK.match(key)
    if not m:
        return key
    side, n, k, rest = m[1], int(m[2]), int(m[3]), m[4]
    if side == "input_blocks":
        level, index = divmod(n - 1, per_level)
        if index == layers_per_block:
            return f"down_blocks.{level}.downsamplers.0.{rest.replace('op', 'conv', 1)}"
        if k == 0:
            return f"down_blocks.{level}.resnets.{index}.{_resnet_from_ldm(rest)}"
        return f"down_blocks.{level}.attentions.{index}.{rest}"
    level, index = divmod(n, per_level)
    if k == 0:
        return f"up_blocks.{level}.resnets.{index}.{_resnet_from_ldm(rest)}"
    if k == 2 or (k == 1 and rest.startswith("conv.")):
        return f"up_blocks.{level}.upsamplers.0.{rest}"
    return f"up_blocks.{level}.attentions.{index}.{rest}"


def ldm_layers_per_block(unet_keys: list[str]) -> int:
    """Resnets per down level of an LDM UNet: the first downsampler (`input_blocks.N.0.op`) sits at N = L+1."""
    ops = [int(m[1]) for k in unet_keys if (m := re.match(r"^input_blocks\.(\d+)\.0\.op\.", k))]
    if ops:
        return min(ops) - 1
    blocks = {int(m[1]) for k in unet_keys if (m := re.match(r"^input_blocks\.(\d+)\.", k))}
    return max(1, len(blocks) - 1)


_VAE_TOP = {"conv_norm_out": "norm_out"}
_VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out",
             "query": "q", "key": "k", "value": "v", "proj_attn": "proj_out"}


def vae_to_ldm(key: str, num_up_blocks: int) -> tuple[str, bool]:
    """A diffusers VAE key as LDM names it, and whether the tensor is a linear weight that LDM stores as 1x1 conv."""
    enc_dec, _, rest = key.partition(".")
    if enc_dec not in ("encoder", "decoder"):
        return key, False
    if m := re.match(r"^(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)$", rest):
        kind, block, sub, index, tail = m[1], int(m[2]), m[3], int(m[4]), m[5]
        level = block if kind == "down" else num_up_blocks - 1 - block
        if sub == "resnets":
            tail = tail.replace("conv_shortcut", "nin_shortcut", 1)
            return f"{enc_dec}.{kind}.{level}.block.{index}.{tail}", False
        return f"{enc_dec}.{kind}.{level}.{'downsample' if kind == 'down' else 'upsample'}.{tail}", False
    if m := re.match(r"^mid_block\.resnets\.(\d+)\.(.+)$", rest):
        return f"{enc_dec}.mid.block_{int(m[1]) + 1}.{m[2]}", False
    if m := re.match(r"^mid_block\.attentions\.0\.(.+)$", rest):
        path, param = _split_param(m[1])
        name = _VAE_ATTN.get(path, path)
        return f"{enc_dec}.mid.attn_1.{name}.{param}", name in ("q", "k", "v", "proj_out") and param == "weight"
    path, param = _split_param(rest)
    return f"{enc_dec}.{_VAE_TOP.get(path, path)}.{param}", False


def clip_path(key: str) -> str:
    """A CLIPTextModel key under `text_model.` whatever the transformers version saved."""
    if key.startswith(("text_model.", "text_projection")):
        return key
    return f"text_model.{key}"


_OPENCLIP_LAYER = re.compile(r"^text_model\.encoder\.layers\.(\d+)\.(.+)$")
_OPENCLIP_INNER = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "self_attn.out_proj": "attn.out_proj",
                   "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
_OPENCLIP_TOP = {"text_model.embeddings.token_embedding.weight": "token_embedding.weight",
                 "text_model.embeddings.position_embedding.weight": "positional_embedding",
                 "text_model.final_layer_norm.weight": "ln_final.weight",
                 "text_model.final_layer_norm.bias": "ln_final.bias",
                 "text_projection.weight": "text_projection"}


def openclip_from_clip(key: str) -> tuple[str, str | None]:
    """(OpenCLIP key, q/k/v part or None) for a HF CLIP key; q/k/v go into the fused in_proj."""
    key = clip_path(key)
    if key in _OPENCLIP_TOP:
        return _OPENCLIP_TOP[key], None
    m = _OPENCLIP_LAYER.match(key)
    if not m:
        return key, None
    layer, rest = m[1], m[2]
    if qkv := re.match(r"^self_attn\.([qkv])_proj\.(weight|bias)$", rest):
        return f"transformer.resblocks.{layer}.attn.in_proj_{qkv[2]}", qkv[1]
    path, param = _split_param(rest)
    return f"transformer.resblocks.{layer}.{_OPENCLIP_INNER.get(path, path)}.{param}", None


_OPENCLIP_TO_CLIP = {"attn.out_proj": "self_attn.out_proj", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


def openclip_kohya_targets(key: str, hidden: int) -> list[tuple[str, slice | None, str]]:
    """(kohya name without prefix, rows it owns, HF CLIP module path) for each module an OpenCLIP weight holds."""
    m = re.match(r"^transformer\.resblocks\.(\d+)\.(.+)\.weight$", key)
    if m and m[2] in _OPENCLIP_TO_CLIP:
        path = f"text_model.encoder.layers.{m[1]}.{_OPENCLIP_TO_CLIP[m[2]]}"
        return [(path.replace(".", "_"), None, path)]
    m = re.match(r"^transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$", key)
    if m:
        out = []
        for i, p in enumerate("qkv"):
            path = f"text_model.encoder.layers.{m[1]}.self_attn.{p}_proj"
            out.append((path.replace(".", "_"), slice(i * hidden, (i + 1) * hidden), path))
        return out
    return []
