"""`lorakit ui` workspace handling, and the trainer events reader, without starting the app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prep.config import read_toml
from tui.cli import main
from tui.trainer_run import EventTail, describe_event, format_duration, format_step
from tui.workspace import TEMPLATE, WorkspaceError, init_workspace, open_workspace


def test_init_creates_the_layout_and_keeps_an_existing_file(tmp_path: Path):
    root = tmp_path / "new" / "ws"
    workspace = init_workspace(root)
    assert sorted(p.name for p in root.iterdir()) == ["dataset", "lorakit.toml", "output", "reg"]
    assert read_toml(root / "lorakit.toml")["train"]["dataset"] == "dataset"
    assert (workspace.dataset, workspace.reg, workspace.output) == (root.resolve() / "dataset",
                                                                    root.resolve() / "reg",
                                                                    root.resolve() / "output")
    custom = TEMPLATE.replace('dataset = "dataset"', 'dataset = "/elsewhere/data"')
    (root / "lorakit.toml").write_text(custom)
    again = init_workspace(root)
    assert (root / "lorakit.toml").read_text() == custom
    assert again.dataset == Path("/elsewhere/data")


def test_the_trainer_reads_the_template(tmp_path: Path):
    from trainer.config import load_config

    root = tmp_path / "ws"
    init_workspace(root)
    config = load_config(root / "lorakit.toml")
    assert config.dataset == root.resolve() / "dataset" and config.output_dir == root.resolve() / "output"
    assert config.pretrained_model == ""


def test_a_folder_without_lorakit_toml_is_one_line_and_exit_1(tmp_path: Path, capsys):
    (tmp_path / "plain").mkdir()
    assert main(["ui", str(tmp_path / "plain")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no lorakit.toml" in err and "lorakit ui --init" in err
    with pytest.raises(WorkspaceError):
        open_workspace(tmp_path / "missing")


def test_init_on_a_file_is_refused(tmp_path: Path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["ui", "--init", str(tmp_path / "file")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_broken_workspace_file_is_named(tmp_path: Path, capsys):
    (tmp_path / "lorakit.toml").write_text("[train\n")
    assert main(["ui", str(tmp_path)]) == 1
    assert "lorakit.toml: not valid TOML" in capsys.readouterr().err


def test_event_tail_reads_complete_lines_only(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.read_new() == []  # no file yet
    path.write_bytes(b'{"event": "start", "total_steps": 3}\n{"event": "st')
    assert tail.read_new() == [{"event": "start", "total_steps": 3}]
    assert tail.read_new() == []
    with open(path, "ab") as fh:
        fh.write(b'ep", "step": 1}\n\n[1, 2]\n{"no_event": 1}\ngarbage\n{"event": "done", "path": "\xc3\xa9.safetensors"}\n')
    assert tail.read_new() == [{"event": "step", "step": 1}, {"event": "done", "path": "é.safetensors"}]
    assert tail.skipped == 3


def test_event_tail_drops_an_endless_line(tmp_path: Path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"x" * (2 << 20))
    tail = EventTail(path)
    assert tail.read_new() == [] and tail.partial == b"" and tail.skipped == 1
    with open(path, "ab") as fh:
        fh.write(b'\n{"event": "warning", "message": "m"}\n')
    assert tail.read_new() == [{"event": "warning", "message": "m"}]


@pytest.mark.parametrize(("seconds", "text"), [(None, "?"), (float("nan"), "?"), (-1, "?"), (0, "0:00"),
                                               (59.6, "1:00"), (3725, "1:02:05"), ("soon", "?")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_step_and_event_lines_survive_odd_values():
    # The trainer writes non-finite floats as strings ("nan") and eta_s null before its first rate.
    step = json.loads('{"event": "step", "step": 2, "epoch": 1, "loss": "nan", "lr": 0.0001, "it_per_s": 0.5, '
                      '"eta_s": null}')
    assert format_step(step, None) == "step 2  epoch 1  loss nan  lr 1.00e-04  0.50 it/s  ETA ?"
    assert describe_event(step) is None
    assert describe_event({"event": "error", "message": "out of memory"}) == "error: out of memory"
    assert describe_event({"event": "future", "x": 1}).startswith("future: ")


def test_several_gpus_launch_the_trainer_with_accelerate():
    import sys

    from tui.trainer_run import TRAINER_COMMAND, launch_command

    assert launch_command(TRAINER_COMMAND, 1) == TRAINER_COMMAND
    multi = launch_command(TRAINER_COMMAND, 4)
    assert multi[:3] == (sys.executable, "-m", "accelerate.commands.launch")
    assert multi[multi.index("--num_processes") + 1] == "4" and multi[-2:] == ("-m", "trainer")
    assert launch_command(("my-trainer",), 4) == ("my-trainer",)  # a custom command is kept as given
