"""Text that is safe to print: control characters in paths and values shown escaped.

A file name, post id, tag or LoRA metadata value can hold ESC, newlines or other control bytes;
printed raw they move the cursor, recolour the terminal or forge whole output lines (a fake
`validate` line). Every path and value lorakit prints goes through `printable`.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), and the Unicode line/paragraph
# separators and bidirectional overrides that reorder or break what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object) -> str:
    """str(value) with every control character written as an escape (\\x1b, \\n, \\u2028)."""
    text = value if isinstance(value, str) else str(value)
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(_escape, text)


_CONTROL_IN_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable_lines(text: str) -> str:
    """Like printable, but line breaks and tabs stay (output that is meant to span lines)."""
    if _CONTROL_IN_LINES.search(text) is None:
        return text
    return _CONTROL_IN_LINES.sub(_escape, text)
