"""Pixel changes of `lorakit fix`: flatten transparency, downscale, convert, and encode back."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from prep import image_io
from prep.image_io import has_transparency as has_alpha

_PNG_MODES = frozenset({"1", "L", "LA", "I;16", "P", "RGB", "RGBA"})
_RESIZE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "I", "F", "CMYK", "I;16"})


class PixelError(Exception):
    """An image that cannot be decoded or encoded (the message says why)."""


@dataclass(frozen=True)
class Header:
    format: str
    width: int
    height: int
    has_alpha: bool


def open_image(data: bytes) -> Image.Image:
    """Open image bytes (prep.image_io's safe open); images over Pillow's pixel warning limit open (that
    is what --max-side is for), those over its hard limit do not."""
    try:
        return image_io.open_image(data)
    except image_io.ImageError as exc:
        raise PixelError(exc.reason) from None


def read_header(data: bytes) -> Header:
    image = open_image(data)
    return Header(image.format or "", image.width, image.height, has_alpha(image))


def decode(data: bytes, *, first_frame: bool = False) -> Image.Image:
    """Fully decode image bytes (the first frame of an animation when asked)."""
    try:
        return image_io.load_image(data, first_frame=first_frame)
    except image_io.ImageError as exc:
        raise PixelError(exc.reason) from None


def flatten_alpha(image: Image.Image, colour: tuple[int, int, int]) -> Image.Image:
    """Composite onto an opaque colour (prep.image_io.flatten); grey images stay grey."""
    flat = image_io.flatten(image, colour, keep_grey=True)
    flat.info = {k: v for k, v in image.info.items() if k in ("icc_profile", "exif", "dpi")}
    return flat


def downscale(image: Image.Image, max_side: int) -> Image.Image:
    """Lanczos-resize so the longer side is max_side, keeping the aspect ratio."""
    width, height = image.size
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    info = dict(image.info)
    if image.mode not in _RESIZE_MODES:
        image = image.convert("RGBA" if has_alpha(image) else "RGB")
    out = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    out.info = {k: v for k, v in info.items() if k in ("icc_profile", "exif", "dpi", "transparency")
                and not (k == "transparency" and out.mode != image.mode)}
    return out


def for_png(image: Image.Image) -> Image.Image:
    """A mode PNG can hold (TIFF CMYK, 16-bit colour, ... become RGB or RGBA)."""
    if image.mode in _PNG_MODES:
        return image
    info = dict(image.info)
    if image.mode == "I":  # 16-bit grey as decoded by older Pillow: keep the depth
        out = image.convert("I;16")
    else:
        out = image.convert("RGBA" if has_alpha(image) else "RGB")
    out.info = {k: v for k, v in info.items() if k in ("icc_profile", "dpi")}
    return out


def webp_is_lossless(data: bytes) -> bool:
    return b"VP8L" in data[:64]


def encode(image: Image.Image, fmt: str, *, lossless_webp: bool = False) -> bytes:
    """Encode in `fmt` (Pillow's name) at high quality, keeping colour profile and EXIF."""
    fmt = "JPEG" if fmt == "MPO" else fmt
    params: dict[str, object] = {}
    icc = image.info.get("icc_profile")
    if icc:
        params["icc_profile"] = icc
    exif = image.info.get("exif")
    if exif and fmt in ("JPEG", "WEBP", "PNG"):
        params["exif"] = exif
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L", "CMYK"):
            image = image.convert("RGB")
        params.update(quality=95, subsampling=0)
    elif fmt == "WEBP":
        params.update(lossless=True) if lossless_webp else params.update(quality=95, method=4)
    elif fmt == "PNG":
        image = for_png(image)
        if "transparency" in image.info:
            params["transparency"] = image.info["transparency"]
    elif fmt == "BMP" and image.mode not in ("1", "L", "P", "RGB", "RGBA"):
        image = image.convert("RGB")
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **params)
    except (OSError, ValueError, KeyError) as exc:
        raise PixelError(f"cannot save as {fmt} ({exc})") from None
    return buffer.getvalue()


def read_header_file(path) -> Header:
    """Format, size and alpha from a file's header (no pixel decoded)."""
    try:
        with image_io.open_image(path) as image:
            return Header(image.format or "", image.width, image.height, has_alpha(image))
    except image_io.ImageError as exc:
        raise PixelError(exc.reason) from None
