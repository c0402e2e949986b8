"""Byte-identical files: grouped by size first, so only files sharing a size are ever hashed."""

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


def find_duplicates(files: Iterable[tuple[int, str, int]]) -> Iterator[tuple[int, int]]:
    """For (key, path, size) in order, yield (key of a copy, key of the first file with its bytes)."""
    by_size: dict[int, list[tuple[int, str]]] = {}
    for key, path, size in files:
        by_size.setdefault(size, []).append((key, path))
    copies: list[tuple[int, int]] = []
    for group in by_size.values():
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
