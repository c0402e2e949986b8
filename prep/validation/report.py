"""Validation records: one Problem per finding, per-concept summaries, and the report's JSON form."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from prep.safe_text import printable

if TYPE_CHECKING:
    from prep.validation.bucket_report import Bucket

ERROR = "error"
WARNING = "warning"
INFO = "info"

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
    "contradictory-tags": WARNING,
    "trigger-missing": WARNING,
    "bucket-upscale": WARNING,
    "singleton-bucket": INFO,
    "duplicate-caption": INFO,
    # The file ends early (JPEG without EOI, PNG without IEND, WebP shorter than its RIFF size):
    # its header reads fine, but the trainer fails on it at the first step that decodes it.
    "truncated-image": ERROR,
    # A concept folder or image that is a symlink leading outside the dataset: writing commands skip it.
    "symlink-outside": WARNING,
}

# What each code means, for `lorakit validate --help`.
DESCRIPTIONS: dict[str, str] = {
    "no-concepts": "no <repeats>_<name> folder in the dataset",
    "bad-folder-name": "a folder kohya ignores (not <repeats>_<name>)",
    "empty-concept": "a concept folder without images",
    "stray-image": "an image outside any concept folder",
    "unsupported-format": "an image format kohya does not read",
    "corrupt-image": "an image that cannot be opened (or, with --deep, decoded)",
    "extension-mismatch": "the file's content is another format than its extension says",
    "missing-caption": "an image without a caption file (trains with the concept name)",
    "orphan-caption": "a caption without an image",
    "empty-caption": "a caption file with no tag",
    "caption-encoding": "a caption that is not UTF-8",
    "ambiguous-caption": "two images share a stem, so one caption",
    "duplicate-image": "a byte-identical copy of another image",
    "duplicate-tag": "a caption holding a tag twice",
    "has-alpha": "an image with transparency",
    "too-small": "an image whose shorter side is under --resolution",
    "caption-too-long": "a caption over the CLIP token limit (error over 225)",
    "unreadable": "a file or folder that cannot be read",
    "too-large": "an image over 50 megapixels (prep.images.MAX_PIXELS; scrape --max-pixels refuses them)",
    "contradictory-tags": "tags that exclude each other (1girl + 2girls, solo + multiple girls; "
                          "[validate] contradictory_tags adds groups)",
    "trigger-missing": "a caption of the trigger's concept folder ([concept] concept, empty = all; "
                       "--trigger-concept) without the trigger ([concept] trigger or --trigger), or with it "
                       "not first while keep_tokens >= 1",
    "bucket-upscale": "an image the [train] bucket settings upscale by more than 1.5x (bucket_no_upscale off)",
    "singleton-bucket": "a bucket holding fewer images than the batch size",
    "duplicate-caption": "3 or more images whose captions are byte-identical ([validate] "
                         "duplicate_caption_images sets how many)",
    "truncated-image": "an image file cut short (no JPEG end marker, no PNG IEND, WebP shorter than its "
                       "RIFF size), found from the file's last bytes",
    "symlink-outside": "a concept folder or image that is a symlink leading outside the dataset (tag, tags, "
                       "clean, fix and dedupe skip it unless --follow-symlinks)",
}


def display_name(text: str) -> str:
    """A file name safe to print and to put in JSON: undecodable bytes shown as `\\xNN`, control
    characters (ESC, newlines: a name could forge a validate line) escaped."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = os.fsencode(text).decode("utf-8", "backslashreplace")
    return printable(text)


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
    buckets: list[Bucket] = field(default_factory=list)

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
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def infos(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == INFO]

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
            "buckets": [b.to_dict() for b in self.buckets],
            "problems": [p.to_dict() for p in self.problems],
        }
