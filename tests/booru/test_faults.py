"""Faults a real booru throws: rate limits, 5xx, dropped connections, junk bodies, Cloudflare, md5s."""

from __future__ import annotations

import hashlib

import pytest

from tests.booru.emulator import make_posts


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(status, emulator, scrape):
    emu = emulator("danbooru", make_posts(3))
    emu.fault("api", "status", status=status, retry_after="1")
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    api = emu.requests("api")
    assert [e["status"] for e in api] == [status, 200]
    assert api[1]["time"] - api[0]["time"] >= 0.9  # waited as told (not a speed assertion)


@pytest.mark.parametrize("status", [429, 503, 500, 502])
def test_errors_without_retry_after_back_off_and_retry(status, emulator, scrape):
    emu = emulator("e621", make_posts(3))
    emu.fault("api", "status", status=status, times=3)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert [e["status"] for e in emu.requests("api")] == [status] * 3 + [200]


def test_backoff_is_exponential(emulator, scrape, monkeypatch):
    monkeypatch.setenv("LORAKIT_BOORU_BACKOFF", "0.1")
    emu = emulator("danbooru", make_posts(1))
    emu.fault("api", "status", status=502, times=3)
    result = scrape(emu, "--tags", "1girl", "--limit", "1")
    assert result.code == 0, result.err
    api = emu.requests("api")
    gaps = [b["time"] - a["time"] for a, b in zip(api, api[1:], strict=False)]
    assert gaps[0] >= 0.09 and gaps[1] >= 0.19 and gaps[2] >= 0.39  # 0.1, 0.2, 0.4 s


def test_five_tries_at_most_then_a_clear_error(emulator, scrape):
    emu = emulator("danbooru", make_posts(3))
    emu.fault("api", "status", status=500, times=50)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 1
    assert len(emu.requests("api")) == 5
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "500" in lines[0] and "Traceback" not in result.err


@pytest.mark.parametrize("family", ["gelbooru", "moebooru"])
def test_dropped_connections_and_truncated_bodies_on_the_api_are_retried(family, emulator, scrape):
    emu = emulator(family, make_posts(3))
    emu.fault("api", "drop")
    emu.fault("api", "truncate")
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 3
    assert len(emu.requests("api")) == 3


def test_dropped_and_truncated_file_downloads_are_retried(emulator, scrape):
    emu = emulator("danbooru", make_posts(3))
    emu.fault("file", "drop", post_id=emu.posts[0].id)
    emu.fault("file", "truncate", post_id=emu.posts[1].id)
    emu.fault("file", "status", status=503, post_id=emu.posts[2].id)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 3 and result.data["failed"] == 0
    for post in emu.posts:
        saved = result.folder / f"danbooru_{post.id}.png"
        assert hashlib.md5(saved.read_bytes()).hexdigest() == post.md5
    assert len(emu.requests("file")) == 6


def test_wrong_md5_on_first_delivery_is_retried_once(emulator, scrape):
    emu = emulator("gelbooru", make_posts(3))
    emu.fault("file", "wrong_md5", post_id=emu.posts[1].id)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 3 and result.data["failed"] == 0
    saved = result.folder / f"gelbooru_{emu.posts[1].id}.png"
    assert hashlib.md5(saved.read_bytes()).hexdigest() == emu.posts[1].md5


def test_wrong_md5_twice_drops_the_post_and_takes_the_next(emulator, scrape):
    emu = emulator("danbooru", make_posts(4))
    bad = emu.posts[1]
    emu.fault("file", "wrong_md5", times=2, post_id=bad.id)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 3 and result.data["failed"] == 1
    assert not (result.folder / f"danbooru_{bad.id}.png").exists()
    assert (result.folder / f"danbooru_{emu.posts[3].id}.png").exists()
    assert "md5" in result.err and f"danbooru_{bad.id}" in result.err
    assert not list(result.folder.glob("*.part"))


def test_a_file_that_does_not_decode_is_dropped(emulator, scrape):
    posts = make_posts(2)
    posts[0].data = b"\x89PNG\r\n\x1a\n" + b"garbage" * 50  # its md5 is published, so only decoding catches it
    emu = emulator("e621", posts)
    result = scrape(emu, "--tags", "1girl", "--limit", "2")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 1 and result.data["failed"] == 1
    assert not (result.folder / f"e621_{posts[0].id}.png").exists()
    assert "decode" in result.err


def test_a_junk_200_body_is_retried(emulator, scrape):
    emu = emulator("danbooru", make_posts(3))
    emu.fault("api", "junk")
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 3


def test_junk_every_time_ends_with_one_line(emulator, scrape):
    emu = emulator("e621", make_posts(3))
    emu.fault("api", "junk", times=99)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 1
    assert len(emu.requests("api")) == 5
    assert "not JSON" in result.err and len(result.err.strip().splitlines()) == 1


@pytest.mark.parametrize("target", ["api", "file"])
def test_cloudflare_challenge_ends_the_run_without_retrying(target, emulator, scrape):
    emu = emulator("danbooru", make_posts(3))
    emu.fault(target, "cloudflare", times=99)
    result = scrape(emu, "--tags", "1girl", "--limit", "3", "--concurrency", "1")
    assert result.code == 1
    assert "Cloudflare" in result.err and len(result.err.strip().splitlines()) == 1
    assert len(emu.requests(target)) == 1  # no retry storm
    assert not list(result.folder.glob("*.part"))


def test_unreachable_host_exits_1(scrape):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    result = scrape(None, "--tags", "1girl", "--limit", "1", base_url=f"http://127.0.0.1:{port}")
    assert result.code == 1
    assert "cannot reach" in result.err and len(result.err.strip().splitlines()) == 1


def test_api_rate_is_respected(emulator, scrape):
    emu = emulator("danbooru", make_posts(60), api_rate=5)
    result = scrape(emu, "--tags", "1girl", "--limit", "60", "--min-score", "0", rate="5")
    emu.posts  # noqa: B018
    assert result.code == 0, result.err
    api = emu.requests("api")
    assert emu.rate_violations == 0
    assert all(b["time"] - a["time"] >= 0.1 for a, b in zip(api, api[1:], strict=False))  # 0.2 s apart, loosely
