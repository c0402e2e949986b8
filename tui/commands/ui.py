"""`lorakit ui [WORKSPACE]`: the Textual app over a workspace (`--init` creates one)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ui", help="open the terminal UI on a workspace (dataset, captions, training)",
        description="Open the terminal UI on a workspace: a folder with lorakit.toml and dataset/, reg/, "
                    "output/. Screens: 1 Dataset (concepts, validate), 2 Captions (tag counts, undo), "
                    "3 Train (run the trainer on the [train] table, follow its progress).")
    parser.add_argument("workspace", type=Path, nargs="?", default=Path("."), metavar="WORKSPACE",
                        help="the workspace folder (default: the current folder)")
    parser.add_argument("--init", action="store_true",
                        help="create the workspace first: lorakit.toml (kept if present) and dataset/ reg/ output/")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tui.workspace import init_workspace, open_workspace

    # Checked before Textual starts, so a wrong path is one line on stderr, not a broken screen.
    workspace = init_workspace(args.workspace) if args.init else open_workspace(args.workspace)
    from tui.app import make_app

    make_app(workspace.root).run()
    return 0
