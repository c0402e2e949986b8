"""The onnxruntime session: execution provider, and the input/output layout read from the model."""

from __future__ import annotations

import contextlib
import ctypes.util
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prep.errors import first_line
from tagger.errors import TaggerError
from tagger.families import FAMILIES, WD14, Family, sigmoid

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEFAULT_BATCH = {CPU: 8, CUDA: 32}


@dataclass(frozen=True)
class ModelLayout:
    """What the model expects, as its graph says: float32 [batch, side, side, 3] (NCHW for some families)."""

    input_name: str
    output_name: str
    side: int
    fixed_batch: int | None  # None: dynamic batch dimension
    output_width: int | None  # None: not fixed in the graph
    channels_first: bool = False
    logits: bool = False  # the family's output needs a sigmoid


class TaggerSession:
    """An onnxruntime session plus the layout checks done once at load."""

    def __init__(self, session: Any, layout: ModelLayout, provider: str) -> None:
        self.session = session
        self.layout = layout
        self.provider = provider

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities [n, labels] for a float32 NHWC batch (padded to a fixed batch size if needed)."""
        n = batch.shape[0]
        fixed = self.layout.fixed_batch
        if fixed is not None and n != fixed:
            outputs = []
            for start in range(0, n, fixed):
                part = batch[start:start + fixed]
                if part.shape[0] < fixed:
                    part = np.concatenate([part, np.zeros((fixed - part.shape[0], *part.shape[1:]), part.dtype)])
                outputs.append(self._run(part))
            return np.concatenate(outputs)[:n]
        return self._run(batch)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.layout.channels_first:
            batch = np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
        (out,) = self.session.run([self.layout.output_name], {self.layout.input_name: batch})
        out = np.asarray(out)
        if self.layout.logits:
            out = sigmoid(out).astype(np.float32)
        if out.ndim != 2 or out.shape[0] != batch.shape[0]:
            raise TaggerError(f"the model returned shape {list(out.shape)} for a batch of {batch.shape[0]}; "
                              f"expected [batch, labels]")
        return out


def cuda_usable() -> bool:
    """onnxruntime-gpu is installed and a CUDA driver is present (the EP loads only then)."""
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        return False
    return ctypes.util.find_library("cuda") is not None or os.path.exists("/dev/nvidia0")


def choose_providers(device: str) -> list[str]:
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        return [CUDA, CPU]
    return [CUDA, CPU] if cuda_usable() else [CPU]


def open_session(model_path: Path, device: str = "auto", threads: int | None = None,
                 label_count: int | None = None, family: str = WD14) -> TaggerSession:
    """Load the model on the requested device and check its input/output layout up front."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # CUDA EP fall-back notes would otherwise flood stderr
    if threads:
        options.intra_op_num_threads = threads
    # Decoding workers share the cores: idle inference threads must sleep, not spin.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = choose_providers(device)
    try:
        # A CUDA provider that cannot load makes onnxruntime print a screenful (on stdout, which
        # must stay clean for --json, and from its C++ logger); the session says what it got.
        with contextlib.redirect_stdout(io.StringIO()):
            if CUDA in providers:
                ort.set_default_logger_severity(4)
                if hasattr(ort, "preload_dlls"):
                    try:
                        ort.preload_dlls()  # CUDA/cuDNN from pip packages (nvidia-*), when installed
                    except Exception:  # noqa: BLE001 - best effort
                        pass
            session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for bad files
        raise TaggerError(f"{model_path}: onnxruntime cannot load this model ({first_line(exc)})") from None
    finally:
        if CUDA in providers:
            ort.set_default_logger_severity(2)  # onnxruntime's default: warnings
    active = session.get_providers()[0]
    if device == "cuda" and active != CUDA:
        raise TaggerError(
            f"--device cuda: onnxruntime {ort.__version__} cannot use CUDA here (no GPU, or the CUDA/cuDNN "
            "libraries onnxruntime-gpu needs are not installed: see onnxruntime.ai/docs/install); use --device cpu"
        )
    layout = read_layout(session, model_path, label_count, FAMILIES[family])
    return TaggerSession(session, layout, active)


def _dim(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def read_layout(session: Any, model_path: Path, label_count: int | None = None,
                family: Family = FAMILIES[WD14]) -> ModelLayout:
    """Read the input name/side/batch and pick the output; fail with one line on anything unexpected."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise TaggerError(f"{model_path}: the model has {len(inputs)} inputs; a WD14 tagger has one image input")
    inp = inputs[0]
    shape = list(inp.shape)
    expected = "NHWC float32 [batch, side, side, 3]"
    if inp.type != "tensor(float)":
        raise TaggerError(f"{model_path}: input {inp.name!r} is {inp.type}; expected {expected}")
    if len(shape) != 4:
        raise TaggerError(f"{model_path}: input {inp.name!r} has shape {shape}; expected {expected}")
    height, width, channels = (_dim(d) for d in shape[1:])
    channels_first = family.channels_first_allowed and _dim(shape[1]) == 3 and channels != 3
    if channels_first:
        expected = "NCHW float32 [batch, 3, side, side]"
        channels, height, width = (_dim(d) for d in shape[1:])
    if channels != 3:
        hint = " (channels first: a timm/PyTorch export, not the WD14 ONNX model)" if _dim(shape[1]) == 3 else ""
        raise TaggerError(f"{model_path}: input {inp.name!r} has shape {shape}; expected {expected}{hint}")
    if height is None or width is None or height != width:
        raise TaggerError(
            f"{model_path}: input {inp.name!r} has shape {shape}; expected a fixed square side, {expected}"
        )
    outputs = session.get_outputs()
    if not outputs:
        raise TaggerError(f"{model_path}: the model has no output")
    chosen = outputs[0]
    if label_count is not None:
        # Re-exports with a second (embedding) output exist: take the one as wide as the label list
        # (Camie has two such, initial and refined logits: the family says which).
        wide = [out for out in outputs if out.shape and _dim(out.shape[-1]) == label_count]
        if wide:
            chosen = wide[min(family.output_index, len(wide) - 1)]
    elif len(outputs) > family.output_index:
        chosen = outputs[family.output_index]
    out_shape = list(chosen.shape or [])
    if len(out_shape) != 2:
        raise TaggerError(f"{model_path}: output {chosen.name!r} has shape {out_shape}; expected [batch, labels]")
    return ModelLayout(
        input_name=inp.name,
        output_name=chosen.name,
        side=height,
        fixed_batch=_dim(shape[0]),
        output_width=_dim(out_shape[1]),
        channels_first=channels_first,
        logits=family.logits,
    )


def check_label_count(session: TaggerSession, label_count: int, labels_path: Path) -> None:
    """The CSV must have exactly one row per output column (probed with a blank image when symbolic)."""
    width = session.layout.output_width
    if width is None:
        side = session.layout.side
        probe = np.full((session.layout.fixed_batch or 1, side, side, 3), 255.0, dtype=np.float32)
        width = int(session.run(probe).shape[-1])
    if width != label_count:
        raise TaggerError(
            f"{labels_path}: has {label_count} label rows but the model outputs {width} values; "
            f"the CSV belongs to another model (use the selected_tags.csv of the same repo)"
        )
