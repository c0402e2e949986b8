"""One job's progress line: a bar, done/total, rate and ETA, then the one-line summary when it ends."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from tui.widgets.plain import Plain


def format_rate(done: int, total: int | None, elapsed: float) -> str:
    """`120/400 · 35.2/s · ETA 0:08` (parts left out when unknown)."""
    parts = [f"{done}/{total}" if total else f"{done}"]
    if elapsed > 0.2 and done:
        rate = done / elapsed
        parts.append(f"{rate:.1f}/s" if rate < 100 else f"{rate:.0f}/s")
        if total and total > done:
            left = int((total - done) / rate)
            parts.append(f"ETA {left // 60}:{left % 60:02d}")
    return " · ".join(parts)


class JobBar(Horizontal):
    """The progress of the screen's running job (hidden text when idle)."""

    DEFAULT_CSS = """
    JobBar { height: 1; padding: 0 1; }
    JobBar ProgressBar { width: 26; }  /* leaves the summary line room at 80 columns */
    JobBar ProgressBar Bar { width: 1fr; }
    JobBar #job-status { width: 1fr; height: 1; padding-left: 1; }
    """

    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self.started = 0.0

    def compose(self) -> ComposeResult:
        yield ProgressBar(id="job-progress", show_eta=False, show_percentage=True)
        yield Plain("", id="job-status")

    @property
    def bar(self) -> ProgressBar:
        return self.query_one("#job-progress", ProgressBar)

    @property
    def status_text(self) -> str:
        return str(self.query_one("#job-status", Static).render())

    def on_mount(self) -> None:
        self.bar.display = False  # no bar until a job runs (an idle indeterminate bar looks busy)

    def status(self, text: str | Text) -> None:  # noqa: F811 - the one status setter
        # The line's size is fixed (1fr x 1): no layout pass, which would re-arrange and repaint the
        # whole screen on every progress message of a running job.
        self.query_one("#job-status", Static).update(text, layout=False)

    def begin(self, what: str) -> None:
        self.bar.display = True
        self.started = time.monotonic()
        self.bar.update(total=None, progress=0)
        self.status(f"{what}…")

    def total(self, total: int | None) -> None:
        self.bar.update(total=total, progress=0)

    def advance(self, done: int, total: int | None, item: str = "") -> None:
        self.bar.update(total=total, progress=done)
        line = format_rate(done, total, time.monotonic() - self.started)
        self.status(f"{line}  {item}" if item else line)

    def finish(self, summary: str, *, style: str = "") -> None:
        total = self.bar.total or 1
        self.bar.update(total=total, progress=total)
        self.status(Text(summary, style=style))

    def fail(self, message: str) -> None:
        self.bar.update(total=1, progress=0)
        self.status(Text(message, style="bold red"))
