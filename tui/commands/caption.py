"""`lorakit caption`: sentence-style captions from an image-to-text model (transformers)."""

from __future__ import annotations

import argparse
from pathlib import Path

from prep.config import add_arguments, load_options
from tagger.captioner import CaptionConfig
from tui.output import drive, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "caption", help="write natural-language captions with an image-to-text model (BLIP, GIT, Florence-2...)",
        description="Write a sentence-style caption per image of a dataset or a bare folder with an "
                    "image-to-text model loaded through transformers (a hub repo id, cached once, or a "
                    "folder saved with save_pretrained). Images that already have a caption are skipped "
                    "unless --mode or --append-to-tags says otherwise; lorakit undo DATASET reverts a run. "
                    "Options also come from [caption] in lorakit.toml.")
    parser.add_argument("dataset", type=Path, metavar="DATASET", help="dataset or folder of images")
    add_arguments(parser, CaptionConfig)
    parser.add_argument("--dry-run", action="store_true", help="print what would be written, change nothing")
    parser.add_argument("--json", action="store_true",
                        help='print {"images", "written", "skipped", "results": [...]} as JSON')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_options(CaptionConfig, "caption", args, dataset=args.dataset, path_or_id=("model",))

    from tagger.captioner import caption_dataset

    events = caption_dataset(args.dataset, config, dry_run=args.dry_run, collect=args.json or args.dry_run)
    summary = drive(events, label="captioning", quiet=args.json)
    if args.json:
        print_json(summary.to_dict())
        return 0
    if args.dry_run:
        for result in summary.results:
            if result.caption is not None:
                print(f"{result.path}: {result.caption}")
    done = f"{summary.would_write} would be written" if args.dry_run else f"{summary.written} written"
    failed = f", {summary.failed} unreadable" if summary.failed else ""
    on = f" on {summary.device}" if summary.device else ""
    print(f"captioned {summary.images} image(s) with {summary.model}{on}: {done}, {summary.skipped} skipped"
          f"{failed}, {summary.unchanged} unchanged ({summary.seconds:.1f} s)")
    return 0
