"""`lorakit reg generate`: regularization images of the concept's class, made with the base model."""

from __future__ import annotations

import argparse
from pathlib import Path

from tui.output import drive, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    from prep.config import add_arguments
    from trainer.lora_tools.reg_config import RegConfig

    reg = subparsers.add_parser("reg", help="regularization images")
    sub = reg.add_subparsers(dest="reg_command", metavar="ACTION", title="actions")
    reg.set_defaults(func=lambda args: (reg.print_help(), 2)[1])
    generate = sub.add_parser(
        "generate", help="generate class images with the base model into DIR/1_<prompt words>/",
        description="The guide's recipe: images of the class your concept belongs to ('photo of a man'), "
                    "at least as many as the training images, each captioned with the prompt. Resumable: "
                    "existing images are kept and numbering continues. Options may also come from [reg] "
                    "in lorakit.toml.")
    add_arguments(generate, RegConfig)
    generate.add_argument("--json", action="store_true", help="print the summary as JSON")
    generate.set_defaults(func=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from prep.config import load_options
    from trainer.lora_tools.reg_config import RegConfig
    from trainer.lora_tools.reg_images import generate_reg_images

    cwd = Path.cwd()
    config = load_options(RegConfig, "reg", args, cwd=cwd, path_or_id=("base",))
    summary = drive(generate_reg_images(config, cwd), label="reg images")
    if args.json:
        print_json(summary)
    else:
        print(f"{summary['folder']}: {summary['existing']} kept, {summary['generated']} generated, "
              f"{summary['count']} wanted")
    return 0
