"""`lorakit dedupe DATASET`: find near-duplicate images and, with --apply, move all but one to the trash."""

from __future__ import annotations

import argparse
from pathlib import Path

from prep.config import add_arguments, load_options
from prep.dedupe import DedupeOptions
from tui.output import add_follow_symlinks


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "dedupe", help="find near-duplicate images (perceptual hash or CLIP) and trash all but one",
        description="Group near-duplicate images (resized, re-encoded, lightly cropped copies) and keep one "
                    "image per group. Without --apply nothing changes and the groups are printed; with "
                    "--apply the others (and their captions) move to DATASET/.lorakit/trash/<operation>/ in "
                    "one journaled operation that `lorakit undo DATASET` reverts.")
    parser.add_argument("dataset", type=Path, metavar="DATASET")
    add_follow_symlinks(parser)
    add_arguments(parser, DedupeOptions)
    parser.add_argument("--apply", action="store_true",
                        help="move the dropped images and their captions to the trash (undo restores them)")
    parser.add_argument("--json", action="store_true",
                        help='print {"images": n, "groups": [{"keep", "drop", "score"}]} as JSON')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from prep.dedupe import apply_dedupe, find_duplicates
    from prep.errors import DatasetNotFound
    from prep.validation.report import display_name
    from tui.output import drive, print_json

    if not args.dataset.is_dir():
        raise DatasetNotFound(f"{args.dataset}: not a folder; pass the dataset folder")
    options = load_options(DedupeOptions, "dedupe", args, dataset=args.dataset)
    options.check()
    report = drive(find_duplicates(args.dataset, options))
    applied = None
    if args.apply and report.groups:
        applied = drive(apply_dedupe(report, options.caption_extension))
    if args.json:
        out = report.to_dict()
        if applied is not None:
            out["operation"] = applied.operation
            out["trash"] = applied.trash
        print_json(out)
        return 0
    for group in report.groups:
        print(f"keep {display_name(group.keep)}  (score {group.score:g})")
        for path in group.drop:
            print(f"  drop {display_name(path)}")
    dropped = report.dropped
    summary = (f"{report.images} image(s), {len(report.groups)} group(s) of near-duplicates, "
               f"{dropped} to drop")
    if applied is not None:
        captions = f" and {len(applied.captions)} caption(s)" if applied.captions else ""
        print(f"{summary}; moved {len(applied.images)} image(s){captions} to {applied.trash}/ "
              f"(undo with: lorakit undo {args.dataset})")
    elif dropped:
        print(f"{summary}; run again with --apply to move them to the trash")
    else:
        print(summary)
    return 0
