"""Issue 17 part 2: `lorakit implications fetch`, the stored graph, `clean --remove-implied` and
`--canonical`, `scrape --implications`; real HTTP against the emulator's two endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prep.implications import read_store, store_path
from tests.booru.emulator import make_posts
from tui.cli import main

IMPLICATIONS = [("cat_ears", "animal_ears", "active"), ("animal_ears", "ears_thing", "active"),
                ("ears_thing", "cat_ears", "active"),  # a cycle: harmless
                ("long_hair", "hair", "deleted"), ("solo", "one", "pending")]
ALIASES = [("kitty_ears", "cat_ears", "active"), ("old_name", "new_name", "deleted")]


def _dataset(tmp_path: Path, captions: dict[str, str]) -> Path:
    root = tmp_path / "ds"
    folder = root / "1_x"
    folder.mkdir(parents=True)
    for name, text in captions.items():
        (folder / f"{name}.png").write_bytes(b"")
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


def _fetch(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["implications", "fetch", *args])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 and "--json" in args else None), out.err


@pytest.fixture
def graph_site(emulator):
    def start(family: str = "danbooru"):
        emu = emulator(family, make_posts(1))
        emu.implications = list(IMPLICATIONS)
        emu.aliases = list(ALIASES)
        return emu
    return start


def test_fetch_follows_implications_transitively_and_stores_them(graph_site, capsys, tmp_path):
    emu = graph_site()
    root = _dataset(tmp_path, {"a": "cat ears, animal ears, long hair", "b": "kitty ears, solo"})
    code, data, err = _fetch(capsys, str(root), "--base-url", emu.base_url, "--rate", "1000", "--json")
    assert code == 0, err
    assert data["site"] == "danbooru" and data["tags"] == 5 and data["dry_run"] is False
    assert data["implications"] == 3 and data["aliases"] == 1
    stored = read_store(root)
    assert sorted(stored.implications) == sorted((a, c) for a, c, s in IMPLICATIONS if s == "active")
    assert stored.aliases == [("kitty_ears", "cat_ears")] and stored.site == "danbooru"
    assert stored.fetched_at == data["fetched_at"] and data["fetched_at"].startswith("20")
    imp = emu.requests("implications")
    assert all(e["path"].endswith("/tag_implications.json") and e["params"]["search[status]"] == "active"
               and e["params"]["limit"] == "1000" for e in imp)
    asked = [set(e["params"]["search[antecedent_name_comma]"].split(",")) for e in imp]
    assert asked[0] == {"cat_ears", "animal_ears", "long_hair", "kitty_ears", "solo"}
    assert asked[1] == {"ears_thing"}  # round 2: the consequent not asked yet; then nothing new
    assert len(imp) == 2
    assert [e["params"]["search[antecedent_name_comma]"] for e in emu.requests("aliases")] == \
        ["cat_ears,animal_ears,long_hair,kitty_ears,solo"]
    # Journaled: undo takes the store away again.
    assert main(["undo", str(root)]) == 0
    assert not store_path(root).exists()


def test_dry_run_writes_nothing_and_e621_empty_answers(graph_site, capsys, tmp_path):
    emu = graph_site("e621")
    root = _dataset(tmp_path, {"a": "nothing here"})
    code, data, err = _fetch(capsys, str(root), "--site", "e621", "--base-url", emu.base_url, "--rate", "1000",
                             "--dry-run", "--json")
    assert code == 0, err
    assert data["dry_run"] is True and data["implications"] == 0 and data["aliases"] == 0
    assert not store_path(root).exists() and not (root / ".lorakit" / "journal").exists()


def test_fetch_follows_the_scrapers_credential_rules(graph_site, capsys, tmp_path, monkeypatch):
    emu = graph_site()
    monkeypatch.setenv("LORAKIT_DANBOORU_LOGIN", emu.login)
    monkeypatch.setenv("LORAKIT_DANBOORU_API_KEY", emu.api_key)
    root = _dataset(tmp_path, {"a": "cat ears"})
    code, _, err = _fetch(capsys, str(root), "--base-url", emu.base_url, "--rate", "1000")
    assert code == 0, err
    assert all(e["authorization"].startswith("Basic ") for e in emu.requests("implications"))
    code, _, err = _fetch(capsys, str(root), "--base-url", "http://booru.invalid")
    assert code == 2 and "--allow-insecure" in err and emu.api_key not in err
    with pytest.raises(SystemExit):  # argparse: only danbooru, safebooru, e621, e926
        _fetch(capsys, str(root), "--site", "gelbooru")


def test_fetch_is_rate_limited(graph_site, capsys, tmp_path):
    emu = graph_site()
    emu.api_rate = 5
    root = _dataset(tmp_path, {"a": "cat ears"})
    code, _, err = _fetch(capsys, str(root), "--base-url", emu.base_url, "--rate", "4")
    assert code == 0, err
    hits = emu.requests("implications") + emu.requests("aliases")
    assert emu.rate_violations == 0 and len(hits) == 4  # cat ears, animal ears, ears thing; aliases
    times = sorted(e["time"] for e in hits)
    assert all(b - a >= 0.2 for a, b in zip(times, times[1:], strict=False))  # 4/s, as asked


def test_clean_remove_implied_uses_the_fetched_graph_else_the_bundled_table(graph_site, capsys, tmp_path):
    root = _dataset(tmp_path, {"a": "cat ears, animal ears, ears thing, solo", "b": "fox ears, animal ears"})
    assert main(["clean", str(root), "--remove-implied", "--dry-run", "--json"]) == 0
    out = capsys.readouterr()
    after = {Path(c["path"]).stem: c["after"] for c in json.loads(out.out)["changes"]}
    assert after["b"] == "fox ears" and "bundled" in out.err  # the bundled table knows fox ears
    emu = graph_site()
    assert _fetch(capsys, str(root), "--base-url", emu.base_url, "--rate", "1000")[0] == 0
    assert main(["clean", str(root), "--remove-implied", "--json"]) == 0
    out = capsys.readouterr()
    assert "fetched from danbooru" in out.err
    assert (root / "1_x" / "a.txt").read_text(encoding="utf-8") == "solo"  # the cycle removes all three
    assert (root / "1_x" / "b.txt").read_text(encoding="utf-8") == "fox ears, animal ears"  # not in the graph


def test_clean_canonical_replaces_aliases_before_dedup_and_from_the_clean_table(graph_site, capsys, tmp_path):
    emu = graph_site()
    emu.implications = [("cat_ears", "animal_ears", "active")]
    root = _dataset(tmp_path, {"a": "kitty ears, cat ears, animal ears, smile"})
    assert _fetch(capsys, str(root), "--base-url", emu.base_url, "--rate", "1000")[0] == 0
    (tmp_path / "lorakit.toml").write_text("[clean]\ncanonical = true\nremove_implied = true\n", encoding="utf-8")
    assert main(["clean", str(root)]) == 0, capsys.readouterr().err
    # kitty ears -> cat ears (canonical), animal ears implied by it (remove implied), one cat ears (dedup)
    assert (root / "1_x" / "a.txt").read_text(encoding="utf-8") == "cat ears, smile"


def test_scrape_implications_fetches_after_the_scrape(emulator, scrape):
    posts = make_posts(2)
    emu = emulator("danbooru", posts)
    emu.implications = [("long_hair", "hair", "active")]
    emu.aliases = [("highres", "high_resolution", "active")]
    result = scrape(emu, "--tags", "1girl", "--limit", "2", "--implications")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 2 and result.data["implications"]["implications"] == 1
    stored = read_store(result.folder)
    assert stored.implications == [("long_hair", "hair")]
    assert emu.requests("implications")[0]["params"]["search[status]"] == "active"
