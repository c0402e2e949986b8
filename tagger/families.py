"""Tagger families beyond WD14: each one's files, reference preprocessing and output, from its published code.

Every family hands the pipeline one [side, side, 3] array per image (HWC); the batch is transposed to
NCHW when the model's input is channels-first (read from the graph, as the side is).

**wd14** (SmilingWolf): `model.onnx` + `selected_tags.csv`. See tagger/preprocess.py: alpha on white,
centred white square, PIL BICUBIC to the side, BGR, raw 0-255 floats, NHWC; the output is already
probabilities. Thresholds per model (tagger.models.KNOWN_MODELS).

**cl_tagger** (cella110n/cl_tagger, `cl_tagger_1_02/model.onnx` + `tag_mapping.json`; the mapping is
`{"<index>": {"tag", "category"}}` or `{"idx_to_tag", "tag_to_category"}`, categories by name:
Rating, General, Character, Copyright, Artist, Meta, Quality, Model). Reference (the repo's
`onnx_predict.py`, copied by the webui and ComfyUI clients): RGBA pasted on white, pad to a centred
white square, PIL BICUBIC to 448, /255, RGB->BGR, (x - 0.5) / 0.5, channels-first; the output is
logits (sigmoid applied here). Defaults: general 0.45, character 0.45 (the clients' defaults).

**pixai** (pixai-labs/pixai-tagger-v0.9: an EVA02-large encoder + a linear head with a sigmoid; the
labels `tags_v0.9_13k.json` = `{"tag_map": {tag: index}, "tag_split": {"gen_tag_count",
"character_tag_count"}}`, general tags first). Reference (the repo's `handler.py`): RGBA or P
pasted on white, torchvision `Resize((448, 448))` (a stretch, no padding; PIL BILINEAR), ToTensor
(/255), Normalize(mean=std=0.5), channels-first RGB; the output is probabilities. Defaults: general
0.3, character 0.85 (the handler's `default_*_threshold`). The ONNX export (deepghs/pixai-tagger-v0.9-onnx:
`model.onnx` + `selected_tags.csv` + `thresholds.csv`) is read the same way, its thresholds from the file.

**camie** (Camais03/camie-tagger-v2: `camie-tagger-v2.onnx` + `camie-tagger-v2-metadata.json` with
`dataset_info.tag_mapping.{idx_to_tag, tag_to_category}` and `model_info.img_size` 512). Reference
(the repo's ONNX inference code): `convert("RGB")`, keep the aspect ratio with the long side at
img_size (the short side `int(side / ratio)`), LANCZOS, paste centred on the ImageNet-mean colour
(124, 116, 104), /255, ImageNet mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225),
channels-first; two outputs, initial and refined logits: the refined one (the second) through a
sigmoid. Default threshold 0.61 for both (the camie-tagger-quick wrapper's default; the model card
lists per-category optimised values).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from tagger.preprocess import WHITE, flatten_on_white, prepare_bgr

WD14 = "wd14"
CL_TAGGER = "cl_tagger"
PIXAI = "pixai"
CAMIE = "camie"

CAMIE_PAD = (124, 116, 104)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def cl_tagger_input(image: Image.Image, side: int) -> np.ndarray:
    """[side, side, 3] float32: white square, BICUBIC, /255, BGR, (x - 0.5) / 0.5."""
    rgb = flatten_on_white(image)
    width, height = rgb.size
    square = max(width, height)
    if width != height:
        padded = Image.new("RGB", (square, square), WHITE)
        padded.paste(rgb, ((square - width) // 2, (square - height) // 2))
        rgb = padded
    if square != side:
        rgb = rgb.resize((side, side), Image.BICUBIC)
    array = np.asarray(rgb, dtype=np.float32)[:, :, ::-1] / 255.0
    return (array - 0.5) / 0.5


def pixai_input(image: Image.Image, side: int) -> np.ndarray:
    """[side, side, 3] float32: white background, stretched to side x side (BILINEAR), /255, (x - 0.5) / 0.5."""
    rgb = flatten_on_white(image)
    if rgb.size != (side, side):
        rgb = rgb.resize((side, side), Image.BILINEAR)
    return (np.asarray(rgb, dtype=np.float32) / 255.0 - 0.5) / 0.5


def camie_input(image: Image.Image, side: int) -> np.ndarray:
    """[side, side, 3] float32: aspect kept, LANCZOS, centred on the ImageNet mean, ImageNet-normalised."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    ratio = width / height
    if ratio > 1:
        new_w, new_h = side, max(1, int(side / ratio))
    else:
        new_w, new_h = max(1, int(side * ratio)), side
    if (new_w, new_h) != rgb.size:
        rgb = rgb.resize((new_w, new_h), Image.LANCZOS)
    canvas = Image.new("RGB", (side, side), CAMIE_PAD)
    canvas.paste(rgb, ((side - new_w) // 2, (side - new_h) // 2))
    return (np.asarray(canvas, dtype=np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD


@dataclass(frozen=True)
class Family:
    """How one family's model is fed and read."""

    name: str
    prepare: Callable[[Image.Image, int], np.ndarray]
    channels_first_allowed: bool  # WD14 exports are NHWC; an NCHW one is a timm export, refused
    logits: bool  # the output needs a sigmoid
    output_index: int = 0  # which output of the label width (camie: the refined second)
    # A family's defaults where a model publishes no thresholds; WD14's 0.35 is the SmilingWolf Space's.
    general_threshold: float = 0.35
    character_threshold: float = 0.85


FAMILIES: dict[str, Family] = {
    WD14: Family(WD14, prepare_bgr, channels_first_allowed=False, logits=False),
    CL_TAGGER: Family(CL_TAGGER, cl_tagger_input, channels_first_allowed=True, logits=True,
                      general_threshold=0.45, character_threshold=0.45),
    PIXAI: Family(PIXAI, pixai_input, channels_first_allowed=True, logits=False,
                  general_threshold=0.3, character_threshold=0.85),
    CAMIE: Family(CAMIE, camie_input, channels_first_allowed=True, logits=True, output_index=1,
                  general_threshold=0.61, character_threshold=0.61),
}


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(values, -30.0, 30.0)))
