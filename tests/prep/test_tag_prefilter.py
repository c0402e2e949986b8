"""The raw-text prefilter of `tags remove` never skips a caption the full parse would change."""

import random

from prep.captions import parse_caption
from prep.tag_edit import remove_tags  # the same function as prep.tag_query.remove_matching
from prep.tag_query import PatternSet

WORDS = ["long", "hair", "Long_Hair", "hat", "\\(object\\)", "(object)", "^_^", "=_=", "white", "SHIRT",
         "back_ground", "background", "x", "a\\b", "café", "Σ", "  ", "_"]
PATTERNS = ["long hair", "*background", "hat (object)", "^_^", "white*", "*", "a\\b", "café", "σ", "x",
            "* *", "shirt", "back ground", "*_*"]


def test_prefilter_agrees_with_parsing_on_random_captions():
    rng = random.Random(7)
    for _ in range(4000):
        tags = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 5))]
        text = rng.choice([", ", ",", " , ", ",  "]).join(tags)
        patterns = PatternSet(rng.sample(PATTERNS, rng.randint(1, 3)))
        parsed = parse_caption(text)
        changes = remove_tags(parsed, patterns) != parsed
        if changes:
            assert patterns.text_may_match(text), (text, [p.pattern for p in patterns.patterns])


def test_prefilter_rejects_captions_without_the_tag():
    patterns = PatternSet(["watermark"])
    assert not patterns.text_may_match("1girl, long hair, smile")
    assert patterns.text_may_match("1girl, WaterMark")
    assert PatternSet(["*"]).text_may_match("anything")
