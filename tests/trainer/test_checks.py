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
