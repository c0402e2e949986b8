"""Errors of the trainer package, written for a user: what is wrong, which file, what to do."""

from prep.errors import UserError


class TrainError(UserError):
    """A training run cannot start or continue because of its config, data or model."""


class LoRAFileError(TrainError):
    """A LoRA file cannot be read, or is not a kohya LoRA."""


class TrainingDiverged(TrainError):
    """The loss became NaN or infinite."""
