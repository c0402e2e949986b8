"""Options of `lorakit reg generate` (also `[reg]` in lorakit.toml); light to import for the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prep.config import option
from prep.dataset import DEFAULT_CAPTION_EXTENSION


@dataclass
class RegConfig:
    base: str | None = option(None, "base model: a diffusers folder or a .safetensors checkpoint")
    prompt: str | None = option(None, "the class prompt, e.g. 'photo of a man'; also the caption")
    count: int | None = option(None, "images wanted in the folder in total (default: the number of "
                                     "training images in the workspace's dataset)")
    out: Path | None = option(None, "parent folder of 1_<prompt words>/ (default: the workspace's reg/)")
    negative: str | None = option(None, "negative prompt")
    seed: int = option(0, "seed of the first image; image i uses seed + i")
    steps: int = option(30, "sampling steps")
    size: str | None = option(None, "W,H (default: the model's native size)")
    cfg: float = option(7.5, "guidance scale")
    dataset: Path | None = option(None, "dataset whose image count is the default --count "
                                       "(default: [train] dataset in lorakit.toml, or dataset/ beside it)")
    caption_extension: str = option(DEFAULT_CAPTION_EXTENSION, "caption file extension")
