"""An exponential moving average of the LoRA weights (ema_decay, ema_on_cpu).

`update()` after every optimizer step: shadow = decay x shadow + (1 - decay) x weight.
`applied()` swaps the averaged weights in for sampling, validation and saving, then back.
`state_dict()` / `load_state_dict()` keep it in training states, so resume continues the average.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from trainer.errors import TrainError


class LoRAEMA:
    def __init__(self, network: nn.Module, decay: float, on_cpu: bool = False) -> None:
        if not 0 < decay < 1:
            raise TrainError(f"ema_decay must be between 0 and 1 (e.g. 0.999), not {decay}")
        self.decay = decay
        self.params = dict(network.named_parameters())
        device = torch.device("cpu") if on_cpu else None
        self.shadow = {name: p.detach().to(device or p.device, torch.float32, copy=True)
                       for name, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        for name, p in self.params.items():
            shadow = self.shadow[name]
            shadow.mul_(self.decay).add_(p.detach().to(shadow.device, torch.float32), alpha=1 - self.decay)

    @contextmanager
    def applied(self) -> Iterator[None]:
        raw = {name: p.detach().clone() for name, p in self.params.items()}
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self.shadow[name].to(p.device, p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(raw[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: t.detach().cpu().contiguous() for name, t in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], source: str) -> None:
        if set(state) != set(self.shadow):
            raise TrainError(f"{source}: the EMA weights do not match this network; resume with the same "
                             "network settings")
        for name, value in state.items():
            if tuple(value.shape) != tuple(self.shadow[name].shape):
                raise TrainError(f"{source}: EMA weight {name} has shape {tuple(value.shape)}, this network "
                                 f"needs {tuple(self.shadow[name].shape)}")
            self.shadow[name].copy_(value.to(self.shadow[name].device, torch.float32))
