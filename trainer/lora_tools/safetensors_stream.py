"""Streaming safetensors I/O: write tensors one at a time (peak memory ~ one tensor), read lazily.

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

from .errors import LoraToolError

DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
if hasattr(torch, "float8_e4m3fn"):
    DTYPE_NAMES[torch.float8_e4m3fn] = "F8_E4M3"
    DTYPE_NAMES[torch.float8_e5m2] = "F8_E5M2"
NAME_DTYPES = {v: k for k, v in DTYPE_NAMES.items()}


@dataclass
class PlannedTensor:
    """One output tensor: its key, shape, dtype, and a function producing it when its turn comes."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    make: Callable[[], torch.Tensor]


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _nbytes(shape: tuple[int, ...], dtype: torch.dtype) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n * torch.empty((), dtype=dtype).element_size()


def write_safetensors(path: str | os.PathLike[str], plan: Iterable[PlannedTensor],
                      metadata: Mapping[str, str] | None = None) -> int:
    """Write the planned tensors to path atomically (temp file + os.replace); returns the byte size."""
    size = 0
    for written in iter_write_safetensors(path, plan, metadata):
        size = written
    return size


def iter_write_safetensors(path: str | os.PathLike[str], plan: Iterable[PlannedTensor],
                           metadata: Mapping[str, str] | None = None) -> Iterator[int]:
    """`write_safetensors` as a generator yielding after each tensor (for progress); last value = size."""
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


def save_tensors(path: str | os.PathLike[str], tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, str] | None = None) -> int:
    """Write an in-memory state dict atomically."""
    plan = [PlannedTensor(k, tuple(t.shape), t.dtype, (lambda t=t: t)) for k, t in tensors.items()]
    return write_safetensors(path, plan, metadata)


class LazyTensors:
    """Tensors of one safetensors file read one at a time (memory-mapped), with shapes and dtypes known."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.header, self.metadata = read_header(self.path)
        with open(self.path, "rb") as fh:
            self._data_start = 8 + int.from_bytes(fh.read(8), "little")

    def keys(self) -> list[str]:
        return list(self.header)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.header[key]["shape"])

    def dtype(self, key: str) -> torch.dtype:
        name = self.header[key]["dtype"]
        if name not in NAME_DTYPES:
            raise LoraToolError(f"{self.path}: tensor {key} has unsupported dtype {name}")
        return NAME_DTYPES[name]

    def get(self, key: str) -> torch.Tensor:
        """A fresh tensor read with plain file I/O: unlike a memory map, the pages of tensors already
        processed do not stay in the process's resident memory, so a whole-checkpoint pass costs ~one tensor."""
        info = self.header[key]
        start, end = info["data_offsets"]
        dtype, shape = self.dtype(key), self.shape(key)
        if end == start:
            return torch.empty(shape, dtype=dtype)
        buffer = bytearray(end - start)
        with open(self.path, "rb") as fh:
            fh.seek(self._data_start + start)
            if fh.readinto(buffer) != len(buffer):
                raise LoraToolError(f"{self.path}: file is truncated (tensor {key})")
        tensor = torch.frombuffer(buffer, dtype=dtype)
        if tensor.numel() != _numel(shape):
            raise LoraToolError(f"{self.path}: tensor {key} size does not match its shape")
        return tensor.reshape(shape)

    def __contains__(self, key: str) -> bool:
        return key in self.header


def read_header(path: Path) -> tuple[dict[str, dict], dict[str, str]]:
    """The tensor table and metadata of a safetensors file, validated (it is untrusted input)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ValueError("file too short")
            n = int.from_bytes(head, "little")
            if n <= 1 or n > min(size - 8, 100 * 1024 * 1024):
                raise ValueError("bad header length")
            header = json.loads(fh.read(n).decode("utf-8"))
    except FileNotFoundError:
        raise LoraToolError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LoraToolError(f"{path}: is a folder, expected a .safetensors file") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise LoraToolError(f"{path}: not a valid safetensors file ({exc}); "
                            f"convert .ckpt/.pt files to .safetensors first") from None
    if not isinstance(header, dict):
        raise LoraToolError(f"{path}: not a valid safetensors file (header is not a table)")
    meta = header.pop("__metadata__", None) or {}
    if not isinstance(meta, dict):
        meta = {}
    end = size - 8 - n
    for key, info in header.items():
        ok = (isinstance(info, dict) and isinstance(info.get("shape"), list)
              and isinstance(info.get("data_offsets"), list) and len(info["data_offsets"]) == 2
              and 0 <= info["data_offsets"][0] <= info["data_offsets"][1] <= end)
        if not ok:
            raise LoraToolError(f"{path}: not a valid safetensors file (entry {key!r} is malformed)")
    return header, {str(k): str(v) for k, v in meta.items()}
