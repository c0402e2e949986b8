"""`lorakit tag`: WD14 auto-tagging of a dataset or a bare folder of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prep.config import add_arguments, load_options
from tagger.config import TagConfig
from tagger.models import DEFAULT_MODEL, KNOWN_MODELS
from tui.output import (
    add_follow_symlinks,
    add_write_run_flags,
    drive,
    expand_at_files,
    print_json,
    print_write_run,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tag", help="auto-tag images with a WD14, cl_tagger, PixAI or Camie tagger (onnxruntime)",
        description="Write WD14 tags into the caption files of a dataset or a bare folder of images. "
                    f"The model is a hub repo id (default {DEFAULT_MODEL}, downloaded once) or a folder "
                    "holding model.onnx and selected_tags.csv (WD14), tag_mapping.json (cl_tagger), tags_*.json or a "
                    "thresholds.csv export (PixAI) or *-metadata.json (Camie) next to the ONNX model. Images that already have a caption are "
                    "skipped unless --mode says otherwise; lorakit undo DATASET reverts a run.",
    )
    parser.add_argument("dataset", type=Path, nargs="?", metavar="DATASET", help="dataset or folder of images")
    add_follow_symlinks(parser)
    add_arguments(parser, TagConfig)
    parser.add_argument("--exclude", nargs="+", action="extend", metavar="TAG", dest="exclude",
                        default=argparse.SUPPRESS, help="tags never written (@file reads one per line)")
    parser.add_argument("--always-first", nargs="+", action="extend", metavar="TAG", dest="always_first",
                        default=argparse.SUPPRESS,
                        help="tags moved to the front when predicted, in this order (@file reads one per line)")
    add_write_run_flags(parser, '{"images", "written", "skipped", "provider", "results": [...]}')
    parser.add_argument("--list-models", action="store_true", help="list the known models and their thresholds")
    parser.add_argument("--rethreshold", action="store_true",
                        help="re-apply --general-threshold/--character-threshold/--mcut to the confidences stored "
                             "by earlier runs (.lorakit/tags.sqlite) without loading a model; booru and user "
                             "tags stay")
    parser.add_argument("--ensemble", choices=("mean", "max"), default=None,
                        help="with --rethreshold: combine the stored confidences of every model run so far")
    parser.set_defaults(func=run)


def _list_models(as_json: bool) -> int:
    if as_json:
        print_json({"models": [
            {"repo": m.repo, "family": m.family, "general_threshold": m.general_threshold,
             "character_threshold": m.character_threshold, "default": m.repo == DEFAULT_MODEL}
            for m in KNOWN_MODELS
        ]})
        return 0
    width = max(len(m.repo) for m in KNOWN_MODELS)
    print(f"{'model':<{width}}  {'family':<9}  general  character")
    for m in KNOWN_MODELS:
        note = f"  ({m.note})" if m.note else ""
        print(f"{m.repo:<{width}}  {m.family:<9}  {m.general_threshold:<7.4f}  {m.character_threshold:<9.2f}"
              f"{note}".rstrip())
    print("wd14 general: the published precision=recall threshold (0.35 for other models); cl_tagger, pixai, "
          "camie: their reference code's defaults; a tag is kept when p > it")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.list_models:
        return _list_models(args.json)
    if args.dataset is None:
        print("lorakit tag: error: DATASET is required (or --list-models)", file=sys.stderr)
        return 2
    for name in ("exclude", "always_first"):
        if hasattr(args, name):
            setattr(args, name, expand_at_files(getattr(args, name)))
    config = load_options(TagConfig, "tagger", args, dataset=args.dataset, path_or_id=("model",))
    if args.rethreshold or args.ensemble:
        return _rethreshold(args, config)

    from tagger.run import tag_dataset

    events = tag_dataset(args.dataset, config, dry_run=args.dry_run, collect=args.json or args.dry_run)
    summary = drive(events, label="tagging")
    return print_write_run(summary, args, "tagged", f" on {summary.provider}")


def _rethreshold(args: argparse.Namespace, config: TagConfig) -> int:
    from tagger.rethreshold import rethreshold

    summary = drive(rethreshold(args.dataset, config, ensemble=args.ensemble, dry_run=args.dry_run,
                                collect=args.json), label="re-thresholding", quiet=args.json)
    if args.json:
        print_json(summary.to_dict())
        return 0
    done = f"{summary.would_write} would be written" if args.dry_run else f"{summary.written} written"
    print(f"re-thresholded {summary.images} image(s) from the stored confidences of {', '.join(summary.models)}: "
          f"{done}, {summary.skipped} skipped, {summary.unchanged} unchanged (no model loaded)")
    return 0
