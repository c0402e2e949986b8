"""Keys typed while `lorakit ui` starts: read from a real pseudo-terminal, the terminal's answers
dropped, and pressed once the app shows its first screen."""

from __future__ import annotations

import os
import pty
import termios
from pathlib import Path

import pytest

from tests.tui.conftest import settle, wait_until
from tui.app import make_app
from tui.screens.edit import EditScreen
from tui.typeahead import pending_input, typed_keys


def test_pending_input_reads_what_was_typed_in_line_mode_and_restores_the_terminal():
    main, child = pty.openpty()
    try:
        before = termios.tcgetattr(child)
        assert before[3] & termios.ICANON  # a fresh terminal is in line mode, as a shell leaves it
        os.write(main, b"4q")  # typed before anyone reads: held by the line discipline
        assert pending_input(quiet=0.05, fd=child) == "4q"
        assert termios.tcgetattr(child) == before
        assert pending_input(fd=child) == ""  # nothing left
        os.write(main, b"\x1b[?62;4c")  # a late answer to a query
        assert pending_input(quiet=0.05, fd=child) == "\x1b[?62;4c"
    finally:
        os.close(main)
        os.close(child)


def test_typed_keys_drop_terminal_answers():
    answers = "\x1b[?62;4;22c\x1b_Gi=1;OK\x1b\\\x1b]11;rgb:0000/0000/0000\x07\x1b[8;36;120t\x1b[?2026;2$y"
    assert typed_keys("4" + answers + "e?") == "4e?"
    assert typed_keys("\x1b") == ""  # a lone escape is no key to replay
    assert typed_keys("") == ""


@pytest.mark.asyncio
async def test_keys_typed_ahead_are_pressed_once_the_app_is_up(workspace: Path):
    app = make_app(workspace, typed_ahead="4")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, EditScreen), what="the Edit screen (key 4)")
        await settle(pilot)
        assert app.typed_ahead == ""
        assert app.screen.title == "lorakit — Edit"
