"""Atomic file writes: a temp file in the same folder, then os.replace."""

from __future__ import annotations

import itertools
import os

_TEMP_SEQ = itertools.count()
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Write data to path so that readers (and a kill) see either the old or the new bytes, never half."""
    # Plain os calls, not tempfile/fdopen: bulk caption edits write thousands of small files.
    target = os.fspath(path)
    folder, name = os.path.split(target)
    try:
        mode: int | None = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mode = None  # a new file: 0o666 less the umask, as open() would make it
    while True:
        tmp = os.path.join(folder, f".{name}.{os.getpid()}-{next(_TEMP_SEQ)}.lorakit-tmp")
        try:
            fd = os.open(tmp, _CREATE_FLAGS, 0o666)
            break
        except FileExistsError:
            continue
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if mode is not None and hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None and not hasattr(os, "fchmod"):
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = False) -> None:
    """Write UTF-8 text atomically (no BOM, no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


_UMASK: int | None = None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        current = os.umask(0)
        os.umask(current)
        _UMASK = current
    return _UMASK


def is_temp_file(name: str) -> bool:
    """True for leftovers of an interrupted atomic write."""
    return name.startswith(".") and name.endswith(".lorakit-tmp")
