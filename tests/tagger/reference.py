"""The WD14 reference preprocessing (SmilingWolf's `wd-tagger` Space), verbatim, and RGB views of the
fast path, for the tests (and benchmarks/tagger.py) to compare lorakit's preprocessing against."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from tagger.preprocess import flatten_on_white, load_prepared, prepare_bgr, square_resize


def reference_preprocess(image: Image.Image, size: int) -> np.ndarray:
    """The Space's `prepare_image`, verbatim: [1, size, size, 3] float32 BGR."""
    image = image.convert("RGBA")
    canvas = Image.new("RGBA", image.size, (255, 255, 255))
    canvas.alpha_composite(image)
    image = canvas.convert("RGB")
    max_dim = max(image.size)
    pad_left = (max_dim - image.size[0]) // 2
    pad_top = (max_dim - image.size[1]) // 2
    padded = Image.new("RGB", (max_dim, max_dim), (255, 255, 255))
    padded.paste(image, (pad_left, pad_top))
    if max_dim != size:
        padded = padded.resize((size, size), Image.BICUBIC)
    array = np.asarray(padded, dtype=np.float32)[:, :, ::-1]
    return np.expand_dims(array, axis=0)


def prepare_rgb(image: Image.Image, size: int) -> np.ndarray:
    """[size, size, 3] uint8 RGB, the pixels the reference feeds the model (before BGR and float)."""
    return np.asarray(square_resize(flatten_on_white(image), size))


def to_model_input(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB [.., H, W, 3] -> float32 BGR 0-255 (written into `out` when given)."""
    bgr = rgb[..., ::-1]
    if out is None:
        return bgr.astype(np.float32)
    out[...] = bgr
    return out


def load_bgr(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """Decode an image file and prepare it as uint8 BGR (the tagger's path); ImageLoadError with a reason."""
    return load_prepared(path, size, prepare_bgr)


def load_rgb(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """Decode an image file and prepare it as uint8 RGB; ImageLoadError with a reason."""
    return load_prepared(path, size, prepare_rgb)
