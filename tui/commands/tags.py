"""`lorakit tags DATASET <op>`: stats, find, and bulk add/remove/replace/move-front (undoable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prep.errors import DatasetNotFound
from tui.arguments import whole_number
from tui.commands.clean import _relative, command_line, print_report
from tui.output import add_follow_symlinks, expand_at_files, print_json

QUERY_HELP = """QUERY: comma-separated terms that must all hold: 'red hair' (has the tag), '-hat' (lacks it),
'blonde hair|yellow hair' (has any), '*ribbon' (wildcard), 'concept:5_alice' (in that concept folder).
Tags match whatever their case, spaces/underscores or \\( escapes. An image without a caption file
counts as captioned with its concept name (what kohya trains); only `add` creates its caption file.
Where tags came from (.lorakit/tags.sqlite): 'source:booru|tagger|caption|user|command' and
'confidence<0.5' (also <=, >, >=; a tagger's score). These are tests on ONE tag: an image matches
'source:tagger' when it has a tag from the tagger, and 'source:tagger, confidence<0.4' when one
tagger tag is under 0.4 (all source:/confidence terms of a QUERY hold for the same tag). remove and
replace then touch only the tags that pass, stats counts only them; add, move-front, find and
clean --where use them to select images. A tag the store does not know (or in a caption edited
outside lorakit) is 'user' with no confidence; '-source:tagger' passes every non-tagger tag.
Example: lorakit tags DATASET remove '*' --where 'source:tagger, confidence<0.4'"""


class _DashTagParser(argparse.ArgumentParser):
    """Reads an unknown `-word` as a value (a negated query term such as `-hat`), not as an option."""

    def _parse_optional(self, arg_string):  # type: ignore[override]
        result = super()._parse_optional(arg_string)
        if result is None or arg_string.startswith("--"):
            return result
        first = result[0] if isinstance(result, list) else result
        return None if first[0] is None else result


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tags", help="tag statistics, search and bulk edits (undoable)",
                                   description="Tag statistics, search, and bulk tag edits on a dataset.",
                                   epilog=QUERY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, metavar="DATASET")
    ops = parser.add_subparsers(dest="op", metavar="OP", title="operations", required=True,
                                parser_class=_DashTagParser)

    def op(name: str, help_text: str, *, edits: bool = True) -> argparse.ArgumentParser:
        sub = ops.add_parser(name, help=help_text, description=help_text, epilog=QUERY_HELP, add_help=False,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        sub.add_argument("--help", action="help", help="show this help message and exit")
        if edits:
            sub.add_argument("--where", metavar="QUERY", help="only captions matching QUERY")
            sub.add_argument("--dry-run", action="store_true", help="show the changes without writing anything")
            add_follow_symlinks(sub)
        sub.add_argument("--json", action="store_true", help="print the result as JSON")
        sub.add_argument("--caption-extension", default=".txt", metavar="EXT",
                         help="caption file extension (default: .txt)")
        return sub

    stats = op("stats", "per tag, how many captions hold it; tags used once; likely typos", edits=False)
    stats.add_argument("query", nargs="?", metavar="QUERY", help="only the captions matching QUERY")
    stats.add_argument("--top", type=whole_number(0), metavar="N", help="list only the N most used tags")
    stats.add_argument("--concept", metavar="FOLDER", help="only this concept folder (5_alice or alice)")
    stats.add_argument("--by-source", action="store_true",
                       help="split each tag's count by where it came from (booru, tagger, caption, user, command; "
                            "from .lorakit/tags.sqlite)")
    stats.set_defaults(func=run_stats)

    find = op("find", "list the items whose tags match QUERY", edits=False)
    find.add_argument("query", metavar="QUERY")
    find.set_defaults(func=run_find)

    add = op("add", "add tags to the captions (at the end, or --front)")
    add.add_argument("tags", nargs="+", metavar="TAG", help="tags to add (or @FILE)")
    add.add_argument("--front", action="store_true", help="insert the tags at the start")
    add.set_defaults(func=run_edit)

    remove = op("remove", "remove tags; * is a wildcard ('*background', 'artist:*')")
    remove.add_argument("tags", nargs="+", metavar="TAG", help="tags or patterns to remove (or @FILE)")
    remove.set_defaults(func=run_edit)

    replace = op("replace", "rename tag OLD to NEW (an empty NEW removes it)")
    replace.add_argument("old", metavar="OLD")
    replace.add_argument("new", metavar="NEW")
    replace.set_defaults(func=run_edit)

    front = op("move-front", "move tags to the front of the captions, in the order given")
    front.add_argument("tags", nargs="+", metavar="TAG", help="tags or patterns to move (or @FILE)")
    front.set_defaults(func=run_edit)


def _check(args: argparse.Namespace) -> None:
    if not args.dataset.is_dir():
        raise DatasetNotFound(f"{args.dataset}: not a folder; pass the dataset folder")


def run_stats(args: argparse.Namespace) -> int:
    if getattr(args, "by_source", False):
        return _run_stats_by_source(args)
    from prep.tag_stats import tag_stats

    _check(args)
    stats = tag_stats(args.dataset, args.concept, caption_extension=args.caption_extension, query=args.query)
    for warning in stats.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(stats.to_dict(args.top))
        return 0
    counts = stats.counts if args.top is None else stats.counts[:args.top]
    print(f"{stats.captions} caption(s), {len(stats.counts)} distinct tag(s)")
    width = max((len(str(n)) for _, n in counts), default=1)
    for tag, n in counts:
        print(f"{n:>{width}}  {tag}")
    shown = 100  # the full lists are in --json
    if stats.used_once:
        more = f" ... ({len(stats.used_once) - shown} more)" if len(stats.used_once) > shown else ""
        print(f"\nused once ({len(stats.used_once)}): " + ", ".join(stats.used_once[:shown]) + more)
    if stats.likely_typos:
        print(f"\nlikely typos ({len(stats.likely_typos)}):")
        for group in stats.likely_typos[:shown]:
            print("  " + " | ".join(group))
        if len(stats.likely_typos) > shown:
            print(f"  ... ({len(stats.likely_typos) - shown} more)")
    return 0


def run_find(args: argparse.Namespace) -> int:
    from prep.caption_set import caption_text
    from prep.tag_edit import find_items

    _check(args)
    warnings: list[str] = []
    found = find_items(args.dataset, args.query, caption_extension=args.caption_extension, warnings=warnings)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json({"count": len(found), "items": [
            {"image": str(r.item.image), "caption": str(r.path) if r.exists else None,
             "tags": r.effective_tags(), "text": caption_text(r.data)} for r in found]})
        return 0
    for record in found:
        print(_relative(record.item.image, args.dataset))
    print(f"{len(found)} item(s) match", file=sys.stderr)
    return 0


def run_edit(args: argparse.Namespace) -> int:
    from prep import tag_edit

    _check(args)
    if args.op == "add":
        spec = tag_edit.add_edit(expand_at_files(args.tags), front=args.front)
    elif args.op == "remove":
        spec = tag_edit.remove_edit(expand_at_files(args.tags))
    elif args.op == "replace":
        spec = tag_edit.replace_edit(args.old, args.new)
    else:
        spec = tag_edit.move_front_edit(expand_at_files(args.tags))
    report = tag_edit.edit_dataset(args.dataset, spec, where=args.where, dry_run=args.dry_run,
                                   caption_extension=args.caption_extension,
                                   command=command_line(f"tags {args.op}", args))
    print_report(report, args, verb="changed")
    return 0


def _run_stats_by_source(args: argparse.Namespace) -> int:
    from prep.tag_stats import counts_by_source

    _check(args)
    counts = counts_by_source(args.dataset, args.concept, caption_extension=args.caption_extension,
                              query=args.query)
    ordered = sorted(counts.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    if args.top is not None:
        ordered = ordered[: args.top]
    totals: dict[str, int] = {}
    for _tag, by_kind in counts.items():
        for kind, n in by_kind.items():
            totals[kind] = totals.get(kind, 0) + n
    if args.json:
        print_json({"sources": totals, "by_source": [{"tag": tag, "count": sum(k.values()), "sources": k}
                                                     for tag, k in ordered]})
        return 0
    print("tags by source: " + ", ".join(f"{kind} {n}" for kind, n in sorted(totals.items())))
    for tag, by_kind in ordered:
        parts = ", ".join(f"{kind} {n}" for kind, n in sorted(by_kind.items()))
        print(f"{sum(by_kind.values()):>6}  {tag}  ({parts})")
    return 0
