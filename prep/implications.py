"""Tag implications shipped as package data (a small curated subset of Danbooru's table)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from prep.tag_query import match_key


@lru_cache(maxsize=1)
def implications() -> dict[str, frozenset[str]]:
    """Per antecedent key, every tag key it implies (followed transitively)."""
    direct: dict[str, set[str]] = {}
    text = resources.files("prep").joinpath("data/implications.csv").read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        antecedent, _, consequent = line.partition(",")
        direct.setdefault(match_key(antecedent), set()).add(match_key(consequent))
    closed: dict[str, frozenset[str]] = {}
    for start in direct:
        seen: set[str] = set()
        pending = list(direct[start])
        while pending:
            key = pending.pop()
            if key not in seen:
                seen.add(key)
                pending.extend(direct.get(key, ()))
        closed[start] = frozenset(seen)
    return closed


def implied_by(tag_key: str) -> frozenset[str]:
    """The tag keys implied by a present tag (empty when it implies nothing)."""
    return implications().get(tag_key, frozenset())
