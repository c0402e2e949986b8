"""Caption cleaning: each rule, their order, the dataset run (only changed captions written), the CLI."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from prep.clean import (
    CleanConfig,
    Cleaner,
    clean_dataset,
    parse_replacement,
    place_trigger,
    remove_redundant,
    sort_tags,
)
from prep.config import ConfigError
from prep.journal import Journal
from tui.cli import main


def cfg(**kw) -> CleanConfig:
    return CleanConfig(**kw)


def clean_tags(tags, config: CleanConfig) -> list[str]:
    """One caption through the cleaner (frequency sorting then sees only this caption)."""
    return Cleaner(config).clean_all([tags])[0]


# -- rules one by one ------------------------------------------------------------------------------

def test_normalise_always():
    assert clean_tags(["  a   b ", "", "c\t d", " "], cfg()) == ["a b", "c d"]


def test_underscores_to_spaces_keeps_kaomoji():
    tags = ["long_hair", "^_^", "0_0", "(o)_(o)", "x_x", "blue__eyes", "<|>_<|>", "||_||"]
    assert clean_tags(tags, cfg()) == ["long hair", "^_^", "0_0", "(o)_(o)", "x_x", "blue eyes", "<|>_<|>",
                                       "||_||"]
    assert clean_tags(["long_hair"], cfg(keep_underscores=True)) == ["long_hair"]


def test_parentheses_unescaped_or_escaped():
    assert clean_tags([r"hu tao \(genshin impact\)"], cfg()) == ["hu tao (genshin impact)"]
    escaped = clean_tags(["hu tao (genshin impact)", r"star \(symbol\)", "(o)_(o)"], cfg(escape_parens=True))
    assert escaped == [r"hu tao \(genshin impact\)", r"star \(symbol\)", "(o)_(o)"]


def test_replace_renames_and_empty_new_removes():
    c = cfg(replace=["1girls=1girl", "solo focus=", "hat=cap, red cap"])
    assert clean_tags(["1girls", "solo focus", "hat", "smile"], c) == ["1girl", "cap", "red cap", "smile"]


def test_replace_sees_any_spelling_and_escaped_equals():
    assert clean_tags(["long_hair"], cfg(replace=["long hair=hair"])) == ["hair"]
    assert parse_replacement(r"=_\==equal sign") == ("=_=", "equal sign")
    assert parse_replacement("=_==equal sign") == ("=_=", "equal sign")
    assert parse_replacement(r"a\=b=c") == ("a=b", "c")
    assert parse_replacement("a = b") == ("a", "b")
    with pytest.raises(ConfigError):
        parse_replacement("no pair")
    with pytest.raises(ConfigError):
        parse_replacement("=x")


def test_remove_with_wildcards():
    tags = ["simple background", "white background", "artist:foo", "background", "smile", "artistic"]
    c = cfg(remove=["*background", "artist:*"])
    assert clean_tags(tags, c) == ["smile", "artistic"]
    assert clean_tags(["hat", "chat"], cfg(remove=["hat"])) == ["chat"]


def test_remove_redundant_whole_words_only():
    tags = ["shirt", "white shirt", "hair", "long hair", "very long hair", "hat", "chat", "skirt"]
    assert remove_redundant(tags, use_implications=False) == ["white shirt", "very long hair", "hat", "chat",
                                                               "skirt"]
    assert clean_tags(tags, cfg(remove_redundant=True)) == ["white shirt", "very long hair", "hat", "chat", "skirt"]
    # without the flag nothing goes
    assert clean_tags(["shirt", "white shirt"], cfg()) == ["shirt", "white shirt"]


def test_remove_redundant_uses_implications_table():
    assert clean_tags(["animal ears", "cat ears", "smile"], cfg(remove_redundant=True)) == ["cat ears", "smile"]
    # transitively: absurdly long hair -> very long hair -> (whole words) long hair
    assert clean_tags(["long hair", "very long hair", "absurdly long hair"], cfg(remove_redundant=True)) == [
        "absurdly long hair"]


def test_deduplicate_keeps_first():
    assert clean_tags(["a", "b", "a", "long_hair", "long hair"], cfg()) == ["a", "b", "long hair"]


def test_trigger_moves_or_inserts_and_names_go():
    c = cfg(trigger="mayu", remove_name=["Shiina Mayuri"])
    assert clean_tags(["1girl", "shiina_mayuri", "smile"], c) == ["mayu", "1girl", "smile"]
    assert clean_tags(["1girl", "SHIINA MAYURI", "mayu"], c) == ["mayu", "1girl"]
    assert place_trigger(["a", "b"], None, ["A"]) == ["b"]


def test_sort_after_keep_tokens():
    assert sort_tags(["z", "b", "a"], "alpha", 1) == ["z", "a", "b"]
    assert sort_tags(["z", "b", "a"], None, 0) == ["z", "b", "a"]
    counts = Counter({"b": 5, "a": 2, "c": 2})
    assert sort_tags(["x", "c", "a", "b"], "frequency", 1, counts) == ["x", "b", "a", "c"]
    # keep_tokens defaults to 1 with a trigger, 0 without
    assert clean_tags(["c", "b"], cfg(sort="alpha", trigger="zz")) == ["zz", "b", "c"]
    assert clean_tags(["c", "b", "a"], cfg(sort="alpha")) == ["a", "b", "c"]
    assert clean_tags(["c", "b", "a"], cfg(sort="alpha", keep_tokens=2)) == ["c", "b", "a"]


def test_max_tags_and_lowercase_last():
    assert clean_tags(["d", "c", "b", "a"], cfg(sort="alpha", max_tags=2)) == ["a", "b"]
    assert clean_tags(["Blue Sky", "blue sky", "Red"], cfg(lowercase=True)) == ["blue sky", "red"]


def test_rule_order_replace_before_remove_before_redundant():
    # replace creates `white shirt`; remove then drops `*hat`; redundancy sees the replaced tag
    c = cfg(replace=["blouse=white shirt"], remove=["*hat"], remove_redundant=True)
    assert clean_tags(["shirt", "blouse", "top hat"], c) == ["white shirt"]
    # underscores go before replace, so OLD written with spaces matches an underscored tag
    assert clean_tags(["red_hat"], cfg(replace=["red hat=cap"])) == ["cap"]


def test_config_validation():
    with pytest.raises(ConfigError):
        CleanConfig(keep_tokens=-1)
    with pytest.raises(ConfigError):
        CleanConfig(max_tags=0)


# -- whole datasets -------------------------------------------------------------------------------

def make_dataset(root: Path, captions: dict[str, bytes]) -> Path:
    for rel, data in captions.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.with_suffix(".png").write_bytes(b"")
    return root


def test_frequency_sort_counts_across_dataset(tmp_path: Path):
    root = make_dataset(tmp_path / "ds", {
        "1_a/x.txt": b"rare, common, mid",
        "1_a/y.txt": b"common, mid",
        "1_a/z.txt": b"common, other",
    })
    clean_dataset(root, cfg(sort="frequency"))
    assert (root / "1_a/x.txt").read_text() == "common, mid, rare"
    assert (root / "1_a/z.txt").read_text() == "common, other"


def test_clean_dataset_writes_only_changed_captions_as_one_operation(tmp_path: Path):
    root = make_dataset(tmp_path / "ds", {
        "2_alice/a.txt": b"long_hair,  smile",
        "2_alice/b.txt": b"clean, caption",
        "1_bob/c.txt": b"\xef\xbb\xbfhat, hat",
    })
    (root / "1_bob" / "nocap.png").write_bytes(b"")
    os.utime(root / "2_alice/b.txt", ns=(10**9, 10**9))
    report = clean_dataset(root, cfg())
    assert (report.changed, report.unchanged) == (2, 1)
    assert {Path(c.path).name for c in report.changes} == {"a.txt", "c.txt"}
    assert (root / "2_alice/a.txt").read_bytes() == b"long hair, smile"
    assert (root / "1_bob/c.txt").read_bytes() == b"hat"
    assert (root / "2_alice/b.txt").stat().st_mtime_ns == 10**9
    assert not (root / "1_bob" / "nocap.txt").exists()  # clean never creates captions
    history = Journal(root).history()
    assert len(history) == 1 and history[0].count == 2


def test_clean_twice_second_is_noop_bytes_and_mtime(tmp_path: Path):
    root = make_dataset(tmp_path / "ds", {f"3_x/{i}.txt": b"a_b, \\(c\\), d, d" for i in range(5)})
    clean_dataset(root, cfg(remove_redundant=True, sort="alpha"))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*.txt")}
    ops = len(Journal(root).history())
    report = clean_dataset(root, cfg(remove_redundant=True, sort="alpha"))
    assert report.changed == 0 and report.unchanged == 5
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*.txt")} == before
    assert len(Journal(root).history()) == ops  # no journal entry for a no-op


def test_dry_run_writes_nothing(tmp_path: Path):
    root = make_dataset(tmp_path / "ds", {"1_a/a.txt": b"x_y"})
    report = clean_dataset(root, cfg(), dry_run=True)
    assert report.changed == 1 and report.changes[0].after == "x y"
    assert (root / "1_a/a.txt").read_bytes() == b"x_y"
    assert not (root / ".lorakit").exists()


def test_bad_utf8_caption_is_skipped_with_warning(tmp_path: Path):
    root = make_dataset(tmp_path / "ds", {"1_a/a.txt": b"\xff\xfe bad", "1_a/b.txt": b"x_y"})
    report = clean_dataset(root, cfg())
    assert report.changed == 1
    assert any("a.txt" in w and "UTF-8" in w for w in report.warnings)
    assert (root / "1_a/a.txt").read_bytes() == b"\xff\xfe bad"


# -- the CLI --------------------------------------------------------------------------------------

def test_cli_json_dry_run_and_write(tmp_path: Path, capsys):
    root = make_dataset(tmp_path / "ds", {"5_alice/a.txt": b"shiina_mayuri, white shirt, shirt, simple background",
                                          "5_alice/b.txt": b"ohwx, smile"})
    args = [ "clean", str(root), "--trigger", "ohwx", "--remove-name", "Shiina Mayuri", "--remove", "*background",
            "--remove-redundant", "--json"]
    assert main([*args, "--dry-run"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"changed": 1, "unchanged": 1, "changes": [{
        "path": str(root / "5_alice/a.txt"),
        "before": "shiina_mayuri, white shirt, shirt, simple background",
        "after": "ohwx, white shirt"}]}
    assert (root / "5_alice/a.txt").read_bytes().startswith(b"shiina_mayuri")
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["changed"] == 1
    assert (root / "5_alice/a.txt").read_text() == "ohwx, white shirt"


def test_cli_reads_clean_table_and_at_files(tmp_path: Path, capsys):
    ws = tmp_path / "ws"
    root = make_dataset(ws / "dataset", {"1_a/a.txt": b"Hat, bad tag, red_bow, remove me"})
    (ws / "lorakit.toml").write_text('[clean]\nlowercase = true\nkeep_underscores = true\n'
                                     'replace = ["bad tag=good tag"]\n')
    lst = tmp_path / "remove.txt"
    lst.write_text("# comment\nremove me\n")
    assert main(["clean", str(root), "--remove", f"@{lst}"]) == 0
    assert (root / "1_a/a.txt").read_text() == "hat, good tag, red_bow"
    # a flag overrides the table
    (root / "1_a/a.txt").write_text("x_y")
    assert main(["clean", str(root), "--no-keep-underscores"]) == 0
    assert (root / "1_a/a.txt").read_text() == "x y"
    # `sort = "alpha"` in the file; `--sort none` keeps the order
    (ws / "lorakit.toml").write_text('[clean]\nsort = "alpha"\n')
    (root / "1_a/a.txt").write_text("b, a")
    assert main(["clean", str(root), "--sort", "none"]) == 0
    assert (root / "1_a/a.txt").read_text() == "b, a"
    assert main(["clean", str(root)]) == 0
    assert (root / "1_a/a.txt").read_text() == "a, b"
    capsys.readouterr()


def test_cli_replace_file_and_unknown_toml_key(tmp_path: Path, capsys):
    ws = tmp_path / "ws"
    root = make_dataset(ws / "dataset", {"1_a/a.txt": b"a, b"})
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("a=alpha\nb=\n")
    assert main(["clean", str(root), "--replace", f"@{pairs}"]) == 0
    assert (root / "1_a/a.txt").read_text() == "alpha"
    (ws / "lorakit.toml").write_text("[clean]\nlowercse = true\n")
    assert main(["clean", str(root)]) == 1
    assert "did you mean 'lowercase'" in capsys.readouterr().err


def test_cli_errors_are_one_line(tmp_path: Path, run_cli):
    result = run_cli("clean", tmp_path / "missing")
    assert result.code == 2 and result.err.count("\n") == 1 and "not a folder" in result.err
    result = run_cli("clean", tmp_path, "--sort", "nope")
    assert result.code == 2
    result = run_cli("clean", tmp_path, "--max-tags", "0")
    assert result.code == 1 and "max_tags" in result.err and "Traceback" not in result.err
