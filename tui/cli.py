"""The `lorakit` command: discovers the command modules in tui/commands and maps errors to exits."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from prep import __version__
from prep.dataset import FOLLOW_SYMLINKS
from prep.errors import UserError, describe_os_error
from prep.safe_text import printable
from tui.output import SafeStdout

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


# Commands whose module is not named after them (the rest: `concept-words` -> concept_words.py).
COMMAND_MODULES = {"undo": "journal", "history": "journal"}


def command_modules() -> list[str]:
    import tui.commands as commands

    return sorted(m.name for m in pkgutil.iter_modules(commands.__path__) if not m.name.startswith("_"))


def module_of(command: str) -> str:
    return COMMAND_MODULES.get(command, command.replace("-", "_"))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole `lorakit` parser, or (`only`) one with just that command module registered: a
    command imports only its own stage, so `lorakit train`'s config error or `lorakit tag --help`
    does not pay for every other stage's imports (numpy, the tagger, validate)."""
    parser = argparse.ArgumentParser(
        prog="lorakit",
        description="From a booru tag query or a folder of images to a trained Stable Diffusion LoRA.",
    )
    parser.add_argument("--version", action="version", version=f"lorakit {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name in [only] if only else command_modules():
        module = importlib.import_module(f"tui.commands.{name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
    return parser


def _parser_for(argv: Sequence[str]) -> argparse.ArgumentParser:
    if argv and not argv[0].startswith("-") and module_of(argv[0]) in command_modules():
        return build_parser(module_of(argv[0]))
    return build_parser()  # --help, --version, a mistyped command: argparse lists every command


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser_for(argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return EXIT_USAGE
    follow = FOLLOW_SYMLINKS.set(bool(getattr(args, "follow_symlinks", False)))
    stdout = sys.stdout
    if args.command != "ui":  # the TUI writes its own escape sequences
        sys.stdout = SafeStdout(stdout)  # type: ignore[assignment]
    try:
        return _run(func, args)
    finally:
        FOLLOW_SYMLINKS.reset(follow)
        if isinstance(sys.stdout, SafeStdout):
            sys.stdout = stdout


def _run(func, args: argparse.Namespace) -> int:
    try:
        code = func(args)
    except UserError as exc:
        if os.environ.get("LORAKIT_DEBUG") and isinstance(exc.__cause__, OSError):
            raise  # the OSError behind this one line, with its traceback
        print(f"lorakit: error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lorakit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except OSError as exc:
        # A file the user can fix (permissions, a full disk, a folder where a file belongs): one
        # line. Real bugs keep their traceback; LORAKIT_DEBUG=1 shows it for these too.
        if os.environ.get("LORAKIT_DEBUG"):
            raise
        print(f"lorakit: error: {describe_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK if code is None else int(code)


if __name__ == "__main__":
    raise SystemExit(main())
