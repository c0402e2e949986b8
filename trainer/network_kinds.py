"""Network kinds: kohya's own LoRA, or LyCORIS's LoCon/LoHa/LoKr (and DoRA) modules from lycoris-lora.

`network_spec(config)` resolves the kind's options once (conv rank and alpha defaults differ:
kohya's conv_alpha defaults to 1, LyCORIS's to network_alpha; locon adapts convs by default),
and says how the file names its network: `ss_network_module` is `networks.lora` or
`lycoris.kohya`, and `ss_network_args` holds the `network_args` kohya would be given (`algo`,
`conv_dim`, `conv_alpha`, `factor`, `dora_wd`), every value a string as sd-scripts stores them.
`make_lycoris_module` builds one LyCORIS module with the module's kohya name, so the tensors are
written as LyCORIS writes them (`<name>.hada_w1_a`, `.lokr_w1`, `.lora_down.weight`, `.dora_scale`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trainer.errors import TrainError

KOHYA_MODULE = "networks.lora"
LYCORIS_MODULE = "lycoris.kohya"


@dataclass(frozen=True)
class NetworkSpec:
    network_type: str = "lora"
    dim: int = 32
    alpha: float = 16.0
    conv_dim: int | None = None
    conv_alpha: float = 1.0
    dropout: float | None = None
    dora: bool = False
    lokr_factor: int = -1

    @property
    def uses_lycoris(self) -> bool:
        return self.network_type != "lora" or self.dora

    @property
    def module_name(self) -> str:
        return LYCORIS_MODULE if self.uses_lycoris else KOHYA_MODULE

    def network_args(self) -> dict[str, str]:
        """The `network_args` of this network, as sd-scripts records them in ss_network_args."""
        args: dict[str, str] = {}
        if self.uses_lycoris:
            args["algo"] = self.network_type
        if self.conv_dim:
            args["conv_dim"] = str(self.conv_dim)
            args["conv_alpha"] = str(self.conv_alpha)
        if self.network_type == "lokr":
            args["factor"] = str(self.lokr_factor)
        if self.dora:
            args["dora_wd"] = "True"
        if self.uses_lycoris and self.dropout:
            args["dropout"] = str(self.dropout)
        return args


def network_spec(config) -> NetworkSpec:
    """The network described by a TrainConfig, with each kind's defaults filled in."""
    kind = config.network_type
    lycoris = kind != "lora" or config.dora
    conv_dim = config.conv_dim
    if conv_dim is None and kind == "locon":
        conv_dim = config.network_dim
    if config.conv_alpha is not None:
        conv_alpha = float(config.conv_alpha)
    else:
        conv_alpha = float(config.network_alpha) if lycoris else 1.0
    from trainer.feature_checks import network_findings

    errors = [message for _field, message, severity in network_findings(config) if severity == "error"]
    if errors:
        raise TrainError(errors[0])
    return NetworkSpec(kind, config.network_dim, float(config.network_alpha), conv_dim, conv_alpha,
                       config.network_dropout, bool(config.dora), int(config.lokr_factor))


def _quiet_lycoris() -> None:
    # LyCORIS logs to stdout, where `--events -` writes JSON lines: keep only its errors.
    logging.getLogger("LyCORIS").setLevel(logging.ERROR)


def make_lycoris_module(name: str, org_module, dim: int, alpha: float, spec: NetworkSpec):
    """One LyCORIS module adapting org_module, named with its kohya name."""
    _quiet_lycoris()
    from lycoris.modules.locon import LoConModule
    from lycoris.modules.loha import LohaModule
    from lycoris.modules.lokr import LokrModule

    common = {"multiplier": 1.0, "lora_dim": dim, "alpha": alpha, "weight_decompose": spec.dora}
    if spec.network_type in ("lora", "locon"):
        # Bypass (x -> down -> up) costs no weight-sized temporaries; DoRA needs the rebuilt weight.
        return LoConModule(name, org_module, dropout=spec.dropout or 0.0, bypass_mode=not spec.dora, **common)
    if spec.network_type == "loha":
        return LohaModule(name, org_module, bypass_mode=False, **common)
    if spec.network_type == "lokr":
        return LokrModule(name, org_module, factor=spec.lokr_factor, bypass_mode=False, **common)
    raise TrainError(f"unknown network_type {spec.network_type!r}; expected lora, locon, loha or lokr")


def module_rank(module) -> int:
    return int(module.lora_dim)


def refresh_lycoris_scale(module) -> None:
    """After loading weights: the scale follows the loaded alpha (LyCORIS computes it once at init)."""
    module.scale = float(module.alpha) / module_rank(module)
