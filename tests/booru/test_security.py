"""The API's JSON is hostile: nothing it says writes outside the output folder or crashes the run."""

from __future__ import annotations

import os

import pytest

from tests.booru.emulator import DELETE, make_posts


def _all_files(root):
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


@pytest.mark.parametrize(("override", "reason"), [
    ({"file_ext": "../../../evil"}, "not_still_image"),
    ({"file_ext": "png/../../evil.png"}, "not_still_image"),
    ({"id": "../../evil"}, "bad-record"),
    ({"id": -5}, "bad-record"),
    ({"md5": "../../etc/passwd"}, "bad-record"),
    ({"score": "lots"}, "bad-record"),
    ({"tag_string_general": {"a": 1}}, "bad-record"),
    ({"image_width": [1, 2]}, "bad-record"),
    ({"is_deleted": "maybe"}, "bad-record"),
    ({"file_url": "file:///etc/passwd"}, "restricted"),
    ({"file_url": DELETE}, "restricted"),
    ({"md5": None}, "restricted"),
])
def test_hostile_danbooru_fields_skip_the_post(override, reason, emulator, scrape, tmp_path):
    posts = make_posts(3)
    posts[1].overrides = override
    emu = emulator("danbooru", posts)
    out = tmp_path / "work" / "dataset"
    result = scrape(emu, "--tags", "1girl", "--limit", "3", out=out)
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 2
    assert result.data["skipped"] == {reason: 1}
    if reason == "bad-record":
        assert "skipped" in result.err and "Traceback" not in result.err
    assert _all_files(tmp_path) == {os.path.join("work", "dataset", f) for f in _all_files(out)}
    assert all(not f.startswith("..") for f in _all_files(out))


@pytest.mark.parametrize(("family", "override"), [
    ("gelbooru", {"image": "../../x.png", "file_url": "http://127.0.0.1:1/../../x.png"}),
    ("gelbooru", {"tags": 5}),
    ("gelbooru-v02", {"directory": {"x": 1}, "file_url": None}),
    ("moebooru", {"tags": ["a", 3]}),
    ("e621", {"file": "nope"}),
    ("e621", {"tags": {"general": "not a list", "artist": 7}}),
    ("e621", {"sources": "http://x"}),
])
def test_wrong_types_in_other_families_skip_with_a_warning(family, override, emulator, scrape, tmp_path):
    posts = make_posts(3)
    posts[0].overrides = override
    emu = emulator(family, posts)
    out = tmp_path / "dataset"
    result = scrape(emu, "--tags", "1girl", "--limit", "3", out=out)
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 2
    assert sum(result.data["skipped"].values()) + result.data["failed"] == 1
    assert _all_files(tmp_path) == {os.path.join("dataset", f) for f in _all_files(out)}


def test_a_non_list_page_is_an_error_not_a_crash(emulator, scrape):
    emu = emulator("e621", make_posts(2))
    emu.posts[0].overrides = {}
    emu.fault("api", "empty", times=99)  # 200 with an empty body where JSON was due
    result = scrape(emu, "--tags", "1girl", "--limit", "2")
    assert result.code == 1 and "Traceback" not in result.err
