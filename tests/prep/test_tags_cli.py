"""`lorakit tags`, and `lorakit undo`/`history` after clean and tags operations, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.cli import main


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    captions = {
        "5_alice/a": "1girl, red hair, hat, hair ribbon",
        "5_alice/b": "1girl, blonde hair, red ribbon",
        "3_bob/d": "1boy, yellow hair, hat",
        "3_bob/e": "1boy, red_hair, smile",
    }
    for rel, text in captions.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / f"{rel}.png").write_bytes(b"")
        (root / f"{rel}.txt").write_bytes(text.encode())
    (root / "5_alice/c.png").write_bytes(b"")  # no caption file
    return root


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".lorakit" not in p.parts}


def test_stats_json_and_text(ds: Path, capsys):
    code, out, _ = run(capsys, "tags", ds, "stats", "--json")
    data = json.loads(out)
    assert code == 0 and data["captions"] == 4
    assert data["tags"][:3] == [{"tag": "1boy", "count": 2}, {"tag": "1girl", "count": 2}, {"tag": "hat", "count": 2}]
    assert "smile" in data["used_once"]
    assert ["red hair", "red_hair"] in data["likely_typos"]
    code, out, _ = run(capsys, "tags", ds, "stats", "--top", "1", "--concept", "3_bob", "--json")
    data = json.loads(out)
    assert data["captions"] == 2 and data["tags"] == [{"tag": "1boy", "count": 2}]
    code, out, _ = run(capsys, "tags", ds, "stats")
    assert code == 0 and "4 caption(s)" in out and "likely typos" in out and "red hair | red_hair" in out


def test_find_lists_items(ds: Path, capsys):
    code, out, err = run(capsys, "tags", ds, "find", "red hair,-smile")
    assert code == 0 and out.split() == ["5_alice/a.png"] and "1 item(s)" in err
    code, out, _ = run(capsys, "tags", ds, "find", "concept:5_alice", "--json")
    data = json.loads(out)
    assert data["count"] == 3 and data["items"][2]["caption"] is None and data["items"][2]["tags"] == ["alice"]


def test_negated_query_as_a_separate_argument(ds: Path, run_cli):
    result = run_cli("tags", ds, "find", "-hat")
    assert result.code == 0, result.err
    assert result.out.split() == ["3_bob/e.png", "5_alice/b.png", "5_alice/c.png"]
    result = run_cli("tags", ds, "remove", "smile", "--where", "-hat", "--dry-run")
    assert result.code == 0 and "1 caption(s) would change" in result.out


def test_ops_print_counts_and_dry_run_writes_nothing(ds: Path, capsys):
    before = snapshot(ds)
    code, out, _ = run(capsys, "tags", ds, "add", "solo", "--where", "concept:5_alice", "--front", "--dry-run")
    assert code == 0 and "3 caption(s) would change" in out and "+ solo, alice" in out
    code, out, _ = run(capsys, "tags", ds, "remove", "*ribbon", "--dry-run", "--json")
    assert json.loads(out)["changed"] == 2
    assert snapshot(ds) == before and not (ds / ".lorakit").exists()

    code, out, _ = run(capsys, "tags", ds, "add", "solo", "extra tag", "--where", "concept:5_alice", "--front")
    assert code == 0 and "changed 3 caption(s)" in out
    assert (ds / "5_alice/c.txt").read_text() == "solo, extra tag, alice"
    code, out, _ = run(capsys, "tags", ds, "remove", "*ribbon")
    assert "changed 2 caption(s)" in out
    code, out, _ = run(capsys, "tags", ds, "replace", "red hair", "crimson hair", "--where", "1boy")
    assert "changed 1 caption(s)" in out and (ds / "3_bob/e.txt").read_text() == "1boy, crimson hair, smile"
    code, out, _ = run(capsys, "tags", ds, "move-front", "hat", "--where", "concept:3_bob")
    assert "changed 1 caption(s)" in out and (ds / "3_bob/d.txt").read_text() == "hat, 1boy, yellow hair"
    code, out, _ = run(capsys, "tags", ds, "remove", "nothing-here")
    assert "changed 0 caption(s)" in out


def test_undo_and_history_walk_back_clean_and_tags(ds: Path, run_cli):
    original = snapshot(ds)
    assert run_cli("clean", ds, "--remove-redundant", "--sort", "alpha").code == 0
    after_clean = snapshot(ds)
    assert after_clean != original
    assert run_cli("tags", ds, "add", "solo", "--front").code == 0
    after_add = snapshot(ds)
    assert after_add["5_alice/c.txt"] == b"solo, alice"

    history = run_cli("history", ds, "--json")
    ops = json.loads(history.out)["operations"]
    assert [op["count"] for op in ops] == [3, 5]
    assert "clean" in ops[0]["command"] and "tags" in ops[1]["command"] and "add" in ops[1]["command"]
    text = run_cli("history", ds).out
    assert "clean" in text and "add solo" in text

    undo = run_cli("undo", ds)
    assert undo.code == 0 and "add" in undo.out
    assert snapshot(ds) == after_clean and not (ds / "5_alice/c.txt").exists()
    assert run_cli("undo", ds).code == 0
    assert snapshot(ds) == original  # byte for byte
    assert json.loads(run_cli("history", ds, "--json").out)["operations"] == []
    nothing = run_cli("undo", ds)
    assert nothing.code == 1 and "nothing to undo" in nothing.err


def test_undo_restores_mtime(ds: Path, capsys):
    import os

    path = ds / "3_bob/e.txt"
    os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    run(capsys, "tags", ds, "remove", "smile")
    assert path.stat().st_mtime_ns != 1_500_000_000_000_000_000
    run(capsys, "undo", ds)
    assert path.stat().st_mtime_ns == 1_500_000_000_000_000_000


def test_errors(ds: Path, capsys, tmp_path: Path):
    code, _, err = run(capsys, "tags", tmp_path / "missing", "stats")
    assert code == 2 and "not a folder" in err
    code, _, err = run(capsys, "tags", ds, "stats", "--concept", "7_nobody")
    assert code == 1 and "no concept folder" in err and "5_alice" in err
    code, _, err = run(capsys, "tags", ds, "find", "a||b")
    assert code == 1 and "empty alternative" in err
    with pytest.raises(SystemExit) as exc:
        main(["tags", str(ds), "stats", "--top", "-1"])
    assert exc.value.code == 2


@pytest.mark.parametrize("args", [["find", "concept:5_alcie"], ["remove", "hat", "--where", "-concept:bbo"]])
def test_query_naming_no_concept_folder_is_refused(ds: Path, capsys, args: list[str]):
    before = snapshot(ds)
    code, out, err = run(capsys, "tags", ds, *args)
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no concept folder" in err and "5_alice" in err
    assert snapshot(ds) == before  # a negated typo would otherwise have edited every caption
