"""Which Stable Diffusion family a model is, read from its files without loading it.

One answer for every caller that must know before (or without) a model load: the torch-free config
checks (block-LR counts), the VRAM estimate, `--export-kohya`'s script name and the single-file
loader's pipeline class. A diffusers folder is read from `model_index.json` and `unet/config.json`;
a `.safetensors` checkpoint from its (validated) header's tensor names. Anything else, a hub id or an
unreadable file, is `None`: the family is then known only once the model loads.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from prep.errors import UserError

SDXL_TE2_KEY = "conditioner.embedders.1"  # SDXL single files: the second (OpenCLIP bigG) text encoder
SD2_TE_KEY = "cond_stage_model.model."  # SD 2.x single files: OpenCLIP ViT-H


def family_from_keys(keys: Iterable[str]) -> str:
    """sd1, sd2 or sdxl from an LDM checkpoint's tensor names."""
    sd2 = False
    for key in keys:
        if key.startswith(SDXL_TE2_KEY):
            return "sdxl"
        sd2 = sd2 or key.startswith(SD2_TE_KEY)
    return "sd2" if sd2 else "sd1"


def family_from_folder_config(index: dict, unet: dict) -> str:
    """sd1, sd2 or sdxl from a diffusers folder's model_index.json and unet/config.json."""
    if "text_encoder_2" in index or "XL" in str(index.get("_class_name", "")):
        return "sdxl"
    width = unet.get("cross_attention_dim")
    if unet.get("addition_embed_type") == "text_time" or (isinstance(width, int) and width >= 2048):
        return "sdxl"
    return "sd2" if width == 1024 else "sd1"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def family_of_files(source: str | Path | None) -> str | None:
    """sd1, sd2 or sdxl for a local diffusers folder or .safetensors checkpoint; None when that needs
    the hub or a model load (a hub id, a .ckpt, an unreadable or damaged file: reported when it loads)."""
    if not source:
        return None
    path = Path(source)
    try:
        if path.is_dir():
            if not (path / "model_index.json").is_file():
                return None
            return family_from_folder_config(_read_json(path / "model_index.json"),
                                             _read_json(path / "unet" / "config.json"))
        if path.is_file() and path.suffix == ".safetensors":
            from trainer.safetensors_read import read_header

            return family_from_keys(read_header(path).entries)
    except (OSError, ValueError, UserError):
        return None
    return None


def config_family(config) -> str | None:
    """The family of a TrainConfig's model: its model_type when set (sd2-v is sd2), else its files'."""
    kind = config.model_type
    if kind and kind != "auto":
        return "sd2" if kind.startswith("sd2") else kind
    return family_of_files(config.pretrained_model)
