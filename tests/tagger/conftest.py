"""Fixtures for the tagger tests: tiny model folders and `lorakit tag` run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tagger.onnx_models import STANDARD, write_model_folder
from tui.cli import main


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """The STANDARD tiny model at the real WD14 side (448, dynamic batch)."""
    return write_model_folder(tmp_path_factory.mktemp("models") / "tiny448", STANDARD)


@pytest.fixture
def tag(capsys):
    """Run `lorakit tag ARGS` in-process; returns (exit code, stdout, stderr)."""

    def run(*args) -> tuple[int, str, str]:
        code = main(["tag", *map(str, args)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def tag_json(tag):
    """Run `lorakit tag ARGS --json`, assert success, return the parsed object."""

    def run(*args) -> dict:
        code, out, err = tag(*args, "--json")
        assert code == 0, err
        return json.loads(out)

    return run


def by_name(report: dict) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in report["results"]}


def tags_of(report: dict, name: str) -> dict[str, float]:
    return dict((t, p) for t, p in by_name(report)[name]["tags"])
