"""Tiny WD14-shaped ONNX models for the tagger tests; the builder lives in the package (tagger.tiny_model).

Each label's probability is clip(scale * mean(region of one channel of the BGR input) / 255 + offset,
0, 1), so a test can say exactly which pixels a label looks at: channel order, padding, centring,
alpha and resizing all show up as specific probabilities.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from tagger.tiny_model import WHOLE, B, Feature, G, R, build_model, constant, labels_csv
from tagger.tiny_model import write_model_folder as _write_model_folder

__all__ = ["B", "G", "R", "WHOLE", "Feature", "STANDARD", "build_model", "constant", "labels_csv",
           "build_family_model", "run_reference", "write_model_folder"]

STANDARD: tuple[Feature, ...] = (
    Feature("general", 9, G, scale=0.5, offset=0.1),
    Feature("sensitive", 9, R, scale=0.6),
    Feature("questionable", 9, B, scale=0.7),
    constant("explicit", 9, 0.05),
    Feature("red", 0, R),
    Feature("hatsune_miku", 4, G, (0.0, 1.0, 0.0, 0.5)),  # a character among the general rows
    Feature("green", 0, G),
    Feature("blue", 0, B),
    Feature("top_band", 0, G, (0.0, 1 / 16, 0.0, 1.0)),
    Feature("bottom_band", 0, G, (15 / 16, 1.0, 0.0, 1.0)),
    Feature("left_band", 0, G, (0.0, 1.0, 0.0, 1 / 16)),
    Feature("right_band", 0, G, (0.0, 1.0, 15 / 16, 1.0)),
    Feature("center", 0, G, (3 / 8, 5 / 8, 3 / 8, 5 / 8)),
    Feature("^_^", 0, B, (0.0, 0.5, 0.0, 0.5)),
    Feature("long_hair", 0, R, (0.5, 1.0, 0.5, 1.0)),
    Feature("hat_(object)", 0, R, (0.0, 0.5, 0.0, 0.5)),
    Feature("kaname_madoka", 4, R, (0.0, 1.0, 0.5, 1.0)),
)


def write_model_folder(folder: Path, features=STANDARD, side: int = 448, fixed_batch: int | None = None,
                       csv_features=None, **kwargs) -> Path:
    """A model folder as on the hub: model.onnx + selected_tags.csv (the STANDARD labels by default)."""
    return _write_model_folder(folder, features, side, fixed_batch, csv_features, **kwargs)


def run_reference(model_folder: Path, tensor: np.ndarray) -> np.ndarray:
    """The model's output on an already-preprocessed tensor (straight onnxruntime, no lorakit code)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: tensor})[0]


def build_family_model(features, side: int, *, channels_first: bool = True, logits: bool = False,
                       decoy_first: bool = False) -> onnx.ModelProto:
    """A tiny model of another family's signature: NCHW (or NHWC) float input of normalised values.

    Each output column is scale * mean(region of one input channel) + offset: probabilities clipped
    to [0, 1], or raw logits (the family applies the sigmoid). With decoy_first, a first output of
    the same width holds 0.5 everywhere (Camie's initial logits; the refined second one is real).
    """
    batch = "batch"
    shape = [batch, 3, side, side] if channels_first else [batch, side, side, 3]
    nodes, inits = [], []

    def const(name: str, values, dtype=np.int64) -> str:
        inits.append(onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    const("axes", [1, 2, 3])
    columns = []
    for i, f in enumerate(features):
        top, bottom, left, right = (int(round(v * side)) for v in f.region)
        bottom, right = max(bottom, top + 1), max(right, left + 1)
        if channels_first:
            starts, ends = [f.channel, top, left], [f.channel + 1, bottom, right]
        else:
            starts, ends = [top, left, f.channel], [bottom, right, f.channel + 1]
        nodes.append(helper.make_node("Slice", ["image", const(f"s{i}", starts), const(f"e{i}", ends), "axes"],
                                      [f"slice{i}"]))
        nodes.append(helper.make_node("ReduceMean", [f"slice{i}", "axes"], [f"mean{i}"], keepdims=0))
        nodes.append(helper.make_node("Unsqueeze", [f"mean{i}", const(f"u{i}", [1])], [f"col{i}"]))
        columns.append(f"col{i}")
    nodes.append(helper.make_node("Concat", columns, ["means"], axis=1))
    const("scale", [f.scale for f in features], np.float32)
    const("offset", [f.offset for f in features], np.float32)
    nodes.append(helper.make_node("Mul", ["means", "scale"], ["scaled"]))
    if logits:
        nodes.append(helper.make_node("Add", ["scaled", "offset"], ["refined"]))
    else:
        nodes.append(helper.make_node("Add", ["scaled", "offset"], ["shifted"]))
        const("zero", 0.0, np.float32)
        const("one", 1.0, np.float32)
        nodes.append(helper.make_node("Clip", ["shifted", "zero", "one"], ["refined"]))
    outputs = [helper.make_tensor_value_info("refined", TensorProto.FLOAT, [batch, len(features)])]
    if decoy_first:
        const("half", 0.0, np.float32)
        nodes.append(helper.make_node("Mul", ["means", "half"], ["initial"]))
        outputs.insert(0, helper.make_tensor_value_info("initial", TensorProto.FLOAT, [batch, len(features)]))
    graph = helper.make_graph(nodes, "tiny_family", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
                              outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model
