"""`--lora FILE:RATIO` with a ratio that is not a number says so (issue 14 #21), not "no such file"."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.lora_tools.errors import LoraToolError
from trainer.lora_tools.io import parse_lora_spec
from tui.cli import main


def test_a_ratio_that_is_not_a_number_is_named(tmp_path: Path, capsys):
    lora = tmp_path / "f.safetensors"
    lora.write_bytes(b"")
    code = main(["lora", "merge", "--base", str(tmp_path / "base"), "--lora", f"{lora}:abc",
                 "--out", str(tmp_path / "out.safetensors")])
    err = capsys.readouterr().err
    assert code == 1
    assert "'abc'" in err and "not a number" in err and "no such file" not in err
    assert err.count("\n") == 1


def test_lora_specs(tmp_path: Path):
    assert parse_lora_spec("a.safetensors:0.5") == (Path("a.safetensors"), 0.5)
    assert parse_lora_spec("a.safetensors") == (Path("a.safetensors"), 1.0)
    with_colon = tmp_path / "x:y.safetensors"
    with_colon.write_bytes(b"")
    assert parse_lora_spec(str(with_colon)) == (with_colon, 1.0)
    for bad in ("f:abc", "f:nan", "f:inf"):
        with pytest.raises(LoraToolError):
            parse_lora_spec(bad)
