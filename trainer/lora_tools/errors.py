"""The LoRA tools' error base: one line for the user naming the file and what to do."""

from prep.errors import UserError


class LoraToolError(UserError):
    """A LoRA file, base model or option given to `lorakit lora ...` is unusable."""


class LoraUsageError(LoraToolError):
    """Options that do not fit together (the CLI exits 2, like argparse usage errors)."""

    exit_code = 2
