"""The trainer's event stream: one JSON object per line (`"event"` first) to a file or stdout.

Events: start {total_steps, epochs, images, config}, step {step, epoch, loss, lr, it_per_s,
eta_s}, validation {step, loss}, sample {step, path}, save {step, path}, warning {message},
error {message}, done {path, steps, seconds}. Every written event (the `--events -` stdout
stream and the events file: one writer) carries `timestamp` (Unix seconds, milliseconds kept), last;
in-process sinks get the events as listed here (an event that already has a timestamp keeps it).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

EVENT_NAMES = ("start", "step", "validation", "sample", "save", "warning", "error", "done")

EventSink = Callable[[dict[str, Any]], None]


def make_event(name: str, **fields: Any) -> dict[str, Any]:
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown event {name!r}")
    return {"event": name, **fields}


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class JsonLinesWriter:
    """Writes events as JSON lines, flushed at once (a reader follows the file live)."""

    def __init__(self, target: str | Path) -> None:
        self._own = str(target) != "-"
        if self._own:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO = open(target, "w", encoding="utf-8") if self._own else sys.stdout  # noqa: SIM115

    def __call__(self, event: dict[str, Any]) -> None:
        stamped = event if "timestamp" in event else {**event, "timestamp": round(time.time(), 3)}
        self._fh.write(json.dumps(_clean(stamped), ensure_ascii=False, default=str) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._own:
            self._fh.close()


def fan_out(*sinks: EventSink | None) -> EventSink:
    active = [s for s in sinks if s is not None]

    def emit(event: dict[str, Any]) -> None:
        for sink in active:
            sink(event)

    return emit
