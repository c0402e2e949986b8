"""Exceptions whose message is written for a user: what is wrong, which file, what to do."""


class UserError(Exception):
    """Base of every error caused by user input; the CLI prints it as one line and exits 1.

    Every stage package derives its own base from this one (booru.errors.BooruError, ...).
    """

    exit_code = 1


class PrepError(UserError):
    """An error of the prep package (datasets, captions, journal)."""


class DatasetNotFound(PrepError):
    """The dataset path does not exist or is not a folder (the CLI exits 2 for it)."""

    exit_code = 2


class JournalError(PrepError):
    """The undo journal cannot be read or applied."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (at most `limit` characters), or its class name
    when the message is empty: a library's multi-line error folded into a one-line message."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    return text[:limit] if limit else text


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError a user can fix: the path, what is wrong, what to do."""
    import errno

    from prep.safe_text import printable

    path = printable(exc.filename) if exc.filename is not None else "a file"
    other = printable(exc.filename2) if getattr(exc, "filename2", None) is not None else None
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return f"no space left on {path}; nothing was lost, free space and run the command again"
    if code == errno.EXDEV:
        return (f"{path}: cannot be moved to {other or 'its destination'} on another file system; keep the "
                "dataset's folders on one file system (a folder symlinked elsewhere cannot be edited in place)")
    if isinstance(exc, PermissionError):
        return f"{path}: permission denied; make it writable (or readable) for you, or pass another path"
    if code == errno.EROFS:
        return f"{path}: the file system is read-only; copy the dataset somewhere writable"
    if isinstance(exc, IsADirectoryError):
        return f"{path}: is a folder where a file is expected; move the folder away or pass a file path"
    if isinstance(exc, NotADirectoryError):
        return f"{path}: a part of this path is a file, not a folder; check the path"
    if isinstance(exc, FileNotFoundError):
        return f"{path}: no such file or folder; check the path"
    if isinstance(exc, FileExistsError):
        return f"{path}: already exists; move it away or pass another path"
    reason = printable(exc.strerror or exc)
    return f"{path}: {reason}; check the path and try again"
