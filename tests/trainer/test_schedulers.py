"""Every LR scheduler's curve against its formula (warmup, cycles, power)."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.config import TrainConfig
from trainer.optim import build_optimizer, build_scheduler, parse_optimizer_args, warmup_steps

LR = 1e-3
TOTAL = 20


def _curve(**kw) -> list[float]:
    config = TrainConfig(learning_rate=LR, optimizer="SGD", **kw)
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = build_optimizer(config, [{"params": [param], "lr": LR}], LR)
    scheduler = build_scheduler(config, optimizer, TOTAL)
    lrs = []
    for _ in range(TOTAL):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def _warm(s: int, w: int) -> float | None:
    return LR * s / w if s < w else None


def _expected(name: str, s: int, w: int, cycles: int = 1, power: float = 1.0) -> float:
    if name == "constant":
        return LR
    if (value := _warm(s, w)) is not None:
        return value
    progress = (s - w) / (TOTAL - w)
    if name == "constant_with_warmup":
        return LR
    if name == "linear":
        return LR * max(0.0, (TOTAL - s) / (TOTAL - w))
    if name == "cosine":
        return LR * max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))
    if name == "cosine_with_restarts":
        return LR * max(0.0, 0.5 * (1 + math.cos(math.pi * ((cycles * progress) % 1.0))))
    if name == "polynomial":
        end = 1e-7  # diffusers' lr_end
        return (LR - end) * (1 - progress) ** power + end
    raise AssertionError(name)


@pytest.mark.parametrize("name,kw", [
    ("constant", {}),
    ("constant_with_warmup", {"lr_warmup_ratio": 0.2}),
    ("linear", {"lr_warmup_ratio": 0.2}),
    ("linear", {}),
    ("cosine", {"lr_warmup_steps": 3}),
    ("cosine_with_restarts", {"lr_warmup_ratio": 0.1, "lr_scheduler_num_cycles": 3}),
    ("polynomial", {"lr_warmup_ratio": 0.2, "lr_scheduler_power": 2.0}),
    ("polynomial", {"lr_scheduler_power": 1.0}),
])
def test_scheduler_curve_matches_formula(name, kw):
    config = TrainConfig(lr_scheduler=name, **kw)
    w = warmup_steps(config, TOTAL)
    assert w == (kw.get("lr_warmup_steps") or int(kw.get("lr_warmup_ratio", 0) * TOTAL))
    lrs = _curve(lr_scheduler=name, **kw)
    expected = [_expected(name, s, w, kw.get("lr_scheduler_num_cycles", 1), kw.get("lr_scheduler_power", 1.0))
                for s in range(TOTAL)]
    assert lrs == pytest.approx(expected, rel=1e-6, abs=1e-12)
    if w:
        assert lrs[0] == 0.0 and lrs[w] == pytest.approx(LR)


def test_cosine_with_restarts_really_restarts():
    lrs = _curve(lr_scheduler="cosine_with_restarts", lr_scheduler_num_cycles=2)
    rises = [i for i in range(1, TOTAL) if lrs[i] > lrs[i - 1]]
    assert rises == [10]


def test_optimizer_args_and_kinds():
    assert parse_optimizer_args(["weight_decay=0.1", "betas=(0.9,0.99)", "foo=bar"]) == \
        {"weight_decay": 0.1, "betas": (0.9, 0.99), "foo": "bar"}
    import importlib.util

    from trainer.checks import DeviceInfo, optimizer_problem
    from trainer.errors import TrainError

    param = torch.nn.Parameter(torch.zeros(2))
    optional = {"Lion": "lion_pytorch", "Prodigy": "prodigyopt"}
    for name in ("AdamW", "Lion", "SGD", "Adafactor", "Prodigy"):
        config = TrainConfig(optimizer=name, optimizer_args=[])
        if name in optional and importlib.util.find_spec(optional[name]) is None:
            assert "pip install" in (optimizer_problem(name, DeviceInfo.detect()) or "")
            with pytest.raises(TrainError):
                build_optimizer(config, [{"params": [param]}], 1e-4)
            continue
        optimizer = build_optimizer(config, [{"params": [param]}], 1e-4)
        assert type(optimizer).__name__ == name
    adamw = build_optimizer(TrainConfig(optimizer_args=["weight_decay=0.05"]), [{"params": [param]}], 1e-4)
    assert adamw.param_groups[0]["weight_decay"] == 0.05
