"""`lorakit caption`: sentence-style captions from an image-to-text model (transformers)."""

from __future__ import annotations

import argparse
from pathlib import Path

from prep.config import add_arguments, load_options
from tagger.captioner import CaptionConfig
from tui.output import add_write_run_flags, drive, print_write_run


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
    add_write_run_flags(parser, '{"images", "written", "skipped", "results": [...]}')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_options(CaptionConfig, "caption", args, dataset=args.dataset, path_or_id=("model",))

    from tagger.captioner import caption_dataset

    events = caption_dataset(args.dataset, config, dry_run=args.dry_run, collect=args.json or args.dry_run)
    summary = drive(events, label="captioning", quiet=args.json)
    return print_write_run(summary, args, "captioned", f" on {summary.device}" if summary.device else "")
