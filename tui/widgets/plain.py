"""Text the app shows is text: a Static that never reads its strings as markup.

The app shows file names, tags, captions, problem messages and errors that come from datasets,
boorus and the user; `[...]` is common in them. Textual's Static parses strings as markup, so
`a[/b]c` raised MarkupError while the screen drew and `[red]x` showed as a red `x`. Styled text
is passed as rich Text, which is never parsed. (Tables: tui.widgets.table; notifications:
LorakitApp.notify.)
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Static


class Plain(Static):
    """A Static whose strings are plain text."""

    def __init__(self, content: Any = "", *, markup: bool = False, **kwargs: Any) -> None:
        super().__init__(content, markup=markup, **kwargs)
