"""Small pure pieces: query splitting, local matching, ratings, captions, redaction, the rate limiter."""

from __future__ import annotations

import time

import pytest

from booru.captions import caption_tags, parse_categories
from booru.errors import BooruUsageError
from booru.http import RateLimiter, Redactor
from booru.post import Post, normalize_rating
from booru.query import DANBOORU_FREE_METATAGS, matches_locally, split_for_limit
from booru.sites.base import Credentials, extension_of, tag_limit_of


def test_split_for_limit_sends_counted_metatags_first_and_keeps_free_ones():
    split = split_for_limit(["-hat", "1girl", "order:score", "rating:g", "smile"], 2, DANBOORU_FREE_METATAGS)
    assert split.sent == ["1girl", "order:score", "rating:g"]
    assert split.local == ["-hat", "smile"] and split.ignored == []


def test_split_for_limit_reports_metatags_it_cannot_apply():
    split = split_for_limit(["order:score", "user:bob", "a"], 1, DANBOORU_FREE_METATAGS)
    assert split.sent == ["order:score"] and split.local == ["a"] and split.ignored == ["user:bob"]


def test_local_matching_folds_spelling_and_supports_wildcards():
    post = Post("danbooru", 1, "0" * 32, "http://x/1.png", "png", tags={"general": ["Long_Hair", "hat"]})
    assert matches_locally(post, ["long hair", "-smile"])
    assert not matches_locally(post, ["-hat"])
    assert matches_locally(post, ["long_*"]) and not matches_locally(post, ["short_*"])


@pytest.mark.parametrize(("word", "letter"), [("general", "g"), ("Sensitive", "s"), ("safe", "s"),
                                              ("questionable", "q"), ("explicit", "e"), ("x", None), (3, None)])
def test_ratings_map_by_first_letter(word, letter):
    assert normalize_rating(word) == letter


def test_caption_order_spelling_and_uncategorized():
    tags = {"general": ["^_^", "long_hair"], "character": ["miku"], "meta": ["highres"], "artist": ["a&amp;b"]}
    assert caption_tags(tags, parse_categories("general,character,artist")) == ["miku", "a&b", "^_^", "long hair"]
    assert caption_tags({"uncategorized": ["b_c", "a"]}, ("character",)) == ["b c", "a"]
    with pytest.raises(BooruUsageError):
        parse_categories("hair")


def test_redaction_and_credentials_repr_hide_the_key():
    assert Redactor(["k3y"])("url?api_key=k3y&x=1") == "url?api_key=***&x=1"
    assert "k3y" not in repr(Credentials("bob", "k3y", "1"))


def test_helpers_read_untrusted_strings_safely():
    assert extension_of("https://h/a/b/c.PNG?x=1.zip") == "png"
    assert extension_of("https://h/a/noext") is None
    assert tag_limit_of("You cannot search for more than 2 tags at a time.") == 2
    assert tag_limit_of("Error: You cannot search for more than 6 tags at a time") == 6


def test_rate_limiter_spaces_calls():
    limiter = RateLimiter(20)
    start = time.monotonic()
    for _ in range(5):
        limiter.wait()
    assert time.monotonic() - start >= 0.19  # four gaps of 50 ms


def test_tag_types_map_the_same_way_for_every_family():
    """One reading of a site's tag type: ids as ints or digit strings, names in any case, else general."""
    from booru.sites import gelbooru, moebooru
    from booru.sites.base import category_of

    for module in (gelbooru, moebooru):
        assert category_of(4, module.TYPE_IDS, module.TYPE_NAMES) == "character"
        assert category_of("4", module.TYPE_IDS, module.TYPE_NAMES) == "character"
        assert category_of("Copyright", module.TYPE_IDS, module.TYPE_NAMES) == "copyright"
        for junk in (True, None, [4], 99, "no-such-type"):
            assert category_of(junk, module.TYPE_IDS, module.TYPE_NAMES) == "general"
