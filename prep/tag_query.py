"""Tag patterns (`*` wildcards) and the QUERY language of `lorakit tags`.

A QUERY is comma-separated terms that must all hold: `red hair` (has the tag), `-hat` (lacks it),
`blonde hair|yellow hair` (has any), `*ribbon` (wildcard), `concept:5_alice` (in that concept folder).
Tags match by spelling key: case, spaces vs underscores and `\\(` vs `(` do not matter.

`source:booru|tagger|caption|user|command` and `confidence<0.5` (also `<=`, `>`, `>=`) are tag terms,
read from `.lorakit/tags.sqlite` (prep.provenance): together they make one test a single tag must
pass (`source:tagger, confidence<0.4`: a tagger tag under 0.4). An image matches when at least one
of its tags passes; `tags remove`/`replace` touch only the tags that pass, `tags stats` counts only
them. A tag with no stored row (or in a caption edited by hand) is `user`, without a confidence,
and a tag without a confidence never passes a confidence term. Every query user (tags find, stats,
--where of the edits, clean --where, the TUI's Edit filter) goes through `bind_query`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prep.captions import KAOMOJI, tag_key, unescape_parens
from prep.errors import PrepError

if TYPE_CHECKING:
    from prep.caption_set import CaptionRecord


class QueryError(PrepError):
    """A QUERY or tag pattern cannot be parsed."""


def match_key(tag: str) -> str:
    """The spelling-insensitive form tags are compared by (`Long_Hair` == `long hair`, `\\(` == `(`)."""
    return tag_key(unescape_parens(tag))


class TagPattern:
    """One tag, or a `*` wildcard pattern (`*background`, `artist:*`); only `*` is special."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern.strip()
        if not self.pattern:
            raise QueryError("empty tag pattern; give a tag such as 'hat' or a wildcard such as '*hat'")
        key = match_key(self.pattern)
        self.key = key
        self.is_wildcard = "*" in key
        self._regex = (
            re.compile("".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", key)),
                       re.DOTALL)
            if self.is_wildcard else None
        )
        # Datasets repeat a few thousand distinct tags; remembering each answer keeps bulk ops cheap.
        self._cache: dict[str, bool] = {}

    def matches(self, tag: str) -> bool:
        hit = self._cache.get(tag)
        if hit is None:
            key = match_key(tag)
            hit = self._regex.fullmatch(key) is not None if self._regex else key == self.key
            self._cache[tag] = hit
        return hit

    def __repr__(self) -> str:
        return f"TagPattern({self.pattern!r})"


class PatternSet:
    """Several patterns; a tag matches when any does."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = [TagPattern(p) for p in patterns]
        self._cache: dict[str, bool] = {}

    def matches(self, tag: str) -> bool:
        hit = self._cache.get(tag)
        if hit is None:
            hit = any(p.matches(tag) for p in self.patterns)
            self._cache[tag] = hit
        return hit

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def text_may_match(self, text: str) -> bool:
        """False only when no tag of this caption text can match any pattern (so it need not be parsed).

        A matching tag's key holds every space-free piece of a pattern's literal parts, and, for
        ASCII text, folding case, underscores and backslashes character by character keeps such a
        piece a substring of the folded caption text. Non-ASCII text is always parsed (Unicode
        case folding is not character by character).
        """
        needles = self._needles()
        if needles is None or not text.isascii():
            return True
        folded = _fold(text)
        return any(needle in folded for needle in needles)

    def _needles(self) -> list[str] | None:
        if not hasattr(self, "_needle_cache"):
            needles: list[str] | None = []
            for pattern in self.patterns:
                pieces = [piece for part in pattern.key.split("*") for piece in _fold(part).split()]
                if not pieces:
                    needles = None  # `*` alone matches every tag
                    break
                needles.append(max(pieces, key=len))  # type: ignore[union-attr]
            self._needle_cache = needles
        return self._needle_cache


def remove_matching(tags: Iterable[str], patterns: PatternSet) -> list[str]:
    """Drop the tags any pattern matches (`*` wildcard): `clean`'s remove rule and `tags remove`."""
    return [tag for tag in tags if not patterns.matches(tag)]


def _fold(text: str) -> str:
    return text.lower().replace("_", " ").replace("\\", "")


@dataclass
class Term:
    """One comma-separated QUERY term: any of `tags` / `concepts` present, negated with `-`."""

    text: str
    negated: bool = False
    tags: list[TagPattern] = field(default_factory=list)
    concepts: list[str] = field(default_factory=list)

    def holds(self, tags: Sequence[str], concept_folder: str | None, concept_name: str | None) -> bool:
        hit = any(c in (concept_folder, concept_name) for c in self.concepts) or any(
            p.matches(t) for p in self.tags for t in tags
        )
        return hit != self.negated


SOURCE_KINDS = ("booru", "tagger", "caption", "user", "command")
_CONFIDENCE = re.compile(r"^confidence\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class TagFilter:
    """A tag term: `source:KIND` or `confidence OP NUMBER` (a tag without a confidence never passes it)."""

    text: str
    sources: tuple[str, ...] = ()
    op: str = ""
    value: float = 0.0
    negated: bool = False

    def holds(self, source_kind: str, confidence: float | None) -> bool:
        if self.sources:
            hit = source_kind in self.sources
        else:
            hit = confidence is not None and {"<": confidence < self.value, "<=": confidence <= self.value,
                                              ">": confidence > self.value, ">=": confidence >= self.value}[self.op]
        return hit != self.negated


SourceMap = Mapping[str, tuple[str, float | None]]  # tag -> (source kind, confidence)
UNKNOWN_SOURCE = ("user", None)  # a tag the store does not know (or a hand-edited caption's)


@dataclass
class Query:
    """A parsed QUERY; an empty one matches everything."""

    text: str
    terms: list[Term]
    tag_filters: list[TagFilter] = field(default_factory=list)

    def tag_passes(self, source_kind: str, confidence: float | None) -> bool:
        """Whether one tag of this source kind and confidence passes every source:/confidence term."""
        return all(f.holds(source_kind, confidence) for f in self.tag_filters)

    def picked_tags(self, tags: Iterable[str], sources: SourceMap) -> set[str]:
        """The tags that pass every source:/confidence term (all of them when the query has none)."""
        out = set()
        for tag in tags:
            kind, confidence = sources.get(tag, UNKNOWN_SOURCE)
            if self.tag_passes(kind, confidence):
                out.add(tag)
        return out

    def matches(self, tags: Sequence[str], concept_folder: str | None = None,
                concept_name: str | None = None, sources: SourceMap | None = None) -> bool:
        """Every term holds and, with source:/confidence terms, at least one tag passes them all."""
        if not all(term.holds(tags, concept_folder, concept_name) for term in self.terms):
            return False
        return not self.tag_filters or bool(self.picked_tags(tags, sources or {}))

    def matches_record(self, record: CaptionRecord, sources: SourceMap | None = None) -> bool:
        """Whether a dataset item matches, by its effective tags and its concept folder."""
        concept = record.concept
        return self.matches(record.effective_tags(), concept.folder_name if concept else None,
                            concept.name if concept else None, sources)


class BoundQuery:
    """A QUERY bound to a dataset: reads each caption's tag sources from the store when it needs them.

    The one place source:/confidence terms are evaluated; use it as a context manager (it holds the
    store open).
    """

    def __init__(self, query: str | Query | None, root: str | Path, *, with_sources: bool = False) -> None:
        from prep.provenance import read_store

        self.query = query if isinstance(query, Query) else parse_query(query)
        self.root = Path(root)
        self._root_prefix = str(self.root) + "/"
        self.store = read_store(self.root) if (self.query.tag_filters or with_sources) else None

    @property
    def picks_tags(self) -> bool:
        return bool(self.query.tag_filters)

    def sources(self, record: CaptionRecord) -> dict[str, tuple[str, float | None]]:
        """{tag: (source kind, confidence)} of a record's caption ({} without a store or a caption)."""
        if self.store is None or record.data is None:
            return {}
        from prep.provenance import source_kind

        image = record.image
        image = image[len(self._root_prefix):] if image.startswith(self._root_prefix) else \
            Path(os.path.relpath(image, self.root)).as_posix()
        return {tag: (source_kind(found.source), found.confidence)
                for tag, found in self.store.sources(image, record.data).items()}

    def matches(self, record: CaptionRecord) -> bool:
        if not self.query.tag_filters:
            return self.query.matches_record(record)
        return self.query.matches_record(record, self.sources(record))

    def picked(self, record: CaptionRecord) -> set[str]:
        """The record's tags that pass the source:/confidence terms (all of them without such terms)."""
        tags = record.effective_tags()
        if not self.query.tag_filters:
            return set(tags)
        return self.query.picked_tags(tags, self.sources(record))

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def __enter__(self) -> BoundQuery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bind_query(query: str | Query | None, root: str | Path, *, with_sources: bool = False) -> BoundQuery:
    """`query` bound to the dataset at `root` (see BoundQuery)."""
    return BoundQuery(query, root, with_sources=with_sources)


def _alternatives(body: str) -> list[str]:
    """Split `a|b` into alternatives, keeping kaomoji such as `|_|` and `<|>_<|>` whole."""
    if body in KAOMOJI:
        return [body]
    pieces = body.split("|")
    out: list[str] = []
    i = 0
    while i < len(pieces):
        # Re-join pieces that only together spell a kaomoji (`<|>_<|>` split into `<`, `>_<`, `>`).
        for j in range(len(pieces), i, -1):
            joined = "|".join(pieces[i:j])
            if joined.strip() in KAOMOJI and j - i > 1:
                out.append(joined)
                i = j
                break
        else:
            out.append(pieces[i])
            i += 1
    return out


def parse_query(text: str | None) -> Query:
    """Parse a QUERY (None or blank: match everything); raise QueryError on an empty term."""
    if text is None or not text.strip():
        return Query(text or "", [])
    terms: list[Term] = []
    tag_filters: list[TagFilter] = []
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        negated = part.startswith("-") and len(part) > 1 and part not in KAOMOJI
        body = part[1:].strip() if negated else part
        tag_filter = _tag_filter(part, body, negated, text)
        if tag_filter is not None:
            tag_filters.append(tag_filter)
            continue
        term = Term(part, negated)
        for alt in _alternatives(body):
            alt = alt.strip()
            if not alt:
                raise QueryError(f"query {text!r}: empty alternative in {part!r}; write 'a|b'")
            if alt.lower().startswith("concept:"):
                folder = alt[len("concept:"):].strip()
                if not folder:
                    raise QueryError(f"query {text!r}: 'concept:' needs a folder name, e.g. concept:5_alice")
                term.concepts.append(folder)
            else:
                term.tags.append(TagPattern(alt))
        terms.append(term)
    return Query(text, terms, tag_filters)


def _tag_filter(part: str, body: str, negated: bool, text: str) -> TagFilter | None:
    lowered = body.lower()
    if lowered.startswith("source:"):
        kinds = tuple(k.strip().lower() for k in body[len("source:"):].split("|"))
        bad = [k for k in kinds if k not in SOURCE_KINDS]
        if bad or not kinds:
            raise QueryError(f"query {text!r}: {part!r}: source must be one of {', '.join(SOURCE_KINDS)}")
        return TagFilter(part, sources=kinds, negated=negated)
    if lowered.startswith("confidence"):
        match = _CONFIDENCE.match(body)
        if match is None:
            raise QueryError(f"query {text!r}: {part!r}: write confidence<0.5 (or <=, >, >=)")
        return TagFilter(part, op=match.group(1), value=float(match.group(2)), negated=negated)
    return None
