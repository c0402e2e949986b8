"""Writing LoRA files made by the tools: kohya tensors and string metadata through the trainer's saver."""

from __future__ import annotations

from pathlib import Path

import torch

from trainer.lora_file import save_lora_file

from .io import LoraModule, lora_tensors

STALE_KEYS = ("sshs_model_hash", "sshs_legacy_hash")


def lora_metadata_note(meta: dict[str, str]) -> dict[str, str]:
    """Metadata carried over from a source file, minus hashes that no longer describe the bytes."""
    from prep import __version__

    out = {k: v for k, v in meta.items() if k not in STALE_KEYS}
    out["lorakit_version"] = __version__
    return out


def write_lora(path: str | Path, modules: dict[str, LoraModule], metadata: dict[str, str],
               dtype: torch.dtype | None = None) -> int:
    """Write a kohya LoRA file atomically (fresh sshs hashes as kohya computes them); returns its size."""
    tensors = lora_tensors(dict(sorted(modules.items())), dtype)
    target = save_lora_file(path, tensors, metadata)
    return target.stat().st_size
