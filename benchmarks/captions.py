"""Caption engine speed: `tags stats` and a journaled `tags remove` vs a bare read loop, same run.

Generates N captions (default 100,000) in 10 concept folders, each beside a 0-byte `.png` (the
dataset scan never opens images), then times, best of --repeat runs:
  * baseline: a bare Python loop that lists the folders and reads every caption file once;
  * `tags stats` through prep.tag_stats.tag_stats (scan, read, parse, count);
  * `tags remove watermark` through prep.tag_edit.edit_dataset, changing 10% of the captions,
    journaled and atomic (undone between rounds, untimed);
wall and CPU (process) seconds are both shown; the targets are on wall time.
and checks that a no-op `clean` writes no file (mtimes and the journal unchanged).
Targets: stats <= 1.5x baseline, remove <= 3x baseline. Prints a Markdown table.

    python benchmarks/captions.py [--captions 100000] [--repeat 3] [--dir FOLDER]
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


class Timer:
    """Best wall and CPU seconds over the rounds (rounds interleave the contenders, so a busy
    machine slows each of them alike)."""

    def __init__(self) -> None:
        self.wall = float("inf")
        self.cpu = float("inf")

    def run(self, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        self.wall = min(self.wall, time.perf_counter() - wall)
        self.cpu = min(self.cpu, time.process_time() - cpu)
        return result


def filesystem(path: Path) -> str:
    """The file system type holding path (from /proc/mounts; '?' elsewhere)."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    best = ("", "?")
    for fields in mounts:
        if len(fields) > 2 and str(path).startswith(fields[1]) and len(fields[1]) > len(best[0]):
            best = (fields[1], fields[2])
    return best[1]


def snapshot(root: Path) -> dict[str, int]:
    return {e.path: e.stat().st_mtime_ns for f in os.scandir(root) if f.is_dir() for e in os.scandir(f.path)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to generate the dataset (default: the system temp folder)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="lorakit-bench-captions-", dir=args.dir))
    try:
        root = tmp / "dataset"
        marked = generate(root, args.captions)
        # Every contender starts on a settled file system (a user's dataset is not mid-writeback);
        # the sync itself is never timed.
        os.sync()
        bare_read_loop(root)  # warm the page cache for every contender alike

        bare, stats, remove = Timer(), Timer(), Timer()
        journal = Journal(root)
        for _ in range(args.repeat):
            bare.run(lambda: bare_read_loop(root))
            result = stats.run(lambda: tag_stats(root))
            assert result.captions == args.captions
            report = remove.run(lambda: edit_dataset(root, remove_edit([REMOVED_TAG])))
            assert report.changed == marked, report.changed
            journal.undo()
            os.sync()

        before = snapshot(root)
        ops_before = len(journal.history(include_undone=True))
        noop = clean_dataset(root, CleanConfig())
        wrote_nothing = (noop.changed == 0 and snapshot(root) == before
                         and len(journal.history(include_undone=True)) == ops_before)

        print(f"Captions: {args.captions:,} in {FOLDERS} concept folders under {tmp} "
              f"({filesystem(tmp)}); remove changes {marked:,} ({marked / args.captions:.0%}); "
              f"best of {args.repeat} interleaved rounds.\n")
        print("| operation | wall s | wall ratio | CPU s | CPU ratio | target (wall) | met |")
        print("|---|---:|---:|---:|---:|---:|:---:|")
        print(f"| bare loop: list + read every caption once | {bare.wall:.3f} | 1.00x | {bare.cpu:.3f} | 1.00x "
              "| baseline | |")
        for name, timer, target in (("`tags stats` (scan, read, parse, count)", stats, 1.5),
                                    (f"`tags remove {REMOVED_TAG}` (journaled, atomic)", remove, 3.0)):
            ratio = timer.wall / bare.wall
            print(f"| {name} | {timer.wall:.3f} | {ratio:.2f}x | {timer.cpu:.3f} | {timer.cpu / bare.cpu:.2f}x "
                  f"| <= {target}x | {'yes' if ratio <= target else 'NO'} |")
        print(f"| no-op `clean` on the clean dataset | | | | | writes no file | {'yes' if wrote_nothing else 'NO'} |")
        return 0 if wrote_nothing else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
