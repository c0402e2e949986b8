"""`e` on the Edit screen: one caption in an input with tag completion; enter saves, escape cancels."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import Input, Label


class CaptionEditor(ModalScreen[str | None]):
    """Dismisses with the new caption text (enter), or None (escape)."""

    DEFAULT_CSS = """
    CaptionEditor { align: center middle; }
    CaptionEditor > Vertical { width: 100; max-width: 98%; height: auto; border: thick $primary;
                               background: $surface; padding: 0 1; }
    CaptionEditor #editor-keys { color: $text-muted; }
    """
    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("tab", "complete", "Complete tag", priority=True),
    ]

    def __init__(self, name: str, text: str, suggester: Suggester | None = None) -> None:
        super().__init__()
        self.file_name = name
        self.text = text
        self.suggester = suggester

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Caption of {self.file_name}", markup=False)
            yield Input(self.text, id="caption-input", suggester=self.suggester)
            yield Label("enter: save (undoable)   tab / →: complete the tag   esc: cancel", id="editor-keys")

    def on_mount(self) -> None:
        self.query_one("#caption-input", Input).focus()

    def action_complete(self) -> None:
        field = self.query_one("#caption-input", Input)
        suggestion = getattr(field, "_suggestion", "")
        if suggestion and suggestion != field.value:
            field.value = suggestion
            field.cursor_position = len(suggestion)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
