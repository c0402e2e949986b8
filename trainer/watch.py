"""Watching a run: validation loss (with overfit warnings and save_best), trackers and the EMA weights.

`RunWatch` is built once the network exists; the loop calls `after_step`, `due_after_step`,
`due_after_epoch` and `validate`; saves and samples run under `weights()` (the EMA weights when on).
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from trainer.ema import LoRAEMA
from trainer.trackers import Trackers
from trainer.validation import OverfitWatch, Validator


def best_name(output_name: str) -> str:
    return f"{output_name}-best.safetensors"


class RunWatch:
    def __init__(self, config, *, network, accelerator, training, main: bool, send) -> None:
        self.config, self.send, self.main = config, send, main
        self.ema = LoRAEMA(network, config.ema_decay, config.ema_on_cpu) if config.ema_decay else None
        self.trackers = Trackers(accelerator, config, main)
        seed = config.validation_seed if config.validation_seed is not None else config.seed
        self.validator = Validator(training.validation, seed) if training.validation and main else None
        self.overfit = OverfitWatch(config.overfit_patience)
        self.last_validation: int | None = None
        self.every_epochs = config.validate_every_n_epochs
        if self.validator is not None and not config.validate_every_n_steps and not self.every_epochs:
            self.every_epochs = 1

    def weights(self):
        """The weights samples, validation and saved files use: the EMA's when on."""
        return self.ema.applied() if self.ema is not None else nullcontext()

    def prepare(self, models, device, masks) -> None:
        if self.validator is not None:
            self.validator.prepare(models, device, masks)

    def after_step(self, step: int, loss: float, groups: list[dict], new_epoch: bool) -> None:
        if self.ema is not None:
            self.ema.update()
        lrs = {group.get("name", str(i)): float(group["lr"]) for i, group in enumerate(groups)}
        self.trackers.step(step, loss, lrs, new_epoch)

    def due_after_step(self, step: int) -> bool:
        n = self.config.validate_every_n_steps
        return self.validator is not None and bool(n) and step % n == 0

    def due_after_epoch(self, epoch: int) -> bool:
        return self.validator is not None and bool(self.every_epochs) and epoch % self.every_epochs == 0

    def validate(self, step: int, *, models, network, options, device, weight_dtype, autocast,
                 save_best, text_cache=None) -> float | None:
        """Evaluate (once per step); sends the validation event, an overfit warning, and saves the best."""
        if self.validator is None or self.last_validation == step:
            return None
        self.last_validation = step
        network.eval()
        try:
            with self.weights():
                loss = self.validator.loss(models, options, device=device, weight_dtype=weight_dtype,
                                           autocast=autocast, text_cache=text_cache)
        finally:
            network.train()
        self.send("validation", step=step, loss=loss)
        self.trackers.validation(step, loss)
        previous_best = self.overfit.best
        warning = self.overfit.add(loss)
        if warning:
            self.send("warning", message=warning)
        if self.config.save_best and loss < previous_best:
            save_best(Path(self.config.output_dir) / best_name(self.config.output_name))
        return loss

    def samples(self, step: int, paths: list[Path]) -> None:
        self.trackers.samples(step, paths)

    def state(self) -> dict[str, Any] | None:
        return self.ema.state_dict() if self.ema is not None else None

    def close(self) -> None:
        self.trackers.close()
