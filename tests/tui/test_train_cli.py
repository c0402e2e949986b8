"""`lorakit train`: a config error is reported before torch is imported, and a run started from the
command line with --events leaves the .pid file the Train screen reattaches by."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_caption, write_image


def test_config_error_without_torch_and_the_pid_file(tmp_path: Path):
    dataset = tmp_path / "dataset"
    write_image(dataset / "1_a" / "x.png", (64, 64))
    write_caption(dataset / "1_a" / "x.txt", "a")
    config = tmp_path / "lorakit.toml"
    config.write_text('[train]\npretrained_model = "dataset"\ndataset = "dataset"\nmixed_precision = "fp16"\n')
    events = tmp_path / "runs" / "cli.jsonl"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen([sys.executable, "-X", "importtime", "-m", "tui", "train", "--config", str(config),
                             "--events", str(events)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    lines = err.splitlines()
    assert lines[-1] == "lorakit: error: mixed_precision = fp16 needs a GPU; use mixed_precision = no on this machine"
    imported = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}
    assert "prep.config" in imported  # importtime did report the imports
    assert not {name for name in imported if name.split(".")[0] in ("torch", "diffusers", "accelerate")}
    (event,) = [json.loads(x) for x in events.read_text().splitlines()]
    assert event["event"] == "error" and "needs a GPU" in event["message"]
    assert events.with_suffix(".pid").read_text().strip() == str(proc.pid)  # recorded by the trainer itself


def test_a_stale_or_reused_pid_is_no_live_trainer(tmp_path: Path):
    from trainer.run_pid import live_trainer_pid, record_pid
    from tui.trainer_run import TrainerRun

    events = tmp_path / "run.jsonl"
    other = subprocess.Popen(["sleep", "30"])  # a live process that is no trainer (a reused pid)
    try:
        record_pid(events, other.pid)
        assert live_trainer_pid(events) is None and not TrainerRun.attach(events).running
    finally:
        other.kill()
        other.wait()
    record_pid(events, other.pid)  # gone now
    assert live_trainer_pid(events) is None
    trainer_like = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "trainer"])
    try:
        record_pid(events, trainer_like.pid)
        assert live_trainer_pid(events) == trainer_like.pid and TrainerRun.attach(events).running
    finally:
        trainer_like.kill()
        trainer_like.wait()
