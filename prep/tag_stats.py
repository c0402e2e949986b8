"""`lorakit tags DATASET stats`: per-tag caption counts, tags used once, and likely misspellings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from prep.caption_set import find_concept, gc_paused, iter_caption_data, scan_dataset
from prep.dataset import DEFAULT_CAPTION_EXTENSION, Dataset
from prep.tag_query import match_key


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
              caption_extension: str = DEFAULT_CAPTION_EXTENSION) -> TagStats:
    """Tag statistics of a dataset, or of one concept folder (`5_alice` or `alice`)."""
    scan = scan_dataset(dataset, caption_extension)
    if concept is not None:
        scan = scan.only(find_concept(scan, concept))
    warnings: list[str] = []
    with gc_paused():
        tag_lists = [tags for _, data, tags in iter_caption_data(scan.entries, warnings) if data is not None]
        counts = count_tags(tag_lists)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    used_once = sorted(tag for tag, n in counts.items() if n == 1)
    return TagStats(len(tag_lists), ordered, used_once, likely_typos(counts), warnings)
