"""prep.image_io: the one safe open (one-line errors, pixel limit), the one flatten (every kind of
transparency), reduced decoding (exact for PNG strips), and bounded memory on a 12000x12000 PNG in
the tagger and the trainer."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from prep import png_strips
from prep.image_io import ImageError, ImageTooLarge, flatten, load_image, open_image, reduce_factor
from tagger.preprocess import flatten_on_white
from tests.tagger.reference import reference_preprocess

RED = (200, 10, 10)


def _transparent_kinds() -> dict[str, Image.Image]:
    """One image per kind of transparency; the left half is fully transparent, the right half opaque."""
    w, h = 8, 4
    rgba = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    rgba.paste((*RED, 255), (w // 2, 0, w, h))
    la = Image.new("LA", (w, h), (0, 0))
    la.paste((90, 255), (w // 2, 0, w, h))
    palette = Image.new("P", (w, h), 0)
    palette.putpalette([0, 0, 0, *RED] + [0] * 762)
    palette.paste(1, (w // 2, 0, w, h))
    palette.info["transparency"] = 0
    grey_trns = Image.new("L", (w, h), 0)
    grey_trns.paste(90, (w // 2, 0, w, h))
    grey_trns.info["transparency"] = 0
    rgb_trns = Image.new("RGB", (w, h), (0, 0, 0))
    rgb_trns.paste(RED, (w // 2, 0, w, h))
    rgb_trns.info["transparency"] = (0, 0, 0)
    kinds = {"RGBA": rgba, "LA": la, "P+transparency": palette, "L+tRNS": grey_trns, "RGB+tRNS": rgb_trns}
    # Through a PNG file, as they come from disk.
    out = {}
    for name, image in kinds.items():
        buffer = io.BytesIO()
        image.save(buffer, "PNG", **({"transparency": image.info["transparency"]}
                                      if "transparency" in image.info else {}))
        out[name] = Image.open(io.BytesIO(buffer.getvalue()))
    return out


@pytest.mark.parametrize("kind", list(_transparent_kinds()))
def test_flatten_handles_every_kind_of_transparency(kind):
    image = _transparent_kinds()[kind]
    flat = np.asarray(flatten(image, (0, 255, 0)))
    assert flat.shape == (4, 8, 3)
    assert (flat[:, :4] == (0, 255, 0)).all(), kind  # the transparent half shows the colour
    assert not (flat[:, 4:] == (0, 255, 0)).all(), kind
    grey = flatten(image, (255, 255, 255), keep_grey=True)
    assert grey.mode == ("L" if kind in ("LA", "L+tRNS") else "RGB")


@pytest.mark.parametrize("kind", list(_transparent_kinds()))
def test_the_tagger_flatten_agrees_with_the_reference(kind):
    """The tagger's reference path (RGBA composite on white) and the shared flatten give the same pixels."""
    image = _transparent_kinds()[kind]
    ours = np.asarray(flatten_on_white(image), dtype=np.float32)[:, :, ::-1]
    side = max(image.size)
    reference = reference_preprocess(image, side)[0]
    top = (side - image.height) // 2
    np.testing.assert_array_equal(ours, reference[top:top + image.height])


@pytest.mark.parametrize("kind", ["LA", "L+tRNS", "RGB+tRNS", "P+transparency"])
def test_the_trainer_flattens_grey_alpha_and_trns(tmp_path, kind):
    from trainer.data import TrainImage
    from trainer.images import load_pixels

    path = tmp_path / "x.png"
    image = _transparent_kinds()[kind]
    image.save(path, **({"transparency": image.info["transparency"]} if "transparency" in image.info else {}))
    item = TrainImage(path, "", "c", 1, False, image.size, bucket=image.size, resized=image.size)
    pixels = load_pixels(item).pixels
    assert bool((pixels[:, :, :4] == 1.0).all())  # white where it was transparent


def test_one_line_errors_name_the_file(tmp_path, monkeypatch):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageError) as caught:
        open_image(bad)
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    big = tmp_path / "big.png"
    Image.new("L", (400, 300)).save(big)
    with pytest.raises(ImageTooLarge, match=r"400x300 = 120,000 pixels is over the 100,000-pixel limit"):
        open_image(big, max_pixels=100_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # Pillow's own refusal, at twice that
    with pytest.raises(ImageTooLarge, match="120,000 pixels"):
        open_image(big)
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 64)
    with pytest.raises(ImageError):
        open_image(heic)


@pytest.mark.parametrize("mode,save", [("RGB", {}), ("RGBA", {}), ("L", {}), ("LA", {}),
                                       ("P", {}), ("P", {"transparency": 3}), ("L", {"transparency": 7}),
                                       ("RGB", {"transparency": (1, 2, 3)})])
def test_png_strips_equal_reducing_the_whole_image(monkeypatch, mode, save):
    monkeypatch.setattr(png_strips, "STRIP_BYTES", 2000)  # many strips
    array = np.random.default_rng(3).integers(0, 255, (203, 151, 4), np.uint8)
    image = Image.fromarray(array, "RGBA")
    image = image.convert("RGB").quantize(64) if mode == "P" else image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **save)
    reference = Image.open(io.BytesIO(buffer.getvalue()))
    reference.load()
    if reference.mode == "P":
        reference = reference.convert("RGBA" if "transparency" in reference.info else "RGB")
    elif "transparency" in reference.info:
        reference = reference.convert("LA" if reference.mode == "L" else "RGBA")
    for factor in (2, 3, 5):
        got = png_strips.decode_png_reduced(Image.open(io.BytesIO(buffer.getvalue())), factor)
        expected = reference.reduce(factor)
        assert got is not None and got.mode == expected.mode and got.size == expected.size
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_large_jpeg_decodes_in_draft_mode(tmp_path, monkeypatch):
    import prep.image_io as image_io

    monkeypatch.setattr(image_io, "LARGE_PIXELS", 10_000)
    path = tmp_path / "x.jpg"
    Image.new("RGB", (1600, 1200), (30, 60, 90)).save(path)
    assert reduce_factor((1600, 1200), (200, 200)) == 3
    with load_image(path, fit=(200, 200)) as image:
        assert image.size[0] >= 400 and image.size[1] >= 400 and image.size[0] <= 800


def _huge_png(path: Path, side: int = 12000) -> None:
    """A 12000x12000 RGB PNG written row by row (never held whole): a gradient, a few hundred KB."""
    gradient = bytes(np.repeat(np.arange(side, dtype=np.uint8), 3))
    up = b"\x02" + bytes(3 * side)  # filter Up, no change: every row repeats the first
    comp = zlib.compressobj(6)
    parts = [comp.compress(b"\x00" + gradient)]
    parts.extend(comp.compress(up) for _ in range(side - 1))
    parts.append(comp.flush())
    idat = b"".join(parts)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.slow
def test_a_12000_square_png_stays_bounded_in_the_tagger_and_the_trainer(tmp_path):
    path = tmp_path / "huge.png"
    _huge_png(path)
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        import torch  # noqa: F401 - loaded before the baseline
        from tagger.preprocess import load_prepared, prepare_bgr
        from trainer.data import TrainImage
        from trainer.images import load_pixels
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rgb = load_prepared({str(path)!r}, 448, prepare_bgr)
        assert rgb.shape == (448, 448, 3)
        item = TrainImage(Path({str(path)!r}), "", "c", 1, False, (12000, 12000), (512, 512), (512, 512))
        assert tuple(load_pixels(item).pixels.shape) == (3, 512, 512)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    grown_mb = int(done.stdout.split()[-1])
    assert grown_mb < 200, f"{grown_mb} MB (a full decode holds 576 MB)"
