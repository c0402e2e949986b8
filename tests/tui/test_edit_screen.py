"""Edit screen on real captions: tag counts and the QUERY filter, the `:` command line (count, `y`,
one journal op, undo), and caption editing with completion written through the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input

from prep.journal import Journal
from prep.tag_stats import tag_stats
from tests.tui.conftest import open_screen, settle, wait_until
from tui.app import make_app
from tui.screens.edit import EditScreen
from tui.widgets.caption_editor import CaptionEditor
from tui.widgets.completion import TagSuggester
from tui.widgets.confirm import ConfirmScreen
from tui.widgets.image_preview import ImagePreview

pytestmark = pytest.mark.asyncio


def counts(table: DataTable) -> dict[str, int]:
    return {str(row[1]): int(row[0]) for row in (table.get_row_at(i) for i in range(table.row_count))}


async def filter_by(pilot, screen: EditScreen, query: str) -> None:
    await pilot.press("slash")
    screen.query_one("#filter", Input).value = query
    await pilot.press("enter")
    await settle(pilot)


async def test_counts_filter_and_command_line_with_undo(workspace: Path):
    dataset = workspace / "dataset"
    before = {p: p.read_bytes() for p in dataset.rglob("*.txt")}
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "4", EditScreen)
        assert counts(screen.query_one("#tags", DataTable)) == dict(tag_stats(dataset).counts)
        preview = screen.query_one("#edit-image", ImagePreview)
        await wait_until(pilot, lambda: preview.loaded is not None, what="the first image shown")

        await filter_by(pilot, screen, "concept:2_alice, -hat")
        assert counts(screen.query_one("#tags", DataTable)) == {"alice": 1, "1girl": 1, "red hair": 1, "smile": 1}
        assert screen.query_one("#images", DataTable).row_count == 1

        await filter_by(pilot, screen, "hat")
        assert screen.query_one("#images", DataTable).row_count == 3
        await pilot.press("colon")
        line = screen.query_one("#command", Input)
        assert screen.focused is line
        line.value = 'replace hat "straw hat"'
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "3 caption(s)" in str(app.screen.query_one("#question").render())
        await pilot.press("y")
        await settle(pilot)
        assert (dataset / "2_alice" / "a0.txt").read_text() == "alice, 1girl, straw hat, red hair"
        assert (dataset / "1_bob" / "b0.txt").read_text() == "bob, 1boy, straw hat"
        history = Journal(dataset).history()
        assert len(history) == 1 and history[0].count == 3
        assert history[0].command == "tags replace hat 'straw hat' --where hat"
        assert screen.query_one("#history", DataTable).row_count == 1

        await pilot.press("colon")
        line.value = "frobnicate x"  # not an op: an error, nothing written
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)

        await pilot.press("escape")
        await pilot.press("ctrl+z")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} == before


async def test_caption_edit_with_completion(workspace: Path):
    dataset = workspace / "dataset"
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "4", EditScreen)
        await filter_by(pilot, screen, "concept:1_bob")
        images = screen.query_one("#images", DataTable)
        assert images.row_count == 3 and images.cursor_row == 0
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, CaptionEditor)
        field = app.screen.query_one("#caption-input", Input)
        assert field.value == "bob, 1boy, hat"
        field.value = ""
        await pilot.press(*"bob, 1boy, hat, transp")
        await wait_until(pilot, lambda: field._suggestion == "bob, 1boy, hat, transparent background",
                         what="completion from the dataset's tags")
        await pilot.press("tab")
        await pilot.press(*", wolf ea")  # not in the dataset: the bundled Danbooru list knows it
        await wait_until(pilot, lambda: field._suggestion.endswith("wolf ears"), what="Danbooru completion")
        await pilot.press("tab", "enter")
        await settle(pilot)
        assert (dataset / "1_bob" / "b0.txt").read_text() == "bob, 1boy, hat, transparent background, wolf ears"
        assert Journal(dataset).history()[-1].command == "edit caption 1_bob/b0.txt"


async def test_suggester_prefers_dataset_tags():
    suggester = TagSuggester(["red hair", "red eyes"], ["red ribbon", "redhead"])
    assert await suggester.get_suggestion("1girl, red") == "1girl, red hair"
    assert await suggester.get_suggestion("1girl, redh") == "1girl, redhead"
    assert await suggester.get_suggestion("1girl, ") is None


async def test_bracketed_tags_and_names_show_as_text(workspace: Path):
    """Caption tags and file names from a shared dataset are shown as written, never as markup:
    `a[/b]c` made DataTable raise MarkupError while drawing, `[red]x` showed as a red `x`."""
    dataset = workspace / "dataset"
    (dataset / "2_alice" / "a0.txt").write_text("alice, a[/b]c, [red]x, [bold]", encoding="utf-8")
    (dataset / "2_alice" / "a0.png").rename(dataset / "2_alice" / "[red]a0.png")
    (dataset / "2_alice" / "a0.txt").rename(dataset / "2_alice" / "[red]a0.txt")
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "4", EditScreen)
        tags = screen.query_one("#tags", DataTable)
        assert {"a[/b]c", "[red]x", "[bold]"} <= set(counts(tags))
        shown = "\n".join(strip.text for strip in tags.render_lines(tags.region.reset_offset))
        assert "a[/b]c" in shown and "[red]x" in shown
        images = screen.query_one("#images", DataTable)
        listed = "\n".join(strip.text for strip in images.render_lines(images.region.reset_offset))
        assert "[red]a0.png" in listed
        await settle(pilot)
        assert app.is_running  # nothing raised while drawing
