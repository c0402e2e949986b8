"""`lorakit tags DATASET stats`: per-tag caption counts, tags used once, and likely misspellings."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from prep.caption_set import find_concept, load_dataset, read_captions
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
    for tags in tag_lists:
        counts.update(set(tags))
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
    ds = dataset if isinstance(dataset, Dataset) else load_dataset(dataset, caption_extension)
    items = ds.items
    if concept is not None:
        wanted = find_concept(ds, concept)
        items = [item for item in items if item.concept == wanted]
    warnings: list[str] = []
    records = [r for r in read_captions(items, warnings) if r.exists]
    counts = count_tags(r.tags for r in records)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    used_once = sorted(tag for tag, n in counts.items() if n == 1)
    return TagStats(len(records), ordered, used_once, likely_typos(counts), warnings)
