"""`lorakit tags DATASET stats [QUERY]`: per-tag caption counts, tags used once, likely misspellings,
and (`--by-source`) each tag's count split by where it came from (prep.provenance)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from prep.caption_set import (
    CaptionScan,
    find_concept,
    gc_paused,
    iter_caption_data,
    read_captions,
    scan_dataset,
)
from prep.dataset import DEFAULT_CAPTION_EXTENSION, Dataset
from prep.tag_query import Query, bind_query, match_key, parse_query


@dataclass
class TagStats:
    """Counts over caption files (an image without a caption file is not counted)."""

    captions: int
    counts: list[tuple[str, int]]  # by count descending, then tag
    used_once: list[str]
    likely_typos: list[list[str]]  # spellings differing only by case, spaces/underscores, \( escapes
    warnings: list[str] = field(default_factory=list)

    def to_dict(self, top: int | None = None) -> dict[str, object]:
        counts = self.counts if top is None else self.counts[:top]
        return {
            "captions": self.captions,
            "tags": [{"tag": tag, "count": count} for tag, count in counts],
            "distinct_tags": len(self.counts),
            "used_once": self.used_once,
            "likely_typos": self.likely_typos,
        }


def count_tags(tag_lists) -> Counter[str]:
    """Per tag, how many of the lists hold it (a list counts a tag once)."""
    counts: Counter[str] = Counter()
    with gc_paused():
        counts.update(chain.from_iterable(map(set, tag_lists)))  # one C-level counting pass
    return counts


def likely_typos(counts: Counter[str]) -> list[list[str]]:
    """Groups of tags that differ only in spelling (most used group first, most used spelling first)."""
    groups: dict[str, list[str]] = {}
    for tag in counts:
        groups.setdefault(match_key(tag), []).append(tag)
    found = [sorted(tags, key=lambda t: (-counts[t], t)) for tags in groups.values() if len(tags) > 1]
    found.sort(key=lambda g: (-sum(counts[t] for t in g), g[0]))
    return found


def tag_stats(dataset: Dataset | str | Path, concept: str | None = None, *,
              caption_extension: str = DEFAULT_CAPTION_EXTENSION, query: str | Query | None = None) -> TagStats:
    """Tag statistics of a dataset, or of one concept folder (`5_alice` or `alice`), or of the
    captions a QUERY selects (with source:/confidence terms, only the tags that pass them count)."""
    scan = _scan(dataset, concept, caption_extension)
    warnings: list[str] = []
    parsed = query if isinstance(query, Query) else parse_query(query)
    with gc_paused():
        if parsed.terms or parsed.tag_filters:
            check_query_concepts(parsed, scan)
            tag_lists = []
            with bind_query(parsed, scan.root) as bound:
                for record in read_captions(scan.entries, warnings):
                    if record.exists and bound.matches(record):
                        picked = bound.picked(record)
                        tag_lists.append([t for t in record.tags if t in picked])
        else:
            tag_lists = [tags for _, data, tags in iter_caption_data(scan.entries, warnings) if data is not None]
        counts = count_tags(tag_lists)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    used_once = sorted(tag for tag, n in counts.items() if n == 1)
    return TagStats(len(tag_lists), ordered, used_once, likely_typos(counts), warnings)


def counts_by_source(dataset: Dataset | str | Path, concept: str | None = None, *,
                     caption_extension: str = DEFAULT_CAPTION_EXTENSION,
                     query: str | Query | None = None) -> dict[str, dict[str, int]]:
    """{tag: {source kind: captions}} (kinds: booru, tagger, caption, user, command) over the captions
    QUERY selects; a tag the store does not know, or in a caption edited by hand, counts as user."""
    scan = _scan(dataset, concept, caption_extension)
    out: dict[str, dict[str, int]] = {}
    parsed = query if isinstance(query, Query) else parse_query(query)
    check_query_concepts(parsed, scan)
    with bind_query(parsed, scan.root, with_sources=True) as bound:
        for record in read_captions(scan.entries, None):
            if not record.exists:
                continue
            sources = bound.sources(record)
            if not bound.query.matches_record(record, sources):
                continue
            picked = bound.query.picked_tags(record.tags, sources)
            for tag in dict.fromkeys(record.tags):
                if tag not in picked:
                    continue
                kind = sources.get(tag, ("user", None))[0]
                counts = out.setdefault(tag, {})
                counts[kind] = counts.get(kind, 0) + 1
    return out


def check_query_concepts(query: Query, scan: CaptionScan) -> None:
    """Refuse a `concept:` term naming no concept folder: a typo would silently match nothing (or,
    negated, everything)."""
    for term in query.terms:
        for name in term.concepts:
            find_concept(scan, name)  # raises PrepError listing the concept folders


def _scan(dataset: Dataset | str | Path, concept: str | None, caption_extension: str) -> CaptionScan:
    scan = scan_dataset(dataset, caption_extension)
    return scan.only(find_concept(scan, concept)) if concept is not None else scan
