"""Every API family against the emulator: names, captions, md5s, paging, categories."""

from __future__ import annotations

import hashlib

import pytest

import prep
from tests.booru.emulator import FakePost, make_posts

SITE_OF = {"danbooru": "danbooru", "gelbooru": "gelbooru", "gelbooru-v02": "gelbooru-v02",
           "moebooru": "moebooru", "e621": "e621"}


@pytest.mark.parametrize("family", list(SITE_OF))
def test_each_family_saves_the_first_posts_with_true_md5s_and_captions(family, emulator, scrape):
    emu = emulator(family, make_posts(12))
    result = scrape(emu, "--tags", "1girl", "--limit", "5")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 5 and result.data["failed"] == 0
    wanted = emu.posts[:5]  # newest first
    names = sorted(p.name for p in result.folder.iterdir() if p.suffix == ".png")
    assert names == sorted(f"{family}_{p.id}.png" for p in wanted)
    assert [f.rsplit("/", 1)[-1] for f in result.data["files"]] == [f"{family}_{p.id}.png" for p in wanted]
    for post in wanted:
        data = (result.folder / f"{family}_{post.id}.png").read_bytes()
        assert hashlib.md5(data).hexdigest() == post.md5
        caption = (result.folder / f"{family}_{post.id}.txt").read_text(encoding="utf-8")
        assert caption.startswith(f"character {post.id % 3}, some series, 1girl, long hair, ^_^, tag {post.id}")
        assert "artist x" not in caption and "highres" not in caption
    assert not list(result.folder.glob("*.part"))
    from prep.provenance import read_store

    store = read_store(result.folder)  # each tag's source is the post it came from
    post = wanted[0]
    sources = store.sources(f"{family}_{post.id}.png",
                            (result.folder / f"{family}_{post.id}.txt").read_bytes())
    store.close()
    assert sources and {s.source for s in sources.values()} == {f"booru:{SITE_OF[family]}:{post.id}"}
    agent = f"lorakit/{prep.__version__} (+{prep.PROJECT_URL})"
    assert emu.log and all(entry["ua"] == agent for entry in emu.log)


@pytest.mark.parametrize(("site", "family"), [("safebooru", "danbooru"), ("e926", "e621")])
def test_sibling_sites_use_their_family(site, family, emulator, scrape):
    emu = emulator(family, make_posts(4))
    result = scrape(emu, "--tags", "1girl", "--limit", "2", site=site)
    assert result.code == 0, result.err
    assert sorted(p.name for p in result.folder.glob("*.png")) == sorted(f"{site}_{p.id}.png" for p in emu.posts[:2])


@pytest.mark.parametrize("family", list(SITE_OF))
def test_base_url_gets_only_the_api_paths_appended(family, emulator, scrape):
    emu = emulator(family, make_posts(3), prefix="/mirror/booru")
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 3
    assert all(entry["kind"] != "unknown" for entry in emu.log), [e["path"] for e in emu.log]
    assert all(entry["path"].startswith("/mirror/booru/") for entry in emu.log)


def test_caption_categories_follow_the_fixed_order(emulator, scrape):
    emu = emulator("e621", make_posts(2))
    result = scrape(emu, "--tags", "fox", "--limit", "1", "--categories", "species,meta,general,artist,character")
    assert result.code == 0, result.err
    post = emu.posts[0]
    caption = (result.folder / f"e621_{post.id}.txt").read_text()
    assert caption == f"character {post.id % 3}, artist x, 1girl, long hair, ^_^, tag {post.id}, highres, fox"


def test_gelbooru_tags_are_unescaped_and_categorized_by_a_batched_cached_lookup(emulator, scrape):
    posts = make_posts(130)
    for post in posts:
        post.tags["general"].append("girls'_frontline")
        post.tags["copyright"] = ["rock_&_roll"]
    emu = emulator("gelbooru", posts)
    result = scrape(emu, "--tags", "1girl", "--limit", "120", "--categories", "copyright,general")
    assert result.code == 0, result.err
    caption = (result.folder / f"gelbooru_{posts[0].id}.txt").read_text()
    assert caption == f"rock & roll, 1girl, long hair, ^_^, tag {posts[0].id}, girls' frontline, fox"
    lookups = emu.requests("tag")
    asked = [name for entry in lookups for name in entry["params"]["names"].split()]
    assert len(asked) == len(set(asked)), "a tag was looked up twice (no cache)"
    assert all(len(entry["params"]["names"].split()) <= 100 for entry in lookups)
    assert len(lookups) < 10  # batched, not one request per tag or per post
    assert len(emu.requests("api")) == 2  # two pages of 100


def test_clone_without_tag_api_keeps_every_tag_in_site_order(emulator, scrape):
    emu = emulator("gelbooru-v02", make_posts(3), tag_api=False)
    result = scrape(emu, "--tags", "1girl", "--limit", "2")
    assert result.code == 0, result.err
    post = emu.posts[0]
    caption = (result.folder / f"gelbooru-v02_{post.id}.txt").read_text()
    expected = ", ".join(t.replace("_", " ") if t != "^_^" else t for t in post.all_tags)
    assert caption == expected
    assert result.err.count("no tag categories") == 1


def test_moebooru_categories_come_from_api_version_2(emulator, scrape):
    emu = emulator("moebooru", make_posts(3))
    result = scrape(emu, "--tags", "1girl", "--limit", "1", "--categories", "artist")
    assert result.code == 0, result.err
    assert (result.folder / f"moebooru_{emu.posts[0].id}.txt").read_text() == "artist x"
    assert emu.requests("api")[0]["params"]["api_version"] == "2"
    assert emu.requests("api")[0]["params"]["include_tags"] == "1"


def test_extensions_come_from_the_file_type_only(emulator, scrape):
    posts = [FakePost(900, ext="jpeg"), FakePost(899, ext="webp"), FakePost(898, ext="bmp"), FakePost(897, ext="gif"),
             FakePost(896, ext="zip"), FakePost(895, ext="webm"), FakePost(894, ext="jpg")]
    emu = emulator("danbooru", posts)
    result = scrape(emu, "--tags", "", "--limit", "10")
    assert result.code == 0, result.err
    names = sorted(p.name for p in result.folder.iterdir() if not p.name.startswith(".") and p.suffix != ".txt")
    assert names == ["danbooru_894.jpg", "danbooru_898.bmp", "danbooru_899.webp", "danbooru_900.jpg"]
    assert result.data["skipped"] == {"not_still_image": 3}


@pytest.mark.parametrize("family", ["danbooru", "e621"])
def test_id_cursor_paging(family, emulator, scrape):
    emu = emulator(family, make_posts(70))
    emu.posts[3].score = -5  # filtered, so a second page is needed
    result = scrape(emu, "--tags", "1girl", "--limit", "65", "--min-score", "0")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 65 and result.data["skipped"] == {"score": 1}
    pages = [entry["params"].get("page") for entry in emu.requests("api")]
    assert pages == [None, f"b{emu.posts[64].id}"]


@pytest.mark.parametrize("family", ["danbooru", "e621"])
def test_ordered_queries_page_by_number_until_the_page_cap(family, emulator, scrape):
    emu = emulator(family, make_posts(70), page_cap=2)
    result = scrape(emu, "--tags", "1girl order:score", "--limit", "60", "--min-score", "11")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 0 and result.data["skipped"] == {"score": 70}
    assert [e["params"]["page"] for e in emu.requests("api")] == ["1", "2", "3"]
    assert "beyond" in result.err and result.err.count("warning") == 1


def test_gelbooru_depth_cap_continues_with_id_below_last(emulator, scrape):
    emu = emulator("gelbooru", make_posts(100), depth_cap=40)
    for post in emu.posts[:20]:
        post.score = -5
    result = scrape(emu, "--tags", "1girl", "--limit", "70", "--min-score", "0")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 70
    queries = [(e["params"]["tags"], e["params"]["pid"]) for e in emu.requests("api")]
    assert queries[0] == ("1girl", "0")
    assert queries[1] == ("1girl", "1")  # offset 70 > 40: "Too deep!"
    assert queries[2] == (f"1girl id:<{emu.posts[69].id}", "0")
    assert "id:<" in result.err


def test_clone_depth_cap_and_empty_body_end(emulator, scrape):
    emu = emulator("gelbooru-v02", make_posts(30), depth_cap=10)
    result = scrape(emu, "--tags", "1girl", "--limit", "100")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 30  # every post, past the cap, until an empty body
    assert emu.requests("api")[-1]["status"] == 200


def test_moebooru_pages_by_number_until_empty(emulator, scrape):
    emu = emulator("moebooru", make_posts(45))
    for post in emu.posts[:30]:
        post.rating = "e"
    result = scrape(emu, "--tags", "1girl", "--limit", "20", "--rating", "s")
    assert result.code == 0, result.err
    assert result.data["downloaded"] == 15 and result.data["skipped"] == {"rating": 30}
    assert [e["params"]["page"] for e in emu.requests("api")] == ["1", "2", "3", "4"]
    # a short page is not the end; the empty one is


@pytest.mark.parametrize("family", list(SITE_OF))
def test_a_lone_object_where_a_list_is_expected(family, emulator, scrape):
    emu = emulator(family, make_posts(3))
    emu.fault("api", "lone")
    result = scrape(emu, "--tags", "1girl", "--limit", "3")
    assert result.code == 0, result.err
    assert result.data["downloaded"] >= 1
