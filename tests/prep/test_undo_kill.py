"""A real `lorakit` process SIGKILLed in the middle of a journaled bulk edit: every caption is wholly
old or wholly new, and `lorakit undo` restores the old bytes exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

CAPTIONS = 4000

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


def build(root: Path) -> dict[Path, bytes]:
    old: dict[Path, bytes] = {}
    for c in range(4):
        folder = root / f"{c + 1}_concept{c}"
        folder.mkdir(parents=True)
        for i in range(CAPTIONS // 4):
            (folder / f"{i:05d}.png").write_bytes(b"")
            path = folder / f"{i:05d}.txt"
            data = f"tag{i}, common tag, long_hair".encode()
            path.write_bytes(data)
            old[path] = data
    return old


def journal_lines(root: Path) -> int:
    entries = list((root / ".lorakit" / "journal").glob("*/entries.jsonl"))
    if not entries:
        return 0
    return entries[0].read_bytes().count(b"\n")


def start_and_kill(root: Path, args: list[str], threshold: int) -> bool:
    """Run lorakit ARGS; SIGKILL it once the journal holds `threshold` records. True if killed mid-way."""
    proc = subprocess.Popen([sys.executable, "-m", "tui", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if journal_lines(root) >= threshold:
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                return proc.returncode == -signal.SIGKILL
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    return False


@pytest.mark.parametrize("command", [["tags", "{root}", "add", "killtag"],
                                     ["clean", "{root}", "--trigger", "ohwx", "--sort", "alpha"]],
                         ids=["tags-add", "clean"])
def test_kill_mid_operation_then_undo(tmp_path: Path, run_cli, command: list[str]):
    root = tmp_path / "ds"
    old = build(root)
    args = [part.format(root=root) for part in command]
    killed = False
    for threshold in (300, 1, 1):  # a later try kills sooner, should a busy machine let the first finish
        killed = start_and_kill(root, args, threshold)
        if killed and json.loads(run_cli("history", root, "--json").out)["operations"][-1]["state"] == "running":
            break
        run_cli("undo", root)  # it finished before the kill: restore and try again
        killed = False
    assert killed, "the operation always finished before it could be killed"

    new_seen = 0
    for path, data in old.items():
        now = path.read_bytes()  # every caption still exists...
        assert now == data or now.startswith(b"ohwx, ") or now.endswith(b", killtag"), (path, now)  # ...old or new
        new_seen += now != data
    assert new_seen < len(old)  # killed part-way (possibly before the first write)

    history = run_cli("history", root)
    assert "[running]" in history.out

    undo = run_cli("undo", root)
    assert undo.code == 0, undo.err
    for path, data in old.items():
        assert path.read_bytes() == data
    visible = {p for p in root.rglob("*") if p.is_file() and ".lorakit" not in p.parts
               and not p.name.startswith(".")}
    assert visible == set(old) | {p.with_suffix(".png") for p in old}
    assert json.loads(run_cli("history", root, "--json").out)["operations"] == []
    # the dataset works normally afterwards
    assert run_cli("tags", root, "stats", "--json").code == 0
    assert os.listdir(root / ".lorakit" / "journal")
