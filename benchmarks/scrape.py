"""Benchmark `lorakit scrape` against the booru emulator: parallel downloads vs a sequential loop.

The emulator serves 3 x `--posts` posts of which one in three is rated general (the scrape asks
for `--rating g`, so it pages through all of them), adds `--latency` seconds to every file and
answers 429 to API requests above `--api-rate` per second. In the same run it times a plain sequential loop that downloads the same
files (the baseline), then `lorakit scrape` with the default concurrency and `--rate` equal to the
emulator's limit, for each family given: in-process through `tui.cli.main` (the `lorakit` entry
point; like the baseline it excludes interpreter start-up, and it shares the GIL with the emulator),
and once more as a real process, start-up included, for reference. It also checks, from the emulator's
request log, that no one-second window held more API requests than the limit.
Target: >= 3x the baseline's files/s, with the API rate never exceeded.

    python benchmarks/scrape.py [--posts 200] [--latency 0.1] [--api-rate 10] [--families gelbooru,danbooru]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from booru.http import user_agent  # noqa: E402
from tests.booru.emulator import Emulator, make_posts  # noqa: E402


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most requests seen in any half-open window of `window` seconds."""
    times = sorted(times)
    best = 0
    start = 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def sequential_baseline(emu: Emulator, folder: Path) -> tuple[int, float]:
    """Fetch every post's file one after another with one session, checking md5s."""
    folder.mkdir(parents=True)
    session = requests.Session()
    session.headers["User-Agent"] = user_agent()
    started = time.perf_counter()
    for post in (p for p in emu.posts if p.rating == "g"):
        data = session.get(emu.file_url(post), timeout=60).content
        assert hashlib.md5(data).hexdigest() == post.md5
        (folder / f"{post.id}.{post.ext}").write_bytes(data)
    return len(list(folder.iterdir())), time.perf_counter() - started


def lorakit_scrape(emu: Emulator, family: str, out: Path, count: int, api_rate: float,
                   process: bool) -> tuple[int, float]:
    argv = ["scrape", "--site", family, "--base-url", emu.base_url, "--tags", "1girl", "--limit", str(count),
            "--rating", "g", "--out", str(out), "--rate", str(api_rate), "--json"]
    if not process:
        from tui.cli import main as lorakit

        buffer = io.StringIO()
        started = time.perf_counter()
        with contextlib.redirect_stdout(buffer):
            code = lorakit(argv)
        elapsed = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"lorakit scrape failed ({code})")
        return json.loads(buffer.getvalue())["downloaded"], elapsed
    cmd = [sys.executable, "-m", "tui", *argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAKIT_")}
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"lorakit scrape failed ({proc.returncode}): {proc.stderr.strip()}")
    return json.loads(proc.stdout)["downloaded"], elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every file")
    parser.add_argument("--api-rate", type=float, default=10.0, help="API requests per second allowed")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels (noise PNGs)")
    parser.add_argument("--families", default="gelbooru,danbooru")
    args = parser.parse_args()

    posts = make_posts(3 * args.posts, width=args.size, height=args.size, noise=True)
    for index, post in enumerate(posts):
        post.rating = "g" if index % 3 == 0 else "e"
    rows = []
    with tempfile.TemporaryDirectory(prefix="lorakit-bench-") as tmp:
        base = Emulator("danbooru", posts).start()
        base.file_latency = args.latency
        n, seconds = sequential_baseline(base, Path(tmp) / "baseline")
        base.stop()
        baseline_rate = n / seconds
        rows.append(("sequential loop (baseline)", n, seconds, baseline_rate, 1.0, "-", "-", False))
        runs = [(family, False) for family in args.families.split(",")]
        runs.append((args.families.split(",")[0], True))
        for family, process in runs:
            emu = Emulator(family, posts).start()
            emu.file_latency = args.latency
            emu.api_rate = args.api_rate
            out = Path(tmp) / f"{family}-{'process' if process else 'inproc'}"
            n, seconds = lorakit_scrape(emu, family, out, args.posts, args.api_rate, process)
            emu.stop()
            api_times = [e["time"] for e in emu.log if e["kind"] in ("api", "tag")]
            peak = max_in_window(api_times)
            how = "concurrency 4, as a process incl. start-up; reference" if process else "concurrency 4"
            rows.append((f"lorakit scrape --site {family} ({how})", n, seconds, n / seconds,
                         (n / seconds) / baseline_rate, f"{len(api_times)} (peak {peak}/s)",
                         str(emu.rate_violations), not process))

    print(f"Posts: {args.posts}, {args.size}x{args.size} PNG, file latency {args.latency * 1000:.0f} ms, "
          f"API limit {args.api_rate:g}/s, {3 * args.posts} posts searched with --rating g; {os.cpu_count()} cores\n")
    print("| run | files | seconds | files/s | vs baseline | API requests | over the limit (429) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, files, seconds, rate, ratio, api, over, _ in rows:
        print(f"| {name} | {files} | {seconds:.2f} | {rate:.1f} | {ratio:.2f}x | {api} | {over} |")
    ok = all(r[4] >= 3.0 for r in rows if r[7]) and all(r[6] == "0" for r in rows[1:])
    print(f"\nTarget >= 3x with the API rate never exceeded: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
