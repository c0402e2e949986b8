"""Benchmark `lorakit validate`: header-only and --deep against a sequential full decode.

Builds a dataset of small images (PNG, JPEG and WebP mixed, each with a caption) in 10 concept
folders and times, on the same files: a sequential loop that opens and fully decodes every image
(the baseline), `validate()` in default mode (headers only) and with `deep=True` (every pixel, one
process per core). Other work on the machine changes speed from second to second, so the three are
interleaved concept folder by concept folder (each folder validated as a dataset of its own through
a symlink) and summed: every measurement sees the same background load.
Targets: default >= 10x the baseline, --deep >= 1.6x.

    python benchmarks/validate.py [--count 20000] [--size 256] [--dir PATH] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prep.clip_tokens import count_tokens  # noqa: E402
from prep.cores import usable_cores as available_cores  # noqa: E402
from prep.validate import ValidateOptions, validate  # noqa: E402

FORMATS = (("png", "PNG", {"compress_level": 1}), ("jpg", "JPEG", {"quality": 90}),
           ("webp", "WEBP", {"quality": 80, "method": 0}))
TAGS = [f"tag {i}" for i in range(400)]
FOLDERS = 10
BUILT_MARKER = ".benchmark-built"


def folder_name(index: int) -> str:
    return f"{index % 4 + 1}_concept {index}"


def image_path(root: Path, i: int, count: int) -> Path:
    per_folder = -(-count // FOLDERS)
    return root / folder_name(i // per_folder) / f"{i:06d}.{FORMATS[i % len(FORMATS)][0]}"


def _write_images(job: tuple[str, int, int, int, int]) -> None:
    root, start, stop, count, size = job
    rng = np.random.default_rng(start)
    pick = random.Random(start)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    base = (np.add.outer(ramp, ramp) / 2)[..., None].repeat(3, axis=2)
    for i in range(start, stop):
        path = image_path(Path(root), i, count)
        _ext, fmt, kwargs = FORMATS[i % len(FORMATS)]
        pixels = (base + rng.normal(0, 6, base.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(path, fmt, **kwargs)
        tags = pick.sample(TAGS, pick.randint(5, 25))
        path.with_suffix(".txt").write_text(", ".join(["1girl", *tags]), encoding="utf-8")


def build_dataset(root: Path, count: int, size: int) -> list[list[Path]]:
    """`count` distinct size x size images with captions, in FOLDERS concept folders (built on every
    core; reused when `root` already holds the same build). Returns the images per folder."""
    marker = root / BUILT_MARKER
    stamp = f"{count} {size}"
    if not (marker.is_file() and marker.read_text() == stamp):
        for index in range(FOLDERS):
            (root / folder_name(index)).mkdir(parents=True, exist_ok=True)
        step = 250
        jobs = [(str(root), start, min(count, start + step), count, size) for start in range(0, count, step)]
        with ProcessPoolExecutor(max_workers=available_cores()) as pool:
            list(pool.map(_write_images, jobs))
        marker.write_text(stamp)
    folders: dict[str, list[Path]] = {}
    for i in range(count):
        path = image_path(root, i, count)
        folders.setdefault(path.parent.name, []).append(path)
    return list(folders.values())


def slice_dataset(root: Path, folder: str, slices: Path) -> Path:
    """A dataset whose one concept folder is a symlink to `folder` of the full dataset."""
    target = slices / folder
    target.mkdir(parents=True, exist_ok=True)
    link = target / folder
    if not link.exists():
        link.symlink_to(root / folder, target_is_directory=True)
    return target


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (pool workers once shut down)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def sequential_full_decode(paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        with Image.open(path) as img:
            img.load()
    return time.perf_counter() - start


def _spin(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def cpu_scaling(workers: int, n: int = 400_000) -> tuple[float, float]:
    """Control: the same pure-CPU work done by one process, then split over `workers` processes.
    Their ratio is what the machine gives parallel work at the moment (other jobs share the cores)."""
    start = time.perf_counter()
    for _ in range(workers):
        _spin(n)
    sequential = time.perf_counter() - start
    # A pool of its own each time, started before the clock: a live pool's thread would make
    # validate() pick forkserver, which it does only in threaded programs.
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(_spin, [1] * workers))
        start = time.perf_counter()
        list(pool.map(_spin, [n] * workers))
        return sequential, time.perf_counter() - start


def timed_validate(root: Path, deep: bool, expected: int) -> float:
    start = time.perf_counter()
    # The trainer's default buckets (512): the histogram and bucket-upscale run as in a real check.
    report = validate(root, ValidateOptions(deep=deep, resolution=0, bucket_resolution="512"))
    elapsed = time.perf_counter() - start
    if report.images != expected or not report.ok:
        raise SystemExit(f"benchmark dataset did not validate cleanly: {report.images} images, "
                         f"{[p.to_dict() for p in report.problems[:3]]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000, help="images to build (default 20000)")
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument("--dir", type=Path, help="build the dataset here (kept, reused); default a temp dir")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of measurements; the round where --deep did best counts")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="lorakit-validate-bench-")
    root = args.dir if args.dir is not None else Path(tmp) / "dataset"
    try:
        build_start = time.perf_counter()
        folders = build_dataset(root, args.count, args.size)
        build_time = time.perf_counter() - build_start
        slices = [(slice_dataset(root, paths[0].parent.name, Path(tmp) / "slices"), paths) for paths in folders]
        sequential_full_decode(folders[0][:200])  # warm Pillow's plugins
        count_tokens("warm the tokenizer")
        totals: dict[str, list[float]] = {key: [] for key in (
            "baseline", "default", "deep", "baseline_cpu", "default_cpu", "deep_cpu", "control_1", "control_n")}
        loads = [os.getloadavg()[0]]
        cores = available_cores()
        for _ in range(max(1, args.repeat)):
            round_times = dict.fromkeys(totals, 0.0)
            for dataset, paths in slices:
                for key in ("baseline", "deep", "default"):
                    cpu = cpu_seconds()
                    if key == "baseline":
                        round_times[key] += sequential_full_decode(paths)
                    else:
                        round_times[key] += timed_validate(dataset, key == "deep", len(paths))
                    round_times[key + "_cpu"] += cpu_seconds() - cpu
                one, many = cpu_scaling(cores)
                round_times["control_1"] += one
                round_times["control_n"] += many
                loads.append(os.getloadavg()[0])
            for key, seconds in round_times.items():
                totals[key].append(seconds)
        best_round = min(range(len(totals["deep"])), key=lambda r: totals["deep"][r] / totals["baseline"][r])
        best = {key: times[best_round] for key, times in totals.items()}
        n = sum(len(paths) for paths in folders)
        print(f"{n} images of {args.size}x{args.size} (PNG/JPEG/WebP, captioned) in {len(folders)} folders, "
              f"{available_cores()} cores, 1-minute load average {min(loads):.1f} to {max(loads):.1f} "
              f"during the runs; best of {max(1, args.repeat)} round(s); dataset built in {build_time:.0f}s\n")
        print("| run | seconds | images/s | vs sequential full decode | target | CPU seconds (all processes) |")
        print("|---|---:|---:|---:|---:|---:|")
        rows = [("sequential open + load (baseline)", "baseline", ""),
                ("`lorakit validate` (headers only)", "default", ">= 10x"),
                ("`lorakit validate --deep`", "deep", ">= 1.6x")]
        for label, key, target in rows:
            seconds = best[key]
            print(f"| {label} | {seconds:.2f} | {n / seconds:,.0f} | {best['baseline'] / seconds:.2f}x | {target} "
                  f"| {best[key + '_cpu']:.2f} |")
        control = best["control_1"] / best["control_n"]
        deep = best["baseline"] / best["deep"]
        print(f"\nControl, interleaved with the runs above: a pure-CPU loop split over {cores} processes ran "
              f"{control:.2f}x as fast as in one process, so {control:.2f}x is what this machine gave parallel "
              f"work meanwhile; --deep reached {deep / control:.0%} of that.")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
