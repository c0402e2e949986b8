"""The one options loader: nearest lorakit.toml from the dataset or the current folder, checked tables
and keys with a did-you-mean, Path values relative to the file, CLI flags over the file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from PIL import Image

from prep.config import ConfigError, find_workspace_file, load_options, read_workspace_file
from prep.validate import ValidateOptions, load_validate_options
from tagger.config import TagConfig
from tui.cli import main


def _workspace(root: Path, toml: str) -> Path:
    concept = root / "dataset" / "2_alice"
    concept.mkdir(parents=True)
    for i in range(3):
        Image.new("RGB", (64, 64), (i * 40, 0, 0)).save(concept / f"a{i}.png")
        (concept / f"a{i}.txt").write_text("alice, smile", encoding="utf-8")
    (root / "lorakit.toml").write_text(toml, encoding="utf-8")
    return root


def test_found_from_the_dataset_or_any_folder_above_else_the_current_folder(tmp_path, monkeypatch):
    root = _workspace(tmp_path / "ws", "[tagger]\nmcut = true\n")
    concept = root / "dataset" / "2_alice"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert find_workspace_file(concept, cwd=elsewhere) == root / "lorakit.toml"
    assert find_workspace_file(elsewhere, cwd=concept) == root / "lorakit.toml"
    assert find_workspace_file(elsewhere, cwd=elsewhere) is None
    monkeypatch.chdir(concept)
    assert load_options(TagConfig, "tagger").mcut is True


def test_unknown_table_and_key_get_a_did_you_mean(tmp_path):
    root = _workspace(tmp_path / "ws", "[tager]\nmcut = true\n")
    with pytest.raises(ConfigError, match=r"unknown table \[tager\]; did you mean \[tagger\]"):
        read_workspace_file(root / "lorakit.toml")
    (root / "lorakit.toml").write_text("[tagger]\nmcutt = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="did you mean 'mcut'"):
        load_options(TagConfig, "tagger", dataset=root / "dataset")
    (root / "lorakit.toml").write_text("tagger = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="must be a table"):
        read_workspace_file(root / "lorakit.toml")


def test_cli_flags_win_and_paths_are_relative_to_the_file(tmp_path, monkeypatch):
    root = _workspace(tmp_path / "ws", '[validate]\nresolution = 64\nreg = "reg"\n')
    (root / "reg").mkdir()
    monkeypatch.chdir(tmp_path)
    options = load_options(ValidateOptions, "validate", {"resolution": 32}, dataset=root / "dataset")
    assert options.resolution == 32 and options.reg == root / "reg"


def test_validate_reads_validate_and_its_typos_are_one_line(tmp_path, capsys):
    root = _workspace(tmp_path / "ws", "[validate]\nresolution = 32\n")
    assert main(["validate", str(root / "dataset"), "--json"]) == 0
    problems = json.loads(capsys.readouterr().out)["problems"]
    assert not any(p["code"] == "too-small" for p in problems)  # 64 px images: 512 by default
    assert main(["validate", str(root / "dataset"), "--json", "--resolution", "128"]) == 0
    assert any(p["code"] == "too-small" for p in json.loads(capsys.readouterr().out)["problems"])
    (root / "lorakit.toml").write_text("[validate]\nresoluton = 512\n", encoding="utf-8")
    assert main(["validate", str(root / "dataset")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did you mean 'resolution'" in err


def test_validate_counts_the_steps_train_will_run(tmp_path, capsys):
    root = _workspace(tmp_path / "ws", "[train]\nmax_train_epochs = 4\ntrain_batch_size = 2\n")
    options = load_validate_options(root / "dataset")
    assert (options.epochs, options.batch_size) == (4, 2)
    assert main(["validate", str(root / "dataset"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total_steps"] == 3 * 4  # 2 repeats x 3 images = 6 per epoch, batch 2 -> 3 steps
    (root / "lorakit.toml").write_text("[train]\n[validate]\nepochs = 2\n", encoding="utf-8")
    assert load_validate_options(root / "dataset", {"batch_size": 3}).epochs == 2
    (root / "lorakit.toml").write_text("[train]\n", encoding="utf-8")
    assert load_validate_options(root / "dataset").epochs == 10  # the trainer's default


def test_train_in_the_workspace_root_reads_train(tmp_path, monkeypatch):
    from trainer.cli import add_train_arguments
    from trainer.config import load_config

    root = _workspace(tmp_path / "ws", '[train]\npretrained_model = "base.safetensors"\ndataset = "dataset"\n'
                                       'network_dim = 12\n')
    (root / "base.safetensors").write_bytes(b"")
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    monkeypatch.chdir(root)
    config = load_config(None, parser.parse_args(["--network-dim", "8"]))
    assert config.pretrained_model == str(root / "base.safetensors")
    assert config.dataset == root / "dataset" and config.network_dim == 8
    (root / "lorakit.toml").write_text("[train]\n[trian]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"did you mean \[train\]"):
        load_config(None, parser.parse_args([]))
