"""Dataset screen: concepts and problems come from a real `validate` run on real files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, ProgressBar, Static

from prep.validate import ValidateOptions, validate
from tests.conftest import write_image
from tests.tui.conftest import wait_until
from tui.app import make_app
from tui.messages import StageFinished
from tui.screens.dataset import DatasetScreen

pytestmark = pytest.mark.asyncio


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def validated(pilot) -> DatasetScreen:
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, DatasetScreen)
    return screen


async def test_concepts_and_problems_match_the_validate_report(workspace: Path):
    # [train] sets no epochs: the screen counts the trainer's default 10, the steps training will run.
    expected = validate(workspace / "dataset", ValidateOptions(reg=workspace / "reg", epochs=10))
    messages = []
    app = make_app(workspace)
    async with app.run_test(size=(140, 40), message_hook=messages.append) as pilot:
        screen = await validated(pilot)
        concepts = rows(screen.query_one("#concepts", DataTable))
        # folder, repeats, images, captioned, share: 2_alice weighs 2*3=6 of 6+1*3=9
        assert concepts == [["1_bob", "1", "3", "2", "33%"], ["2_alice", "2", "3", "3", "67%"]]
        problems = screen.query_one("#problems", DataTable)
        assert problems.row_count == len(expected.problems) > 0
        shown = rows(problems)
        assert [(r[0], r[1], r[2]) for r in shown] == [(p.severity, p.code, p.path) for p in expected.problems]
        assert ("warning", "missing-caption") in {(r[0], r[1]) for r in shown}
        assert ("warning", "has-alpha", "1_bob/b2.png") in {(r[0], r[1], r[2]) for r in shown}
        bar = screen.query_one("#validate-progress", ProgressBar)
        assert bar.total == 6 and bar.progress == 6
        problems.focus()
        await pilot.press("down")
        second = expected.problems[1]
        assert str(screen.query_one("#problem-detail", Static).render()) == f"{second.path}: {second.message}"
        summary = str(screen.query_one("#dataset-summary", Static).render())
        assert "6 images, 5 captioned" in summary
        # The hook sees a message when posted and when handled: count distinct ones.
        finished = list({id(m): m for m in messages if isinstance(m, StageFinished) and m.group == "validate"}
                        .values())
        assert len(finished) == 1 and finished[0].summary.to_dict() == expected.to_dict()


async def test_revalidate_after_fixing_the_dataset(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await validated(pilot)
        codes = {row[1] for row in rows(screen.query_one("#problems", DataTable))}
        assert "stray-image" not in codes
        write_image(workspace / "dataset" / "loose.png", (96, 96))
        (workspace / "dataset" / "1_bob" / "b2.png").unlink()
        (workspace / "dataset" / "1_bob" / "b2.txt").unlink()
        await pilot.press("v")
        screen = await validated(pilot)
        shown = rows(screen.query_one("#problems", DataTable))
        assert ("error", "stray-image", "loose.png") in {(r[0], r[1], r[2]) for r in shown}
        assert "has-alpha" not in {r[1] for r in shown}
        assert rows(screen.query_one("#concepts", DataTable))[0][:3] == ["1_bob", "1", "2"]
        assert "error(s) to fix before training" in str(screen.query_one("#dataset-summary", Static).render())


async def test_missing_dataset_folder_is_one_clear_line(workspace: Path):
    shutil.rmtree(workspace / "dataset")
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await validated(pilot)
        summary = str(screen.query_one("#dataset-summary", Static).render())
        assert "not a folder" in summary and str(workspace / "dataset") in summary
        assert screen.query_one("#problems", DataTable).row_count == 0


async def test_deep_validate_finds_a_truncated_image(workspace: Path):
    image = workspace / "dataset" / "2_alice" / "a0.png"
    image.write_bytes(image.read_bytes()[:-40])  # header intact, pixel data cut short
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        await validated(pilot)
        await pilot.press("d")
        screen = await validated(pilot)
        await wait_until(pilot, lambda: screen.query_one("#problems", DataTable).row_count > 0)
        found = {(r[1], r[2]) for r in rows(screen.query_one("#problems", DataTable))}
        assert ("corrupt-image", "2_alice/a0.png") in found


async def test_a_long_problem_list_is_capped_errors_first(workspace: Path, monkeypatch):
    monkeypatch.setattr(DatasetScreen, "MAX_ROWS", 3)
    write_image(workspace / "dataset" / "stray.png", (96, 96))  # one error among many warnings
    # [train] sets no epochs: the screen counts the trainer's default 10, the steps training will run.
    expected = validate(workspace / "dataset", ValidateOptions(reg=workspace / "reg", epochs=10))
    assert len(expected.problems) > 3 and len(expected.errors) == 1
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await validated(pilot)
        shown = rows(screen.query_one("#problems", DataTable))
        assert len(shown) == 3 and (shown[0][0], shown[0][1]) == ("error", "stray-image")
        assert [r[2] for r in shown[1:]] == [p.path for p in expected.warnings[:2]]
        summary = str(screen.query_one("#dataset-summary", Static).render())
        assert f"showing 3 of {len(expected.problems)} problems" in summary
