"""Caption files: one line of comma-separated tags, UTF-8 (a BOM tolerated on read)."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable
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


# Characters that would break a caption's one line or forge output: C0/C1 controls, DEL, and the
# Unicode line and paragraph separators (str.splitlines breaks on those too).
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean_tag(tag: str) -> str:
    """A tag safe to write on the caption's one line: control characters become spaces, a comma
    inside the tag becomes a space (kohya splits captions on commas), whitespace collapsed."""
    if "," in tag or not tag.isprintable():
        tag = _UNSAFE.sub(" ", tag).replace(",", " ")
    return normalize_tag(tag)


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
    """Join tags into the one-line caption form (no trailing newline); a tag holding a control
    character or a comma is made one-line safe (clean_tag), and dropped when nothing is left."""
    tags = tags if isinstance(tags, list) else list(tags)
    text = TAG_SEPARATOR.join(tags)
    if text.isprintable() and text.count(",") == max(0, len(tags) - 1):  # one C pass in the common case
        return text
    return TAG_SEPARATOR.join(t for t in map(clean_tag, tags) if t)


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


def unique_tags(tags: Iterable[str], key: Callable[[str], str] = tag_key, *,
                present: Iterable[str] = ()) -> list[str]:
    """The first spelling of each tag, in order: later tags with the same `key` (and tags whose key
    is one of `present`'s) are repeats and dropped."""
    seen = {key(tag) for tag in present}
    out: list[str] = []
    for tag in tags:
        k = key(tag)
        if k not in seen:
            seen.add(k)
            out.append(tag)
    return out
