"""The Edit screen's `:` command line: the `lorakit tags` edit ops, shell-quoted (no Textual here).

    add TAG… [--front]      remove TAG…      replace OLD NEW      move-front TAG…
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from prep.errors import UserError
from prep.tag_edit import EditSpec, add_edit, move_front_edit, remove_edit, replace_edit

OPS = ("add", "remove", "replace", "move-front")
USAGE = "add TAG… [--front] | remove TAG… | replace OLD NEW | move-front TAG…"


class CommandLineError(UserError):
    """A `:` line that is no tags op."""


@dataclass
class EditCommand:
    op: str
    args: list[str]
    spec: EditSpec

    def command(self, where: str = "") -> str:
        """As the journal's history shows it (the same words as `lorakit tags`)."""
        text = "tags " + shlex.join([self.op, *self.args])
        return f"{text} --where {shlex.quote(where)}" if where.strip() else text


def parse_command(text: str) -> EditCommand:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CommandLineError(f"cannot read {text!r}: {exc}") from None
    if not words:
        raise CommandLineError(f"type an op: {USAGE}")
    op, args = words[0], words[1:]
    if op not in OPS:
        raise CommandLineError(f"unknown op {op!r}; the ops are {USAGE}")
    if op == "add":
        front = "--front" in args
        tags = [a for a in args if a != "--front"]
        if not tags:
            raise CommandLineError("add needs at least one TAG")
        return EditCommand(op, args, add_edit(tags, front=front))
    if any(a.startswith("--") for a in args):
        raise CommandLineError(f"{op} takes no options here (the filter is the --where)")
    if op == "replace":
        if len(args) != 2:
            raise CommandLineError('replace needs OLD and NEW (quote tags with spaces: replace "red hair" crimson)')
        return EditCommand(op, args, replace_edit(args[0], args[1]))
    if not args:
        raise CommandLineError(f"{op} needs at least one TAG")
    return EditCommand(op, args, remove_edit(args) if op == "remove" else move_front_edit(args))
