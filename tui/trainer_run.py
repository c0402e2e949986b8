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

from trainer.run_pid import live_trainer_pid, process_alive, record_pid
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
    """One training run: its process (or the pid of one found running), its events file and its log.

    A run started here has `process`; one found on disk by its events file has the pid from the
    `.pid` file beside it while that trainer still runs (reattach), else neither (a past run).
    """

    events: Path
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    argv: tuple[str, ...] = ()

    @classmethod
    def start(cls, workspace: Workspace, command: Sequence[str] = TRAINER_COMMAND,
              extra: Sequence[str] = ()) -> TrainerRun:
        """Start the trainer on the workspace's `[train]` table, events to a new file under `.lorakit/runs`."""
        workspace.runs.mkdir(parents=True, exist_ok=True)
        stem = time.strftime("%Y%m%d-%H%M%S")
        events = workspace.runs / f"{stem}.jsonl"
        n = 1
        while events.exists():
            n += 1
            events = workspace.runs / f"{stem}-{n}.jsonl"
        log = events.with_suffix(".log")
        argv = [*command, "--config", str(workspace.config_file), "--events", str(events), *extra]
        with open(log, "wb") as out:
            # Own session: the terminal's Ctrl+C goes to the TUI only; Stop sends SIGINT on purpose.
            process = subprocess.Popen(argv, cwd=workspace.root, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        record_pid(events, process.pid)
        return cls(events, log, process, process.pid, tuple(argv))

    @classmethod
    def attach(cls, events: Path) -> TrainerRun:
        """A run found by its events file: followed live when its trainer still runs."""
        events = Path(events)
        log = events.with_suffix(".log")
        pid = live_trainer_pid(events)
        return cls(events, log if log.is_file() else None, None, pid)

    @property
    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return self.pid is not None and process_alive(self.pid)

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> bool:
        """Ask the trainer to stop (it saves its state at the next step); False when not running."""
        if not self.running:
            return False
        try:
            if self.process is not None:
                self.process.send_signal(signal.SIGINT)
            else:
                os.kill(self.pid, signal.SIGINT)  # type: ignore[arg-type]
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


def latest_events(*folders: Path) -> Path | None:
    """The run to show: the newest one whose trainer still runs, else the newest events file.

    The folders are the workspace's runs (the Train screen's) and its queue's (each job's events).
    """
    files: list[Path] = []
    for folder in folders:
        try:
            files += [p for p in Path(folder).glob("*.jsonl") if p.is_file()]
        except OSError:
            continue

    def newest(paths: list[Path]) -> Path | None:
        return max(paths, key=lambda p: (p.stat().st_mtime_ns, p.name), default=None)

    return newest([p for p in files if live_trainer_pid(p) is not None]) or newest(files)


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


def gpu_count() -> int:
    """NVIDIA GPUs this machine shows (device nodes; no torch import), limited by CUDA_VISIBLE_DEVICES."""
    import glob

    count = len(glob.glob("/dev/nvidia[0-9]*"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = min(count, len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"]))
    return count


def launch_command(command: Sequence[str], gpus: int) -> tuple[str, ...]:
    """The plain trainer command, or `accelerate launch --multi_gpu` with one process per GPU."""
    if tuple(command) != TRAINER_COMMAND or gpus < 2:
        return tuple(command)
    return (sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(gpus),
            "-m", "trainer")


def is_final_event(event: dict[str, Any]) -> bool:
    """done, error, or the trainer's "interrupted at step N" warning (how a stopped run ends)."""
    name = event.get("event")
    return name in TERMINAL_EVENTS or (name == "warning" and str(event.get("message", "")).startswith(
        "interrupted at step"))


def run_outcome(final: dict[str, Any] | None, interrupted: dict[str, Any] | None, code: int | None) -> str:
    """finished, stopped, failed or ended (no final event: killed or crashed) for a run that is over.

    The trainer ends a stopped run with its "interrupted at step N" warning, not with done or error.
    """
    if final is not None and final.get("event") == "done":
        return "finished"
    if final is not None and final.get("event") == "error":
        return "failed"
    if code in (130, -signal.SIGINT) or (interrupted is not None and code in (None, 0)):
        return "stopped"
    if code == 0:
        return "finished"
    if code is not None and code > 0:
        return "failed"
    return "ended"  # killed by a signal, or found dead on disk (a stale pid file): no final event


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """Exponential moving average with debiasing (TensorBoard's smoothing)."""
    out, last, norm = [], 0.0, 0.0
    for value in values:
        last = weight * last + (1 - weight) * value
        norm = weight * norm + (1 - weight)
        out.append(last / norm if norm else value)
    return out


ADVICE = (
    ("out of memory", "Lower the VRAM: gradient_checkpointing = true, cache_latents = true, a smaller "
                      "train_batch_size or network_dim, optimizer = AdamW8bit (the estimate on the Config tab "
                      "shows what each saves)."),
    ("needs a gpu", "This machine has no CUDA GPU: set mixed_precision = no."),
    ("diverged", "Lower learning_rate (and text_encoder_lr), or use mixed_precision = bf16; R resumes from the "
                 "last good state."),
    ("dataset rejected", "Open the Validate screen (6) to see and fix the dataset's problems."),
    ("no base model", "Set pretrained_model on the Config tab: a diffusers folder, a .safetensors file or a hub id."),
)


def advice_for(message: str) -> str:
    """What to do about a trainer error (the trainer's message often says it already)."""
    lower = message.lower()
    return next((advice for key, advice in ADVICE if key in lower), "")


def events_progress(events: Path) -> tuple[int | None, int | None]:
    """(last step, total steps) of an events file (None when not known yet)."""
    step = total = None
    try:
        with open(events, "rb") as fh:
            for line in fh:
                event = parse_event_line(line)
                if event is None:
                    continue
                if event["event"] == "start" and isinstance(event.get("total_steps"), int):
                    total = event["total_steps"]
                elif event["event"] == "step" and isinstance(event.get("step"), int):
                    step = event["step"]
    except OSError:
        return None, None
    return step, total
