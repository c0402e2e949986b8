"""Trainer fixtures: tiny SD1/SDXL pipelines (built once per session) and a small real dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_caption, write_image
from tests.tiny_models import build_tiny_sd1, build_tiny_sdxl


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd1(tmp_path_factory.mktemp("models") / "tiny-sd1")


@pytest.fixture(scope="session")
def tiny_sd2v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sd1(tmp_path_factory.mktemp("models") / "tiny-sd2v", v_prediction=True)


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sdxl(tmp_path_factory.mktemp("models") / "tiny-sdxl")


def make_train_dataset(root: Path, images: int = 2, repeats: int = 1, size: tuple[int, int] = (64, 64),
                       name: str = "chara") -> Path:
    """`root/<repeats>_<name>/` with captioned, distinctly coloured PNGs."""
    folder = root / f"{repeats}_{name}"
    for i in range(images):
        write_image(folder / f"img{i}.png", size, ((40 * i) % 256, 120, 200 - 30 * i))
        write_caption(folder / f"img{i}.txt", f"{name}, 1girl, tag{i}")
    return root


@pytest.fixture
def train_dataset(tmp_path: Path) -> Path:
    return make_train_dataset(tmp_path / "dataset")


TINY = {"resolution": "64", "min_bucket_reso": 32, "max_bucket_reso": 128, "bucket_reso_steps": 32,
        "network_dim": 4, "network_alpha": 2.0, "max_train_steps": 2}


def tiny_config(model: Path, dataset: Path, output: Path, **overrides):
    """A TrainConfig for a 64 px, few-step run on a tiny model."""
    from trainer.config import TrainConfig

    values = {**TINY, "pretrained_model": str(model), "dataset": dataset, "output_dir": output, **overrides}
    return TrainConfig(**values)


def run_training(config):
    """Train in-process; returns (final path, events)."""
    from trainer.run import train

    events: list[dict] = []
    path = train(config, events.append)
    return path, events
