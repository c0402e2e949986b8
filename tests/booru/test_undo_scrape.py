"""Undo of a scrape (issue 14 #4): the downloads go to the dataset's trash, never back to `.part`
(which the next scrape deletes), and the archive forgets them so a new scrape fetches them again."""

from __future__ import annotations

import json
import sqlite3

from tests.booru.emulator import make_posts
from tui.cli import main


def test_undo_of_a_scrape_trashes_the_downloads_and_the_archive_forgets_them(emulator, scrape, capsys):
    emu = emulator("danbooru", make_posts(3))
    first = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert first.code == 0, first.err
    images = {p.name: p.read_bytes() for p in first.folder.glob("*.png")}
    assert len(images) == 3
    assert main(["undo", str(first.folder), "--json"]) == 0
    undone = json.loads(capsys.readouterr().out)["undone"]
    assert not list(first.folder.glob("*.part")) and not list(first.folder.glob("*.png"))
    trash = first.folder / ".lorakit" / "trash" / undone["id"]
    assert {p.name: p.read_bytes() for p in trash.glob("*.png")} == images  # kept, byte for byte
    assert sorted(t["path"] for t in undone["trashed"]) == sorted(images)
    db = sqlite3.connect(first.folder / ".lorakit" / "booru.sqlite")
    assert db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == 0
    db.close()
    again = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert again.data["downloaded"] == 3
    assert {p.name for p in first.folder.glob("*.png")} == set(images)
    assert {p.name for p in trash.glob("*.png")} == set(images)  # the next scrape left the trash alone


def test_refresh_captions_twice_records_one_entry(emulator, scrape, capsys):
    emu = emulator("danbooru", make_posts(2))
    first = scrape(emu, "--tags", "1girl", "--limit", "2")
    assert first.code == 0, first.err
    emu.stop()
    for _ in range(2):
        assert scrape(None, "--refresh-captions", "--categories", "artist").code == 0
    assert main(["history", str(first.folder), "--json"]) == 0
    ops = json.loads(capsys.readouterr().out)["operations"]
    assert [op["count"] > 0 for op in ops] == [True, True]  # the scrape and the first refresh only
