"""Tag queries, bulk edits and statistics through the library API, on real files."""

from __future__ import annotations

from pathlib import Path

import pytest

from prep.caption_set import parse_caption_fast, scan_dataset
from prep.captions import parse_caption
from prep.dataset import Dataset
from prep.journal import Journal
from prep.tag_edit import (
    add_edit,
    add_tags,
    edit_dataset,
    find_items,
    move_front,
    move_front_edit,
    remove_edit,
    replace_edit,
    replace_tags,
)
from prep.tag_query import PatternSet, QueryError, TagPattern, parse_query
from prep.tag_stats import tag_stats


def build(root: Path, captions: dict[str, str | None]) -> Path:
    """Images (0-byte .png) with captions; None: an image without a caption file."""
    for rel, text in captions.items():
        image = root / rel
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_bytes(b"")
        if text is not None:
            image.with_suffix(".txt").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    return build(tmp_path / "ds", {
        "5_alice/a.png": "1girl, red hair, hat, hair ribbon",
        "5_alice/b.png": "1girl, blonde hair, red ribbon",
        "5_alice/c.png": None,
        "3_bob/d.png": "1boy, yellow hair, hat",
        "3_bob/e.png": "1boy, red_hair, smile",
    })


# -- queries ---------------------------------------------------------------------------------------

def test_query_terms():
    tags = ["1girl", "Red_Hair", "hair ribbon"]
    assert parse_query("red hair").matches(tags)
    assert parse_query("red hair, -hat").matches(tags)
    assert not parse_query("red hair, -1girl").matches(tags)
    assert parse_query("blonde hair|red hair").matches(tags)
    assert not parse_query("blonde hair|yellow hair").matches(tags)
    assert parse_query("*ribbon").matches(tags)
    assert not parse_query("ribbon").matches(tags)
    assert parse_query("concept:5_alice").matches(tags, "5_alice", "alice")
    assert parse_query("concept:alice").matches(tags, "5_alice", "alice")
    assert not parse_query("concept:3_bob").matches(tags, "5_alice", "alice")
    assert parse_query("").matches([]) and parse_query(None).matches(["x"])


def test_query_kaomoji_and_errors():
    assert parse_query("|_|").matches(["|_|"])
    assert parse_query("<|>_<|>|smile").matches(["<|>_<|>"])
    assert parse_query("-_-|x").terms[0].negated
    with pytest.raises(QueryError):
        parse_query("a||b")
    with pytest.raises(QueryError):
        parse_query("concept:")


def test_patterns():
    assert TagPattern("artist:*").matches("artist:someone")
    assert not TagPattern("artist:*").matches("artistic")
    assert TagPattern("*background").matches("simple_background")
    assert TagPattern(r"hu tao \(genshin impact\)").matches("hu_tao_(genshin_impact)")
    assert TagPattern("a?b").matches("a?b") and not TagPattern("a?b").matches("acb")  # only * is special
    assert PatternSet(["x", "y*"]).matches("yz")


def test_fast_parse_matches_reference_parser():
    for text in ["a, b", "a,b", " a ,b,, c ", "a  b, c", "a\tb", "x\u3000y, z", "\ufeffa, b", "", ",", "日本, 語 ,x",
                 "a\x1fb, c", "a, b\n"]:
        assert parse_caption_fast(text) == parse_caption(text), text


# -- edits on tag lists ----------------------------------------------------------------------------

def test_edit_functions():
    assert add_tags(["a", "b"], ["c", "A", "c"]) == ["a", "b", "c"]
    assert add_tags(["a"], ["x", "y"], front=True) == ["x", "y", "a"]
    assert replace_tags(["a", "b", "c"], TagPattern("b"), ["c", "d"]) == ["a", "d", "c"]
    assert replace_tags(["a", "b"], TagPattern("b"), []) == ["a"]
    assert replace_tags(["x1", "y", "x2"], TagPattern("x*"), ["x"]) == ["x", "y"]
    assert move_front(["a", "b", "c", "d"], [TagPattern("c"), TagPattern("*a*")]) == ["c", "a", "b", "d"]


# -- edits on datasets -----------------------------------------------------------------------------

def text(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def test_find(ds: Path):
    names = [Path(r.image).name for r in find_items(ds, "red hair")]
    assert names == ["e.png", "a.png"]  # dataset order (3_bob first); red_hair matches red hair
    assert [Path(r.image).name for r in find_items(ds, "-hat, concept:5_alice")] == ["b.png", "c.png"]
    assert [Path(r.image).name for r in find_items(ds, "alice")] == ["c.png"]  # effective caption
    assert [Path(r.image).name for r in find_items(ds, "blonde hair|yellow hair")] == ["d.png", "b.png"]
    assert [Path(r.image).name for r in find_items(ds, "*ribbon")] == ["a.png", "b.png"]


def test_add_where_and_front_creates_missing_caption(ds: Path):
    report = edit_dataset(ds, add_edit(["solo"], front=True), where="concept:5_alice")
    assert report.changed == 3
    assert text(ds, "5_alice/a.txt") == "solo, 1girl, red hair, hat, hair ribbon"
    assert text(ds, "5_alice/c.txt") == "solo, alice"  # created from the effective caption
    assert text(ds, "3_bob/d.txt") == "1boy, yellow hair, hat"
    # adding again changes nothing and opens no journal entry
    ops = len(Journal(ds).history())
    assert edit_dataset(ds, add_edit(["solo"]), where="concept:5_alice").changed == 0
    assert len(Journal(ds).history()) == ops
    Journal(ds).undo()
    assert not (ds / "5_alice/c.txt").exists()
    assert text(ds, "5_alice/a.txt") == "1girl, red hair, hat, hair ribbon"


def test_remove_with_wildcard_and_where(ds: Path):
    report = edit_dataset(ds, remove_edit(["*ribbon"]), where="-hat")
    assert report.changed == 1
    assert text(ds, "5_alice/b.txt") == "1girl, blonde hair"
    assert text(ds, "5_alice/a.txt").endswith("hair ribbon")  # has hat: not selected
    assert not (ds / "5_alice/c.txt").exists()  # remove never creates captions


def test_replace_and_move_front(ds: Path):
    before = (ds / "3_bob/e.txt").read_bytes()
    assert edit_dataset(ds, replace_edit("red hair", "crimson hair")).changed == 2
    assert text(ds, "3_bob/e.txt") == "1boy, crimson hair, smile"
    assert edit_dataset(ds, move_front_edit(["hat", "*hair"])).changed == 4
    assert text(ds, "5_alice/a.txt") == "hat, crimson hair, 1girl, hair ribbon"
    assert text(ds, "3_bob/d.txt") == "hat, yellow hair, 1boy"
    journal = Journal(ds)
    assert [op.command for op in journal.history()] == ["tags replace", "tags move-front"]
    journal.undo()
    journal.undo()
    assert (ds / "3_bob/e.txt").read_bytes() == before


def test_untouched_captions_are_not_reformatted(ds: Path):
    odd = ds / "3_bob/d.txt"
    odd.write_bytes(b"1boy,yellow hair ,  hat")
    edit_dataset(ds, remove_edit(["smile"]))
    assert odd.read_bytes() == b"1boy,yellow hair ,  hat"


def test_dry_run(ds: Path):
    report = edit_dataset(ds, remove_edit(["hat"]), dry_run=True)
    assert report.changed == 2 and {Path(c.path).name for c in report.changes} == {"a.txt", "d.txt"}
    assert "hat" in text(ds, "5_alice/a.txt")
    assert not (ds / ".lorakit").exists()


# -- stats -----------------------------------------------------------------------------------------

def test_stats(ds: Path):
    (ds / "3_bob/e.txt").write_text("1boy, Red_Hair, smile, smile")
    stats = tag_stats(ds)
    assert stats.captions == 4  # c.png has no caption file
    counts = dict(stats.counts)
    assert counts["hat"] == 2 and counts["smile"] == 1 and counts["1girl"] == 2
    assert stats.counts == sorted(stats.counts, key=lambda kv: (-kv[1], kv[0]))
    assert "smile" in stats.used_once and "hat" not in stats.used_once
    assert ["Red_Hair", "red hair"] in stats.likely_typos
    data = stats.to_dict(top=2)
    assert data["captions"] == 4 and len(data["tags"]) == 2 and data["tags"][0] == {"tag": "1boy", "count": 2}


def test_stats_concept_and_dataset_object(ds: Path):
    stats = tag_stats(ds, "3_bob")
    assert stats.captions == 2 and dict(stats.counts)["1boy"] == 2 and "1girl" not in dict(stats.counts)
    assert tag_stats(Dataset.load(ds), "bob").captions == 2
    with pytest.raises(Exception, match="no concept folder"):
        tag_stats(ds, "9_nobody")


def test_scan_matches_dataset_load(ds: Path):
    (ds / "5_alice" / ".hidden.png").write_bytes(b"")
    (ds / "5_alice" / "notes.md").write_text("x")
    (ds / "5_alice" / "dir.png").mkdir()
    (ds / "not_a_concept").mkdir()
    (ds / "0_zero").mkdir()
    (ds / "5_alice" / "UPPER.PNG").write_bytes(b"")
    loaded = Dataset.load(ds, allow_bare=True)
    scan = scan_dataset(ds)
    assert [(str(i.image), str(i.caption_path), i.concept) for i in loaded.items] == scan.entries
    assert scan.concepts == loaded.concepts


def test_bare_folder(tmp_path: Path):
    root = build(tmp_path / "bare", {"a.png": "x, y", "b.jpg": "y"})
    assert tag_stats(root).captions == 2
    assert edit_dataset(root, add_edit(["z"])).changed == 2
    assert (root / "b.txt").read_text() == "y, z"
