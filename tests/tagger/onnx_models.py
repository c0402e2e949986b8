"""Tiny WD14-shaped ONNX models built with onnx.helper, whose outputs are known functions of the pixels.

Each label's probability is clip(scale * mean(region of one channel of the BGR input) / 255 + offset,
0, 1), so a test can say exactly which pixels a label looks at: channel order, padding, centring,
alpha and resizing all show up as specific probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

B, G, R = 0, 1, 2  # channel indices of the model's BGR input
WHOLE = (0.0, 1.0, 0.0, 1.0)  # (top, bottom, left, right) as fractions of the side


@dataclass(frozen=True)
class Feature:
    name: str
    category: int
    channel: int = R
    region: tuple[float, float, float, float] = WHOLE
    scale: float = 1.0
    offset: float = 0.0


def constant(name: str, category: int, p: float) -> Feature:
    """A label whose probability is p whatever the image."""
    return Feature(name, category, scale=0.0, offset=p)


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


def _px(frac: float, side: int) -> int:
    return int(round(frac * side))


def build_model(features: tuple[Feature, ...] | list[Feature], side: int = 448, fixed_batch: int | None = None,
                output_width: int | None = None, input_shape: list | None = None) -> onnx.ModelProto:
    """The graph: per label Slice -> ReduceMean, Concat, *scale/255 + offset, Clip to [0, 1]."""
    batch = fixed_batch if fixed_batch is not None else "batch"
    shape = input_shape or [batch, side, side, 3]
    nodes, inits = [], []

    def const(name: str, values, dtype=np.int64) -> str:
        inits.append(onnx.numpy_helper.from_array(np.asarray(values, dtype=dtype), name))
        return name

    const("axes_hwc", [1, 2, 3])
    columns = []
    for i, f in enumerate(features):
        top, bottom, left, right = (_px(v, side) for v in f.region)
        starts = const(f"s{i}", [top, left, f.channel])
        ends = const(f"e{i}", [max(bottom, top + 1), max(right, left + 1), f.channel + 1])
        nodes.append(helper.make_node("Slice", ["image", starts, ends, "axes_hwc"], [f"slice{i}"]))
        nodes.append(helper.make_node("ReduceMean", [f"slice{i}", "axes_hwc"], [f"mean{i}"], keepdims=0))
        const(f"u{i}", [1])
        nodes.append(helper.make_node("Unsqueeze", [f"mean{i}", f"u{i}"], [f"col{i}"]))
        columns.append(f"col{i}")
    nodes.append(helper.make_node("Concat", columns, ["means"], axis=1))
    const("scale", [f.scale / 255.0 for f in features], np.float32)
    const("offset", [f.offset for f in features], np.float32)
    const("zero", 0.0, np.float32)
    const("one", 1.0, np.float32)
    nodes.append(helper.make_node("Mul", ["means", "scale"], ["scaled"]))
    nodes.append(helper.make_node("Add", ["scaled", "offset"], ["shifted"]))
    nodes.append(helper.make_node("Clip", ["shifted", "zero", "one"], ["output"]))
    width = output_width if output_width is not None else len(features)
    graph = helper.make_graph(
        nodes, "tiny_wd14",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, width])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def labels_csv(features) -> str:
    lines = ["tag_id,name,category,count"]
    for i, f in enumerate(features):
        name = f'"{f.name}"' if "," in f.name else f.name
        lines.append(f"{1000 + i},{name},{f.category},{10000 - i}")
    return "\n".join(lines) + "\n"


def write_model_folder(folder: Path, features=STANDARD, side: int = 448, fixed_batch: int | None = None,
                       csv_features=None, **kwargs) -> Path:
    """A model folder as on the hub: model.onnx + selected_tags.csv."""
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(build_model(features, side, fixed_batch, **kwargs), str(folder / "model.onnx"))
    (folder / "selected_tags.csv").write_text(labels_csv(csv_features if csv_features is not None else features))
    return folder


def run_reference(model_folder: Path, tensor: np.ndarray) -> np.ndarray:
    """The model's output on an already-preprocessed tensor (straight onnxruntime, no lorakit code)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: tensor})[0]
