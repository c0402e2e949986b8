"""SVD of LoRA updates without forming the full matrix, and rank choices (fixed or kohya's dynamic rules).

A sum of LoRA updates Σ up_i@down_i has rank ≤ Σ r_i, so its exact SVD comes from two thin QR
factorizations and the SVD of a small (Σr × Σr) core: the same singular values and vectors as
`torch.linalg.svd` of the full matrix, at a fraction of the cost for 1280×5120 layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import LoraToolError

DYNAMIC_METHODS = ("sv_ratio", "sv_fro", "sv_cumulative")


@dataclass
class Factorization:
    u: torch.Tensor   # [out, k]
    s: torch.Tensor   # [k], descending
    vh: torch.Tensor  # [k, in]


def svd_of_sum(ups: Sequence[torch.Tensor], downs: Sequence[torch.Tensor]) -> Factorization:
    """Exact thin SVD of Σ ups[i] @ downs[i] (2-D factors), computed in float64."""
    up = torch.cat([u.to(torch.float64) for u in ups], dim=1)
    down = torch.cat([d.to(torch.float64) for d in downs], dim=0)
    qu, ru = torch.linalg.qr(up)
    qd, rd = torch.linalg.qr(down.T)
    core = ru @ rd.T
    um, s, vmh = torch.linalg.svd(core, full_matrices=False)
    return Factorization(qu @ um, s, vmh @ qd.T)


def choose_rank(s: torch.Tensor, rank: int | None, method: str | None = None,
                param: float | None = None) -> int:
    """The kept rank: `rank` fixed, or kohya's dynamic rule (capped by `rank` when given); at least 1."""
    available = int(s.numel())
    if available == 0:
        return 1
    if method is None:
        if rank is None:
            raise LoraToolError("give --rank R or --dynamic METHOD --param X")
        return max(1, min(rank, available))
    if param is None:
        raise LoraToolError(f"--dynamic {method} needs --param X")
    total = float(s.sum())
    if total <= 0:
        return 1
    if method == "sv_ratio":
        if param < 1:
            raise LoraToolError("--param for sv_ratio is the largest/smallest kept singular value ratio (>= 1)")
        kept = int((s >= s[0] / param).sum())
    elif method == "sv_fro":
        if not 0 < param <= 1:
            raise LoraToolError("--param for sv_fro is the retained Frobenius fraction (0 < X <= 1)")
        fro = torch.sqrt(torch.cumsum(s * s, 0) / float((s * s).sum()))
        kept = int((fro < param - 1e-12).sum()) + 1
    elif method == "sv_cumulative":
        if not 0 < param <= 1:
            raise LoraToolError("--param for sv_cumulative is the retained singular value sum fraction (0 < X <= 1)")
        cum = torch.cumsum(s, 0) / total
        kept = int((cum < param - 1e-12).sum()) + 1
    else:
        raise LoraToolError(f"unknown --dynamic method {method!r}; use one of {', '.join(DYNAMIC_METHODS)}")
    kept = max(1, min(kept, available))
    return min(kept, rank) if rank else kept


def retained_fraction(s: torch.Tensor, rank: int) -> float:
    """Frobenius norm of the rank-`rank` truncation over the norm of the whole update (1.0 when zero)."""
    total = float((s * s).sum())
    if total <= 0:
        return 1.0
    return float((s[:rank] * s[:rank]).sum() / total) ** 0.5


def balanced_factors(f: Factorization, rank: int, multiplier: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(up, down) with up@down = multiplier·U_r S_r Vh_r, splitting √S to both sides for fp16 headroom."""
    k = min(rank, int(f.s.numel()))
    root = torch.sqrt(f.s[:k] * abs(multiplier))
    sign = -1.0 if multiplier < 0 else 1.0
    up = f.u[:, :k] * root * sign
    down = root[:, None] * f.vh[:k]
    if k < rank:  # keep the requested rank (zero padding changes nothing in the update)
        up = torch.cat([up, up.new_zeros(up.shape[0], rank - k)], dim=1)
        down = torch.cat([down, down.new_zeros(rank - k, down.shape[1])], dim=0)
    return up, down
