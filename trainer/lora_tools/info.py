"""`lorakit lora info`: what a LoRA file holds: architecture, modules, ranks, alphas, metadata decoded."""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

from trainer.lora_modules import KIND_LABELS

from .io import PART_LABELS, LoraFile, detect_architecture, load_lora, lora_parts

TOP_TAGS = 30
TRAINING_FIELDS = (
    ("ss_network_module", "network module"), ("ss_network_dim", "dim"), ("ss_network_alpha", "alpha"),
    ("ss_network_args", "network args"), ("ss_sd_model_name", "base model"),
    ("ss_base_model_version", "base model version"), ("ss_resolution", "resolution"),
    ("ss_num_train_images", "train images (x repeats)"), ("ss_num_reg_images", "reg images"),
    ("ss_num_epochs", "epochs"), ("ss_epoch", "epoch saved"), ("ss_steps", "steps"),
    ("ss_max_train_steps", "max steps"), ("ss_batch_size_per_device", "batch size"),
    ("ss_learning_rate", "learning rate"), ("ss_unet_lr", "UNet lr"), ("ss_text_encoder_lr", "text encoder lr"),
    ("ss_optimizer", "optimizer"), ("ss_lr_scheduler", "lr scheduler"), ("ss_lr_warmup_steps", "warmup steps"),
    ("ss_mixed_precision", "mixed precision"), ("ss_clip_skip", "clip skip"),
    ("ss_max_token_length", "max token length"), ("ss_shuffle_caption", "shuffle caption"),
    ("ss_keep_tokens", "keep tokens"), ("ss_noise_offset", "noise offset"), ("ss_min_snr_gamma", "min SNR gamma"),
    ("ss_seed", "seed"), ("ss_training_started_at", "started"), ("ss_training_finished_at", "finished"),
    ("ss_training_comment", "comment"),
)


def decode_value(value: str) -> Any:
    """Metadata values are strings; nested data is JSON. Undecodable values stay raw."""
    text = value.strip()
    if text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def _timestamp(value: str) -> str:
    try:
        return _dt.datetime.fromtimestamp(float(value), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):
        return value


def top_tags(tag_frequency: Any, limit: int = TOP_TAGS) -> list[tuple[str, int]]:
    """The most frequent tags over all folders of ss_tag_frequency ({folder: {tag: count}})."""
    total: Counter = Counter()
    if isinstance(tag_frequency, dict):
        for tags in tag_frequency.values():
            if isinstance(tags, dict):
                for tag, count in tags.items():
                    if isinstance(count, (int, float)):
                        total[str(tag).strip()] += int(count)
    return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def _fmt_number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def lora_info(path: str | Path) -> dict[str, Any]:
    """Everything `lora info` shows, as a JSON-ready dict."""
    lora = load_lora(path)
    return describe(lora)


def describe(lora: LoraFile) -> dict[str, Any]:
    arch, source = detect_architecture(lora)
    ranks = Counter(m.rank or "full" for m in lora.modules.values())
    alphas = Counter(_fmt_number(m.effective_alpha) for m in lora.modules.values())
    conv = [m for m in lora.modules.values() if m.is_conv and m.kernel != (1, 1)]
    conv_ranks = Counter(m.rank for m in conv)
    linear_ranks = Counter(m.rank or "full" for m in lora.modules.values()
                           if not (m.is_conv and m.kernel != (1, 1)))
    # a conv rank beside a linear rank is LoCon, not a dynamic (resized) file
    dynamic = len(linear_ranks) > 1 or len(conv_ranks) > 1
    decoded = {k: decode_value(v) for k, v in sorted(lora.metadata.items())}
    training = {}
    for key, label in TRAINING_FIELDS:
        if key in lora.metadata:
            value = lora.metadata[key]
            training[label] = _timestamp(value) if key.endswith("_at") else decoded[key]
    dataset_dirs = decoded.get("ss_dataset_dirs")
    bucket_info = decoded.get("ss_bucket_info")
    if bucket_info is None and isinstance(decoded.get("ss_datasets"), list):
        bucket_info = [d.get("bucket_info") for d in decoded["ss_datasets"] if isinstance(d, dict)]
    return {
        "file": str(lora.path),
        "size_bytes": lora.size_bytes,
        "architecture": arch,
        "architecture_source": source,
        "modules": dict(sorted(lora_parts(lora).items())),
        "total_modules": len(lora.modules),
        "kind": lora.kind,
        "kind_label": kind_label(lora),
        "dora": lora.dora,
        "loaders": loaders(lora),
        "kinds": dict(sorted(lora.kinds().items())),
        "ranks": {str(k): v for k, v in sorted(ranks.items(), key=_rank_order)},
        "dynamic_rank": dynamic,
        "linear_ranks": {str(k): v for k, v in sorted(linear_ranks.items(), key=_rank_order)},
        "alphas": dict(sorted(alphas.items(), key=lambda kv: float(kv[0]))),
        "conv": bool(conv),
        "conv_modules": len(conv),
        "conv_ranks": {str(k): v for k, v in sorted(conv_ranks.items())},
        "precision": dict(lora.dtypes),
        "other_keys": lora.other_keys,
        "incomplete_modules": lora.incomplete,
        "unsupported_modules": lora.unsupported,
        "zero_alpha_modules": lora.zero_alpha(),
        "missing_alpha_modules": len(lora.missing_alpha()),
        "training": training,
        "top_tags": top_tags(decoded.get("ss_tag_frequency")),
        "dataset_dirs": dataset_dirs if isinstance(dataset_dirs, dict) else None,
        "bucket_info": bucket_info,
        "metadata": decoded,
    }


def loaders(lora: LoraFile) -> dict[str, Any]:
    """Which tools apply this file as trained: A1111 (built-in Lora), ComfyUI and LyCORIS read every kind
    here; diffusers (0.42) loads LoRA/LoCon, refuses LoHa/LoKr keys and drops DoRA's dora_scale, so a
    DoRA file loads there with a different effect (lorakit's own `lora merge` / `lora preview` apply it)."""
    kinds = set(lora.kind.split("+"))
    tucker = any(m.mid is not None for m in lora.modules.values())
    if kinds & {"loha", "lokr"}:
        reason = "diffusers refuses LoHa/LoKr keys"
    elif lora.dora:
        reason = "diffusers drops dora_scale (DoRA), so the result would differ from the trained one"
    elif tucker:
        reason = "diffusers does not place Tucker (lora_mid) conv modules"
    else:
        reason = None
    tools = ["A1111", "ComfyUI", "LyCORIS"] if reason else ["A1111", "ComfyUI", "LyCORIS", "diffusers"]
    return {"tools": tools, "not_diffusers": reason}


def _rank_order(item: tuple[object, int]) -> tuple[int, int]:
    return (1, 0) if item[0] == "full" else (0, int(item[0]))  # type: ignore[call-overload]


def kind_label(lora: LoraFile) -> str:
    """"LoRA", "LoCon", "LoHa", "LoKr" (joined with + when mixed), with " + DoRA" when it decomposes."""
    label = "+".join(KIND_LABELS[k] for k in lora.kind.split("+"))
    return f"{label} + DoRA" if lora.dora else label


def _histogram(counts: dict[str, int], width: int = 30) -> list[str]:
    top = max(counts.values()) if counts else 1
    return [f"    {k:>6} | {'#' * max(1, round(width * v / top))} {v}" for k, v in counts.items()]


def format_info(info: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [f"{info['file']}  ({info['size_bytes'] / 1024 / 1024:.2f} MiB)",
             f"architecture: {info['architecture']}  (from {info['architecture_source']})"]
    parts = ", ".join(f"{PART_LABELS.get(p, p)} {n}" for p, n in info["modules"].items())
    lines.append(f"kind: {info['kind_label']}")
    loads = info["loaders"]
    lines.append("loads in: " + ", ".join(loads["tools"])
                 + (f"; not diffusers ({loads['not_diffusers']}; lorakit lora merge/preview apply it exactly)"
                    if loads["not_diffusers"] else ""))
    lines.append(f"modules: {info['total_modules']}  ({parts})")
    if info["dynamic_rank"]:
        lines.append("rank: dynamic")
        lines.extend(_histogram(info["ranks"]))
    else:
        lines.append(f"rank: {', '.join(info['linear_ranks'] or info['ranks'])}")
    alphas = info["alphas"]
    lines.append("alpha: " + (", ".join(f"{a} ({n})" for a, n in alphas.items()) if len(alphas) > 1
                              else ", ".join(alphas)))
    if info["zero_alpha_modules"]:
        lines.append(f"alpha 0 in {len(info['zero_alpha_modules'])} module(s): loaders (A1111, ComfyUI, kohya's "
                     f"merge) apply no update for them")
    if info["missing_alpha_modules"]:
        lines.append(f"no alpha in {info['missing_alpha_modules']} module(s): applied at alpha = rank (scale 1)")
    if info["conv"]:
        lines.append(f"conv LoRA: yes ({info['conv_modules']} 3x3 modules, rank "
                     f"{', '.join(info['conv_ranks'])})")
    else:
        lines.append("conv LoRA: no")
    lines.append("precision: " + ", ".join(f"{d} ({n} tensors)" for d, n in info["precision"].items()))
    if info["other_keys"]:
        lines.append(f"other tensors (not applied): {len(info['other_keys'])}, e.g. {info['other_keys'][0]}")
    if info["incomplete_modules"]:
        lines.append(f"incomplete modules (a factor missing): {len(info['incomplete_modules'])}")
    if info["unsupported_modules"]:
        algos = ", ".join(sorted(set(info["unsupported_modules"].values())))
        lines.append(f"unsupported LyCORIS modules (not applied): {len(info['unsupported_modules'])} ({algos})")
    if info["training"]:
        lines.append("training:")
        lines.extend(f"  {k}: {_short(v)}" for k, v in info["training"].items())
    if info["dataset_dirs"]:
        lines.append("dataset folders:")
        for name, d in info["dataset_dirs"].items():
            if isinstance(d, dict):
                lines.append(f"  {name}: {d.get('img_count', '?')} images x {d.get('n_repeats', '?')} repeats")
    if info["bucket_info"]:
        lines.append(f"buckets: {_short(info['bucket_info'], 300)}")
    if info["top_tags"]:
        lines.append(f"top {len(info['top_tags'])} tags:")
        lines.extend(f"  {count:>6}  {tag}" for tag, count in info["top_tags"])
    shown = {"ss_tag_frequency", "ss_dataset_dirs", "ss_bucket_info"}
    rest = {k: v for k, v in info["metadata"].items() if k not in shown}
    if rest:
        lines.append("metadata:")
        lines.extend(f"  {k}: {_short(v)}" for k, v in rest.items())
    return "\n".join(lines)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"
