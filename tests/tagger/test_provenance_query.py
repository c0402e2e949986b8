"""source:/confidence query terms through every query user, on a real dataset with booru, user and
tagger tags (tiny real ONNX tagger, booru sources written through the journal as the scraper does)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from prep.journal import Journal
from prep.provenance import note_sources, read_store
from tests.conftest import write_image
from tests.tagger.conftest import tags_of
from tui.cli import main


@pytest.fixture
def dataset(model_dir, tmp_path, tag_json) -> tuple[Path, dict[str, float], dict[str, float]]:
    """3_red/red: user + booru + tagger tags; 3_red/blue: tagger tags only; 2_gray/gray: booru only."""
    root = tmp_path / "ds"
    write_image(root / "3_red" / "red.png", (64, 64), (255, 120, 60))
    write_image(root / "3_red" / "blue.png", (64, 64), (0, 0, 255))
    write_image(root / "2_gray" / "gray.png", (64, 64), (128, 128, 128))
    (root / "3_red" / "red.txt").write_bytes(b"my tag")  # written by hand
    with Journal(root).begin("scrape") as op:  # what booru/saving.py does for a post
        for rel, tags in (("3_red/red.txt", ["my tag", "booru tag"]), ("2_gray/gray.txt", ["booru tag", "gray"])):
            note_sources(op, root / rel, {t: ("booru:danbooru:7", None) for t in tags if t != "my tag"})
            op.write_caption(root / rel, tags)
    model = tmp_path / "tiny-model"
    shutil.copytree(model_dir, model)
    # Tag only concept 3_red: gray keeps its booru tags only.
    (root / "2_gray").rename(tmp_path / "gray-aside")
    report = tag_json(root, "--model", model, "--mode", "append", "--general-threshold", "0.1",
                      "--character-threshold", "0.99")
    (tmp_path / "gray-aside").rename(root / "2_gray")
    red, blue = tags_of(report, "red.png"), tags_of(report, "blue.png")
    assert any(p < 0.4 for p in red.values()) and any(p >= 0.4 for p in red.values())
    return root, red, blue


def cli_json(capsys, *args: str) -> dict:
    capsys.readouterr()
    code = main([*args, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def tags(path: Path) -> list[str]:
    return [t.strip() for t in path.read_text(encoding="utf-8").split(",") if t.strip()]


def test_issue_example_removes_exactly_the_unsure_tagger_tags(dataset, capsys):
    root, red, blue = dataset
    before = {p: tags(root / p) for p in ("3_red/red.txt", "3_red/blue.txt", "2_gray/gray.txt")}
    where = "source:tagger, confidence<0.4"
    dry = cli_json(capsys, "tags", str(root), "remove", "*", "--where", where, "--dry-run")
    assert {p: tags(root / p) for p in before} == before  # the dry run wrote nothing
    out = cli_json(capsys, "tags", str(root), "remove", "*", "--where", where)
    assert out["changed"] == dry["changed"] >= 1
    assert tags(root / "3_red/red.txt") == ["my tag", "booru tag"] + [t for t in red if red[t] >= 0.4]
    assert tags(root / "3_red/blue.txt") == [t for t in blue if blue[t] >= 0.4]
    assert tags(root / "2_gray/gray.txt") == ["booru tag", "gray"]
    # The store followed: what is left keeps its source and confidence.
    store = read_store(root)
    assert store is not None
    try:
        data = (root / "3_red/red.txt").read_bytes()
        found = {t: (s.source.split(":")[0], s.confidence) for t, s in store.sources("3_red/red.png", data).items()}
    finally:
        store.close()
    assert found["my tag"] == ("user", None) and found["booru tag"] == ("booru", None)
    assert all(found[t][0] == "tagger" and found[t][1] >= 0.4 for t in red if red[t] >= 0.4)
    assert main(["undo", str(root)]) == 0
    assert {p: tags(root / p) for p in before} == before


def test_find_and_stats_honour_source_and_confidence(dataset, capsys):
    root, red, blue = dataset

    def found(query: str) -> set[str]:
        out = cli_json(capsys, "tags", str(root), "find", query)
        assert out["count"] == len(out["items"])
        return {Path(item["image"]).name for item in out["items"]}

    assert found("source:booru") == {"red.png", "gray.png"}
    assert found("source:tagger") == {"red.png", "blue.png"}
    assert found("source:user") == {"red.png"}
    assert found("source:booru, -concept:2_gray") == {"red.png"}
    low = min(blue.values())
    # The same tag must pass both: blue's tags are all tagger tags, gray's booru tags have no confidence.
    assert found(f"source:tagger, confidence<={low}") == {"blue.png"} | ({"red.png"} if min(red.values()) <= low
                                                                         else set())
    assert found("source:booru, confidence<0.99") == set()  # booru tags carry no confidence
    assert found("confidence>=0") == {"red.png", "blue.png"}

    stats = cli_json(capsys, "tags", str(root), "stats", "source:booru")
    assert stats["captions"] == 2 and {r["tag"]: r["count"] for r in stats["tags"]} == {"booru tag": 2, "gray": 1}
    stats = cli_json(capsys, "tags", str(root), "stats", "source:tagger, confidence<0.4")
    expected: dict[str, int] = {}
    for scores in (red, blue):
        for t, p in scores.items():
            if p < 0.4:
                expected[t] = expected.get(t, 0) + 1
    assert {r["tag"]: r["count"] for r in stats["tags"]} == expected
    by_source = cli_json(capsys, "tags", str(root), "stats", "--by-source", "source:booru|user")
    assert {r["tag"]: r["sources"] for r in by_source["by_source"]} == {"booru tag": {"booru": 2}, "gray": {"booru": 1},
                                                                        "my tag": {"user": 1}}


def test_where_on_add_move_front_and_clean_selects_images(dataset, capsys):
    root, red, blue = dataset
    gray_before = (root / "2_gray/gray.txt").read_bytes()
    out = cli_json(capsys, "tags", str(root), "add", "checked", "--where", "source:tagger", "--dry-run")
    assert out["changed"] == 2 and "checked" not in (root / "3_red/red.txt").read_text(encoding="utf-8")
    cli_json(capsys, "tags", str(root), "add", "checked", "--where", "source:tagger")
    assert tags(root / "3_red/red.txt")[-1] == "checked" and tags(root / "3_red/blue.txt")[-1] == "checked"
    assert (root / "2_gray/gray.txt").read_bytes() == gray_before
    cli_json(capsys, "tags", str(root), "move-front", "booru tag", "--where", "source:user")
    assert tags(root / "3_red/red.txt")[0] == "booru tag" and tags(root / "2_gray/gray.txt")[0] == "booru tag"
    out = cli_json(capsys, "clean", str(root), "--remove", "booru tag", "--where", "source:user")
    assert out["changed"] == 1
    assert "booru tag" not in tags(root / "3_red/red.txt") and (root / "2_gray/gray.txt").read_bytes() == gray_before
    # The tag `add` wrote is the command's, so source:command picks it.
    assert {Path(i["image"]).name for i in cli_json(capsys, "tags", str(root), "find", "source:command")["items"]} \
        == {"red.png", "blue.png"}


def test_tui_edit_selection_uses_the_same_terms(dataset):
    from tui.edit_model import load_selection

    root, red, _blue = dataset
    selection = load_selection(root, "source:booru")
    assert sorted(Path(r.image).name for r in selection.records) == ["gray.png", "red.png"]
    selection = load_selection(root, "source:user")
    assert [Path(r.image).name for r in selection.records] == ["red.png"]


def test_bad_source_terms_are_one_line_errors(dataset, capsys):
    root, _red, _blue = dataset
    for query in ("source:robot", "confidence<<1", "confidence"):
        capsys.readouterr()
        assert main(["tags", str(root), "find", query]) != 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and query.split("<")[0] in err


def test_tui_editor_tags_count_as_user_and_clean_keeps_sources(dataset, capsys):
    from tui.edit_model import save_caption

    root, red, _blue = dataset
    caption = root / "3_red" / "red.txt"
    kept = tags(caption)
    save_caption(root, caption, ", ".join([*kept, "typed here"]))
    store = read_store(root)
    assert store is not None
    try:
        found = {t: s.source for t, s in store.sources("3_red/red.png", caption.read_bytes()).items()}
    finally:
        store.close()
    assert found["typed here"] == "user" and found["booru tag"] == "booru:danbooru:7"
    assert all(found[t].startswith("tagger:") for t in red)
    # clean rewrites the caption (a rule that changes it): the sources of the tags it keeps stay.
    cli_json(capsys, "clean", str(root), "--remove", "typed here")
    assert {Path(i["image"]).name for i in cli_json(capsys, "tags", str(root), "find", "source:tagger")["items"]} \
        == {"red.png", "blue.png"}
    assert {Path(i["image"]).name for i in cli_json(capsys, "tags", str(root), "find", "source:user")["items"]} \
        == {"red.png"}  # `my tag` (hand-written before any run) is still the user's


def test_concept_apply_keeps_the_store_in_step_and_undo_too(dataset, capsys):
    from prep.concept import ConceptConfig, apply_concept

    root, red, _blue = dataset
    apply_concept(root, ConceptConfig(trigger="ohwx", concept="3_red"), command="concept apply")
    store = read_store(root)
    assert store is not None
    try:
        found = {t: s.source for t, s in store.sources("3_red/red.png", (root / "3_red/red.txt").read_bytes()).items()}
    finally:
        store.close()
    assert found["ohwx"] == "concept" and found["booru tag"] == "booru:danbooru:7"
    assert all(found[t].startswith("tagger:") for t in red)
    assert {Path(i["image"]).name for i in cli_json(capsys, "tags", str(root), "find", "source:command")["items"]} \
        == {"red.png", "blue.png"}
    assert main(["undo", str(root)]) == 0
    assert cli_json(capsys, "tags", str(root), "find", "source:command")["count"] == 0
