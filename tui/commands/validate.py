"""`lorakit validate DATASET`: problems one per line, then the concept table and step counts."""

from __future__ import annotations

import argparse
from pathlib import Path

from prep.config import add_arguments
from prep.validate import ValidateOptions, ValidationReport, iter_validate, load_validate_options
from prep.validation.report import CODES, DESCRIPTIONS, ConceptSummary
from tui.output import drive, print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate", help="check a dataset (layout, images, captions, steps) before training",
        description="Check a kohya-layout dataset (DATASET/<repeats>_<name>/ with images and same-stem "
                    "captions): one line per problem, then the concept table and step counts. Exits 0 "
                    "when there is no error, 1 when there is, 2 when DATASET is not a folder. Options come "
                    "from the workspace's [validate] table, bucket settings, batch size and keep_tokens from "
                    "[train], the trigger from [concept]; flags win.",
        epilog=_codes_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, metavar="DATASET")
    add_arguments(parser, ValidateOptions)
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    options = load_validate_options(args.dataset, args)
    report: ValidationReport = drive(iter_validate(args.dataset, options), label="validating",
                                     quiet=args.json, on_warning=lambda _event: None)
    if args.json:
        print_json(report.to_dict())
    else:
        print(format_report(report))
    return 0 if report.ok else 1


def _codes_help() -> str:
    width = max(len(code) for code in CODES)
    lines = ["problem codes (severity: error blocks training, warning and info do not):"]
    lines.extend(f"  {code.ljust(width)}  {CODES[code]:<7}  {DESCRIPTIONS[code]}" for code in CODES)
    return "\n".join(lines)


def format_report(report: ValidationReport) -> str:
    """The human form: problems, the concept table(s), steps, tokens and a verdict."""
    lines = [f"{p.path}: {p.severity}: {p.message} [{p.code}]" for p in report.problems]
    if lines:
        lines.append("")
    lines.extend(_concept_table(report.concepts, "concept"))
    if report.reg_concepts:
        lines.append("")
        lines.extend(_concept_table(report.reg_concepts, "reg concept"))
    epochs = "epoch" if report.epochs == 1 else "epochs"
    lines.append("")
    lines.append(f"steps: {report.steps_per_epoch} per epoch (batch size {report.batch_size}) "
                 f"x {report.epochs} {epochs} = {report.total_steps} total")
    lines.append(f"longest caption: {report.longest_caption_tokens} CLIP tokens "
                 f"(max token length {report.recommended_max_token_length} fits)"
                 if report.longest_caption_tokens <= 225 else
                 f"longest caption: {report.longest_caption_tokens} CLIP tokens (over 225: shorten it)")
    if report.buckets:
        shown = ", ".join(f"{b.width}x{b.height}: {b.images}" for b in report.buckets[:8])
        more = f", +{len(report.buckets) - 8} more" if len(report.buckets) > 8 else ""
        lines.append(f"buckets: {shown}{more}")
    errors, warnings, infos = len(report.errors), len(report.warnings), len(report.infos)
    counts = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    if infos:
        counts += f", {infos} info"
    lines.append(f"ok: {counts}" if report.ok else f"not ready to train: {counts}")
    return "\n".join(lines)


def _concept_table(concepts: list[ConceptSummary], title: str) -> list[str]:
    header = [title, "repeats", "images", "captioned", "weighted", "share"]
    rows = [[c.folder, str(c.repeats), str(c.images), str(c.captioned), str(c.weighted),
             f"{c.share * 100:.1f}%"] for c in concepts]
    if len(concepts) != 1:
        total = sum(c.weighted for c in concepts)
        rows.append(["total", "", str(sum(c.images for c in concepts)),
                     str(sum(c.captioned for c in concepts)), str(total),
                     "100.0%" if total else "0.0%"])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:],
                                                                                          strict=True)]
        out.append("  ".join(cells).rstrip())
    return out
