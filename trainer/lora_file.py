"""Writing kohya LoRA `.safetensors` files (atomic save, string metadata, sshs hashes).

- `save_lora_file(path, tensors, metadata, dtype=None)`: casts to dtype, adds `sshs_model_hash` /
  `sshs_legacy_hash` computed as kohya does (on a copy carrying only the `ss_*` metadata), and
  writes temp file + rename, so a kill mid-save leaves the previous file intact.

Reading is elsewhere, once: `trainer.lora_modules.read_lora` (the read model of kohya/LyCORIS files)
over `trainer.safetensors_read.read_header` (the validated header reader).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from prep.fsio import atomic_write_bytes

if TYPE_CHECKING:
    import torch

LEGACY_HASH_OFFSET = 0x100000
LEGACY_HASH_SIZE = 0x10000


def _stringify(metadata: dict[str, object] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in (metadata or {}).items():
        if value is None:
            continue
        if isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, (dict, list)):
            out[str(key)] = json.dumps(value, ensure_ascii=False)
        else:
            out[str(key)] = str(value)
    return out


def model_hash_of_bytes(data: bytes) -> str:
    """SHA-256 of a safetensors file's bytes after its header (A1111 / additional-networks hash)."""
    header_len = int.from_bytes(data[:8], "little")
    return hashlib.sha256(memoryview(data)[8 + header_len:]).hexdigest()


def legacy_hash_of_bytes(data: bytes) -> str:
    """First 8 hex digits of the SHA-256 of the 64 KiB at offset 1 MiB (A1111's old LoRA hash)."""
    return hashlib.sha256(data[LEGACY_HASH_OFFSET:LEGACY_HASH_OFFSET + LEGACY_HASH_SIZE]).hexdigest()[:8]


def compute_hashes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> tuple[str, str]:
    """(sshs_model_hash, sshs_legacy_hash) as kohya computes them: on the file with only ss_* metadata."""
    from safetensors.torch import save

    training_only = {k: v for k, v in metadata.items() if k.startswith("ss_")}
    data = save(tensors, training_only)
    return model_hash_of_bytes(data), legacy_hash_of_bytes(data)


def prepare_tensors(tensors: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies in dtype (alpha included, as kohya casts every tensor)."""
    out = {}
    for key, value in tensors.items():
        value = value.detach().to("cpu")
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        out[key] = value.contiguous()
    return out


def save_lora_file(path: str | os.PathLike[str], tensors: dict[str, torch.Tensor],
                   metadata: dict[str, object] | None = None, *, dtype: torch.dtype | None = None,
                   add_hashes: bool = True) -> Path:
    """Write a LoRA file atomically; every metadata value is stored as a string."""
    from safetensors.torch import save

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    prepared = prepare_tensors(tensors, dtype)
    meta = _stringify(metadata)
    if add_hashes:
        meta["sshs_model_hash"], meta["sshs_legacy_hash"] = compute_hashes(prepared, meta)
    atomic_write_bytes(target, save(prepared, meta), fsync=True)
    return target
