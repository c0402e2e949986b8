"""Key latency of `lorakit ui` while a long job runs: keys pressed during a 10,000-image validate.

Builds a workspace with N images (default 10,000, copies of one small PNG) and their captions in
10 concept folders, opens the app headless (Textual's pilot, 120x36), starts `ctrl+r` on the
Validate screen and, while the validate worker runs (and while its 500 problem rows refill the
table), presses `down` and `up` in the problems table (filled by the validate that ran on open)
over and over. Keys are sent as the terminal driver sends them, not through the pilot's
`press` (that waits for the whole message queue to drain, so it times the queue, not the key).
Each latency is the time from the key press until the table's cursor has moved; the same keys are
first timed with nothing running. Target: every key handled within 100 ms (p95 and max shown).
Prints a Markdown table.
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


async def measure(root: Path, rounds: int, limit: float) -> dict:
    from tui.app import make_app
    from tui.screens.validate import ValidateScreen

    app = make_app(root, start_mode="validate")
    deadline = time.perf_counter() + limit
    latencies: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        screen = app.screen
        assert isinstance(screen, ValidateScreen)
        await pilot.pause()
        # The validate that runs on open: wait for its report (not for `running`, which a fast run
        # may have left already: the first version of this script waited forever on that).
        await wait_for(lambda: screen.report is not None and not screen.running, deadline, "the validate on open")
        screen.query_one("#problems").focus()
        await pilot.pause()
        idle: list[float] = []
        for _ in range(5):  # the same keys with nothing running: what the machine itself costs
            idle.extend(await press_pair(app, screen, deadline))
        before = screen.report
        started = time.perf_counter()
        press(app, "ctrl+r")
        # Keys while the worker validates and while the problems table refills (in chunks) after it.
        table = screen.query_one("#problems")

        def busy() -> bool:
            return screen.report is before or screen.running or table.row_count < len(screen.problems)

        while busy() and len(latencies) < rounds:
            latencies.extend(await press_pair(app, screen, deadline))
            await asyncio.sleep(0.05)
        await wait_for(lambda: screen.report is not before and not screen.running, deadline, "the validate")
        seconds = time.perf_counter() - started
        report = screen.report
    return {"latencies": latencies, "idle": idle, "seconds": seconds, "images": report.images if report else 0}


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


async def press_pair(app, screen, deadline: float) -> list[float]:
    """`down` then `up` in the problems table: the milliseconds until its cursor has moved."""
    from textual.widgets import DataTable

    table = screen.query_one("#problems", DataTable)
    out = []
    for key, step in (("down", 1), ("up", -1)):
        before, report = table.cursor_row, screen.report
        t0 = time.perf_counter()
        press(app, key)
        while table.cursor_row != before + step:
            if screen.report is not report:
                return out  # the finished validate refilled the table (cursor back at 0): not a key's time
            if time.perf_counter() - t0 > 30 or time.perf_counter() > deadline:
                raise SystemExit(f"`{key}` did nothing in 30 s (rows {table.row_count}, cursor {table.cursor_row}, "
                                 f"focus {app.focused})")
            await asyncio.sleep(0.001)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=200, help="most key presses to time")
    parser.add_argument("--keep", type=Path, help="build the workspace here and keep it")
    parser.add_argument("--limit", type=float, default=600.0, help="give up after this many seconds")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="lorakit-tui-bench-")) / "ws"
    try:
        if not (root / "lorakit.toml").exists():
            t0 = time.perf_counter()
            build(root, args.images)
            print(f"built {args.images} images in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        result = asyncio.run(measure(root, args.rounds, args.limit))
    finally:
        if args.keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)
    lat = sorted(result["latencies"])
    if not lat:
        print("the validate ended before a key could be pressed; use more --images", file=sys.stderr)
        return 1
    p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
    verdict = "met" if lat[-1] <= TARGET_MS else "NOT met"
    idle = sorted(result["idle"])
    print("| images validated | validate s | keys pressed during it | p50 ms | p95 ms | max ms | idle p50 / max ms "
          "| target |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {result['images']} | {result['seconds']:.1f} | {len(lat)} | {statistics.median(lat):.1f} | "
          f"{p95:.1f} | {lat[-1]:.1f} | {statistics.median(idle):.1f} / {idle[-1]:.1f} | "
          f"max <= {TARGET_MS:.0f} ms: {verdict} |")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
