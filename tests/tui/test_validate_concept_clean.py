"""Validate (steps from [train], problems, enter shows the file, f fixes as one journal op), Concept
apply (captions and [train]), Clean's live preview and apply, and ctrl+s keeping a commented file."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from prep.config import tomllib
from prep.journal import Journal
from tests.tui.conftest import open_screen, settle, wait_until
from tui.app import make_app
from tui.screens.clean import CleanScreen
from tui.screens.concept import ConceptScreen
from tui.screens.validate import ValidateScreen
from tui.widgets.image_preview import ImagePreview

pytestmark = pytest.mark.asyncio

COMMENTED = """\
# my workspace, commented by hand
[train]
# the base model
pretrained_model = ""  # set me
dataset = "dataset"
output_dir = "output"
resolution = 64
max_train_epochs = 3
train_batch_size = 2

[clean]
# tags I never want
remove = ["hat"]  # hats are noise

[concept]
trigger = "alc"
remove_names = ["alice"]
concept = "2_alice"
"""


def rows(table: DataTable) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_validate_reads_train_shows_files_and_fixes(workspace: Path):
    (workspace / "lorakit.toml").write_text(COMMENTED)
    dataset = workspace / "dataset"
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "6", ValidateScreen)
        await wait_until(pilot, lambda: screen.report is not None, what="validation on open")
        report = screen.report
        assert report.epochs == 3 and report.batch_size == 2
        # 2_alice: 3 images x 2, 1_bob: 3 x 1 -> 9 per epoch, batch 2 -> 5 steps, 3 epochs -> 15
        assert (report.steps_per_epoch, report.total_steps) == (5, 15)
        summary = str(screen.query_one("#validate-summary", Static).render())
        assert "5 steps per epoch, 15 in total (3 epoch(s), batch 2)" in summary
        assert "small-image" not in report.codes()  # [train] resolution 64, not the 512 default
        assert ["2_alice", "2", "3", "6", "67%"] in rows(screen.query_one("#concepts", DataTable))
        problems = screen.query_one("#problems", DataTable)
        codes = [row[1] for row in rows(problems)]
        assert "missing-caption" in codes and "has-alpha" in codes
        problems.focus()
        problems.move_cursor(row=codes.index("has-alpha"))
        await pilot.press("enter")
        preview = screen.query_one("#problem-image", ImagePreview)
        await wait_until(pilot, lambda: preview.loaded == dataset / "1_bob" / "b2.png", what="the image shown")
        await wait_until(pilot, lambda: "transparent background" in str(
            screen.query_one("#problem-caption", Static).render()), what="its caption")

        await pilot.press("f")
        await wait_until(pilot, lambda: screen.report is not report and not screen.running, what="fix + revalidate")
        await settle(pilot)
        assert "missing-caption" not in screen.report.codes() and "has-alpha" not in screen.report.codes()
        assert (dataset / "1_bob" / "b1.txt").read_text() == "bob"
        assert Journal(dataset).history()[-1].command.startswith("fix")
        assert "validate: ok" in app.screen.sub_title


async def test_concept_apply_sets_trigger_and_train(workspace: Path):
    (workspace / "lorakit.toml").write_text(COMMENTED)
    dataset = workspace / "dataset"
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "5", ConceptScreen)
        assert screen.query_one("#field-trigger", Input).value == "alc"
        assert screen.query_one("#candidates", DataTable).row_count > 0
        await pilot.press("w")
        word = screen.query_one("#word", Input)
        assert screen.focused is word
        await pilot.press(*"hat", "enter")
        await settle(pilot)
        check = str(screen.query_one("#word-check", Static).render())
        assert "collides with a dataset tag" in check and "single token" in check
        screen.query_one("#field-trigger", Input).value = "zq alc"
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert (dataset / "2_alice" / "a0.txt").read_text() == "zq alc, 1girl, hat, red hair"
        assert (dataset / "1_bob" / "b0.txt").read_text() == "bob, 1boy, hat"
        text = (workspace / "lorakit.toml").read_text()
        train = tomllib.loads(text)["train"]
        assert train["keep_tokens"] == 1 and train["shuffle_caption"] is True
        assert "# the base model" in text and "# set me" in text
        assert len(Journal(dataset).history()) == 1


async def test_clean_preview_apply_and_ctrl_s_round_trip(workspace: Path):
    (workspace / "lorakit.toml").write_text(COMMENTED)
    dataset = workspace / "dataset"
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "3", CleanScreen)
        summary = screen.query_one("#clean-summary", Static)
        await wait_until(pilot, lambda: "3 caption(s) would change" in str(summary.render()), what="preview")
        remove = screen.query_one("#field-remove", Input)
        remove.value = "hat, smile"
        await wait_until(pilot, lambda: "4 caption(s) would change" in str(summary.render()), what="live preview")
        screen.query_one("#where", Input).value = "concept:2_alice"
        await wait_until(pilot, lambda: "3 caption(s) would change" in str(summary.render()), what="scoped")
        assert all((dataset / "2_alice" / f"a{i}.txt").read_text().count("hat") <= 1 for i in range(3))
        await pilot.press("ctrl+s")
        await pilot.pause()
        text = (workspace / "lorakit.toml").read_text()
        assert tomllib.loads(text)["clean"] == {"remove": ["hat", "smile"]}
        assert "# tags I never want" in text and "# my workspace, commented by hand" in text
        assert "[concept]" in text and "# the base model" in text
        assert text.replace('remove = ["hat", "smile"]', 'remove = ["hat"]') == COMMENTED

        await pilot.press("ctrl+r")
        await settle(pilot)
        assert (dataset / "2_alice" / "a1.txt").read_text() == "alice, 1girl"
        assert (dataset / "1_bob" / "b0.txt").read_text() == "bob, 1boy, hat"  # outside --where
        assert Journal(dataset).history()[-1].command == "clean --where concept:2_alice"


async def test_bracketed_names_in_problems_and_notifications_are_text(workspace: Path):
    """A file named `[red]x[bold].png` (shared datasets have them) is shown in the problems table and
    the problem line as written, and a notification quoting a tag `a[/b]c` draws: Textual reads
    strings as markup (`[red]x` showed as a red `x`; `[/b]` raised MarkupError while drawing)."""
    name = "[red]x[bold].png"
    (workspace / "dataset" / "1_bob" / name).write_bytes(b"not an image at all")
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "6", ValidateScreen)
        await wait_until(pilot, lambda: screen.report is not None and not screen.running, what="validation on open")
        problems = screen.query_one("#problems", DataTable)
        paths = [problems.get_row_at(i)[2] for i in range(problems.row_count)]
        assert f"1_bob/{name}" in paths
        problems.focus()
        problems.move_cursor(row=paths.index(f"1_bob/{name}"))
        await settle(pilot)
        shown = "\n".join(strip.text for strip in problems.render_lines(problems.region.reset_offset))
        assert f"1_bob/{name}" in shown
        detail = screen.query_one("#problem-detail", Static)
        assert f"1_bob/{name}" in "".join(strip.text for strip in detail.render_lines(detail.region.reset_offset))
        app.notify("cannot use the tag a[/b]c")
        await pilot.press("enter")  # the file: a note in the preview pane, not a crash
        await settle(pilot)
        assert app.is_running
    assert app.return_code in (0, None)


async def test_header_recounts_after_a_validate_when_files_came(workspace: Path, monkeypatch):
    """Validating writes nothing, so it forces no recount, but files added meanwhile show in the
    header once it ends (not only at the next poll, switched off here)."""
    from tests.conftest import write_caption, write_image

    monkeypatch.setattr("tui.app.SUMMARY_POLL_SECONDS", 3600.0)
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "6", ValidateScreen)
        await wait_until(pilot, lambda: screen.report is not None and not screen.running, what="validation on open")
        await wait_until(pilot, lambda: "6 images" in app.screen.sub_title, what="the first count")
        write_image(workspace / "dataset" / "2_alice" / "a9.png", (96, 80), (1, 2, 3))
        write_caption(workspace / "dataset" / "2_alice" / "a9.txt", "alice, new")
        report = screen.report
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.report is not report and not screen.running, what="the validate")
        await wait_until(pilot, lambda: "7 images" in app.screen.sub_title, what="the header's recount")
