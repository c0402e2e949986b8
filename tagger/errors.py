"""Errors of the tagger stage, each written as one line for the user."""

from prep.errors import UserError


class TaggerError(UserError):
    """A tagging problem caused by the user's input: a model that cannot be found or used, a bad option."""


class ModelNotAvailable(TaggerError):
    """The model is neither in the local Hugging Face cache nor downloadable right now."""
