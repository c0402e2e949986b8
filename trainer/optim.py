"""Optimizers (AdamW, AdamW8bit, Lion, SGD, Adafactor, Prodigy) and diffusers' LR schedulers."""

from __future__ import annotations

import ast
from typing import Any

from trainer.checks import DeviceInfo, optimizer_problem
from trainer.config import TrainConfig
from trainer.errors import TrainError


def parse_optimizer_args(items: list[str]) -> dict[str, Any]:
    """`["weight_decay=0.01", "betas=(0.9,0.99)"]` -> kwargs (values literal-eval'd, as kohya)."""
    kwargs: dict[str, Any] = {}
    for item in items:
        for part in str(item).split():
            key, sep, value = part.partition("=")
            if not sep or not key:
                raise TrainError(f"optimizer_args: {part!r} is not key=value")
            try:
                kwargs[key.strip()] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                kwargs[key.strip()] = value
    return kwargs


def build_optimizer(config: TrainConfig, groups: list[dict], default_lr: float):
    """The optimizer for these parameter groups."""
    import torch

    name = config.optimizer
    problem = optimizer_problem(name, DeviceInfo.detect())  # the one check `lorakit train` ran before torch
    if problem:
        raise TrainError(problem)
    kwargs = parse_optimizer_args(config.optimizer_args)
    try:
        if name == "AdamW":
            return torch.optim.AdamW(groups, lr=default_lr, **kwargs)
        if name == "AdamW8bit":
            import bitsandbytes as bnb

            return bnb.optim.AdamW8bit(groups, lr=default_lr, **kwargs)
        if name == "Lion":
            from lion_pytorch import Lion

            return Lion(groups, lr=default_lr, **kwargs)
        if name == "SGD":
            return torch.optim.SGD(groups, lr=default_lr, **kwargs)
        if name == "Adafactor":
            from transformers.optimization import Adafactor

            # kohya's relative_step default ignores the learning rates; LoRA users set them.
            kwargs.setdefault("scale_parameter", False)
            kwargs.setdefault("relative_step", False)
            kwargs.setdefault("warmup_init", False)
            return Adafactor(groups, lr=None if kwargs["relative_step"] else default_lr, **kwargs)
        if name == "Prodigy":
            from prodigyopt import Prodigy

            return Prodigy(groups, lr=default_lr, **kwargs)
    except TypeError as exc:
        raise TrainError(f"optimizer_args do not fit {name}: {exc}") from None
    raise TrainError(f"unknown optimizer {name!r}")


def warmup_steps(config: TrainConfig, total_steps: int) -> int:
    if config.lr_warmup_steps is not None:
        return max(int(config.lr_warmup_steps), 0)
    return int(config.lr_warmup_ratio * total_steps)


def build_scheduler(config: TrainConfig, optimizer, total_steps: int):
    """diffusers' get_scheduler with the run's warmup, cycles and power."""
    from diffusers.optimization import get_scheduler

    return get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=warmup_steps(config, total_steps),
                         num_training_steps=total_steps, num_cycles=config.lr_scheduler_num_cycles,
                         power=config.lr_scheduler_power)
