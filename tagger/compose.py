"""From a prediction to caption tags, and from new and existing tags to what is written (--mode)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from prep.captions import escape_parens, normalize_tag, underscores_to_spaces, unique_tags
from prep.tag_query import PatternSet, match_key
from tagger.thresholds import Prediction


@dataclass(frozen=True)
class CaptionStyle:
    characters: bool = True
    rating: str = "none"  # none | first | last
    max_tags: int | None = None
    exclude: tuple[str, ...] = ()
    always_first: tuple[str, ...] = ()
    keep_underscores: bool = False
    escape_parens: bool = False

    def spell(self, name: str) -> str:
        return _spell(name, self.keep_underscores, self.escape_parens)


@lru_cache(maxsize=65536)
def _spell(name: str, keep_underscores: bool, escape: bool) -> str:
    tag = name if keep_underscores else underscores_to_spaces(name)
    return escape_parens(tag) if escape else tag


def split_tag_list(values: Iterable[str]) -> tuple[str, ...]:
    """`--exclude "a, b" c` -> (a, b, c): commas separate tags as they do in captions."""
    out: list[str] = []
    for value in values:
        out.extend(t for t in (normalize_tag(p) for p in value.split(",")) if t)
    return tuple(out)


# Escaped or not, underscores or spaces: `hat_\(x\)` and `hat (x)` are one tag (prep's match key).
_key = match_key


@lru_cache(maxsize=64)
def _exclusions(patterns: tuple[str, ...]) -> PatternSet:
    """--exclude as prep's one wildcard matcher (only `*` is special), cached per style."""
    return PatternSet(p for p in patterns if p.strip())


def caption_tags(pred: Prediction, style: CaptionStyle) -> list[tuple[str, float]]:
    """The predicted tags in caption order, spelled for the caption, with their probabilities.

    Characters first (when enabled), then general, each by confidence; --max-tags keeps the most
    confident overall; excluded tags are dropped; --always-first tags present move to the front in
    the order given. The rating is not included (see `with_rating`).
    """
    excluded = _exclusions(style.exclude)
    pooled = (pred.characters if style.characters else []) + pred.general
    kept = [(name, p) for name, p in pooled if not excluded.matches(name)] if excluded else pooled
    if style.max_tags is not None and len(kept) > style.max_tags:
        best = sorted(range(len(kept)), key=lambda i: -kept[i][1])[: max(0, style.max_tags)]
        kept = [kept[i] for i in sorted(best)]
    tags = [(style.spell(name), p) for name, p in kept]
    if style.always_first:
        by_key = {_key(t): (t, p) for t, p in tags}
        front = []
        for wanted in style.always_first:
            hit = by_key.pop(_key(wanted), None)
            if hit is not None:
                front.append(hit)
        front_keys = {_key(t) for t, _ in front}
        tags = front + [(t, p) for t, p in tags if _key(t) not in front_keys]
    return tags


def with_rating(tags: list[str], pred: Prediction, style: CaptionStyle) -> list[str]:
    if style.rating == "none" or not pred.rating:
        return tags
    rating = style.spell(pred.rating)
    return [rating, *tags] if style.rating == "first" else [*tags, rating]


def combine(existing: list[str], new: list[str], mode: str) -> list[str] | None:
    """The caption to write for a mode, or None to leave the file alone.

    skip: only images without a non-empty caption; overwrite: the new tags; append/prepend: the
    new tags after/before the existing ones; merge: existing tags, then new tags not already there
    (spelling-insensitive).
    """
    if mode == "skip":
        return None if existing else new
    if mode == "overwrite":
        return new
    if mode == "append":
        return existing + new
    if mode == "prepend":
        return new + existing
    if mode == "merge":
        return list(existing) + unique_tags(new, _key, present=existing)
    raise ValueError(f"unknown mode {mode!r}")
