"""Streaming safetensors writes: tensors one at a time (peak memory ~ one tensor).

Reading (validated header, lazy tensors) is `trainer.safetensors_read`.

safetensors' own `save_file` needs every tensor in memory at once; merging into a multi-GiB
checkpoint must not, so the header is computed from shapes first and the data streamed after it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from prep.fsio import current_umask

DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
if hasattr(torch, "float8_e4m3fn"):
    DTYPE_NAMES[torch.float8_e4m3fn] = "F8_E4M3"
    DTYPE_NAMES[torch.float8_e5m2] = "F8_E5M2"


@dataclass
class PlannedTensor:
    """One output tensor: its key, shape, dtype, and a function producing it when its turn comes."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    make: Callable[[], torch.Tensor]


def _nbytes(shape: tuple[int, ...], dtype: torch.dtype) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n * torch.empty((), dtype=dtype).element_size()


def iter_write_safetensors(path: str | os.PathLike[str], plan: Iterable[PlannedTensor],
                           metadata: Mapping[str, str] | None = None) -> Iterator[int]:
    """Write the planned tensors to path atomically (temp file + os.replace), yielding the bytes written
    after each tensor (for progress); the last value is the file size."""
    target = Path(path)
    items = list(plan)
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for item in items:
        size = _nbytes(item.shape, item.dtype)
        header[item.key] = {"dtype": DTYPE_NAMES[item.dtype], "shape": list(item.shape),
                            "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".lorakit-tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(len(raw).to_bytes(8, "little"))
            fh.write(raw)
            for item in items:
                tensor = item.make()
                if tuple(tensor.shape) != tuple(item.shape) or tensor.dtype != item.dtype:
                    raise RuntimeError(f"{item.key}: produced {tuple(tensor.shape)} {tensor.dtype}, "
                                       f"planned {item.shape} {item.dtype}")
                data = tensor.detach().to("cpu").contiguous().reshape(-1)
                if data.numel():
                    fh.write(memoryview(data.view(torch.uint8).numpy()))
                del tensor, data
                yield 0
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    yield 8 + len(raw) + offset
