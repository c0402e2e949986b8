"""Which files are images, and which image files kohya's scripts read."""

from __future__ import annotations

from pathlib import Path

# What kohya sd-scripts (and so lorakit's trainer) reads; compared case-insensitively.
# The most pixels lorakit takes in: `validate` reports larger images as too-large, `scrape` refuses
# them at download (--max-pixels), and `fix --all` downscales below it. A 50-megapixel image costs
# about 150 MB decoded; the tagger and trainer would hold several.
MAX_PIXELS = 50_000_000

IMAGE_EXTENSIONS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})

# Image formats users collect that kohya does not read.
UNSUPPORTED_IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".gif", ".tif", ".tiff", ".avif", ".heic", ".jfif"}
)

# Pillow format name -> the extensions that may carry it.
FORMAT_EXTENSIONS: dict[str, frozenset[str]] = {
    "PNG": frozenset({".png"}),
    "JPEG": frozenset({".jpg", ".jpeg", ".jfif"}),
    "MPO": frozenset({".jpg", ".jpeg"}),  # multi-picture JPEGs from cameras
    "WEBP": frozenset({".webp"}),
    "BMP": frozenset({".bmp"}),
    "GIF": frozenset({".gif"}),
    "TIFF": frozenset({".tif", ".tiff"}),
    "AVIF": frozenset({".avif"}),
    "HEIF": frozenset({".heic"}),
}


def is_image_name(name: str) -> bool:
    """True when a file name has an extension kohya reads as an image."""
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS
