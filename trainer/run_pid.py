"""`<events>.pid` beside a run's events file: which process writes it, so a reader can reattach (no torch).

Whoever starts a trainer with `--events FILE` records the pid there: the Train screen and the queue
runner right after starting it (for `accelerate launch` that is the launcher, whose SIGINT reaches
every rank), and the trainer itself when it was started some other way (`lorakit train --events`).
A pid file whose process is gone, or is no trainer any more, means the run ended; with no final
event in the file it was killed or crashed.
"""

from __future__ import annotations

import os
from pathlib import Path

from prep.fsio import atomic_write_text


def pid_path(events: str | Path) -> Path:
    return Path(events).with_suffix(".pid")


def record_pid(events: str | Path, pid: int) -> None:
    """Write pid beside the events file (atomically: a reader never sees half a number)."""
    path = pid_path(events)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, f"{pid}\n")


def read_pid(events: str | Path) -> int | None:
    try:
        text = pid_path(events).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def record_own_pid(events: str | Path) -> None:
    """In the trainer: record this process unless its launcher (the parent) already recorded itself."""
    if str(events) == "-":
        return
    if read_pid(events) != os.getppid():
        record_pid(events, os.getpid())


def process_alive(pid: int | None) -> bool:
    """A running process (a zombie, exited but not yet reaped, is not)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def live_trainer_pid(events: str | Path) -> int | None:
    """The pid recorded beside the events file while that process runs and is a trainer, else None."""
    pid = read_pid(events)
    if not process_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"trainer" not in cmdline and b"lorakit" not in cmdline:
            return None  # the pid was reused by another program
    except OSError:
        pass
    return pid
