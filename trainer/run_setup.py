"""Run setup outside the loop: masks, token length, step plan, SIGINT."""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Any

from trainer.caption_augment import strip_separator
from trainer.config import TrainConfig


def resolve_max_token_length(config: TrainConfig, captions: list[str]) -> int:
    """75/150/225, or for "auto" the smallest that fits the longest caption (as validate recommends)."""
    if config.max_token_length != "auto":
        return int(config.max_token_length)
    from prep.clip_tokens import count_tokens, recommended_max_token_length

    longest = max((count_tokens(strip_separator(c, config.keep_tokens_separator)) for c in captions), default=0)
    return recommended_max_token_length(longest)


class Interrupt:
    """SIGINT sets a flag; the loop saves the state at the next step boundary and stops."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and self._previous not in (None, signal.SIG_IGN):
            signal.default_int_handler(signum, frame)
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def plan_steps(config: TrainConfig, local_batches: int) -> tuple[int, int, int]:
    """(optimizer steps per epoch, epochs, total steps) as kohya: max_train_epochs wins over steps."""
    per_epoch = max(math.ceil(local_batches / config.gradient_accumulation_steps), 1)
    if config.max_train_epochs is not None:
        return per_epoch, config.max_train_epochs, per_epoch * config.max_train_epochs
    if config.max_train_steps is not None:
        return per_epoch, math.ceil(config.max_train_steps / per_epoch), config.max_train_steps
    return per_epoch, 10, per_epoch * 10


def mask_options(config: TrainConfig, training, send):
    """The masked_loss sources, or None; a warning counts images without a mask file."""
    from trainer.masks import MaskOptions, missing_masks

    if not (config.alpha_mask or config.mask_dir):
        return None
    if not config.masked_loss:  # config_problems warned about it
        return None
    options = MaskOptions(config.alpha_mask, Path(config.mask_dir) if config.mask_dir else None)
    missing = missing_masks(training.images, options)
    if missing:
        send("warning", message=f"{len(missing)} image(s) have no mask in {config.mask_dir} (e.g. "
                                f"{missing[0].concept}/{missing[0].path.stem}.png) and are learned everywhere")
    return options
