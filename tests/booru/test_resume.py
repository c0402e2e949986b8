"""Resume through the SQLite archive, a kill mid-download, and captions rewritten from the archive."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.booru.emulator import make_posts
from tui.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_rerun_downloads_nothing_present(emulator, scrape):
    emu = emulator("danbooru", make_posts(6))
    first = scrape(emu, "--tags", "1girl", "--limit", "4")
    assert first.code == 0 and first.data["downloaded"] == 4
    files_before = len(emu.requests("file"))
    again = scrape(emu, "--tags", "1girl", "--limit", "4")
    assert again.code == 0, again.err
    assert again.data["downloaded"] == 0 and again.data["skipped"] == {"already_present": 4}
    assert len(emu.requests("file")) == files_before
    # a file the user deleted comes back; the others are left alone
    (first.folder / f"danbooru_{emu.posts[2].id}.png").unlink()
    third = scrape(emu, "--tags", "1girl", "--limit", "4")
    assert third.data["downloaded"] == 1 and len(emu.requests("file")) == files_before + 1


def test_archive_records_each_post_without_keys(emulator, scrape):
    emu = emulator("e621", make_posts(2))
    result = scrape(emu, "--tags", "1girl", "--limit", "2", "--login", emu.login, "--api-key", emu.api_key)
    assert result.code == 0, result.err
    db = sqlite3.connect(result.folder / ".lorakit" / "booru.sqlite")
    rows = db.execute("SELECT site, id, md5, file, rating, score, tags, query FROM posts ORDER BY id DESC").fetchall()
    db.close()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("e621", p.id, p.md5, f"e621_{p.id}.png") for p in emu.posts]
    assert rows[0][4] == "s" and rows[0][5] == emu.posts[0].score and rows[0][7] == "1girl"
    assert '"species": ["fox"]' in rows[0][6]
    assert emu.api_key not in str(rows)


def test_refresh_captions_rewrites_from_the_archive_and_undo_restores(emulator, scrape, capsys):
    emu = emulator("danbooru", make_posts(3))
    first = scrape(emu, "--tags", "1girl", "--limit", "3", "--concept", "miku")
    assert first.code == 0, first.err
    caption = first.folder / "1_miku" / f"danbooru_{emu.posts[0].id}.txt"
    before = caption.read_text()
    requests_before = len(emu.log)
    emu.stop()  # no network needed
    result = scrape(None, "--refresh-captions", "--categories", "artist,meta")
    assert result.code == 0, result.err
    assert result.data["captions"] == 3
    assert caption.read_text() == "artist x, highres"
    assert len(emu.log) == requests_before
    assert main(["undo", str(first.folder)]) == 0
    capsys.readouterr()
    assert caption.read_text() == before


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def test_killed_mid_download_resumes_without_leftovers(emulator, tmp_path, capsys):
    posts = make_posts(10, width=200, height=200, noise=True)  # ~120 KB each, streamed slowly below
    emu = emulator("danbooru", posts, chunk_delay=0.05)
    out = tmp_path / "dataset"
    env = dict(os.environ, LORAKIT_BOORU_BACKOFF="0.01")
    cmd = [sys.executable, "-m", "tui", "scrape", "--site", "danbooru", "--base-url", emu.base_url, "--rate",
           "1000", "--tags", "1girl", "--limit", "10", "--out", str(out), "--concurrency", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    try:
        _wait_for(lambda: len(list(out.glob("*.png"))) >= 1 and len(list(out.glob("*.part"))) >= 1, timeout=60)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    complete = {p.name for p in out.glob("*.png")}
    assert complete and len(complete) < len(posts)
    # a fresh emulator with the same posts: its log holds only what the next run asks for (requests
    # the killed process had already sent may still be logged late by the first one)
    again_emu = emulator("danbooru", posts)
    assert main(["scrape", "--site", "danbooru", "--base-url", again_emu.base_url, "--rate", "1000", "--tags",
                 "1girl", "--limit", "10", "--out", str(out)]) == 0
    capsys.readouterr()
    assert not list(out.glob("*.part"))
    assert {p.name for p in out.glob("*.png")} == {f"danbooru_{p.id}.png" for p in posts}
    assert {p.name for p in out.glob("*.txt")} == {f"danbooru_{p.id}.txt" for p in posts}
    # nothing complete before the kill was fetched again
    md5s = {p.md5 for p in posts if f"danbooru_{p.id}.png" in complete}
    again = [e["path"] for e in again_emu.requests("file")]
    assert not [path for path in again if any(md5 in path for md5 in md5s)]
    assert len(again) == len(posts) - len(complete)


def test_refresh_captions_needs_no_site_and_reads_the_workspace_table(emulator, scrape, tmp_path, capsys):
    emu = emulator("gelbooru", make_posts(2))
    first = scrape(emu, "--tags", "1girl", "--limit", "2")
    assert first.code == 0, first.err
    (first.folder / "lorakit.toml").write_text('[booru]\ncategories = "character,artist"\n', encoding="utf-8")
    assert main(["scrape", "--out", str(first.folder), "--refresh-captions"]) == 0
    capsys.readouterr()
    post = emu.posts[0]
    assert (first.folder / f"gelbooru_{post.id}.txt").read_text() == f"character {post.id % 3}, artist x"


def test_refresh_captions_without_an_archive_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["scrape", "--out", str(tmp_path / "empty"), "--refresh-captions"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "booru.sqlite" in err


def test_undo_takes_a_scrape_back_and_the_next_run_redownloads(emulator, scrape, capsys):
    emu = emulator("danbooru", make_posts(3))
    first = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert first.code == 0, first.err
    assert main(["undo", str(first.folder)]) == 0
    capsys.readouterr()
    assert not list(first.folder.glob("*.png")) and not list(first.folder.glob("*.txt"))
    again = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert again.data["downloaded"] == 3
    assert not list(first.folder.glob("*.part"))
    assert len(list(first.folder.glob("*.png"))) == 3
