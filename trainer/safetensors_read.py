"""Reading `.safetensors` files that are untrusted input: one header reader that validates everything.

`read_header(path)` checks the whole header before a single tensor byte is read, the same rules
safetensors' own loader applies plus the hostile cases it is not asked about:
- an 8-byte length, then 2 ≤ N ≤ min(file size - 8, 100 MiB) bytes of UTF-8 JSON;
- the JSON is a table; keys are unique; nesting deeper than a header can hold is refused
  (metadata values are strings, so nothing is deeper than entry → shape list);
- `__metadata__`, when present, is a table of string -> string;
- every other entry is {"dtype": known name, "shape": [ints ≥ 0], "data_offsets": [begin, end]}
  with end - begin == numel × dtype size, and the entries, sorted by offset, tile the data
  section exactly: the first begins at 0, each begins where the previous ended, the last ends at
  the end of the file (no overlap, no gap, no tensor without its bytes).
Anything else raises `SafetensorsFileError` with one line naming the file.

`read_tensors(path)` (whole file, for LoRA-sized files) and `LazyTensors(path)` (one tensor at a time,
for multi-GiB checkpoints) read through that header only.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prep.errors import UserError

if TYPE_CHECKING:
    import torch

MAX_HEADER_BYTES = 100 * 1024 * 1024
# safetensors dtype names -> bytes per element
DTYPE_SIZES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}
_HEADER_DEPTH = 3  # header table -> entry table -> shape / offsets list


class SafetensorsFileError(UserError):
    """A .safetensors file is missing, unreadable or malformed (one line naming the file)."""


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the header: dtype name, shape, byte range relative to the data section."""

    key: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def nbytes(self) -> int:
        return self.end - self.begin


@dataclass
class SafetensorsHeader:
    path: Path
    entries: dict[str, TensorEntry]
    metadata: dict[str, str]
    data_start: int  # file offset of the data section (8 + header length)
    file_size: int


def _torch_dtypes() -> dict[str, torch.dtype]:
    import torch

    names = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
             "BOOL": torch.bool}
    for name, attr in (("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"),
                       ("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2")):
        if hasattr(torch, attr):
            names[name] = getattr(torch, attr)
    return names


def _unique_pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key[:80]!r} appears twice")
        out[key] = value
    return out


def _depth_ok(value: object, depth: int = 0) -> bool:
    if isinstance(value, dict):
        return depth < _HEADER_DEPTH and all(_depth_ok(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return depth < _HEADER_DEPTH and all(_depth_ok(v, depth + 1) for v in value)
    return True


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _short(key: str) -> str:
    return repr(key if len(key) <= 80 else key[:77] + "...")


def read_header(path: str | os.PathLike[str]) -> SafetensorsHeader:
    """The validated tensor table and metadata of a safetensors file (see the module docstring)."""
    path = Path(path)

    def bad(reason: str) -> SafetensorsFileError:
        return SafetensorsFileError(f"{path}: not a valid safetensors file ({reason})")

    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(8)
            if len(head) < 8:
                raise bad("file too short")
            n = int.from_bytes(head, "little")
            if n < 2 or n > min(size - 8, MAX_HEADER_BYTES):
                raise bad(f"header length {n} does not fit a {size}-byte file")
            raw = fh.read(n)
    except FileNotFoundError:
        raise SafetensorsFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SafetensorsFileError(f"{path}: is a folder, expected a .safetensors file") from None
    except OSError as exc:
        raise SafetensorsFileError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) != n:
        raise bad("file is truncated inside its header")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_pairs)
    except RecursionError:
        raise bad("header nested too deeply") from None
    except UnicodeDecodeError:
        raise bad("header is not UTF-8; convert .ckpt/.pt files to .safetensors first") from None
    except ValueError as exc:
        raise bad(f"header is not JSON: {str(exc)[:120]}; convert .ckpt/.pt files to .safetensors first") from None
    if not isinstance(header, dict):
        raise bad("header is not a table")
    if not _depth_ok(header):
        raise bad("header nested too deeply")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise bad("__metadata__ is not a table")
    for key, value in meta.items():
        if not isinstance(value, str):
            raise bad(f"metadata value of {_short(key)} is not a string")
    data_size = size - 8 - n
    entries: dict[str, TensorEntry] = {}
    for key, info in header.items():
        if not isinstance(info, dict):
            raise bad(f"entry {_short(key)} is not a table")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPE_SIZES:
            raise bad(f"tensor {_short(key)} has unsupported dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or not all(_is_int(s) and s >= 0 for s in shape):
            raise bad(f"tensor {_short(key)} has a malformed shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise bad(f"tensor {_short(key)} has malformed data_offsets")
        numel = 1
        for s in shape:
            numel *= s
        if offsets[1] - offsets[0] != numel * DTYPE_SIZES[dtype]:
            raise bad(f"tensor {_short(key)} holds {offsets[1] - offsets[0]} bytes, its {dtype} shape "
                      f"{tuple(shape)} needs {numel * DTYPE_SIZES[dtype]}")
        if offsets[1] > data_size:
            raise bad(f"tensor {_short(key)} ends at byte {offsets[1]} of a {data_size}-byte data section "
                      f"(file truncated?)")
        entries[key] = TensorEntry(key, dtype, tuple(shape), offsets[0], offsets[1])
    position = 0
    for entry in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin != position:
            what = "overlaps the tensor before it" if entry.begin < position else "leaves a gap before it"
            raise bad(f"tensor {_short(entry.key)} {what} (offset {entry.begin}, expected {position})")
        position = entry.end
    if position != data_size:
        raise bad(f"{data_size - position} bytes after the last tensor")
    return SafetensorsHeader(path, entries, dict(meta), 8 + n, size)


def tensor_from_bytes(entry: TensorEntry, data: bytes | bytearray | memoryview, path: Path) -> torch.Tensor:
    """The tensor of entry from its bytes (a copy owned by the tensor)."""
    import torch

    dtypes = _torch_dtypes()
    if entry.dtype not in dtypes:
        raise SafetensorsFileError(f"{path}: tensor {_short(entry.key)} has dtype {entry.dtype}, "
                                   f"which this torch cannot hold")
    dtype = dtypes[entry.dtype]
    if entry.nbytes == 0:
        return torch.empty(entry.shape, dtype=dtype)
    buffer = bytearray(data)
    return torch.frombuffer(buffer, dtype=dtype).reshape(entry.shape)


def read_tensors(path: str | os.PathLike[str]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a whole safetensors file, the header validated before any tensor is made."""
    header = read_header(path)
    try:
        with open(header.path, "rb") as fh:
            fh.seek(header.data_start)
            data = fh.read()
    except OSError as exc:
        raise SafetensorsFileError(f"{header.path}: cannot read ({exc.strerror or exc})") from None
    if len(data) != header.file_size - header.data_start:
        raise SafetensorsFileError(f"{header.path}: file changed while it was read")
    view = memoryview(data)
    tensors = {key: tensor_from_bytes(e, view[e.begin:e.end], header.path) for key, e in header.entries.items()}
    return tensors, header.metadata


class LazyTensors:
    """Tensors of one safetensors file read one at a time, with shapes and dtypes known from the header."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.header = read_header(path)
        self.path = self.header.path
        self.metadata = self.header.metadata

    def keys(self) -> list[str]:
        return list(self.header.entries)

    def shape(self, key: str) -> tuple[int, ...]:
        return self.header.entries[key].shape

    def dtype(self, key: str) -> torch.dtype:
        name = self.header.entries[key].dtype
        dtypes = _torch_dtypes()
        if name not in dtypes:
            raise SafetensorsFileError(f"{self.path}: tensor {_short(key)} has dtype {name}, "
                                       f"which this torch cannot hold")
        return dtypes[name]

    def get(self, key: str) -> torch.Tensor:
        """A fresh tensor read with plain file I/O: unlike a memory map, the pages of tensors already
        processed do not stay in the process's resident memory, so a whole-checkpoint pass costs ~one tensor."""
        import torch

        entry = self.header.entries[key]
        dtype = self.dtype(key)
        if entry.nbytes == 0:
            return torch.empty(entry.shape, dtype=dtype)
        buffer = bytearray(entry.nbytes)
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.header.data_start + entry.begin)
                got = fh.readinto(buffer)
        except OSError as exc:
            raise SafetensorsFileError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if got != len(buffer):
            raise SafetensorsFileError(f"{self.path}: file is truncated (tensor {_short(key)})")
        return torch.frombuffer(buffer, dtype=dtype).reshape(entry.shape)

    def __contains__(self, key: str) -> bool:
        return key in self.header.entries
