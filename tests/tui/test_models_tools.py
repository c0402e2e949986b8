"""Models screen against the tiny SD1 base: info of a LoRA made for it, merge into a checkpoint and the
preview grid (the base without the LoRA, then with it at several weights) run from the app and shown
in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from textual.widgets import DataTable, Static

from tests.lora_tools.conftest import model_lora
from tests.tui.conftest import tiny_train_table, wait_until
from tui.app import make_app
from tui.screens.models import ModelsScreen, merged_path, preview_path

pytestmark = pytest.mark.asyncio


@pytest.mark.slow
async def test_merge_and_preview_grid_from_the_app(workspace: Path, tiny_base: Path):
    from safetensors import safe_open

    from trainer.lora_tools.preview import LABEL_HEIGHT

    tiny_train_table(workspace, tiny_base, steps=2, name="alice")
    lora = model_lora(tiny_base, workspace / "output" / "alice.safetensors", rank=4, scale=0.5)
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("8")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        table = screen.query_one("#lora-table", DataTable)
        await wait_until(pilot, lambda: screen.info is not None, timeout=120, what="lora info")
        assert "rank: 4" in str(screen.query_one("#lora-info", Static).render())

        await pilot.press("m")
        await wait_until(pilot, lambda: screen.written is not None, timeout=300, what="the merge")
        merged = merged_path(lora.resolve())
        assert Path(screen.written["out"]) == merged and merged.is_file()
        assert "merged into the base" in str(screen.query_one("#check-summary", Static).render())
        with safe_open(str(merged), "pt") as fh:  # a checkpoint with the UNet, not a LoRA
            keys = list(fh.keys())
        assert any(k.startswith("model.diffusion_model.") for k in keys) and not any("lora_" in k for k in keys)
        await wait_until(pilot, lambda: not screen.running, what="the job to end")
        assert table.row_count == 1  # the merged checkpoint is not listed as a LoRA

        await pilot.press("p")
        await wait_until(pilot, lambda: screen.preview is not None, timeout=300, what="the preview grid")
        grid = preview_path(lora.resolve())
        assert Path(screen.preview["out"]) == grid and screen.shown_image == grid
        weights = screen.preview["weights"]
        assert weights[0] == 0.0 and len(weights) >= 3  # without the LoRA, then several weights
        with Image.open(grid) as image:
            width, height = image.size
        cell = width // len(weights)
        assert cell * len(weights) == width and cell > 0 and height > 0
        with Image.open(grid) as image:  # the LoRA changes the picture (below the labels): the cells differ
            cells = [image.crop((i * cell, LABEL_HEIGHT, (i + 1) * cell, height)).tobytes()
                     for i in range(len(weights))]
        assert cells[0] != cells[-1]
        summary = str(screen.query_one("#check-summary", Static).render())
        assert "without the LoRA" in summary and str(grid) in summary
        await wait_until(pilot, lambda: screen.query_one("#models-image").loaded == grid, timeout=30,
                         what="the grid shown")
