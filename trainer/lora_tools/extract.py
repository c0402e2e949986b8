"""`lorakit lora extract --base MODEL --tuned MODEL --rank R`: a LoRA from the difference of two checkpoints.

As kohya's extract_lora_from_models.py: per target module, SVD of (tuned - base), keep the top R
singular directions (up = U·S, down = Vh), clamp both at the 0.99 quantile of their absolute values
to drop outliers, alpha = rank. A text encoder whose weights differ by no more than --min-diff is
left out (it was not trained).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import torch

from prep.events import Advanced, Finished, Started, Warned

from .checkpoint import BaseModel, Target, load_base
from .errors import LoraToolError
from .io import LoraModule, module_part
from .writing import lora_metadata_note, write_lora

UNET_LINEAR = re.compile(r"\.attentions\.\d+\.")
UNET_CONV = re.compile(r"(\.resnets\.\d+\.(conv1|conv2|time_emb_proj|conv_shortcut)|\.(down|up)samplers\.0\.conv)$")
TE_LINEAR = re.compile(r"\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12])$")
BASE_VERSIONS = {"SD1": "sd_v1", "SD2": "sd_v2", "SDXL": "sdxl_base_v1-0"}


def extraction_targets(model: BaseModel, conv: bool) -> dict[str, Target]:
    """The modules kohya's LoRA adapts (transformer blocks, text encoder attention/MLP; ResNets with conv)."""
    out: dict[str, Target] = {}
    for name, target in model.targets.items():
        if not target.canonical:
            continue
        part = module_part(name)
        if part == "unet":
            if UNET_LINEAR.search(target.path) or (conv and UNET_CONV.search(target.path)):
                out[name] = target
        elif TE_LINEAR.search(target.path):
            out[name] = target
    return out


def svd_extract(diff: torch.Tensor, rank: int, clamp_quantile: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(up, down) of the top-`rank` SVD of a weight difference, clamped as kohya does; conv-aware."""
    out_dim = diff.shape[0]
    mat = diff.reshape(out_dim, -1).to(torch.float32)
    rank = max(1, min(rank, mat.shape[0], mat.shape[1]))
    u, s, vh = torch.linalg.svd(mat, full_matrices=False)
    up = u[:, :rank] * s[:rank]
    down = vh[:rank]
    if clamp_quantile < 1:
        dist = torch.cat([up.flatten(), down.flatten()]).abs()
        if dist.numel() > 16_000_000:  # torch.quantile's input limit
            dist = dist[torch.randperm(dist.numel(), generator=torch.Generator().manual_seed(0))[:16_000_000]]
        hi = float(torch.quantile(dist, clamp_quantile))
        up, down = up.clamp(-hi, hi), down.clamp(-hi, hi)
    if diff.dim() == 4:
        return up.reshape(out_dim, rank, 1, 1), down.reshape(rank, *diff.shape[1:])
    return up, down


def extract_lora(base: str | Path, tuned: str | Path, out: str | Path, *, rank: int, conv_rank: int | None = None,
                 clamp_quantile: float = 0.99, min_diff: float = 0.01,
                 precision: str | None = None) -> Iterator[object]:
    """Events; Finished.summary = {"out", "modules", "parts", "skipped_parts"}."""
    if rank < 1 or (conv_rank is not None and conv_rank < 1):
        raise LoraToolError("--rank and --conv-rank must be at least 1")
    if not 0 < clamp_quantile <= 1:
        raise LoraToolError("--clamp-quantile must be in (0, 1]")
    base_model, tuned_model = load_base(base), load_base(tuned)
    if base_model.arch != tuned_model.arch:
        raise LoraToolError(f"{tuned}: a {tuned_model.arch} model cannot be compared with the "
                            f"{base_model.arch} base {base}")
    targets = extraction_targets(base_model, conv_rank is not None)
    missing = [n for n in targets if n not in tuned_model.targets]
    if missing:
        raise LoraToolError(f"{tuned}: {len(missing)} modules of the base are missing (e.g. {missing[0]}); "
                            f"the two models have different architectures")
    yield Started("extract", len(targets))
    modules: dict[str, LoraModule] = {}
    max_diff: dict[str, float] = {}
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}.get(precision or "", None)
    for name, target in targets.items():
        w_base = target.load().to(torch.float32)
        w_tuned = tuned_model.targets[name].load().to(torch.float32)
        if w_base.shape != w_tuned.shape:
            raise LoraToolError(f"{tuned}: {name} has shape {tuple(w_tuned.shape)} but the base has "
                                f"{tuple(w_base.shape)}; the two models have different architectures")
        diff = w_tuned - w_base
        part = module_part(name)
        max_diff[part] = max(max_diff.get(part, 0.0), float(diff.abs().max()) if diff.numel() else 0.0)
        three_by_three = diff.dim() == 4 and tuple(diff.shape[2:]) != (1, 1)
        module_rank = conv_rank if three_by_three and conv_rank else rank
        up, down = svd_extract(diff, module_rank, clamp_quantile)
        store = dtype or w_base.dtype
        modules[name] = LoraModule.from_factors(name, down.to(store), up.to(store), float(down.shape[0]))
        yield Advanced(1, name)
    skipped = [p for p, d in max_diff.items() if p != "unet" and d <= min_diff]
    for part in skipped:
        yield Warned(f"text encoder ({part}) differs by at most {max_diff[part]:.3g} <= --min-diff "
                     f"{min_diff}; left out of the LoRA", str(tuned))
    modules = {n: m for n, m in modules.items() if module_part(n) not in skipped}
    if not modules:
        raise LoraToolError(f"{tuned}: no module differs from {base}; nothing to extract")
    meta = {
        "ss_network_module": "networks.lora", "ss_network_dim": str(rank), "ss_network_alpha": str(rank),
        "ss_base_model_version": BASE_VERSIONS[base_model.arch], "ss_v2": str(base_model.arch == "SD2"),
        "ss_sd_model_name": Path(base).name, "ss_training_comment": f"extracted from {Path(tuned).name} - "
                                                                    f"{Path(base).name}",
        "lorakit_extracted_from": json.dumps({"base": str(base), "tuned": str(tuned), "rank": rank,
                                              "conv_rank": conv_rank, "clamp_quantile": clamp_quantile,
                                              "min_diff": min_diff}),
    }
    if conv_rank is not None:
        meta["ss_network_args"] = json.dumps({"conv_dim": str(conv_rank), "conv_alpha": str(conv_rank)})
    size = write_lora(out, modules, lora_metadata_note(meta))
    parts: dict[str, int] = {}
    for name in modules:
        parts[module_part(name)] = parts.get(module_part(name), 0) + 1
    yield Finished({"out": str(out), "size_bytes": size, "modules": len(modules), "parts": parts,
                    "skipped_parts": skipped, "max_diff": max_diff})
