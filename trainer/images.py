"""Image loading for training: resize to cover the bucket, crop (centre or random), flip, normalise."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from trainer.data import TrainImage
from trainer.errors import TrainError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PreparedImage:
    pixels: torch.Tensor  # 3xHxW in [-1, 1]
    crop_top_left: tuple[int, int]  # (top, left), SDXL's crop conditioning


def load_pixels(img: TrainImage, *, flip: bool = False, random_crop: bool = False,
                rng: random.Random | None = None) -> PreparedImage:
    """The image as the model sees it in its bucket."""
    import numpy as np
    import torch
    from PIL import Image

    from prep.image_io import ImageError, flatten, load_image

    try:
        # A huge image is reduced while decoding (never held at full size); any transparency
        # (RGBA, LA, palette, tRNS) is flattened onto white, as kohya's loader does for RGBA.
        with load_image(img.path, fit=img.resized) as im:
            image = flatten(im)
    except ImageError as exc:
        raise TrainError(f"{exc}; run `lorakit validate` on the dataset") from None
    bucket_w, bucket_h = img.bucket
    resized_w, resized_h = img.resized
    if image.size != (resized_w, resized_h):
        image = image.resize((resized_w, resized_h), Image.Resampling.LANCZOS)
    rng = rng or random.Random(0)
    left = top = 0
    if resized_w > bucket_w:
        overhang = resized_w - bucket_w
        left = rng.randint(0, overhang) if random_crop else overhang // 2
    if resized_h > bucket_h:
        overhang = resized_h - bucket_h
        top = rng.randint(0, overhang) if random_crop else overhang // 2
    image = image.crop((left, top, left + bucket_w, top + bucket_h))
    array = np.asarray(image, dtype=np.float32)
    if flip:
        array = array[:, ::-1, :]
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1) / 127.5 - 1.0
    return PreparedImage(tensor, (top, left))
