"""`lorakit undo` and `lorakit history`: the dataset's undo journal."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from prep.errors import DatasetNotFound
from prep.journal import Journal
from tui.arguments import whole_number
from tui.output import print_json, safe
from tui.undo import undo_dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    undo = subparsers.add_parser("undo", help="restore the files changed by the last operation on a dataset",
                                 description="Restore exactly the files the last journaled operation "
                                             "changed (repeat to walk further back).")
    undo.add_argument("dataset", type=Path, metavar="DATASET")
    undo.add_argument("--force", action="store_true",
                      help="replace or delete files changed since the operation too (default: keep the "
                           "changed version beside as NAME.undo-kept.N)")
    undo.add_argument("--json", action="store_true", help="print the undone operation as JSON")
    undo.set_defaults(func=run_undo)

    history = subparsers.add_parser("history", help="list the journaled operations on a dataset")
    history.add_argument("dataset", type=Path, metavar="DATASET")
    history.add_argument("--all", action="store_true", help="include operations already undone")
    history.add_argument("--json", action="store_true", help="print {\"operations\": [...]} as JSON")
    history.add_argument("--prune", type=whole_number(0), metavar="KEEP",
                         help="forget all but the newest KEEP operations (they can no longer be undone); "
                              "operations holding trashed images are kept unless --empty-trash")
    history.add_argument("--empty-trash", action="store_true",
                         help="with --prune: also delete the images those operations moved to the trash")
    history.set_defaults(func=run_history, _history_parser=history)


def _journal(dataset: Path) -> Journal:
    if not dataset.is_dir():
        raise DatasetNotFound(f"{dataset}: not a folder; pass the dataset folder")
    return Journal(dataset)


def run_undo(args: argparse.Namespace) -> int:
    _journal(args.dataset)
    report = undo_dataset(args.dataset, force=args.force)
    if args.json:
        print_json({"undone": report.to_dict()})
        return 0
    print(f"undid {report.id}: {safe(report.command)} ({report.count} file(s) restored)")
    for path, kept in report.kept:
        print(f"kept your later version of {safe(path)} as {safe(kept)} (it changed after the operation)")
    if report.trashed:
        print(f"moved {len(report.trashed)} downloaded file(s) to the dataset's trash "
              f"(.lorakit/trash/{report.id}/); a new scrape downloads them again")
    return 0


def run_history(args: argparse.Namespace) -> int:
    if args.empty_trash and args.prune is None:
        args._history_parser.error("--empty-trash goes with --prune KEEP")
    if args.prune is not None:
        pruned, held = _journal(args.dataset).prune(args.prune, empty_trash=args.empty_trash)
        if args.json:
            print_json({"pruned": pruned, "kept_for_images": held})
        else:
            line = f"pruned {pruned} operation(s)"
            if held:
                line += f"; kept {held} holding trashed images (add --empty-trash to delete those images)"
            print(line)
        return 0
    ops = _journal(args.dataset).history(include_undone=args.all)
    if args.json:
        print_json({"operations": [op.to_dict() for op in ops]})
        return 0
    if not ops:
        print("no journaled operations")
    for op in ops:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(op.started))
        state = "" if op.state == "done" else f"  [{op.state}]"
        print(f"{op.id}  {when}  {op.count:>6} file(s)  {safe(op.command)}{state}")
    return 0
