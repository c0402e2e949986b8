"""Reading and writing kohya LoRA `.safetensors` files (atomic save, string metadata, sshs hashes).

- `save_lora_file(path, tensors, metadata, dtype=None)`: casts to dtype, adds `sshs_model_hash` /
  `sshs_legacy_hash` computed as kohya does (on a copy carrying only the `ss_*` metadata), and
  writes temp file + rename, so a kill mid-save leaves the previous file intact.
- `load_lora_file(path)` -> (tensors, metadata); `read_metadata(path)`.
- `lora_modules(tensors)` groups the flat keys into `{name: LoRAWeights(down, up, alpha)}`;
  `LoRAWeights.scale` is alpha/rank (kohya: alpha 0 or absent means rank) and `.delta()` the
  merged weight update (alpha/rank) * up @ down, conv-aware.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prep.fsio import atomic_write_bytes
from trainer.errors import LoRAFileError
from trainer.lora_keys import ALPHA_SUFFIX, DOWN_SUFFIX, UP_SUFFIX, split_key

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


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The `__metadata__` of a safetensors file, without loading tensors."""
    target = Path(path)
    try:
        with open(target, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if size <= 0 or size > 100 * 1024 * 1024:
                raise LoRAFileError(f"{target}: not a safetensors file")
            header = json.loads(fh.read(size))
    except FileNotFoundError:
        raise LoRAFileError(f"{target}: no such LoRA file") from None
    except (OSError, ValueError) as exc:
        raise LoRAFileError(f"{target}: not a readable safetensors file ({exc})") from None
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def load_lora_file(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors LoRA file."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    target = Path(path)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        raise LoRAFileError(f"{target}: no such LoRA file") from None
    except OSError as exc:
        raise LoRAFileError(f"{target}: cannot read ({exc.strerror})") from None
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise LoRAFileError(f"{target}: not a valid safetensors file ({exc})") from None
    header_len = int.from_bytes(data[:8], "little")
    header = json.load(io.BytesIO(data[8:8 + header_len]))
    meta = {str(k): str(v) for k, v in (header.get("__metadata__") or {}).items()}
    return tensors, meta


@dataclass
class LoRAWeights:
    """One adapted module's tensors."""

    down: torch.Tensor
    up: torch.Tensor
    alpha: float | None

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def scale(self) -> float:
        alpha = self.alpha if self.alpha else float(self.rank)
        return alpha / self.rank

    def delta(self) -> torch.Tensor:
        """The merged weight update (alpha/rank) * up @ down, shaped like the adapted weight."""
        import torch

        down = self.down.float()
        up = self.up.float()
        if down.dim() == 2:
            return self.scale * (up @ down)
        if down.shape[2:] == (1, 1):
            return self.scale * (up.flatten(1) @ down.flatten(1)).unsqueeze(-1).unsqueeze(-1)
        # 3x3 down, 1x1 up: the composition of the two convs is a conv with up mixing down's filters.
        return self.scale * torch.einsum("or,rikl->oikl", up.flatten(1), down)


def lora_modules(tensors: dict[str, torch.Tensor]) -> dict[str, LoRAWeights]:
    """Group a kohya state dict by module; modules missing down or up are an error."""
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        name, suffix = split_key(key)
        grouped.setdefault(name, {})[suffix] = value
    out: dict[str, LoRAWeights] = {}
    for name, parts in grouped.items():
        if DOWN_SUFFIX not in parts or UP_SUFFIX not in parts:
            if set(parts) <= {ALPHA_SUFFIX, DOWN_SUFFIX, UP_SUFFIX}:
                raise LoRAFileError(f"LoRA module {name} lacks its lora_down or lora_up weight")
            continue
        alpha = parts.get(ALPHA_SUFFIX)
        out[name] = LoRAWeights(parts[DOWN_SUFFIX], parts[UP_SUFFIX],
                                float(alpha.float().item()) if alpha is not None else None)
    return out
