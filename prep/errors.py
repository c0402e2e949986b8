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
