"""Loss masks for masked_loss: an image's alpha channel (alpha_mask) or a mask image (mask_dir).

A mask goes through the image's own resize (to `TrainImage.resized`), crop (the same top-left)
and flip, so it covers the pixels the model sees; white (or opaque) = learn, black (or
transparent) = ignore. `mask_dir` mirrors the dataset: `<mask_dir>/<concept folder>/<stem>.<ext>`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from trainer.data import TrainImage
from trainer.errors import TrainError

if TYPE_CHECKING:
    import torch

MASK_EXTENSIONS = (".png", ".webp", ".jpg", ".jpeg", ".bmp")


@dataclass(frozen=True)
class MaskOptions:
    alpha_mask: bool = False
    mask_dir: Path | None = None


def mask_file(img: TrainImage, mask_dir: Path) -> Path | None:
    """The mask image of one training image, or None when the mirror folder has none."""
    folder = Path(mask_dir) / img.concept
    for ext in MASK_EXTENSIONS:
        candidate = folder / (img.path.stem + ext)
        if candidate.is_file():
            return candidate
    return None


def missing_masks(images: list[TrainImage], options: MaskOptions) -> list[TrainImage]:
    """Training images without a mask file (they are learned everywhere)."""
    if options.mask_dir is None:
        return []
    return [img for img in images if not img.is_reg and mask_file(img, options.mask_dir) is None]


def _open_mask(img: TrainImage, options: MaskOptions):
    from PIL import Image

    if options.mask_dir is not None:
        path = mask_file(img, options.mask_dir)
        if path is None:
            return None
        source = path
    else:
        source = img.path
    try:
        with Image.open(source) as im:
            im.load()
            if options.mask_dir is not None:
                return im.convert("L")
            if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
                return im.convert("RGBA").getchannel("A")
            return None  # no alpha channel: learn everywhere
    except (OSError, Image.DecompressionBombError) as exc:
        raise TrainError(f"{source}: cannot read mask ({exc})") from None


def load_mask(img: TrainImage, options: MaskOptions, *, flip: bool, crop_top_left: tuple[int, int]) -> torch.Tensor:
    """The mask as 1 x bucket_h x bucket_w in [0, 1], cropped and flipped like the image."""
    import numpy as np
    import torch
    from PIL import Image

    bucket_w, bucket_h = img.bucket
    mask = _open_mask(img, options)
    if mask is None:
        return torch.ones(1, bucket_h, bucket_w)
    if mask.size != img.size:
        # A mask image of another size is stretched over the image first.
        mask = mask.resize(img.size, Image.Resampling.BILINEAR)
    if mask.size != tuple(img.resized):
        mask = mask.resize(tuple(img.resized), Image.Resampling.LANCZOS)
    top, left = crop_top_left
    mask = mask.crop((left, top, left + bucket_w, top + bucket_h))
    array = np.asarray(mask, dtype=np.float32) / 255.0
    if flip:
        array = array[:, ::-1]
    return torch.from_numpy(np.ascontiguousarray(array)).unsqueeze(0)
