"""Caption-content checks across a dataset: contradictory tags, the trigger word, identical captions.

`CaptionRules` is fed every training caption by the caption pass (prep.validation.caption_checks) and
reports per caption (`contradictory-tags`, `trigger-missing`) or at the end (`duplicate-caption`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prep.captions import tag_key
from prep.validation.report import Problem, problem

_GIRLS = ["1girl", "2girls", "3girls", "4girls", "5girls", "6+girls"]
_BOYS = ["1boy", "2boys", "3boys", "4boys", "5boys", "6+boys"]
_OTHERS = ["1other", "2others", "3others", "4others", "5others", "6+others"]

# Groups of tags that exclude each other: a caption holding two tags of one group contradicts
# itself. Compared with underscores as spaces, case-insensitively. `[validate] contradictory_tags`
# adds groups (a list of lists of tags).
CONTRADICTORY_TAGS: tuple[tuple[str, ...], ...] = (
    tuple(_GIRLS),
    tuple(_BOYS),
    tuple(_OTHERS),
    ("1girl", "multiple girls"),
    ("1boy", "multiple boys"),
    ("solo", "multiple girls"),
    ("solo", "multiple boys"),
    ("solo", "multiple others"),
    *(("solo", count) for count in _GIRLS[1:] + _BOYS[1:]),
    ("monochrome", "colorful"),
    ("monochrome", "full color"),
    ("greyscale", "colorful"),
    ("greyscale", "full color"),
    ("no humans", "1girl"),
    ("no humans", "1boy"),
    ("no humans", "solo"),
)


# Two images often share a short caption legitimately (a pair of variants); three or more alike
# usually means a template or a lost tagger run.
DUPLICATE_CAPTION_IMAGES = 3


@dataclass
class CaptionRules:
    """The content checks for the training captions of one dataset."""

    contradictory: Sequence[Sequence[str]] = CONTRADICTORY_TAGS
    trigger: str | None = None
    keep_tokens: int = 0
    duplicate_min: int = DUPLICATE_CAPTION_IMAGES
    trigger_concept: str | None = None  # the concept folder (5_alice or alice) the trigger is for; None: all
    _groups_of: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False)
    _groups: list[tuple[str, ...]] = field(default_factory=list, init=False, repr=False)
    _by_bytes: dict[bytes, list[str]] = field(default_factory=dict, init=False, repr=False)
    _trigger_key: str = field(default="", init=False, repr=False)
    _keys: dict[str, str] = field(default_factory=dict, init=False, repr=False)  # tag -> tag_key, memo
    _trigger_here: bool = field(default=True, init=False, repr=False)

    def __post_init__(self) -> None:
        for group in self.contradictory:
            keys = tuple(dict.fromkeys(tag_key(tag) for tag in group if tag_key(tag)))
            if len(keys) < 2:
                continue
            index = len(self._groups)
            self._groups.append(keys)
            for key in keys:
                self._groups_of.setdefault(key, []).append(index)
        self._trigger_key = tag_key(self.trigger) if self.trigger else ""

    def enter_concept(self, folder: str, name: str) -> None:
        """The captions checked next belong to this concept folder (`5_alice`, concept `alice`)."""
        self._trigger_here = self.trigger_concept is None or self.trigger_concept in (folder, name)

    def check(self, rel: str, data: bytes, tags: list[str]) -> list[Problem]:
        """Problems of one caption (its dataset-relative path, raw bytes and parsed tags)."""
        self._by_bytes.setdefault(data.strip(), []).append(rel)
        found: list[Problem] = []
        memo = self._keys
        keys = [memo.get(tag) or memo.setdefault(tag, tag_key(tag)) for tag in tags]
        hits: dict[int, list[str]] = {}
        for key, tag in zip(keys, tags, strict=True):
            for index in self._groups_of.get(key, ()):
                members = hits.setdefault(index, [])
                if tag not in members:
                    members.append(tag)
        clashes = [members for members in hits.values() if len({memo[t] for t in members}) > 1]
        if clashes:
            pairs = "; ".join(" + ".join(members) for members in clashes)
            found.append(problem("contradictory-tags", rel,
                                 f"holds tags that exclude each other: {pairs}; remove the wrong one"))
        if self._trigger_key and self._trigger_here:
            found.extend(self._trigger_problems(rel, keys))
        return found

    def _trigger_problems(self, rel: str, keys: list[str]) -> list[Problem]:
        if self._trigger_key not in keys:
            return [problem("trigger-missing", rel,
                            f"lacks the trigger {self.trigger!r}; put it first in the caption")]
        position = keys.index(self._trigger_key)
        if position > 0 and self.keep_tokens >= 1:
            return [problem("trigger-missing", rel,
                            f"has the trigger {self.trigger!r} as tag {position + 1}, not first; with "
                            f"keep_tokens = {self.keep_tokens} shuffling moves it: put it first")]
        return []

    def finish(self) -> list[Problem]:
        """`duplicate-caption` for each set of byte-identical captions (empty ones aside)."""
        found: list[Problem] = []
        for data, rels in self._by_bytes.items():
            if not data or len(rels) < self.duplicate_min:
                continue
            found.append(problem("duplicate-caption", rels[0],
                                 f"{len(rels)} captions are byte-identical ({_names(rels)}); the model "
                                 "cannot tell those images apart: describe what differs"))
        return found


def _names(rels: Iterable[str], shown: int = 5) -> str:
    rels = list(rels)
    more = f", +{len(rels) - shown} more" if len(rels) > shown else ""
    return ", ".join(rels[:shown]) + more
