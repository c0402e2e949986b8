"""The fast preprocessing gives exactly the reference's pixels, for every image mode and shape."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from prep import image_io
from tagger.preprocess import ImageLoadError
from tests.tagger.reference import load_bgr, load_rgb, prepare_rgb, reference_preprocess, to_model_input


def _noise(size, mode, seed=0):
    rng = np.random.default_rng(seed)
    w, h = size
    bands = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    data = rng.integers(0, 256, (h, w, bands), dtype=np.uint8)
    if bands == 1:
        data = data[:, :, 0]
    return Image.fromarray(data, mode)


SHAPES = [(448, 448), (448, 224), (224, 448), (448, 5), (300, 200), (200, 300), (1001, 333), (333, 1001), (447, 448), (449, 10), (10, 449),
          (64, 64), (1200, 1199), (5, 3)]


@pytest.mark.parametrize("size", SHAPES)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "CMYK"])
def test_fast_path_equals_reference(size, mode):
    image = _noise(size, mode, seed=size[0] * 7 + size[1])
    expected = reference_preprocess(image, 448)
    got = to_model_input(prepare_rgb(image, 448))[None]
    assert got.dtype == np.float32 and got.shape == (1, 448, 448, 3)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("side", [448, 384, 96])
def test_other_sides_equal_reference(side):
    for i, size in enumerate([(500, 260), (260, 500), (side, side), (side - 1, side + 1)]):
        image = _noise(size, "RGB", seed=i)
        np.testing.assert_array_equal(to_model_input(prepare_rgb(image, side))[None], reference_preprocess(image, side))


def test_palette_and_transparency_key_images_equal_reference():
    rgb = _noise((120, 80), "RGB", seed=3)
    palette = rgb.quantize(16)
    palette.info["transparency"] = 2  # one palette entry transparent, as in GIF/PNG
    keyed = rgb.copy()
    keyed.info["transparency"] = tuple(int(v) for v in np.asarray(rgb)[0, 0])  # PNG tRNS colour key
    grey = rgb.convert("L")
    grey.info["transparency"] = int(np.asarray(grey)[5, 5])
    for image in (palette, keyed, grey, rgb.convert("1"), rgb.convert("I"), rgb.convert("P")):
        np.testing.assert_array_equal(to_model_input(prepare_rgb(image, 448))[None], reference_preprocess(image, 448))
    # The colour key really matters: the keyed pixel became white.
    assert prepare_rgb(keyed, 448)[0, 0].tolist() == [255, 255, 255]


def test_alpha_is_composited_on_white_and_padding_is_white_and_centred():
    image = Image.new("RGBA", (448, 224), (0, 0, 0, 0))  # fully transparent black
    image.paste((0, 0, 0, 255), (0, 0, 224, 224))  # opaque black left half
    rgb = prepare_rgb(image, 448)
    assert (rgb[:112] == 255).all() and (rgb[-112:] == 255).all()  # centred white padding, 112 rows each
    assert (rgb[112:336, :224] == 0).all()  # the opaque part
    assert (rgb[112:336, 224:] == 255).all()  # transparent -> white, not black


def test_odd_padding_pixel_goes_to_the_bottom():
    image = Image.new("RGB", (448, 445), (0, 0, 0))
    rgb = prepare_rgb(image, 448)
    assert (rgb[0] == 255).all() and (rgb[1] == 0).all()  # 1 row on top
    assert (rgb[-2:] == 255).all() and (rgb[-3] == 0).all()  # 2 rows at the bottom


def test_model_input_is_bgr_float_0_255():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 255  # red
    x = to_model_input(rgb)
    assert x.dtype == np.float32 and x[0, 0].tolist() == [0.0, 0.0, 255.0]


def test_load_rgb_reports_corrupt_and_truncated_files(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ImageLoadError, match="cannot read image"):
        load_rgb(bad, 448)
    good = tmp_path / "t.jpg"
    _noise((300, 300), "RGB").save(good, quality=90)
    truncated = tmp_path / "trunc.jpg"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ImageLoadError):
        load_rgb(truncated, 448)
    with pytest.raises(ImageLoadError, match="disappeared"):
        load_rgb(tmp_path / "missing.jpg", 448)
    np.testing.assert_array_equal(load_rgb(good, 448), prepare_rgb(Image.open(good), 448))


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (400, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)  # 120,000 px is more than twice this
    with pytest.raises(ImageLoadError, match="over the 100,000-pixel limit"):
        load_rgb(path, 448)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)  # over the limit, under twice it: decoded, quietly
    monkeypatch.setattr(image_io, "_WARNING_FILTERED", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        assert load_rgb(path, 448).shape == (448, 448, 3)
    assert not caught


@pytest.mark.parametrize("size", [(300, 200), (200, 300), (448, 448)])
def test_bgr_path_equals_reference(tmp_path, size):
    path = tmp_path / "x.png"
    _noise(size, "RGBA", seed=9).save(path)
    with Image.open(path) as image:
        expected = reference_preprocess(image, 448)[0]
    np.testing.assert_array_equal(load_bgr(path, 448).astype(np.float32), expected)
