"""Builders for the validator's tests: real images, hand-made PNGs, datasets in kohya layout."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

from prep.validate import ValidateOptions, ValidationReport, validate


def picture(path: Path, size: tuple[int, int] = (64, 64), seed: int = 0, mode: str = "RGB",
            fmt: str | None = None, **save) -> Path:
    """A real image whose bytes differ with seed (so distinct pictures are no duplicates)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 13 + 7) % 256))
    img.putpixel((0, 0), (seed % 256, seed // 256 % 256, 1))
    if mode != "RGB":
        img = img.convert(mode)
    if mode in ("RGBA", "LA"):  # one see-through pixel, or WebP's encoder drops the opaque alpha
        img.putpixel((1, 0), (0, 0, 0, 0) if mode == "RGBA" else (0, 0))
    img.save(path, format=fmt, **save)
    return path


def caption(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, *, color_type: int = 0, bit_depth: int = 8, pixels: bytes | None = None,
              extra: bytes = b"") -> bytes:
    """A PNG written by hand: any header size (a decompression bomb costs a few bytes to claim)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    if pixels is None:
        pixels = b"\x00" * (height * (1 + width)) if width * height <= 1 << 16 else b""
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra
            + png_chunk(b"IDAT", zlib.compress(pixels)) + png_chunk(b"IEND", b""))


def tiny_png(seed: int) -> bytes:
    """A distinct 2x1 grey PNG per seed, built in microseconds."""
    return png_bytes(2, 1, pixels=bytes([0, seed % 256, seed // 256 % 256]))


def encoded(size: tuple[int, int], fmt: str, seed: int = 1, **save) -> bytes:
    """Image bytes with detail in them (so a truncated copy really lacks pixels)."""
    img = Image.effect_noise(size, 60 + seed).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


def check(root: Path, **options) -> ValidationReport:
    options.setdefault("resolution", 0)
    return validate(root, ValidateOptions(**options))


def by_code(report: ValidationReport, code: str) -> list[str]:
    """The paths reported with code, in report order."""
    return [p.path for p in report.problems if p.code == code]


def only(report: ValidationReport, code: str):
    found = [p for p in report.problems if p.code == code]
    assert len(found) == 1, [p.to_dict() for p in report.problems]
    return found[0]
