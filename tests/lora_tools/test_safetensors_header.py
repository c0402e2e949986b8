"""Hostile safetensors headers (issue 14 #15): every header is validated in full before a tensor is read.

Files are written byte by byte here, as an attacker (or a broken tool) would; each is refused with
one line naming the file, by the LoRA tools, the merge's base-model reader and the trainer's reader.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from tests.lora_tools.conftest import write_lora
from trainer.errors import LoRAFileError
from trainer.lora_modules import read_lora, read_network_weights
from trainer.safetensors_read import SafetensorsFileError, read_header, read_tensors
from tui.cli import main

LDM_Q = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"
KOHYA_Q = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"


def raw_file(path: Path, header: object = None, data: bytes = b"", *, length: int | None = None,
             header_bytes: bytes | None = None) -> Path:
    raw = header_bytes if header_bytes is not None else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def lora_header(**entries: object) -> dict:
    """A one-module LoRA header (F32 down [2,4], up [4,2], alpha) with entries overriding it."""
    header = {
        f"{KOHYA_Q}.lora_down.weight": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 32]},
        f"{KOHYA_Q}.lora_up.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [32, 64]},
        f"{KOHYA_Q}.alpha": {"dtype": "F32", "shape": [], "data_offsets": [64, 68]},
    }
    header.update(entries)
    return header


DATA = bytes(68)

HOSTILE = {
    "huge header length": dict(header={}, length=2**63),
    "header longer than the file": dict(header=lora_header(), data=DATA, length=10_000),
    "header not a table": dict(header=[1, 2, 3]),
    "header not JSON": dict(header_bytes=b"\x80\x04PICKLE" + b" " * 8),
    "deeply nested metadata": dict(header_bytes=b'{"__metadata__": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"),
    "nested metadata value": dict(header={**lora_header(), "__metadata__": {"a": {"b": "c"}}}, data=DATA),
    "non-string metadata value": dict(header={**lora_header(), "__metadata__": {"ss_network_dim": 4}}, data=DATA),
    "metadata not a table": dict(header={**lora_header(), "__metadata__": ["x"]}, data=DATA),
    "overlapping offsets": dict(header=lora_header(**{f"{KOHYA_Q}.lora_up.weight": {
        "dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]}}), data=DATA),
    "tensor without data": dict(header=lora_header(**{f"{KOHYA_Q}.lora_up.weight": {
        "dtype": "F32", "shape": [4, 2], "data_offsets": [32, 32]}}), data=DATA),
    "size does not match dtype x shape": dict(header=lora_header(**{f"{KOHYA_Q}.lora_up.weight": {
        "dtype": "F16", "shape": [4, 2], "data_offsets": [32, 64]}}), data=DATA),
    "offsets past the end": dict(header=lora_header(), data=DATA[:40]),
    "gap between tensors": dict(header=lora_header(**{f"{KOHYA_Q}.alpha": {
        "dtype": "F32", "shape": [], "data_offsets": [68, 72]}}), data=bytes(72)),
    "bytes after the last tensor": dict(header=lora_header(), data=bytes(100)),
    "unknown dtype": dict(header=lora_header(**{f"{KOHYA_Q}.alpha": {
        "dtype": "X99", "shape": [], "data_offsets": [64, 68]}}), data=DATA),
    "string offsets": dict(header=lora_header(**{f"{KOHYA_Q}.alpha": {
        "dtype": "F32", "shape": [], "data_offsets": ["64", "68"]}}), data=DATA),
    "negative shape": dict(header=lora_header(**{f"{KOHYA_Q}.alpha": {
        "dtype": "F32", "shape": [-1], "data_offsets": [64, 68]}}), data=DATA),
    "duplicate key": dict(header_bytes=json.dumps(lora_header())[:-1].encode()
                          + b', "' + f"{KOHYA_Q}.alpha".encode() + b'": {"dtype": "F32", "shape": [], '
                          b'"data_offsets": [64, 68]}}', data=DATA),
    "entry not a table": dict(header=lora_header(**{f"{KOHYA_Q}.alpha": 7}), data=DATA),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_header_refused_everywhere(case: str, tmp_path: Path, capsys):
    path = raw_file(tmp_path / "hostile.safetensors", **HOSTILE[case])
    with pytest.raises(SafetensorsFileError) as info:
        read_header(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    with pytest.raises(LoRAFileError):
        read_lora(path)
    with pytest.raises(LoRAFileError):
        read_network_weights(path)
    for command in (["lora", "info", str(path)], ["lora", "check", str(path)]):
        assert main(command) == 1
        err = capsys.readouterr().err.strip()
        assert str(path) in err and "Traceback" not in err and len(err.splitlines()) == 1, err


def test_valid_file_reads_back(tmp_path: Path):
    data = torch.arange(8, dtype=torch.float32).numpy().tobytes() + bytes(32) + struct.pack("<f", 2.0)
    path = raw_file(tmp_path / "ok.safetensors", {**lora_header(), "__metadata__": {"k": "v"}}, data)
    header = read_header(path)
    assert header.metadata == {"k": "v"} and len(header.entries) == 3
    tensors, meta = read_tensors(path)
    assert torch.equal(tensors[f"{KOHYA_Q}.lora_down.weight"].flatten(), torch.arange(8, dtype=torch.float32))
    assert float(tensors[f"{KOHYA_Q}.alpha"]) == 2.0 and meta == {"k": "v"}
    # and one written by safetensors itself
    lora = write_lora(tmp_path / "st.safetensors", {KOHYA_Q: (torch.ones(2, 4), torch.ones(4, 2), 1.0)})
    assert read_lora(lora).modules[KOHYA_Q].scale == 0.5


def base_checkpoint(path: Path, *, broken: str) -> Path:
    """A single-file SD1 'checkpoint' (to_q [4,4] and another [4,4] tensor) with one broken entry."""
    other = "model.diffusion_model.out.2.weight"
    header = {LDM_Q: {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]},
              other: {"dtype": "F32", "shape": [4, 4], "data_offsets": [64, 128]}}
    data = bytes(128)
    if broken == "no data":
        header[other]["data_offsets"] = [64, 64]
        data = bytes(64)
    elif broken == "overlap":
        header[other]["data_offsets"] = [0, 64]
        data = bytes(64)
    return raw_file(path, header, data)


@pytest.mark.parametrize("broken", ["no data", "overlap"])
def test_merge_refuses_corrupt_base_checkpoint(broken: str, tmp_path: Path, capsys):
    base = base_checkpoint(tmp_path / "base.safetensors", broken=broken)
    g = torch.Generator().manual_seed(0)
    lora = write_lora(tmp_path / "l.safetensors", {KOHYA_Q: (torch.randn(2, 4, generator=g),
                                                             torch.randn(4, 2, generator=g), 2.0)},
                      {"ss_base_model_version": "sd_v1"})
    out = tmp_path / "merged.safetensors"
    assert main(["lora", "merge", "--base", str(base), "--lora", str(lora), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert str(base) in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".merged*"))  # no temp file left either


def test_training_refuses_corrupt_single_file_base(tmp_path: Path):
    from prep.errors import UserError
    from tests.trainer.conftest import make_train_dataset, run_training, tiny_config

    base = base_checkpoint(tmp_path / "base.safetensors", broken="overlap")
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    with pytest.raises(UserError) as info:
        run_training(tiny_config(base, dataset, tmp_path / "out"))
    assert str(base) in str(info.value) and "overlaps" in str(info.value)
