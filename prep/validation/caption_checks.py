"""Caption checks for one concept folder: pairing with images, encoding, emptiness, tags, tokens."""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field

from prep.captions import CaptionEncodingError, decode_caption_bytes, format_caption
from prep.clip_tokens import MAX_TOKEN_LENGTHS, count_tokens, recommended_max_token_length
from prep.folder_scan import FolderScan, suffix_of
from prep.validation.caption_rules import CaptionRules
from prep.validation.report import ERROR, WARNING, Problem, display_name, problem

MAX_CAPTION_BYTES = 1 << 20  # a caption this big is not a caption; don't read gigabytes to say so
HARD_TOKEN_LIMIT = MAX_TOKEN_LENGTHS[-1]
_READ_CHUNK = 65536
# Whitespace other than a single space: only then must each tag's inner whitespace be folded.
_OTHER_WHITESPACE = re.compile(r"[^\S ]")
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def stem_of(name: str) -> str:
    suffix = suffix_of(name)
    return name[: len(name) - len(suffix)] if suffix else name


def read_small_file(path: str, limit: int = MAX_CAPTION_BYTES) -> bytes:
    """The file's bytes (at most limit + 1 of them), usually with one open and one read."""
    fd = os.open(path, _READ_FLAGS)
    try:
        chunk = os.read(fd, _READ_CHUNK)
        if len(chunk) < _READ_CHUNK:  # a short read of a regular file is its end: no second call
            return chunk
        chunks = [chunk]
        remaining = limit + 1 - len(chunk)
        while remaining > 0:
            chunk = os.read(fd, min(remaining, _READ_CHUNK))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def caption_tags(text: str) -> list[str]:
    """prep.captions.parse_caption, faster: no regex per tag (str.split/strip fold the same whitespace)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.strip()
    if "  " in text or _OTHER_WHITESPACE.search(text):
        return [tag for tag in (" ".join(raw.split()) for raw in text.split(",")) if tag]
    return [tag for tag in map(str.strip, text.split(",")) if tag]


@dataclass
class CaptionStats:
    """What the caption pass counts across folders."""

    longest_tokens: int = 0
    token_cache: dict[str, int] = field(default_factory=dict)

    def tokens(self, text: str) -> int:
        count = self.token_cache.get(text)
        if count is None:
            count = count_tokens(text)
            self.token_cache[text] = count
        return count


def check_folder_captions(scan: FolderScan, concept_name: str, caption_extension: str,
                          max_token_length: int | None, stats: CaptionStats,
                          rules: CaptionRules | None = None) -> tuple[int, list[Problem]]:
    """Check every image's caption in a concept folder; returns (captioned images, problems).

    rules, when given, also checks each caption's content (contradictions, trigger, duplicates)."""
    problems: list[Problem] = []
    caption_names = set(scan.captions)
    unreadable_names = {name for name, _reason in scan.unreadable}
    by_stem: dict[str, list[str]] = {}
    for name in scan.images:
        by_stem.setdefault(stem_of(name), []).append(name)
    captioned = 0
    for stem, images in by_stem.items():
        caption = stem + caption_extension
        caption_rel = scan.rel_of(caption)
        if len(images) > 1:
            problems.append(problem(
                "ambiguous-caption", caption_rel,
                f"{' and '.join(images)} share the stem {stem!r}, so both train with {caption}; "
                "rename all but one"))
        long_rel = caption_rel
        if caption in caption_names:
            captioned += len(images)
            tokens = _check_caption_file(scan, caption, problems, stats, rules)
        elif caption in unreadable_names:
            tokens = 0  # reported as unreadable with the folder listing
        else:
            long_rel = scan.rel_of(images[0])  # the concept name is its caption
            for image in images:
                problems.append(problem(
                    "missing-caption", scan.rel_of(image),
                    f"no caption file {caption}; it trains with the concept name {concept_name!r} "
                    "as its caption"))
            tokens = stats.tokens(format_caption([display_name(concept_name)]))
        if tokens > stats.longest_tokens:
            stats.longest_tokens = tokens
        if tokens > HARD_TOKEN_LIMIT:
            problems.append(problem(
                "caption-too-long", long_rel,
                f"{tokens} CLIP tokens; nothing trains more than {HARD_TOKEN_LIMIT}: shorten the caption",
                ERROR))
        elif max_token_length is not None and tokens > max_token_length:
            problems.append(problem(
                "caption-too-long", long_rel,
                f"{tokens} CLIP tokens, over --max-token-length {max_token_length}: the rest is cut off "
                f"in training (use --max-token-length {recommended_max_token_length(tokens)} or shorten it)",
                WARNING))
    claimed = {stem + caption_extension for stem in by_stem}
    lowered = {name.lower(): name for name in claimed}
    unsupported_stems = {stem_of(name) for name in scan.unsupported}
    for name in scan.captions:
        if name in claimed or stem_of(name) in unsupported_stems:
            continue
        hint = ""
        if name.lower() in lowered:
            hint = f" (kohya looks for {lowered[name.lower()]}; names are case-sensitive)"
        problems.append(problem("orphan-caption", scan.rel_of(name),
                                f"no image with the stem {stem_of(name)!r} uses this caption{hint}"))
    return captioned, problems


def _check_caption_file(scan: FolderScan, caption: str, problems: list[Problem],
                        stats: CaptionStats, rules: CaptionRules | None) -> int:
    """Read and check one caption file; returns its token count."""
    rel = scan.rel_of(caption)
    try:
        data = read_small_file(scan.path_of(caption))
    except OSError as exc:
        problems.append(problem("unreadable", rel, f"cannot read the caption: {exc.strerror or exc}"))
        return 0
    if len(data) > MAX_CAPTION_BYTES:
        problems.append(problem("caption-too-long", rel,
                                f"over {MAX_CAPTION_BYTES:,} bytes; a caption is one line of tags", ERROR))
        return 0
    try:
        text = decode_caption_bytes(data)
    except CaptionEncodingError:
        problems.append(problem("caption-encoding", rel,
                                f"not valid UTF-8 (first bad byte at {_bad_byte(data)}); re-save it as UTF-8"))
        return 0
    tags = caption_tags(text)
    if not tags:
        problems.append(problem("empty-caption", rel,
                                "holds no tag; write tags in it or delete it to train with the concept name"))
        return 0
    if len(set(tags)) < len(tags):
        counts = Counter(tags)
        repeated = ", ".join(tag for tag, n in counts.items() if n > 1)
        problems.append(problem("duplicate-tag", rel, f"holds the same tag more than once: {repeated}"))
    if rules is not None:
        problems.extend(rules.check(rel, data, tags))
    return stats.tokens(format_caption(tags))


def _bad_byte(data: bytes) -> int:
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        return start + exc.start
    return 0
