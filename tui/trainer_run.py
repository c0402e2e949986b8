"""The trainer as a child process, and a reader that follows its JSON-lines event file (no Textual here).

`python -m trainer --config lorakit.toml --events FILE` appends one flushed JSON object per line;
EventTail reads whatever complete lines are new, so a half-written last line is never parsed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.workspace import Workspace

TRAINER_COMMAND = (sys.executable, "-m", "trainer")
TERMINAL_EVENTS = ("done", "error")
_MAX_LINE = 1 << 20  # a line longer than this is no event of ours: skipped, not buffered forever


class EventTail:
    """Reads new complete lines of an events file each call; missing file = nothing yet."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self.partial = b""
        self.skipped = 0  # lines that were not an event object

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) > _MAX_LINE:
            self.partial, self.skipped = b"", self.skipped + 1
        events = []
        for line in lines:
            event = parse_event_line(line)
            if event is None:
                self.skipped += bool(line.strip())
            else:
                events.append(event)
        return events


def parse_event_line(line: bytes | str) -> dict[str, Any] | None:
    """One event object, or None for a blank or foreign line."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    return event


@dataclass
class TrainerRun:
    """One training run: the process (None when only reading a past run's file) and its files."""

    events: Path
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, workspace: Workspace, command: Sequence[str] = TRAINER_COMMAND) -> TrainerRun:
        """Start the trainer on the workspace's `[train]` table, events to a new file under `.lorakit/runs`."""
        workspace.runs.mkdir(parents=True, exist_ok=True)
        stem = time.strftime("%Y%m%d-%H%M%S")
        events = workspace.runs / f"{stem}.jsonl"
        n = 1
        while events.exists():
            n += 1
            events = workspace.runs / f"{stem}-{n}.jsonl"
        log = events.with_suffix(".log")
        argv = [*command, "--config", str(workspace.config_file), "--events", str(events)]
        with open(log, "wb") as out:
            # Own session: the terminal's Ctrl+C goes to the TUI only; Stop sends SIGINT on purpose.
            process = subprocess.Popen(argv, cwd=workspace.root, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        return cls(events, log, process)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> bool:
        """Ask the trainer to stop (it saves its state at the next step); False when not running."""
        if not self.running:
            return False
        assert self.process is not None
        try:
            self.process.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def output_tail(self, lines: int = 5) -> str:
        """The last lines the process printed (its error line when it failed before any event)."""
        if self.log is None:
            return ""
        try:
            with open(self.log, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 8192))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        kept = [line.rsplit("\r", 1)[-1] for line in text.splitlines() if line.strip()]
        return "\n".join(kept[-lines:])


def latest_events(runs: Path) -> Path | None:
    """The newest run's events file in the workspace's runs folder."""
    try:
        files = [p for p in Path(runs).glob("*.jsonl") if p.is_file()]
    except OSError:
        return None
    return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name), default=None)


def format_duration(seconds: float | None) -> str:
    """`1:02:03` / `2:03`; "?" when unknown."""
    if seconds is None or not isinstance(seconds, (int, float)) or seconds != seconds or seconds < 0:
        return "?"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_step(event: dict[str, Any], total: int | None) -> str:
    """The status line of a step event: step, epoch, loss, lr, it/s, ETA."""

    def number(key: str, spec: str) -> str:
        value = event.get(key)
        return format(value, spec) if isinstance(value, (int, float)) else str(value if value is not None else "?")

    of = f"/{total}" if total else ""
    return (f"step {event.get('step', '?')}{of}  epoch {event.get('epoch', '?')}  loss {number('loss', '.4f')}  "
            f"lr {number('lr', '.2e')}  {number('it_per_s', '.2f')} it/s  ETA {format_duration(event.get('eta_s'))}")


def describe_event(event: dict[str, Any]) -> str | None:
    """A log line for the events that are not steps (None for steps)."""
    name = event.get("event")
    if name == "start":
        return (f"started: {event.get('images', '?')} images, {event.get('epochs', '?')} epoch(s), "
                f"{event.get('total_steps', '?')} steps")
    if name in ("save", "sample"):
        return f"{name} at step {event.get('step', '?')}: {event.get('path', '')}"
    if name == "warning":
        return f"warning: {event.get('message', '')}"
    if name == "error":
        return f"error: {event.get('message', '')}"
    if name == "done":
        return (f"done: {event.get('path', '')} ({event.get('steps', '?')} steps, "
                f"{format_duration(event.get('seconds'))})")
    return None if name == "step" else f"{name}: {json.dumps(event, ensure_ascii=False)[:200]}"
