"""The bridge from a stage's event iterator to the UI: a thread worker that only posts messages.

Stage functions yield `prep.events` (Started, Advanced, Warned, Finished). `run_stage` iterates
one in a thread worker and posts StageStarted / StageProgress / StageWarnings (batched) /
StageFinished (or StageFailed), then StageEnded once the generator is closed, to the node that
started it; handlers on the main thread update the widgets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from textual.dom import DOMNode
from textual.worker import Worker, get_current_worker

from prep.errors import UserError, describe_os_error
from prep.events import Advanced, Finished, Started, Warned
from tui.messages import (
    StageEnded,
    StageFailed,
    StageFinished,
    StageProgress,
    StageStarted,
    StageWarnings,
)

EventSource = Callable[[], Iterable[Any]]
WARNING_BATCH_SECONDS = 0.2
# A stage advancing thousands of times a second must not post thousands of messages (each one is a
# call into the UI loop): progress goes out at most this often, and always for the last item.
PROGRESS_SECONDS = 0.1


def result_of(function: Callable[..., Any], *args: Any, **kwargs: Any) -> EventSource:
    """An event source for a fast stage that returns its result: one Finished(result)."""

    def events() -> Iterator[Finished]:
        yield Finished(function(*args, **kwargs))

    return events


def drive(node: DOMNode, group: str, source: EventSource) -> None:
    """Iterate the stage's events (in the worker thread) and post them to `node` as messages."""
    worker = get_current_worker()
    done, total = 0, None
    events = iter(())
    warnings: list[tuple[str, str]] = []
    sent = progressed = time.monotonic()
    pending: StageProgress | None = None

    def flush() -> None:
        nonlocal sent, pending
        if pending is not None:
            node.post_message(pending)
            pending = None
        if warnings:
            node.post_message(StageWarnings(group, warnings[:]))
            warnings.clear()
        sent = time.monotonic()

    try:
        events = iter(source())
        for event in events:
            if worker.is_cancelled:
                break
            if isinstance(event, Started):
                done, total = 0, event.total
                node.post_message(StageStarted(group, total))
            elif isinstance(event, Advanced):
                done += event.n
                pending = StageProgress(group, done, total, event.item)
                now = time.monotonic()
                if now - progressed >= PROGRESS_SECONDS or (total is not None and done >= total):
                    node.post_message(pending)
                    pending, progressed = None, now
            elif isinstance(event, Warned):
                warnings.append((event.message, event.path))
            elif isinstance(event, Finished):
                flush()
                node.post_message(StageFinished(group, event.summary))
            if warnings and time.monotonic() - sent > WARNING_BATCH_SECONDS:
                flush()
        flush()
    except UserError as exc:
        flush()
        node.post_message(StageFailed(group, str(exc)))
    except OSError as exc:
        flush()
        if os.environ.get("LORAKIT_DEBUG"):
            node.post_message(StageFailed(group, f"{type(exc).__name__}: {exc}", user_error=False))
            raise
        node.post_message(StageFailed(group, describe_os_error(exc)))  # a file the user can fix: one line
    except Exception as exc:
        # A bug, not a user mistake: say so on screen and keep the traceback (worker state ERROR).
        node.post_message(StageFailed(group, f"{type(exc).__name__}: {exc}", user_error=False))
        raise
    finally:
        try:
            close = getattr(events, "close", None)
            if close is not None:
                close()  # a cancelled generator runs its cleanup (e.g. process pools) now
        finally:
            node.post_message(StageEnded(group, worker.is_cancelled))


def run_stage(node: DOMNode, group: str, source: EventSource, description: str = "") -> Worker[None]:
    """Start `source` in a thread worker; a newer run of the same group cancels the older one."""
    return node.run_worker(lambda: drive(node, group, source), name=group, group=group,
                           description=description or group, exit_on_error=False, exclusive=True,
                           thread=True)
