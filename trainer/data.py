"""Training data as kohya counts it: images x repeats, reg images cycled to match, bucketed batches.

`build_training_set(config)` reads the dataset (and reg dataset) through `prep.Dataset`, assigns
each image a bucket (image headers only), and `TrainingSet.epoch_batches(epoch)` gives that
epoch's batches: each bucket holds one entry per image per repeat, is split into batches that
never mix buckets, and the batch order is shuffled with seed + epoch (so a resumed run sees the
same order).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from prep.buckets import BucketManager
from prep.captions import read_caption_text
from prep.dataset import Dataset, parse_concept_folder_name
from trainer.config import TrainConfig
from trainer.errors import TrainError


@dataclass
class TrainImage:
    """One image: its caption text, concept, whether it is a reg image, its size and bucket."""

    path: Path
    caption: str
    concept: str
    repeats: int
    is_reg: bool
    size: tuple[int, int]
    bucket: tuple[int, int] = (0, 0)
    resized: tuple[int, int] = (0, 0)
    ar_error: float = 0.0


@dataclass
class TrainingSet:
    images: list[TrainImage]
    batch_size: int
    seed: int
    # entries per bucket: image indices, one per repeat
    buckets: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    tag_frequency: dict[str, dict[str, int]] = field(default_factory=dict)
    dataset_dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    reg_dataset_dirs: dict[str, dict[str, int]] = field(default_factory=dict)
    validation: list[TrainImage] = field(default_factory=list)  # held out, never trained on

    @property
    def num_train_images(self) -> int:
        """Training images counted with repeats (kohya's ss_num_train_images)."""
        return sum(img.repeats for img in self.images if not img.is_reg)

    @property
    def num_reg_images(self) -> int:
        return sum(1 for img in self.images if img.is_reg)

    @property
    def num_images(self) -> int:
        return sum(1 for img in self.images if not img.is_reg)

    def batches_per_epoch(self) -> int:
        return sum(math.ceil(len(entries) / self.batch_size) for entries in self.buckets.values())

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This epoch's batches (lists of image indices), bucket-pure, in a seeded shuffled order."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        batches: list[list[int]] = []
        for bucket in sorted(self.buckets):
            entries = list(self.buckets[bucket])
            rng.shuffle(entries)
            for start in range(0, len(entries), self.batch_size):
                batches.append(entries[start:start + self.batch_size])
        rng.shuffle(batches)
        return batches

    def bucket_info(self) -> dict[str, object]:
        """kohya's ss_bucket_info shape: buckets with their entry counts, and the mean aspect error."""
        buckets = {str(i): {"resolution": list(b), "count": len(self.buckets[b])}
                   for i, b in enumerate(sorted(self.buckets))}
        errors = [abs(img.ar_error) for img in self.images]
        return {"buckets": buckets, "mean_img_ar_error": sum(errors) / len(errors) if errors else 0.0}


def _caption_of(item, caption_extension: str) -> str:
    if item.caption_path.is_file():
        text = read_caption_text(item.caption_path)
        return text.splitlines()[0].strip() if text.strip() else ""
    return item.concept.name if item.concept else ""


def _image_size(path: Path) -> tuple[int, int]:
    from prep.image_io import ImageError, image_size

    try:
        return image_size(path)
    except ImageError as exc:
        raise TrainError(f"{exc}; run `lorakit validate` on the dataset") from None


def _load_images(root: Path, caption_extension: str, is_reg: bool) -> list[TrainImage]:
    dataset = Dataset.load(root, caption_extension, follow_symlinks=True)  # reading only
    images: list[TrainImage] = []
    for item in dataset.items:
        concept = item.concept
        name = concept.folder_name if concept else root.name
        images.append(TrainImage(item.image, _caption_of(item, caption_extension), name,
                                 item.repeats, is_reg, _image_size(item.image)))
    return images


def _tag_frequency(images: list[TrainImage]) -> dict[str, dict[str, int]]:
    """{concept folder: {tag: captions holding it}} as kohya counts (lowercased, repeats not applied)."""
    freq: dict[str, Counter[str]] = {}
    for img in images:
        tags = {t.strip().lower() for t in img.caption.split(",") if t.strip()}
        freq.setdefault(img.concept, Counter()).update(tags)
    return {concept: dict(counter) for concept, counter in freq.items()}


def _dirs(images: list[TrainImage], is_reg: bool) -> dict[str, dict[str, int]]:
    dirs: dict[str, dict[str, int]] = {}
    for img in images:
        if img.is_reg != is_reg:
            continue
        parsed = parse_concept_folder_name(img.concept)
        repeats = parsed[0] if parsed else img.repeats
        entry = dirs.setdefault(img.concept, {"n_repeats": repeats, "img_count": 0})
        entry["img_count"] += 1
    return dirs


def split_validation(images: list[TrainImage], fraction: float, seed: int) -> tuple[list[TrainImage], list[TrainImage]]:
    """(training, held out): round(n x fraction) images, at least 1, chosen with seed; at least one trains."""
    if not 0 < fraction < 1:
        raise TrainError(f"validation_split must be between 0 and 1, not {fraction}")
    if len(images) < 2:
        raise TrainError("validation_split needs at least 2 training images (one to train, one to hold out)")
    count = min(max(1, round(len(images) * fraction)), len(images) - 1)
    order = sorted(range(len(images)), key=lambda i: str(images[i].path))
    held = set(random.Random(seed).sample(order, count))
    return ([img for i, img in enumerate(images) if i not in held],
            sorted((img for i, img in enumerate(images) if i in held), key=lambda img: str(img.path)))


def cycle_reg_images(reg: list[TrainImage], num_train: int) -> None:
    """kohya's reg balancing: register each reg image with its repeats, then add one repeat at a time
    round-robin until the reg count (with repeats) reaches the training count."""
    if not reg:
        return
    counted = 0
    base = [img.repeats for img in reg]
    for img in reg:
        img.repeats = 0
    first = True
    while counted < num_train:
        for img, repeats in zip(reg, base, strict=False):
            if first:
                img.repeats = repeats
                counted += repeats
            else:
                img.repeats += 1
                counted += 1
            if counted >= num_train:
                break
        first = False


def build_training_set(config: TrainConfig) -> TrainingSet:
    """Scan the dataset(s), balance reg images, and bucket every entry."""
    if config.dataset is None:
        raise TrainError("no dataset given; set dataset in the config or pass --dataset DIR")
    train = _load_images(Path(config.dataset), config.caption_extension, False)
    if not train:
        raise TrainError(f"{config.dataset}: no training images in <repeats>_<name> folders; "
                         "run `lorakit validate` on it")
    validation: list[TrainImage] = []
    if config.validation_dataset is not None:
        validation = _load_images(Path(config.validation_dataset), config.caption_extension, False)
        if not validation:
            raise TrainError(f"validation_dataset {config.validation_dataset}: no images in <repeats>_<name> folders")
    elif config.validation_split > 0:
        train, validation = split_validation(train, config.validation_split,
                                             config.validation_seed if config.validation_seed is not None
                                             else config.seed)
    images = list(train)
    reg: list[TrainImage] = []
    if config.reg_dataset is not None:
        reg = _load_images(Path(config.reg_dataset), config.caption_extension, True)
        cycle_reg_images(reg, sum(img.repeats for img in train))
        images.extend(img for img in reg if img.repeats > 0)
    manager = BucketManager(config.resolution_wh(), enable_bucket=config.enable_bucket,
                            min_size=config.min_bucket_reso, max_size=config.max_bucket_reso,
                            reso_steps=config.bucket_reso_steps, no_upscale=config.bucket_no_upscale)
    buckets: dict[tuple[int, int], list[int]] = {}
    for index, img in enumerate(images):
        choice = manager.select(*img.size)
        img.bucket, img.resized, img.ar_error = choice.bucket, choice.resized, choice.ar_error
        buckets.setdefault(choice.bucket, []).extend([index] * img.repeats)
    for img in validation:
        choice = manager.select(*img.size)
        img.bucket, img.resized, img.ar_error = choice.bucket, choice.resized, choice.ar_error
    training = TrainingSet(images, config.train_batch_size, config.seed, buckets, validation=validation)
    training.tag_frequency = _tag_frequency(train + reg)
    training.dataset_dirs = _dirs(images, False)
    training.reg_dataset_dirs = _dirs(reg, True)
    return training
