"""`lorakit ui [WORKSPACE]`: the Textual app over a workspace (`--init` creates one)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ui", help="open the terminal UI on a workspace (scrape, tag, clean, edit, concept, validate, train)",
        description="Open the terminal UI on a workspace: a folder with lorakit.toml and dataset/, reg/, "
                    "output/. Screens: 1 Scrape, 2 Tag, 3 Clean, 4 Edit, 5 Concept, 6 Validate, 7 Train. "
                    "ctrl+r runs a screen's job, escape cancels it, ctrl+s saves its form to lorakit.toml, "
                    "ctrl+z undoes the last dataset change, ? lists the keys, ctrl+p every action. "
                    "LORAKIT_IMAGES=auto|kitty|sixel|halfcell|off picks the image renderer.")
    parser.add_argument("workspace", type=Path, nargs="?", default=Path("."), metavar="WORKSPACE",
                        help="the workspace folder (default: the current folder)")
    parser.add_argument("--init", action="store_true",
                        help="create the workspace first: lorakit.toml (kept if present) and dataset/ reg/ output/")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tui.workspace import init_workspace, open_workspace

    # Checked before Textual starts, so a wrong path is one line on stderr, not a broken screen.
    workspace = init_workspace(args.workspace) if args.init else open_workspace(args.workspace)
    from tui.app import run_app

    run_app(workspace.root)
    return 0
