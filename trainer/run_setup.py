"""Run setup outside the loop: option checks before models load, masks, token length, step plan, SIGINT."""

from __future__ import annotations

import math
import signal
from pathlib import Path
from typing import Any

from trainer.caption_augment import strip_separator
from trainer.config import TrainConfig
from trainer.errors import TrainError


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


def check_feature_options(config: TrainConfig) -> None:
    """Refuse bad network/loss options before any model loads (block weight counts wait for the model type)."""
    from trainer.block_lr import block_lr_weights
    from trainer.network_kinds import network_spec

    network_spec(config)
    if config.model_type != "auto":
        block_lr_weights(config, config.model_type == "sdxl")
    if config.masked_loss and not (config.alpha_mask or config.mask_dir):
        raise TrainError("masked_loss needs masks: set alpha_mask = true (the images' alpha channel) or mask_dir")
    if config.alpha_mask and config.mask_dir:
        raise TrainError("alpha_mask and mask_dir are two mask sources; set one")
    if config.mask_dir is not None and not Path(config.mask_dir).is_dir():
        raise TrainError(f"mask_dir {config.mask_dir}: no such folder")
    if config.multires_noise_iterations < 0 or not 0 < config.multires_noise_discount <= 1:
        raise TrainError("multires_noise_iterations must not be negative and multires_noise_discount must be in (0, 1]")
    if config.ip_noise_gamma is not None and config.ip_noise_gamma < 0:
        raise TrainError("ip_noise_gamma must not be negative")
    from trainer.text_cache import check_text_cache

    te_lr = config.text_encoder_lr if config.text_encoder_lr is not None else config.learning_rate
    check_text_cache(config, trains_text_encoder=not config.train_unet_only and te_lr > 0)
    if config.fp8_base:
        from trainer.fp8 import check_fp8_supported

        check_fp8_supported(network_spec(config))


def mask_options(config: TrainConfig, training, send):
    """The masked_loss sources, or None; a warning counts images without a mask file."""
    from trainer.masks import MaskOptions, missing_masks

    if not (config.alpha_mask or config.mask_dir):
        return None
    if not config.masked_loss:
        send("warning", message="alpha_mask/mask_dir are set but masked_loss is off: the masks are not used")
        return None
    options = MaskOptions(config.alpha_mask, Path(config.mask_dir) if config.mask_dir else None)
    missing = missing_masks(training.images, options)
    if missing:
        send("warning", message=f"{len(missing)} image(s) have no mask in {config.mask_dir} (e.g. "
                                f"{missing[0].concept}/{missing[0].path.stem}.png) and are learned everywhere")
    return options
