"""The header's dataset summary: images, captioned share, concepts with repeats (no Textual here).

Cheap enough to poll every few seconds: the fast caption-set scan plus one stat per caption, and
only when a concept folder's mtime (files added, removed or renamed) moved since the last look.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetSummary:
    images: int
    captioned: int
    concepts: tuple[tuple[str, int], ...]  # (name, repeats)
    error: str = ""

    @property
    def captioned_share(self) -> float:
        return self.captioned / self.images if self.images else 0.0

    def describe(self, validation: str = "", max_concepts: int = 3) -> str:
        """`7 images · 86% captioned · validate: ok · alice ×10, bob ×5` (the concepts last: a narrow
        header cuts them first)."""
        state = [f"validate: {validation}"] if validation else []
        if self.error:
            return " · ".join([self.error, *state])
        if not self.images and not self.concepts:
            return " · ".join(["empty dataset", *state])
        shown = [f"{name} ×{repeats}" for name, repeats in self.concepts[:max_concepts]]
        if len(self.concepts) > max_concepts:
            shown.append(f"+{len(self.concepts) - max_concepts}")
        parts = [f"{self.images} images", f"{self.captioned_share:.0%} captioned", *state]
        if shown:
            parts.append(", ".join(shown))
        return " · ".join(parts)


def folder_signature(dataset: Path) -> tuple:
    """The mtimes of the dataset folder and its direct sub-folders: moves when files come or go."""
    marks: list[tuple[str, int]] = []
    try:
        marks.append(("", os.stat(dataset).st_mtime_ns))
        with os.scandir(dataset) as it:
            for entry in it:
                if entry.is_dir() and not entry.name.startswith("."):
                    marks.append((entry.name, entry.stat().st_mtime_ns))
    except OSError:
        return ("missing",)
    return tuple(sorted(marks))


def summarize(dataset: Path) -> DatasetSummary:
    """Count images and existing captions with the caption engine's scan (no image is opened)."""
    from prep.caption_set import scan_dataset
    from prep.errors import PrepError

    if not Path(dataset).is_dir():
        return DatasetSummary(0, 0, (), error=f"no dataset folder at {dataset}")
    try:
        scan = scan_dataset(dataset)
    except PrepError:
        return DatasetSummary(0, 0, ())
    captioned = sum(1 for _image, caption, _concept in scan.entries if os.path.exists(caption))
    concepts = tuple((c.name, c.repeats) for c in scan.concepts)
    return DatasetSummary(len(scan.entries), captioned, concepts)


def validation_state(report) -> str:
    """`ok`, `N errors` or `not run`, from a ValidationReport (None: not run)."""
    if report is None:
        return "not run"
    errors = len(report.errors)
    return "ok" if errors == 0 else f"{errors} error{'s' if errors != 1 else ''}"
