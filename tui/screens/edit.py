"""Edit screen: tag counts and a QUERY filter, the images they select with a preview and caption,
caption editing with completion, the `:` tags command line and the journal's history. Once the
dataset has a provenance store (a tagger or booru run wrote `.lorakit/tags.sqlite`), the highlighted
caption's tags are listed with their source and the tagger's confidence.

`/` focuses the filter (enter applies it), `e` edits the highlighted caption, `:` takes
`add TAG… | remove TAG… | replace OLD NEW | move-front TAG…` for the filtered captions (it shows how
many will change; `y` applies it as one journaled operation), `s` sorts the tags by count or name,
enter on a tag filters by it. `ctrl+z` undoes the last operation.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from prep.captions import format_caption
from tui.edit_commands import USAGE, EditCommand, parse_command
from tui.edit_model import Selection, load_selection, save_caption
from tui.runner import result_of, run_stage
from tui.screens.base import DataScreen, fill_table
from tui.widgets.caption_editor import CaptionEditor
from tui.widgets.completion import TagSuggester
from tui.widgets.confirm import ConfirmScreen
from tui.widgets.image_preview import ImagePreview
from tui.widgets.plain import Plain
from tui.widgets.table import Table

LOAD, COUNT, SAVE, EDIT = "selection", "count-changes", "save-caption", "tags-edit"
QUERY_HINT = "/ filter: red hair, -hat, blonde hair|yellow hair, *ribbon, concept:5_alice"


def short_source(source: str) -> str:
    """`tagger:<model>` with the model's last path part (a local folder's full path, a hub id's
    owner, do not fit a pane); booru, user and command sources as stored."""
    kind, _, model = source.partition(":")
    if kind in ("tagger", "caption") and model:
        return f"{kind}:{model.rstrip('/').replace(chr(92), '/').rsplit('/', 1)[-1]}"
    return source


def _load(dataset: Path, query: str) -> tuple[Selection, TagSuggester]:
    """The selection and a completer over its tags and the Danbooru list (built off the UI thread)."""
    from prep.tag_vocabulary import danbooru_tags

    selection = load_selection(dataset, query)
    ranked = [tag for tag, _count in selection.counts.most_common()]
    return selection, TagSuggester(ranked, danbooru_tags())


def _dry_run(dataset: Path, command: EditCommand, query: str):
    from prep.tag_edit import edit_dataset

    return edit_dataset(dataset, command.spec, where=query, dry_run=True)


def _apply(dataset: Path, command: EditCommand, query: str):
    from prep.tag_edit import edit_dataset

    return edit_dataset(dataset, command.spec, where=query, command=command.command(query))


class EditScreen(DataScreen):
    """The bulk editor over `prep.tag_edit` and the journal."""

    JOB = EDIT
    JOB_VERB = "editing captions"
    MAX_TAGS = 1000
    MAX_IMAGES = 1000  # DataTable measures every cell; filter to see the others
    AUTO_FOCUS = "#images"
    BINDINGS = [
        Binding("slash", "focus_filter", "Filter"),
        Binding("e", "edit_caption", "Edit"),
        Binding("colon", "command_line", "Command"),
        Binding("s", "sort", "Sort"),
        Binding("ctrl+r", "reload", "Reload", priority=True, show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.selection: Selection | None = None
        self.query_text = ""
        self.sort_by = "count"
        self.pending: EditCommand | None = None
        self.suggester: TagSuggester | None = None

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder=QUERY_HINT, id="filter", classes="line-input")
        with Horizontal(id="edit-main"):
            with Vertical(id="tags-pane"):
                yield Plain("", id="tags-summary", classes="summary")
                yield Table(id="tags", cursor_type="row", zebra_stripes=True)
            with Vertical(id="images-pane"):
                yield Plain("", id="images-summary", classes="summary")
                yield Table(id="images", cursor_type="row", zebra_stripes=True)
            with Vertical(id="view-pane"):
                yield ImagePreview(id="edit-image")
                yield Plain("", id="caption", classes="summary")
                yield Table(id="tag-sources", cursor_type="none", zebra_stripes=True, show_cursor=False)
                yield Plain("History (ctrl+z undoes)", classes="heading")
                yield Table(id="history", cursor_type="row", zebra_stripes=True, show_cursor=False)
        yield Input(placeholder=f": {USAGE}", id="command", classes="line-input")

    def on_mount(self) -> None:
        self.query_one("#tags", DataTable).add_columns("Count", "Tag", "Typo of")
        self.query_one("#images", DataTable).add_columns("Image", "Tags")
        self.query_one("#history", DataTable).add_columns("Id", "Command", "Files", "When")
        self.query_one("#tag-sources", DataTable).add_columns("Tag", "p", "Source")
        self.query_one("#command", Input).display = False

    # -- loading ------------------------------------------------------------------------------

    def refresh_data(self) -> None:
        self.load(self.query_text)

    def action_reload(self) -> None:
        self.load(self.query_text)

    def load(self, query: str) -> None:
        self.query_one("#tags-summary", Static).update("reading captions…")
        run_stage(self, LOAD, result_of(_load, self.dataset, query), LOAD)

    def side_finished(self, group: str, summary) -> None:
        if group == LOAD:
            self.selection_loaded(*summary)
        elif group == COUNT:
            self.confirm_edit(summary)
        elif group == SAVE:
            path, changed = summary
            self.notify(f"saved {path.name} (ctrl+z undoes it)" if changed else f"{path.name}: unchanged")
            self.app.dataset_changed(self)
            self.load(self.query_text)

    def side_failed(self, group: str, error: str) -> None:
        if group == LOAD:
            self.query_one("#tags-summary", Static).update(Text(error, style="bold red"))
        self.notify(error, severity="error", timeout=8)

    def selection_loaded(self, selection: Selection, suggester: TagSuggester) -> None:
        self.suggester = suggester
        self.show_selection(selection)

    def show_selection(self, selection: Selection) -> None:
        self.selection = selection
        self.query_text = selection.query
        self.show_tags()
        images = self.query_one("#images", DataTable)
        previous = images.cursor_row
        rows = []
        for record in selection.records[: self.MAX_IMAGES]:
            name = self.relative(record.image)
            count = len(record.tags) if record.exists else Text("none", style="yellow")
            rows.append(((name, count), record.image))
        fill_table(images, rows)
        where = f" matching '{selection.query}'" if selection.query.strip() else ""
        more = f" (first {self.MAX_IMAGES} shown)" if len(selection.records) > self.MAX_IMAGES else ""
        self.query_one("#images-summary", Static).update(
            f"{len(selection.records)} image(s){where}, {selection.captioned} captioned{more}")
        if images.row_count:
            images.move_cursor(row=min(max(previous, 0), images.row_count - 1))
            self.show_record(min(max(previous, 0), images.row_count - 1))
        else:
            self.query_one("#edit-image", ImagePreview).show(None)
            self.query_one("#caption", Static).update("")
        history = self.query_one("#history", DataTable)
        rows = []
        for info in reversed(selection.history):
            when = time.strftime("%m-%d %H:%M", time.localtime(info.started))
            state = "" if info.state == "done" else f" ({info.state})"
            rows.append(((info.id, info.command, info.count, when + state), info.id))
        fill_table(history, rows)

    def relative(self, path: str) -> str:
        try:
            return Path(path).relative_to(self.dataset).as_posix()
        except ValueError:
            return path

    def show_tags(self) -> None:
        selection = self.selection
        if selection is None:
            return
        table = self.query_one("#tags", DataTable)
        rows = []
        if self.sort_by == "count":
            ordered = sorted(selection.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        else:
            ordered = sorted(selection.counts.items(), key=lambda kv: (kv[0].lower(), kv[0]))
        for tag, count in ordered[: self.MAX_TAGS]:
            others = selection.typos.get(tag)
            note = Text(f"≈{others[0]}", style="yellow") if others else ""
            rows.append(((count, tag, note), tag))  # the count first: a narrow pane still shows it
        fill_table(table, rows)
        where = f" in '{selection.query}'" if selection.query.strip() else ""
        more = f", the {self.MAX_TAGS} most used shown" if len(ordered) > self.MAX_TAGS else ""
        self.query_one("#tags-summary", Static).update(
            f"{len(ordered)} tag(s){where} by {self.sort_by}{more}"
            + (f"; {len(selection.warnings)} warning(s)" if selection.warnings else ""))

    def action_sort(self) -> None:
        self.sort_by = "name" if self.sort_by == "count" else "count"
        self.show_tags()

    # -- the image list -----------------------------------------------------------------------

    def current_record(self):
        if self.selection is None:
            return None
        images = self.query_one("#images", DataTable)
        if not images.row_count:
            return None
        row = images.cursor_row
        records = self.selection.records
        return records[row] if 0 <= row < len(records) else None

    def show_record(self, row: int) -> None:
        if self.selection is None or not 0 <= row < len(self.selection.records):
            return
        record = self.selection.records[row]
        self.query_one("#edit-image", ImagePreview).show(Path(record.image))
        text = format_caption(record.tags) if record.exists else Text("(no caption file)", style="yellow")
        self.query_one("#caption", Static).update(text)
        self.show_sources(record)

    def show_sources(self, record) -> None:
        """Where each of the caption's tags came from (booru:<site>:<id>, tagger:<model>, user, a
        command) and the tagger's confidence, from the provenance store."""
        table = self.query_one("#tag-sources", DataTable)
        known = self.selection.sources if self.selection is not None else None
        table.display = known is not None
        if known is None:
            return
        found = known.get(record.image, {})
        rows = []
        for tag in record.tags if record.exists else []:
            source, confidence = found.get(tag, ("", None))
            shown = "" if confidence is None else f"{confidence:.2f}"
            rows.append(((tag, shown, short_source(source)), tag))
        fill_table(table, rows)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "images":
            self.show_record(event.cursor_row)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "tags" and event.row_key.value is not None:
            self.apply_filter(event.row_key.value)
        elif event.data_table.id == "images":
            self.action_edit_caption()

    # -- the filter ---------------------------------------------------------------------------

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def apply_filter(self, query: str) -> None:
        self.query_one("#filter", Input).value = query
        self.load(query)
        self.query_one("#images", DataTable).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            event.stop()
            self.apply_filter(event.value)
        elif event.input.id == "command":
            event.stop()
            self.submit_command(event.value)

    # -- caption editing ----------------------------------------------------------------------

    def action_edit_caption(self) -> None:
        record = self.current_record()
        if record is None:
            self.notify("no image highlighted", severity="warning")
            return
        text = format_caption(record.tags) if record.exists else ""
        caption = Path(record.caption)

        def saved(value: str | None) -> None:
            if value is not None:
                run_stage(self, SAVE, result_of(save_caption, self.dataset, caption, value), SAVE)

        self.app.push_screen(CaptionEditor(self.relative(record.image), text, self.suggester), saved)

    # -- the command line ---------------------------------------------------------------------

    def action_command_line(self) -> None:
        line = self.query_one("#command", Input)
        line.display = True
        line.value = ""
        line.focus()

    def hide_command(self) -> None:
        line = self.query_one("#command", Input)
        line.display = False
        self.query_one("#images", DataTable).focus()

    def action_escape(self) -> None:
        if self.focused is self.query_one("#command", Input):
            self.hide_command()
            return
        super().action_escape()

    def submit_command(self, text: str) -> None:
        from prep.errors import UserError

        try:
            command = parse_command(text)
        except UserError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self.hide_command()
        self.pending = command
        self.job_bar.status(f"counting the captions `{text}` changes…")
        run_stage(self, COUNT, result_of(_dry_run, self.dataset, command, self.query_text), COUNT)

    def confirm_edit(self, report) -> None:
        command = self.pending
        if command is None:
            return
        where = f" of the filter '{self.query_text}'" if self.query_text.strip() else ""
        self.job_bar.status(f"{command.op}: {report.changed} caption(s) will change")
        if not report.changed:
            self.notify(f"{command.op}: no caption{where} would change", severity="warning")
            return
        query = self.query_text
        question = (f"{command.command()}: {report.changed} caption(s){where} will change "
                    f"({report.unchanged} unchanged). Apply as one undoable operation?")

        def answered(yes: bool | None) -> None:
            if yes:
                self.start_job(result_of(_apply, self.dataset, command, query))
            else:
                self.job_bar.status("not applied")

        self.app.push_screen(ConfirmScreen(question, yes="Apply"), answered)

    def describe(self, report) -> str:
        return f"changed {report.changed} caption(s), {report.unchanged} unchanged (ctrl+z undoes it)"

    def job_finished(self, report) -> None:
        self.load(self.query_text)
