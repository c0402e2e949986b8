"""prep.errors.first_line: the one way a library's exception becomes part of a one-line message."""

from __future__ import annotations

from prep.errors import first_line


def test_first_line_of_a_multi_line_message():
    assert first_line(ValueError("\n  bad header  \nat offset 12\n")) == "bad header"


def test_an_empty_message_gives_the_class_name():
    assert first_line(RuntimeError()) == "RuntimeError"
    assert first_line(RuntimeError("   \n ")) == "RuntimeError"


def test_limit_cuts_the_line():
    assert first_line(OSError("x" * 500), 120) == "x" * 120
