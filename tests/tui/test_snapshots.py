"""SVG snapshots of the Edit and Validate screens (half-cell images) at 120x36 and 80x24.

Update them only after looking at the report: `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tui.conftest import settle, wait_until
from tui.app import make_app


def run_before(key: str):
    async def before(pilot) -> None:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        preview = pilot.app.screen.query(".preview-image")
        if key == "4":
            await wait_until(pilot, lambda: pilot.app.screen.query_one("#edit-image").loaded is not None,
                             what="the preview")
        await wait_until(pilot, lambda: "validate:" in (pilot.app.screen.sub_title or "") and
                         "counting" not in pilot.app.screen.sub_title, what="the header")
        await settle(pilot)
        assert preview is not None

    return before


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
def test_edit_screen(snap_compare, workspace: Path, size):
    assert snap_compare(make_app(workspace), terminal_size=size, run_before=run_before("4"))


@pytest.mark.parametrize("size", [(120, 36), (80, 24)])
def test_validate_screen(snap_compare, workspace: Path, size):
    assert snap_compare(make_app(workspace), terminal_size=size, run_before=run_before("6"))
