"""Command-line front end shared by `python -m trainer` and `lorakit train`.

`add_train_arguments(parser)` adds `--config FILE`, `--events FILE|-`, `--export-kohya DIR` and one
flag per TrainConfig field; `run_train(args)` runs it and returns the exit code. Without
`--events`, progress is printed as plain lines on stderr.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

from trainer.config import add_config_arguments, load_config


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="TOML file with TrainConfig fields (top level or under [train]); flags override it")
    parser.add_argument("--events", metavar="FILE|-",
                        help="write JSON-lines events (start, step, validation, sample, save, warning, error, done) to FILE, "
                             "or to stdout with -")
    parser.add_argument("--export-kohya", "--export_kohya", dest="export_kohya", type=Path, metavar="DIR",
                        help="write dataset_config.toml and config_file.toml for kohya sd-scripts and exit")
    parser.add_argument("--clear-cache", "--clear_cache", dest="clear_cache", action="store_true",
                        help="remove the latent and text encoder cache files (*_sd.npz, *_sdxl.npz, "
                             "*_te_outputs.npz) beside the dataset's images and exit")
    add_config_arguments(parser)


class HumanProgress:
    """Plain progress lines on stderr (a single updating line on a terminal)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.total = 0
        self.last_print = 0.0

    def __call__(self, event: dict[str, Any]) -> None:
        name = event["event"]
        out = sys.stderr
        if name == "start":
            self.total = event["total_steps"]
            out.write(f"training: {event['images']} images, {event['epochs']} epoch(s), {self.total} steps\n")
        elif name == "step":
            eta = event.get("eta_s")
            line = (f"step {event['step']}/{self.total}  epoch {event['epoch']}  loss {event['loss']:.4f}  "
                    f"lr {event['lr']:.2e}  {event['it_per_s']:.2f} it/s"
                    + (f"  eta {int(eta)}s" if eta is not None else ""))
            if self.tty:
                out.write("\r" + line.ljust(100))
            elif time.time() - self.last_print > 10 or event["step"] == self.total:
                out.write(line + "\n")
                self.last_print = time.time()
        elif name == "validation":
            out.write(("\n" if self.tty else "") + f"validation loss at step {event['step']}: {event['loss']:.4f}\n")
        elif name in ("save", "sample"):
            out.write(("\n" if self.tty else "") + f"{name}: {event['path']}\n")
        elif name == "warning":
            out.write(("\n" if self.tty else "") + f"warning: {event['message']}\n")
        elif name == "done":
            out.write(("\n" if self.tty else "") + f"done: {event['path']} ({event['steps']} steps, "
                      f"{event['seconds']:.0f} s)\n")
        out.flush()


def run_train(args: argparse.Namespace) -> int:
    """Train (or export) as the arguments say; UserErrors propagate to the caller's handler.

    Several processes come from the launcher: `accelerate launch -m trainer` on GPUs, `torchrun
    --nproc_per_node N -m trainer` on CPUs (README: multi-GPU and multi-node).
    """
    from trainer.events import JsonLinesWriter, fan_out

    config = load_config(args.config, args)
    if getattr(args, "clear_cache", False):
        return _clear_cache(config)
    if args.export_kohya is not None:
        from trainer.checks import check_config
        from trainer.export_kohya import export_kohya, without_kohya_equivalent

        check_config(copy.deepcopy(config))  # an invalid run is refused, not exported (the GPU is elsewhere)
        dataset_path, config_path = export_kohya(config, args.export_kohya)
        print(f"wrote {dataset_path} and {config_path}")
        for item in without_kohya_equivalent(config):
            print(f"not exported (no kohya equivalent): {item}")
        return 0
    # Under accelerate/torchrun only rank 0 reports; the file is started afresh for each run.
    main_rank = int(os.environ.get("RANK", "0") or 0) == 0
    try:
        writer = JsonLinesWriter(args.events) if args.events and main_rank else None
    except OSError as exc:
        from trainer.errors import TrainError

        raise TrainError(f"--events {args.events}: cannot write ({exc.strerror})") from None
    if writer is not None:
        from trainer.run_pid import record_own_pid

        record_own_pid(args.events)  # what the TUI reattaches by, however this run was started
    human = HumanProgress() if args.events != "-" and main_rank else None
    emit = fan_out(writer, human)
    try:
        from prep.errors import UserError
        from trainer.checks import DeviceInfo, check_config
        from trainer.errors import TrainingDiverged
        from trainer.run import train

        try:
            check_config(copy.deepcopy(config), DeviceInfo.guess())  # before torch and diffusers are imported
            quiet_libraries()
            train(config, emit, notice=_print_loading if args.events != "-" and main_rank else None)
        except KeyboardInterrupt:
            return 130
        except UserError as exc:
            if writer is not None and not getattr(exc, "event_sent", False) and not isinstance(exc, TrainingDiverged):
                emit({"event": "error", "message": str(exc)})
            raise
    finally:
        if writer is not None:
            writer.close()
    return 0


def _print_loading(what: str) -> None:
    """What loads before the first step, as a line (the TUI shows it from the trainer's log)."""
    print(f"loading: {what}", file=sys.stderr, flush=True)


def _clear_cache(config) -> int:
    from trainer.cache_files import clear_caches
    from trainer.errors import TrainError

    roots = [Path(r) for r in (config.dataset, config.reg_dataset, config.validation_dataset) if r is not None]
    if not roots:
        raise TrainError("--clear-cache needs the dataset: pass --dataset DIR or --config FILE")
    for root in roots:
        if not root.is_dir():
            raise TrainError(f"{root}: no such dataset folder")
    removed = clear_caches(roots, config.caption_extension)
    print(f"removed {len(removed)} cache file(s) from {', '.join(str(r) for r in roots)}")
    return 0


def quiet_libraries() -> None:
    """No download/loading progress bars from diffusers/transformers in the trainer's output."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    from prep.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m trainer", description="Train a LoRA (kohya format).")
    add_train_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return run_train(args)
    except UserError as exc:
        print(f"trainer: error: {exc}", file=sys.stderr)
        return exc.exit_code
