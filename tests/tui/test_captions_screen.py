"""Captions screen: tag counts over real caption files, the query filter, and undo through the journal."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Button, DataTable, Input, Static

from prep.tag_edit import edit_dataset, remove_edit
from prep.tag_stats import tag_stats
from tests.tui.conftest import wait_until
from tui.app import make_app
from tui.screens.captions import CaptionsScreen
from tui.widgets.confirm import ConfirmScreen

pytestmark = pytest.mark.asyncio


def counts(table: DataTable) -> dict[str, int]:
    return {str(row[0]): int(row[1]) for row in (table.get_row_at(i) for i in range(table.row_count))}


async def open_captions(pilot) -> CaptionsScreen:
    await pilot.press("2")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, CaptionsScreen)
    return screen


async def filter_by(pilot, screen: CaptionsScreen, query: str) -> None:
    await pilot.press("f")
    screen.query_one("#filter", Input).value = query
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def test_tag_counts_match_tag_stats(workspace: Path):
    expected = tag_stats(workspace / "dataset")
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_captions(pilot)
        table = screen.query_one("#tags", DataTable)
        assert table.row_count == len(expected.counts)
        assert counts(table) == dict(expected.counts)
        assert counts(table)["hat"] == 3 and counts(table)["1girl"] == 3
        assert "5 caption(s), " in str(screen.query_one("#tags-summary", Static).render())


async def test_filter_uses_the_query_syntax(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_captions(pilot)
        await filter_by(pilot, screen, "concept:2_alice, -hat")
        assert counts(screen.query_one("#tags", DataTable)) == {"alice": 1, "1girl": 1, "red hair": 1, "smile": 1}
        await filter_by(pilot, screen, "Red_Hair|1boy")
        shown = counts(screen.query_one("#tags", DataTable))
        assert shown["red hair"] == 2 and shown["1boy"] == 2 and shown["hat"] == 2
        assert "4 caption(s) matching" in str(screen.query_one("#tags-summary", Static).render())
        await filter_by(pilot, screen, "hat, a|")
        assert screen.query_one("#tags", DataTable).row_count == 0
        assert "empty alternative" in str(screen.query_one("#tags-summary", Static).render())
        await filter_by(pilot, screen, "")
        assert screen.query_one("#tags", DataTable).row_count == len(tag_stats(workspace / "dataset").counts)


async def test_undo_restores_the_caption_bytes(workspace: Path):
    dataset = workspace / "dataset"
    captions = sorted(dataset.rglob("*.txt"))
    before = {path: path.read_bytes() for path in captions}
    report = edit_dataset(dataset, remove_edit(["hat"]), command="tags remove hat")
    assert len(report.changes) == 3
    edited = {path: path.read_bytes() for path in captions}
    assert edited != before
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_captions(pilot)
        history = screen.query_one("#history", DataTable)
        assert history.row_count == 1 and str(history.get_row_at(0)[1]) == "tags remove hat"
        assert "hat" not in counts(screen.query_one("#tags", DataTable))
        assert not screen.query_one("#undo", Button).disabled

        await pilot.press("u")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "tags remove hat" in str(app.screen.query_one("#question").render())
        await pilot.press("n")  # declined: nothing changes
        await pilot.pause()
        assert app.screen is screen
        assert {path: path.read_bytes() for path in captions} == edited

        await pilot.click("#undo")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_until(pilot, lambda: history.row_count == 0, what="history emptied by undo")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert {path: path.read_bytes() for path in captions} == before
        assert counts(screen.query_one("#tags", DataTable))["hat"] == 3
        assert screen.query_one("#undo", Button).disabled


async def test_undo_with_empty_history_changes_nothing(workspace: Path):
    dataset = workspace / "dataset"
    before = {path: path.read_bytes() for path in dataset.rglob("*.txt")}
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_captions(pilot)
        assert screen.query_one("#history", DataTable).row_count == 0
        await pilot.press("u")
        await pilot.pause()
        assert app.screen is screen  # no confirmation: there is nothing to undo
    assert {path: path.read_bytes() for path in dataset.rglob("*.txt")} == before


async def test_a_long_tag_list_is_capped(workspace: Path, monkeypatch):
    monkeypatch.setattr(CaptionsScreen, "MAX_ROWS", 2)
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_captions(pilot)
        table = screen.query_one("#tags", DataTable)
        assert table.row_count == 2 and counts(table) == dict(tag_stats(workspace / "dataset").counts[:2])
        assert "(the 2 most used shown)" in str(screen.query_one("#tags-summary", Static).render())
