"""`?`: every key of the current screen (its own, its widgets' and the app's), in a modal list."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen

from tui.widgets.plain import Plain


def describe_keys(bindings: list[tuple[str, str]]) -> Text:
    text = Text()
    width = max((len(key) for key, _ in bindings), default=4) + 2
    for key, description in bindings:
        text.append(key.ljust(width), style="bold")
        text.append(description + "\n")
    return text


class HelpScreen(ModalScreen[None]):
    """The keys, as (key, description) pairs gathered from the screen the user was on."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; max-width: 95%; height: auto; max-height: 90%;
                                  border: thick $primary; background: $surface; padding: 0 2; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, title: str, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.heading = title
        self.bindings = bindings

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Plain(Text(f"{self.heading}: keys (esc closes)\n", style="bold"))
            yield Plain(describe_keys(self.bindings), id="help-keys")

    def action_close(self) -> None:
        self.dismiss(None)
