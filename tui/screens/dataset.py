"""Dataset screen: the concepts (repeats, images, captions, weighted share) and `validate`'s problems."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, ProgressBar, Static

from tui.messages import StageFailed, StageFinished, StageProgress, StageStarted
from tui.runner import run_stage
from tui.workspace import Workspace

GROUP = "validate"
SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}


def validate_options(workspace: Workspace, deep: bool):
    """The stage's options: the workspace's `[validate]` table over its `[train]` (the one loader)."""
    from prep.validate import load_validate_options

    options = load_validate_options(workspace.dataset, cwd=workspace.root)
    if options.reg is None and workspace.reg is not None:
        options = dataclasses.replace(options, reg=workspace.reg)
    return dataclasses.replace(options, deep=deep or options.deep)


class DatasetScreen(Screen[None]):
    """Runs `prep.validate.iter_validate` on the workspace dataset (on open, and on `v`)."""

    MAX_ROWS = 2000
    BINDINGS = [
        Binding("v", "validate(False)", "Validate"),
        Binding("d", "validate(True)", "Deep validate"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.problems: list = []  # the report's Problems, indexed by the problems table's row keys

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="dataset-path", classes="path")
        yield Static("Concepts", classes="heading")
        yield DataTable(id="concepts", cursor_type="row", zebra_stripes=True)
        yield Static(id="dataset-summary", classes="summary")
        yield ProgressBar(id="validate-progress", show_eta=False)
        yield Static("Problems", classes="heading")
        yield DataTable(id="problems", cursor_type="row", zebra_stripes=True)
        yield Static(id="problem-detail", classes="summary")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Dataset"
        self.query_one("#dataset-path", Static).update(f"Dataset: {self.app.workspace.dataset}")
        self.query_one("#concepts", DataTable).add_columns("Folder", "Repeats", "Images", "Captioned", "Share")
        self.query_one("#problems", DataTable).add_columns("Severity", "Code", "Path", "Message")
        self.action_validate(False)

    def action_validate(self, deep: bool) -> None:
        from prep.validate import iter_validate

        summary = self.query_one("#dataset-summary", Static)
        summary.update("validating (reading every image)…" if deep else "validating…")
        self.query_one("#validate-progress", ProgressBar).update(total=None, progress=0)
        workspace = self.app.workspace  # read here: the worker thread touches no app state

        def events():
            return iter_validate(workspace.dataset, validate_options(workspace, deep))

        run_stage(self, GROUP, events, f"validate {workspace.dataset}")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The whole message of the highlighted problem (the table cuts long ones)."""
        if event.data_table.id == "problems" and event.row_key.value is not None:
            found = self.problems[int(event.row_key.value)]
            self.query_one("#problem-detail", Static).update(f"{found.path}: {found.message}")

    def on_stage_started(self, message: StageStarted) -> None:
        if message.group == GROUP:
            self.query_one("#validate-progress", ProgressBar).update(total=message.total, progress=0)

    def on_stage_progress(self, message: StageProgress) -> None:
        if message.group == GROUP:
            self.query_one("#validate-progress", ProgressBar).update(total=message.total, progress=message.done)

    def on_stage_failed(self, message: StageFailed) -> None:
        if message.group == GROUP:
            self.query_one("#dataset-summary", Static).update(Text(message.error, style="bold red"))
            self.query_one("#validate-progress", ProgressBar).update(total=1, progress=0)
            self.notify(message.error, severity="error", timeout=8)

    def on_stage_finished(self, message: StageFinished) -> None:
        if message.group != GROUP:
            return
        report = message.summary
        concepts = self.query_one("#concepts", DataTable)
        concepts.clear()
        for prefix, group in (("", report.concepts), ("reg/", report.reg_concepts)):
            for concept in group:
                concepts.add_row(prefix + concept.folder, concept.repeats, concept.images, concept.captioned,
                                 f"{concept.share:.0%}", key=prefix + concept.folder)
        shown = report.problems
        if len(shown) > self.MAX_ROWS:  # a table of tens of thousands of rows stalls the screen
            shown = (report.errors + report.warnings)[: self.MAX_ROWS]
        self.problems = shown
        self.query_one("#problem-detail", Static).update("")
        problems = self.query_one("#problems", DataTable)
        problems.clear()
        for index, found in enumerate(shown):
            problems.add_row(Text(found.severity, style=SEVERITY_STYLE.get(found.severity, "")), found.code,
                             found.path, found.message, key=str(index))
        bar = self.query_one("#validate-progress", ProgressBar)
        bar.update(total=bar.total or 1, progress=bar.total or 1)
        verdict = ("ready to train" if report.ok else f"{len(report.errors)} error(s) to fix before training")
        self.query_one("#dataset-summary", Static).update(
            f"{report.images} images, {report.captioned} captioned, {report.steps_per_epoch} steps per epoch "
            f"(batch {report.batch_size}); {len(report.errors)} error(s), {len(report.warnings)} warning(s): "
            f"{verdict}" + (f"; showing {len(shown)} of {len(report.problems)} problems, errors first "
                            f"(`lorakit validate` lists them all)" if len(shown) < len(report.problems) else ""))
