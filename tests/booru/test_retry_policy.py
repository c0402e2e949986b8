"""Issue 15 #5: one retry policy with one budget across the API client, the JSON decoding, Moebooru's
500 reading and the file downloads; Retry-After as seconds or an HTTP date."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from booru.retry import MAX_TRIES, parse_retry_after
from tests.booru.emulator import make_posts


@pytest.mark.parametrize("family", ["danbooru", "e621", "gelbooru", "moebooru"])
def test_a_page_that_keeps_answering_non_json_costs_five_requests(family, emulator, scrape):
    emu = emulator(family, make_posts(3))
    emu.fault("api", "junk", times=100)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 1 and "not JSON" in result.err and result.err.count("\n") == 1
    assert len(emu.requests("api")) == MAX_TRIES == 5


def test_moebooru_500s_cost_five_requests(emulator, scrape):
    emu = emulator("moebooru", make_posts(3))
    emu.fault("api", "status", status=500, times=100)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 1 and "500" in result.err
    assert len(emu.requests("api")) == 5


@pytest.mark.parametrize("family", ["danbooru", "moebooru"])
def test_every_kind_of_failure_shares_one_budget(family, emulator, scrape):
    emu = emulator(family, make_posts(3))
    for kind in ("drop", "junk", "status", "junk", "drop", "junk"):
        emu.fault("api", kind, status=502)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 1 and "Traceback" not in result.err
    assert len(emu.requests("api")) == 5


def test_four_failures_then_an_answer_succeeds(emulator, scrape):
    emu = emulator("moebooru", make_posts(3))
    for kind in ("junk", "status", "drop", "junk"):
        emu.fault("api", kind, status=500)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 3 and len(emu.requests("api")) == 5


def test_retry_after_parses_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("  0 ") == 0.0
    assert 8.0 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: retry now
    assert parse_retry_after("99999") == 120.0  # capped
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("target", ["api", "file"])
def test_an_http_date_retry_after_is_honoured(target, emulator, scrape):
    emu = emulator("danbooru", make_posts(1))
    # The date is made when the 429 is served; whole seconds, so the wait is between 1 and 2 s.
    emu.fault(target, "status", status=429, retry_after=lambda: formatdate(time.time() + 2, usegmt=True))
    result = scrape(emu, "--tags", "1girl", "--limit", "1")
    assert result.code == 0, result.err
    hits = emu.requests(target)
    assert [e["status"] for e in hits] == [429, 200]
    assert hits[1]["time"] - hits[0]["time"] >= 0.9  # waited for the date, not the 10 ms backoff


def test_a_file_that_keeps_failing_costs_five_requests(emulator, scrape):
    emu = emulator("danbooru", make_posts(2))
    emu.fault("file", "status", status=503, times=100, post_id=emu.posts[0].id)
    result = scrape(emu, "--tags", "1girl", "--limit", "2")
    assert result.code == 0 and result.data["failed"] == 1
    assert len([e for e in emu.requests("file") if e["status"] == 503]) == 5
