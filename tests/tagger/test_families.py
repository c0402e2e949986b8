"""cl_tagger, PixAI and Camie folders: tiny ONNX models of each family's signature whose outputs are
known functions of the pixels, so the family's preprocessing (padding, stretch, colour order,
normalisation), label file, output choice and sigmoid all show up as exact probabilities."""

from __future__ import annotations

import json
import math
from pathlib import Path

import onnx
import pytest

from tests.conftest import write_image
from tests.tagger.conftest import by_name, tags_of
from tests.tagger.onnx_models import WHOLE, Feature, build_family_model

SIDE = 64
TOP = (0.0, 1 / 8, 0.0, 1.0)  # rows 0-7: padding when a 64x32 image is centred in a 64 square
CENTER = (3 / 8, 5 / 8, 3 / 8, 5 / 8)


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.fixture
def red_wide(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    write_image(folder / "red.png", (SIDE, SIDE // 2), (255, 0, 0))
    return folder


def save(folder: Path, model: onnx.ModelProto, name: str = "model.onnx") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / name))
    return folder


def all_tags(tag_json, folder: Path, model: Path, *extra) -> dict[str, float]:
    report = tag_json(folder, "--model", model, "--general-threshold", "0", "--character-threshold", "0",
                      "--dry-run", *extra)
    return tags_of(report, "red.png")


def test_cl_tagger_white_square_bgr_and_sigmoid(tmp_path, red_wide, tag_json):
    # Channels after preprocessing: 0 = B, 2 = R, each (v/255 - 0.5) / 0.5: red -> B -1, R +1; white +1.
    features = [Feature("rating_general", 9, 0, WHOLE, 0.0, 2.0), Feature("top_blue", 0, 0, TOP),
                Feature("center_blue", 0, 0, CENTER), Feature("center_red", 0, 2, CENTER, 2.0),
                Feature("someone", 4, 0, CENTER, 1.0, 0.5)]
    folder = save(tmp_path / "cl", build_family_model(features, SIDE, logits=True))
    mapping = {str(i): {"tag": f.name, "category": {9: "Rating", 0: "General", 4: "Character"}[f.category]}
               for i, f in enumerate(features)}
    (folder / "tag_mapping.json").write_text(json.dumps(mapping))
    tags = all_tags(tag_json, red_wide, folder)
    assert tags["top blue"] == pytest.approx(sig(1.0), abs=1e-5)  # white padding, centred
    assert tags["center blue"] == pytest.approx(sig(-1.0), abs=1e-5)  # the red image has no blue
    assert tags["center red"] == pytest.approx(sig(2.0), abs=1e-5)  # BGR order: channel 2 is red
    assert tags["someone"] == pytest.approx(sig(-0.5), abs=1e-5)  # a character, by its category name
    report = tag_json(red_wide, "--model", folder, "--rating", "first", "--dry-run")
    assert by_name(report)["red.png"]["rating"] == "rating_general"


def test_cl_tagger_idx_to_tag_format_and_channels_last(tmp_path, red_wide, tag_json):
    features = [Feature("top_blue", 0, 0, TOP), Feature("center_blue", 0, 0, CENTER)]
    folder = save(tmp_path / "cl2", build_family_model(features, SIDE, channels_first=False, logits=True))
    (folder / "tag_mapping.json").write_text(json.dumps({
        "idx_to_tag": {"0": "top_blue", "1": "center_blue"},
        "tag_to_category": {"top_blue": "General", "center_blue": "General"}}))
    tags = all_tags(tag_json, red_wide, folder)
    assert tags["top blue"] == pytest.approx(sig(1.0), abs=1e-5)
    assert tags["center blue"] == pytest.approx(sig(-1.0), abs=1e-5)


def test_pixai_stretches_rgb_and_reads_tag_split(tmp_path, tag_json):
    folder_imgs = tmp_path / "imgs"
    write_image(folder_imgs / "red.png", (32, 16), (255, 0, 0))
    # RGB order, (v/255 - 0.5) / 0.5; probabilities (no sigmoid); stretched: no white band anywhere.
    features = [Feature("top_green", 0, 1, TOP, 0.25, 0.5), Feature("red_all", 0, 0, WHOLE, 0.25, 0.5),
                Feature("blue_center", 4, 2, CENTER, 0.25, 0.5)]
    folder = save(tmp_path / "pixai", build_family_model(features, SIDE))
    (folder / "tags_v0.9_13k.json").write_text(json.dumps({
        "tag_map": {"top_green": 0, "red_all": 1, "blue_center": 2},
        "tag_split": {"gen_tag_count": 2, "character_tag_count": 1}}))
    tags = all_tags(tag_json, folder_imgs, folder)
    assert tags["top green"] == pytest.approx(0.25, abs=1e-6)  # green -1 at the top: stretched, not padded
    assert tags["red all"] == pytest.approx(0.75, abs=1e-6)
    assert tags["blue center"] == pytest.approx(0.25, abs=1e-6)
    # Default thresholds (general 0.3, character 0.85): red_all kept, the character not.
    report = tag_json(folder_imgs, "--model", folder, "--dry-run")
    assert [t for t, _ in by_name(report)["red.png"]["tags"]] == ["red all"]


def test_pixai_onnx_export_with_thresholds_csv(tmp_path, tag_json):
    folder_imgs = tmp_path / "imgs"
    write_image(folder_imgs / "red.png", (32, 16), (255, 0, 0))
    features = [Feature("red_all", 0, 0, WHOLE, 0.25, 0.5), Feature("mid", 0, 0, WHOLE, 0.0, 0.6)]
    folder = save(tmp_path / "pixai-onnx", build_family_model(features, SIDE))
    (folder / "selected_tags.csv").write_text("name,category\nred_all,0\nmid,0\n")
    (folder / "thresholds.csv").write_text("category,name,threshold\n0,general,0.7\n4,character,0.9\n")
    report = tag_json(folder_imgs, "--model", folder, "--dry-run")
    assert [t for t, _ in by_name(report)["red.png"]["tags"]] == ["red all"]  # 0.75 > 0.7 > 0.6
    assert tags_of(report, "red.png")["red all"] == pytest.approx(0.75, abs=1e-6)


def test_camie_pads_with_imagenet_mean_and_reads_the_refined_output(tmp_path, red_wide, tag_json):
    # Channel 0 (R): image 1.0 -> (1 - 0.485) / 0.229; the padding is 124/255 -> about 0 after normalising.
    features = [Feature("top_red", 0, 0, TOP), Feature("center_red", 0, 0, CENTER),
                Feature("center_blue", 4, 2, CENTER)]
    folder = save(tmp_path / "camie", build_family_model(features, SIDE, logits=True, decoy_first=True),
                  "camie-tagger-v2.onnx")
    metadata = {"model_info": {"img_size": SIDE}, "dataset_info": {"tag_mapping": {
        "idx_to_tag": {"0": "top_red", "1": "center_red", "2": "center_blue"},
        "tag_to_category": {"top_red": "general", "center_red": "general", "center_blue": "character"}}}}
    (folder / "camie-tagger-v2-metadata.json").write_text(json.dumps(metadata))
    tags = all_tags(tag_json, red_wide, folder)
    assert tags["top red"] == pytest.approx(sig((124 / 255 - 0.485) / 0.229), abs=1e-5)
    assert tags["center red"] == pytest.approx(sig((1 - 0.485) / 0.229), abs=1e-5)
    assert tags["center blue"] == pytest.approx(sig((0 - 0.406) / 0.225), abs=1e-5)


def test_camie_side_must_match_the_metadata(tmp_path, red_wide, tag):
    features = [Feature("x", 0, 0, CENTER)]
    folder = save(tmp_path / "camie", build_family_model(features, SIDE, logits=True), "camie-tagger-v2.onnx")
    (folder / "camie-tagger-v2-metadata.json").write_text(json.dumps({"model_info": {"img_size": 512},
        "dataset_info": {"tag_mapping": {"idx_to_tag": {"0": "x"}, "tag_to_category": {"x": "general"}}}}))
    code, _out, err = tag(red_wide, "--model", folder)
    assert code == 1 and "512" in err and len(err.strip().splitlines()) == 1


def test_bad_tag_mapping_is_one_line(tmp_path, red_wide, tag):
    folder = save(tmp_path / "cl", build_family_model([Feature("x", 0, 0, CENTER)], SIDE, logits=True))
    (folder / "tag_mapping.json").write_text('{"0": {"category": "General"}}')
    code, _out, err = tag(red_wide, "--model", folder)
    assert code == 1 and "tag_mapping.json" in err and "Traceback" not in err


def test_list_models_shows_each_family_with_thresholds(tag_json):
    models = {m["repo"]: m for m in tag_json("--list-models")["models"]}
    assert {m["family"] for m in models.values()} == {"wd14", "cl_tagger", "pixai", "camie"}
    assert (models["cella110n/cl_tagger"]["general_threshold"], models["cella110n/cl_tagger"]["character_threshold"]) \
        == (0.45, 0.45)
    assert models["deepghs/pixai-tagger-v0.9-onnx"]["general_threshold"] == 0.3
    assert models["Camais03/camie-tagger-v2"]["character_threshold"] == 0.61
