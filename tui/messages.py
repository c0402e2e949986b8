"""Messages the workers post to screens: stage progress and results, and the trainer's events."""

from __future__ import annotations

from typing import Any

from textual.message import Message


class StageMessage(Message):
    """Base of the messages of one stage run; `group` names the run (e.g. "validate")."""

    bubble = False  # handled by the screen that started the run

    def __init__(self, group: str) -> None:
        super().__init__()
        self.group = group


class StageStarted(StageMessage):
    def __init__(self, group: str, total: int | None) -> None:
        super().__init__(group)
        self.total = total


class StageProgress(StageMessage):
    """Items done so far (cumulative, so a newer one may replace an older one still queued)."""

    def __init__(self, group: str, done: int, total: int | None, item: str = "") -> None:
        super().__init__(group)
        self.done, self.total, self.item = done, total, item

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StageProgress) and message.group == self.group


class StageWarnings(StageMessage):
    """Warnings of a stage, batched: one message per short interval, not one per warning (a stage
    warning about 10,000 files must not flood the UI thread). `items` are (message, path) pairs."""

    def __init__(self, group: str, items: list[tuple[str, str]]) -> None:
        super().__init__(group)
        self.items = items


class StageFinished(StageMessage):
    """The stage's result record (the summary of its Finished event)."""

    def __init__(self, group: str, summary: Any) -> None:
        super().__init__(group)
        self.summary = summary


class StageFailed(StageMessage):
    """The stage raised; `error` is the one-line message a user sees."""

    def __init__(self, group: str, error: str, user_error: bool = True) -> None:
        super().__init__(group)
        self.error, self.user_error = error, user_error


class StageEnded(StageMessage):
    """The worker is done with the stage: its generator is closed (after Finished, a failure or a
    cancel), so its cleanup has run. `cancelled` when the run was cancelled before it finished."""

    def __init__(self, group: str, cancelled: bool) -> None:
        super().__init__(group)
        self.cancelled = cancelled


class TrainerEvents(Message):
    """JSON lines of the trainer's event stream (dicts with an "event" key), as read in one go.

    Every step is kept (the loss and LR plots need each one), so a batch is never replaced.
    """

    bubble = False

    def __init__(self, events: list[dict[str, Any]], source: str = "") -> None:
        super().__init__()
        self.events = events
        self.source = source  # the events file it came from (a stale run's leftovers are ignored)


class TrainerExited(Message):
    """The trainer process ended; `stderr_tail` is its last lines of text output."""

    bubble = False

    def __init__(self, returncode: int | None, stderr_tail: str = "", source: str = "") -> None:
        super().__init__()
        self.returncode, self.stderr_tail, self.source = returncode, stderr_tail, source
