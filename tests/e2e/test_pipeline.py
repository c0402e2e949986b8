"""The whole road on real files: scrape -> tag -> clean -> validate -> train -> lora check -> undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from prep.captions import read_caption
from tests.booru.emulator import Emulator, FakePost
from tests.conftest import write_image
from tests.tagger.onnx_models import write_model_folder
from tests.tiny_models import build_tiny_sd1
from tui.cli import main


def _json(capsys: pytest.CaptureFixture[str], argv: list[str], expect: int = 0) -> dict:
    capsys.readouterr()
    code = main(argv)
    captured = capsys.readouterr()
    assert code == expect, captured.err
    return json.loads(captured.out)


def test_scrape_tag_clean_validate_train_check_undo(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setenv("LORAKIT_BOORU_BACKOFF", "0.01")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    dataset = tmp_path / "workspace" / "dataset"
    posts = [
        FakePost(900 - i, width=64, height=64, noise=True,
                 tags={"character": ["shiina_mayuri"], "copyright": ["steins;gate"],
                       "general": ["1girl", "short_hair", f"pose_{i}", "^_^"]})
        for i in range(4)
    ]
    emu = Emulator("danbooru", posts).start()
    try:
        scraped = _json(capsys, ["scrape", "--site", "danbooru", "--base-url", emu.base_url, "--tags", "shiina_mayuri",
                                 "--limit", "3", "--out", str(dataset), "--concept", "mayuri", "--repeats", "5",
                                 "--rate", "1000", "--json"])
    finally:
        emu.stop()
    assert scraped["downloaded"] == 3 and scraped["failed"] == 0
    concept = dataset / "5_mayuri"
    first = concept / "danbooru_900.txt"
    assert read_caption(first) == ["shiina mayuri", "steins;gate", "1girl", "short hair", "pose 0", "^_^"]

    # A raw image of the user's own, without tags: the tagger captions it and skips the scraped ones.
    write_image(concept / "own.png", (64, 64), (250, 20, 20))
    model = write_model_folder(tmp_path / "wd14")
    tagged = _json(capsys, ["tag", str(dataset), "--model", str(model), "--json"])
    assert tagged["written"] == 1 and tagged["skipped"] == 3
    assert "red" in read_caption(concept / "own.txt")

    cleaned = _json(capsys, ["clean", str(dataset), "--trigger", "mayuri_lk", "--remove-name", "shiina mayuri",
                             "--remove", "pose *", "--json"])
    assert cleaned["changed"] == 4
    assert read_caption(first) == ["mayuri_lk", "steins;gate", "1girl", "short hair", "^_^"]

    report = _json(capsys, ["validate", str(dataset), "--epochs", "2", "--batch-size", "2", "--json"])
    assert report["ok"] and report["images"] == 4 and report["captioned"] == 4
    assert report["steps_per_epoch"] == 10 and report["total_steps"] == 20

    base = build_tiny_sd1(tmp_path / "tiny-sd1")
    events_file = tmp_path / "events.jsonl"
    capsys.readouterr()
    code = main(["train", "--pretrained-model", str(base), "--dataset", str(dataset), "--output-dir",
                 str(tmp_path / "out"), "--output-name", "mayuri", "--resolution", "64", "--min-bucket-reso", "32",
                 "--max-bucket-reso", "128", "--bucket-reso-steps", "32", "--network-dim", "4",
                 "--network-alpha", "2", "--max-train-steps", "2", "--keep-tokens", "1", "--shuffle-caption",
                 "--events", str(events_file)])
    assert code == 0, capsys.readouterr().err
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"
    lora = Path(events[-1]["path"])
    assert lora == tmp_path / "out" / "mayuri.safetensors"
    with safe_open(str(lora), "pt") as fh:
        meta = fh.metadata()
    assert json.loads(meta["ss_dataset_dirs"]) == {"5_mayuri": {"n_repeats": 5, "img_count": 4}}
    assert json.loads(meta["ss_tag_frequency"])["5_mayuri"]["mayuri_lk"] == 4

    checked = _json(capsys, ["lora", "check", str(lora), "--json"])
    assert checked["ok"] and checked["modules"] > 0 and not checked["nonfinite"]

    # Undo walks back clean, then the tagging run: the scraped caption is as downloaded again.
    assert main(["undo", str(dataset)]) == 0
    assert read_caption(first)[0] == "shiina mayuri"
    assert main(["undo", str(dataset)]) == 0
    assert not (concept / "own.txt").exists()
