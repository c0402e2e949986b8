"""Tag completion for caption inputs: the last tag typed completes from the dataset's tags, then
the bundled Danbooru list."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from functools import lru_cache

from textual.suggester import Suggester


class TagSuggester(Suggester):
    """Suggests the rest of the tag being typed after the last comma (dataset tags first)."""

    def __init__(self, dataset_tags: Iterable[str], extra_tags: Iterable[str] = ()) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.ranked = list(dict.fromkeys(dataset_tags))  # most used first
        self.extra_keys, self.extra = _sorted_by_key(tuple(extra_tags))

    def complete(self, prefix: str) -> str | None:
        """The first tag starting with `prefix` (case-insensitive), or None."""
        key = prefix.lower()
        if not key:
            return None
        for tag in self.ranked:
            if tag.lower().startswith(key) and len(tag) > len(prefix):
                return tag
        index = bisect.bisect_left(self.extra_keys, key)
        while index < len(self.extra_keys) and self.extra_keys[index].startswith(key):
            if len(self.extra_keys[index]) > len(key):
                return self.extra[index]
            index += 1
        return None

    async def get_suggestion(self, value: str) -> str | None:
        head, comma, last = value.rpartition(",")
        stripped = last.lstrip()
        lead = last[: len(last) - len(stripped)]
        tag = self.complete(stripped)
        if tag is None:
            return None
        return f"{head}{comma}{lead}{stripped}{tag[len(stripped):]}"


@lru_cache(maxsize=4)
def _sorted_by_key(tags: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The tags sorted by their lowercase spelling (cached: the Danbooru list is the same each time)."""
    pairs = sorted({t.lower(): t for t in tags}.items())
    return [k for k, _ in pairs], [t for _, t in pairs]
