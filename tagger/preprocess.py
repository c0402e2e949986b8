"""The WD14 reference preprocessing (SmilingWolf's `wd-tagger` Space), reproduced bit for bit, faster.

Reference: open as RGBA, alpha-composite on white, pad to a centred white square (the odd pixel
right/bottom), resize with PIL BICUBIC to the model's side when it differs, float32 0-255, RGB->BGR.
`prepare_bgr` returns the same pixels as the reference (tests/tagger/reference.py holds it verbatim;
the tests compare them over many image modes and shapes) but skips work whose result is known: the alpha composite of an opaque image,
and the horizontal resampling of the white padding rows. Files are opened and flattened by
`prep.image_io` (the one safe opener); an image over LARGE_PIXELS is decoded reduced (draft/strips),
the one place where the pixels may differ from the reference, which would decode it whole.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from prep.errors import first_line
from prep.image_io import ImageError, flatten, load_image

WHITE = (255, 255, 255)


class ImageLoadError(Exception):
    """An image that cannot be decoded; the message says why (one line)."""


def flatten_on_white(image: Image.Image) -> Image.Image:
    """RGB pixels of the image as composited over opaque white (the shared flatten)."""
    return flatten(image, WHITE)


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


def prepare_bgr(image: Image.Image, size: int) -> np.ndarray:
    """[size, size, 3] uint8 BGR: the model input before the (exact) cast to float32."""
    # PIL packs the channels in BGR order itself: one pass in C instead of a copy plus a flip.
    data = square_resize(flatten_on_white(image), size).tobytes("raw", "BGR")
    return np.frombuffer(data, dtype=np.uint8).reshape(size, size, 3)


def open_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """Decode an image file as RGB flattened on white (for captioners); raise ImageLoadError with a reason."""
    return _load(path, None, lambda image, _size: flatten(image).copy())


def load_prepared(path: str | os.PathLike[str], size: int, prepare) -> Any:
    """Decode an image file and run `prepare(image, size)` on it; raise ImageLoadError with a reason."""
    return _load(path, size, prepare)


def _load(path: str | os.PathLike[str], size: int | None, prepare) -> Any:
    try:
        with load_image(path, fit=(size, size) if size else None) as image:
            return prepare(image, size)
    except ImageError as exc:
        raise ImageLoadError(exc.reason) from None
    except MemoryError:
        raise ImageLoadError("not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - hostile files raise anything; the run must go on
        raise ImageLoadError(f"cannot read image ({first_line(exc)})") from None
