"""`lorakit lora info|check|merge|resize|extract|preview`: inspect, fix and combine kohya LoRA files."""

from __future__ import annotations

import argparse
from pathlib import Path

from tui.output import drive, print_json

DYNAMIC_METHODS = ("sv_ratio", "sv_fro", "sv_cumulative")
PRECISIONS = ("fp16", "bf16", "fp32")


def register(subparsers: argparse._SubParsersAction) -> None:
    lora = subparsers.add_parser("lora", help="inspect, check, merge, resize, extract and preview LoRA files",
                                 description="Tools for kohya-format LoRA .safetensors files (ours or anyone's).")
    sub = lora.add_subparsers(dest="lora_command", metavar="ACTION", title="actions")
    lora.set_defaults(func=lambda args: (lora.print_help(), 2)[1])

    info = sub.add_parser("info", help="architecture, modules, ranks, alphas and training metadata of a LoRA")
    info.add_argument("file", type=Path, metavar="FILE")
    info.add_argument("--json", action="store_true", help="print everything as one JSON object")
    info.set_defaults(func=run_info)

    check = sub.add_parser("check", help="find all-zero (underflowed), NaN/Inf and outlier modules",
                           description="Per-module weight statistics; exits 1 when a module holds NaN/Inf "
                                       "or is unexpectedly all zero.")
    check.add_argument("file", type=Path, metavar="FILE")
    check.add_argument("--json", action="store_true",
                       help='print {"modules","zero","nonfinite","outliers","ok"} (plus per-module stats)')
    check.add_argument("--verbose", "-v", action="store_true", help="print every module's statistics (CSV)")
    check.set_defaults(func=run_check)

    merge = sub.add_parser("merge", help="bake LoRAs into a checkpoint (--base) or merge LoRAs into one (--rank)",
                           description="With --base: W += ratio·(alpha/rank)·up@down for every module, written "
                                       "as a single-file checkpoint or a diffusers folder. Without --base: "
                                       "merge LoRAs exactly (full update + SVD) into one LoRA of rank --rank.")
    merge.add_argument("--base", type=Path, metavar="MODEL",
                       help="diffusers folder or single-file .safetensors checkpoint")
    merge.add_argument("--lora", action="append", required=True, metavar="FILE[:RATIO]",
                       help="LoRA file and its ratio (default 1.0); repeat for several")
    merge.add_argument("--out", type=Path, required=True, metavar="OUT")
    merge.add_argument("--format", choices=("safetensors", "diffusers"),
                       help="checkpoint output: single .safetensors file (original key layout, loads in "
                            "A1111/ComfyUI) or a diffusers folder (default: from OUT's suffix)")
    merge.add_argument("--precision", choices=PRECISIONS, help="output precision (default: the input's)")
    merge.add_argument("--rank", type=int, help="rank of the merged LoRA (LoRA+LoRA merge, no --base)")
    merge.add_argument("--json", action="store_true", help="print the summary as JSON")
    merge.set_defaults(func=run_merge)

    resize = sub.add_parser("resize", help="reduce a LoRA's rank by SVD, keeping its strength",
                            description="New alpha = (alpha/rank)·new rank, so the effect is unchanged up to "
                                        "the dropped singular values. Reports the retained Frobenius fraction "
                                        "per module.")
    resize.add_argument("file", type=Path, metavar="FILE")
    resize.add_argument("--rank", type=int, help="new rank (the maximum rank with --dynamic)")
    resize.add_argument("--dynamic", choices=DYNAMIC_METHODS,
                        help="choose each module's rank: sv_ratio (largest/kept singular value <= X), "
                             "sv_fro (retained Frobenius fraction >= X), sv_cumulative (singular value sum "
                             "fraction >= X)")
    resize.add_argument("--param", type=float, help="the --dynamic method's X")
    resize.add_argument("--out", type=Path, required=True, metavar="OUT")
    resize.add_argument("--json", action="store_true", help="print the per-module report as JSON")
    resize.set_defaults(func=run_resize)

    extract = sub.add_parser("extract", help="make a LoRA from the difference of a tuned model and its base",
                             description="SVD of (tuned - base) per LoRA target module, kohya-style (outliers "
                                         "clamped at the 0.99 quantile, alpha = rank).")
    extract.add_argument("--base", type=Path, required=True, metavar="MODEL")
    extract.add_argument("--tuned", type=Path, required=True, metavar="MODEL")
    extract.add_argument("--rank", type=int, required=True, help="rank of linear (and 1x1) modules")
    extract.add_argument("--conv-rank", type=int, help="also extract 3x3 convs (LoCon) at this rank")
    extract.add_argument("--out", type=Path, required=True, metavar="OUT")
    extract.add_argument("--clamp-quantile", type=float, default=0.99,
                         help="clamp weights at this quantile of their magnitudes (default 0.99, 1 = off)")
    extract.add_argument("--min-diff", type=float, default=0.01,
                         help="leave out a text encoder that differs by at most this (default 0.01)")
    extract.add_argument("--precision", choices=PRECISIONS, help="LoRA precision (default: the base's)")
    extract.add_argument("--json", action="store_true", help="print the summary as JSON")
    extract.set_defaults(func=run_extract)

    preview = sub.add_parser("preview", help="render a prompt without and with the LoRA at several weights",
                             description="Same prompt and seed without the LoRA and at several weights, "
                                         "side by side in one PNG.")
    preview.add_argument("--base", type=Path, required=True, metavar="MODEL")
    preview.add_argument("--lora", required=True, metavar="FILE[:WEIGHT]", help="LoRA and its weight (default 1)")
    preview.add_argument("--prompt", required=True)
    preview.add_argument("--negative", help="negative prompt")
    preview.add_argument("--seed", type=int, default=0, help="seed, the same for every image (default 0)")
    preview.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    preview.add_argument("--weights", help="comma-separated LoRA weights (default: half and full WEIGHT)")
    preview.add_argument("--size", help="W,H (default: the model's native size)")
    preview.add_argument("--cfg", type=float, default=7.5, help="guidance scale (default 7.5)")
    preview.add_argument("--out", type=Path, default=Path("grid.png"), help="grid PNG (default grid.png)")
    preview.add_argument("--json", action="store_true", help="print the summary as JSON")
    preview.set_defaults(func=run_preview)


def run_info(args: argparse.Namespace) -> int:
    from trainer.lora_tools.info import format_info, lora_info

    info = lora_info(args.file)
    if args.json:
        print_json(info)
    else:
        print(format_info(info))
    return 0


def run_check(args: argparse.Namespace) -> int:
    from trainer.lora_tools.check import check_lora, format_check

    report = check_lora(args.file)
    if args.json:
        print_json(report)
    else:
        print(format_check(report, verbose=args.verbose))
    return 0 if report["ok"] else 1


def run_merge(args: argparse.Namespace) -> int:
    from trainer.lora_tools.errors import LoraUsageError
    from trainer.lora_tools.io import parse_lora_spec

    specs = [parse_lora_spec(s) for s in args.lora]
    if args.base is None:
        if args.rank is None:
            raise LoraUsageError("lora merge: give --base MODEL to merge into a checkpoint, "
                                 "or --rank R to merge LoRAs into one LoRA")
        if args.format == "diffusers":
            raise LoraUsageError("lora merge: --format applies to checkpoint merges (--base)")
        from trainer.lora_tools.merge_loras import merge_loras

        summary = drive(merge_loras(specs, args.out, args.rank, args.precision), label="merging LoRAs")
        if args.json:
            print_json(summary)
        else:
            print(f"wrote {summary['out']}: {summary['modules']} modules at rank {summary['rank']}, "
                  f"retained Frobenius fraction mean {summary['mean_retained']:.4f}, "
                  f"min {summary['min_retained']:.4f}")
        return 0
    if args.rank is not None:
        raise LoraUsageError("lora merge: --rank is for LoRA+LoRA merges; drop it when merging into --base")
    from trainer.lora_tools.merge import merge_into_checkpoint

    summary = drive(merge_into_checkpoint(args.base, specs, args.out, fmt=args.format,
                                          precision=args.precision), label="merging")
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {summary['out']} ({summary['format']}): {summary['modules']} LoRA modules merged "
              f"into {summary['architecture']} base {summary['base']}")
    return 0


def run_resize(args: argparse.Namespace) -> int:
    from trainer.lora_tools.errors import LoraUsageError
    from trainer.lora_tools.resize import resize_lora

    if args.rank is None and args.dynamic is None:
        raise LoraUsageError("lora resize: give --rank R or --dynamic METHOD --param X")
    if args.dynamic is not None and args.param is None:
        raise LoraUsageError(f"lora resize: --dynamic {args.dynamic} needs --param X")
    summary = drive(resize_lora(args.file, args.out, rank=args.rank, method=args.dynamic, param=args.param),
                    label="resizing")
    if args.json:
        print_json(summary)
        return 0
    for m in summary["modules"]:
        print(f"{m['name']}: rank {m['old_rank']} -> {m['new_rank']}, alpha {m['alpha']:g}, "
              f"retained {m['retained']:.4f}")
    print(f"wrote {summary['out']}: retained Frobenius fraction mean {summary['mean_retained']:.4f}, "
          f"min {summary['min_retained']:.4f}")
    return 0


def run_extract(args: argparse.Namespace) -> int:
    from trainer.lora_tools.extract import extract_lora

    summary = drive(extract_lora(args.base, args.tuned, args.out, rank=args.rank, conv_rank=args.conv_rank,
                                 clamp_quantile=args.clamp_quantile, min_diff=args.min_diff,
                                 precision=args.precision), label="extracting")
    if args.json:
        print_json(summary)
    else:
        parts = ", ".join(f"{p} {n}" for p, n in summary["parts"].items())
        print(f"wrote {summary['out']}: {summary['modules']} modules ({parts})")
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from trainer.lora_tools.errors import LoraUsageError
    from trainer.lora_tools.io import parse_lora_spec
    from trainer.lora_tools.pipelines import parse_size
    from trainer.lora_tools.preview import preview_lora

    path, weight = parse_lora_spec(args.lora, what="WEIGHT")
    weights = None
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",") if w.strip()]
        except ValueError:
            raise LoraUsageError(f"--weights {args.weights!r}: expected numbers such as 0.5,1") from None
    summary = drive(preview_lora(args.base, path, args.prompt, args.out, weight=weight, weights=weights,
                                 negative=args.negative, seed=args.seed, steps=args.steps,
                                 size=parse_size(args.size), cfg=args.cfg), label="preview")
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {summary['out']}: weights {', '.join(f'{w:g}' for w in summary['weights'])}")
    return 0
