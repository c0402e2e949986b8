"""Writing LoRA files made by the tools: kohya tensors, string metadata, fresh sshs_model_hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .io import LoraModule, lora_tensors
from .safetensors_stream import save_tensors

STALE_KEYS = ("sshs_model_hash", "sshs_legacy_hash", "ss_new_session_id")


def lora_metadata_note(meta: dict[str, str]) -> dict[str, str]:
    """Metadata carried over from a source file, minus hashes that no longer describe the bytes."""
    from prep import __version__

    out = {k: v for k, v in meta.items() if k not in STALE_KEYS}
    out["lorakit_version"] = __version__
    return out


def _data_hash(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensor bytes after the header, in file order (what A1111 calls sshs_model_hash)."""
    digest = hashlib.sha256()
    for key in tensors:
        t = tensors[key].detach().contiguous().reshape(-1)
        if t.numel():
            digest.update(memoryview(t.view(torch.uint8).numpy()))
    return digest.hexdigest()


def write_lora(path: str | Path, modules: dict[str, LoraModule], metadata: dict[str, str],
               dtype: torch.dtype | None = None) -> int:
    """Write a kohya LoRA file atomically; returns its size in bytes."""
    tensors = lora_tensors(dict(sorted(modules.items())), dtype)
    meta = {str(k): str(v) for k, v in metadata.items()}
    meta["sshs_model_hash"] = _data_hash(tensors)
    return save_tensors(path, tensors, meta)
