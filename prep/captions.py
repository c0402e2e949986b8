"""Caption files: one line of comma-separated tags, UTF-8 (a BOM tolerated on read)."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable
from pathlib import Path

from prep.errors import PrepError
from prep.fsio import atomic_write_text

TAG_SEPARATOR = ", "

# Danbooru kaomoji tags whose underscores are part of the face, not word separators.
KAOMOJI: frozenset[str] = frozenset(
    "0_0 (o)_(o) +_+ +_- ._. <o>_<o> <|>_<|> =_= >_< 3_3 6_9 >_o @_@ ^_^ o_o u_u x_x |_| ||_||".split()
)

_WHITESPACE = re.compile(r"\s+")


class CaptionEncodingError(PrepError):
    """A caption file is not valid UTF-8."""


def normalize_tag(tag: str) -> str:
    """Trim a tag and collapse the whitespace inside it."""
    return _WHITESPACE.sub(" ", tag).strip()


def parse_caption(text: str) -> list[str]:
    """Split caption text into tags: trimmed, inner whitespace collapsed, empty tags dropped."""
    if text.startswith("\ufeff"):
        text = text[1:]
    tags = []
    for raw in text.split(","):
        tag = normalize_tag(raw)
        if tag:
            tags.append(tag)
    return tags


def format_caption(tags: Iterable[str]) -> str:
    """Join tags into the one-line caption form (no trailing newline)."""
    return TAG_SEPARATOR.join(tags)


def decode_caption_bytes(data: bytes, path: Path | str = "") -> str:
    """Decode caption bytes as UTF-8, tolerating a BOM; raise CaptionEncodingError otherwise."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaptionEncodingError(
            f"{path}: caption is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8"
        ) from None


def read_caption_text(path: Path) -> str:
    """The caption file's text (BOM stripped)."""
    return decode_caption_bytes(path.read_bytes(), path)


def read_caption(path: Path) -> list[str]:
    """The tags of a caption file."""
    return parse_caption(read_caption_text(path))


def write_caption(path: Path, tags: Iterable[str]) -> None:
    """Write tags to a caption file atomically."""
    atomic_write_text(path, format_caption(tags))


def underscores_to_spaces(tag: str) -> str:
    """Danbooru spelling to prompt spelling: `long_hair` -> `long hair`, kaomoji kept (`^_^`)."""
    if tag in KAOMOJI:
        return tag
    return tag.replace("_", " ").strip()


def unescape_parens(tag: str) -> str:
    r"""`\(` and `\)` to `(` and `)` (training reads captions raw)."""
    return tag.replace("\\(", "(").replace("\\)", ")")


def escape_parens(tag: str) -> str:
    r"""`(` and `)` to `\(` and `\)` for prompt-style output (A1111 reads bare parens as emphasis)."""
    return re.sub(r"(?<!\\)([()])", r"\\\1", tag)


def tag_key(tag: str) -> str:
    """A spelling-insensitive key: case, spaces and underscores folded (`Long_Hair` == `long hair`)."""
    if tag in KAOMOJI:
        return tag
    return _WHITESPACE.sub(" ", tag.replace("_", " ")).strip().lower()
