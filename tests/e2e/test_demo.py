"""`lorakit demo` end to end: a real process builds the workspace and every stage runs; its LoRA loads
in diffusers on the demo base and changes what the UNet predicts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from prep.config import read_toml


def _run_demo(folder: Path, *args: str):
    import subprocess

    env = dict(os.environ, OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-m", "tui", "demo", str(folder), *args], capture_output=True, text=True,
                          env=env, timeout=900)


async def _visit_the_app(folder: Path, lora: Path, steps: int) -> None:
    from textual.widgets import Static

    from tui.app import make_app
    from tui.screens import SCREENS
    from tui.screens.models import ModelsScreen
    from tui.screens.train import TrainScreen

    app = make_app(folder)
    async with app.run_test(size=(120, 36)) as pilot:
        for spec in SCREENS:
            await pilot.press(spec.key)
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.screen.title == f"lorakit — {spec.title}"
            if isinstance(app.screen, TrainScreen):
                train = app.screen
                assert [s for s, _ in train.losses] == list(range(1, steps + 1))
                assert str(train.query_one("#train-status", Static).render()).endswith("finished")
                assert train.plot_updates >= 1 and not train.running
            if isinstance(app.screen, ModelsScreen):
                assert lora.resolve() in app.screen.files


@pytest.mark.slow
def test_demo_runs_the_whole_road_and_its_lora_changes_the_unet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LORAKIT_IMAGES", "halfcell")  # no terminal to ask in a test
    folder = tmp_path / "lorakit-demo"
    proc = _run_demo(folder, "--steps", "6", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"workspace", "base_model", "lora", "images", "steps", "stages"}
    assert Path(result["workspace"]) == folder.resolve()
    assert result["steps"] == 6 and result["images"] >= 16
    names = [s["name"] for s in result["stages"]]
    assert names == ["workspace", "models", "tag", "clean", "concept", "validate", "fix", "train", "check"]
    for stage in result["stages"]:
        assert set(stage) == {"name", "seconds", "summary"}
        assert isinstance(stage["seconds"], float) and stage["summary"]
    by_name = {s["name"]: s["summary"] for s in result["stages"]}
    assert by_name["validate"] == f"{result['images']} images, 0 error(s), 1 warning(s) (has-alpha)"  # planted...
    assert by_name["fix"] == "fixed has-alpha 1; validate now 0 error(s), 0 warning(s)"  # ...and repaired
    assert by_name["check"].startswith("ok")

    # Two concept folders, every image captioned (the tagger wrote the missing ones), trigger first.
    dataset = folder / "dataset"
    concepts = sorted(p.name for p in dataset.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(concepts) == 2
    config = read_toml(folder / "lorakit.toml")
    trigger = config["concept"]["trigger"]
    images = list(dataset.glob("*/*.png"))
    assert len(images) == result["images"]
    for image in images:
        assert image.with_suffix(".txt").read_text().startswith(trigger + ", "), image
    # Every table the demo used, pointing at the demo models inside the workspace.
    assert {"tagger", "clean", "concept", "validate", "fix", "train"} <= set(config)
    assert (folder / config["tagger"]["model"]).resolve() == folder.resolve() / "models" / "demo-tagger"
    assert config["train"]["keep_tokens"] == 1 and config["train"]["shuffle_caption"] is True
    assert (folder / config["train"]["pretrained_model"]).resolve() == Path(result["base_model"])
    assert "DEMO MODEL" in (Path(result["base_model"]) / "DEMO-MODEL.txt").read_text()
    assert list((folder / ".lorakit" / "runs").glob("*.jsonl"))

    import torch
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(result["base_model"], safety_checker=None)
    torch.manual_seed(0)
    latents = torch.randn(1, 4, 8, 8)
    ids = pipe.tokenizer([f"{trigger}, circle"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        text = pipe.text_encoder(ids)[0]
        before = pipe.unet(latents, 500, encoder_hidden_states=text).sample
        pipe.load_lora_weights(result["lora"])
        after = pipe.unet(latents, 500, encoder_hidden_states=text).sample
    assert torch.isfinite(after).all()
    assert (after - before).abs().max() > 1e-4

    # What `--tui` opens: every screen opens on the finished workspace; Train shows the finished run
    # with its loss curve (every step), Models lists the LoRA.
    import asyncio

    asyncio.run(_visit_the_app(folder, Path(result["lora"]), result["steps"]))

    # Running the demo again rebuilds its own workspace (only the demo's files); a folder of someone's
    # files is refused and left as it was.
    from tui.demo_pipeline import prepare_folder

    (folder / "notes.txt").write_text("mine")
    assert prepare_folder(folder) == folder.resolve()
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("precious")
    refused = _run_demo(other)
    assert refused.returncode == 1 and "not a demo workspace" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert (other / "keep.txt").read_text() == "precious" and len(list(other.iterdir())) == 1
