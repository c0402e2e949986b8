"""Does the clever machinery pay on datasets of 100 to 20,000 images? Each one against its plain
alternative, in the same run, interleaved (A, B, B, A, ...) so the machine's load falls on both.

  journal  the atomic swap (fsio.exchange, renameat2 RENAME_EXCHANGE through ctypes) against the
           portable path (LORAKIT_NO_SWAP=1: previous bytes linked/copied into the journal, temp file
           + os.replace): one journaled rewrite of every caption, then `undo` of it.
  hashes   prep.hash_index's multi-index hashing against its own blocked all-pairs pass, grouping N
           64-bit hashes (10% of them near copies) at dedupe's default threshold (8 bits); both give
           the same pairs (checked).

(The third piece examined, the tagger lowering its decode threads' priority once inference was
the bottleneck, was measured here too and removed: see tagger/pipeline.py's docstring.)

    python benchmarks/machinery.py [--only journal,hashes] [--sizes 100,1000,5000,20000] [--rounds 4]

Prints a Markdown table with the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _interleaved(rounds: int, a, b) -> tuple[list[float], list[float]]:
    """Seconds of a() and b() over `rounds` rounds, alternating which goes first."""
    times: dict[str, list[float]] = {"a": [], "b": []}
    for r in range(rounds):
        for which in (("a", "b") if r % 2 == 0 else ("b", "a")):
            fn = a if which == "a" else b
            times[which].append(fn())
    return times["a"], times["b"]


# --- journal: swap vs portable ------------------------------------------------------------------

def _caption_dataset(root: Path, n: int) -> list[Path]:
    folder = root / "1_concept"
    folder.mkdir(parents=True)
    paths = []
    for i in range(n):
        (folder / f"img{i:05d}.png").write_bytes(b"")  # the images are never read here
        path = folder / f"img{i:05d}.txt"
        path.write_text(f"1girl, solo, tag{i % 97}, long hair, smile, looking at viewer\n", encoding="utf-8")
        paths.append(path)
    return paths


def _journal_round(root: Path, paths: list[Path], swap: bool, counter: list[int]) -> tuple[float, float]:
    from prep.journal import Journal

    counter[0] += 1
    previous = os.environ.pop("LORAKIT_NO_SWAP", None)
    if not swap:
        os.environ["LORAKIT_NO_SWAP"] = "1"
    try:
        files = [(p, p.read_bytes().rstrip(b"\n") + f", extra{counter[0]}\n".encode()) for p in paths]
        start = time.perf_counter()
        with Journal(root).begin("bench rewrite") as op:
            written = op.write_many(files)
        write_s = time.perf_counter() - start
        assert written == len(paths), written
        start = time.perf_counter()
        Journal(root).undo()
        undo_s = time.perf_counter() - start
    finally:
        os.environ.pop("LORAKIT_NO_SWAP", None)
        if previous is not None:
            os.environ["LORAKIT_NO_SWAP"] = previous
    return write_s, undo_s


def _journal_size(n: int, rounds: int, work: Path) -> list[tuple[str, ...]]:
    roots = {v: work / f"journal-{v}-{n}" for v in ("swap", "plain")}
    paths = {v: _caption_dataset(r, n) for v, r in roots.items()}
    counter = [0]
    results: dict[str, list[tuple[float, float]]] = {"swap": [], "plain": []}

    def run(v: str) -> float:
        w, u = _journal_round(roots[v], paths[v], v == "swap", counter)
        results[v].append((w, u))
        return w + u

    _interleaved(rounds, lambda: run("swap"), lambda: run("plain"))
    for r in roots.values():
        shutil.rmtree(r, ignore_errors=True)
    sw, su = (_median([r[k] for r in results["swap"]]) for k in (0, 1))
    pw, pu = (_median([r[k] for r in results["plain"]]) for k in (0, 1))
    return [(f"journal: rewrite {n:,} captions", f"{sw * 1000:.0f} ms", f"{pw * 1000:.0f} ms", f"{pw / sw:.2f}x", "swap"),
            (f"journal: undo it ({n:,})", f"{su * 1000:.0f} ms", f"{pu * 1000:.0f} ms", f"{pu / su:.2f}x", "swap")]


def bench_journal(sizes: list[int], rounds: int, work: Path) -> list[tuple[str, ...]]:
    from prep.fsio import _load_renameat2

    if not _load_renameat2():
        return [("journal", "renameat2 not available here: both variants are the portable path", "", "", "")]
    return [row for n in sizes for row in _journal_size(n, rounds, work)]


# --- hashes: multi-index hashing vs all pairs -----------------------------------------------------

def _hashes(n: int, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    copies = rng.choice(n, size=n // 10, replace=False)
    for k, i in enumerate(copies[1:]):  # a near copy: the hash of another image with a few bits flipped
        flips = rng.choice(64, size=int(rng.integers(0, 7)), replace=False)
        values[i] = values[copies[k]] ^ np.uint64(sum(1 << int(b) for b in flips))
    return values


def _timed(fn, reps: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps


def _hashes_size(n: int, rounds: int, threshold: int) -> tuple[str, ...]:
    import numpy as np

    from prep import hash_index

    values = np.unique(_hashes(n))
    blocks, cost = hash_index._best_blocks(len(values), threshold)
    chosen = "multi-index" if cost < hash_index._NS_PER_DENSE_PAIR * len(values) ** 2 / 2 else "all pairs"
    mih = set(zip(*(a.tolist() for a in hash_index._pairs_multi_index(values, threshold, blocks)), strict=True))
    dense = set(zip(*(a.tolist() for a in hash_index._pairs_dense(values, threshold)), strict=True))
    assert mih == dense, (len(mih), len(dense))
    reps = max(1, 2000 // max(n, 1))  # small sizes: repeat so the timer sees milliseconds
    a, b = _interleaved(rounds, lambda: _timed(lambda: hash_index._pairs_multi_index(values, threshold, blocks), reps),
                        lambda: _timed(lambda: hash_index._pairs_dense(values, threshold), reps))
    ma, mb = _median(a), _median(b)
    return (f"hash grouping: {n:,} hashes, threshold {threshold} ({len(mih)} pairs)", f"{ma * 1000:.1f} ms",
            f"{mb * 1000:.1f} ms", f"{mb / ma:.2f}x", f"{chosen} ({blocks} blocks)")


def bench_hashes(sizes: list[int], rounds: int, threshold: int = 8) -> list[tuple[str, ...]]:
    return [_hashes_size(n, rounds, threshold) for n in sizes]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="journal,hashes", help="comma-separated: journal, hashes")
    parser.add_argument("--sizes", default="100,1000,5000,20000", help="dataset sizes for journal and hashes")
    parser.add_argument("--rounds", type=int, default=4, help="runs of each variant, interleaved (median kept)")
    parser.add_argument("--workdir", type=Path, default=None, help="work here (kept)")
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="lorakit-machinery-"))
    load_start = os.getloadavg()[0]
    rows: list[tuple[str, ...]] = []
    try:
        if "journal" in only:
            rows += bench_journal(sizes, args.rounds, work)
        if "hashes" in only:
            rows += bench_hashes(sizes, args.rounds)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"### benchmarks/machinery.py — {cores} CPU cores, load average {load_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end; medians of {args.rounds} interleaved runs\n")
    print("| case | with the machinery | plain alternative | plain / machinery | the code uses |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
