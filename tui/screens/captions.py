"""Captions screen: tag counts (optionally over the captions a QUERY selects) and undo of bulk edits."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Static

from tui.messages import StageFailed, StageFinished
from tui.runner import result_of, run_stage
from tui.widgets.confirm import ConfirmScreen

STATS, HISTORY, UNDO = "tag-stats", "history", "undo"
QUERY_HINT = "filter: red hair, -hat, blonde hair|yellow hair, *ribbon, concept:5_alice"


@dataclass
class FilteredCounts:
    """Tag counts over the captions a query selected (what the table shows)."""

    query: str
    captions: int
    counts: list[tuple[str, int]]
    warnings: list[str]


def count_matching(dataset: Path, query: str) -> FilteredCounts:
    """Tag counts of the caption files whose items match QUERY (all of them for a blank query)."""
    from prep.tag_edit import find_items
    from prep.tag_stats import count_tags, tag_stats

    if not query.strip():
        stats = tag_stats(dataset)
        return FilteredCounts(query, stats.captions, stats.counts, stats.warnings)
    warnings: list[str] = []
    records = [r for r in find_items(dataset, query, warnings=warnings) if r.exists]
    counts = count_tags(r.tags for r in records)
    return FilteredCounts(query, len(records), sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])), warnings)


def undo_last(dataset: Path):
    from prep.journal import Journal

    return Journal(dataset).undo()


def read_history(dataset: Path):
    from prep.journal import Journal

    return Journal(dataset).history()


class CaptionsScreen(Screen[None]):
    """Tag statistics with a query filter, and the undo journal's history."""

    MAX_ROWS = 2000  # tags beyond the most used ones are typos and one-offs; filter to see them
    AUTO_FOCUS = "#tags"  # not the filter: single-key bindings must work when the screen opens
    BINDINGS = [
        Binding("f", "focus_filter", "Filter"),
        Binding("escape", "focus_table", "Leave filter", show=False),
        Binding("r", "refresh", "Refresh"),
        Binding("u", "undo", "Undo last edit"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.history: list = []  # OperationInfo, oldest first, as the journal lists them

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="tags-pane"):
                yield Input(placeholder=QUERY_HINT, id="filter")
                yield Static(id="tags-summary", classes="summary")
                yield DataTable(id="tags", cursor_type="row", zebra_stripes=True)
            with Vertical(id="history-pane"):
                yield Static("History (newest first)", classes="heading")
                yield DataTable(id="history", cursor_type="row", zebra_stripes=True)
                yield Button("Undo last edit", id="undo", variant="warning", disabled=True)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Captions"
        self.query_one("#tags", DataTable).add_columns("Tag", "Count")
        self.query_one("#history", DataTable).add_columns("Id", "Command", "Files", "Started")

    def on_screen_resume(self) -> None:
        # Each time the screen is shown (first time included): captions may have changed meanwhile.
        self.action_refresh()

    @property
    def dataset(self) -> Path:
        return self.app.workspace.dataset

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_focus_table(self) -> None:
        self.query_one("#tags", DataTable).focus()

    def action_refresh(self) -> None:
        self.load_stats(self.query_one("#filter", Input).value)
        run_stage(self, HISTORY, result_of(read_history, self.dataset))

    def load_stats(self, query: str) -> None:
        self.query_one("#tags-summary", Static).update("counting…")
        run_stage(self, STATS, result_of(count_matching, self.dataset, query))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.load_stats(event.value)
            self.action_focus_table()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "undo":
            self.action_undo()

    def action_undo(self) -> None:
        if not self.history:
            self.notify("nothing to undo", severity="warning")
            return
        last = self.history[-1]
        question = (f"Undo operation {last.id} '{last.command}'? It restores the {last.count} file(s) it "
                    "changed to their previous bytes.")

        def answered(yes: bool | None) -> None:
            if yes:
                run_stage(self, UNDO, result_of(undo_last, self.dataset))

        self.app.push_screen(ConfirmScreen(question, yes="Undo"), answered)

    def on_stage_failed(self, message: StageFailed) -> None:
        if message.group == STATS:
            self.query_one("#tags-summary", Static).update(Text(message.error, style="bold red"))
            self.query_one("#tags", DataTable).clear()
        elif message.group in (HISTORY, UNDO):
            self.notify(message.error, severity="error", timeout=8)

    def on_stage_finished(self, message: StageFinished) -> None:
        if message.group == STATS:
            self.show_counts(message.summary)
        elif message.group == HISTORY:
            self.show_history(message.summary)
        elif message.group == UNDO:
            self.notify(f"undone: {message.summary.command} ({message.summary.count} file(s) restored)")
            self.action_refresh()

    def show_counts(self, result: FilteredCounts) -> None:
        table = self.query_one("#tags", DataTable)
        table.clear()
        for tag, count in result.counts[: self.MAX_ROWS]:
            table.add_row(tag, count, key=tag)
        where = f" matching '{result.query}'" if result.query.strip() else ""
        if len(result.counts) > self.MAX_ROWS:
            where += f" (the {self.MAX_ROWS} most used shown)"
        note = f"; {len(result.warnings)} warning(s): {result.warnings[0]}" if result.warnings else ""
        self.query_one("#tags-summary", Static).update(
            f"{result.captions} caption(s){where}, {len(result.counts)} distinct tag(s){note}")

    def show_history(self, history: list) -> None:
        self.history = history
        table = self.query_one("#history", DataTable)
        table.clear()
        for info in reversed(history):
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.started))
            state = "" if info.state == "done" else f" ({info.state})"  # e.g. interrupted: still undoable
            table.add_row(info.id, info.command, info.count, when + state, key=info.id)
        self.query_one("#undo", Button).disabled = not history
