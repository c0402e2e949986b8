"""Validation records: one Problem per finding, per-concept summaries, and the report's JSON form."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"

# Every problem code with its severity (caption-too-long is either, by how far over it is).
CODES: dict[str, str] = {
    "no-concepts": ERROR,
    "bad-folder-name": ERROR,
    "empty-concept": ERROR,
    "stray-image": ERROR,
    "unsupported-format": ERROR,
    "corrupt-image": ERROR,
    "extension-mismatch": WARNING,
    "missing-caption": WARNING,
    "orphan-caption": WARNING,
    "empty-caption": WARNING,
    "caption-encoding": ERROR,
    "ambiguous-caption": ERROR,
    "duplicate-image": WARNING,
    "duplicate-tag": WARNING,
    "has-alpha": WARNING,
    "too-small": WARNING,
    "caption-too-long": ERROR,
    "unreadable": ERROR,
    # Over prep.images.MAX_PIXELS (or Pillow's MAX_IMAGE_PIXELS when lower) but openable (else corrupt-image):
    # it opens with a DecompressionBombWarning and costs a lot of memory per step.
    "too-large": WARNING,
}


def display_name(text: str) -> str:
    """A file name safe to print and to put in JSON: undecodable bytes shown as `\\xNN`."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Problem:
    """One finding: severity "error" or "warning", a code from CODES, a dataset-relative path."""

    severity: str
    code: str
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "code": self.code, "path": self.path, "message": self.message}

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR


def problem(code: str, path: str, message: str, severity: str | None = None) -> Problem:
    """A Problem with the code's own severity unless one is given."""
    return Problem(severity or CODES[code], code, display_name(path), display_name(message))


@dataclass
class ConceptSummary:
    """The figures of one `<repeats>_<name>` folder."""

    folder: str
    name: str
    repeats: int
    images: int = 0
    captioned: int = 0
    share: float = 0.0

    @property
    def weighted(self) -> int:
        return self.repeats * self.images

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "name": self.name, "repeats": self.repeats, "images": self.images,
                "captioned": self.captioned, "weighted": self.weighted, "share": self.share}


@dataclass
class ValidationReport:
    """What `lorakit validate` found; `to_dict()` is the `--json` object."""

    dataset: str
    concepts: list[ConceptSummary] = field(default_factory=list)
    reg_concepts: list[ConceptSummary] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    steps_per_epoch: int = 0
    total_steps: int = 0
    batch_size: int = 1
    epochs: int = 1
    longest_caption_tokens: int = 0
    recommended_max_token_length: int = 75

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings do not block training)."""
        return not any(p.is_error for p in self.problems)

    @property
    def images(self) -> int:
        return sum(c.images for c in self.concepts)

    @property
    def captioned(self) -> int:
        return sum(c.captioned for c in self.concepts)

    @property
    def weighted(self) -> int:
        return sum(c.weighted for c in self.concepts)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_error]

    def codes(self) -> set[str]:
        return {p.code for p in self.problems}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "images": self.images,
            "captioned": self.captioned,
            "concepts": [c.to_dict() for c in self.concepts],
            "steps_per_epoch": self.steps_per_epoch,
            "total_steps": self.total_steps,
            "longest_caption_tokens": self.longest_caption_tokens,
            "recommended_max_token_length": self.recommended_max_token_length,
            "problems": [p.to_dict() for p in self.problems],
        }
