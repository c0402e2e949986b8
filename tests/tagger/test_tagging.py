"""What the model sees and what becomes a tag: tiny models whose outputs are known functions of pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import write_image
from tests.tagger.conftest import by_name, tags_of
from tests.tagger.onnx_models import STANDARD, Feature, constant, run_reference, write_model_folder
from tests.tagger.reference import reference_preprocess


def _tag_one(tag_json, model: Path, folder: Path, *args) -> dict:
    return tag_json(folder, "--model", model, "--dry-run", *args)


def test_channels_reach_the_model_in_bgr_order(tmp_path, tag_json, model_dir):
    write_image(tmp_path / "red.png", (448, 448), (255, 0, 0))
    write_image(tmp_path / "blue.png", (448, 448), (0, 0, 255))
    report = _tag_one(tag_json, model_dir, tmp_path, "--general-threshold", "0.5")
    red, blue = tags_of(report, "red.png"), tags_of(report, "blue.png")
    # "red" reads channel 2 and "blue" channel 0 of the input: true only if RGB was flipped to BGR.
    assert red["red"] == 1.0 and "blue" not in red
    assert blue["blue"] == 1.0 and "red" not in blue


def test_padding_is_white_and_centred(tmp_path, tag_json, model_dir):
    write_image(tmp_path / "wide.png", (600, 300), (0, 0, 0))  # black, padded top and bottom
    write_image(tmp_path / "tall.png", (300, 600), (0, 0, 0))  # black, padded left and right
    report = _tag_one(tag_json, model_dir, tmp_path, "--general-threshold", "0.4")
    wide, tall = tags_of(report, "wide.png"), tags_of(report, "tall.png")
    assert wide["top band"] == 1.0 and wide["bottom band"] == 1.0  # white on both sides: centred
    assert "center" not in wide and "right band" in wide and wide["left band"] == pytest.approx(0.5, abs=0.01)
    assert tall["left band"] == 1.0 and tall["right band"] == 1.0
    assert "center" not in tall and tall["top band"] == pytest.approx(0.5, abs=0.01)


def test_transparent_pixels_become_white(tmp_path, tag_json, model_dir):
    image = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    image.paste((0, 0, 0, 255), (150, 0, 300, 300))  # right half opaque black
    image.save(tmp_path / "alpha.png")
    tags = tags_of(_tag_one(tag_json, model_dir, tmp_path, "--general-threshold", "0.9"), "alpha.png")
    assert tags["hatsune miku"] > 0.99  # left half (G) white; not 1.0: bicubic blends the middle column
    assert tags["^_^"] > 0.99 and "long hair" not in tags  # top-left white, bottom-right black


@pytest.mark.parametrize("side", [448, 320])
def test_probabilities_equal_the_reference_pipeline_at_the_models_own_size(tmp_path, tag_json, side):
    model = write_model_folder(tmp_path / f"m{side}", STANDARD, side=side)
    rng = np.random.default_rng(side)
    images = {
        "noise.png": Image.fromarray(rng.integers(0, 256, (337, 611, 3), dtype=np.uint8)),
        "tall.jpg": Image.fromarray(rng.integers(0, 256, (700, 250, 3), dtype=np.uint8)),
        "exact.png": Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)),
        "alpha.png": Image.fromarray(rng.integers(0, 256, (200, 260, 4), dtype=np.uint8), "RGBA"),
    }
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, image in images.items():
        image.save(folder / name)
    report = tag_json(folder, "--model", model, "--dry-run", "--general-threshold", "0", "--character-threshold", "0",
                      "--workers", "2", "--batch-size", "3")
    names = [f.name for f in STANDARD]
    for name in images:
        with Image.open(folder / name) as image:
            expected = run_reference(model, reference_preprocess(image, side))[0]
        got = tags_of(report, name)
        for feature, p in zip(STANDARD, expected, strict=True):
            if feature.category in (0, 4) and p > 0:
                spelled = feature.name if feature.name == "^_^" else feature.name.replace("_", " ")
                assert got[spelled] == pytest.approx(float(p), abs=2e-6), (name, feature.name)
        assert by_name(report)[name]["rating"] == names[int(np.argmax(expected[:4]))]


CONSTANTS = (
    constant("general", 9, 0.1), constant("sensitive", 9, 0.7), constant("questionable", 9, 0.2),
    constant("explicit", 9, 0.05),
    constant("g_half", 0, 0.5), constant("g_high", 0, 0.9), constant("g_mid", 0, 0.7), constant("g_low", 0, 0.27),
    constant("c_exact", 4, 0.85), constant("c_hi", 4, 0.99), constant("c_95", 4, 0.95), constant("c_low", 4, 0.3),
)


@pytest.fixture(scope="module")
def constants_model(tmp_path_factory) -> Path:
    return write_model_folder(tmp_path_factory.mktemp("c") / "constants", CONSTANTS)


@pytest.fixture
def one_image(tmp_path) -> Path:
    write_image(tmp_path / "imgs" / "x.png", (32, 32))
    return tmp_path / "imgs"


def _tags(tag_json, model, folder, *args) -> list[str]:
    return [t for t, _ in tag_json(folder, "--model", model, "--dry-run", *args)["results"][0]["tags"]]


def test_order_characters_first_then_general_by_confidence(tag_json, constants_model, one_image):
    assert _tags(tag_json, constants_model, one_image) == ["c hi", "c 95", "g high", "g mid", "g half"]
    assert _tags(tag_json, constants_model, one_image, "--no-characters") == ["g high", "g mid", "g half"]


def test_thresholds_keep_strictly_greater(tag_json, constants_model, one_image):
    # c_exact is 0.85 exactly: not kept at the default 0.85; g_half is 0.5: not kept at 0.5.
    tags = _tags(tag_json, constants_model, one_image, "--general-threshold", "0.5")
    assert "c exact" not in tags and "g half" not in tags and "g mid" in tags
    tags = _tags(tag_json, constants_model, one_image, "--general-threshold", "0.4999", "--character-threshold", "0.8499")
    assert "c exact" in tags and "g half" in tags
    assert _tags(tag_json, constants_model, one_image, "--general-threshold", "0.26")[-1] == "g low"


def test_default_general_threshold_is_the_models_published_one(tmp_path, tag_json, one_image):
    # A folder named after a known model uses its P=R threshold (0.2614 for vit-v3): g_low (0.27) passes.
    known = write_model_folder(tmp_path / "wd-vit-tagger-v3", CONSTANTS)
    assert "g low" in _tags(tag_json, known, one_image)
    unknown = write_model_folder(tmp_path / "my-model", CONSTANTS)  # 0.35 for unknown models
    assert "g low" not in _tags(tag_json, unknown, one_image)


def test_mcut(tmp_path, tag_json, one_image):
    features = (
        constant("general", 9, 0.5),
        *(constant(f"g{i}", 0, p) for i, p in enumerate([0.9, 0.85, 0.8, 0.4, 0.35, 0.1])),
        constant("c_a", 4, 0.14), constant("c_b", 4, 0.13), constant("c_c", 4, 0.01),
    )
    model = write_model_folder(tmp_path / "mcut", features)
    # Largest gap 0.8 -> 0.4: threshold 0.6 whatever --general-threshold says.
    assert _tags(tag_json, model, one_image, "--mcut", "--general-threshold", "0.05") == ["g0", "g1", "g2"]
    # Characters: MCut would give 0.07, floored at 0.15 so neither 0.14 nor 0.13 is kept.
    assert _tags(tag_json, model, one_image, "--character-mcut", "--character-threshold", "0.01",
                 "--general-threshold", "0.95") == []
    assert _tags(tag_json, model, one_image, "--character-threshold", "0.01", "--general-threshold", "0.95") == [
        "c a", "c b"]


def test_category_split_follows_the_csv_not_the_row_order(tmp_path, tag_json, model_dir):
    # STANDARD puts the character hatsune_miku between general rows; a green image lights it up.
    write_image(tmp_path / "g.png", (448, 448), (0, 255, 0))
    report = _tag_one(tag_json, model_dir, tmp_path, "--general-threshold", "0.5")
    tags = [t for t, _ in report["results"][0]["tags"]]
    assert tags[0] == "hatsune miku" and tags.count("hatsune miku") == 1
    assert "general" not in tags and "sensitive" not in tags  # rating rows are never tags
    # At a character threshold above 1 it disappears, though general tags at p=1 remain.
    report = _tag_one(tag_json, model_dir, tmp_path, "--general-threshold", "0.5", "--character-threshold", "1")
    assert "hatsune miku" not in tags_of(report, "g.png") and tags_of(report, "g.png")["green"] == 1.0


def test_kaomoji_keep_underscores_and_escaping_is_optional(tmp_path, tag_json, model_dir):
    image = Image.new("RGB", (448, 448), (255, 255, 255))
    image.save(tmp_path / "w.png")
    report = _tag_one(tag_json, model_dir, tmp_path, "--general-threshold", "0.5")
    tags = tags_of(report, "w.png")
    assert "^_^" in tags and "long hair" in tags and "hat (object)" in tags
    report = _tag_one(tag_json, model_dir, tmp_path, "--general-threshold", "0.5", "--escape-parens")
    assert r"hat \(object\)" in tags_of(report, "w.png")
    report = _tag_one(tag_json, model_dir, tmp_path, "--general-threshold", "0.5", "--keep-underscores")
    assert "long_hair" in tags_of(report, "w.png") and "^_^" in tags_of(report, "w.png")


def test_rating_exclude_always_first_and_max_tags(tmp_path, tag, tag_json, constants_model, one_image):
    report = tag_json(one_image, "--model", constants_model, "--dry-run", "--rating", "first")
    assert report["results"][0]["rating"] == "sensitive"
    code, out, _ = tag(one_image, "--model", constants_model, "--dry-run", "--rating", "first")
    assert "x.png: sensitive, c hi, c 95, g high, g mid, g half" in out
    code, out, _ = tag(one_image, "--model", constants_model, "--dry-run", "--rating", "last")
    assert "x.png: c hi, c 95, g high, g mid, g half, sensitive" in out
    code, out, _ = tag(one_image, "--model", constants_model, "--dry-run")
    assert "sensitive" not in out
    exclude_file = tmp_path / "exclude.txt"
    exclude_file.write_text("# no generic tags\ng_mid\n")
    assert _tags(tag_json, constants_model, one_image, "--exclude", "c HI", f"@{exclude_file}") == [
        "c 95", "g high", "g half"]
    assert _tags(tag_json, constants_model, one_image, "--always-first", "g half", "g_mid", "absent") == [
        "g half", "g mid", "c hi", "c 95", "g high"]
    # The 3 most confident overall, then in the usual order.
    assert _tags(tag_json, constants_model, one_image, "--max-tags", "3") == ["c hi", "c 95", "g high"]
    assert _tags(tag_json, constants_model, one_image, "--max-tags", "4", "--no-characters") == [
        "g high", "g mid", "g half"]


def test_signal_feature_sanity():
    # The builder's region fractions map to pixels the way the tests above assume.
    f = Feature("x", 0, region=(0.0, 1 / 16, 0.0, 1.0))
    assert round(f.region[1] * 448) == 28
