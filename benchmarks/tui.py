"""Key latency of `lorakit ui` while a long job runs: keys pressed during a 10,000-image validate and tag run.

Builds a workspace with N images (default 10,000, copies of one small PNG) and their captions in
10 concept folders, opens the app headless (Textual's pilot, 120x36) and times keys while a job
runs, for each job asked (`--jobs`, both by default):
- validate: `ctrl+r` on the Validate screen; `down`/`up` in its problems table (filled by the
  validate that ran on open).
- tag: `ctrl+r` on the Tag screen with a tiny WD14-signature ONNX tagger (`[tagger] model`, built
  here; mode merge); `down`/`up` in its image list.
A pair of keys goes every `--pause` seconds from the job's start until 2 s after its end (the
table refills and the header recounts then), at most `--rounds` keys.
Keys are sent as the terminal driver sends them, not through the pilot's `press` (that waits for
the whole message queue to drain, so it times the queue, not the key). Each latency is the time
from the key press until the table's cursor has moved; the same keys are first timed with
nothing running. Target: every key handled within 100 ms (p95 and max shown). Prints a Markdown
table, a row per job.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LORAKIT_IMAGES", "halfcell")

TARGET_MS = 100.0


def build(root: Path, images: int) -> Path:
    from PIL import Image

    from tui.workspace import init_workspace

    init_workspace(root)
    buffer = io.BytesIO()
    Image.new("RGB", (640, 640), (120, 80, 200)).save(buffer, "PNG")
    data = buffer.getvalue()
    for i in range(images):
        folder = root / "dataset" / f"{1 + (i % 10) % 3}_concept{i % 10}"
        if i < 10:
            folder.mkdir(parents=True, exist_ok=True)
        (folder / f"img_{i:06d}.png").write_bytes(data)
        (folder / f"img_{i:06d}.txt").write_text(f"concept{i % 10}, 1girl, tag_{i % 97}, tag_{i % 13}")
    return root


JOBS = {  # job: (start mode, the table keys move in, what is replaced when the table refills)
    "validate": ("validate", "#problems", lambda screen: screen.report),
    "tag": ("tag", "#tag-images", lambda screen: screen.images),
}
AFTER_SECONDS = 2.0  # keys go on this long after the job ended: the table refills, the header recounts


def set_tagger(root: Path) -> None:
    """`[tagger] model` = a tiny WD14-signature tagger built here (mode merge: every caption written)."""
    from prep.toml_edit import update_table
    from tagger.tiny_model import build_demo_tagger

    model = build_demo_tagger(root / "bench-tagger")
    update_table(root / "lorakit.toml", "tagger", {"model": str(model), "mode": "merge"})


async def measure(root: Path, job: str, rounds: int, pause: float, limit: float) -> dict:
    from textual.widgets import DataTable

    from tui.app import make_app

    mode, table_id, result = JOBS[job]
    app = make_app(root, start_mode=mode)
    deadline = time.perf_counter() + limit
    latencies: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        await pilot.pause()
        table = screen.query_one(table_id, DataTable)
        # What the screen shows on open (the validate that runs on open, the image list): wait for
        # it to land (not for `running`, which a fast run may have left already).
        await wait_for(lambda: result(screen) and not screen.running and table.row_count > 1, deadline,
                       f"the {mode} screen's first result")
        table.focus()
        await pilot.pause()
        idle: list[float] = []
        for _ in range(5):  # the same keys with nothing running: what the machine itself costs
            idle.extend(await press_pair(app, table, lambda: result(screen), deadline))
        before = result(screen)
        started = time.perf_counter()
        press(app, "ctrl+r")
        await wait_for(lambda: screen.running or result(screen) is not before, deadline, f"the {job} to start")

        ended = None
        while len(latencies) < rounds:
            if ended is None and not screen.running:
                ended = time.perf_counter()
            if ended is not None and time.perf_counter() - ended > AFTER_SECONDS:
                break
            latencies.extend(await press_pair(app, table, lambda: result(screen), deadline))
            await asyncio.sleep(pause)
        await wait_for(lambda: not screen.running, deadline, f"the {job}")
        ended = ended or time.perf_counter()
        seconds = ended - started
        summary = screen.job_bar.status_text
    return {"job": job, "latencies": latencies, "idle": idle, "seconds": seconds, "summary": summary}


async def wait_for(condition, deadline: float, what: str) -> None:
    while not condition():
        if time.perf_counter() > deadline:
            raise SystemExit(f"gave up waiting for {what} (--limit)")
        await asyncio.sleep(0.01)


def press(app, key: str) -> None:
    """Send one key as the terminal driver does, without the pilot's wait for an idle screen (that
    wait would time the whole message queue, not the key)."""
    from textual import events

    app.post_message(events.Key(key, None))


async def press_pair(app, table, result, deadline: float) -> list[float]:
    """`down` then `up` in `table`: the milliseconds until its cursor has moved."""
    out = []
    for key, step in (("down", 1), ("up", -1)):
        before, shown = table.cursor_row, result()
        t0 = time.perf_counter()
        press(app, key)
        while table.cursor_row != before + step:
            if result() is not shown:
                return out  # the finished job refilled the table (cursor back at 0): not a key's time
            if time.perf_counter() - t0 > 30 or time.perf_counter() > deadline:
                raise SystemExit(f"`{key}` did nothing in 30 s (rows {table.row_count}, cursor {table.cursor_row}, "
                                 f"focus {app.focused})")
            await asyncio.sleep(0.001)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--jobs", nargs="+", choices=sorted(JOBS), default=["validate", "tag"])
    parser.add_argument("--rounds", type=int, default=2000, help="most key presses to time per job")
    parser.add_argument("--pause", type=float, default=0.1, help="seconds between two key pairs")
    parser.add_argument("--keep", type=Path, help="build the workspace here and keep it")
    parser.add_argument("--limit", type=float, default=900.0, help="give up after this many seconds")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="lorakit-tui-bench-")) / "ws"
    results = []
    try:
        if not (root / "lorakit.toml").exists():
            t0 = time.perf_counter()
            build(root, args.images)
            print(f"built {args.images} images in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        if "tag" in args.jobs:
            set_tagger(root)
        for job in args.jobs:
            results.append(asyncio.run(measure(root, job, args.rounds, args.pause, args.limit)))
            print(f"{job}: {results[-1]['summary']}", file=sys.stderr)
    finally:
        if args.keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)
    print("| job | images | job s | keys pressed during it | p50 ms | p95 ms | max ms | idle p50 / max ms | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    status = 0
    for result in results:
        lat = sorted(result["latencies"])
        if not lat:
            print(f"the {result['job']} ended before a key could be pressed; use more --images", file=sys.stderr)
            status = 1
            continue
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        verdict = "met" if lat[-1] <= TARGET_MS else "NOT met"
        idle = sorted(result["idle"])
        print(f"| {result['job']} | {args.images} | {result['seconds']:.1f} | {len(lat)} | {statistics.median(lat):.1f} "
              f"| {p95:.1f} | {lat[-1]:.1f} | {statistics.median(idle):.1f} / {idle[-1]:.1f} "
              f"| max <= {TARGET_MS:.0f} ms: {verdict} |")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
