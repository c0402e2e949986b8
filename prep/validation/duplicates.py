"""Byte-identical files: grouped by size and first bytes, so only likely copies are ever hashed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prep.fsio import file_digest


def _digest(path: str) -> str | None:
    """The file's BLAKE2b; None when it cannot be read (reported elsewhere)."""
    try:
        return file_digest(path, "blake2b")
    except OSError:
        return None


def find_duplicates(files: Iterable[tuple[int, str, int, int]]) -> Iterator[tuple[int, int]]:
    """Yield (key of a copy, key of the first file with the same bytes), in key order.

    Each file is (key, path, size, head_hash): files are grouped by size and a hash of their first
    bytes, and only groups of two or more are read in full.
    """
    groups: dict[tuple[int, int], list[tuple[int, str]]] = {}
    for key, path, size, head_hash in files:
        groups.setdefault((size, head_hash), []).append((key, path))
    copies: list[tuple[int, int]] = []
    for group in groups.values():
        if len(group) < 2:
            continue
        first_by_digest: dict[str, int] = {}
        for key, path in group:
            digest = _digest(path)
            if digest is None:
                continue
            first = first_by_digest.setdefault(digest, key)
            if first != key:
                copies.append((key, first))
    yield from sorted(copies)
