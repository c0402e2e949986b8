"""Where the trainer's aspect buckets put each image: the histogram, upscale and small-bucket findings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prep.buckets import BucketChoice, BucketManager
from prep.validation.report import Problem, problem

# Upscaling past this factor visibly blurs what the model learns.
UPSCALE_LIMIT = 1.5


@dataclass(frozen=True)
class BucketSettings:
    """The `[train]` bucket options (trainer defaults when the workspace has none)."""

    resolution: tuple[int, int] = (512, 512)
    enable_bucket: bool = True
    min_bucket_reso: int = 256
    max_bucket_reso: int = 1024
    bucket_reso_steps: int = 64
    bucket_no_upscale: bool = False

    def manager(self) -> BucketManager:
        return BucketManager(self.resolution, enable_bucket=self.enable_bucket, min_size=self.min_bucket_reso,
                             max_size=self.max_bucket_reso, reso_steps=self.bucket_reso_steps,
                             no_upscale=self.bucket_no_upscale)


@dataclass
class Bucket:
    """One bucket of the histogram: its size and how many images land in it."""

    width: int
    height: int
    images: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height, "images": self.images}


def bucket_problems(sizes: Sequence[tuple[str, int, int]], settings: BucketSettings,
                    batch_size: int) -> tuple[list[Bucket], list[Problem]]:
    """The bucket histogram of (rel path, width, height) images, largest bucket first, with
    `bucket-upscale` per image scaled over UPSCALE_LIMIT and `singleton-bucket` per bucket holding
    fewer images than the batch size."""
    width_area, height_area = settings.resolution
    if min(width_area, height_area) < settings.bucket_reso_steps:
        return [], []  # no bucket fits such a resolution (tests and toy runs); nothing to report
    manager = settings.manager()
    buckets: dict[tuple[int, int], Bucket] = {}
    first: dict[tuple[int, int], str] = {}
    found: list[Problem] = []
    upscales = not manager.no_upscale
    choices: dict[tuple[int, int], BucketChoice] = {}  # datasets repeat a few sizes
    for rel, width, height in sizes:
        if width <= 0 or height <= 0:
            continue
        choice = choices.get((width, height))
        if choice is None:
            choice = choices[(width, height)] = manager.select(width, height)
        bucket = buckets.get(choice.bucket)
        if bucket is None:
            bucket = buckets[choice.bucket] = Bucket(*choice.bucket)
            first[choice.bucket] = rel
        bucket.images += 1
        scale = choice.resized[0] / width
        if upscales and scale > UPSCALE_LIMIT:
            found.append(problem(
                "bucket-upscale", rel,
                f"{width}x{height} is upscaled {scale:.2f}x to {choice.resized[0]}x{choice.resized[1]} for "
                f"the {choice.bucket[0]}x{choice.bucket[1]} bucket (blurry); use a larger image, a lower "
                "resolution, or bucket_no_upscale = true"))
    ordered = sorted(buckets.values(), key=lambda b: (-b.images, b.width, b.height))
    for bucket in ordered:
        if bucket.images < batch_size:
            found.append(problem(
                "singleton-bucket", first[(bucket.width, bucket.height)],
                f"the {bucket.width}x{bucket.height} bucket holds {bucket.images} image(s), fewer than the "
                f"batch size {batch_size}, so its batches are short; crop images to a common aspect ratio"))
    return ordered, found
