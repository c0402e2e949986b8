"""Watching a run: validation loss, overfit warning, save_best, TensorBoard, EMA, event timestamps."""

from __future__ import annotations

import json

import pytest
import torch

from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
from trainer.safetensors_read import read_tensors as load_lora_file
from trainer.validation import OverfitWatch


def test_validation_ema_best_and_tensorboard(tiny_sd1, tmp_path):
    from safetensors.torch import load_file

    dataset = make_train_dataset(tmp_path / "ds", images=3)
    out = tmp_path / "out"
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("chara --w 64 --h 64 --s 1 --d 3\n", encoding="utf-8")
    config = tiny_config(tiny_sd1, dataset, out, validation_split=0.34, validation_seed=5, validate_every_n_steps=1,
                         max_train_steps=3, save_best=True, ema_decay=0.5, save_state=True, save_every_n_steps=2,
                         log_with="tensorboard", learning_rate=1e-2, save_precision="fp32",
                         sample_prompts=prompts, sample_every_n_steps=3)
    path, events = run_training(config)
    start = next(e for e in events if e["event"] == "start")
    assert start["images"] == 2  # one of three held out
    validations = [e for e in events if e["event"] == "validation"]
    assert [e["step"] for e in validations] == [1, 2, 3]
    assert all(set(e) == {"event", "step", "loss"} and isinstance(e["loss"], float) for e in validations)
    losses = [e["loss"] for e in validations]
    best_step = validations[losses.index(min(losses))]["step"]
    best = out / "lora-best.safetensors"
    assert best.is_file()
    assert [e for e in events if e["event"] == "save" and e["path"] == str(best)][-1]["step"] == best_step
    # TensorBoard event files through accelerate's tracker.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars, images = set(), set()
    for folder in {f.parent for f in (out / "logs").rglob("events.out.tfevents.*")}:
        tags = EventAccumulator(str(folder)).Reload().Tags()
        scalars |= set(tags["scalars"])
        images |= set(tags["images"])
    assert {"loss/current", "loss/average", "loss/validation"} <= scalars
    assert any(tag.startswith("lr/") for tag in scalars)
    assert images == {"samples/0"}  # the sample preview, as an image
    # EMA: the saved file holds the averaged weights, the state keeps raw and EMA weights apart.
    state = out / "lora-step00000002-state"
    raw, ema = load_file(str(state / "network.safetensors")), load_file(str(state / "ema.safetensors"))
    saved = load_lora_file(out / "lora-step00000002.safetensors")[0]
    up = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight"
    assert not torch.equal(raw[up], saved[up])
    assert torch.allclose(ema[f"{up[:-len('.lora_up.weight')]}.lora_up.weight"], saved[up])
    # Resume continues the average from the state's EMA weights.
    resumed, events2 = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "out2", validation_split=0.34,
                                                validation_seed=5, max_train_steps=3, ema_decay=0.5,
                                                learning_rate=1e-2, resume=state, save_precision="fp32"))
    a, b = load_lora_file(path)[0], load_lora_file(resumed)[0]
    assert torch.allclose(a[up], b[up], atol=1e-6)


def test_validation_loss_is_reproducible_and_order_free(tiny_sd1, tmp_path):
    from contextlib import nullcontext

    from trainer.config import TrainConfig
    from trainer.data import build_training_set
    from trainer.models import load_models
    from trainer.step import LossOptions
    from trainer.validation import Validator

    dataset = make_train_dataset(tmp_path / "ds", images=4)
    models = load_models(TrainConfig(pretrained_model=str(tiny_sd1)))
    losses = []
    for seed in (1, 2):  # another data-order seed: same held-out images, same loss
        config = TrainConfig(pretrained_model=str(tiny_sd1), dataset=dataset, resolution="64", min_bucket_reso=32,
                             max_bucket_reso=128, bucket_reso_steps=32, seed=seed, validation_split=0.5,
                             validation_seed=9)
        training = build_training_set(config)
        assert len(training.validation) == 2
        assert not {str(i.path) for i in training.validation} & {str(i.path) for i in training.images}
        validator = Validator(training.validation, 9)
        validator.prepare(models, torch.device("cpu"))
        for rng_seed in (0, 123):
            torch.manual_seed(rng_seed)
            losses.append(validator.loss(models, LossOptions(False, 75), device=torch.device("cpu"),
                                         weight_dtype=torch.float32, autocast=nullcontext))
    assert all(loss == losses[0] for loss in losses)


def test_overfit_warning_after_patience():
    watch = OverfitWatch(2)
    assert watch.add(1.0) is None and watch.add(0.8) is None and watch.add(0.9) is None
    message = watch.add(0.95)
    assert message and "risen for 2 evaluations" in message and "0.8000" in message
    assert watch.add(0.99) is None  # said once per rising streak


def test_written_events_carry_a_timestamp(tmp_path):
    from trainer.events import JsonLinesWriter, make_event

    writer = JsonLinesWriter(tmp_path / "events.jsonl")
    writer(make_event("validation", step=3, loss=0.25))
    writer.close()
    event = json.loads((tmp_path / "events.jsonl").read_text(encoding="utf-8"))
    assert list(event) == ["event", "step", "loss", "timestamp"] and event["timestamp"] > 1.6e9


def test_missing_tracker_package_is_refused_early(tmp_path, tiny_sd1, monkeypatch):
    import importlib.util

    from trainer.errors import TrainError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    config = tiny_config(tiny_sd1, make_train_dataset(tmp_path / "ds", images=1), tmp_path / "out", log_with="wandb")
    with pytest.raises(TrainError, match=r"lorakit\[wandb\]"):
        run_training(config)


def test_wandb_offline_run_folder_under_logging_dir(tmp_path, tiny_sd1):
    """log_with = "wandb" with WANDB_MODE=offline: a local run folder, no network (wandb is an extra)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("wandb")
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    config = tmp_path / "train.toml"
    config.write_text("\n".join([f'pretrained_model = "{tiny_sd1}"', f'dataset = "{dataset}"',
                                 f'output_dir = "{tmp_path / "out"}"', f'logging_dir = "{tmp_path / "logs"}"',
                                 'log_with = "wandb"', 'resolution = "64"', "min_bucket_reso = 32",
                                 "bucket_reso_steps = 32", "network_dim = 4", "max_train_steps = 2"]) + "\n")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true",
           "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"), "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
           "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-m", "trainer", "--config", str(config), "--events", "-"],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [e["event"] for e in events][-1] == "done"
    runs = list((tmp_path / "logs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, sorted(p.name for p in (tmp_path / "logs").rglob("*"))[:20]
    (record,) = runs[0].glob("run-*.wandb")
    data = record.read_bytes()
    assert b"loss/current" in data and b"lr/" in data
    assert not (tmp_path / "wandb").exists()  # nothing beside the working folder
