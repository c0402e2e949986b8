"""Output files: LoRA saves (final, per epoch, per step), training states, and save_last_n rotation.

Names: `<output_name>.safetensors` (final), `<output_name>-<epoch:06d>.safetensors`,
`<output_name>-step<step:08d>.safetensors`; a state folder is the save's stem + `-state`.
A state holds the LoRA weights, optimizer, scheduler, grad scaler and the position
(`train_state.json`), so `resume` continues exactly where it stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from prep.fsio import atomic_write_text
from trainer.errors import TrainError
from trainer.lora_file import save_lora_file

SAVE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
STATE_FILE = "train_state.json"
EMA_FILE = "ema.safetensors"


def final_name(output_name: str) -> str:
    return f"{output_name}.safetensors"


def epoch_name(output_name: str, epoch: int) -> str:
    return f"{output_name}-{epoch:06d}.safetensors"


def step_name(output_name: str, step: int) -> str:
    return f"{output_name}-step{step:08d}.safetensors"


def state_dir_for(lora_path: Path) -> Path:
    return lora_path.with_name(lora_path.stem + "-state")


def save_lora(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str], save_precision: str) -> Path:
    return save_lora_file(path, tensors, metadata, dtype=SAVE_DTYPES[save_precision])


def save_state(folder: Path, *, network_state: dict[str, torch.Tensor], optimizer, scheduler, scaler,
               position: dict[str, Any], ema_state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a state folder next to a temp name, then swap it in (an interrupted save keeps the old one)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in network_state.items()}, str(tmp / "network.safetensors"))
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    if scaler is not None:
        torch.save(scaler.state_dict(), tmp / "scaler.pt")
    if ema_state is not None:
        save_file(ema_state, str(tmp / EMA_FILE))
    atomic_write_text(tmp / STATE_FILE, json.dumps(position, indent=2))
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old.exists():
        shutil.rmtree(old)
    return folder


_STATE_HINT = "pass a folder written by save_state (or train without resume)"


def _state_error(path: Path, reason: str) -> TrainError:
    return TrainError(f"{path}: not a readable training state ({reason}); {_STATE_HINT}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # torch colours its weights_only advice
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


# Everything a hostile or damaged file makes the readers raise: pickles refused by weights_only
# (UnpicklingError), wrong types (TypeError), nesting (RecursionError), bad headers (SafetensorError).
def _read_failures() -> tuple[type[BaseException], ...]:
    import pickle

    from safetensors import SafetensorError

    return (OSError, ValueError, TypeError, RuntimeError, RecursionError, KeyError, AttributeError, EOFError,
            IndexError, pickle.UnpicklingError, SafetensorError)


def _read_position(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        position = {key: int(data[key]) for key in ("step", "epoch", "batch")}
    except _read_failures() as exc:
        raise _state_error(path, _reason(exc)) from None
    if any(value < 0 for value in position.values()):
        raise _state_error(path, "negative step, epoch or batch")
    return position


def _read_network(path: Path) -> dict[str, torch.Tensor]:
    from trainer.safetensors_read import SafetensorsFileError, read_tensors

    try:
        tensors, _metadata = read_tensors(path)  # the validated reader (offsets, sizes, hostile JSON)
    except SafetensorsFileError as exc:
        raise _state_error(path, str(exc).replace(f"{path}: ", "", 1)) from None
    except _read_failures() as exc:
        raise _state_error(path, _reason(exc)) from None
    empty = [key for key, value in tensors.items() if value.numel() == 0 and value.dim() > 0]
    if empty:
        raise _state_error(path, f"{empty[0]} has a zero-size shape {tuple(tensors[empty[0]].shape)} (a zero-rank LoRA)")
    return tensors


def _read_torch(path: Path) -> Any:
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except _read_failures() as exc:
        raise _state_error(path, _reason(exc)) from None
    if not isinstance(value, dict):
        raise _state_error(path, f"holds a {type(value).__name__}, not a state dict")
    return value


def load_state(folder: Path) -> dict[str, Any]:
    """The parts of a state folder; tensors only (torch.load with weights_only); every failure one
    TrainError naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainError(f"{folder}: no such training state folder; {_STATE_HINT}")
    parts: dict[str, Any] = {
        "position": _read_position(folder / STATE_FILE),
        "network": _read_network(folder / "network.safetensors"),
        "optimizer": _read_torch(folder / "optimizer.pt"),
        "scheduler": _read_torch(folder / "scheduler.pt"),
    }
    if (folder / "scaler.pt").is_file():
        parts["scaler"] = _read_torch(folder / "scaler.pt")
    if (folder / EMA_FILE).is_file():
        parts["ema"] = _read_network(folder / EMA_FILE)
    return parts


def restore_state(folder: Path, *, network, optimizer, scheduler, scaler, ema=None) -> dict[str, int]:
    """Load a state folder into the run's objects; returns its position {step, epoch, batch}. A state
    without EMA weights starts the average from the resumed weights."""
    folder = Path(folder)
    state = load_state(folder)
    network.load_weights(state["network"], str(folder / "network.safetensors"))
    if ema is not None and "ema" in state:
        ema.load_state_dict(state["ema"], str(folder / EMA_FILE))
    elif ema is not None:
        ema.shadow = {name: p.detach().to(t.device, torch.float32, copy=True)
                      for (name, p), t in zip(ema.params.items(), ema.shadow.values(), strict=True)}
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("scaler", scaler)):
        if name not in state or target is None:
            continue
        try:
            target.load_state_dict(state[name])
        except _read_failures() as exc:
            raise TrainError(f"{folder / (name + '.pt')}: does not fit this run ({_reason(exc)}); was the state "
                             "written with other network or optimizer settings?") from None
    return state["position"]


class Rotation:
    """Keeps only the newest N intermediate saves (and their states) of one kind."""

    def __init__(self, keep: int | None) -> None:
        self.keep = keep
        self.saved: list[Path] = []

    def add(self, path: Path) -> list[Path]:
        self.saved.append(path)
        removed: list[Path] = []
        if not self.keep:
            return removed
        while len(self.saved) > self.keep:
            old = self.saved.pop(0)
            for target in (old, state_dir_for(old)):
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                    removed.append(target)
                elif target.exists():
                    target.unlink()
                    removed.append(target)
        return removed
