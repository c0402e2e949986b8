"""Validate screen: the concept table, steps for the `[train]` settings, the problems; fix and re-check.

`ctrl+r` validates (header reads only), `d` deep-validates (decodes every image), `f` applies every
safe fix (`lorakit fix --all`, one journaled operation) and validates again; enter on a problem
shows its file (the image, or the caption text).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from prep.events import Finished
from prep.images import is_image_name
from tui.runner import result_of
from tui.screens.base import DataScreen, column_widths, fill_table
from tui.stage_options import fix_options, validate_options
from tui.widgets.image_preview import ImagePreview
from tui.widgets.plain import Plain
from tui.widgets.table import Table

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}
VALIDATE, FIX, SHOW = "validate", "fix", "show-file"
PROBLEM_COLUMNS = ("Severity", "Code", "Path", "Message")
MAX_ROWS = 500  # the problems shown (errors first); `lorakit validate` lists them all
MESSAGE_WIDTH = 80


@dataclass(frozen=True)
class ValidateResult:
    """A validation report with its problems table built (in the worker, off the UI thread)."""

    report: object  # prep.validate.ValidationReport
    errors: int
    warnings: int
    shown: list  # the Problems in the table, row i = shown[i]
    rows: list  # (cells, key) for fill_table
    widths: list[int]


def validate_result(report) -> ValidateResult:
    """The report and the table of its first MAX_ROWS problems, errors first."""
    errors = [found for found in report.problems if found.is_error]
    warnings = [found for found in report.problems if found.severity == "warning"]
    shown = report.problems if len(report.problems) <= MAX_ROWS else (errors + warnings)[:MAX_ROWS]
    rows = [((Text(found.severity, style=SEVERITY_STYLE.get(found.severity, "")), found.code, found.path,
              found.message), str(index)) for index, found in enumerate(shown)]
    return ValidateResult(report, len(errors), len(warnings), shown, rows,
                          column_widths(list(PROBLEM_COLUMNS), rows, MESSAGE_WIDTH))


def with_result(events):
    """The stage's events, its Finished(report) as Finished(ValidateResult)."""
    for event in events:
        yield Finished(validate_result(event.summary)) if isinstance(event, Finished) else event


def read_caption_text(path: Path, limit: int = 4000) -> str:
    data = path.read_bytes()[:limit]
    return data.decode("utf-8", errors="replace")


class ValidateScreen(DataScreen):
    """Runs `prep.validate.iter_validate` (on open, ctrl+r, d) and `prep.fix.iter_fix` (f)."""

    JOB = VALIDATE
    JOB_VERB = "validating"
    TABLE = "validate"
    QUIET_GROUPS = frozenset({VALIDATE})  # its warnings are the problems table
    JOB_WRITES = False  # validating reads files only (fix, which writes, recounts itself)
    AUTO_FOCUS = "#problems"
    BINDINGS = [
        Binding("ctrl+r", "run_job", "Validate", priority=True),
        Binding("d", "deep", "Deep"),
        Binding("f", "fix", "Fix all"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.problems: list = []
        self.report = None
        self.deep_run = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="validate-main"):
            with Vertical(id="validate-left"):
                yield Plain("Concepts", classes="heading")
                yield Table(id="concepts", cursor_type="row", zebra_stripes=True)
                yield Plain(id="validate-summary", classes="summary")
                yield Plain("Problems (enter shows the file)", classes="heading")
                yield Table(id="problems", cursor_type="row", zebra_stripes=True)
            with Vertical(id="validate-right"):
                yield Plain("", id="problem-detail", classes="summary")
                yield ImagePreview(id="problem-image")
                yield Plain("", id="problem-caption", classes="summary")

    def on_mount(self) -> None:
        self.query_one("#concepts", DataTable).add_columns("Folder", "Repeats", "Images", "Weighted", "Share")
        self.query_one("#problems", DataTable).add_columns(*PROBLEM_COLUMNS)

    def refresh_data(self) -> None:
        if self.report is None and not self.running:
            self.action_run_job()

    # -- jobs -------------------------------------------------------------------------------

    def job_source(self):
        return self.validate_source(deep=False)

    def validate_source(self, deep: bool):
        from prep.validate import iter_validate

        options = validate_options(self.workspace, deep)
        dataset = self.dataset
        self.deep_run = deep
        self.query_one("#validate-summary", Static).update(
            "validating (decoding every image)…" if deep else "validating…")
        return lambda: with_result(iter_validate(dataset, options))

    def action_deep(self) -> None:
        if self.running:
            self.notify("a job is running (escape cancels it)", severity="warning")
            return
        try:
            source = self.validate_source(deep=True)
        except ValueError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self.start_job(source, VALIDATE, "deep-validating")

    def action_fix(self) -> None:
        if self.running:
            self.notify("a job is running (escape cancels it)", severity="warning")
            return
        from prep.fix import iter_fix

        try:
            options = fix_options(self.workspace)
        except ValueError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        dataset = self.dataset
        self.start_job(lambda: iter_fix(dataset, options), FIX, "fixing")

    # The fix job runs under its own group (the base handles the validate group's messages).
    def on_stage_started(self, message) -> None:
        if message.group == FIX:
            self.job_bar.total(message.total)

    def on_stage_progress(self, message) -> None:
        if message.group == FIX:
            self.job_bar.advance(message.done, message.total, message.item)

    def side_finished(self, group: str, summary) -> None:
        if group == FIX:
            fixed = ", ".join(f"{code} {n}" for code, n in sorted(summary.fixed.items())) or "nothing to fix"
            refused = f"; {len(summary.refused)} refused (see the log)" if summary.refused else ""
            for path, reason in summary.refused:
                self.log_line(f"not fixed: {path}: {reason}")
            self.job_bar.finish(f"fixed: {fixed}{refused}", style="green")
            self.notify(f"fixed: {fixed}{refused}" + (" (ctrl+z undoes it)" if summary.operation else ""))
            self.app.dataset_changed(self)
            self.call_after_refresh(self.revalidate)
        elif group == SHOW:
            self.query_one("#problem-caption", Static).update(summary)

    def revalidate(self) -> None:
        """After a fix (once its run has ended): validate again."""
        if self.running:
            self.call_after_refresh(self.revalidate)
            return
        self.start_job(self.validate_source(deep=self.deep_run), VALIDATE, "validating")

    def side_failed(self, group: str, error: str) -> None:
        if group == FIX:
            self.job_bar.fail(error)
            self.log_line(f"error: {error}")
        self.notify(error, severity="error", timeout=8)

    def describe(self, result: ValidateResult) -> str:
        report = result.report
        verdict = "ready to train" if not result.errors else f"{result.errors} error(s) to fix before training"
        return f"{report.images} images, {result.errors} error(s), {result.warnings} warning(s): {verdict}"

    def job_finished(self, result: ValidateResult) -> None:
        report = self.report = result.report
        self.app.set_validation(report)
        concepts = self.query_one("#concepts", DataTable)
        rows = []
        for prefix, group in (("", report.concepts), ("reg/", report.reg_concepts)):
            for concept in group:
                rows.append(((prefix + concept.folder, concept.repeats, concept.images, concept.weighted,
                              f"{concept.share:.0%}"), prefix + concept.folder))
        fill_table(concepts, rows)
        self.problems = result.shown
        fill_table(self.query_one("#problems", DataTable), result.rows, widths=result.widths)
        total = len(report.problems)
        more = (f"; showing {len(result.shown)} of {total} problems, errors first (`lorakit validate` "
                "lists them all)" if len(result.shown) < total else "")
        state = "ok" if not result.errors else f"{result.errors} error(s)"
        self.query_one("#validate-summary", Static).update(
            f"{report.images} images, {report.captioned} captioned · {report.steps_per_epoch} steps per epoch, "
            f"{report.total_steps} in total ({report.epochs} epoch(s), batch {report.batch_size}) · {state}{more}")

    # -- problems ---------------------------------------------------------------------------

    def problem_at(self, key) -> object | None:
        if key is None or key.value is None:
            return None
        index = int(key.value)
        return self.problems[index] if 0 <= index < len(self.problems) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "problems":
            found = self.problem_at(event.row_key)
            if found is not None:
                # layout=False: its height is fixed (app.tcss), so moving the cursor re-lays out nothing
                self.query_one("#problem-detail", Static).update(f"{found.code}: {found.path}: {found.message}",
                                                                 layout=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "problems":
            found = self.problem_at(event.row_key)
            if found is not None:
                self.show_file(found.path)

    def show_file(self, rel: str) -> None:
        """The problem's file: the image in the preview, a caption's text below it."""
        path = Path(rel)
        if not path.is_absolute():
            path = (self.dataset / rel) if not rel.startswith("reg/") or self.workspace.reg is None \
                else self.workspace.reg / rel[len("reg/"):]
        preview = self.query_one("#problem-image", ImagePreview)
        caption = self.query_one("#problem-caption", Static)
        if is_image_name(path.name):
            preview.show(path)
            text_path = path.with_suffix(".txt")
            caption.update(f"{path.name}")
            if text_path.is_file():
                self.run_show(text_path)
        elif path.is_file():
            preview.show(None)
            self.run_show(path)
        else:
            preview.show(None)
            caption.update(f"{rel}: no such file now")

    def run_show(self, path: Path) -> None:
        from tui.runner import run_stage

        run_stage(self, SHOW, result_of(lambda: f"{path.name}:\n{read_caption_text(path)}"), SHOW)
