"""The app's frame: screens on keys 1-7 with `lorakit — <Screen>` titles, the header's dataset summary,
key handling around text fields, `?`, the command palette's actions, and ctrl+z undo with y/n."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from prep.tag_edit import edit_dataset, remove_edit
from tests.tui.conftest import open_screen, settle, wait_until
from tui.app import make_app
from tui.palette import LorakitCommands
from tui.screens.edit import EditScreen
from tui.screens.validate import ValidateScreen
from tui.widgets.confirm import ConfirmScreen
from tui.widgets.help import HelpScreen

pytestmark = pytest.mark.asyncio
TITLES = {"1": "Scrape", "2": "Tag", "3": "Clean", "4": "Edit", "5": "Concept", "6": "Validate", "7": "Train"}


async def test_every_key_opens_its_screen_with_the_title_and_summary(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        for key, title in TITLES.items():
            await pilot.press(key)
            await settle(pilot)
            assert app.screen.title == f"lorakit — {title}"
            await wait_until(pilot, lambda: "images" in (app.screen.sub_title or ""), what="summary")
            assert "6 images · 83% captioned" in app.screen.sub_title
            assert "alice ×2" in app.screen.sub_title and "bob ×1" in app.screen.sub_title
        await pilot.press("6")
        await settle(pilot)
        assert "validate: ok" in app.screen.sub_title  # warnings only: no error


async def test_an_empty_workspace_starts_on_scrape_and_says_not_run(tmp_path: Path):
    from tui.workspace import init_workspace

    init_workspace(tmp_path / "new")
    app = make_app(tmp_path / "new")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.screen.title == "lorakit — Scrape"
        await wait_until(pilot, lambda: "validate: not run" in (app.screen.sub_title or ""), what="summary")
        assert "empty dataset" in app.screen.sub_title


async def test_keys_type_into_a_focused_field_and_act_after_escape(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "4", EditScreen)
        await pilot.press("slash")
        field = screen.query_one("#filter", Input)
        assert screen.focused is field
        await pilot.press("6", "e")  # typed, not a screen switch or an edit
        assert field.value == "6e" and app.screen is screen
        await pilot.press("escape")
        assert screen.focused is None
        await pilot.press("6")
        await settle(pilot)
        assert isinstance(app.screen, ValidateScreen)


async def test_help_lists_the_screen_keys(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(pilot, "4", EditScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = str(app.screen.query_one("#help-keys").render())
        for key, what in (("/", "Filter"), ("e", "Edit"), ("s", "Sort"), (":", "Command"), ("ctrl+z", "Undo"),
                          ("4", "Edit screen"), ("ctrl+p", "palette")):
            assert key in text and what in text, (key, what, text)
        await pilot.press("escape")
        assert isinstance(app.screen, EditScreen)


async def test_palette_lists_every_action_and_runs_one(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        provider = LorakitCommands(app.screen)
        names = [name for name, _help, _callback in provider.commands()]
        for name in ("scrape", "tag", "clean", "undo", "validate", "fix", "deep validate", "edit caption",
                     "concept apply", "go to Edit"):
            assert name in names
        callback = dict((n, c) for n, _h, c in provider.commands())["go to Edit"]
        await callback()
        await settle(pilot)
        assert isinstance(app.screen, EditScreen)


async def test_ctrl_z_asks_and_y_undoes_from_any_screen(workspace: Path):
    dataset = workspace / "dataset"
    before = {p: p.read_bytes() for p in dataset.rglob("*.txt")}
    edit_dataset(dataset, remove_edit(["hat"]), command="tags remove hat")
    edited = {p: p.read_bytes() for p in dataset.rglob("*.txt")}
    assert edited != before
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_screen(pilot, "3", object)
        await pilot.press("ctrl+z")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "tags remove hat" in str(app.screen.query_one("#question").render())
        assert "y: yes" in str(app.screen.query_one("#keys").render())
        await pilot.press("enter")  # the focused button is Cancel: a stray enter changes nothing
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} == edited
        await pilot.press("ctrl+z")
        await pilot.pause()
        await pilot.press("n")
        await pilot.pause()
        assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} == edited
        await pilot.press("ctrl+z")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} == before
        await pilot.press("ctrl+z")  # nothing left: no question
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
