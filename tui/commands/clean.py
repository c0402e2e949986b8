"""`lorakit clean DATASET [rules]`: apply the caption cleaning rules (prep.clean) to every caption."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from prep.caption_set import EditReport
from prep.clean import CleanConfig, clean_dataset
from prep.config import add_arguments, load_options
from prep.errors import DatasetNotFound
from tui.output import add_follow_symlinks, expand_at_files, print_json

RULES = """rules run in this order: normalise; underscores to spaces (--keep-underscores); unescape
parentheses (--escape-parens); --replace; --remove; --canonical (aliases to their canonical name);
--remove-implied (the graph `lorakit implications fetch` stored, else the bundled table: a line says
which); --remove-redundant; deduplicate; --trigger and
--remove-name; --sort after --keep-tokens; --max-tags; --lowercase. Rules can also come from the
[clean] table of lorakit.toml (same names). Only captions whose text changes are written, as one
journal entry: `lorakit undo DATASET` reverts it."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("clean", help="clean every caption of a dataset (one undoable step)",
                                   description="Apply the cleaning rules to every caption file.", epilog=RULES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, metavar="DATASET")
    add_follow_symlinks(parser)
    add_arguments(parser, CleanConfig)
    parser.add_argument("--where", metavar="QUERY", default=None,
                        help="clean only the captions this QUERY selects (the `lorakit tags` query language), "
                             "e.g. --where concept:5_alice for one concept folder, or --where 'source:tagger, "
                             "confidence<0.4' for the captions with an unsure tagger tag")
    add_common_flags(parser)
    parser.set_defaults(func=run)


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show the changes without writing anything")
    parser.add_argument("--json", action="store_true",
                        help='print {"changed", "unchanged", "changes": [{"path", "before", "after"}]}')
    parser.add_argument("--caption-extension", default=".txt", metavar="EXT",
                        help="caption file extension (default: .txt)")


def load_config(args: argparse.Namespace) -> CleanConfig:
    """[clean] of lorakit.toml, then the flags; @FILE lists expanded."""
    if not args.dataset.is_dir():
        raise DatasetNotFound(f"{args.dataset}: not a folder; pass the dataset folder")
    config = load_options(CleanConfig, "clean", args, dataset=args.dataset, adapt=_replace_table)
    return dataclasses.replace(config, replace=expand_at_files(config.replace),
                               remove=expand_at_files(config.remove),
                               remove_name=expand_at_files(config.remove_name))


def _replace_table(table: dict, _folder: Path) -> dict:
    """`[clean.replace]` old = "new" (natural in TOML) as the flag's OLD=NEW list."""
    if isinstance(table.get("replace"), dict):
        table["replace"] = [f"{old.replace('=', chr(92) + '=')}={new}" for old, new in table["replace"].items()]
    return table


def run(args: argparse.Namespace) -> int:
    config = load_config(args)
    report = clean_dataset(args.dataset, config, dry_run=args.dry_run, caption_extension=args.caption_extension,
                           command=command_line("clean", args), where=args.where)
    print_report(report, args, verb="cleaned")
    return 0


def command_line(name: str, args: argparse.Namespace) -> str:
    """The command as history shows it (the process arguments after the program name)."""
    argv = sys.argv[1:] if sys.argv and sys.argv[0].endswith(("lorakit", "__main__.py", "tui")) else []
    return "lorakit " + shlex.join(argv) if argv else name


def print_report(report: EditReport, args: argparse.Namespace, *, verb: str) -> None:
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(report.to_dict())
        return
    root = args.dataset
    if args.dry_run:
        for change in report.changes:
            print(_relative(change.path, root))
            print(f"  - {change.before}")
            print(f"  + {change.after}")
        print(f"{report.changed} caption(s) would change, {report.unchanged} unchanged (dry run: nothing written)")
    else:
        print(f"{verb} {report.changed} caption(s), {report.unchanged} unchanged")


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
