"""`lorakit lora check`: per-module weight statistics; zero (untrained/underflowed), NaN/Inf and outlier modules.

The guide's check for sd-scripts 0.4.0 networks whose weights underflowed to zero. With clip_skip=2 the
last text-encoder layer never receives a gradient, so its LoRA stays zero legitimately; SDXL always
takes the penultimate layer of text encoder 1, so the same holds for its last layer (encoder 2's last
layer feeds the pooled embedding and trains).
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .io import LoraFile, LoraModule, detect_architecture, load_lora

OUTLIER_FACTOR = 10.0
_TE_LAYER = re.compile(r"^lora_(te[12]?)_text_model_encoder_layers_(\d+)_")


@dataclass
class ModuleStats:
    name: str
    kind: str
    rank: int
    alpha: float
    down_mean_abs: float
    down_max_abs: float
    up_mean_abs: float
    up_max_abs: float
    up_zero_fraction: float
    update_norm: float
    finite: bool


# which tensors are the "down" (input) side and the "up" (output, zero-initialised) side of each kind
_SIDES = {"lora": (("down", "mid"), ("up",)), "locon": (("down", "mid"), ("up",)),
          "loha": (("hada_w1_b", "hada_w2_b", "hada_t1", "hada_t2"), ("hada_w1_a", "hada_w2_a")),
          "lokr": (("lokr_w1", "lokr_w1_a", "lokr_w1_b"), ("lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"))}


def module_stats(m: LoraModule) -> ModuleStats:
    down_roles, up_roles = _SIDES[m.kind]
    down = torch.cat([m.tensors[r].to(torch.float64).flatten() for r in down_roles if r in m.tensors])
    up = torch.cat([m.tensors[r].to(torch.float64).flatten() for r in up_roles if r in m.tensors])
    finite = bool(all(torch.isfinite(t).all() for t in m.tensors.values()) and math.isfinite(m.effective_alpha))
    if finite and m.kind in ("lora", "locon"):
        u, d = m.factors(torch.float64)
        # ‖U·D‖_F² = Σ (UᵀU) ⊙ (D·Dᵀ): the norm of the full update without forming it
        gram = float(((u.T @ u) * (d @ d.T)).sum().clamp_min(0))
        norm = abs(m.scale) * math.sqrt(gram)
    elif finite:
        norm = float(m.delta_matrix(torch.float64).norm())
    else:
        norm = float("nan")

    def stat(t: torch.Tensor, fn) -> float:
        t = t[torch.isfinite(t)].abs()
        return float(fn(t)) if t.numel() else float("nan")

    return ModuleStats(m.name, m.kind, m.rank or 0, m.effective_alpha, stat(down, torch.mean), stat(down, torch.max),
                       stat(up, torch.mean), stat(up, torch.max),
                       float((up == 0).sum()) / max(1, up.numel()), norm, finite)


def expected_zero_modules(lora: LoraFile) -> tuple[set[str], str]:
    """Modules that are legitimately zero because of clip skip, and why."""
    arch, _ = detect_architecture(lora)
    layers: dict[str, int] = {}
    for name in lora.modules:
        match = _TE_LAYER.match(name)
        if match:
            layers[match.group(1)] = max(layers.get(match.group(1), -1), int(match.group(2)))
    parts = {"te", "te1", "te2"}
    if arch == "SDXL":
        # text encoder 2's last layer still feeds the pooled embedding, so only encoder 1's is unused
        skip, reason, parts = 2, "SDXL conditions on the penultimate layer of text encoder 1", {"te1"}
    else:
        try:
            skip = int(float(lora.metadata.get("ss_clip_skip", "1") or 1))
        except ValueError:
            skip = 1
        reason = f"clip_skip={skip}: the last text-encoder layer(s) are not used in training"
    if skip < 2:
        return set(), ""
    expected = set()
    for name in lora.modules:
        match = _TE_LAYER.match(name)
        if match and match.group(1) in parts and int(match.group(2)) > layers[match.group(1)] - (skip - 1):
            expected.add(name)
    return expected, reason


def check_lora(path: str | Path) -> dict[str, Any]:
    return check_loaded(load_lora(path))


def check_loaded(lora: LoraFile) -> dict[str, Any]:
    stats = [module_stats(m) for m in lora.modules.values()]
    expected, reason = expected_zero_modules(lora)
    nonfinite = [s.name for s in stats if not s.finite]
    zero_alpha = set(lora.zero_alpha())
    zeros = [s.name for s in stats if s.finite and s.update_norm == 0.0 and s.name not in zero_alpha]
    zero = [n for n in zeros if n not in expected]
    legit = [n for n in zeros if n in expected]
    norms = [s.update_norm for s in stats if s.finite and s.update_norm > 0]
    median = statistics.median(norms) if norms else 0.0
    outliers = [s.name for s in stats if s.finite and median > 0 and s.update_norm > OUTLIER_FACTOR * median]
    return {
        "file": str(lora.path),
        "modules": len(stats),
        "zero": zero,
        "nonfinite": nonfinite,
        "outliers": outliers,
        "ok": not zero and not nonfinite and not zero_alpha,
        "zero_alpha": sorted(zero_alpha),
        "missing_alpha": len(lora.missing_alpha()),
        "kind": lora.kind,
        "dora": lora.dora,
        "expected_zero": legit,
        "incomplete": lora.incomplete,
        "expected_zero_reason": reason if legit else "",
        "median_update_norm": median,
        "outlier_factor": OUTLIER_FACTOR,
        "stats": [asdict(s) for s in stats],
    }


def format_check(report: dict[str, Any], verbose: bool = False) -> str:
    lines = [f"{report['file']}: {report['modules']} modules, median update norm "
             f"{report['median_update_norm']:.4g}"]
    if verbose:
        lines.append("module,kind,rank,alpha,down_mean_abs,down_max_abs,up_mean_abs,up_max_abs,update_norm")
        for s in report["stats"]:
            lines.append(f"{s['name']},{s['kind']},{s['rank']},{s['alpha']:g},{s['down_mean_abs']:.4g},"
                         f"{s['down_max_abs']:.4g},{s['up_mean_abs']:.4g},{s['up_max_abs']:.4g},"
                         f"{s['update_norm']:.4g}")
    for label, key in (("NaN/Inf", "nonfinite"), ("all-zero (untrained or underflowed)", "zero"),
                       ("alpha 0 (loaders apply no update)", "zero_alpha"),
                       (f"outlier (update norm > {report['outlier_factor']:g}x median)", "outliers")):
        for name in report[key]:
            lines.append(f"  {label}: {name}")
    if report["incomplete"]:
        lines.append(f"  {len(report['incomplete'])} module(s) lack one of their tensors (lora_down/lora_up, "
                     f"hada_*, lokr_*) and are ignored by loaders, e.g. {report['incomplete'][0]}")
    if report["missing_alpha"]:
        lines.append(f"  {report['missing_alpha']} module(s) have no alpha: loaders apply them at alpha = rank "
                     f"(scale 1)")
    if report["expected_zero"]:
        lines.append(f"  {len(report['expected_zero'])} zero module(s) are expected: "
                     f"{report['expected_zero_reason']}")
    partial = [s for s in report["stats"] if 0 < s["up_zero_fraction"] < 1 and s["up_zero_fraction"] > 0.5]
    if partial:
        lines.append(f"  {len(partial)} module(s) have more than half their up weights exactly zero "
                     f"(possible fp16 underflow)")
    lines.append("ok" if report["ok"] else "problems found")
    return "\n".join(lines)
