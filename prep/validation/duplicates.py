"""Byte-identical files: grouped by size and first bytes, so only likely copies are ever hashed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def file_digest(path: str) -> bytes | None:
    """BLAKE2b of the file's bytes; None when it cannot be read (reported elsewhere)."""
    digest = hashlib.blake2b(digest_size=20)
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            digest.update(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return digest.digest()


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
        first_by_digest: dict[bytes, int] = {}
        for key, path in group:
            digest = file_digest(path)
            if digest is None:
                continue
            first = first_by_digest.setdefault(digest, key)
            if first != key:
                copies.append((key, first))
    yield from sorted(copies)
