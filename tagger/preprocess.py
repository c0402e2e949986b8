"""The WD14 reference preprocessing (SmilingWolf's `wd-tagger` Space), reproduced bit for bit, faster.

Reference: open as RGBA, alpha-composite on white, pad to a centred white square (the odd pixel
right/bottom), resize with PIL BICUBIC to the model's side when it differs, float32 0-255, RGB->BGR.
`prepare_rgb` returns the same pixels as `reference_preprocess` (tests compare them over many image
modes and shapes) but skips work whose result is known: the alpha composite of an opaque image,
and the horizontal resampling of the white padding rows.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

WHITE = (255, 255, 255)
# Modes that convert to RGB with the same pixels as RGBA-composited-on-white (no alpha to apply).
_OPAQUE_MODES = frozenset({"RGB", "L"})


class ImageLoadError(Exception):
    """An image that cannot be decoded; the message says why (one line)."""


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


def flatten_on_white(image: Image.Image) -> Image.Image:
    """RGB pixels of the image as composited over opaque white."""
    # A `transparency` entry (PNG tRNS) makes one colour transparent when converted to RGBA.
    if image.mode in _OPAQUE_MODES and "transparency" not in image.info:
        return image.convert("RGB") if image.mode != "RGB" else image
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (255, 255, 255))
    canvas.alpha_composite(rgba)
    return canvas.convert("RGB")


def square_resize(image: Image.Image, size: int) -> Image.Image:
    """Pad an RGB image to a centred white square and BICUBIC-resize it to size x size.

    PIL resamples in two separable passes with a uint8 intermediate (horizontal, then vertical), and
    the coefficients of each pass depend only on the input and output lengths. So running the two
    passes ourselves gives the same pixels, and the horizontal pass over the white padding rows can
    be done once for one row instead of for every row.
    """
    width, height = image.size
    side = max(width, height)
    left, top = (side - width) // 2, (side - height) // 2
    if width == height:
        return image if side == size else image.resize((size, size), Image.BICUBIC)
    if side == size or height == side:  # no resampling, or portrait (every row has padding)
        padded = Image.new("RGB", (side, side), WHITE)
        padded.paste(image, (left, top))
        return padded if side == size else padded.resize((size, size), Image.BICUBIC)
    # Landscape: pad only the rows, resample horizontally only the image's own rows.
    rows = image.resize((size, height), Image.BICUBIC)
    white_row = Image.new("RGB", (side, 1), WHITE).resize((size, 1), Image.BICUBIC)
    middle = white_row.resize((size, side), Image.NEAREST)
    middle.paste(rows, (0, top))
    return middle.resize((size, size), Image.BICUBIC)


def prepare_rgb(image: Image.Image, size: int) -> np.ndarray:
    """[size, size, 3] uint8 RGB, the pixels the reference feeds the model (before BGR and float)."""
    return np.asarray(square_resize(flatten_on_white(image), size))


def prepare_bgr(image: Image.Image, size: int) -> np.ndarray:
    """[size, size, 3] uint8 BGR: the model input before the (exact) cast to float32."""
    # PIL packs the channels in BGR order itself: one pass in C instead of a copy plus a flip.
    data = square_resize(flatten_on_white(image), size).tobytes("raw", "BGR")
    return np.frombuffer(data, dtype=np.uint8).reshape(size, size, 3)


def to_model_input(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """uint8 RGB [.., H, W, 3] -> float32 BGR 0-255 (written into `out` when given)."""
    bgr = rgb[..., ::-1]
    if out is None:
        return bgr.astype(np.float32)
    out[...] = bgr
    return out


def load_bgr(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """Decode an image file and prepare it as uint8 BGR; raise ImageLoadError with a one-line reason."""
    return _load(path, size, prepare_bgr)


def load_rgb(path: str | os.PathLike[str], size: int) -> np.ndarray:
    """Decode an image file and prepare it as uint8 RGB; raise ImageLoadError with a one-line reason."""
    return _load(path, size, prepare_rgb)


def _load(path: str | os.PathLike[str], size: int, prepare) -> np.ndarray:
    _quiet_large_image_warning()
    try:
        with Image.open(path) as image:
            image.load()
            return prepare(image, size)
    except MemoryError:
        raise ImageLoadError("not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - hostile files raise anything; the run must go on
        raise ImageLoadError(_reason(exc)) from None


_WARNING_FILTERED = False


def _quiet_large_image_warning() -> None:
    """Large images are legitimate here; only the hard bomb limit (an error) stops one.

    Installed once, process-wide: `warnings.catch_warnings` is not thread-safe, and the decoding
    threads would race on it.
    """
    global _WARNING_FILTERED
    if not _WARNING_FILTERED:
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _WARNING_FILTERED = True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "cannot read image (not an image format Pillow knows, or a corrupt file)"
    if isinstance(exc, FileNotFoundError):
        return "file disappeared"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = str(exc).strip().splitlines()
    detail = text[0] if text else type(exc).__name__
    return f"cannot read image ({detail})"
