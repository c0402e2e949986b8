"""`--lora f:abc` (issue 14 #21): on POSIX a one-letter name before the colon is a file, not a drive,
so a ratio that is not a number is named, never "no such file"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trainer.lora_tools.errors import LoraToolError
from trainer.lora_tools.io import parse_lora_spec


@pytest.mark.skipif(os.name == "nt", reason="a drive letter there")
def test_a_one_letter_file_with_a_bad_ratio():
    with pytest.raises(LoraToolError, match="'abc' is not a number"):
        parse_lora_spec("f:abc")
    assert parse_lora_spec("f:0.5") == (Path("f"), 0.5)


def test_nan_and_inf_are_no_ratio():
    for bad in ("x.safetensors:nan", "x.safetensors:inf"):
        with pytest.raises(LoraToolError):
            parse_lora_spec(bad)
