import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from prep.config import ConfigError, add_arguments, find_workspace, option, resolve


@dataclass
class Demo:
    learning_rate: float = option(1e-4, "step size")
    network_dim: int = option(32, "rank")
    flip_aug: bool = option(False, "mirror images")
    mode: str = option("skip", "write mode", choices=("skip", "overwrite"))
    out: Path | None = option(None, "where")
    tags: list[str] = option(help="tags", default_factory=list)


def test_unknown_key_suggests_closest():
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        resolve(Demo, None, {"learning_rat": 1})


def test_cli_overrides_file():
    parser = argparse.ArgumentParser()
    add_arguments(parser, Demo)
    args = parser.parse_args(["--network-dim", "8", "--flip-aug", "--tags", "a", "--tags", "b"])
    cfg = resolve(Demo, args, {"learning_rate": 3e-4, "network_dim": 4})
    assert cfg == Demo(learning_rate=3e-4, network_dim=8, flip_aug=True, tags=["a", "b"])


def test_bad_type_and_choice():
    with pytest.raises(ConfigError, match="network_dim"):
        resolve(Demo, None, {"network_dim": "many"})
    with pytest.raises(ConfigError, match="not one of"):
        resolve(Demo, None, {"mode": "append"})


def test_workspace_table(tmp_path: Path):
    (tmp_path / "lorakit.toml").write_text("[clean]\nlowercase = true\n")
    (tmp_path / "dataset").mkdir()
    workspace = find_workspace(tmp_path / "dataset")
    table, source = workspace.table("clean"), workspace.source("clean")
    assert table == {"lowercase": True} and "lorakit.toml" in source
