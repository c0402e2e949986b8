"""`lorakit lora preview` and `lorakit reg generate` with the tiny SD1 pipeline on CPU."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.lora_tools.conftest import model_lora
from trainer.lora_tools.pipelines import load_pipeline
from trainer.lora_tools.preview import LABEL_HEIGHT, render_preview
from trainer.lora_tools.reg_images import concept_folder_name
from tui.cli import main


@pytest.fixture(scope="module")
def sd1_pipe(tiny_sd1: Path):
    return load_pipeline(tiny_sd1)


def finished(events):
    from prep.events import Finished

    return next(e.summary for e in events if isinstance(e, Finished))


def test_preview_grid_shows_effect(tiny_sd1: Path, sd1_pipe, tmp_path: Path, capsys):
    lora = model_lora(tiny_sd1, tmp_path / "a.safetensors", scale=0.5)
    summary = finished(render_preview(tiny_sd1, lora, "a photo", weights=[0.5, 1.0], steps=2, seed=3,
                                      pipe=sd1_pipe))
    weights = [w for w, _ in summary["images"]]
    assert weights == [0.0, 0.5, 1.0]
    arrays = [np.asarray(img, dtype=np.float32) for _, img in summary["images"]]
    # without the LoRA = the plain pipeline with the same seed
    import torch

    plain = sd1_pipe("a photo", num_inference_steps=2, width=64, height=64,
                     generator=torch.Generator().manual_seed(3)).images[0]
    assert np.abs(arrays[0] - np.asarray(plain, dtype=np.float32)).max() <= 1
    assert np.abs(arrays[2] - arrays[0]).mean() > 1  # the LoRA changes the image
    assert summary["grid"].size == (3 * 64, 64 + LABEL_HEIGHT)
    assert not sd1_pipe.get_list_adapters().get("unet")  # the pipeline is left clean

    out = tmp_path / "grid.png"
    assert main(["lora", "preview", "--base", str(tiny_sd1), "--lora", f"{lora}:0.8", "--prompt", "a photo",
                 "--steps", "1", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weights"] == [0.0, 0.4, 0.8]
    assert Image.open(out).size == (3 * 64, 64 + LABEL_HEIGHT)


def test_preview_refuses_wrong_architecture(tiny_sd1: Path, tiny_sdxl: Path, tmp_path: Path, capsys):
    xl = model_lora(tiny_sdxl, tmp_path / "xl.safetensors")
    capsys.readouterr()
    assert main(["lora", "preview", "--base", str(tiny_sd1), "--lora", str(xl), "--prompt", "x",
                 "--steps", "1", "--out", str(tmp_path / "g.png")]) == 1
    assert "SDXL LoRA" in capsys.readouterr().err


def test_concept_folder_name():
    assert concept_folder_name("photo of a man") == "1_photo of a man"
    assert concept_folder_name("  a/b: (c) ") == "1_a b c"


def test_reg_generate_counts_workspace_dataset_and_resumes(tiny_sd1: Path, tmp_path: Path, make_image,
                                                            monkeypatch, capsys):
    workspace = tmp_path / "ws"
    for i in range(3):
        make_image(workspace / "dataset" / "5_john" / f"{i}.png")
    (workspace / "lorakit.toml").write_text("[reg]\nsteps = 1\nsize = \"64,64\"\n")
    monkeypatch.chdir(workspace)
    assert main(["reg", "generate", "--base", str(tiny_sd1), "--prompt", "photo of a man", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    folder = workspace / "reg" / "1_photo of a man"
    assert summary == {"folder": str(folder), "count": 3, "existing": 0, "generated": 3}
    assert sorted(p.name for p in folder.iterdir()) == ["00000.png", "00000.txt", "00001.png", "00001.txt",
                                                        "00002.png", "00002.txt"]
    assert (folder / "00001.txt").read_text() == "photo of a man"
    first = np.asarray(Image.open(folder / "00002.png"))

    # resumable: a lost image is made again with its own seed, existing ones are kept, numbering continues
    (folder / "00002.png").unlink()
    (folder / "00002.txt").unlink()
    assert main(["reg", "generate", "--base", str(tiny_sd1), "--prompt", "photo of a man", "--count", "5"]) == 0
    assert "2 kept, 3 generated, 5 wanted" in capsys.readouterr().out
    assert sorted(p.name for p in folder.glob("*.png")) == [f"0000{i}.png" for i in (0, 1, 2, 3, 4)]
    assert np.array_equal(np.asarray(Image.open(folder / "00002.png")), first)
    assert main(["reg", "generate", "--base", str(tiny_sd1), "--prompt", "photo of a man", "--count", "4"]) == 0
    assert "0 generated" in capsys.readouterr().out


def test_reg_generate_needs_count_without_workspace(tiny_sd1: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["reg", "generate", "--base", str(tiny_sd1), "--prompt", "photo of a man"]) == 1
    assert "--count" in capsys.readouterr().err
    assert main(["reg", "generate", "--prompt", "photo of a man", "--count", "1"]) == 1
    assert "--base" in capsys.readouterr().err
