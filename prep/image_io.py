"""Opening untrusted images, and flattening transparency: the one implementation every package uses.

`open_image` opens a file, bytes or a stream (header only), refusing what Pillow cannot open safely,
with one line naming the file (`ImageError`; `ImageTooLarge` over the pixel limit). `load_image`
decodes it, optionally reduced by an integer factor while decoding (JPEG in draft mode, 8-bit PNG in
strips), so a 12000x12000 image never sits in memory at full size. `flatten` composites every kind of
transparency (RGBA, LA, PA, palette or single-colour tRNS) onto an opaque colour.
"""

from __future__ import annotations

import io
import math
import os
import re
import warnings
from pathlib import Path
from typing import IO

from PIL import Image, UnidentifiedImageError

from prep.errors import PrepError, first_line

# Above this many pixels, `load_image` callers that downscale anyway decode reduced.
LARGE_PIXELS = 24_000_000

_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "F"})

_WARNING_FILTERED = False


def _quiet_bomb_warning() -> None:
    """The explicit max_pixels check replaces Pillow's warning. Installed once, process-wide:
    `warnings.catch_warnings` is not thread-safe, and the tagger decodes in threads."""
    global _WARNING_FILTERED
    if not _WARNING_FILTERED:
        warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
        _WARNING_FILTERED = True

try:  # HEIC only where the optional plugin is installed (`lorakit[heic]`); Pillow reads AVIF itself
    import pillow_heif  # type: ignore[import-not-found]

    pillow_heif.register_heif_opener()
    HEIF_READABLE = True
except Exception:  # noqa: BLE001 - absent or broken plugin: .heic stays unreadable, with a hint
    HEIF_READABLE = False

Source = str | os.PathLike[str] | bytes | IO[bytes]


class ImageError(PrepError):
    """An image that cannot be opened or decoded; the message names it and says why (one line)."""

    def __init__(self, name: str, reason: str, *, unreadable: bool = False) -> None:
        super().__init__(f"{name}: {reason}" if name else reason)
        self.name = name
        self.reason = reason
        self.unreadable = unreadable  # the file system refused (permissions, I/O), not the bytes


class ImageTooLarge(ImageError):
    """More pixels than the limit it was opened with."""

    def __init__(self, name: str, width: int, height: int, limit: int, pixels: int = 0) -> None:
        self.pixels = width * height or pixels
        text = f"{width}x{height} = {self.pixels:,} pixels" if width else f"{self.pixels:,} pixels"
        super().__init__(name, f"{text} is over the {limit:,}-pixel limit for opening an image "
                               "safely; downscale it (lorakit fix --max-side)")
        self.width, self.height, self.limit = width, height, limit


def _name_of(source: Source, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return ""


def _reason(exc: BaseException, name: str) -> str:
    if isinstance(exc, UnidentifiedImageError):
        if name.lower().endswith((".heic", ".heif")) and not HEIF_READABLE:
            return "HEIC images need pillow-heif: pip install 'lorakit[heic]'"
        return "cannot read image (not an image format Pillow knows, or a corrupt file)"
    if isinstance(exc, FileNotFoundError):
        return "file disappeared"
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, MemoryError):
        return "not enough memory to decode it"
    if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
        return f"cannot read ({exc.strerror})"
    return f"cannot read image ({first_line(exc)})"


def _is_os_failure(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno is not None


def hard_pixel_limit() -> int:
    """Pillow's own refusal (DecompressionBombError): twice its warning limit MAX_IMAGE_PIXELS."""
    return 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else 1 << 62


def open_image(source: Source, *, name: str | None = None, max_pixels: int | None = None) -> Image.Image:
    """Open an untrusted image (header parsed, pixels not decoded); ImageError with one line otherwise.

    `source` is a path, the file's bytes or a binary stream; `max_pixels` defaults to Pillow's hard
    limit (hard_pixel_limit). The caller closes the image.
    """
    label = _name_of(source, name)
    max_pixels = hard_pixel_limit() if max_pixels is None else max_pixels
    _quiet_bomb_warning()
    fp = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        image = Image.open(fp)
        width, height = image.size
    except Image.DecompressionBombError as exc:
        # Pillow's message: "Image size (N pixels) exceeds limit of M pixels, ..."; the size is not kept.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise ImageTooLarge(label, 0, 0, min(max_pixels, hard_pixel_limit()),
                            int(found.group(1)) if found else 0) from None
    except Exception as exc:  # noqa: BLE001 - hostile headers raise all sorts
        raise ImageError(label, _reason(exc, label), unreadable=_is_os_failure(exc)) from None
    if width * height > max_pixels:
        image.close()
        raise ImageTooLarge(label, width, height, max_pixels)
    return image


def reduce_factor(size: tuple[int, int], target: tuple[int, int], gap: float = 2.0) -> int:
    """The largest integer reduction that keeps the image at least `gap` times `target` on both sides
    (what Pillow's `reducing_gap` does before a good resample); 1 below LARGE_PIXELS."""
    width, height = size
    if width * height <= LARGE_PIXELS:
        return 1
    factor = min(width / (gap * max(target[0], 1)), height / (gap * max(target[1], 1)))
    return max(1, math.floor(factor))


def load_image(source: Source, *, name: str | None = None, fit: tuple[int, int] | None = None,
               first_frame: bool = True, max_pixels: int | None = None) -> Image.Image:
    """Decode an untrusted image; with `fit` (the size it will be resized to), a large one is reduced
    while decoding (see reduce_factor).

    JPEGs decode at a DCT scale (draft mode) and 8-bit PNGs strip by strip, so memory follows the
    reduced size; other formats decode whole, then reduce. The mode stays the file's (see `flatten`).
    """
    label = _name_of(source, name)
    image = open_image(source, name=label, max_pixels=max_pixels)
    reduce = reduce_factor(image.size, fit) if fit is not None else 1
    try:
        if first_frame and getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        result = _load_reduced(image, reduce) if reduce > 1 else None
        if result is None:
            image.load()
            result = _reduce(image, reduce)
        if result is not image:
            image.close()
        return result
    except ImageError:
        image.close()
        raise
    except Exception as exc:  # noqa: BLE001 - truncated or broken data, any decoder
        image.close()
        raise ImageError(label, _reason(exc, label), unreadable=_is_os_failure(exc)) from None


def _load_reduced(image: Image.Image, factor: int) -> Image.Image | None:
    if image.format == "JPEG":
        width, height = image.size
        image.draft(image.mode, (math.ceil(width / factor), math.ceil(height / factor)))
        image.load()
        left = max(1, min(image.width * factor // width, image.height * factor // height))
        return _reduce(image, left)  # what the DCT scale (1/2 .. 1/8) did not reduce
    if image.format == "PNG":
        from prep.png_strips import decode_png_reduced

        return decode_png_reduced(image, factor)
    return None


def _reduce(image: Image.Image, factor: int) -> Image.Image:
    if factor <= 1:
        return image
    if image.mode == "P" or image.mode not in ("L", "LA", "RGB", "RGBA", "I", "F", "CMYK"):
        image = image.convert("RGBA" if has_transparency(image) else "RGB")
    return image.reduce(factor)


def has_transparency(image: Image.Image) -> bool:
    """An alpha channel, or a transparent palette entry or colour (PNG tRNS), as validate counts it."""
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def flatten(image: Image.Image, colour: tuple[int, int, int] = (255, 255, 255), *,
            keep_grey: bool = False) -> Image.Image:
    """Composite any transparency onto an opaque colour: RGB (or L for grey images with keep_grey).

    Handles RGBA/RGBa, LA/La, PA, P with a transparent palette entry, and L/RGB/1/I with a tRNS
    colour; an opaque image is only converted.
    """
    grey = keep_grey and image.mode in _GREY_MODES
    if not has_transparency(image):
        target = "L" if grey else "RGB"
        return image if image.mode == target else image.convert(target)
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (*colour, 255))
    background.alpha_composite(rgba)
    return background.convert("L" if grey else "RGB")


def image_size(path: str | Path, *, max_pixels: int | None = None) -> tuple[int, int]:
    """(width, height) from the header; ImageError with one line otherwise."""
    with open_image(path, max_pixels=max_pixels) as image:
        return image.size
