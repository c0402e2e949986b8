"""Per-step caption processing as kohya's `process_caption`: dropout, keep_tokens, shuffle, tag dropout."""

from __future__ import annotations

import random
from dataclasses import dataclass

CAPTION_SEPARATOR = ","


@dataclass(frozen=True)
class CaptionOptions:
    shuffle_caption: bool = False
    keep_tokens: int = 0
    keep_tokens_separator: str = ""
    caption_dropout_rate: float = 0.0
    caption_tag_dropout_rate: float = 0.0


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(CAPTION_SEPARATOR) if t.strip()]


def strip_separator(caption: str, separator: str) -> str:
    """The caption with the keep_tokens separator removed (what the model sees without shuffling)."""
    if not separator or separator not in caption:
        return caption
    return ", ".join(_split(caption.replace(separator, CAPTION_SEPARATOR)))


def process_caption(caption: str, options: CaptionOptions, rng: random.Random) -> str:
    """The caption one training step sees.

    The whole caption is dropped with caption_dropout_rate. Otherwise, when shuffling or tag
    dropout is on, the first keep_tokens tags (or everything before keep_tokens_separator, and
    after a second separator) stay fixed and the rest is shuffled and/or thinned.
    """
    if options.caption_dropout_rate > 0 and rng.random() < options.caption_dropout_rate:
        return ""
    separator = options.keep_tokens_separator
    if not (options.shuffle_caption or options.caption_tag_dropout_rate > 0):
        return strip_separator(caption, separator)
    fixed: list[str] = []
    suffix: list[str] = []
    if separator and separator in caption:
        fixed_part, flex_part = caption.split(separator, 1)
        if separator in flex_part:
            flex_part, suffix_part = flex_part.split(separator, 1)
            suffix = _split(suffix_part.replace(separator, CAPTION_SEPARATOR))
        fixed = _split(fixed_part)
        flex = _split(flex_part)
    else:
        tags = _split(caption)
        keep = max(options.keep_tokens, 0)
        fixed, flex = tags[:keep], tags[keep:]
    if options.shuffle_caption:
        rng.shuffle(flex)
    if options.caption_tag_dropout_rate > 0:
        flex = [t for t in flex if rng.random() >= options.caption_tag_dropout_rate]
    return ", ".join(fixed + flex + suffix)
