"""Experiment trackers through accelerate (log_with = tensorboard | wandb, logging_dir).

Scalars: `loss/current`, `loss/average` (mean of the epoch so far), `lr/<group>`, `loss/validation`;
sample previews as images. Only the main process logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def logging_dir(config) -> Path:
    return Path(config.logging_dir) if config.logging_dir else Path(config.output_dir) / "logs"


def _wandb_dir(config) -> Path:
    folder = logging_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _hparams(values: dict[str, Any]) -> dict[str, Any]:
    """Tracker config values: numbers, strings and booleans only (tensorboard's hparams refuse the rest)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, (int, float, str, bool)) else str(value)
    return out


class Trackers:
    """accelerate's trackers, or nothing when log_with is unset."""

    def __init__(self, accelerator, config, main: bool) -> None:
        self.accelerator = accelerator
        self.active = bool(config.log_with) and main
        self.epoch_losses: list[float] = []
        if self.active:
            # wandb writes its run folder under logging_dir too (offline runs: WANDB_MODE=offline).
            init_kwargs = {"wandb": {"dir": str(_wandb_dir(config))}} if config.log_with == "wandb" else {}
            accelerator.init_trackers(config.output_name, config=_hparams(config.to_dict()), init_kwargs=init_kwargs)

    def step(self, step: int, loss: float, lrs: dict[str, float], new_epoch: bool) -> None:
        if new_epoch:
            self.epoch_losses = []
        self.epoch_losses.append(loss)
        if not self.active:
            return
        values = {"loss/current": loss, "loss/average": sum(self.epoch_losses) / len(self.epoch_losses)}
        values.update({f"lr/{name}": lr for name, lr in lrs.items()})
        self.accelerator.log(values, step=step)

    def validation(self, step: int, loss: float) -> None:
        if self.active:
            self.accelerator.log({"loss/validation": loss}, step=step)

    def samples(self, step: int, paths: list[Path]) -> None:
        if not self.active or not paths:
            return
        import numpy as np
        from PIL import Image

        images = {f"samples/{i}": np.asarray(Image.open(p).convert("RGB")) for i, p in enumerate(paths)}
        for tracker in self.accelerator.trackers:
            if not hasattr(tracker, "log_images"):
                continue
            if tracker.name == "tensorboard":
                tracker.log_images(images, step=step, dataformats="HWC")
            else:
                tracker.log_images({name: [image] for name, image in images.items()}, step=step)

    def close(self) -> None:
        if self.active:
            self.accelerator.end_training()
