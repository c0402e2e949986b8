"""Base of the data screens: header, body, job bar, log pane, footer, and the shared keys.

A screen is thin: `job_source()` gathers the stage's config from the form and returns the event
source (the same stage function the CLI calls); `tui.runner.run_stage` runs it in a thread worker.
`ctrl+r` runs the job, `escape` leaves a text field or (with none focused) cancels the job,
`ctrl+s` writes the form to its lorakit.toml table (tomlkit: comments and other tables kept).
"""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Log, Select, TextArea
from textual.worker import Worker

from prep.config import ConfigError, read_toml
from prep.errors import UserError
from tui.messages import StageEnded, StageFailed, StageFinished, StageProgress, StageStarted, StageWarnings
from tui.runner import EventSource, run_stage
from tui.widgets.form import OptionForm
from tui.widgets.job_bar import JobBar
from tui.widgets.table import Table

TEXT_FIELDS = (Input, TextArea)
KEY_NAMES = {"slash": "/", "colon": ":", "question_mark": "?", "escape": "esc", "enter": "enter"}


class DataScreen(Screen[None]):
    """One pipeline stage: a form and/or views in `compose_body`, one job, side tasks in workers."""

    JOB = ""  # the job's worker group ("" = the screen runs no job)
    JOB_VERB = "running"
    TABLE: str | None = None  # the lorakit.toml table the form fills from and saves to
    QUIET_GROUPS: frozenset[str] = frozenset()  # worker groups whose warnings the screen shows itself
    JOB_WRITES = True  # the job may change files (False: it only reads; the header recounts only if
    # a folder changed meanwhile, instead of a forced recount that competes with the result's display)
    AUTO_FOCUS = None  # no text field takes focus by itself: single-letter keys act at once
    BINDINGS = [
        Binding("ctrl+r", "run_job", "Run", priority=True),
        Binding("ctrl+s", "save_form", "Save form", priority=True, show=False),
        Binding("escape", "escape", "Leave field / cancel job", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.job_worker: Worker | None = None
        self.job_group = ""  # the group of the job now running ("" when none)
        self.seen_version = -1

    # -- layout -----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield from self.compose_body()
        yield JobBar(id="job")
        yield Log(id="log", highlight=False, max_lines=self.LOG_LINES, classes="log-pane")
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    @property
    def workspace(self):
        return self.app.workspace

    @property
    def dataset(self):
        return self.app.workspace.dataset

    def table_values(self, table: str | None = None) -> dict[str, Any]:
        """The `[table]` of lorakit.toml (empty when absent or unreadable; the error is shown)."""
        name = table or self.TABLE
        if not name:
            return {}
        try:
            values = read_toml(self.workspace.config_file).get(name, {})
        except ConfigError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return {}
        return dict(values) if isinstance(values, dict) else {}

    def form(self) -> OptionForm | None:
        found = self.query(OptionForm)
        return found.first() if found else None

    def log_line(self, text: str) -> None:
        self.query_one("#log", Log).write_line(text)

    @property
    def job_bar(self) -> JobBar:
        return self.query_one("#job", JobBar)

    # -- data freshness ---------------------------------------------------------------------

    def on_screen_resume(self) -> None:
        self.sub_title = self.app.header_text()
        version = getattr(self.app, "data_version", 0)
        if version != self.seen_version:
            self.seen_version = version
            self.refresh_data()

    def refresh_data(self) -> None:
        """Re-read what the screen shows from disk (files changed, or first shown)."""

    # -- the job ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """A job is running: from its start until its stage's generator is closed (StageEnded)."""
        return bool(self.job_group)

    def job_source(self) -> EventSource | None:
        """The stage's events for the form's current values (raise UserError for bad input)."""
        return None

    def action_run_job(self) -> None:
        if not self.JOB:
            self.notify("this screen has no job to run", severity="warning")
            return
        if self.running:
            self.notify(f"{self.JOB} is already running (escape cancels it)", severity="warning")
            return
        try:
            source = self.job_source()
        except (UserError, ValueError) as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        if source is None:
            return
        self.start_job(source)

    def start_job(self, source: EventSource, group: str | None = None, verb: str | None = None) -> None:
        self.job_group = group or self.JOB
        self.job_bar.begin(verb or self.JOB_VERB)
        self.job_worker = run_stage(self, self.job_group, source, self.job_group)

    def action_escape(self) -> None:
        focused = self.focused
        if isinstance(focused, TEXT_FIELDS) or isinstance(focused, Select):
            self.set_focus(None)
        elif self.running:
            self.job_worker.cancel()  # type: ignore[union-attr]
            self.job_bar.finish("cancelling…", style="yellow")

    def describe(self, summary: Any) -> str:
        """The one-line summary of the job's result."""
        return "done"

    def job_finished(self, summary: Any) -> None:
        """Show the job's result (after the job bar got its summary line)."""

    def side_finished(self, group: str, summary: Any) -> None:
        """A side task (another worker group of this screen) finished."""

    def side_failed(self, group: str, error: str) -> None:
        self.notify(error, severity="error", timeout=8)

    def on_stage_started(self, message: StageStarted) -> None:
        if message.group == self.JOB:
            self.job_bar.total(message.total)

    def on_stage_progress(self, message: StageProgress) -> None:
        if message.group == self.JOB:
            self.job_bar.advance(message.done, message.total, message.item)

    # Textual calls these handlers of every class in the MRO: subclasses add their own handlers
    # for their extra groups and never call super() (that would handle the message twice).
    LOG_LINES = 500  # the log pane keeps the newest warnings (a stage may warn about every file)

    def on_stage_warnings(self, message: StageWarnings) -> None:
        if message.group in self.QUIET_GROUPS:
            return
        lines = [f"warning: {path + ': ' if path else ''}{text}" for text, path in message.items[-self.LOG_LINES:]]
        self.query_one("#log", Log).write_lines(lines)

    def on_stage_finished(self, message: StageFinished) -> None:
        if message.group == self.JOB:
            self.job_bar.finish(self.describe(message.summary), style="green")
            self.job_finished(message.summary)
            self.job_done(message.group)
        else:
            self.side_finished(message.group, message.summary)

    def on_stage_failed(self, message: StageFailed) -> None:
        if message.group == self.JOB:
            self.job_bar.fail(message.error)
            self.log_line(f"error: {message.error}")
            self.notify(message.error, severity="error", timeout=8)
            self.job_done(message.group)
        else:
            self.side_failed(message.group, message.error)

    def on_stage_ended(self, message: StageEnded) -> None:
        if message.group != self.job_group:
            return
        self.job_group = ""
        if message.cancelled:
            self.job_bar.finish("cancelled", style="yellow")
            self.log_line(f"{message.group}: cancelled")
            self.job_done(message.group)

    def job_done(self, group: str) -> None:
        """After a job: the other screens re-read and the header recounts (a read-only job: the
        header recounts if a folder changed meanwhile)."""
        if self.JOB_WRITES or group != self.JOB:  # a side job run as the job (e.g. fix) may have written
            self.app.dataset_changed(self)
        else:
            self.app.poll_summary()

    # -- ctrl+s -----------------------------------------------------------------------------

    def action_save_form(self) -> None:
        form = self.form()
        if form is None or not self.TABLE:
            self.notify("this screen has no form to save", severity="warning")
            return
        from prep.toml_edit import update_table

        try:
            changes = form.changes()
            changed = update_table(self.workspace.config_file, self.TABLE, changes)
        except UserError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        form.saved()
        where = f"[{self.TABLE}] of {self.workspace.config_file.name}"
        self.notify(f"saved {where}" if changed else f"{where} already holds these values")

    # -- help -------------------------------------------------------------------------------

    def key_help(self) -> list[tuple[str, str]]:
        """(key, description) of every key this screen answers to, for `?`."""
        from textual.app import App

        seen: dict[str, str] = {}
        for key, active in self.active_bindings.items():
            binding = active.binding
            if not isinstance(active.node, (Screen, App)):
                continue  # a widget's own cursor keys
            if binding.description and key not in seen and not key.isdigit():
                seen[key] = binding.description
        return [(KEY_NAMES.get(key, key), text) for key, text in seen.items()]


def _cell_width(cell: Any) -> int:
    text = cell.plain if isinstance(cell, Text) else str(cell)
    if "\n" not in text:
        return cell_len(text)
    return max((cell_len(line) for line in text.splitlines()), default=0)


def column_widths(labels: list[Any], rows: list[tuple[tuple, Any]], max_width: int = 60) -> list[int]:
    """Each column as wide as its widest cell (at most `max_width`) or its label. Pure: a worker
    may compute it for a long table, off the UI thread."""
    widths = [_cell_width(label) for label in labels]
    for cells, _key in rows:
        for i, cell in enumerate(cells):
            widths[i] = max(widths[i], min(max_width, _cell_width(cell)))
    return widths


def fill_table(table: Table, rows: list[tuple[tuple, Any]], *, max_width: int = 60, height: int = 1,
               widths: list[int] | None = None) -> None:
    """Replace a table's rows with `rows` ((cells, key) pairs), each column as wide as its
    widest cell (set explicitly: auto widths after a refill sometimes stayed at the labels'), or
    `widths` when given (column_widths, computed where the rows were built)."""
    labels = [column.label for column in table.columns.values()]
    if widths is None:
        widths = column_widths(labels, rows, max_width)
    table.clear(columns=True)
    for label, width in zip(labels, widths, strict=True):
        table.add_column(label, width=width)
    table.add_keyed_rows(rows, height=height)
