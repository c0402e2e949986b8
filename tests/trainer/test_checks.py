"""The config checks: they only report (per field), a separate step applies the defaults, and a config
mistake is reported before torch is imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainer.checks import DeviceInfo, apply_defaults, check_config, config_problems
from trainer.config import TrainConfig
from trainer.errors import TrainError

CPU = DeviceInfo(cuda=False, bf16=False)


def _config(tmp_path: Path, **values) -> TrainConfig:
    return TrainConfig(pretrained_model="model", dataset=tmp_path, **values)


def test_problems_name_their_field_and_change_nothing(tmp_path: Path):
    config = _config(tmp_path, resolution="500", network_dim=0, cache_latents_to_disk=True, mixed_precision="fp16")
    before = config.to_dict()
    problems = config_problems(config, CPU)
    assert config.to_dict() == before  # report only
    by_field = {p.field: p for p in problems}
    assert by_field["resolution"].message == "resolution 500 must be a multiple of 8"
    assert by_field["network_dim"].is_error
    assert by_field["mixed_precision"].message.startswith("mixed_precision = fp16 needs a GPU")
    assert by_field["cache_latents"].severity == "warning"
    # Without a device the machine's checks are left out (the form validates without knowing the GPU).
    assert "mixed_precision" not in {p.field for p in config_problems(config)}
    assert {p.field for p in config_problems(_config(tmp_path, resolution="abc"))} == {"resolution"}


def test_apply_defaults_is_the_separate_step(tmp_path: Path):
    config = _config(tmp_path, cache_latents_to_disk=True)
    assert config_problems(config, CPU)[0].field == "cache_latents" and not config.cache_latents
    apply_defaults(config)
    assert config.cache_latents
    warnings = check_config(_config(tmp_path, cache_latents_to_disk=True), CPU)
    assert warnings == ["cache_latents_to_disk implies cache_latents; caching latents"]
    with pytest.raises(TrainError, match="random_crop"):
        check_config(_config(tmp_path, cache_latents_to_disk=True, random_crop=True), CPU)


def test_guess_without_torch_never_rejects_a_gpu_machine():
    guess = DeviceInfo.guess()
    assert not guess.known
    if Path("/dev/nvidia0").exists():
        assert guess.cuda


def test_a_config_error_is_reported_before_torch_is_imported(tmp_path: Path):
    config = tmp_path / "bad.toml"
    config.write_text(f'[train]\npretrained_model = "m"\ndataset = "{tmp_path}"\nresolution = "500"\n')
    script = ("import sys\nfrom trainer.cli import main\ncode = main(['--config', sys.argv[1]])\n"
              "print('torch' in sys.modules, 'diffusers' in sys.modules, code)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(config)], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False", "1"], proc.stderr
    assert proc.stderr.strip() == "trainer: error: resolution 500 must be a multiple of 8"


# Each issue-16 option mistake: (config lines, the message's start). All are refused by `lorakit train`
# before torch is imported (one subprocess runs every case).
FEATURE_MISTAKES = [
    ({"cache_text_encoder_outputs": True, "train_unet_only": True, "shuffle_caption": True},
     "cache_text_encoder_outputs is not possible: shuffle_caption"),
    ({"cache_text_encoder_outputs": True, "train_unet_only": True, "caption_dropout_rate": 0.1},
     "cache_text_encoder_outputs is not possible: caption_dropout_rate"),
    ({"cache_text_encoder_outputs_to_disk": True}, "cache_text_encoder_outputs is not possible: the text encoder"),
    ({"fp8_base": True, "network_type": "loha"}, "fp8_base works with network_type = lora or locon"),
    ({"fp8_base": True, "network_type": "lokr"}, "fp8_base works with"),
    ({"fp8_base": True, "dora": True}, "fp8_base works with"),
    ({"network_type": "loha", "network_dropout": 0.1}, "network_dropout is not implemented by LyCORIS for loha"),
    ({"network_type": "lokr", "lokr_factor": 0}, "lokr_factor must be -1 or a positive number"),
    ({"down_lr_weight": "sinus"}, "down_lr_weight = 'sinus': give 12 comma-separated numbers or a preset"),
    ({"up_lr_weight": "1,2,x"}, "up_lr_weight = '1,2,x': give 12 comma-separated numbers"),
    ({"model_type": "sd1", "mid_lr_weight": "1,1"}, "mid_lr_weight has 2 values; this model (SD 1.x/2.x) has 1"),
    ({"model_type": "sdxl", "down_lr_weight": ",".join(["1"] * 12)}, "down_lr_weight has 12 values; this model (SDXL) has 9"),
    ({"down_lr_weight": ",".join(["1"] * 13)}, "down_lr_weight has 13 values; this model has 12"),
    ({"validation_split": 1.5}, "validation_split must be in [0, 1), not 1.5"),
    ({"save_best": True}, "save_best keeps the file with the lowest validation loss, but there is no validation"),
    ({"masked_loss": True}, "masked_loss needs masks"),
    ({"masked_loss": True, "mask_dir": "no-such-masks"}, "mask_dir "),
    ({"multires_noise_discount": 0.0}, "multires_noise_discount must be in (0, 1]"),
    ({"ip_noise_gamma": -0.1}, "ip_noise_gamma must not be negative"),
    ({"ema_decay": 1.5}, "ema_decay must be between 0 and 1"),
    ({"validation_dataset": "no-such-folder"}, "validation_dataset "),
]


@pytest.mark.parametrize(("values", "message"), FEATURE_MISTAKES)
def test_feature_mistakes_are_config_problems_with_their_field(tmp_path: Path, values, message):
    values = {k: (tmp_path / v if k in ("mask_dir", "validation_dataset") else v) for k, v in values.items()}
    config = _config(tmp_path, **values)
    before = config.to_dict()
    errors = [p for p in config_problems(config) if p.is_error]
    assert config.to_dict() == before
    assert errors and errors[0].message.startswith(message), errors
    assert errors[0].field in set(values) | {"cache_text_encoder_outputs"}


def test_feature_mistakes_are_refused_before_torch_is_imported(tmp_path: Path):
    import tomlkit

    files = []
    for i, (values, _message) in enumerate(FEATURE_MISTAKES):
        table = {"pretrained_model": "m", "dataset": str(tmp_path), **values}
        path = tmp_path / f"case{i}.toml"
        path.write_text(tomlkit.dumps({"train": table}), encoding="utf-8")
        files.append(str(path))
    script = ("import sys\nfrom trainer.cli import main\n"
              "codes = [main(['--config', f]) for f in sys.argv[1:]]\n"
              "print('torch' in sys.modules, 'diffusers' in sys.modules, *codes)\n")
    proc = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["False", "False"] + ["1"] * len(files), proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == len(files)
    for line, (_values, message) in zip(lines, FEATURE_MISTAKES, strict=True):
        assert line.startswith(f"trainer: error: {message}"), line


def test_feature_warnings_and_a_wandb_check_without_importing_it(tmp_path: Path, monkeypatch):
    config = _config(tmp_path, alpha_mask=True, logging_dir=tmp_path / "logs", validate_every_n_steps=5,
                     zero_terminal_snr=True, v_parameterization=False, ema_on_cpu=True)
    warnings = {p.field for p in config_problems(config) if not p.is_error}
    assert {"masked_loss", "logging_dir", "validate_every_n_steps", "zero_terminal_snr", "ema_on_cpu"} <= warnings
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    problems = config_problems(_config(tmp_path, log_with="wandb"))
    assert [p.message for p in problems if p.field == "log_with"] == [
        "log_with = wandb needs the wandb package: pip install 'lorakit[wandb]'"]


def test_block_weight_counts_follow_the_model_folder(tmp_path: Path):
    model = tmp_path / "xl"
    model.mkdir()
    (model / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}', encoding="utf-8")
    config = TrainConfig(pretrained_model=str(model), dataset=tmp_path, mid_lr_weight="1,1,1")
    assert not [p for p in config_problems(config) if p.is_error]
    config.up_lr_weight = ",".join(["0.5"] * 10)
    assert [p.message for p in config_problems(config) if p.is_error] == [
        "up_lr_weight has 10 values; this model (SDXL) has 9 such blocks"]
