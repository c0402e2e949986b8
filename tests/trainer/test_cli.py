"""`lorakit train` / `python -m trainer`: config files, flags, errors before model loading, events,
export to kohya, SIGINT, and a two-process `torchrun` run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.trainer.conftest import TINY, make_train_dataset
from tui.cli import main as lorakit

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]


def _write_config(path: Path, model: Path, dataset: Path, output: Path, table: str | None = None, **extra) -> Path:
    values = {**TINY, "pretrained_model": str(model), "dataset": str(dataset), "output_dir": str(output), **extra}
    lines = [f"[{table}]"] if table else []
    for key, value in values.items():
        if value is not None:  # None: leave the key out (TOML has no null)
            lines.append(f"{key} = {json.dumps(value)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_unknown_key_suggests_the_field(tmp_path, capsys):
    config = tmp_path / "train.toml"
    config.write_text('netwrok_dim = 8\n', encoding="utf-8")
    assert lorakit(["train", "--config", str(config)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "netwrok_dim" in err and "did you mean 'network_dim'" in err


@pytest.mark.parametrize("flags,needle", [
    (["--network-dim", "0"], "network_dim"),
    (["--network_alpha", "-1"], "network_alpha"),
    (["--mixed-precision", "bf16"], "mixed_precision"),
    (["--mixed_precision", "fp16"], "mixed_precision"),
    (["--lr-scheduler", "constant", "--lr-warmup-ratio", "0.1"], "constant_with_warmup"),
    (["--cache-latents", "--random-crop"], "random_crop"),
    (["--train-unet-only", "--train-text-encoder-only"], "train_unet_only"),
])
def test_invalid_combinations_stop_before_model_loading(tmp_path, capsys, flags, needle):
    dataset = make_train_dataset(tmp_path / "ds")
    # The model does not exist: an error about it would mean the model was being loaded.
    code = lorakit(["train", "--pretrained-model", str(tmp_path / "no-model"), "--dataset", str(dataset),
                    "--resolution", "64", "--min-bucket-reso", "32", "--max-bucket-reso", "128", *flags])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and needle in err and "no-model" not in err


def test_rejected_dataset_stops_before_model_loading(tmp_path, capsys):
    dataset = make_train_dataset(tmp_path / "ds")
    (dataset / "stray.png").write_bytes((dataset / "1_chara" / "img0.png").read_bytes())  # image outside a concept
    (dataset / "notaconcept").mkdir()
    code = lorakit(["train", "--pretrained-model", str(tmp_path / "no-model"), "--dataset", str(dataset)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "validate" in err and "no-model" not in err


def test_config_table_flags_and_underscore_aliases(tmp_path):
    from trainer.config import load_config

    dataset = make_train_dataset(tmp_path / "ds")
    config_file = _write_config(tmp_path / "lorakit.toml", Path("model"), Path("ds"), Path("out"), table="train",
                                network_dim=8)
    # Other stages' tables in the same workspace file are ignored.
    config_file.write_text(config_file.read_text() + '\n[booru]\ntags = "x"\n', encoding="utf-8")
    import argparse

    from trainer.cli import add_train_arguments

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    args = parser.parse_args(["--config", str(config_file), "--network_alpha", "4", "--learning-rate", "2e-4",
                              "--optimizer_args", "weight_decay=0.1"])
    config = load_config(args.config, args)
    assert config.network_dim == 8 and config.network_alpha == 4.0 and config.learning_rate == 2e-4
    assert config.optimizer_args == ["weight_decay=0.1"]
    assert config.dataset == dataset  # relative to the config file's folder
    assert config.output_dir == tmp_path / "out"
    assert config.max_token_length == "auto" and config.caption_extension == ".txt"
    assert config.mixed_precision is None and config.network_alpha != 1


def test_guide_spellings_are_accepted(tmp_path):
    import argparse

    from trainer.cli import add_train_arguments
    from trainer.config import load_config

    config_file = tmp_path / "train.toml"
    config_file.write_text('num_epochs = 7\nscheduler = "cosine"\nshuffle_captions = true\n', encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    config = load_config(config_file, parser.parse_args([]))
    assert (config.max_train_epochs, config.lr_scheduler, config.shuffle_caption) == (7, "cosine", True)
    config = load_config(None, parser.parse_args(["--num_epochs", "3", "--scheduler", "linear"]))
    assert (config.max_train_epochs, config.lr_scheduler) == (3, "linear")


def test_workspace_train_table_without_config(tmp_path):
    import argparse

    from trainer.cli import add_train_arguments
    from trainer.config import load_config

    workspace = tmp_path / "ws"
    dataset = make_train_dataset(workspace / "dataset")
    (workspace / "lorakit.toml").write_text('[clean]\nx = 1\n[train]\nnetwork_dim = 12\noutput_dir = "output"\n',
                                            encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    config = load_config(None, parser.parse_args(["--dataset", str(dataset)]))
    assert config.network_dim == 12 and config.output_dir == workspace / "output" and config.dataset == dataset


def test_export_kohya(tmp_path, tiny_sd1, capsys):
    dataset = make_train_dataset(tmp_path / "ds", repeats=3)
    reg = make_train_dataset(tmp_path / "reg", name="person")
    config = _write_config(tmp_path / "train.toml", tiny_sd1, dataset, tmp_path / "out", reg_dataset=str(reg),
                           shuffle_caption=True, keep_tokens=1, conv_dim=4, lr_scheduler="cosine",
                           lr_warmup_ratio=0.1, max_train_epochs=5, clip_skip=2, max_token_length="150",
                           train_batch_size=2, gradient_checkpointing=True, optimizer_args=["weight_decay=0.1"])
    out = tmp_path / "kohya"
    assert lorakit(["train", "--config", str(config), "--export-kohya", str(out), "--network-dim", "16"]) == 0
    with open(out / "dataset_config.toml", "rb") as fh:
        ds = tomllib.load(fh)
    with open(out / "config_file.toml", "rb") as fh:
        cf = tomllib.load(fh)
    general = ds["general"]
    assert general["caption_extension"] == ".txt" and general["shuffle_caption"] is True and general["keep_tokens"] == 1
    (d,) = ds["datasets"]
    assert d["resolution"] == 64 and d["batch_size"] == 2 and d["enable_bucket"] is True
    assert (d["min_bucket_reso"], d["max_bucket_reso"], d["bucket_reso_steps"]) == (32, 128, 32)
    subsets = {Path(s["image_dir"]).name: s for s in d["subsets"]}
    assert subsets["3_chara"]["num_repeats"] == 3 and subsets["3_chara"]["class_tokens"] == "chara"
    assert subsets["3_chara"]["image_dir"] == str((dataset / "3_chara").resolve())
    assert subsets["1_person"]["is_reg"] is True and "is_reg" not in subsets["3_chara"]
    assert cf["pretrained_model_name_or_path"] == str(tiny_sd1)
    assert cf["dataset_config"] == str((out / "dataset_config.toml").resolve())
    assert cf["network_module"] == "networks.lora" and cf["network_dim"] == 16 and cf["network_alpha"] == 2.0
    assert cf["network_args"] == ["conv_dim=4", "conv_alpha=1.0"]
    assert cf["learning_rate"] == 1e-4 and cf["optimizer_type"] == "AdamW"
    assert cf["optimizer_args"] == ["weight_decay=0.1"]
    assert cf["lr_scheduler"] == "cosine" and cf["lr_warmup_steps"] == 0.1
    assert cf["max_train_epochs"] == 5 and cf["clip_skip"] == 2 and cf["max_token_length"] == 150
    assert cf["gradient_checkpointing"] is True and cf["save_precision"] == "fp16" and cf["seed"] == 42
    assert cf["output_name"] == "lora" and cf["save_model_as"] == "safetensors" and cf["prior_loss_weight"] == 1.0
    assert cf["mixed_precision"] in ("fp16", "bf16")  # kohya's default "no" would train in fp32


def test_export_kohya_lycoris_block_lr_and_defaults(tmp_path, tiny_sd1, capsys):
    dataset = make_train_dataset(tmp_path / "ds")
    config = _write_config(tmp_path / "train.toml", tiny_sd1, dataset, tmp_path / "out", network_type="loha", dora=True,
                           conv_dim=2, up_lr_weight="sine", max_train_steps=None)
    out = tmp_path / "kohya"
    assert lorakit(["train", "--config", str(config), "--export-kohya", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "not exported (no kohya equivalent): down/mid/up_lr_weight" in printed
    text = (out / "config_file.toml").read_text(encoding="utf-8")
    assert "# Not exported (no kohya equivalent): down/mid/up_lr_weight" in text
    cf = tomllib.loads(text)
    assert cf["network_module"] == "lycoris.kohya"
    assert cf["network_args"] == ["algo=loha", "conv_dim=2", "conv_alpha=2.0", "dora_wd=True"]
    assert cf["max_train_epochs"] == 10 and "max_train_steps" not in cf  # lorakit's default, written out
    # kohya's own LoRA takes the block weights as network_args.
    config = _write_config(tmp_path / "train2.toml", str(tiny_sd1), dataset, tmp_path / "out",
                           up_lr_weight="sine", mid_lr_weight="0.5", max_train_steps=None)
    assert lorakit(["train", "--config", str(config), "--export-kohya", str(out)]) == 0
    cf = tomllib.loads((out / "config_file.toml").read_text(encoding="utf-8"))
    assert cf["network_module"] == "networks.lora"
    assert cf["network_args"] == ["mid_lr_weight=0.5", "up_lr_weight=sine"]


def test_export_kohya_writes_every_issue16_option(tmp_path, tiny_sd1, tiny_sdxl, capsys):
    dataset = make_train_dataset(tmp_path / "ds")
    # SDXL (model_type auto, read from the folder): LyCORIS LoKr + DoRA, text-encoder cache, watching, masks.
    config = _write_config(tmp_path / "xl.toml", tiny_sdxl, dataset, tmp_path / "out", network_type="lokr",
                           lokr_factor=4, dora=True, conv_dim=2, cache_text_encoder_outputs_to_disk=True,
                           text_encoder_lr=0.0, validation_split=0.5, validation_seed=7, validate_every_n_steps=5,
                           log_with="tensorboard", masked_loss=True, alpha_mask=True, multires_noise_iterations=6,
                           multires_noise_discount=0.25, ip_noise_gamma=0.1, zero_terminal_snr=True,
                           v_parameterization=True, debiased_estimation_loss=True, min_snr_gamma=5.0,
                           ema_decay=0.99, save_best=True, down_lr_weight="sine", max_train_steps=None)
    out = tmp_path / "kohya-xl"
    assert lorakit(["train", "--config", str(config), "--export-kohya", str(out)]) == 0
    printed = capsys.readouterr().out
    text = (out / "config_file.toml").read_text(encoding="utf-8")
    assert "accelerate launch sdxl_train_network.py" in text
    for item in ("down/mid/up_lr_weight", "save_best", "overfit_patience = 3", "ema_decay/ema_on_cpu"):
        assert f"{item}" in text.splitlines()[2] and item in printed
    cf = tomllib.loads(text)
    ds = tomllib.loads((out / "dataset_config.toml").read_text(encoding="utf-8"))
    assert cf["network_module"] == "lycoris.kohya"
    assert cf["network_args"] == ["algo=lokr", "conv_dim=2", "conv_alpha=2.0", "factor=4", "dora_wd=True"]
    assert cf["cache_text_encoder_outputs"] is True and cf["cache_text_encoder_outputs_to_disk"] is True
    assert cf["network_train_unet_only"] is True  # kohya's condition for the text-encoder cache
    assert cf["masked_loss"] is True and ds["general"]["alpha_mask"] is True
    assert (cf["multires_noise_iterations"], cf["multires_noise_discount"], cf["ip_noise_gamma"]) == (6, 0.25, 0.1)
    assert cf["zero_terminal_snr"] is True and cf["v_parameterization"] is True
    assert cf["debiased_estimation_loss"] is True and cf["min_snr_gamma"] == 5.0
    assert (cf["validation_split"], cf["validation_seed"], cf["validate_every_n_steps"]) == (0.5, 7, 5)
    assert (ds["datasets"][0]["validation_split"], ds["datasets"][0]["validation_seed"]) == (0.5, 7)
    assert cf["log_with"] == "tensorboard" and cf["logging_dir"] == str((tmp_path / "out" / "logs").resolve())
    assert "clip_skip" not in cf
    # SD1: kohya's own LoRA with block-wise LRs and fp8_base; the SD1 text-encoder cache has no kohya twin.
    config = _write_config(tmp_path / "sd1.toml", tiny_sd1, dataset, tmp_path / "out", fp8_base=True,
                           down_lr_weight="cosine+0.5", mid_lr_weight="0.5", up_lr_weight="1,1,0", block_lr_zero_threshold=0.1,
                           cache_text_encoder_outputs=True, train_unet_only=True, log_with="tensorboard",
                           logging_dir=str(tmp_path / "tb"), max_train_steps=None)
    out = tmp_path / "kohya-sd1"
    assert lorakit(["train", "--config", str(config), "--export-kohya", str(out)]) == 0
    assert "not exported (no kohya equivalent): cache_text_encoder_outputs" in capsys.readouterr().out
    cf = tomllib.loads((out / "config_file.toml").read_text(encoding="utf-8"))
    assert cf["network_module"] == "networks.lora" and cf["fp8_base"] is True
    assert cf["network_args"] == ["down_lr_weight=cosine+0.5", "mid_lr_weight=0.5", "up_lr_weight=1,1,0",
                                  "block_lr_zero_threshold=0.1"]
    assert "cache_text_encoder_outputs" not in cf and cf["logging_dir"] == str((tmp_path / "tb").resolve())
    # An invalid run is refused, not exported.
    bad = _write_config(tmp_path / "bad.toml", tiny_sd1, dataset, tmp_path / "out", save_best=True)
    assert lorakit(["train", "--config", str(bad), "--export-kohya", str(tmp_path / "k3")]) == 1
    assert not (tmp_path / "k3").exists()


def test_export_kohya_model_path_is_absolute(tmp_path, tiny_sd1, monkeypatch):
    import shutil

    dataset = make_train_dataset(tmp_path / "ds")
    shutil.copytree(tiny_sd1, tmp_path / "model")
    monkeypatch.chdir(tmp_path)
    config = _write_config(tmp_path / "train.toml", tiny_sd1, dataset, tmp_path / "out")
    # A relative path given on the command line (relative to the working folder).
    assert lorakit(["train", "--config", str(config), "--pretrained-model", "model",
                    "--export-kohya", str(tmp_path / "k")]) == 0
    cf = tomllib.loads((tmp_path / "k" / "config_file.toml").read_text(encoding="utf-8"))
    assert cf["pretrained_model_name_or_path"] == str((tmp_path / "model").resolve())


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def test_events_on_stdout_via_lorakit(tmp_path, tiny_sd1):
    dataset = make_train_dataset(tmp_path / "ds")
    config = _write_config(tmp_path / "train.toml", tiny_sd1, dataset, tmp_path / "out")
    proc = subprocess.run([sys.executable, "-m", "tui", "train", "--config", str(config), "--events", "-"],
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["start", "step", "step", "save", "done"]
    assert all(next(iter(e)) == "event" for e in events)
    assert Path(events[-1]["path"]).is_file()
    # Every event carries the timestamp, last, in the order the events happened.
    stamps = [e["timestamp"] for e in events]
    assert all(list(e)[-1] == "timestamp" and isinstance(e["timestamp"], float) for e in events)
    assert stamps == sorted(stamps) and stamps[0] > 1.6e9


def test_an_error_event_in_the_events_file_carries_the_timestamp(tmp_path):
    from tui.trainer_run import describe_event, parse_event_line

    config = tmp_path / "bad.toml"
    config.write_text(f'[train]\npretrained_model = "m"\ndataset = "{tmp_path}"\nsave_best = true\n')
    events_file = tmp_path / "events.jsonl"
    proc = subprocess.run([sys.executable, "-m", "trainer", "--config", str(config), "--events", str(events_file)],
                          capture_output=True, text=True, env=_env(), timeout=120)
    assert proc.returncode == 1
    (line,) = events_file.read_text(encoding="utf-8").splitlines()
    event = parse_event_line(line)  # the TUI's reader takes the stamped event as it is
    assert list(event) == ["event", "message", "timestamp"] and event["timestamp"] > 1.6e9
    assert describe_event(event) == f"error: {event['message']}" and "save_best" in event["message"]


def test_sigint_saves_state_and_resume_finishes(tmp_path, tiny_sd1):
    dataset = make_train_dataset(tmp_path / "ds")
    config = _write_config(tmp_path / "train.toml", tiny_sd1, dataset, tmp_path / "out", max_train_steps=2000)
    events_file = tmp_path / "events.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "trainer", "--config", str(config), "--events", str(events_file)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    deadline = time.time() + 240
    while time.time() < deadline:
        if events_file.exists() and '"event": "step"' in events_file.read_text():
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    warning = [e for e in events if e["event"] == "warning" and "interrupted" in e["message"]]
    assert warning and "done" not in [e["event"] for e in events]
    step = max(e["step"] for e in events if e["event"] == "step")
    state = tmp_path / "out" / f"lora-step{step:08d}-state"
    assert (state / "train_state.json").is_file() and str(state) in warning[0]["message"]
    resumed = subprocess.run([sys.executable, "-m", "trainer", "--config", str(config), "--resume", str(state),
                              "--max-train-steps", str(step + 1), "--events", "-"],
                             capture_output=True, text=True, env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    steps = [json.loads(line)["step"] for line in resumed.stdout.splitlines() if '"step", "step"' in line]
    assert steps == [step + 1]


def test_two_processes_under_torchrun(tmp_path, tiny_sd1):
    """Several CPU processes through the existing engine: `torchrun --nproc_per_node 2 -m trainer`."""
    dataset = make_train_dataset(tmp_path / "ds", images=2)
    config = _write_config(tmp_path / "train.toml", tiny_sd1, dataset, tmp_path / "out")
    events_file = tmp_path / "events.jsonl"
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--standalone", "-m", "trainer", "--config", str(config),
                           "--events", str(events_file)],
                          capture_output=True, text=True, env=_env(), timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    start = events[0]
    assert start["event"] == "start" and start["processes"] == 2
    assert start["steps_per_epoch"] == 1  # two batches shared by two processes
    assert [e["event"] for e in events].count("save") == 1
    assert [e["event"] for e in events].count("done") == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["lora.safetensors"]
