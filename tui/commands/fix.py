"""`lorakit fix DATASET [fixes...]`: safe fixes for what `lorakit validate` reports, undoable in one step."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prep.config import add_arguments, load_options
from prep.fix.options import ALL_MAX_SIDE, FixOptions
from tui.output import add_follow_symlinks


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "fix", help="fix transparency, odd extensions, missing/empty/repeated captions, unsupported formats",
        description="Apply the chosen fixes (or --all) in one journaled operation; `lorakit undo DATASET` "
                    "restores every changed, renamed or removed file byte for byte. Originals of changed "
                    "images stay under DATASET/.lorakit/ until the journal entry is pruned. --all means every "
                    f"fix, with --alpha white and --max-side {ALL_MAX_SIDE} unless given.")
    parser.add_argument("dataset", type=Path, metavar="DATASET")
    add_follow_symlinks(parser)
    add_arguments(parser, FixOptions)
    parser.add_argument("--dry-run", action="store_true", help="print what would be fixed; change nothing")
    parser.add_argument("--json", action="store_true",
                        help='print {"fixed": {"code": n}, "files": [...]} as JSON')
    parser.set_defaults(func=run, _fix_parser=parser)


def run(args: argparse.Namespace) -> int:
    from prep.errors import DatasetNotFound
    from prep.fix import iter_fix
    from prep.validation.report import display_name
    from tui.output import drive, print_json

    if not args.dataset.is_dir():
        raise DatasetNotFound(f"{args.dataset}: not a folder; pass the dataset folder")
    options = load_options(FixOptions, "fix", args, dataset=args.dataset)
    if not options.any_selected():
        args._fix_parser.error("choose at least one fix (e.g. --alpha white, --missing-captions) or --all")
    report = drive(iter_fix(args.dataset, options, dry_run=args.dry_run))
    for path, reason in report.refused:
        print(f"lorakit: error: {display_name(path)}: not fixed: {display_name(reason)}", file=sys.stderr)
    if args.json:
        print_json(report.to_dict())
    else:
        verb = "would fix" if report.dry_run else "fixed"
        for path in report.files:
            print(f"{verb} {display_name(path)}")
        counts = ", ".join(f"{code} {n}" for code, n in sorted(report.fixed.items())) or "nothing to fix"
        print(f"{verb}: {counts}" + (f"; undo with: lorakit undo {args.dataset}" if report.operation else ""))
    return 1 if report.refused else 0
