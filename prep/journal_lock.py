"""One writer at a time: the exclusive lock every journaled operation and every undo holds.

The lock is `DATASET/.lorakit/journal/.lock`, taken with flock (released by the kernel when the
holder exits, however it exits). The holder writes its command and pid into the file, so that a
second writer, after waiting a short moment, can say which operation is in the way.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from prep.errors import JournalError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here; operations are not serialised
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".lock"
LOCK_WAIT_S = float(os.environ.get("LORAKIT_LOCK_WAIT", "2.0"))  # how long a second writer waits


class JournalLock:
    """Held from `acquire` to `release`; names `command` and this pid to anyone else who waits."""

    def __init__(self, folder: Path, command: str, dataset: Path) -> None:
        self.path = folder / LOCK_NAME
        self.command = command
        self.dataset = dataset
        self._fd: int | None = None

    def acquire(self, wait: float = LOCK_WAIT_S) -> JournalLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                     0o666)
        if fcntl is not None:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = _describe_holder(fd)
                        os.close(fd)
                        raise JournalError(
                            f"{self.dataset}: another lorakit operation is changing this dataset ({holder}); "
                            "wait for it to finish, then run this again") from None
                    time.sleep(0.05)
        self._fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"command": self.command, "pid": os.getpid()}).encode(), 0)
        except OSError:
            pass  # a full disk: the lock still holds, only the holder's name is missing
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> JournalLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _describe_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"`{info['command']}`, pid {int(info['pid'])}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its command and pid are unknown"
