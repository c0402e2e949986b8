"""Models screen: the workspace's LoRA files, their metadata, the check with its per-block chart, resize,
and the run's sample images (real LoRA files written with safetensors)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from tests.conftest import write_image
from tests.lora_tools.conftest import KOHYA_METADATA, sd1_modules, write_lora
from tests.tui.conftest import wait_until
from tui.app import make_app
from tui.screens.models import ModelsScreen, block_of


def test_block_labels():
    assert block_of("lora_unet_down_blocks_1_attentions_0_proj_in") == "down1"
    assert block_of("lora_unet_mid_block_attentions_0_proj_out") == "mid"
    assert block_of("lora_te_text_model_encoder_layers_0_mlp_fc1") == "te"
    assert block_of("lora_te2_text_model_encoder_layers_3_mlp_fc1") == "te2"


@pytest.mark.asyncio
async def test_lists_checks_resizes_and_shows_samples(workspace: Path):
    output = workspace / "output"
    lora = write_lora(output / "alice.safetensors", sd1_modules(rank=4), KOHYA_METADATA)
    sample = write_image(output / "sample" / "alice_000010_00_20260101.png", (64, 64), (200, 0, 0))
    elsewhere = workspace.parent / "runs-elsewhere"  # a queued job's own output folder
    bob = write_lora(elsewhere / "bob.safetensors", sd1_modules(rank=2), KOHYA_METADATA)
    os.utime(bob, (1, 1))
    from trainer.config import TrainConfig
    from trainer.queue import JobQueue

    JobQueue(workspace).add(TrainConfig(pretrained_model="org/model", dataset=workspace / "dataset",
                                        output_dir=elsewhere, output_name="bob-next"))
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("8")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ModelsScreen) and app.screen.title == "lorakit — Models"
        table = screen.query_one("#lora-table", DataTable)
        assert table.row_count == 2 and screen.files == [lora.resolve(), bob.resolve()]  # newest first
        await wait_until(pilot, lambda: screen.info is not None, timeout=60, what="lora info")
        assert "rank: 4" in str(screen.query_one("#lora-info", Static).render())
        assert screen.shown_image == sample  # the run's newest sample
        await pilot.press("c")
        await wait_until(pilot, lambda: screen.check_report is not None, timeout=60, what="the check")
        assert screen.check_report["modules"] > 0
        assert str(screen.query_one("#check-summary", Static).render()).startswith("ok")
        await pilot.press("z")
        await wait_until(pilot, lambda: table.row_count == 3, timeout=60, what="the resized file")
        assert (output / "alice-r2.safetensors").is_file()
