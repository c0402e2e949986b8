"""What the tag store (`.lorakit/tags.sqlite`, prep.provenance) costs a journaled caption edit.

Generates two identical datasets of N captions (default 10,000) in 10 concept folders, each beside
a 0-byte `.png`; in one, a scrape-like journaled operation records a booru source for every tag, so
it has a store with a row per tag. Then, best of --repeat rounds on each dataset, times:
  * `tags remove TAG` changing 10% of the captions (a typical edit; each round another tag);
  * `tags add TAG` changing every caption (the store's worst case: every image's rows change);
and prints wall seconds without and with the store, their ratio, and the store's size. Target: the
store adds at most 1.5x to either edit. Prints a Markdown table; `--keep` keeps the datasets.
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

from prep.journal import Journal  # noqa: E402
from prep.provenance import note_sources, read_store, store_path  # noqa: E402
from prep.tag_edit import add_edit, edit_dataset, remove_edit  # noqa: E402

FOLDERS = 10
REMOVED = ("watermark", "signature", "artist name", "web address", "logo")


def generate(root: Path, n: int, seed: int = 1) -> list[tuple[Path, list[str]]]:
    rng = random.Random(seed)
    vocab = [f"tag {i} word" if i % 3 else f"tag{i}" for i in range(600)]
    out = []
    per_folder = -(-n // FOLDERS)
    for i in range(n):
        folder = root / f"{i // per_folder + 1}_concept{i // per_folder}"
        folder.mkdir(parents=True, exist_ok=True)
        tags = rng.sample(vocab, rng.randint(8, 24))
        if i % 10 < len(REMOVED):
            tags.insert(rng.randrange(len(tags) + 1), REMOVED[i % 10])
        (folder / f"{i:06d}.png").write_bytes(b"")
        caption = folder / f"{i:06d}.txt"
        caption.write_text(", ".join(tags), encoding="utf-8")
        out.append((caption, tags))
    return out


def record_sources(root: Path, captions: list[tuple[Path, list[str]]]) -> None:
    """A scrape-like operation: every caption rewritten with a booru source noted per tag."""
    with Journal(root).begin("scrape") as op:
        for i, (caption, tags) in enumerate(captions):
            note_sources(op, caption, {t: (f"booru:danbooru:{i}", None) for t in tags})
            op.write_caption(caption, tags + ["scraped"])


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--captions", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help=f"rounds (at most {len(REMOVED)})")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the datasets (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the datasets")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lorakit-bench-prov-", dir=args.dir))
    try:
        plain, tracked = base / "plain", base / "tracked"
        for root in (plain, tracked):
            captions = generate(root, args.captions)
        # The same scrape-like rewrite on both (so both captions sets are alike), sources kept in one.
        record_sources(tracked, captions)
        plain_captions = [(plain / c.relative_to(tracked), t) for c, t in captions]
        with Journal(plain).begin("scrape") as op:
            for caption, tags in plain_captions:
                op.write_caption(caption, tags + ["scraped"])
        assert store_path(tracked).is_file() and not store_path(plain).exists()
        rounds = min(args.repeat, len(REMOVED))
        results: dict[str, dict[str, float]] = {"remove": {}, "add": {}}
        for name, root in (("without", plain), ("with", tracked)):
            results["remove"][name] = min(
                timed(lambda r=root, i=i: edit_dataset(r, remove_edit([REMOVED[i]]))) for i in range(rounds))
            results["add"][name] = min(
                timed(lambda r=root, i=i: edit_dataset(r, add_edit([f"added {i}"]))) for i in range(rounds))
        store = read_store(tracked)
        assert store is not None
        try:
            rows = store.db.execute("SELECT COUNT(*) FROM tags").fetchone()[0]
            added = store.db.execute("SELECT COUNT(*) FROM tags WHERE tag = 'added 0'").fetchone()[0]
        finally:
            store.close()
        assert added == args.captions, f"the store missed rows: {added} of {args.captions}"
        size = store_path(tracked).stat().st_size
        load = os.getloadavg()
        print(f"{args.captions} captions, store {size / 1e6:.1f} MB ({rows} tag rows); "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
        print("| edit | without store (s) | with store (s) | ratio | target |")
        print("|---|---|---|---|---|")
        ok = True
        for edit, label in (("remove", "`tags remove` (10% of captions)"), ("add", "`tags add` (every caption)")):
            without, with_store = results[edit]["without"], results[edit]["with"]
            ratio = with_store / without
            ok &= ratio <= 1.5
            print(f"| {label} | {without:.3f} | {with_store:.3f} | {ratio:.2f}x | <= 1.5x |")
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
