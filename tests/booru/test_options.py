"""Options of `lorakit scrape`: output layout, filters, skip reasons, the tag limit, auth, usage errors."""

from __future__ import annotations

import pytest

from tests.booru.emulator import FakePost, make_posts


def test_concept_and_repeats_choose_the_folder(emulator, scrape):
    emu = emulator("danbooru", make_posts(3))
    result = scrape(emu, "--tags", "1girl", "--limit", "2", "--concept", "hatsune miku", "--repeats", "5")
    assert result.code == 0, result.err
    folder = result.folder / "5_hatsune miku"
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(f"danbooru_{p.id}.png" for p in emu.posts[:2])
    assert not list(result.folder.glob("*.png"))
    other = scrape(emu, "--tags", "1girl", "--limit", "1", "--concept", "miku", out=result.folder.parent / "other")
    assert (other.folder / "1_miku" / f"danbooru_{emu.posts[0].id}.png").exists(), other.err


def test_skip_reasons_are_counted(emulator, scrape):
    posts = make_posts(8)
    posts[0].deleted = True
    posts[1].restricted = True
    posts[2].ext = "zip"
    posts[2].data = b"PK" * 100
    posts[3].ext = "webm"
    posts[4].ext = "gif"
    posts[4].data = b""
    posts[4].__post_init__()
    emu = emulator("danbooru", posts)
    result = scrape(emu, "--tags", "1girl", "--limit", "5")
    assert result.code == 0, result.err
    assert result.data == {"downloaded": 3, "skipped": {"deleted": 1, "not_still_image": 3, "restricted": 1},
                           "failed": 0, "files": result.data["files"]}
    assert len(result.data["files"]) == 3


def test_e621_restricted_and_deleted_posts(emulator, scrape):
    posts = make_posts(5)
    posts[0].restricted = True
    posts[1].deleted = True
    emu = emulator("e621", posts)
    result = scrape(emu, "--tags", "1girl status:any", "--limit", "5")
    assert result.code == 0, result.err
    assert result.data["skipped"] == {"deleted": 1, "restricted": 1}
    assert result.data["downloaded"] == 3


def test_rating_score_size_and_blacklist_filters(emulator, scrape, tmp_path):
    posts = make_posts(10)
    posts[0].rating = "e"
    posts[1].rating = "q"
    posts[2].score = 1
    posts[3] = FakePost(posts[3].id, width=20, height=200, tags=posts[3].tags)
    posts[4].tags["general"].append("bad_tag")
    posts[5].tags["general"].append("worse_tag")
    emu = emulator("gelbooru", posts)
    listing = tmp_path / "blacklist.txt"
    listing.write_text("# tags I never want\nworse tag\n", encoding="utf-8")
    result = scrape(emu, "--tags", "1girl", "--limit", "10", "--rating", "g,s", "--min-score", "5",
                    "--min-side", "25", "--blacklist", "bad_tag", f"@{listing}")
    assert result.code == 0, result.err
    assert result.data["skipped"] == {"blacklisted": 2, "rating": 2, "score": 1, "too_small": 1}
    assert result.data["downloaded"] == 4


def test_min_side_checks_the_decoded_image_too(emulator, scrape):
    posts = make_posts(2)
    posts[0].overrides = {"image_width": 4000, "image_height": 4000}  # the API overstates the size
    emu = emulator("danbooru", posts)
    result = scrape(emu, "--tags", "1girl", "--limit", "2", "--min-side", "35")
    assert result.code == 0, result.err
    assert result.data["skipped"] == {"too_small": 2}


def test_word_ratings_map_by_first_letter(emulator, scrape):
    posts = make_posts(4)
    for post, rating in zip(posts, "gsqe", strict=False):
        post.rating = rating
    emu = emulator("gelbooru-v02", posts)
    result = scrape(emu, "--tags", "1girl", "--limit", "4", "--rating", "questionable,e")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 2 and result.data["skipped"] == {"rating": 2}


def test_danbooru_tag_limit_sends_what_is_accepted_and_filters_the_rest(emulator, scrape):
    posts = make_posts(12)
    for post in posts[:6]:
        post.tags["general"].append("smile")
    posts[1].tags["general"].append("hat")
    emu = emulator("danbooru", posts, tag_limit=2)
    result = scrape(emu, "--tags", "1girl long_hair smile -hat rating:g", "--limit", "10")
    assert result.code == 0, result.err
    api = emu.requests("api")
    assert api[0]["status"] == 422
    assert api[1]["params"]["tags"] == "1girl long_hair rating:g"
    assert result.data["downloaded"] == 5
    assert result.data["skipped"] == {"query": 7}
    assert result.err.count("locally") == 1


def test_tag_limit_does_not_apply_with_a_key(emulator, scrape):
    emu = emulator("danbooru", make_posts(3), tag_limit=2)
    result = scrape(emu, "--tags", "1girl long_hair solo_x -tag_1", "--limit", "3", "--login", emu.login,
                    "--api-key", emu.api_key)
    assert result.code == 0, result.err
    assert [e["status"] for e in emu.requests("api")] == [200]


@pytest.mark.parametrize(("family", "site", "variables"), [
    ("danbooru", "danbooru", ["LORAKIT_DANBOORU_LOGIN", "LORAKIT_DANBOORU_API_KEY"]),
    ("gelbooru", "gelbooru", ["LORAKIT_GELBOORU_API_KEY", "LORAKIT_GELBOORU_USER_ID"]),
    ("gelbooru-v02", "gelbooru-v02", ["LORAKIT_GELBOORU_V02_API_KEY", "LORAKIT_GELBOORU_V02_USER_ID"]),
    ("e621", "e926", ["LORAKIT_E926_LOGIN", "LORAKIT_E926_API_KEY"]),
    ("moebooru", "moebooru", ["LORAKIT_MOEBOORU_LOGIN", "LORAKIT_MOEBOORU_API_KEY"]),
])
def test_missing_key_ends_with_one_line_naming_the_variables(family, site, variables, emulator, scrape):
    emu = emulator(family, make_posts(2), require_key=True)
    result = scrape(emu, "--tags", "1girl", "--limit", "2", site=site)
    assert result.code == 1
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and all(name in lines[0] for name in variables), lines
    assert len(emu.requests("api")) == 1


@pytest.mark.parametrize("family", ["danbooru", "gelbooru", "e621", "moebooru"])
def test_keys_from_the_environment_never_leak(family, emulator, scrape, monkeypatch):
    emu = emulator(family, make_posts(3), require_key=True)
    prefix = f"LORAKIT_{family.upper()}"
    monkeypatch.setenv(f"{prefix}_LOGIN", emu.login)
    monkeypatch.setenv(f"{prefix}_API_KEY", emu.api_key)
    monkeypatch.setenv(f"{prefix}_USER_ID", emu.user_id)
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 3
    key = emu.api_key.encode()
    for path in result.folder.rglob("*"):
        if path.is_file():
            assert key not in path.read_bytes(), path
    assert emu.api_key not in result.out + result.err
    for entry in emu.requests("file"):  # file hosts come from untrusted JSON: never send them a key
        assert not entry["authorization"] and "api_key" not in entry["params"]


def test_a_wrong_key_is_refused_without_echoing_it(emulator, scrape):
    emu = emulator("gelbooru", make_posts(2))
    result = scrape(emu, "--tags", "1girl", "--limit", "1", "--api-key", "WRONG-secret-999", "--user-id", "42")
    assert result.code == 1
    assert "LORAKIT_GELBOORU_API_KEY" in result.err and "WRONG-secret-999" not in result.err


@pytest.mark.parametrize("args", [
    ["--site", "danbooru", "--limit", "3"],  # no --tags
    ["--site", "danbooru", "--tags", "x"],  # no --limit
    ["--site", "danbooru", "--tags", "x", "--limit", "0"],
    ["--site", "nosuchbooru", "--tags", "x", "--limit", "1"],
    ["--site", "gelbooru-v02", "--tags", "x", "--limit", "1"],  # a clone needs --base-url
    ["--site", "danbooru", "--tags", "x", "--limit", "1", "--categories", "hair"],
    ["--site", "danbooru", "--tags", "x", "--limit", "1", "--rating", "z"],
    ["--site", "danbooru", "--tags", "x", "--limit", "many"],
    ["--site", "danbooru", "--tags", "x", "--limit", "1", "--concept", "../up"],
    ["--site", "danbooru", "--tags", "x", "--limit", "1", "--base-url", "ftp://host"],
])
def test_usage_errors_exit_2(args, tmp_path, capsys):
    from tui.cli import main

    with pytest.raises(SystemExit) as exc:
        code = main(["scrape", "--out", str(tmp_path / "ds"), *args])
        raise SystemExit(code)
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_moebooru_tag_limit_comes_as_a_500_and_falls_back_too(emulator, scrape):
    posts = make_posts(6)
    posts[0].tags["general"].append("hat")
    emu = emulator("moebooru", posts, tag_limit=2)
    result = scrape(emu, "--tags", "1girl long_hair -hat", "--limit", "6")
    assert result.code == 0, result.err
    statuses = [e["status"] for e in emu.requests("api")]
    assert statuses[0] == 500 and 500 not in statuses[1:]
    assert result.data["downloaded"] == 5 and result.data["skipped"] == {"query": 1}


def test_a_500_that_is_not_a_tag_limit_is_retried(emulator, scrape):
    emu = emulator("moebooru", make_posts(2))
    emu.fault("api", "status", status=500, times=2)
    result = scrape(emu, "--tags", "1girl", "--limit", "2")
    assert result.code == 0, result.err
    assert [e["status"] for e in emu.requests("api")][:3] == [500, 500, 200]


def test_gelbooru_quota_xml_asks_for_a_key(emulator, scrape):
    emu = emulator("gelbooru", make_posts(2))
    emu.fault("api", "quota")
    result = scrape(emu, "--tags", "1girl", "--limit", "2")
    assert result.code == 1
    assert "LORAKIT_GELBOORU_API_KEY" in result.err and len(result.err.strip().splitlines()) == 1


def test_default_rate_is_one_request_per_second_for_e621(emulator, scrape):
    emu = emulator("e621", make_posts(25))
    emu.posts[0].score = -1
    result = scrape(emu, "--tags", "1girl", "--limit", "20", "--min-score", "0", rate="")
    assert result.code == 0, result.err
    api = emu.requests("api")
    assert len(api) == 2 and api[1]["time"] - api[0]["time"] >= 0.8  # 1 s apart, loosely
