"""Shared CLI output: JSON printing, @file lists, and event streams drawn as progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from prep.errors import UserError
from prep.events import Advanced, Finished, Started, Warned
from prep.safe_text import printable, printable_lines

# Every path and value printed goes through `safe` (control characters escaped; prep/safe_text.py).
safe = printable
_RAW_IN_JSON = str.maketrans({c: f"\\u{c:04x}" for c in [0x7f, *range(0x80, 0xA0), 0x2028, 0x2029]})


class SafeStdout:
    """sys.stdout with control characters in what is written shown escaped (line breaks kept).

    The last line of defence for item values printed anywhere (post ids, tags, LoRA metadata):
    no ESC sequence or carriage return from a file can reach the terminal.
    """

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(printable_lines(text))

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def add_follow_symlinks(parser) -> None:
    """The `--follow-symlinks` flag of every writing command (tui/cli.py sets prep.dataset.FOLLOW_SYMLINKS)."""
    parser.add_argument("--follow-symlinks", action="store_true",
                        help="also change concept folders and images that are symbolic links leading outside "
                             "the dataset (default: skip them; validate lists them)")


def print_json(obj: Any) -> None:
    """Exactly one JSON object on stdout."""
    # json escapes C0 controls itself; DEL, C1 (0x9b is a one-byte CSI) and U+2028/9 it leaves raw.
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str).translate(_RAW_IN_JSON) + "\n")


def expand_at_files(values: Iterable[str] | None) -> list[str]:
    """Expand `@file` arguments into the file's non-empty lines (comments with # skipped)."""
    out: list[str] = []
    for value in values or []:
        if value.startswith("@") and len(value) > 1:
            path = Path(value[1:])
            try:
                text = path.read_text(encoding="utf-8-sig")
            except OSError as exc:
                raise UserError(f"{path}: cannot read list file ({exc.strerror})") from None
            except UnicodeDecodeError:
                raise UserError(f"{path}: list file is not UTF-8 text") from None
            out.extend(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
        else:
            out.append(value)
    return out


def drive(events: Iterable[Any], *, label: str = "", quiet: bool = False,
          on_warning=None) -> Any:
    """Consume a stage's events, drawing a progress bar on a terminal; return the Finished summary.

    Warnings go to stderr (or to on_warning); nothing is drawn when stderr is not a terminal or quiet.
    """
    show = not quiet and sys.stderr.isatty()
    summary = None
    progress = None
    task = None
    try:
        for event in _iter(events):
            if isinstance(event, Started):
                if show and progress is None:
                    from rich.progress import (
                        BarColumn,
                        MofNCompleteColumn,
                        Progress,
                        TextColumn,
                        TimeRemainingColumn,
                    )

                    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                        TimeRemainingColumn(), transient=True,
                                        console=_stderr_console())
                    progress.start()
                if progress is not None:
                    task = progress.add_task(label or event.stage, total=event.total)
            elif isinstance(event, Advanced):
                if progress is not None and task is not None:
                    progress.advance(task, event.n)
            elif isinstance(event, Warned):
                if on_warning is not None:
                    on_warning(event)
                elif not quiet:
                    where = f"{safe(event.path)}: " if event.path else ""
                    message = f"warning: {where}{safe(event.message)}"
                    if progress is not None:
                        progress.console.print(message, markup=False, highlight=False)
                    else:
                        print(message, file=sys.stderr)
            elif isinstance(event, Finished):
                summary = event.summary
    finally:
        if progress is not None:
            progress.stop()
    return summary


def _iter(events: Iterable[Any]) -> Iterator[Any]:
    yield from events


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def add_write_run_flags(parser, json_fields: str) -> None:
    """`--dry-run` and `--json` of the commands that write captions per image (tag, caption)."""
    parser.add_argument("--dry-run", action="store_true", help="print what would be written, change nothing")
    parser.add_argument("--json", action="store_true", help=f"print {json_fields} as JSON")


def print_write_run(summary: Any, args: Any, verb: str, detail: str) -> int:
    """The output of a tag or caption run: JSON, or (dry run) each caption then one summary line."""
    if args.json:
        print_json(summary.to_dict())
        return 0
    if args.dry_run:
        for result in summary.results:
            if result.caption is not None:
                print(f"{result.path}: {result.caption}")
    done = f"{summary.would_write} would be written" if args.dry_run else f"{summary.written} written"
    failed = f", {summary.failed} unreadable" if summary.failed else ""
    print(f"{verb} {summary.images} image(s) with {summary.model}{detail}: {done}, {summary.skipped} skipped"
          f"{failed}, {summary.unchanged} unchanged ({summary.seconds:.1f} s)")
    return 0
