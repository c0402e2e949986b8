"""Tiny WD14-signature ONNX taggers built with onnx.helper, whose outputs are known functions of the pixels.

The real signature: one input `[batch, side, side, 3]` float32 BGR 0..255, one output `[batch, labels]`
of probabilities, and a `selected_tags.csv` beside `model.onnx`. Each label's probability is
clip(scale * mean(region of one channel) / 255 + offset, 0, 1), so a test can say exactly which pixels a
label looks at. `lorakit demo` tags its generated shapes with one (`build_demo_tagger`); the tests
build others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

B, G, R = 0, 1, 2  # channel indices of the model's BGR input
WHOLE = (0.0, 1.0, 0.0, 1.0)  # (top, bottom, left, right) as fractions of the side
DEMO_SIDE = 64  # the demo tagger's input side: its shapes are big, 64 px is plenty and fast
DEMO_LABEL = "DEMO-MODEL.txt"


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


def _px(frac: float, side: int) -> int:
    return int(round(frac * side))


def build_model(features: tuple[Feature, ...] | list[Feature], side: int = 448, fixed_batch: int | None = None,
                output_width: int | None = None, input_shape: list | None = None) -> Any:
    """The graph (an onnx.ModelProto): per label Slice -> ReduceMean, Concat, *scale/255 + offset, Clip to [0, 1]."""
    import onnx
    from onnx import TensorProto, helper

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


def write_model_folder(folder: Path, features, side: int = 448, fixed_batch: int | None = None,
                       csv_features=None, **kwargs) -> Path:
    """A model folder as on the hub: model.onnx + selected_tags.csv."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(build_model(features, side, fixed_batch, **kwargs), str(folder / "model.onnx"))
    (folder / "selected_tags.csv").write_text(labels_csv(csv_features if csv_features is not None else features))
    return folder


# The demo's labels: the colour of the shape (red channel of the centre, etc.), the background
# brightness, and two ratings. Names are real Danbooru tags so the demo's captions read naturally.
DEMO_FEATURES: tuple[Feature, ...] = (
    Feature("general", 9, G, scale=0.4, offset=0.5),
    constant("sensitive", 9, 0.02),
    Feature("red theme", 0, R, (0.3, 0.7, 0.3, 0.7), scale=1.0, offset=-0.25),
    Feature("green theme", 0, G, (0.3, 0.7, 0.3, 0.7), scale=1.0, offset=-0.25),
    Feature("blue theme", 0, B, (0.3, 0.7, 0.3, 0.7), scale=1.0, offset=-0.25),
    Feature("white background", 0, G, (0.0, 0.08, 0.0, 0.08), scale=1.0, offset=-0.3),
    Feature("simple background", 0, G, (0.0, 0.08, 0.0, 0.08), scale=0.0, offset=0.9),
    Feature("no humans", 0, R, scale=0.0, offset=0.8),
)


def build_demo_tagger(folder: str | Path) -> Path:
    """The demo's WD14-signature tagger (model.onnx + selected_tags.csv), labelled as a demo model."""
    folder = Path(folder)
    write_model_folder(folder, DEMO_FEATURES, side=DEMO_SIDE)
    (folder / DEMO_LABEL).write_text(
        "lorakit demo tagger: a tiny ONNX graph with the WD14 signature that reads the colours of the "
        "demo's shapes. Not a real tagger; built by `lorakit demo`.\n", encoding="utf-8")
    return folder
