"""The LoRA tools' view of a LoRA file: parts, architecture, `FILE:RATIO` specs, tensors for writing.

Reading is `trainer.lora_modules` (the one read model of kohya/LyCORIS files; `load_lora` is its
`read_lora`), headers are validated by `trainer.safetensors_read`.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from trainer.lora_modules import LoraFile, LoraModule, module_state, parse_lora_tensors, read_lora

from .errors import LoraUsageError

PARTS = ("unet", "te", "te1", "te2")
PART_LABELS = {"unet": "UNet", "te": "text encoder", "te1": "text encoder 1 (CLIP-L)",
               "te2": "text encoder 2 (CLIP-bigG)"}
SDXL_UNET_NAME = re.compile(r"^lora_unet_(input_blocks|output_blocks|middle_block)_")
load_lora = read_lora


def module_part(name: str) -> str:
    for part in ("te1", "te2", "te", "unet"):
        if name.startswith(f"lora_{part}_"):
            return part
    return "other"


def lora_parts(lora: LoraFile) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in lora.modules:
        out[module_part(name)] = out.get(module_part(name), 0) + 1
    return out


def require_lora_kind(lora: LoraFile, tool: str) -> None:
    """resize / LoRA merge work on LoRA and LoCon factors; LoHa, LoKr and DoRA files get one clear line."""
    kinds = set(lora.kinds()) - {"lora", "locon"}
    what = " and ".join(k for k in ("LoHa" if "loha" in kinds else "", "LoKr" if "lokr" in kinds else "",
                                    "DoRA" if lora.dora else "") if k)
    if what:
        raise LoraUsageError(f"{lora.path}: {tool} works on LoRA and LoCon files only, this file holds {what} "
                             f"modules; merge it into a checkpoint with `lorakit lora merge --base MODEL` instead")


def detect_architecture(lora: LoraFile) -> tuple[str, str]:
    """("SD1"|"SD2"|"SDXL", how it was decided) from metadata first, then key names, then shapes."""
    meta = lora.metadata
    version = meta.get("ss_base_model_version", "")
    if version.startswith("sdxl"):
        return "SDXL", "metadata ss_base_model_version"
    if version.startswith("sd_v2") or meta.get("ss_v2", "").lower() == "true":
        return "SD2", "metadata ss_base_model_version/ss_v2"
    arch = meta.get("modelspec.architecture", "")
    if arch.startswith("stable-diffusion-xl"):
        return "SDXL", "metadata modelspec.architecture"
    names = lora.modules
    if any(module_part(n) == "te2" for n in names) or any(SDXL_UNET_NAME.match(n) for n in names):
        return "SDXL", "key names (lora_te2 or LDM UNet names)"
    if version.startswith("sd_v1"):
        return "SD1", "metadata ss_base_model_version"
    for name, module in names.items():
        if name.endswith("attn2_to_k"):
            context = int(module.matrix_shape[1])
            if context == 1024:
                return "SD2", "cross-attention width 1024"
            if context == 2048:
                return "SDXL", "cross-attention width 2048"
            break
    if any(module_part(n) == "te1" for n in names) and not any(module_part(n) == "unet" for n in names):
        return "SDXL", "key names (lora_te1)"
    # diffusers' convert_state_dict_to_kohya names the SD1 text encoder lora_te1
    return "SD1", "key names (diffusers UNet names)"


def parse_lora_spec(spec: str, default: float = 1.0, what: str = "RATIO") -> tuple[Path, float]:
    """`FILE` or `FILE:RATIO` (a trailing `:number`; a Windows drive letter is not a ratio).

    A trailing `:text` that is not a number is a usage error (not "no such file"), unless the whole
    spec names an existing file.
    """
    head, sep, tail = spec.rpartition(":")
    drive = len(head) == 1 and head.isalpha() and tail[:1] in ("\\", "/")  # C:\\x.safetensors
    if sep and head and not drive:
        try:
            ratio = float(tail)
        except ValueError:
            ratio = None
        if ratio is not None and math.isfinite(ratio):
            return Path(head), ratio
        if not Path(spec).exists():
            raise LoraUsageError(f"--lora {spec!r}: {tail!r} is not a number; give FILE or FILE:{what} "
                                 f"such as {head}:0.8")
    return Path(spec), default


def lora_tensors(modules: dict[str, LoraModule], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The file tensors of modules (alpha as a 0-d fp32 tensor, as kohya writes it; missing alpha = rank)."""
    out: dict[str, torch.Tensor] = {}
    for m in modules.values():
        for key, t in module_state(m).items():
            out[key] = (t.to(dtype) if dtype is not None and not key.endswith(".alpha") else t).contiguous()
    return out


__all__ = ["LoraFile", "LoraModule", "PARTS", "PART_LABELS", "detect_architecture", "load_lora",
           "lora_parts", "lora_tensors", "module_part", "parse_lora_spec", "parse_lora_tensors",
           "require_lora_kind"]
