"""Clean screen: the `[clean]` rules as a form, a dry-run preview that follows the form, ctrl+r applies.

The preview runs `prep.clean.clean_dataset(dry_run=True)` in a worker a moment after the form
changes (changed count, before/after per caption); ctrl+r applies it as one journaled operation.
"""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, DataTable, Input, Select, Static

from prep.clean import CleanConfig
from prep.config import from_mapping
from tui.runner import result_of, run_stage
from tui.screens.base import DataScreen, fill_table
from tui.widgets.form import OptionForm
from tui.widgets.plain import Plain
from tui.widgets.table import Table

PREVIEW, APPLY = "clean-preview", "clean"
FIELDS = ["remove", "replace", "remove_redundant", "canonical", "remove_implied", "trigger", "remove_name", "sort",
          "keep_tokens", "max_tags", "lowercase", "keep_underscores", "escape_parens"]
PREVIEW_DELAY = 0.4
PREVIEW_ROWS = 300


def table_for_form(values: dict) -> dict:
    """`[clean.replace]` old = "new" reads naturally in TOML; the form shows OLD=NEW pairs."""
    values = dict(values)
    if isinstance(values.get("replace"), dict):
        values["replace"] = [f"{old.replace('=', chr(92) + '=')}={new}" for old, new in values["replace"].items()]
    return values


def clean_config(mapping: dict) -> CleanConfig:
    from tui.output import expand_at_files

    config = from_mapping(CleanConfig, mapping, "the [clean] form")
    return dataclasses.replace(config, replace=expand_at_files(config.replace), remove=expand_at_files(config.remove),
                               remove_name=expand_at_files(config.remove_name))


class CleanScreen(DataScreen):
    JOB = APPLY
    JOB_VERB = "cleaning"
    TABLE = "clean"
    AUTO_FOCUS = "#clean-preview"
    BINDINGS = [Binding("ctrl+r", "run_job", "Apply", priority=True),
                Binding("p", "preview", "Preview")]

    def __init__(self) -> None:
        super().__init__()
        self.timer = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="clean-main"):
            with Vertical(id="clean-left"):
                yield Plain("[clean] rules (ctrl+s saves)", classes="heading")
                yield OptionForm(CleanConfig, FIELDS, table_for_form(self.table_values()), id="clean-form")
                yield Input(placeholder="where QUERY (e.g. concept:5_alice)", id="where", classes="line-input")
            with Vertical(id="clean-right"):
                yield Plain("", id="clean-summary", classes="summary")
                yield Table(id="clean-preview", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#clean-preview", DataTable).add_columns("Caption", "Before → after")

    def refresh_data(self) -> None:
        self.action_preview()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.schedule_preview()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.schedule_preview()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.schedule_preview()

    def schedule_preview(self) -> None:
        if self.timer is not None:
            self.timer.stop()
        self.timer = self.set_timer(PREVIEW_DELAY, self.action_preview)

    def current(self) -> tuple[CleanConfig, str]:
        form = self.query_one("#clean-form", OptionForm)
        return clean_config(form.mapping()), self.query_one("#where", Input).value.strip()

    def action_preview(self) -> None:
        from prep.clean import clean_dataset

        try:
            config, where = self.current()
        except ValueError as exc:
            self.query_one("#clean-summary", Static).update(Text(str(exc), style="bold red"))
            return
        self.query_one("#clean-summary", Static).update("previewing…")
        run_stage(self, PREVIEW, result_of(clean_dataset, self.dataset, config, dry_run=True, where=where or None),
                  PREVIEW)

    def side_finished(self, group: str, report) -> None:
        if group != PREVIEW:
            return
        table = self.query_one("#clean-preview", DataTable)
        rows = []
        for change in report.changes[:PREVIEW_ROWS]:
            try:
                name = change.path.relative_to(self.dataset).as_posix()
            except ValueError:
                name = str(change.path)
            rows.append(((name, Text.assemble(("- " + change.before, "red"), "\n",
                                              ("+ " + change.after, "green"))), None))
        fill_table(table, rows, max_width=200, height=2)
        more = f" (first {PREVIEW_ROWS} shown)" if report.changed > PREVIEW_ROWS else ""
        self.query_one("#clean-summary", Static).update(
            f"preview: {report.changed} caption(s) would change, {report.unchanged} unchanged{more}")

    def side_failed(self, group: str, error: str) -> None:
        if group == PREVIEW:
            self.query_one("#clean-summary", Static).update(Text(error, style="bold red"))
            fill_table(self.query_one("#clean-preview", DataTable), [])
        else:
            super().side_failed(group, error)

    def job_source(self):
        from prep.clean import clean_dataset

        config, where = self.current()
        command = "clean" + (f" --where {where}" if where else "")
        return result_of(clean_dataset, self.dataset, config, where=where or None, command=command)

    def describe(self, report) -> str:
        return f"cleaned {report.changed} caption(s), {report.unchanged} unchanged (ctrl+z undoes it)"

    def job_finished(self, report) -> None:
        for warning in report.warnings:
            self.log_line(f"warning: {warning}")
        self.action_preview()
