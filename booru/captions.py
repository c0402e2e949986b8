"""Captions from booru tags: chosen categories in a fixed order, prompt spelling."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from booru.errors import BooruUsageError
from booru.post import CATEGORY_ORDER, UNCATEGORIZED
from prep.captions import underscores_to_spaces, unique_tags

DEFAULT_CATEGORIES = "character,copyright,general"


def parse_categories(text: str) -> tuple[str, ...]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CATEGORY_ORDER]
    if unknown or not names:
        raise BooruUsageError(f"--categories: {', '.join(unknown) or 'nothing given'} is not a category; "
                              f"choose from {','.join(CATEGORY_ORDER)}")
    return tuple(c for c in CATEGORY_ORDER if c in names)


def caption_tag(tag: str) -> str:
    return underscores_to_spaces(html.unescape(tag))


def caption_tags(tags: Mapping[str, Iterable[str]], categories: Iterable[str]) -> list[str]:
    """The caption's tags: categories in CATEGORY_ORDER, the site's order within each, no repeats.

    A site without categories gives one "uncategorized" list, kept whole.
    """
    wanted = set(categories)
    if UNCATEGORIZED in tags:
        sources = [tags[UNCATEGORIZED]]
    else:
        sources = [tags.get(c, ()) for c in CATEGORY_ORDER if c in wanted]
    texts = (caption_tag(tag) for group in sources for tag in group)
    return unique_tags((text for text in texts if text), key=str)
