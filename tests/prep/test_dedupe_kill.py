"""A `dedupe --apply` killed half way leaves every file in place or in the trash, and undo recovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.prep.test_dedupe import picture, snapshot
from tui.cli import main

COPIES = 400


def build(root: Path) -> None:
    folder = root / "3_dupes"
    folder.mkdir(parents=True)
    base = picture(11, (48, 36))
    for k in range(COPIES):
        image = base.copy()
        image.putpixel((k % 48, (k // 48) % 36), (k % 256, 0, 0))  # different bytes, same picture
        image.save(folder / f"img{k:03d}.png")
        (folder / f"img{k:03d}.txt").write_text(f"copy {k}", encoding="utf-8")


def test_kill_during_apply_then_undo(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    for attempt in range(5):
        root = tmp_path / f"ds{attempt}"
        build(root)
        before = snapshot(root)
        entries = root / ".lorakit" / "journal" / "000001" / "entries.jsonl"
        proc = subprocess.Popen([sys.executable, "-m", "tui", "dedupe", str(root), "--apply"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if entries.stat().st_size > 3000:  # a few dozen moves recorded
                    proc.send_signal(signal.SIGKILL)
                    break
            except FileNotFoundError:
                pass
            time.sleep(0.0002)
        proc.wait(timeout=60)
        if proc.returncode == -signal.SIGKILL:
            break
    else:
        raise AssertionError("dedupe --apply finished every time before it could be killed")

    trash = root / ".lorakit" / "trash" / "000001"
    moved = 0
    for rel, data in before.items():
        here, there = root / rel, trash / rel
        assert here.exists() != there.exists(), rel  # exactly one place, never lost, never doubled
        assert (here if here.exists() else there).read_bytes() == data
        moved += there.exists()
    assert 0 < moved < 2 * (COPIES - 1)  # killed half way

    assert main(["undo", str(root)]) == 0
    assert snapshot(root) == before
    assert not any(trash.rglob("*.png"))
