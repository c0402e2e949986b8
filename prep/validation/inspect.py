"""Per-image facts for the validator: header-only (default) or a full decode (`--deep`)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from prep.errors import first_line
from prep.validation.headers import NEED_MORE, ImageHeader, sniff_header

HEAD_BYTES = 4096
TAIL_BYTES = 64  # where a complete JPEG has its EOI, a PNG its IEND chunk
MORE_BYTES = 1 << 20  # EXIF thumbnails and ICC profiles can push a JPEG's frame header this far
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)

# ImageInfo.failure values
UNREADABLE = "unreadable"
CORRUPT = "corrupt"
BOMB = "bomb"
TRUNCATED = "truncated"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


@dataclass
class ImageInfo:
    """One image's size on disk and, unless failure is set, its format, pixel size and alpha."""

    file_size: int = -1
    format: str = ""
    width: int = 0
    height: int = 0
    has_alpha: bool = False
    failure: str = ""  # "", UNREADABLE, CORRUPT, TRUNCATED or BOMB
    detail: str = ""
    head_hash: int = -1  # Adler-32 of the first HEAD_BYTES: with file_size, who may be a copy

    def as_tuple(self) -> tuple:
        return (self.file_size, self.format, self.width, self.height, self.has_alpha, self.failure,
                self.detail, self.head_hash)


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def missing_end(head: bytes, tail: bytes, file_size: int) -> str:
    """What a cut-short file lacks at its end ("" when its end looks complete).

    `head`: the first bytes, `tail`: the last TAIL_BYTES. A JPEG ends in an EOI marker, a PNG in
    its IEND chunk, a WebP is as long as its RIFF header says. Data after the end (camera extras,
    padding) also makes the end look missing: the caller confirms with a decode.
    """
    if head[:4] == b"\x89PNG":
        return "" if tail.endswith(_PNG_IEND) else "no IEND chunk at the end"
    if head[:2] == b"\xff\xd8":
        return "" if b"\xff\xd9" in tail else "no end-of-image marker"
    if _is_webp(head):
        declared = int.from_bytes(head[4:8], "little") + 8
        return "" if declared <= file_size else f"{file_size:,} of the {declared:,} bytes its header declares"
    return ""


def _read_tail(fd: int, file_size: int, data: bytes) -> bytes:
    if file_size <= len(data):
        return data[-TAIL_BYTES:]
    offset = max(len(data), file_size - TAIL_BYTES)
    if hasattr(os, "pread"):
        return os.pread(fd, TAIL_BYTES, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, TAIL_BYTES)


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _decodes_fully(path: str, file_size: int) -> bool:
    from PIL import ImageFile

    previous = ImageFile.LOAD_TRUNCATED_IMAGES  # the caller's setting must not hide the truncation
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        return not pillow_info(path, file_size, decode=True).failure
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _truncated(file_size: int, missing: str) -> ImageInfo:
    return ImageInfo(file_size, failure=TRUNCATED, detail=missing)


def header_info(path: str) -> ImageInfo:
    """Read just enough of the file for format, size and alpha, and its last bytes (one open, two reads).

    A file whose end looks cut short is decoded to be sure (rare: it stays fast for the rest).
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return ImageInfo(failure=UNREADABLE, detail=_os_reason(exc))
    try:
        file_size = os.fstat(fd).st_size
        data = os.read(fd, HEAD_BYTES)
        header = sniff_header(data, file_size)
        if header is NEED_MORE:
            data += os.read(fd, MORE_BYTES)
            header = sniff_header(data, file_size)
        tail = _read_tail(fd, file_size, data)
    except OSError as exc:
        return ImageInfo(failure=UNREADABLE, detail=_os_reason(exc))
    finally:
        os.close(fd)
    if file_size == 0:
        return ImageInfo(0, failure=CORRUPT, detail="the file is empty (0 bytes)")
    # Not CRC-32: PNG chunks end in their own CRC, which makes CRCs of whole PNGs collide; not hash():
    # salted per process, and pool workers may be separate processes.
    head_hash = zlib.adler32(data[:HEAD_BYTES])
    if isinstance(header, ImageHeader):
        info = ImageInfo(file_size, header.format, header.width, header.height, header.has_alpha)
        info = _check_pixels(info)
    else:
        info = pillow_info(path, file_size, decode=False)
    if info.failure in ("", CORRUPT):
        # Truncated: the header opens but the end is missing and the pixels do not decode (or a
        # WebP is shorter than its RIFF header says, which Pillow refuses to open at all).
        missing = missing_end(data, tail, file_size)
        if missing and (_is_webp(data) if info.failure else not _decodes_fully(path, file_size)):
            info = _truncated(file_size, missing)
    info.head_hash = head_hash
    return info


def _check_pixels(info: ImageInfo) -> ImageInfo:
    """Apply Pillow's decompression-bomb refusal to a header the fast path read."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    if limit and info.width * info.height > 2 * limit:
        return _bomb(info.file_size, info.width * info.height, f"{info.width}x{info.height} = ")
    return info


def _bomb(file_size: int, pixels: int, dims: str = "") -> ImageInfo:
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS or 0
    detail = (f"{dims}{pixels:,} pixels is over Pillow's decompression-bomb limit of {2 * limit:,} "
              f"pixels, so Pillow refuses to open it; downscale the image")
    return ImageInfo(file_size, failure=BOMB, detail=detail)


def pillow_info(path: str | IO[bytes], file_size: int = -1, *, decode: bool) -> ImageInfo:
    """Open with prep.image_io (and, with decode, decode every pixel); failures become ImageInfo.failure.

    Between Pillow's warning limit and twice that an image opens; the validator reports it.
    """
    from prep.image_io import ImageError, ImageTooLarge, has_transparency, open_image

    if file_size == 0:
        return ImageInfo(0, failure=CORRUPT, detail="the file is empty (0 bytes)")
    try:
        with open_image(path, name="") as img:
            info = ImageInfo(file_size, img.format or "", img.width, img.height, has_transparency(img))
            if decode:
                img.load()
        return info
    except ImageTooLarge as exc:
        return _bomb(file_size, exc.pixels, f"{exc.width}x{exc.height} = " if exc.width else "")
    except ImageError as exc:
        return ImageInfo(file_size, failure=UNREADABLE if exc.unreadable else CORRUPT, detail=exc.reason)
    except OSError as exc:
        if exc.errno is not None:
            return ImageInfo(file_size, failure=UNREADABLE, detail=_os_reason(exc))
        return ImageInfo(file_size, failure=CORRUPT, detail=first_line(exc))
    except Exception as exc:  # noqa: BLE001 - any decoder failure on hostile bytes is a finding
        return ImageInfo(file_size, failure=CORRUPT, detail=first_line(exc))


def init_decode_worker() -> None:
    """Pool initializer: a worker must see truncation even if the parent allowed truncated images."""
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False


def decode_info(path: str) -> ImageInfo:
    """Read the whole file once and have Pillow decode every pixel."""
    import io

    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        return ImageInfo(failure=UNREADABLE, detail=_os_reason(exc))
    try:
        parts = []
        while True:
            part = os.read(fd, 1 << 20)
            if not part:
                break
            parts.append(part)
    except OSError as exc:
        return ImageInfo(failure=UNREADABLE, detail=_os_reason(exc))
    finally:
        os.close(fd)
    data = b"".join(parts)
    info = pillow_info(io.BytesIO(data), len(data), decode=True)
    if info.failure == CORRUPT:
        missing = missing_end(data[:HEAD_BYTES], data[-TAIL_BYTES:], len(data))
        if missing and (_is_webp(data) or not pillow_info(io.BytesIO(data), len(data), decode=False).failure):
            info = _truncated(len(data), missing)
    info.head_hash = zlib.adler32(data[:HEAD_BYTES])
    return info


def decode_chunk(paths: Iterable[str]) -> list[tuple]:
    """Fully decode each image (run in a worker process); results as ImageInfo tuples."""
    return [decode_info(path).as_tuple() for path in paths]
