"""`lorakit scrape`: a booru tag query to images with their tags as captions."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prep.config import ConfigError, add_arguments, find_workspace, load_options
from tui.output import expand_at_files, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    from booru.config import ScrapeConfig

    parser = subparsers.add_parser(
        "scrape", help="download posts of a booru tag query with their tags as captions",
        description="Search Danbooru, Gelbooru (and v0.2 clones), Moebooru or e621, and save the first "
                    "--limit posts that pass every filter as <site>_<id>.<ext> plus a caption .txt. "
                    "Keys come from --login/--api-key/--user-id or LORAKIT_<SITE>_LOGIN, _API_KEY, _USER_ID, and "
                    "go only to the official host, a --base-url given here, or LORAKIT_<SITE>_BASE_URL "
                    "(never to a base_url read from a workspace file).")
    add_arguments(parser, ScrapeConfig)
    parser.add_argument("--blacklist", nargs="+", action="extend", metavar="TAG", default=argparse.SUPPRESS,
                        help="skip posts holding any of these tags; @file reads one tag per line")
    parser.add_argument("--login", help="account name (or LORAKIT_<SITE>_LOGIN)")
    parser.add_argument("--api-key", help="API key (or LORAKIT_<SITE>_API_KEY); never logged or saved")
    parser.add_argument("--user-id", help="numeric user id for Gelbooru (or LORAKIT_<SITE>_USER_ID)")
    parser.add_argument("--allow-insecure", action="store_true",
                        help="allow sending credentials over plain http to a host other than this machine")
    parser.add_argument("--json", action="store_true",
                        help='print {"downloaded", "skipped", "failed", "files"} as JSON')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from booru.config import ScrapeConfig
    from booru.credentials import lookup_credentials
    from booru.endpoint import COMMAND_LINE
    from booru.errors import BooruUsageError
    from booru.scrape import scrape
    from booru.sites import SITES
    from tui.output import drive

    out = getattr(args, "out", None)
    try:
        # [booru] of the lorakit.toml nearest to --out, else to the current folder (which may set out).
        workspace = find_workspace(Path(out) if out is not None else None)
        config = load_options(ScrapeConfig, "booru", args, workspace=workspace)
    except ConfigError as exc:
        if "command line" in str(exc):
            raise BooruUsageError(str(exc)) from None
        raise
    config.blacklist = expand_at_files(config.blacklist)
    credentials = None
    if config.site is not None:
        credentials = lookup_credentials(SITES[config.site], args.login, args.api_key, args.user_id)
    # Credentials follow a base URL typed here, never one read from a (possibly shared) workspace file.
    origin = COMMAND_LINE if "base_url" in vars(args) else str(workspace.path or "a workspace file")
    summary = drive(scrape(config, credentials, base_url_origin=origin, allow_insecure=args.allow_insecure),
                    label="scrape")
    if summary is None:
        return 1
    if args.json:
        data = summary.to_dict()
        if config.refresh_captions:
            data["captions"] = summary.captions
        print_json(data)
    elif config.refresh_captions:
        print(f"rewrote {summary.captions} caption(s) in {summary.folder}")
    else:
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(summary.skipped.items()))
        line = f"downloaded {summary.downloaded}, skipped {sum(summary.skipped.values())}"
        line += f" ({skipped})" if skipped else ""
        line += f", failed {summary.failed} -> {summary.folder}"
        print(line, file=sys.stdout)
    return 0
