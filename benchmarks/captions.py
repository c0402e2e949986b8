"""Caption engine speed: `tags stats` and a journaled `tags remove` vs a bare read loop, same run.

Generates N captions (default 100,000) in 10 concept folders, each beside a 0-byte `.png` (the
dataset scan never opens images), then times, best of --repeat runs:
  * baseline: a bare Python loop that lists the folders and reads every caption file once;
  * `tags stats` through prep.tag_stats.tag_stats (scan, read, parse, count);
  * `tags remove watermark` through prep.tag_edit.edit_dataset, changing 10% of the captions,
    journaled and atomic (undone between runs, untimed);
and checks that a no-op `clean` writes no file (mtimes and the journal unchanged).
Targets: stats <= 1.5x baseline, remove <= 3x baseline. Prints a Markdown table.

    python benchmarks/captions.py [--captions 100000] [--repeat 3]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prep.clean import CleanConfig, clean_dataset  # noqa: E402
from prep.journal import Journal  # noqa: E402
from prep.tag_edit import edit_dataset, remove_edit  # noqa: E402
from prep.tag_stats import tag_stats  # noqa: E402

FOLDERS = 10
REMOVED_TAG = "watermark"


def generate(root: Path, n: int, seed: int = 1) -> int:
    """Write n captions + empty images; 10% of captions hold REMOVED_TAG. Returns how many do."""
    rng = random.Random(seed)
    vocab = [f"tag {i} word" if i % 3 else f"tag{i}" for i in range(600)]
    marked = 0
    per_folder = -(-n // FOLDERS)
    made = 0
    for f in range(FOLDERS):
        folder = root / f"{f + 1}_concept{f}"
        folder.mkdir(parents=True)
        for j in range(min(per_folder, n - made)):
            tags = rng.sample(vocab, rng.randint(8, 24))
            if made % 10 == 0:
                tags.insert(rng.randint(0, len(tags)), REMOVED_TAG)
                marked += 1
            stem = folder / f"img{j:06d}"
            with open(f"{stem}.png", "wb"):
                pass
            with open(f"{stem}.txt", "w", encoding="utf-8") as fh:
                fh.write(", ".join(tags))
            made += 1
    return marked


def bare_read_loop(root: Path) -> int:
    """The baseline: find every caption file and read it once."""
    total = 0
    for folder in os.scandir(root):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        for entry in os.scandir(folder.path):
            if entry.name.endswith(".txt"):
                with open(entry.path, "rb") as fh:
                    total += len(fh.read())
    return total


def best_of(repeat: int, fn, between=None) -> float:
    best = float("inf")
    for i in range(repeat):
        if between is not None and i:
            between()
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def snapshot(root: Path) -> dict[str, int]:
    return {e.path: e.stat().st_mtime_ns for f in os.scandir(root) if f.is_dir() for e in os.scandir(f.path)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lorakit-bench-captions-"))
    try:
        root = tmp / "dataset"
        marked = generate(root, args.captions)
        bare_read_loop(root)  # warm the page cache for every contender alike

        t_bare = best_of(args.repeat, lambda: bare_read_loop(root))
        stats_result = {}
        t_stats = best_of(args.repeat, lambda: stats_result.update(s=tag_stats(root)))
        assert stats_result["s"].captions == args.captions

        journal = Journal(root)
        reports = []
        t_remove = best_of(args.repeat, lambda: reports.append(edit_dataset(root, remove_edit([REMOVED_TAG]))),
                           between=journal.undo)
        assert all(r.changed == marked for r in reports), [r.changed for r in reports]
        journal.undo()

        before = snapshot(root)
        ops_before = len(journal.history(include_undone=True))
        noop = clean_dataset(root, CleanConfig())
        wrote_nothing = (noop.changed == 0 and snapshot(root) == before
                         and len(journal.history(include_undone=True)) == ops_before)

        print(f"Captions: {args.captions:,} in {FOLDERS} concept folders; remove changes {marked:,} "
              f"({marked / args.captions:.0%}); best of {args.repeat}.\n")
        print("| operation | seconds | ratio to bare read loop | target | met |")
        print("|---|---:|---:|---:|:---:|")
        print(f"| bare loop: list + read every caption once | {t_bare:.3f} | 1.00x | baseline | |")
        for name, t, target in (("`tags stats` (scan, read, parse, count)", t_stats, 1.5),
                                (f"`tags remove {REMOVED_TAG}` (journaled, atomic)", t_remove, 3.0)):
            ratio = t / t_bare
            print(f"| {name} | {t:.3f} | {ratio:.2f}x | <= {target}x | {'yes' if ratio <= target else 'NO'} |")
        print(f"| no-op `clean` on a clean dataset | | | writes no file | {'yes' if wrote_nothing else 'NO'} |")
        return 0 if wrote_nothing else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
