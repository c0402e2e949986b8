"""Shared fixtures: real image files written with Pillow, and the CLI run in-process or as a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image


def write_image(path: Path, size: tuple[int, int] = (64, 48), color=(200, 30, 30), mode: str = "RGB",
                fmt: str | None = None) -> Path:
    """Write a real image file; the format follows the extension unless fmt is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "RGBA" and len(color) == 3:
        color = (*color, 255)
    Image.new(mode, size, color).save(path, format=fmt)
    return path


def write_caption(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture(autouse=True)
def _no_user_credentials(tmp_path_factory, monkeypatch):
    """A developer's own booru credentials file is never read by the tests (nor sent to an emulator)."""
    monkeypatch.setenv("LORAKIT_CREDENTIALS", str(tmp_path_factory.getbasetemp() / "no-credentials.toml"))


@pytest.fixture
def make_image():
    return write_image


@pytest.fixture
def make_caption():
    return write_caption


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    """The guide's example: 2_HighRes with 4 captioned images, 1_LowRes with 2 (one uncaptioned)."""
    root = tmp_path / "dataset"
    for i in range(4):
        write_image(root / "2_HighRes" / f"img{i}.png", (96, 96), (10 * i, 100, 150))
        write_caption(root / "2_HighRes" / f"img{i}.txt", f"highres, 1girl, tag{i}")
    write_image(root / "1_LowRes" / "a.jpg", (80, 60))
    write_caption(root / "1_LowRes" / "a.txt", "lowres, 1girl")
    write_image(root / "1_LowRes" / "b.webp", (80, 60), (0, 0, 255))
    return root


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli():
    """Run `python -m tui ARGS` as a real process; returns CliResult(code, out, err)."""

    def run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600) -> CliResult:
        proc = subprocess.run([sys.executable, "-m", "tui", *map(str, args)], capture_output=True,
                              text=True, cwd=cwd, env=env, timeout=timeout)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run
