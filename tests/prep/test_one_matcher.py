"""Issue 15 #4: one wildcard matcher (prep.tag_query.TagPattern: only `*` is special) for the booru's
local query terms, the tagger's --exclude, clean's remove rule and `tags remove` (one function)."""

from __future__ import annotations

from booru.post import Post
from booru.query import matches_locally
from prep import clean, tag_edit
from prep.tag_query import PatternSet, remove_matching
from tagger.compose import CaptionStyle, caption_tags
from tagger.thresholds import Prediction


def _post(*tags: str) -> Post:
    return Post("danbooru", 1, None, None, "png", tags={"general": list(tags)})


def test_booru_local_terms_treat_question_marks_and_brackets_as_characters():
    assert matches_locally(_post("what?", "x"), ["what?*"])
    assert not matches_locally(_post("whatx_y"), ["what?*"])  # fnmatch's `?` matched any character
    assert matches_locally(_post("[neko]_ears"), ["[neko]*"])
    assert not matches_locally(_post("n_ears"), ["[neko]*"])  # fnmatch's `[neko]` was a character class
    assert matches_locally(_post("long_hair"), ["*hair", "-*hat"])
    assert not matches_locally(_post("long_hair", "red_hat"), ["*hair", "-*hat"])
    assert matches_locally(_post("Long_Hair"), ["long hair"])  # the same spelling key as everywhere


def test_the_tagger_exclude_uses_the_same_matcher():
    pred = Prediction("general", 0.9, [], [("what?", 0.9), ("whatx", 0.8), ("simple_background", 0.7),
                                           ("long_hair", 0.6)])
    kept = [t for t, _ in caption_tags(pred, CaptionStyle(exclude=("what?", "*background")))]
    assert kept == ["whatx", "long hair"]


def test_clean_and_tag_edit_remove_with_one_function():
    assert clean.remove_matching is remove_matching is tag_edit.remove_tags
    assert remove_matching(["what?", "whatx", "a[b]"], PatternSet(["what?", "a[b]*"])) == ["whatx"]
