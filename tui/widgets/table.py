"""The app's table: Textual's DataTable, with string cells shown as plain text and one-line cells drawn fast.

The differences from DataTable, and nothing else:
- A string cell is text, never Rich markup (the data stays the string given): DataTable parses
  `[...]` in strings, so a caption tag such as `a[/b]c` raised MarkupError while the screen drew
  and a file named `[red]x.png` showed as a red `x.png`.
- A text cell of a one-line row is drawn straight into segments. DataTable renders each cell
  through Rich's pipeline (padding, styling, line splitting): 150 us a cell against 66 here (2
  cores, collector held), and adding rows invalidates every cached cell, so a screenful is drawn
  again while a job runs. Other cells (other renderables, taller rows, the header) go the
  DataTable way; `tests/tui/test_table.py` checks the fast cells equal DataTable's, character
  and style.
- Rows added to fixed-width columns are not measured (DataTable measures every new cell), and
  `add_keyed_rows` adds many rows with one cursor update instead of one a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import zip_longest
from typing import Any

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets._data_table import RowRenderables, default_cell_formatter
from textual.widgets.data_table import DuplicateKey, Row, RowKey


def cell_text(cell: Any) -> Text | None:
    """The Text DataTable would show for `cell`, or None when it is another renderable."""
    if cell is None:
        return Text("", end="")
    if isinstance(cell, Text):
        return cell
    if isinstance(cell, float):
        return Text(f"{cell:.2f}", end="")
    if isinstance(cell, (int, str)):
        return Text(str(cell), end="")
    return None


def cell_renderable(cell: Any, wrap: bool) -> Any:
    """What DataTable's default_cell_formatter gives, except that a string is never markup."""
    if isinstance(cell, str):
        return Text(cell, no_wrap=not wrap, end="")
    return default_cell_formatter(cell, wrap=wrap) if cell is not None else Text("", end="")


class Table(DataTable):
    """A DataTable whose string cells are plain text and whose one-line text cells draw fast."""

    def add_keyed_rows(self, rows: Iterable[tuple[Sequence[Any], str | None]], height: int = 1) -> None:
        """`add_row(*cells, key=key, height=height)` for each (cells, key), with the cursor and
        the idle pass updated once at the end instead of once a row (half of add_row's time)."""
        columns = self.ordered_columns
        before = self.row_count
        for cells, key in rows:
            row_key = RowKey(key)
            if row_key in self._row_locations:
                raise DuplicateKey(f"The row key {row_key!r} already exists.")
            if len(cells) > len(columns):
                raise ValueError("More values provided than there are columns.")
            self._row_locations[row_key] = self.row_count
            self._data[row_key] = {column.key: cell for column, cell in zip_longest(columns, cells)}
            self.rows[row_key] = Row(row_key, height)
            self._new_rows.add(row_key)
        if self.row_count == before:
            return
        self._require_update_dimensions = True
        self.cursor_coordinate = self.cursor_coordinate
        if before == 0 and columns and self.show_cursor and self.cursor_type != "none":
            self._highlight_cursor()  # add_row's first row: a cell to highlight appeared
        self._update_count += 1
        self.check_idle()

    def _compute_row_renderables(self, row_index: int) -> RowRenderables:
        """DataTable's, with string cells (and labels) as Text instead of parsed markup."""
        if row_index == -1:
            return super()._compute_row_renderables(row_index)  # the header: our own column labels
        row_key = self._row_locations.get_key(row_index)
        row = self.rows.get(row_key) if row_key is not None else None
        if row is None:
            return RowRenderables(None, [])
        wrap = row.height != 1
        cells = [cell_renderable(datum, wrap) for datum, _ in zip_longest(self.get_row_at(row_index),
                                                                           range(len(self.columns)))]
        label = cell_renderable(row.label, wrap) if row.label and self._should_render_row_labels else None
        return RowRenderables(label, cells)

    def _update_dimensions(self, new_rows) -> None:
        """DataTable measures every cell of every new row (for auto widths and heights, and row
        labels): skipped when the columns have fixed widths and the new rows fixed heights and no
        labels, which is how `tui.screens.base.fill_table` fills every table."""
        if any(column.auto_width for column in self.columns.values()) or any(
                (row := self.rows.get(key)) is not None and (row.auto_height or row.label is not None)
                for key in new_rows):
            super()._update_dimensions(new_rows)
            return
        width = sum(column.get_render_width(self) for column in self.columns.values())
        self.virtual_size = Size(width + self._row_label_column_width,
                                 self._total_row_height + (self.header_height if self.show_header else 0))

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False):
        lines = self._fast_cell(row_index, column_index, base_style, width, cursor, hover)
        if lines is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        return lines

    def _fast_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                   cursor: bool, hover: bool) -> list[list[Segment]] | None:
        """DataTable._render_cell for a text cell of a one-line row, without Rich's render pipeline."""
        if row_index < 0 or column_index < 0:
            return None  # the header and the row labels
        row_key = self._row_locations.get_key(row_index)
        row = self.rows.get(row_key) if row_key is not None else None
        if row is None or row.height != 1:
            return None
        column_key = self._column_locations.get_key(column_index)
        # DataTable's own cache key: its invalidation (new rows, cursor, styles) applies unchanged.
        cache_key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor,
                     self._update_count, self._pseudo_class_state)
        cached = self._cell_render_cache.get(cache_key)
        if cached is not None:
            return cached
        text = cell_text(self._data.get(row_key, {}).get(column_key))
        if text is None:
            return None
        component_style, post_style = self._get_styles_to_render_cell(
            False, False, row_index < self.fixed_rows or column_index < self.fixed_columns, hover, cursor,
            self.show_cursor, self._show_hover_cursor, self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css")
        style = base_style + Style.from_meta({"row": row_index, "column": column_index}) + component_style
        padding = self.cell_padding
        inner = max(0, width - 2 * padding)
        console = self.app.console
        # What Rich does for one no-wrap line (Text.wrap: tabs, justify, overflow), without its
        # render pipeline; the base style becomes a span over the text, as Text.__rich_console__ does.
        wrapped = text.wrap(console, inner, overflow=text.overflow or "fold",
                            tab_size=text.tab_size or console.tab_size or 8, no_wrap=True)
        line = Text("\n").join(wrapped[:1])
        segments = [Segment(" " * padding), *line.render(console),
                    Segment(" " * (inner - line.cell_len + padding))]
        lines = [list(Segment.apply_style(segments, style, post_style))]
        self._cell_render_cache[cache_key] = lines
        return lines
