"""`lorakit lora merge --lora A:0.7 --lora B:0.5 --rank R --out C`: an exact LoRA+LoRA merge.

Each module's merged update Σ ratio·(alpha/rank)·up@down is factorized exactly (thin QR + SVD of
the small core, identical to the SVD of the full update) and truncated to rank R. Summing up and
down weights directly, as kohya's merge_lora.py does without a base model, is only approximate.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch

from prep.events import Advanced, Finished, Started

from .errors import LoraToolError
from .io import LoraFile, LoraModule, detect_architecture, load_lora, require_lora_kind
from .lowrank import balanced_factors, choose_rank, retained_fraction, svd_of_sum
from .writing import lora_metadata_note, write_lora

PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def merge_loras(specs: list[tuple[Path, float]], out: str | Path, rank: int,
                precision: str | None = None) -> Iterator[object]:
    """Events; Finished.summary = {"out", "modules", "rank", "mean_retained", "min_retained"}."""
    if len(specs) < 1:
        raise LoraToolError("give at least one --lora FILE[:RATIO] to merge")
    if rank < 1:
        raise LoraToolError(f"--rank must be at least 1 (got {rank})")
    loras = [(load_lora(path), ratio) for path, ratio in specs]
    for lora, _ in loras:
        require_lora_kind(lora, "a LoRA+LoRA merge (--rank)")
    for lora, _ in loras:
        if Path(out).resolve() == lora.path.resolve():
            raise LoraToolError(f"{out}: choose an --out different from the input files")
    archs = {detect_architecture(lora)[0] for lora, _ in loras}
    if len(archs) > 1:
        listing = ", ".join(f"{lora.path.name} ({detect_architecture(lora)[0]})" for lora, _ in loras)
        raise LoraToolError(f"cannot merge LoRAs for different model architectures: {listing}")
    names = sorted({name for lora, _ in loras for name in lora.modules})
    yield Started("merge", len(names))
    merged: dict[str, LoraModule] = {}
    retained: list[float] = []
    for name in names:
        parts = [(lora.modules[name], ratio, lora) for lora, ratio in loras if name in lora.modules]
        first = parts[0][0]
        for m, _, lora in parts[1:]:
            if m.weight_shape != first.weight_shape:
                raise LoraToolError(f"{lora.path}: module {name} has weight shape {m.weight_shape}, "
                                    f"but {parts[0][2].path.name} has {first.weight_shape}; "
                                    f"these LoRAs target different models")
        ups, downs = [], []
        for m, ratio, lora in parts:
            if not all(t.isfinite().all() for t in m.tensors.values()):
                raise LoraToolError(f"{lora.path}: module {name} holds NaN/Inf; run `lorakit lora check`")
            up, down = m.factors(torch.float64)
            ups.append(up * (ratio * m.scale))
            downs.append(down)
        f = svd_of_sum(ups, downs)
        new_rank = choose_rank(f.s, rank)
        up, down = balanced_factors(f, new_rank)
        dtype = PRECISIONS[precision] if precision else first.down.dtype
        merged[name] = LoraModule.from_factors(name, down.to(dtype), up.to(dtype), float(new_rank),
                                               first.weight_shape)
        retained.append(retained_fraction(f.s, new_rank))
        yield Advanced(1, name)
    size = write_lora(out, merged, _merged_metadata([(lora, r) for lora, r in loras], rank))
    yield Finished({"out": str(out), "size_bytes": size, "modules": len(merged), "rank": rank,
                    "mean_retained": sum(retained) / max(1, len(retained)),
                    "min_retained": min(retained, default=1.0)})


def _merged_metadata(loras: list[tuple[LoraFile, float]], rank: int) -> dict[str, str]:
    first = loras[0][0].metadata
    meta = {k: first[k] for k in ("ss_base_model_version", "ss_v2", "ss_sd_model_name", "ss_clip_skip",
                                  "modelspec.architecture", "ss_max_token_length") if k in first}
    meta["ss_network_module"] = "networks.lora"
    meta["ss_network_dim"] = str(rank)
    meta["ss_network_alpha"] = str(rank)
    sources = [{"file": lora.path.name, "ratio": ratio, "sshs_model_hash": lora.metadata.get("sshs_model_hash")}
               for lora, ratio in loras]
    meta["lorakit_merged_from"] = json.dumps(sources)
    listing = ", ".join(f"{s['file']}:{s['ratio']:g}" for s in sources)
    meta["ss_training_comment"] = f"merged (SVD, rank {rank}) from {listing}"
    tag_freq: dict[str, dict[str, int]] = {}
    for lora, _ in loras:
        try:
            data = json.loads(lora.metadata.get("ss_tag_frequency", "{}"))
        except ValueError:
            continue
        if isinstance(data, dict):
            for folder, tags in data.items():
                if isinstance(tags, dict):
                    tag_freq.setdefault(str(folder), {}).update(tags)
    if tag_freq:
        meta["ss_tag_frequency"] = json.dumps(tag_freq, ensure_ascii=False)
    return lora_metadata_note(meta)
