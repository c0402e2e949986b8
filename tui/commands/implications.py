"""`lorakit implications fetch DATASET`: the site's implication and alias graph for the dataset's tags."""

from __future__ import annotations

import argparse
from pathlib import Path

from tui.output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "implications", help="fetch the site's tag implications and aliases for a dataset",
        description="Tag implications and aliases from Danbooru or e621, stored in "
                    "DATASET/.lorakit/implications.sqlite for `lorakit clean --remove-implied` and `--canonical`.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", title="actions")
    fetch = actions.add_parser(
        "fetch", help="fetch the active implications (followed transitively) and aliases of the dataset's tags",
        description="Ask the site's /tag_implications.json and /tag_aliases.json about every tag in the "
                    "dataset's captions (rate-limited, retried; keys from LORAKIT_<SITE>_LOGIN and _API_KEY go "
                    "only to the official host, a --base-url given here, or LORAKIT_<SITE>_BASE_URL) and store "
                    "them with the fetch time, as one undoable step.")
    fetch.add_argument("dataset", type=Path, metavar="DATASET")
    fetch.add_argument("--site", choices=("danbooru", "safebooru", "e621", "e926"), default="danbooru",
                       help="the site whose graph to use (default: danbooru)")
    fetch.add_argument("--base-url", help="the site's root (a mirror or a self-hosted instance)")
    fetch.add_argument("--rate", type=float, help="API requests per second (default: the scraper's for the site)")
    fetch.add_argument("--login", help="account name (or LORAKIT_<SITE>_LOGIN)")
    fetch.add_argument("--api-key", help="API key (or LORAKIT_<SITE>_API_KEY); never logged or saved")
    fetch.add_argument("--allow-insecure", action="store_true",
                       help="allow sending credentials over plain http to a host other than this machine")
    fetch.add_argument("--dry-run", action="store_true", help="fetch and count, but write nothing")
    fetch.add_argument("--json", action="store_true",
                       help='print {"site", "tags", "implications", "aliases", "requests", "store", "fetched_at", '
                            '"dry_run"}')
    fetch.set_defaults(func=run_fetch)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_fetch(args: argparse.Namespace) -> int:
    from booru.credentials import lookup_credentials
    from booru.endpoint import COMMAND_LINE
    from booru.errors import BooruUsageError
    from booru.implications import fetch_implications
    from booru.sites import SITES
    from tui.output import drive

    if args.rate is not None and not args.rate > 0:
        raise BooruUsageError("--rate must be above 0 (requests per second)")
    credentials = lookup_credentials(SITES[args.site], args.login, args.api_key)
    summary = drive(fetch_implications(args.dataset, site=args.site, base_url=args.base_url,
                                       base_url_origin=COMMAND_LINE, credentials=credentials, rate=args.rate,
                                       dry_run=args.dry_run, allow_insecure=args.allow_insecure),
                    label="implications")
    if summary is None:
        return 1
    if args.json:
        print_json(summary.to_dict())
    else:
        verb = "would store" if args.dry_run else "stored"
        print(f"{verb} {summary.implications} implication(s) and {summary.aliases} alias(es) for {summary.tags} "
              f"tag(s) from {summary.site} ({summary.requests} request(s))"
              + ("" if args.dry_run else f" -> {summary.store}"))
    return 0
