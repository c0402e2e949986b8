"""LoRA modules with kohya's semantics, patched into the frozen model's forward (LyCORIS kinds: see
network_kinds).

Each adapted Linear/Conv2d keeps its weights; its forward becomes
`org(x) + up(dropout(down(x))) * multiplier * alpha/dim`, with down Kaiming-uniform and up zero
initialised (a fresh LoRA changes nothing). `LoRANetwork.state_dict()` is the kohya file's
tensor set as is: `<kohya name>.lora_down.weight`, `.lora_up.weight`, `.alpha`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from trainer.block_lr import weight_of
from trainer.errors import LoRAFileError
from trainer.lora_keys import (
    is_conv_rank,
    text_encoder_lora_targets,
    text_encoder_prefixes,
    unet_lora_targets,
)
from trainer.network_kinds import NetworkSpec, make_lycoris_module, refresh_lycoris_scale


class LoRAModule(nn.Module):
    """A low-rank update of one Linear or Conv2d."""

    def __init__(self, name: str, org_module: nn.Module, dim: int, alpha: float | None,
                 dropout: float | None = None, multiplier: float = 1.0) -> None:
        super().__init__()
        self.lora_name = name
        self.lora_dim = dim
        if isinstance(org_module, nn.Conv2d):
            self.lora_down = nn.Conv2d(org_module.in_channels, dim, org_module.kernel_size, org_module.stride,
                                       org_module.padding, bias=False)
            self.lora_up = nn.Conv2d(dim, org_module.out_channels, (1, 1), (1, 1), bias=False)
        else:
            self.lora_down = nn.Linear(org_module.in_features, dim, bias=False)
            self.lora_up = nn.Linear(dim, org_module.out_features, bias=False)
        alpha = float(dim) if alpha is None or alpha == 0 else float(alpha)
        self.scale = alpha / dim
        self.register_buffer("alpha", torch.tensor(alpha))
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)
        self.dropout = dropout
        self.multiplier = multiplier
        # A list, not an attribute: the frozen module must not become a submodule (its weights
        # would land in this network's state_dict and parameters).
        self._org = [org_module]
        self._org_forward = None

    def apply_to(self) -> None:
        org = self._org[0]
        self._org_forward = org.forward
        org.forward = self.forward

    def restore(self) -> None:
        if self._org_forward is not None:
            self._org[0].forward = self._org_forward
            self._org_forward = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        org = self._org_forward(x)
        if x.dtype != self.lora_down.weight.dtype and not torch.is_autocast_enabled(x.device.type):
            x = x.to(self.lora_down.weight.dtype)
        lx = self.lora_down(x)
        if self.dropout and self.training:
            lx = torch.nn.functional.dropout(lx, p=self.dropout)
        lx = self.lora_up(lx)
        return org + (lx * (self.multiplier * self.scale)).to(org.dtype)

    def refresh_scale(self) -> None:
        self.scale = float(self.alpha) / self.lora_dim


@dataclass(frozen=True)
class NetworkOptions:
    dim: int = 32
    alpha: float = 16.0
    dropout: float | None = None
    conv_dim: int | None = None
    conv_alpha: float | None = None
    train_unet: bool = True
    train_text_encoder: bool = True
    network_type: str = "lora"
    dora: bool = False
    lokr_factor: int = -1
    block_lr_weights: tuple[float, ...] | None = None

    def spec(self) -> NetworkSpec:
        return NetworkSpec(self.network_type, self.dim, self.alpha, self.conv_dim,
                           self.conv_alpha if self.conv_alpha is not None else 1.0, self.dropout, self.dora,
                           self.lokr_factor)


class LoRANetwork(nn.Module):
    """All LoRA (or LyCORIS) modules of a model; submodule names are the kohya names."""

    def __init__(self, unet: nn.Module, text_encoders: list[nn.Module], model_type: str,
                 options: NetworkOptions) -> None:
        super().__init__()
        self.unet_names: list[str] = []
        self.text_encoder_names: list[str] = []
        self.sdxl = model_type == "sdxl"
        self.block_weights = list(options.block_lr_weights) if options.block_lr_weights else None
        spec = options.spec()
        conv_alpha = spec.conv_alpha

        def make(name: str, module: nn.Module, dim: int, alpha: float | None) -> nn.Module:
            if spec.uses_lycoris:
                return make_lycoris_module(name, module, dim, alpha if alpha is not None else float(dim), spec)
            return LoRAModule(name, module, dim, alpha, options.dropout)

        if options.train_unet:
            targets = unet_lora_targets(unet, model_type, conv=bool(options.conv_dim))
            for name, (_path, module) in targets.items():
                if self.block_weights is not None and weight_of(self.block_weights, name, self.sdxl) == 0:
                    continue  # a block with LR weight 0 gets no LoRA (as kohya)
                if is_conv_rank(module):
                    if not options.conv_dim:
                        continue
                    lora = make(name, module, options.conv_dim, conv_alpha)
                else:
                    lora = make(name, module, options.dim, options.alpha)
                self.add_module(name, lora)
                self.unet_names.append(name)
        if options.train_text_encoder:
            for prefix, encoder in zip(text_encoder_prefixes(model_type), text_encoders, strict=False):
                for name, (_path, module) in text_encoder_lora_targets(encoder, prefix).items():
                    self.add_module(name, make(name, module, options.dim, options.alpha))
                    self.text_encoder_names.append(name)

    def loras(self) -> list[nn.Module]:
        return list(self.children())

    def apply_to(self) -> None:
        for lora in self.loras():
            lora.apply_to()

    def restore(self) -> None:
        for lora in self.loras():
            lora.restore()

    def parameter_groups(self, unet_lr: float, text_encoder_lr: float) -> list[dict]:
        """Optimizer groups; a learning rate of 0 leaves that part out (as kohya). With block LR
        weights, the UNet has one group per weight (lr = unet_lr x weight)."""
        groups = []
        te = [p for n in self.text_encoder_names for p in getattr(self, n).parameters()]
        if te and text_encoder_lr > 0:
            groups.append({"params": te, "lr": text_encoder_lr, "name": "textencoder"})
        by_weight: dict[float, list] = {}
        for n in self.unet_names:
            weight = weight_of(self.block_weights, n, self.sdxl)
            by_weight.setdefault(weight, []).extend(getattr(self, n).parameters())
        for weight, params in sorted(by_weight.items(), reverse=True):
            if params and unet_lr * weight > 0:
                name = "unet" if self.block_weights is None else f"unet_x{weight:g}"
                groups.append({"params": params, "lr": unet_lr * weight, "name": name})
        return groups

    def load_weights(self, tensors: dict[str, torch.Tensor], source: str) -> None:
        """Continue from a LoRA file: every tensor must match a module of this network by name and shape."""
        own = self.state_dict()
        unknown = [k for k in tensors if k not in own]
        if unknown:
            raise LoRAFileError(f"{source}: {len(unknown)} key(s) do not match this model and network "
                                f"(e.g. {unknown[0]}); was it trained on another model type, network_type "
                                f"or conv_dim?")
        for key, value in tensors.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise LoRAFileError(f"{source}: {key} has shape {tuple(value.shape)}, this network needs "
                                    f"{tuple(own[key].shape)}; set network_dim/conv_dim to the file's rank")
        self.load_state_dict({**own, **{k: v.to(own[k].dtype) for k, v in tensors.items()}})
        for lora in self.loras():
            if isinstance(lora, LoRAModule):
                lora.refresh_scale()
            else:
                refresh_lycoris_scale(lora)

    def kohya_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach() for k, v in self.state_dict().items()}
