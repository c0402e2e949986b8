"""Near-duplicate removal: group similar images (pHash or CLIP), keep one per group, trash the rest.

Finding never changes a file. Applying moves each dropped image and its caption into
`DATASET/.lorakit/trash/<operation>/<same relative path>` inside one journal operation, so
`lorakit undo DATASET` puts every file back byte for byte; nothing is deleted.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prep.clip_embed import DEFAULT_CLIP_MODEL
from prep.config import ConfigError, option
from prep.dataset import DEFAULT_CAPTION_EXTENSION, LORAKIT_DIR, Dataset, normalize_caption_extension
from prep.events import Advanced, Finished, Started, Warned
from prep.journal import Journal
from prep.phash import HashCache, ImageFacts, iter_file_facts
from prep.validation.report import display_name

METHODS = ("phash", "clip")
KEEP_POLICIES = ("largest", "first")
DEFAULT_THRESHOLDS = {"phash": 8.0, "clip": 0.96}
CACHE_DIR = "cache"
TRASH_DIR = "trash"


@dataclass
class DedupeOptions:
    """Options of `lorakit dedupe` (and the `[dedupe]` table of lorakit.toml)."""

    method: str = option("phash", "how images are compared: perceptual hash or CLIP embeddings",
                         choices=METHODS)
    threshold: float | None = option(None, "phash: most differing bits of 64 (default 8); "
                                           "clip: least cosine similarity (default 0.96)")
    keep: str = option("largest", "which image of a group stays: most pixels (ties: bigger file, then "
                                  "name) or first in path order", choices=KEEP_POLICIES)
    model: str = option(DEFAULT_CLIP_MODEL, "clip method: a hub model id or a local model folder")
    batch_size: int = option(32, "clip method: images per model batch")
    workers: int | None = option(None, "phash method: hashing processes (default: every core)")
    caption_extension: str = option(DEFAULT_CAPTION_EXTENSION, "caption file extension")

    def resolved_threshold(self) -> float:
        """The threshold in force, checked against the method's range."""
        value = DEFAULT_THRESHOLDS[self.method] if self.threshold is None else float(self.threshold)
        if self.method == "phash":
            if not value.is_integer() or not 0 <= value <= 64:
                raise ConfigError(f"threshold = {value:g} for phash must be a whole number of bits, 0..64")
        elif not -1.0 <= value <= 1.0 or math.isnan(value):
            raise ConfigError(f"threshold = {value:g} for clip must be a cosine similarity, -1..1")
        return value

    def check(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"method = {self.method!r} is not one of {', '.join(METHODS)}")
        if self.keep not in KEEP_POLICIES:
            raise ConfigError(f"keep = {self.keep!r} is not one of {', '.join(KEEP_POLICIES)}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size = {self.batch_size} must be at least 1")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers = {self.workers} must be at least 1")
        self.resolved_threshold()


@dataclass
class DuplicateGroup:
    """One group of near-duplicates: the image kept and those dropped (dataset-relative paths).

    score: phash, the most bits by which a dropped image differs from the kept one; clip, the
    least cosine similarity between the kept image and a dropped one.
    """

    keep: str
    drop: list[str]
    score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: names that are not UTF-8 shown with \\xNN escapes."""
        return {"keep": display_name(self.keep), "drop": [display_name(p) for p in self.drop],
                "score": self.score}


@dataclass
class DedupeReport:
    """What `find_duplicates` found."""

    root: Path
    method: str
    threshold: float
    images: int
    groups: list[DuplicateGroup] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def dropped(self) -> int:
        return sum(len(g.drop) for g in self.groups)

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "groups": [g.to_dict() for g in self.groups]}


@dataclass
class AppliedDedupe:
    """What `apply_dedupe` moved, and where."""

    operation: str
    trash: str  # dataset-relative trash folder of this operation
    images: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)


def dataset_images(root: Path, caption_extension: str) -> tuple[Dataset, list[Path]]:
    """The dataset and its images in path order (concept folders, or a bare folder recursively)."""
    dataset = Dataset.load(root, caption_extension, allow_bare=True, recursive=True)
    images = sorted((item.image for item in dataset.items), key=lambda p: dataset.relative(p))
    return dataset, images


def find_duplicates(root: Path, options: DedupeOptions) -> Iterator[object]:
    """Events while hashing or embedding; Finished(DedupeReport) at the end. Changes no file."""
    options.check()
    threshold = options.resolved_threshold()
    root = Path(root)
    dataset, paths = dataset_images(root, options.caption_extension)
    cache_dir = root / LORAKIT_DIR / CACHE_DIR
    facts: list[ImageFacts] = []
    yield Started(f"dedupe ({options.method})", len(paths))
    if options.method == "phash":
        cache = HashCache(cache_dir).load()
        for item in iter_file_facts(paths, cache.entries, workers=options.workers):
            facts.append(item)
            yield from _progress(dataset, item)
        cache.update(facts)
        cache.save()
        labels, score = _phash_groups(facts, int(threshold))
    else:
        from prep.clip_embed import EmbeddingCache, iter_embeddings, load_clip

        encoder = load_clip(options.model)
        cache = EmbeddingCache(cache_dir, encoder.identity).load()
        embedding = iter_embeddings(paths, encoder, cache, batch_size=options.batch_size)
        while True:
            try:
                item = next(embedding)
            except StopIteration as stop:
                matrix = stop.value
                break
            facts.append(item)
            yield from _progress(dataset, item)
        cache.save()
        labels, score = _clip_groups(facts, matrix, threshold)
    groups = _build_groups(dataset, facts, labels, score, options.keep)
    unreadable = [(dataset.relative(f.path), f.error) for f in facts if f.error]
    yield Finished(DedupeReport(root, options.method, threshold, len(paths), groups, unreadable))


def _progress(dataset: Dataset, item: ImageFacts) -> Iterator[object]:
    yield Advanced(1, item.path.name)
    if item.error:
        yield Warned(f"{item.error}; left out of dedupe", dataset.relative(item.path))


def _phash_groups(facts: Sequence[ImageFacts], threshold: int):
    import numpy as np

    from prep.hash_index import group_hashes

    valid = [k for k, f in enumerate(facts) if f.hash is not None]
    hashes = np.array([facts[k].hash for k in valid], dtype=np.uint64)
    labels = {valid[k]: int(label) for k, label in enumerate(group_hashes(hashes, threshold))}

    def score(keep: int, drops: Sequence[int]) -> float:
        return float(max((facts[keep].hash ^ facts[d].hash).bit_count() for d in drops))

    return labels, score


def _clip_groups(facts: Sequence[ImageFacts], matrix, threshold: float):
    from prep.clip_embed import cosine_pairs
    from prep.hash_index import connected_components

    valid = [k for k, f in enumerate(facts) if not f.error]
    sub = matrix[valid]
    i, j = cosine_pairs(sub, threshold)
    components = connected_components(len(valid), i, j)
    labels = {valid[k]: int(label) for k, label in enumerate(components)}

    def score(keep: int, drops: Sequence[int]) -> float:
        sims = matrix[list(drops)] @ matrix[keep]
        return round(float(sims.min()), 6)

    return labels, score


def _build_groups(dataset: Dataset, facts: Sequence[ImageFacts], labels: dict[int, int], score,
                  keep_policy: str) -> list[DuplicateGroup]:
    members: dict[int, list[int]] = {}
    for index in sorted(labels):  # facts are in path order, so members stay in path order
        members.setdefault(labels[index], []).append(index)
    groups: list[DuplicateGroup] = []
    for indexes in members.values():
        if len(indexes) < 2:
            continue
        if keep_policy == "first":
            keep = indexes[0]
        else:
            keep = min(indexes, key=lambda k: (-facts[k].pixels, -facts[k].size,
                                               dataset.relative(facts[k].path)))
        drops = [k for k in indexes if k != keep]
        groups.append(DuplicateGroup(dataset.relative(facts[keep].path),
                                     [dataset.relative(facts[k].path) for k in drops],
                                     score(keep, drops)))
    groups.sort(key=lambda g: g.keep)
    return groups


def apply_dedupe(report: DedupeReport, caption_extension: str = DEFAULT_CAPTION_EXTENSION,
                 ) -> Iterator[object]:
    """Move every dropped image (and its caption) to the trash in one journal operation.

    Events while moving; Finished(AppliedDedupe) at the end.
    """
    root = report.root
    ext = normalize_caption_extension(caption_extension)
    drops = [path for group in report.groups for path in group.drop]
    dropping = set(drops)
    _, images = dataset_images(root, ext)
    # a caption still claimed by an image that stays (a.png kept, a.jpg dropped) stays too
    claimed = {image.with_suffix(ext) for image in images if Path(image).relative_to(root).as_posix() not in dropping}
    journal = Journal(root)
    yield Started("dedupe --apply", len(drops))
    with journal.begin(f"dedupe --apply ({report.method}, {len(drops)} image(s))") as op:
        trash = root / LORAKIT_DIR / TRASH_DIR / op.folder.name
        applied = AppliedDedupe(op.folder.name, (Path(LORAKIT_DIR) / TRASH_DIR / op.folder.name).as_posix())
        for rel in drops:
            image = root / rel
            if not image.is_file():
                yield Warned("no longer there; skipped", rel)
                continue
            op.move(image, trash / rel)
            applied.images.append(rel)
            caption = image.with_suffix(ext)
            if caption.is_file() and caption not in claimed:
                caption_rel = Path(rel).with_suffix(ext).as_posix()
                op.move(caption, trash / caption_rel)
                applied.captions.append(caption_rel)
            yield Advanced(1, rel)
    yield Finished(applied)
