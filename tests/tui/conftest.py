"""Workspaces with real images and captions, and a helper to wait on the app without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import write_caption, write_image
from tui.workspace import init_workspace

ALICE_CAPTIONS = ["alice, 1girl, hat, red hair", "alice, 1girl, hat, smile", "alice, 1girl, red hair, smile"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """An initialised workspace: 2_alice (3 captioned), 1_bob (one captioned, one not, one RGBA)."""
    root = tmp_path / "ws"
    init_workspace(root)
    dataset = root / "dataset"
    for i, text in enumerate(ALICE_CAPTIONS):
        write_image(dataset / "2_alice" / f"a{i}.png", (96, 80), (40 * i, 90, 160))
        write_caption(dataset / "2_alice" / f"a{i}.txt", text)
    write_image(dataset / "1_bob" / "b0.jpg", (80, 96), (10, 200, 10))
    write_caption(dataset / "1_bob" / "b0.txt", "bob, 1boy, hat")
    write_image(dataset / "1_bob" / "b1.png", (80, 96), (200, 10, 10))
    write_image(dataset / "1_bob" / "b2.png", (80, 96), (0, 0, 0, 0), mode="RGBA")
    write_caption(dataset / "1_bob" / "b2.txt", "bob, 1boy, transparent background")
    return root


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's tiny SD1 model (random weights, real diffusers format) for real trainer runs."""
    from trainer.tiny_model import build_tiny_sd1

    return build_tiny_sd1(tmp_path_factory.mktemp("models") / "tiny-sd1")


def tiny_train_table(workspace: Path, base: Path, steps: int, name: str, **extra) -> None:
    """[train] of the workspace set for a quick real run on the tiny model (64 px, dim 4, no mixed precision)."""
    from prep.toml_edit import update_table

    update_table(workspace / "lorakit.toml", "train", {
        "pretrained_model": str(base), "resolution": "64", "min_bucket_reso": 32, "max_bucket_reso": 128,
        "bucket_reso_steps": 32, "network_dim": 4, "network_alpha": 2.0, "max_train_steps": steps,
        "mixed_precision": "no", "output_name": name, **extra})


async def wait_until(pilot, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Let the app run until `condition()` holds (workers post from threads, so poll briefly)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


@pytest.fixture(autouse=True)
def halfcell_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Previews render as half-cell blocks in tests (no terminal to ask)."""
    monkeypatch.setenv("LORAKIT_IMAGES", "halfcell")


async def open_screen(pilot, key: str, screen_class: type):
    """Press a screen's key and wait until its workers have settled."""
    await pilot.press(key)
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, screen_class), type(screen)
    return screen


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
