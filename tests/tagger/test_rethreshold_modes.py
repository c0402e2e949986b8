"""`lorakit tag --rethreshold --mcut` and `--ensemble mean|max` on stored confidences: the model
folders are deleted first and onnxruntime may not open a session, so only the store can answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import onnxruntime
import pytest

from tests.conftest import write_image
from tests.tagger.conftest import tags_of
from tests.tagger.onnx_models import STANDARD, Feature, write_model_folder
from tui.cli import main

CHARS = ("hatsune_miku", "kaname_madoka")  # the STANDARD character rows


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "ds"
    write_image(root / "3_red" / "red.png", (64, 64), (255, 120, 60))
    write_image(root / "3_red" / "teal.png", (64, 64), (20, 200, 170))
    return root


def refuse_sessions(monkeypatch) -> None:
    """From here on, fail the test if anything opens an onnxruntime session."""

    def refuse(*args, **kwargs):
        raise AssertionError("an InferenceSession was created: --rethreshold must not load a model")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)


def general(report: dict, name: str) -> dict[str, float]:
    return {t: p for t, p in tags_of(report, name).items() if t not in CHARS}


def caption_tags(path: Path) -> list[str]:
    return [t.strip() for t in path.read_text(encoding="utf-8").split(",") if t.strip()]


def test_rethreshold_mcut_matches_a_live_mcut_run_without_the_model(folder, model_dir, tmp_path, tag_json,
                                                                      monkeypatch):
    model = tmp_path / "model-a"
    shutil.copytree(model_dir, model)
    live = tmp_path / "live"
    shutil.copytree(folder, live)
    # The oracle: the tagger itself choosing per image with MCut, model loaded.
    expected = tag_json(live, "--model", model, "--mcut", "--character-threshold", "0.99")
    # The store: a run at a low fixed threshold, then MCut from the stored confidences alone.
    low = tag_json(folder, "--model", model, "--general-threshold", "0.06", "--character-threshold", "0.99")
    shutil.rmtree(model)
    refuse_sessions(monkeypatch)
    out = tag_json(folder, "--model", model, "--rethreshold", "--mcut", "--character-threshold", "0.99")
    assert out["written"] == 2
    for name in ("red", "teal"):
        chosen = set(general(expected, f"{name}.png"))
        assert 0 < len(chosen) < len(general(low, f"{name}.png"))  # MCut cut the low run's list
        assert set(caption_tags(folder / "3_red" / f"{name}.txt")) == chosen
    # MCut by hand on the stored scores of red: the midpoint of the largest gap.
    scores = sorted(general(low, "red.png").values(), reverse=True)
    gap = max(range(len(scores) - 1), key=lambda i: scores[i] - scores[i + 1])
    cut = (scores[gap] + scores[gap + 1]) / 2
    assert set(caption_tags(folder / "3_red" / "red.txt")) == {t for t, p in general(low, "red.png").items() if p > cut}
    assert main(["undo", str(folder)]) == 0
    assert set(caption_tags(folder / "3_red" / "red.txt")) == set(tags_of(low, "red.png"))


@pytest.mark.parametrize("how", ["mean", "max"])
def test_ensemble_combines_two_models_stored_runs(folder, model_dir, tmp_path, tag_json, how, monkeypatch):
    first = tmp_path / "model-a"
    shutil.copytree(model_dir, first)
    # A second model that reads green and blue twice as strongly (its scores differ label by label).
    doubled = tuple(Feature(f.name, f.category, f.channel, f.region, scale=f.scale * 2, offset=f.offset)
                    if f.name in ("green", "blue", "center") else f for f in STANDARD)
    second = write_model_folder(tmp_path / "model-b", doubled)
    run_a = tag_json(folder, "--model", first, "--general-threshold", "0.0", "--character-threshold", "0.99")
    run_b = tag_json(folder, "--model", second, "--general-threshold", "0.0", "--character-threshold", "0.99",
                     "--mode", "overwrite")
    shutil.rmtree(first)
    shutil.rmtree(second)
    refuse_sessions(monkeypatch)
    threshold = 0.4
    out = tag_json(folder, "--rethreshold", "--ensemble", how, "--general-threshold", str(threshold),
                   "--character-threshold", "0.99")
    assert sorted(out["models"]) == sorted([str(first), str(second)])
    for name in ("red", "teal"):
        a, b = general(run_a, f"{name}.png"), general(run_b, f"{name}.png")
        combined = {t: (max(a.get(t, 0.0), b.get(t, 0.0)) if how == "max" else (a.get(t, 0.0) + b.get(t, 0.0)) / 2)
                    for t in set(a) | set(b)}
        assert all(abs(p - threshold) > 0.01 for p in combined.values())  # no score sits on the line
        expected = {t for t, p in combined.items() if p > threshold}
        assert set(caption_tags(folder / "3_red" / f"{name}.txt")) == expected
    # The two rules disagree somewhere on these images (else the test could not tell them apart).
    a, b = general(run_a, "red.png"), general(run_b, "red.png")
    assert any(max(a.get(t, 0), b.get(t, 0)) > threshold >= (a.get(t, 0) + b.get(t, 0)) / 2 for t in set(a) | set(b))


def test_rethreshold_dry_run_writes_nothing_and_counts(folder, model_dir, tmp_path, tag_json, monkeypatch):
    model = tmp_path / "model-a"
    shutil.copytree(model_dir, model)
    tag_json(folder, "--model", model, "--general-threshold", "0.9", "--character-threshold", "0.99")
    before = {p.name: p.read_bytes() for p in (folder / "3_red").glob("*.txt")}
    journal = sorted((folder / ".lorakit" / "journal").iterdir())
    refuse_sessions(monkeypatch)
    out = tag_json(folder, "--model", model, "--rethreshold", "--general-threshold", "0.1", "--dry-run")
    assert out["dry_run"] is True and out["would_write"] >= 1 and out["written"] == 0
    assert {p.name: p.read_bytes() for p in (folder / "3_red").glob("*.txt")} == before
    assert sorted((folder / ".lorakit" / "journal").iterdir()) == journal  # no journal entry either
    real = tag_json(folder, "--model", model, "--rethreshold", "--general-threshold", "0.1")
    assert real["written"] == out["would_write"] and real["dry_run"] is False
    changed = [name for name, data in before.items() if (folder / "3_red" / name).read_bytes() != data]
    assert len(changed) == real["written"]
