"""`lorakit lora resize`: SVD rank reduction that keeps each module's strength (alpha = scale·new rank)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from prep.events import Advanced, Finished, Started

from .errors import LoraToolError
from .io import LoraFile, LoraModule, load_lora, require_lora_kind
from .lowrank import balanced_factors, choose_rank, retained_fraction, svd_of_sum
from .writing import lora_metadata_note, write_lora


@dataclass
class ResizedModule:
    name: str
    old_rank: int
    new_rank: int
    alpha: float
    retained: float  # Frobenius norm of the kept update over the original update's


def resize_module(m: LoraModule, rank: int | None, method: str | None = None,
                  param: float | None = None) -> tuple[LoraModule, ResizedModule]:
    up, down = m.factors()
    f = svd_of_sum([up], [down])
    new_rank = choose_rank(f.s, rank if rank is not None else (m.rank if method else None), method, param)
    new_up, new_down = balanced_factors(f, new_rank)
    dtype = m.down.dtype
    out = LoraModule.from_factors(m.name, new_down.to(dtype), new_up.to(m.up.dtype), m.scale * new_rank,
                                  m.weight_shape)
    return out, ResizedModule(m.name, m.rank, new_rank, out.effective_alpha, retained_fraction(f.s, new_rank))


def resize_lora(source: str | Path, out: str | Path, *, rank: int | None = None, method: str | None = None,
                param: float | None = None) -> Iterator[object]:
    """Events while resizing; Finished.summary = {"out", "modules": [ResizedModule...], ...}."""
    if rank is None and method is None:
        raise LoraToolError("give --rank R, or --dynamic sv_ratio|sv_fro|sv_cumulative with --param X")
    if rank is not None and rank < 1:
        raise LoraToolError(f"--rank must be at least 1 (got {rank})")
    if method is not None and param is None:
        raise LoraToolError(f"--dynamic {method} needs --param X")
    lora = load_lora(source)
    require_lora_kind(lora, "lora resize")
    if Path(out).resolve() == lora.path.resolve():
        raise LoraToolError(f"{out}: choose an --out different from the input file")
    yield Started("resize", len(lora.modules))
    modules: dict[str, LoraModule] = {}
    report: list[ResizedModule] = []
    for m in lora.modules.values():
        if not all(t.isfinite().all() for t in m.tensors.values()):
            raise LoraToolError(f"{lora.path}: module {m.name} holds NaN/Inf; run `lorakit lora check` on it")
        new, info = resize_module(m, rank, method, param)
        modules[m.name] = new
        report.append(info)
        yield Advanced(1, m.name)
    meta = _resized_metadata(lora, rank, method, param, report)
    size = write_lora(out, modules, meta)
    yield Finished({"out": str(out), "size_bytes": size, "modules": [asdict(r) for r in report],
                    "mean_retained": sum(r.retained for r in report) / max(1, len(report)),
                    "min_retained": min((r.retained for r in report), default=1.0)})


def _resized_metadata(lora: LoraFile, rank: int | None, method: str | None, param: float | None,
                      report: list[ResizedModule]) -> dict[str, str]:
    meta = dict(lora.metadata)
    old_dim = meta.get("ss_network_dim", str(max((m.rank for m in lora.modules.values()), default=0)))
    if method:
        meta["ss_network_dim"] = "Dynamic"
        meta["ss_network_alpha"] = "Dynamic"
        note = f"dynamic resize with {method}: {param} from {old_dim}"
    else:
        # ss_network_dim/alpha describe the linear modules; 3x3 conv ones live in ss_network_args
        conv = {n for n, m in lora.modules.items() if m.kind == "locon"}
        linear = [r for r in report if r.name not in conv] or report
        ranks = {r.new_rank for r in linear}
        alphas = {round(r.alpha, 6) for r in linear}
        meta["ss_network_dim"] = str(ranks.pop()) if len(ranks) == 1 else "Dynamic"
        meta["ss_network_alpha"] = (f"{alphas.pop():g}" if len(alphas) == 1 else "Dynamic")
        conv_alphas = {round(r.alpha, 6) for r in report if r.name in conv}
        args = _json_dict(meta.get("ss_network_args"))
        if conv and args is not None and "conv_dim" in args:
            args["conv_dim"] = str(min(rank or 0, int(float(args["conv_dim"]))))
            if len(conv_alphas) == 1:
                args["conv_alpha"] = f"{conv_alphas.pop():g}"
            meta["ss_network_args"] = json.dumps(args)
        note = f"resized to rank {rank} from {old_dim}"
    comment = meta.get("ss_training_comment", "")
    meta["ss_training_comment"] = f"{note}; {comment}" if comment and comment != "None" else note
    meta["lorakit_resize"] = json.dumps({"from_dim": old_dim, "rank": rank, "method": method, "param": param})
    return lora_metadata_note(meta)


def _json_dict(value: str | None) -> dict | None:
    try:
        data = json.loads(value) if value else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
