"""`lorakit train`: train a LoRA with the bundled trainer (kohya-format output)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from trainer.cli import add_train_arguments

    parser = subparsers.add_parser(
        "train", help="train a LoRA from a dataset (SD 1.x/2.x/SDXL, kohya-format output)",
        description="Train a LoRA. Options come from --config FILE (top level or [train]) and flags; "
                    "--events writes JSON lines; works under `accelerate launch` for several GPUs.")
    add_train_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trainer.cli import run_train

    return run_train(args)
