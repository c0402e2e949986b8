"""fp8_base: frozen Linear/Conv weights stored as float8_e4m3fn, upcast layer by layer in the forward.

Each frozen layer keeps its weight in 1 byte per value (half of fp16); its forward casts a copy to
the input's dtype for that one matmul/convolution, so only one layer's weight exists in the
compute dtype at a time (and autograd keeps that copy, not the stored weight). diffusers'
layerwise-casting hooks swap the stored weight in place, which breaks the backward pass of a
LoRA trained on top, so they are not used. Norms and embeddings stay in the compute dtype. The
LoRA is patched on top (it calls this forward as the original one); LyCORIS kinds that rebuild
the full weight (LoHa, LoKr, DoRA) read the stored weight directly and are refused (feature_checks).
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.errors import TrainError

FP8 = getattr(torch, "float8_e4m3fn", None)


def check_fp8_supported() -> None:
    """The one fp8 check that needs torch (the network kinds are checked by trainer.feature_checks)."""
    if FP8 is None:
        raise TrainError("fp8_base needs a PyTorch with float8_e4m3fn (2.1 or newer)")


# conv_in stays too: a model's `dtype` is its first parameter's, and pipelines read it.
SKIP_PATTERNS = ("norm", "embed", "conv_in")


def _linear_forward(module: nn.Linear):
    def forward(x: torch.Tensor) -> torch.Tensor:
        bias = module.bias.to(x.dtype) if module.bias is not None else None
        return torch.nn.functional.linear(x, module.weight.to(x.dtype), bias)

    return forward


def _conv_forward(module: nn.Conv2d):
    def forward(x: torch.Tensor) -> torch.Tensor:
        bias = module.bias.to(x.dtype) if module.bias is not None else None
        return module._conv_forward(x, module.weight.to(x.dtype), bias)

    return forward


def store_fp8(root: nn.Module) -> int:
    """Store root's frozen Linear/Conv2d weights (not norms/embeddings) in float8_e4m3fn; returns how many.
    Each forward computes in its input's dtype (the run's precision)."""
    count = 0
    for name, module in root.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or module.weight.requires_grad:
            continue
        if any(pattern in name for pattern in SKIP_PATTERNS):
            continue
        module.weight.data = module.weight.data.to(FP8)
        module.forward = _linear_forward(module) if isinstance(module, nn.Linear) else _conv_forward(module)
        count += 1
    return count


def weight_bytes(root: nn.Module) -> int:
    """Bytes of the Linear/Conv2d weights under root."""
    return sum(m.weight.numel() * m.weight.element_size() for m in root.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d)))
