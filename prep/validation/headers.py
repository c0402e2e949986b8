"""Image size, format and alpha from the first bytes of a file, without Pillow's per-file overhead.

Only the common, well-formed cases of PNG, JPEG and WebP are read here; anything unusual returns
None so the caller asks Pillow, which stays the judge of what is a readable image.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (C4 DHT, C8 JPG and CC DAC share the range but are not frames).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01, 0xD8}
_unpack_png_chunk = struct.Struct(">I4s").unpack_from
_unpack_u32be = struct.Struct(">I").unpack_from
_unpack_u16be = struct.Struct(">H").unpack_from
_unpack_u32le = struct.Struct("<I").unpack_from
_unpack_u16le = struct.Struct("<H").unpack_from


@dataclass(frozen=True)
class ImageHeader:
    """What the header says: Pillow's format name, size, and whether there is an alpha channel."""

    format: str
    width: int
    height: int
    has_alpha: bool


class NeedMore:
    """The header runs past the bytes given; read more of the file and ask again."""


NEED_MORE = NeedMore()


def sniff_header(data: bytes, file_size: int) -> ImageHeader | NeedMore | None:
    """Parse the header in `data` (the file's first bytes; `file_size` is the whole file's size).

    Returns NEED_MORE when the header continues past `data`, None when this is not a case the fast
    path reads (Pillow must decide: other formats, damaged or unusual files).
    """
    head = data[:4]
    if head == b"\x89PNG":
        return _sniff_png(data, file_size)
    if head[:2] == b"\xff\xd8":
        return _sniff_jpeg(data, file_size)
    if head == b"RIFF":
        return _sniff_webp(data, file_size)
    return None


def _more(data: bytes, file_size: int) -> NeedMore | None:
    return NEED_MORE if len(data) < file_size else None


def _sniff_png(data: bytes, file_size: int) -> ImageHeader | NeedMore | None:
    if not data.startswith(PNG_SIGNATURE):
        return None
    n = len(data)
    pos = 8
    width = height = 0
    color_type = -1
    transparency = False
    while True:
        if pos + 8 > n:
            return _more(data, file_size)
        length, kind = _unpack_png_chunk(data, pos)
        if color_type < 0 and (kind != b"IHDR" or length != 13):
            return None
        if kind == b"IDAT":
            break
        end = pos + 12 + length
        if end > n:
            return _more(data, file_size)
        # Pillow checks these CRCs while opening; a mismatch must reach it to be reported the same way.
        if zlib.crc32(data[pos + 4:pos + 8 + length]) != _unpack_u32be(data, end - 4)[0]:
            return None
        if kind == b"IHDR":
            width, height = struct.unpack_from(">II", data, pos + 8)
            color_type = data[pos + 17]
            if data[pos + 20] not in (0, 1):  # interlace method; anything else Pillow rejects
                return None
        elif kind == b"tRNS":
            transparency = True
        pos = end
    if width == 0 or height == 0:
        return None
    return ImageHeader("PNG", width, height, color_type in (4, 6) or transparency)


def _sniff_jpeg(data: bytes, file_size: int) -> ImageHeader | NeedMore | None:
    n = len(data)
    pos = 2
    size: tuple[int, int] | None = None
    while True:
        if pos + 4 > n:
            return _more(data, file_size)
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        length = _unpack_u16be(data, pos + 2)[0]
        if length < 2:
            return None
        if marker == 0xDA:  # start of scan: every header segment has been seen
            break
        if marker == 0xD9:
            return None
        if marker in _JPEG_SOF:
            if pos + 10 > n:
                return _more(data, file_size)
            height, width = struct.unpack_from(">HH", data, pos + 5)
            size = (width, height)
        pos += 2 + length
    if size is None or size[0] == 0 or size[1] == 0:
        return None
    return ImageHeader("JPEG", size[0], size[1], False)


def _sniff_webp(data: bytes, file_size: int) -> ImageHeader | NeedMore | None:
    if len(data) < 30 or data[8:12] != b"WEBP":
        return _more(data, file_size) if len(data) < 30 else None
    riff_size = _unpack_u32le(data, 4)[0]
    if riff_size + 8 > file_size:  # truncated: let Pillow say how
        return None
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width = _unpack_u16le(data, 26)[0] & 0x3FFF
        height = _unpack_u16le(data, 28)[0] & 0x3FFF
        alpha = False
    elif chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        bits = _unpack_u32le(data, 21)[0]
        width = (bits & 0x3FFF) + 1
        height = ((bits >> 14) & 0x3FFF) + 1
        alpha = bool((bits >> 28) & 1)
    elif chunk == b"VP8X":
        flags = data[20]
        if flags & 0x02:  # animation: Pillow reads frames differently
            return None
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        alpha = bool(flags & 0x10)
    else:
        return None
    if width == 0 or height == 0:
        return None
    return ImageHeader("WEBP", width, height, alpha)
