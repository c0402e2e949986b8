"""Keys typed before the app owns the terminal: kept, and kept apart from the terminal's answers.

`lorakit ui` takes a second or two to start. Before Textual reads the terminal, textual-image asks
it what it can draw (escape-sequence queries, answered on stdin). A key typed during the start
sat in front of those answers: textual-image read the key as a bad answer, and Textual then read
the real answer (`ESC [ ? 6 2 ; 4 c`) as keys, so an early `4` opened the key help and switched
screens. Now the input pending before the queries is read away (its answers dropped) and its keys
are pressed once the app shows its first screen; what is pending after the queries is dropped
(answers, or their tails when a key typed during the queries, a fraction of a second, cut
textual-image's reading short; that key is lost).
"""

from __future__ import annotations

import os
import re
import sys
import time

# Terminal answers: CSI (`ESC [ ... final`), and the string forms (APC `ESC _`, DCS `ESC P`,
# OSC `ESC ]`) up to their terminator.
_ANSWER = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[_P][^\x1b]*\x1b\\|\][^\x07\x1b]*(?:\x07|\x1b\\))")


def pending_input(quiet: float = 0.0, most: float = 0.5, fd: int | None = None) -> str:
    """What waits on the terminal's input now (keys typed ahead, late answers), read without echo
    until `quiet` seconds pass with nothing new (at most `most` seconds in all). Empty when stdin
    is no terminal or cannot be read. `fd`: the terminal (default: stdin)."""
    try:
        import select
        import termios
        import tty

        if fd is None:
            stdin = sys.__stdin__
            if stdin is None or not stdin.isatty():
                return ""
            fd = stdin.fileno()
        before = termios.tcgetattr(fd)
    except (ImportError, OSError, ValueError):  # no termios (Windows), or a closed stdin
        return ""
    chunks: list[bytes] = []
    deadline = time.monotonic() + most
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        while time.monotonic() < deadline and select.select([fd], [], [], quiet)[0]:
            data = os.read(fd, 4096)
            if not data:
                break
            chunks.append(data)
    except (OSError, termios.error):
        pass
    finally:
        try:
            termios.tcsetattr(fd, termios.TCSANOW, before)
        except termios.error:
            pass
    return b"".join(chunks).decode("utf-8", errors="replace")


def typed_keys(text: str) -> str:
    """The printable characters the person typed in `text`, once the terminal's answers (and a
    lone escape) are taken out."""
    return "".join(char for char in _ANSWER.sub("", text) if char.isprintable())
