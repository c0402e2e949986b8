"""Decode a large 8-bit PNG reduced, strip by strip, so memory follows the reduced size.

Pillow decodes a PNG whole (a 12000x12000 RGB image is 576 MB before any resize). Here the IDAT
stream is inflated a strip of rows at a time; each strip becomes a small PNG of its own that Pillow
decodes (its C unfiltering), led by the previous strip's last row as an unfiltered row, since PNG
row filters refer to the row above. Each strip is box-reduced at once (strip heights are multiples
of the factor, so the result equals reducing the whole image). Interlaced PNGs and bit depths other
than 8 return None: the caller decodes them whole.
"""

from __future__ import annotations

import io
import math
import struct
import zlib

from PIL import Image

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
STRIP_BYTES = 8 << 20  # inflated bytes per strip


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _chunks(data: bytes):
    pos = len(_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        yield kind, data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IEND":
            return


def decode_png_reduced(image: Image.Image, factor: int) -> Image.Image | None:
    """`image` (an open PNG) decoded and reduced `factor` times, or None when this path cannot."""
    fp = getattr(image, "fp", None)
    if fp is None or image.info.get("interlace"):
        return None
    fp.seek(0)
    data = fp.read()
    if not data.startswith(_SIGNATURE):
        return None
    header = b""
    keep: list[bytes] = []  # PLTE and tRNS: what the strips need to decode the same pixels
    idat: list[bytes] = []
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = body
        elif kind in (b"PLTE", b"tRNS"):
            keep.append(_chunk(kind, body))
        elif kind == b"IDAT":
            idat.append(body)
    if len(header) != 13:
        return None
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or interlace or colour not in _CHANNELS:
        return None
    stride = width * _CHANNELS[colour] + 1
    rows_per_strip = max(factor, (STRIP_BYTES // stride) // factor * factor)
    inflater = zlib.decompressobj()
    compressed = b"".join(idat)
    del idat, data
    out: Image.Image | None = None
    previous = b""  # the last decoded row, as raw pixel bytes
    y = 0
    pending = b""
    fed = 0
    while y < height:
        rows = min(rows_per_strip, height - y)
        need = rows * stride
        while len(pending) < need:
            if inflater.unconsumed_tail:
                chunk = inflater.decompress(inflater.unconsumed_tail, need - len(pending))
            elif fed < len(compressed):
                piece = compressed[fed:fed + (1 << 20)]
                fed += len(piece)
                chunk = inflater.decompress(piece, need - len(pending))
            else:
                raise OSError("image data is truncated")
            pending += chunk
        filtered, pending = pending[:need], pending[need:]
        lead = b"\x00" + previous if previous else b""
        strip_header = struct.pack(">IIBBBBB", width, rows + (1 if previous else 0), 8, colour, 0, 0, 0)
        strip_png = (_SIGNATURE + _chunk(b"IHDR", strip_header) + b"".join(keep)
                     + _chunk(b"IDAT", zlib.compress(lead + filtered, 0)) + _chunk(b"IEND", b""))
        with Image.open(io.BytesIO(strip_png)) as strip:
            strip.load()
            if previous:
                strip = strip.crop((0, 1, width, strip.height))
            previous = strip.crop((0, strip.height - 1, width, strip.height)).tobytes()
            if strip.mode == "P":
                strip = strip.convert("RGBA" if "transparency" in strip.info else "RGB")
            elif "transparency" in strip.info:  # a tRNS colour on L or RGB: keep it as alpha
                strip = strip.convert("LA" if strip.mode == "L" else "RGBA")
            small = strip.reduce(factor) if factor > 1 else strip.copy()
        if out is None:
            out = Image.new(small.mode, (small.width, math.ceil(height / factor)))
        out.paste(small, (0, y // factor))
        y += rows
    return out

