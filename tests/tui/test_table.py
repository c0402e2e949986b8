"""tui.widgets.table.Table: string cells are never markup, and its fast one-line cells equal DataTable's."""

from __future__ import annotations

import asyncio

from rich.style import Style
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from tui.widgets.table import Table

CELLS = [
    ("plain", "img_000001.png", 3, 0.25),
    ("a[/b]c", "[red]x.png", "[bold]tag[/bold]", None),
    (Text("error", style="bold red"), Text.assemble(("two", "green"), " styles"), "", 12345678),
    ("a cell much longer than its column is wide, cut at the edge", "日本語のタグ名前", "tab\there", "two\nlines"),
    (Text("ellipsis cut for a long styled cell", style="yellow", overflow="ellipsis"), "x", "ü̈ combining", -1),
]


class Tables(App[None]):
    def compose(self) -> ComposeResult:
        yield Table(id="fast", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="slow", cursor_type="row", zebra_stripes=True)


def flat(lines) -> list[tuple[str, Style | None]]:
    return [(char, segment.style) for line in lines for segment in line for char in segment.text]


def test_string_cells_are_plain_text_not_markup() -> None:
    async def run() -> None:
        app = Tables()
        async with app.run_test(size=(100, 20)) as pilot:
            table = app.query_one("#fast", Table)
            table.add_columns("a", "b", "c", "d")
            for cells in CELLS:
                table.add_row(*cells)
            table.update_cell_at((0, 0), "[/oops]")
            await pilot.pause()
            shown = "\n".join(strip.text for strip in table.render_lines(table.region.reset_offset))
            assert "a[/b]c" in shown and "[red]x.png" in shown and "[/oops]" in shown
            assert table.get_row_at(1)[:2] == ["a[/b]c", "[red]x.png"]  # the data stays as given
            # a wrapping (two-line) row goes DataTable's own way, still without markup
            table.add_row("[/x] two", "[b]y", key="tall", height=2)
            table.add_column("e")  # an auto-width column: every cell is measured, markup-free
            await pilot.pause()
            shown = "\n".join(strip.text for strip in table.render_lines(table.region.reset_offset))
            assert "[/x] two" in shown and "[b]y" in shown

    asyncio.run(run())


def test_fast_cells_equal_datatable_cells() -> None:
    async def run() -> None:
        app = Tables()
        async with app.run_test(size=(100, 20)) as pilot:
            fast, slow = app.query_one("#fast", Table), app.query_one("#slow", DataTable)
            app.set_focus(None)  # the same (blurred) cursor style for both
            for table in (fast, slow):
                for label, width in (("Severity", 8), ("Path", 12), ("Message", 20), ("N", 6)):
                    table.add_column(label, width=width)
            for cells in CELLS:
                fast.add_row(*cells)
                # DataTable given what Table stores: Text for strings (its own path would parse markup)
                slow.add_row(*(Text(c, end="") if isinstance(c, str) else c for c in cells))
            await pilot.pause()
            compared = 0
            for row in range(len(CELLS)):
                for column in range(4):
                    width = fast.ordered_columns[column].get_render_width(fast)
                    for cursor, hover in ((False, False), (True, False), (False, True), (True, True)):
                        base = Style(bgcolor="grey11") if row % 2 else Style()
                        ours = fast._render_cell(row, column, base, width, cursor, hover)
                        theirs = DataTable._render_cell(slow, row, column, base, width, cursor, hover)
                        assert flat(ours) == flat(theirs), (row, column, cursor, hover)
                        assert len(ours) == 1
                        compared += 1
            assert compared == len(CELLS) * 16

    asyncio.run(run())


def test_add_keyed_rows_equals_add_row_one_by_one() -> None:
    highlighted: dict[str, list] = {"fast": [], "slow": []}

    class Two(App[None]):
        def compose(self) -> ComposeResult:
            yield Table(id="fast", cursor_type="row")
            yield Table(id="slow", cursor_type="row")

        def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
            highlighted[event.data_table.id].append(event.row_key.value)

    async def run() -> None:
        app = Two()
        async with app.run_test(size=(100, 30)) as pilot:
            bulk, single = app.query_one("#fast", Table), app.query_one("#slow", Table)
            rows = [((f"a[/{i}]", i, Text("x", style="red")), f"k{i}") for i in range(30)] + [(("short",), "k-last")]
            for table in (bulk, single):
                table.add_column("A", width=10)
                table.add_column("B", width=4)
                table.add_column("C", width=3)
            bulk.add_keyed_rows(rows)
            for cells, key in rows:
                single.add_row(*cells, key=key)
            await pilot.pause()
            assert bulk.row_count == single.row_count == 31
            for index in range(31):
                assert bulk.get_row_at(index) == single.get_row_at(index)
                assert bulk.coordinate_to_cell_key((index, 0)).row_key == single.coordinate_to_cell_key((index, 0)).row_key
            assert bulk.virtual_size == single.virtual_size
            lines = [[strip.text for strip in table.render_lines(table.region.reset_offset)] for table in (bulk, single)]
            assert lines[0] == lines[1] and "a[/0]" in lines[0][1]
            assert highlighted["fast"] == highlighted["slow"] == ["k0"]
            try:
                bulk.add_keyed_rows([(("again",), "k0")])
            except Exception as exc:  # DataTable's own error for a duplicate key
                assert "already exists" in str(exc)
            else:
                raise AssertionError("a duplicate key was accepted")

    asyncio.run(run())
