"""Curation speed: pHash dedupe on every core vs sequential loops, and hash grouping vs all pairs.

    python benchmarks/curation.py [--count 20000] [--hashes 100000] [--sample 5000]

Builds a dataset of small generated pictures (random shapes, 10% of them re-encoded copies), then
times, in the same run:
  * a plain sequential loop: open each file, imagehash.phash (what a script would do);
  * lorakit's hashing with one process, and with every core (the dedupe default), cache empty;
  * the same dedupe again with the hash cache filled;
  * grouping `--hashes` random 64-bit hashes (multi-index hashing) against a pure-Python
    all-pairs loop over `--sample` of them, compared per pair considered.
Prints a Markdown table.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PALETTE = [(200, 40, 40), (40, 160, 60), (30, 60, 200), (240, 220, 60), (20, 20, 20), (230, 230, 230)]


def _make(args: tuple[Path, int, int]) -> None:
    from PIL import Image, ImageDraw

    folder, start, stop = args
    for seed in range(start, stop):
        rng = random.Random(seed)
        if seed % 10 == 9:  # a re-encoded copy of the previous picture
            image = _picture(seed - 1, Image, ImageDraw)
            image.save(folder / f"img{seed:06d}.jpg", quality=60)
            continue
        image = _picture(seed, Image, ImageDraw)
        if rng.randrange(2):
            image.save(folder / f"img{seed:06d}.png", compress_level=1)
        else:
            image.save(folder / f"img{seed:06d}.jpg", quality=90)


def _picture(seed: int, Image, ImageDraw):
    rng = random.Random(seed)
    image = Image.new("RGB", (128, 128), PALETTE[rng.randrange(len(PALETTE))])
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randrange(128), rng.randrange(128)
        x1, y1 = x0 + rng.randrange(10, 70), y0 + rng.randrange(10, 70)
        shape = draw.rectangle if rng.randrange(2) else draw.ellipse
        shape((x0, y0, x1, y1), fill=PALETTE[rng.randrange(len(PALETTE))])
    return image


def build_dataset(root: Path, count: int) -> Path:
    folder = root / "1_bench"
    folder.mkdir(parents=True)
    step = 500
    jobs = [(folder, lo, min(count, lo + step)) for lo in range(0, count, step)]
    with ProcessPoolExecutor() as pool:
        list(pool.map(_make, jobs))
    return folder


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def naive_loop(paths: list[Path]) -> list[int]:
    import imagehash
    from PIL import Image

    out = []
    for path in paths:
        with Image.open(path) as image:
            out.append(imagehash.phash(image))
    return out


def lorakit_hashing(paths: list[Path], workers: int) -> list:
    from prep.phash import iter_file_facts

    return list(iter_file_facts(paths, {}, workers=workers))


def dedupe(root: Path):
    from prep.dedupe import DedupeOptions, find_duplicates
    from prep.events import Finished

    for event in find_duplicates(root, DedupeOptions()):
        if isinstance(event, Finished):
            return event.summary
    return None


def python_all_pairs(hashes: list[int], threshold: int) -> list[tuple[int, int]]:
    pairs = []
    n = len(hashes)
    for i in range(n):
        hi = hashes[i]
        for j in range(i + 1, n):
            if (hi ^ hashes[j]).bit_count() <= threshold:
                pairs.append((i, j))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000, help="generated images (default 20000)")
    parser.add_argument("--hashes", type=int, default=100_000, help="random hashes to group (default 100000)")
    parser.add_argument("--sample", type=int, default=5_000, help="hashes for the all-pairs loop (default 5000)")
    parser.add_argument("--threshold", type=int, default=8)
    args = parser.parse_args()

    import numpy as np

    from prep.cores import usable_cores
    from prep.hash_index import group_hashes, hamming_pairs

    cores = usable_cores()
    rows: list[tuple[str, str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="lorakit-curation-"))
    try:
        root = tmp / "ds"
        gen_s, folder = timed(lambda: build_dataset(root, args.count))
        paths = sorted(folder.iterdir())
        n = len(paths)

        naive_s, _ = timed(lambda: naive_loop(paths))
        one_s, facts1 = timed(lambda: lorakit_hashing(paths, 1))
        all_s, facts2 = timed(lambda: lorakit_hashing(paths, cores))
        assert [f.hash for f in facts1] == [f.hash for f in facts2]
        cold_s, report = timed(lambda: dedupe(root))
        warm_s, report2 = timed(lambda: dedupe(root))
        assert report.to_dict() == report2.to_dict()

        rows.append((f"sequential loop: open + imagehash.phash ({n} images)", f"{naive_s:.2f}",
                     f"{n / naive_s:,.0f}", "1.00x (baseline)"))
        rows.append(("lorakit hashing, 1 process (thumbnail decode)", f"{one_s:.2f}", f"{n / one_s:,.0f}",
                     f"{naive_s / one_s:.2f}x"))
        rows.append((f"lorakit hashing, {cores} processes", f"{all_s:.2f}", f"{n / all_s:,.0f}",
                     f"{naive_s / all_s:.2f}x ({one_s / all_s:.2f}x vs 1 process)"))
        rows.append((f"`lorakit dedupe` (phash, cache empty; {len(report.groups)} groups, "
                     f"{report.dropped} to drop)", f"{cold_s:.2f}", f"{n / cold_s:,.0f}", f"{naive_s / cold_s:.2f}x"))
        rows.append(("`lorakit dedupe` again (hash cache filled)", f"{warm_s:.2f}", f"{n / warm_s:,.0f}",
                     f"{naive_s / warm_s:.2f}x"))

        rng = np.random.default_rng(0)
        hashes = rng.integers(0, 2**64 - 1, size=args.hashes, dtype=np.uint64, endpoint=True)
        sample = [int(h) for h in hashes[: args.sample]]
        py_s, py_pairs = timed(lambda: python_all_pairs(sample, args.threshold))
        idx_sample = hamming_pairs(np.array(sample, dtype=np.uint64), args.threshold)
        assert sorted(zip(*(a.tolist() for a in idx_sample), strict=True)) == sorted(py_pairs)
        idx_s, _ = timed(lambda: group_hashes(hashes, args.threshold))
        py_pairs_n = args.sample * (args.sample - 1) // 2
        idx_pairs_n = args.hashes * (args.hashes - 1) // 2
        py_per = py_s / py_pairs_n
        idx_per = idx_s / idx_pairs_n
        rows.append((f"pure-Python all pairs, {args.sample:,} hashes ({py_pairs_n:,} pairs)", f"{py_s:.2f}",
                     f"{py_per * 1e9:.2f} ns/pair", "1.00x (baseline)"))
        rows.append((f"lorakit grouping (multi-index hashing), {args.hashes:,} hashes "
                     f"({idx_pairs_n:,} pairs covered)", f"{idx_s:.2f}", f"{idx_per * 1e9:.3f} ns/pair",
                     f"{py_per / idx_per:,.0f}x per pair"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"## Curation ({n:,} generated 128 px images, {cores} cores; generation took {gen_s:.1f} s; "
          f"threshold {args.threshold} bits)\n")
    print("| measurement | seconds | rate | vs baseline |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print("\nTargets: hashing on every core faster than the sequential loop; grouping >= 50x faster per pair.")
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs visible)")


if __name__ == "__main__":
    main()
