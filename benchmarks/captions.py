"""Caption engine speed: `tags stats` and a journaled `tags remove` vs a bare read loop, same run.

Generates N captions (default 100,000) in 10 concept folders, each beside a 0-byte `.png` (the
dataset scan never opens images), then times, best of --repeat runs:
  * baseline: a bare Python loop that lists the folders and reads every caption file once;
  * `tags stats` through prep.tag_stats.tag_stats (scan, read, parse, count);
  * `tags remove TAG` through prep.tag_edit.edit_dataset, changing 10% of the captions,
    journaled and atomic. Each round removes another tag, held by another 10% of the captions,
    so the rounds are successive edits of one dataset, as a user makes them;
wall and CPU (process) seconds are both shown; the targets are on wall time.
and checks that a no-op `clean` writes no file (mtimes and the journal unchanged).
Targets: stats <= 1.5x baseline, remove <= 3x baseline. Prints a Markdown table.

Rounds are successive edits rather than edit + undo, because the benchmark must not itself free
thousands of inodes before a timed round: on ext4 without a journal (this project's machines) the
inode allocator skips "recently deleted" inodes one by one for a minute (`recently_deleted()` in
the kernel's find_inode_bit), so every file created right after a mass deletion costs several
times more kernel time, whatever writes it. (`lorakit undo` swaps the undone version back into
the journal rather than freeing it, so an undo is not such a deletion.) `--after-undo` measures
edit, undo (untimed), edit again. Run the script a minute after the last mass deletion (such as its
own previous run's clean-up) for figures that are not about that kernel effect.
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
# One tag per round, each held by a different 10% of the captions.
REMOVED_TAGS = ("watermark", "signature", "artist name", "web address", "logo", "dated",
                "jpeg artifacts", "censored", "copyright name", "text focus")


def generate(root: Path, n: int, seed: int = 1) -> list[int]:
    """Write n captions + empty images; caption i holds REMOVED_TAGS[i % 10]. Returns how many hold each."""
    rng = random.Random(seed)
    vocab = [f"tag {i} word" if i % 3 else f"tag{i}" for i in range(600)]
    marked = [0] * len(REMOVED_TAGS)
    per_folder = -(-n // FOLDERS)
    made = 0
    for f in range(FOLDERS):
        folder = root / f"{f + 1}_concept{f}"
        folder.mkdir(parents=True)
        for j in range(min(per_folder, n - made)):
            tags = rng.sample(vocab, rng.randint(8, 24))
            which = made % len(REMOVED_TAGS)
            tags.insert(rng.randint(0, len(tags)), REMOVED_TAGS[which])
            marked[which] += 1
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
        self.walls: list[float] = []

    def run(self, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        self.walls.append(time.perf_counter() - wall)
        self.wall = min(self.wall, self.walls[-1])
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
    parser.add_argument("--repeat", type=int, default=3, help=f"rounds (at most {len(REMOVED_TAGS)})")
    parser.add_argument("--after-undo", action="store_true",
                        help="remove the same tag each round, undoing it (untimed) in between")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to generate the dataset (default: the system temp folder)")
    args = parser.parse_args()
    if not 1 <= args.repeat <= len(REMOVED_TAGS):
        parser.error(f"--repeat must be 1 to {len(REMOVED_TAGS)}")

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
        for round_ in range(args.repeat):
            which = 0 if args.after_undo else round_
            tag = REMOVED_TAGS[which]
            bare.run(lambda: bare_read_loop(root))
            result = stats.run(lambda: tag_stats(root))
            assert result.captions == args.captions
            report = remove.run(lambda tag=tag: edit_dataset(root, remove_edit([tag])))
            assert report.changed == marked[which], report.changed
            if args.after_undo:
                journal.undo()
            os.sync()

        before = snapshot(root)
        ops_before = len(journal.history(include_undone=True))
        noop = clean_dataset(root, CleanConfig())
        wrote_nothing = (noop.changed == 0 and snapshot(root) == before
                         and len(journal.history(include_undone=True)) == ops_before)

        changed = marked[0]
        rounds = ("each round removes `watermark` again after an untimed undo" if args.after_undo
                  else "each round removes another tag")
        print(f"Captions: {args.captions:,} in {FOLDERS} concept folders under {tmp} "
              f"({filesystem(tmp)}); remove changes {changed:,} ({changed / args.captions:.0%}); "
              f"best of {args.repeat} interleaved rounds; {rounds}.\n")
        print("| operation | wall s | wall ratio | CPU s | CPU ratio | target (wall) | met |")
        print("|---|---:|---:|---:|---:|---:|:---:|")
        print(f"| bare loop: list + read every caption once | {bare.wall:.3f} | 1.00x | {bare.cpu:.3f} | 1.00x "
              "| baseline | |")
        for name, timer, target in (("`tags stats` (scan, read, parse, count)", stats, 1.5),
                                    ("`tags remove TAG` (journaled, atomic)", remove, 3.0)):
            ratio = timer.wall / bare.wall
            print(f"| {name} | {timer.wall:.3f} | {ratio:.2f}x | {timer.cpu:.3f} | {timer.cpu / bare.cpu:.2f}x "
                  f"| <= {target}x | {'yes' if ratio <= target else 'NO'} |")
        print(f"| no-op `clean` on the clean dataset | | | | | writes no file | {'yes' if wrote_nothing else 'NO'} |")
        rounds = ", ".join(f"{r / b:.2f}x" for r, b in zip(remove.walls, bare.walls, strict=True))
        print(f"\nRemove / bare loop, round by round: {rounds}.")
        return 0 if wrote_nothing else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
