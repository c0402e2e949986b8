"""Loading a text-to-image pipeline for previews and regularization images (diffusers folder or single file)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from .checkpoint import PICKLE_SUFFIXES
from .errors import LoraToolError


def parse_size(text: str | None) -> tuple[int, int] | None:
    """`W,H` (or `WxH`, or one number for a square), rounded down to multiples of 8."""
    if text in (None, ""):
        return None
    parts = str(text).lower().replace("x", ",").split(",")
    try:
        values = [int(p) for p in parts if p.strip()]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < 8:
        raise LoraToolError(f"--size {text!r}: expected W,H such as 512,768")
    return values[0] // 8 * 8, values[1] // 8 * 8


def device_and_dtype():
    import torch

    if torch.cuda.is_available():
        return "cuda", (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return "cpu", torch.float32


def load_pipeline(model: str | Path) -> Any:
    """A StableDiffusion(XL)Pipeline on the best device, progress bars off, no safety checker."""
    import diffusers

    path = Path(model)
    device, dtype = device_and_dtype()
    with warnings.catch_warnings():
        # diffusers 0.42 renamed torch_dtype to dtype with a FutureWarning; older releases know only torch_dtype
        warnings.simplefilter("ignore", FutureWarning)
        pipe = _load(path, diffusers, dtype)
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load(path: Path, diffusers: Any, dtype: Any) -> Any:
    try:
        if path.is_dir():
            index = path / "model_index.json"
            if not index.is_file():
                raise LoraToolError(f"{path}: not a diffusers model folder (no model_index.json)")
            sdxl = "text_encoder_2" in json.loads(index.read_text(encoding="utf-8"))
            cls = diffusers.StableDiffusionXLPipeline if sdxl else diffusers.StableDiffusionPipeline
            kwargs = {} if sdxl else {"safety_checker": None, "requires_safety_checker": False}
            pipe = cls.from_pretrained(str(path), torch_dtype=dtype, **kwargs)
        elif path.is_file():
            if path.suffix.lower() in PICKLE_SUFFIXES:
                raise LoraToolError(f"{path}: pickle checkpoints are not loaded (they can run code); "
                                    f"convert it to .safetensors first")
            from .checkpoint import load_base

            arch = load_base(path).arch
            cls = diffusers.StableDiffusionXLPipeline if arch == "SDXL" else diffusers.StableDiffusionPipeline
            pipe = cls.from_single_file(str(path), torch_dtype=dtype)
        else:
            raise LoraToolError(f"{path}: no such model; pass a diffusers folder or a .safetensors checkpoint")
    except LoraToolError:
        raise
    except Exception as exc:  # diffusers/hub errors: configs missing offline, corrupt files
        raise LoraToolError(f"{path}: cannot load the model ({type(exc).__name__}: {str(exc)[:200]})") from None
    return pipe


def default_size(pipe: Any) -> tuple[int, int]:
    side = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
    return side, side
