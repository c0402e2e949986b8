"""Atomic file writes: a temp file in the same folder, then os.replace; and an atomic swap of two paths."""

from __future__ import annotations

import ctypes
import errno
import hashlib
import itertools
import os
import stat
import sys

_TEMP_SEQ = itertools.count()
READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def write_new_file(path: str | os.PathLike[str], data: bytes, mode: int | None = None, *,
                   fsync: bool = False) -> None:
    """Create path (FileExistsError if it exists) holding data; `mode` None: 0o666 less the umask."""
    fd = os.open(path, _CREATE_FLAGS, 0o666)
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
        os.chmod(path, mode)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = False) -> None:
    """Write data to path so that readers (and a kill) see either the old or the new bytes, never half."""
    # Plain os calls, not tempfile/fdopen: bulk caption edits write thousands of small files.
    target = os.fspath(path)
    folder, name = os.path.split(target)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        mode: int | None = None  # a new file: 0o666 less the umask, as open() would make it
    else:
        if stat.S_ISDIR(st.st_mode):  # say so about the path asked for, not the temp file
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)
        mode = st.st_mode & 0o7777
    while True:
        tmp = os.path.join(folder, f".{name}.{os.getpid()}-{next(_TEMP_SEQ)}.lorakit-tmp")
        try:
            write_new_file(tmp, data, mode, fsync=fsync)
            break
        except FileExistsError:
            continue  # not ours: try the next name
        except BaseException:
            _discard(tmp)
            raise
    try:
        os.replace(tmp, target)
    except BaseException:
        _discard(tmp)
        raise


def _discard(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = False) -> None:
    """Write UTF-8 text atomically (no BOM, no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


_RENAME_EXCHANGE = 2  # linux/fs.h
# Failures meaning "this system or file system cannot swap these two paths", not "a path is wrong".
_NO_EXCHANGE = {errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP}
_renameat2: object = None  # resolved on first use: the libc function, or False where there is none


def _load_renameat2():
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(None, use_errno=True).renameat2  # glibc >= 2.28, musl >= 1.2.5
            except (OSError, AttributeError):
                pass
            else:
                fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                fn.restype = ctypes.c_int
                _renameat2 = fn
    return _renameat2


def exchange(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Atomically swap what two paths name (Linux renameat2 RENAME_EXCHANGE); both must exist.

    Returns False, changing nothing, where the swap is not available: another OS, an old kernel or
    libc, a file system without it, or paths on two file systems. Raises OSError otherwise (a
    missing path, no permission). Unlike os.replace over an existing file, a swap does not make
    ext4 start writing the new file's data out at once (its replace-by-rename heuristic), which
    makes it several times cheaper for many small files.
    """
    fn = _load_renameat2()
    if not fn or os.environ.get("LORAKIT_NO_SWAP"):  # set: behave as on NFS/FUSE/CIFS (the portable path)
        return False
    at_cwd = -100  # AT_FDCWD
    if fn(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:  # type: ignore[operator]
        return True
    code = ctypes.get_errno()
    if code in _NO_EXCHANGE:
        return False
    raise OSError(code, os.strerror(code), os.fspath(a), None, os.fspath(b))


def current_umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    current = os.umask(0)
    os.umask(current)
    return current


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes, read in 1 MiB blocks (`algorithm` as hashlib names it).

    Opened non-blocking, so a FIFO planted in a dataset reads as empty instead of hanging the run.
    """
    digest = hashlib.new(algorithm)
    fd = os.open(path, READ_FLAGS | getattr(os, "O_NONBLOCK", 0))
    try:
        while block := os.read(fd, 1 << 20):
            digest.update(block)
    finally:
        os.close(fd)
    return digest.hexdigest()
