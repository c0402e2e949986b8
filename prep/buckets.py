"""Aspect-ratio buckets exactly as kohya's `make_bucket_resolutions` and `BucketManager.select_bucket`.

Pure size arithmetic shared by the trainer (batches) and the validator (bucket histogram, upscale
warnings), so it lives in prep, which both may import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prep.config import ConfigError


def make_bucket_resolutions(resolution: tuple[int, int], min_size: int = 256, max_size: int = 1024,
                            divisible: int = 64) -> list[tuple[int, int]]:
    """The predefined buckets: the largest square of the area, then every (w, h) and (h, w) of the area."""
    max_width, max_height = resolution
    max_area = max_width * max_height
    resos: set[tuple[int, int]] = set()
    side = int(math.sqrt(max_area) // divisible) * divisible
    resos.add((side, side))
    width = min_size
    while width <= max_size:
        height = min(max_size, int((max_area // width) // divisible) * divisible)
        if height >= min_size:
            resos.add((width, height))
            resos.add((height, width))
        width += divisible
    return sorted(resos)


@dataclass(frozen=True)
class BucketChoice:
    """Where one image goes: the bucket, the size it is resized to before cropping, the aspect error."""

    bucket: tuple[int, int]
    resized: tuple[int, int]
    ar_error: float


class BucketManager:
    """Assigns image sizes to buckets (kohya semantics, including bucket_no_upscale)."""

    def __init__(self, resolution: tuple[int, int], *, enable_bucket: bool = True, min_size: int = 256,
                 max_size: int = 1024, reso_steps: int = 64, no_upscale: bool = False) -> None:
        self.resolution = resolution
        self.max_area = resolution[0] * resolution[1]
        self.reso_steps = reso_steps
        self.no_upscale = no_upscale and enable_bucket
        if enable_bucket:
            self.predefined = make_bucket_resolutions(resolution, min_size, max_size, reso_steps)
        else:
            self.predefined = [resolution]
        self._predefined_set = set(self.predefined)
        self._ratios = [w / h for w, h in self.predefined]

    def round_to_steps(self, x: float) -> int:
        value = int(x + 0.5)
        return value - value % self.reso_steps

    def select(self, width: int, height: int) -> BucketChoice:
        aspect = width / height
        if not self.no_upscale:
            reso = (width, height)
            if reso not in self._predefined_set:
                errors = [abs(r - aspect) for r in self._ratios]
                reso = self.predefined[errors.index(min(errors))]
            bucket_ratio = reso[0] / reso[1]
            # Scale so the image covers the bucket; the overhang is cropped.
            scale = reso[1] / height if aspect > bucket_ratio else reso[0] / width
            resized = (int(width * scale + 0.5), int(height * scale + 0.5))
        else:
            if width * height > self.max_area:
                resized_width = math.sqrt(self.max_area * aspect)
                resized_height = self.max_area / resized_width
                w_rounded = self.round_to_steps(resized_width)
                h_in_w = self.round_to_steps(w_rounded / aspect)
                ar_w = w_rounded / h_in_w if h_in_w else float("inf")
                h_rounded = self.round_to_steps(resized_height)
                w_in_h = self.round_to_steps(h_rounded * aspect)
                ar_h = w_in_h / h_rounded if h_rounded else float("inf")
                if abs(ar_w - aspect) < abs(ar_h - aspect):
                    resized = (w_rounded, int(w_rounded / aspect + 0.5))
                else:
                    resized = (int(h_rounded * aspect + 0.5), h_rounded)
            else:
                resized = (width, height)
            reso = (resized[0] - resized[0] % self.reso_steps, resized[1] - resized[1] % self.reso_steps)
        return BucketChoice(reso, resized, reso[0] / reso[1] - aspect if reso[1] else 0.0)


def parse_resolution(value: str) -> tuple[int, int]:
    """`512` -> (512, 512); `768,512` -> (768, 512)."""
    text = str(value).replace("x", ",").strip()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"resolution = {value!r} is not an int or \"W,H\"") from None
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2 or min(numbers) <= 0:
        raise ConfigError(f"resolution = {value!r} is not an int or \"W,H\"")
    return numbers[0], numbers[1]
