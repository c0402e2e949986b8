"""Benchmark `lorakit validate`: header-only and --deep against a sequential full decode.

Builds a dataset of small images (PNG, JPEG and WebP mixed, with captions) and times, in the same
run: a sequential loop that opens and fully decodes every image (the baseline), `validate()` in
default mode (headers only) and with `deep=True` (every pixel, one process per core).
Targets: default >= 10x the baseline, --deep >= 1.6x.

    python benchmarks/validate.py [--count 20000] [--size 128] [--dir PATH] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prep.validate import ValidateOptions, validate  # noqa: E402
from prep.validation.runner import available_cores  # noqa: E402

FORMATS = (("png", "PNG", {}), ("jpg", "JPEG", {"quality": 90}), ("webp", "WEBP", {"quality": 80}))
TAGS = [f"tag {i}" for i in range(400)]


def build_dataset(root: Path, count: int, size: int) -> list[Path]:
    """`count` distinct images of size x size in 4 concept folders, each with a caption."""
    rng = np.random.default_rng(1)
    pick = random.Random(1)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    base = (np.add.outer(ramp, ramp) / 2)[..., None].repeat(3, axis=2)
    paths = []
    for i in range(count):
        folder = root / f"{(i % 4) + 1}_concept {i % 4}"
        folder.mkdir(parents=True, exist_ok=True)
        ext, fmt, kwargs = FORMATS[i % len(FORMATS)]
        pixels = (base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
        path = folder / f"{i:06d}.{ext}"
        Image.fromarray(pixels).save(path, fmt, **kwargs)
        tags = pick.sample(TAGS, pick.randint(5, 25))
        (folder / f"{i:06d}.txt").write_text(", ".join(["1girl", *tags]), encoding="utf-8")
        paths.append(path)
    return paths


def sequential_full_decode(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as img:
            img.load()
    return time.perf_counter() - start


def timed_validate(root: Path, deep: bool, expected: int) -> float:
    start = time.perf_counter()
    report = validate(root, ValidateOptions(deep=deep, resolution=0))
    elapsed = time.perf_counter() - start
    if report.images != expected or not report.ok:
        raise SystemExit(f"benchmark dataset did not validate cleanly: {report.images} images, "
                         f"{[p.to_dict() for p in report.problems[:3]]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="images to build (default 20000)")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (default 128)")
    parser.add_argument("--dir", type=Path, help="build the dataset here (kept); default a temp dir")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the best counts")
    args = parser.parse_args()
    tmp = None
    if args.dir is None:
        tmp = tempfile.mkdtemp(prefix="lorakit-validate-bench-")
        root = Path(tmp) / "dataset"
    else:
        root = args.dir
    try:
        build_start = time.perf_counter()
        paths = build_dataset(root, args.count, args.size)
        build_time = time.perf_counter() - build_start
        sequential_full_decode(paths[: min(len(paths), 500)])  # warm caches and Pillow's plugins
        results = {"baseline": [], "default": [], "deep": []}
        for _ in range(max(1, args.repeat)):
            results["baseline"].append(sequential_full_decode(paths))
            results["default"].append(timed_validate(root, False, len(paths)))
            results["deep"].append(timed_validate(root, True, len(paths)))
        best = {name: min(times) for name, times in results.items()}
        n = len(paths)
        print(f"{n} images of {args.size}x{args.size} (PNG/JPEG/WebP, captioned), {available_cores()} cores, "
              f"load average {os.getloadavg()[0]:.2f}; dataset built in {build_time:.1f}s\n")
        print("| run | seconds | images/s | vs sequential full decode | target |")
        print("|---|---:|---:|---:|---:|")
        rows = [("sequential open + load (baseline)", "baseline", ""),
                ("`lorakit validate` (headers only)", "default", ">= 10x"),
                ("`lorakit validate --deep`", "deep", ">= 1.6x")]
        for label, key, target in rows:
            seconds = best[key]
            print(f"| {label} | {seconds:.2f} | {n / seconds:,.0f} | {best['baseline'] / seconds:.2f}x | {target} |")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
