"""Provenance on real files: the tagger's sources and confidences in .lorakit/tags.sqlite, hand edits
counted as user, undo keeping captions and store in step, and --rethreshold without the model."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prep.provenance import read_store, source_kind, store_path
from tests.conftest import write_image
from tests.tagger.conftest import tags_of
from tui.cli import main


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "ds"
    write_image(root / "3_red" / "red.png", (64, 64), (255, 120, 60))  # green 0.47, blue 0.24: mid confidences
    write_image(root / "3_red" / "blue.png", (64, 64), (0, 0, 255))
    return root


@pytest.fixture
def model(model_dir, tmp_path) -> Path:
    copy = tmp_path / "tiny-model"
    shutil.copytree(model_dir, copy)
    return copy


def rows(root: Path, image: str) -> dict[str, tuple[str, float | None]]:
    store = read_store(root)
    assert store is not None
    try:
        data = (root / image).with_suffix(".txt").read_bytes()
        return {t: (s.source, s.confidence) for t, s in store.sources(image, data).items()}
    finally:
        store.close()


def dump(root: Path) -> dict[str, list[tuple]]:
    """Every row of the store, sorted, table by table."""
    store = read_store(root)
    assert store is not None
    try:
        return {t: sorted(store.db.execute(f"SELECT * FROM {t}")) for t in ("tags", "captions", "predictions")}
    finally:
        store.close()


def test_tagger_records_sources_and_confidences(folder, model, tag_json):
    report = tag_json(folder, "--model", model)
    assert store_path(folder).is_file()
    found = rows(folder, "3_red/red.png")
    written = tags_of(report, "red.png")
    assert set(found) == set(written)
    for tag, p in written.items():
        assert found[tag][0] == f"tagger:{model}" and found[tag][1] == pytest.approx(p, abs=1e-6)


def test_hand_edit_counts_as_user_and_later_edits_keep_it(folder, model, tag_json):
    tag_json(folder, "--model", model)
    caption = folder / "3_red" / "red.txt"
    caption.write_text("my own tag, red", encoding="utf-8")  # edited outside lorakit
    assert {s for s, _ in rows(folder, "3_red/red.png").values()} == {"user"}
    tag_json(folder, "--model", model, "--mode", "merge")
    found = rows(folder, "3_red/red.png")
    assert found["my own tag"] == ("user", None) and found["red"] == ("user", None)
    assert any(source.startswith("tagger:") for source, _ in found.values())


def test_existing_caption_tags_are_user_and_undo_keeps_the_store_in_step(folder, model, tag_json):
    caption = folder / "3_red" / "red.txt"
    caption.write_bytes(b"scraped tag")
    tag_json(folder, "--model", model, "--mode", "append")
    first = dump(folder)
    assert first["tags"] and first["predictions"]
    assert rows(folder, "3_red/red.png")["scraped tag"] == ("user", None)
    tag_json(folder, "--model", model, "--mode", "overwrite", "--general-threshold", "0.99")
    assert dump(folder) != first
    assert main(["undo", str(folder)]) == 0
    assert dump(folder) == first  # every row of every table back, times included
    assert rows(folder, "3_red/red.png")["scraped tag"] == ("user", None)
    assert main(["undo", str(folder)]) == 0
    assert caption.read_bytes() == b"scraped tag" and not store_path(folder).exists()


def test_rethreshold_without_the_model(folder, model, tag_json, tag):
    caption = folder / "3_red" / "red.txt"
    caption.write_bytes(b"keep me")
    high = tag_json(folder, "--model", model, "--mode", "append", "--general-threshold", "0.9",
                    "--character-threshold", "0.99")
    before = set(tags_of(high, "red.png"))
    (model / "model.onnx").unlink()  # no model: the stored confidences are all there is
    out = tag_json(folder, "--model", model, "--rethreshold", "--general-threshold", "0.3",
                   "--character-threshold", "0.99")
    assert out["written"] >= 1
    text = caption.read_text(encoding="utf-8")
    tags = [t.strip() for t in text.split(",")]
    assert tags[0] == "keep me"  # the user's tag stays first, untouched
    assert before < set(tags[1:])  # a lower threshold adds tags
    found = rows(folder, "3_red/red.png")
    assert all(found[t][0] == f"tagger:{model}" and found[t][1] > 0.3 for t in tags[1:])
    # Back up: the tags below 0.95 go, the user's stays.
    tag_json(folder, "--model", model, "--rethreshold", "--general-threshold", "0.95", "--character-threshold", "1")
    assert caption.read_text(encoding="utf-8").split(", ")[0] == "keep me"
    assert main(["undo", str(folder)]) == 0
    assert [t.strip() for t in caption.read_text(encoding="utf-8").split(",")] == tags


def test_rethreshold_needs_a_store_and_ensemble_for_several_models(folder, model, tmp_path, tag_json, tag):
    code, _out, err = tag(folder, "--rethreshold")
    assert code == 1 and "tags.sqlite" in err
    other = tmp_path / "other-model"
    shutil.copytree(model, other)
    tag_json(folder, "--model", model)
    tag_json(folder, "--model", other, "--mode", "overwrite")
    code, _out, err = tag(folder, "--rethreshold")
    assert code == 1 and "--ensemble" in err
    out = tag_json(folder, "--rethreshold", "--ensemble", "max", "--general-threshold", "0.2")
    assert sorted(out["models"]) == sorted([str(model), str(other)])


def test_stats_by_source(folder, model, tag_json, capsys):
    (folder / "3_red" / "red.txt").write_bytes(b"red, scraped tag")
    tag_json(folder, "--model", model, "--mode", "merge")
    assert main(["tags", str(folder), "stats", "--by-source", "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    by_tag = {row["tag"]: row["sources"] for row in out["by_source"]}
    assert by_tag["scraped tag"] == {"user": 1}
    assert by_tag["red"] == {"user": 1}  # written by the user first: merge keeps it, and its source
    assert any(set(sources) == {"tagger"} for sources in by_tag.values())
    assert out["sources"]["user"] == 2 and out["sources"]["tagger"] >= 1


def test_where_source_and_confidence_pick_the_tags_removed(folder, model, tag_json):
    caption = folder / "3_red" / "red.txt"
    caption.write_bytes(b"my tag")
    report = tag_json(folder, "--model", model, "--mode", "append", "--general-threshold", "0.1")
    written = tags_of(report, "red.png")
    assert main(["tags", str(folder), "remove", "*", "--where", "source:tagger, confidence<0.4"]) == 0
    left = [t.strip() for t in caption.read_text(encoding="utf-8").split(",")]
    assert left[0] == "my tag"  # the user's tag is never picked
    assert set(left[1:]) == {t for t, p in written.items() if p >= 0.4}
    assert any(p < 0.4 for p in written.values())  # something was removed
    assert main(["tags", str(folder), "remove", "*", "--where", "-source:user"]) == 0
    assert caption.read_text(encoding="utf-8") == "my tag"
    assert main(["tags", str(folder), "add", "x", "--where", "source:tagger"]) == 0  # selects images: none left
    assert main(["tags", str(folder), "remove", "*", "--where", "source:robot"]) != 0  # unknown source kind


def test_store_is_updated_in_place_and_undo_of_tags_add_restores_its_rows(folder, model, tag_json):
    tag_json(folder, "--model", model)
    store_file = store_path(folder)
    inode = store_file.stat().st_ino
    before = dump(folder)
    assert main(["tags", str(folder), "add", "extra", "--where", "concept:3_red"]) == 0
    assert store_file.stat().st_ino == inode  # updated in place, not rewritten whole
    after = dump(folder)
    added = [row for row in after["tags"] if row not in before["tags"]]
    assert sorted((r[0], r[1], source_kind(r[2])) for r in added) == [("3_red/blue.png", "extra", "command"),
                                                                     ("3_red/red.png", "extra", "command")]
    unchanged = [row for row in before["tags"]]
    assert all(row in after["tags"] for row in unchanged)  # the other rows untouched, times included
    assert main(["undo", str(folder)]) == 0
    assert dump(folder) == before


def test_a_damaged_rows_record_is_refused_before_anything_changes(folder, model, tag_json, capsys):
    tag_json(folder, "--model", model)
    assert main(["tags", str(folder), "add", "extra"]) == 0
    caption = folder / "3_red" / "red.txt"
    written = caption.read_bytes()
    journal = folder / ".lorakit" / "journal"
    newest = sorted(p for p in journal.iterdir() if p.is_dir())[-1]
    import json as _json

    records = [_json.loads(line) for line in (newest / "entries.jsonl").read_text().splitlines()]
    rows = next(r for r in records if r["op"] == "rows")
    (newest / rows["blob"]).write_bytes(b'{"images": ["x"], "tags": [[1, 2]], "captions": [], "predictions": []}')
    capsys.readouterr()
    assert main(["undo", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "damaged" in err and "Traceback" not in err
    assert caption.read_bytes() == written  # nothing was undone


def test_fix_renaming_an_image_keeps_its_tags_sources_and_undo_puts_them_back(folder, model, tag_json):
    """`lorakit fix --rename-jpeg` moves red.jpeg to red.jpg: its tags keep the tagger as their
    source (the store is keyed by image; every tag read as `user` before), and undo restores the
    store row for row."""
    write_image(folder / "3_red" / "warm.jpeg", (64, 64), (255, 120, 60), fmt="JPEG")
    tag_json(folder, "--model", model)
    before, stored = rows(folder, "3_red/warm.jpeg"), dump(folder)
    assert before and {source for source, _ in before.values()} == {f"tagger:{model}"}
    assert main(["fix", str(folder), "--rename-jpeg"]) == 0
    assert (folder / "3_red" / "warm.jpg").is_file() and not (folder / "3_red" / "warm.jpeg").exists()
    assert rows(folder, "3_red/warm.jpg") == before
    assert not any(row[0] == "3_red/warm.jpeg" for row in dump(folder)["tags"])
    assert main(["undo", str(folder)]) == 0
    assert dump(folder) == stored
