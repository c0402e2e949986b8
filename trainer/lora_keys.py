"""kohya LoRA key names: the file format, independent of the installed diffusers/transformers.

A kohya LoRA file holds, per adapted module, three tensors:
    `<name>.lora_down.weight`, `<name>.lora_up.weight`, `<name>.alpha` (0-d)
where `<name>` is `<prefix>_<module path with every "." replaced by "_">`.

API (shared by the trainer and the LoRA tools):
- `KOHYA_UNET_PREFIX` ("lora_unet"), `KOHYA_TE_PREFIX` ("lora_te", SD1/2), `KOHYA_TE1_PREFIX` /
  `KOHYA_TE2_PREFIX` ("lora_te1"/"lora_te2", SDXL CLIP-L / CLIP-bigG); `text_encoder_prefixes(model_type)`.
- `unet_lora_targets(unet, model_type, conv=False)` and
  `text_encoder_lora_targets(text_encoder, prefix)` -> `{kohya name: (module path in the loaded
  model, module)}`, in model order. Targets as kohya's networks/lora.py: every Linear/Conv2d inside
  a `Transformer2DModel` (proj_in/out, attn1/attn2 to_q/k/v/to_out.0, ff.net.0.proj, ff.net.2);
  with conv also inside `ResnetBlock2D` (conv1, conv2, time_emb_proj, conv_shortcut),
  `Downsample2D` and `Upsample2D` (their conv); text encoder q/k/v/out_proj and mlp fc1/fc2.
- `sdxl_ldm_path(diffusers_path, layers_per_block)`: SDXL UNet names are written with the
  original (LDM/SGM) paths kohya uses, e.g. `down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`
  -> `input_blocks.4.1.transformer_blocks.0.attn1.to_q`.
- `is_conv_rank(module)`: True where kohya uses conv_dim/conv_alpha (a Conv2d with a kernel other
  than 1x1); Linear layers and 1x1 convs use network_dim/network_alpha.

Text encoder names always say `text_model.`: transformers 5 dropped that level from
CLIPTextModel (modules are `encoder.layers.N...`), but the format, A1111, ComfyUI and diffusers'
loader all expect `lora_te_text_model_encoder_layers_N_...`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

KOHYA_UNET_PREFIX = "lora_unet"
KOHYA_TE_PREFIX = "lora_te"
KOHYA_TE1_PREFIX = "lora_te1"
KOHYA_TE2_PREFIX = "lora_te2"

UNET_TARGET_CLASSES = ("Transformer2DModel",)
UNET_CONV_TARGET_CLASSES = ("ResnetBlock2D", "Downsample2D", "Upsample2D")
TEXT_ENCODER_TARGET_CLASSES = ("CLIPAttention", "CLIPSdpaAttention", "CLIPFlashAttention2", "CLIPMLP")

MODEL_TYPES = ("sd1", "sd2", "sd2-v", "sdxl")

Targets = dict[str, tuple[str, "torch.nn.Module"]]


def kohya_name(prefix: str, module_path: str) -> str:
    """`lora_unet` + `down_blocks.0.attentions.0.proj_in` -> `lora_unet_down_blocks_0_attentions_0_proj_in`."""
    return f"{prefix}_{module_path.replace('.', '_')}"


def text_encoder_prefixes(model_type: str) -> tuple[str, ...]:
    """The text encoder prefixes of a model type: SDXL has two encoders."""
    return (KOHYA_TE1_PREFIX, KOHYA_TE2_PREFIX) if model_type == "sdxl" else (KOHYA_TE_PREFIX,)


def is_conv_rank(module: torch.nn.Module) -> bool:
    """True for a Conv2d whose kernel is not 1x1 (kohya gives those conv_dim/conv_alpha)."""
    import torch

    return isinstance(module, torch.nn.Conv2d) and tuple(module.kernel_size) != (1, 1)


def _adaptable(module: torch.nn.Module) -> bool:
    import torch

    return isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))


def _collect(root: torch.nn.Module, classes: tuple[str, ...]) -> list[tuple[str, torch.nn.Module]]:
    """(full path, module) of every Linear/Conv2d inside a module whose class name is in classes."""
    found: list[tuple[str, torch.nn.Module]] = []
    seen: set[int] = set()
    for name, module in root.named_modules():
        if module.__class__.__name__ not in classes:
            continue
        for child_name, child in module.named_modules():
            if not child_name or not _adaptable(child) or id(child) in seen:
                continue
            seen.add(id(child))
            found.append((f"{name}.{child_name}" if name else child_name, child))
    return found


_RESNET_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
               "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}

_DOWN_RE = re.compile(r"^down_blocks\.(\d+)\.(resnets|attentions|downsamplers)\.(\d+)\.(.+)$")
_UP_RE = re.compile(r"^up_blocks\.(\d+)\.(resnets|attentions|upsamplers)\.(\d+)\.(.+)$")
_MID_RE = re.compile(r"^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$")


def _resnet_inner(rest: str) -> str:
    head, dot, tail = rest.partition(".")
    return _RESNET_LDM.get(head, head) + dot + tail


def sdxl_ldm_path(path: str, layers_per_block: int = 2, up_block_has_attention: dict[int, bool] | None = None) -> str:
    """A diffusers SDXL UNet module path as the original (LDM) UNet names it (kohya's SDXL names).

    up_block_has_attention tells, per up block, whether its upsampler sits at index 2 (after a
    transformer) or 1; SDXL's two upsampling up blocks both have attention, the default.
    """
    per_level = layers_per_block + 1
    if m := _DOWN_RE.match(path):
        block, kind, index, rest = int(m[1]), m[2], int(m[3]), m[4]
        if kind == "downsamplers":
            return f"input_blocks.{(block + 1) * per_level}.0.{rest.replace('conv', 'op', 1)}"
        layer = 1 + block * per_level + index
        if kind == "resnets":
            return f"input_blocks.{layer}.0.{_resnet_inner(rest)}"
        return f"input_blocks.{layer}.1.{rest}"
    if m := _MID_RE.match(path):
        kind, index, rest = m[1], int(m[2]), m[3]
        if kind == "attentions":
            return f"middle_block.1.{rest}"
        return f"middle_block.{2 * index}.{_resnet_inner(rest)}"
    if m := _UP_RE.match(path):
        block, kind, index, rest = int(m[1]), m[2], int(m[3]), m[4]
        if kind == "upsamplers":
            has_attention = (up_block_has_attention or {}).get(block, True)
            return f"output_blocks.{block * per_level + layers_per_block}.{2 if has_attention else 1}.{rest}"
        layer = block * per_level + index
        if kind == "resnets":
            return f"output_blocks.{layer}.0.{_resnet_inner(rest)}"
        return f"output_blocks.{layer}.1.{rest}"
    return path


def unet_lora_targets(unet: torch.nn.Module, model_type: str, conv: bool = False) -> Targets:
    """kohya name -> (module path in `unet`, module) for every UNet module a kohya LoRA adapts.

    conv adds the ResNet and down/up-sampler layers (LoCon); only their non-1x1 convs take the
    conv rank (see `is_conv_rank`).
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model_type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}")
    classes = UNET_TARGET_CLASSES + (UNET_CONV_TARGET_CLASSES if conv else ())
    found = _collect(unet, classes)
    targets: Targets = {}
    if model_type == "sdxl":
        config = getattr(unet, "config", None)
        layers = int(getattr(config, "layers_per_block", 2) or 2)
        up_types = list(getattr(config, "up_block_types", ()) or ())
        has_attention = {i: "CrossAttn" in t for i, t in enumerate(up_types)}
        for path, module in found:
            targets[kohya_name(KOHYA_UNET_PREFIX, sdxl_ldm_path(path, layers, has_attention))] = (path, module)
    else:
        for path, module in found:
            targets[kohya_name(KOHYA_UNET_PREFIX, path)] = (path, module)
    return targets


def text_encoder_file_path(path: str) -> str:
    """A text encoder module path as the file spells it: always under `text_model.`."""
    return path if path.startswith("text_model.") else f"text_model.{path}"


def text_encoder_lora_targets(text_encoder: torch.nn.Module, prefix: str = KOHYA_TE_PREFIX) -> Targets:
    """kohya name -> (module path in `text_encoder`, module) for its self-attention and MLP linears."""
    targets: Targets = {}
    for path, module in _collect(text_encoder, TEXT_ENCODER_TARGET_CLASSES):
        targets[kohya_name(prefix, text_encoder_file_path(path))] = (path, module)
    return targets
