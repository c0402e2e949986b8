"""Output files: LoRA saves (final, per epoch, per step), training states, and save_last_n rotation.

Names: `<output_name>.safetensors` (final), `<output_name>-<epoch:06d>.safetensors`,
`<output_name>-step<step:08d>.safetensors`; a state folder is the save's stem + `-state`.
A state holds the LoRA weights, optimizer, scheduler, grad scaler and the position
(`train_state.json`), so `resume` continues exactly where it stopped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from prep.fsio import atomic_write_text
from trainer.errors import TrainError
from trainer.lora_file import save_lora_file

SAVE_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
STATE_FILE = "train_state.json"


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
               position: dict[str, Any]) -> Path:
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


def load_state(folder: Path) -> dict[str, Any]:
    """The parts of a state folder (tensors loaded with weights_only)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        position = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        parts: dict[str, Any] = {
            "position": position,
            "network": load_file(str(folder / "network.safetensors")),
            "optimizer": torch.load(folder / "optimizer.pt", map_location="cpu", weights_only=True),
            "scheduler": torch.load(folder / "scheduler.pt", map_location="cpu", weights_only=True),
        }
        if (folder / "scaler.pt").is_file():
            parts["scaler"] = torch.load(folder / "scaler.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise TrainError(f"{folder}: not a readable training state ({exc}); pass a folder written by "
                         "save_state") from None
    return parts


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
