"""`lorakit demo [DIR] [--tui] [--steps N] [--json]`: the whole pipeline offline, on demo models."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    from tui.demo_pipeline import DEFAULT_FOLDER, DEFAULT_STEPS

    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline offline on generated images and demo models (about 2 minutes on CPU)",
        description="Create a demo workspace in DIR with generated images of simple shapes in two concept "
                    "folders, build a tiny base model and a tiny WD14-signature tagger there (DEMO MODELS: "
                    "random weights, real formats; nothing is downloaded), then tag, clean, pick and apply a "
                    "concept word, validate, fix, train a LoRA and check it. DIR must be new, empty or an "
                    "earlier demo workspace (which is rebuilt).")
    parser.add_argument("dir", type=Path, nargs="?", default=DEFAULT_FOLDER, metavar="DIR",
                        help=f"the workspace folder (default: ./{DEFAULT_FOLDER})")
    parser.add_argument("--steps", type=_positive, default=DEFAULT_STEPS, metavar="N",
                        help=f"training steps (default: {DEFAULT_STEPS})")
    parser.add_argument("--tui", action="store_true", help="open `lorakit ui` on the finished workspace")
    parser.add_argument("--json", action="store_true",
                        help='print {"workspace", "base_model", "lora", "images", "steps", "stages": '
                             '[{"name", "seconds", "summary"}]} as JSON')
    parser.set_defaults(func=run)


def _progress(event: dict) -> None:
    if event.get("event") == "step" and sys.stderr.isatty():
        sys.stderr.write(f"\r  train: step {event.get('step')}  loss {event.get('loss', 0):.4f}".ljust(60))
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from tui.demo_pipeline import run_demo
    from tui.output import print_json

    quiet = args.json
    stages = run_demo(args.dir, args.steps, on_train_event=None if quiet else _progress)
    if not quiet:
        print(f"lorakit demo: building a demo workspace in {args.dir} (offline, demo models)", file=sys.stderr)
    while True:
        try:
            done = next(stages)
        except StopIteration as stop:
            result = stop.value
            break
        if not quiet:
            if sys.stderr.isatty():
                sys.stderr.write("\r" + " " * 60 + "\r")
            print(f"  {done.name:<9} {done.seconds:6.1f} s  {done.summary}", file=sys.stderr)
    if args.json:
        print_json(result.to_dict())
    else:
        print_summary(result)
    if args.tui:
        from tui.app import run_app

        run_app(result.workspace)
    return 0


def print_summary(result) -> None:
    """The stage table, then the paths."""
    width = max(len(s.name) for s in result.stages)
    print(f"{'stage':<{width}}  {'seconds':>7}  result")
    for s in result.stages:
        print(f"{s.name:<{width}}  {s.seconds:7.1f}  {s.summary}")
    print(f"{'total':<{width}}  {sum(s.seconds for s in result.stages):7.1f}")
    print()
    print(f"workspace   {result.workspace}")
    print(f"base model  {result.base_model}  (demo model: random weights)")
    print(f"LoRA        {result.lora}")
    print(f"events      {result.events}")
    print(f"next: lorakit ui {result.workspace}")
