"""The validator's shortcuts agree with the slow, obvious way: header sniffing vs Pillow, tag parsing."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image

from prep.captions import parse_caption
from prep.validation.caption_checks import caption_tags
from prep.validation.headers import NEED_MORE, ImageHeader, sniff_header
from prep.validation.inspect import header_info, pillow_info
from tests.prep.validate_fixtures import png_bytes, png_chunk


def saved(mode: str, fmt: str, size=(37, 21), **save) -> bytes:
    img = Image.new(mode, size)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


CASES = [
    *[(mode, fmt, {}) for mode in ("RGB", "RGBA", "L", "LA", "P", "1", "I;16") for fmt in ("PNG", "WEBP")],
    *[(mode, "JPEG", {}) for mode in ("RGB", "L", "CMYK")],
    ("P", "PNG", {"transparency": 0}),
    ("RGB", "PNG", {"transparency": (0, 0, 0)}),
    ("RGBA", "WEBP", {"lossless": True}),
    ("RGB", "WEBP", {"lossless": True}),
    ("RGB", "JPEG", {"progressive": True}),
    ("RGB", "JPEG", {"exif": b"Exif\x00\x00" + b"\x00" * 30000}),
    ("RGB", "PNG", {"icc_profile": b"x" * 10000}),
    ("RGB", "PNG", {"optimize": True}),
]


@pytest.mark.parametrize("mode, fmt, save", CASES)
def test_sniffed_header_matches_pillow(mode: str, fmt: str, save: dict):
    data = saved(mode, fmt, **save)
    header = sniff_header(data, len(data))
    with Image.open(io.BytesIO(data)) as img:
        alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        expected = ImageHeader(img.format, img.width, img.height, alpha)
    if header is NEED_MORE:
        header = sniff_header(data[:4096], len(data))
        assert header is NEED_MORE  # the caller reads more and asks again
        header = sniff_header(data, len(data))
    assert header == expected


def test_header_info_reads_more_when_the_header_is_long(tmp_path):
    data = saved("RGB", "JPEG", exif=b"Exif\x00\x00" + b"\x00" * 30000)
    assert sniff_header(data[:4096], len(data)) is NEED_MORE
    path = tmp_path / "exif.jpg"
    path.write_bytes(data)
    info = header_info(str(path))
    assert (info.format, info.width, info.height, info.failure) == ("JPEG", 37, 21, "")


def test_damaged_headers_go_to_pillow(tmp_path):
    good = png_bytes(4, 4)
    bad_crc = good[:29] + bytes([good[29] ^ 1]) + good[30:]
    assert sniff_header(bad_crc, len(bad_crc)) is None
    path = tmp_path / "bad.png"
    path.write_bytes(bad_crc)
    assert header_info(str(path)).failure == "corrupt"
    assert sniff_header(b"BM" + b"\x00" * 60, 62) is None  # BMP: Pillow reads it
    assert sniff_header(b"\xff\xd8\xff\xd9", 4) is None  # JPEG with no frame


def test_png_transparency_chunk_after_other_chunks():
    extra = png_chunk(b"tEXt", b"Comment\x00hello") + png_chunk(b"tRNS", b"\x00\x00")
    data = png_bytes(3, 3, extra=extra)
    assert sniff_header(data, len(data)) == ImageHeader("PNG", 3, 3, True)
    info = pillow_info(io.BytesIO(data), len(data), decode=True)
    assert (info.has_alpha, info.failure) == (True, "")


def test_caption_tags_equal_parse_caption():
    alphabet = ["a", "b", " ", "  ", "\t", "\n", ",", ", ", "\u3000", "\ufeff", "\x1c", "\xa0", "\r", "_"]
    rng = random.Random(0)
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert caption_tags(text) == parse_caption(text), repr(text)
