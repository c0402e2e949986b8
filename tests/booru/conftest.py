"""Fixtures: a started emulator per test, and `lorakit scrape` run in-process against it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.booru.emulator import Emulator
from tui.cli import main


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries back off by milliseconds instead of seconds (the knob the CLI reads)."""
    monkeypatch.setenv("LORAKIT_BOORU_BACKOFF", "0.01")
    for name in list(__import__("os").environ):
        if name.startswith("LORAKIT_") and name not in ("LORAKIT_BOORU_BACKOFF", "LORAKIT_CREDENTIALS"):
            monkeypatch.delenv(name)


@pytest.fixture
def emulator():
    started: list[Emulator] = []

    def start(family: str, posts=None, **switches: Any) -> Emulator:
        emu = Emulator(family, posts, prefix=switches.pop("prefix", ""))
        for key, value in switches.items():
            assert hasattr(emu, key), key
            setattr(emu, key, value)
        started.append(emu.start())
        return emu

    yield start
    for emu in started:
        emu.stop()


@dataclass
class ScrapeResult:
    code: int
    data: dict[str, Any] | None
    out: str
    err: str
    folder: Path


@pytest.fixture
def scrape(capsys: pytest.CaptureFixture[str], tmp_path: Path):
    """Run `lorakit scrape --json` in-process against an emulator; returns ScrapeResult."""

    def run(emu: Emulator | None, *args: str, site: str | None = None, out: Path | None = None,
            rate: str = "1000", json_out: bool = True, base_url: str | None = None) -> ScrapeResult:
        folder = out or tmp_path / "dataset"
        argv = ["scrape", "--site", site or (emu.family if emu else "danbooru"), "--out", str(folder)]
        if base_url or emu is not None:
            argv += ["--base-url", base_url or emu.base_url]  # type: ignore[union-attr]
        if rate:
            argv += ["--rate", rate]
        argv += list(args)
        if json_out:
            argv.append("--json")
        code = main(argv)
        captured = capsys.readouterr()
        data = json.loads(captured.out) if json_out and code == 0 else None
        return ScrapeResult(code, data, captured.out, captured.err, folder)

    return run
