"""Per-step caption processing: keep_tokens, separator, shuffle, dropout."""

from __future__ import annotations

import random

from trainer.caption_augment import CaptionOptions, process_caption

CAPTION = "chara, 1girl, solo, smile, long hair, blue eyes, skirt"


def test_keep_tokens_fixes_the_head_and_shuffles_the_rest():
    options = CaptionOptions(shuffle_caption=True, keep_tokens=2)
    seen = set()
    for seed in range(30):
        out = process_caption(CAPTION, options, random.Random(seed)).split(", ")
        assert out[:2] == ["chara", "1girl"]
        assert sorted(out) == sorted(CAPTION.split(", "))
        seen.add(tuple(out))
    assert len(seen) > 5


def test_no_shuffle_keeps_order():
    assert process_caption(CAPTION, CaptionOptions(), random.Random(0)) == CAPTION


def test_keep_tokens_separator_head_and_tail():
    caption = "chara, 1girl ||| solo, smile, skirt ||| masterpiece"
    options = CaptionOptions(shuffle_caption=True, keep_tokens=5, keep_tokens_separator="|||")
    for seed in range(10):
        out = process_caption(caption, options, random.Random(seed)).split(", ")
        assert out[:2] == ["chara", "1girl"] and out[-1] == "masterpiece"
        assert sorted(out[2:-1]) == ["skirt", "smile", "solo"]
    plain = process_caption(caption, CaptionOptions(keep_tokens_separator="|||"), random.Random(0))
    assert "|||" not in plain and plain.startswith("chara, 1girl, solo")


def test_dropouts():
    assert process_caption(CAPTION, CaptionOptions(caption_dropout_rate=1.0), random.Random(0)) == ""
    out = process_caption(CAPTION, CaptionOptions(keep_tokens=1, caption_tag_dropout_rate=1.0), random.Random(0))
    assert out == "chara"
