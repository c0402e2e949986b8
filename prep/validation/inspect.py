"""Per-image facts for the validator: header-only (default) or a full decode (`--deep`)."""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from prep.validation.headers import NEED_MORE, ImageHeader, sniff_header

HEAD_BYTES = 4096
MORE_BYTES = 1 << 20  # EXIF thumbnails and ICC profiles can push a JPEG's frame header this far
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)

# ImageInfo.failure values
UNREADABLE = "unreadable"
CORRUPT = "corrupt"
BOMB = "bomb"


@dataclass
class ImageInfo:
    """One image's size on disk and, unless failure is set, its format, pixel size and alpha."""

    file_size: int = -1
    format: str = ""
    width: int = 0
    height: int = 0
    has_alpha: bool = False
    failure: str = ""  # "", UNREADABLE, CORRUPT or BOMB
    detail: str = ""
    head_hash: int = -1  # Adler-32 of the first HEAD_BYTES: with file_size, who may be a copy

    def as_tuple(self) -> tuple:
        return (self.file_size, self.format, self.width, self.height, self.has_alpha, self.failure,
                self.detail, self.head_hash)


def _os_reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _exception_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


def header_info(path: str) -> ImageInfo:
    """Read just enough of the file for format, size and alpha (one open, usually one read)."""
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
        return ImageInfo(file_size, failure=CORRUPT, detail=_exception_text(exc))
    except Exception as exc:  # noqa: BLE001 - any decoder failure on hostile bytes is a finding
        return ImageInfo(file_size, failure=CORRUPT, detail=_exception_text(exc))


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
    info.head_hash = zlib.adler32(data[:HEAD_BYTES])
    return info


def decode_chunk(paths: Iterable[str]) -> list[tuple]:
    """Fully decode each image (run in a worker process); results as ImageInfo tuples."""
    return [decode_info(path).as_tuple() for path in paths]
