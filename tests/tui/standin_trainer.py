"""A stand-in for `python -m trainer` that writes the same event lines, without training anything.

Run as `python standin_trainer.py --config FILE --events FILE [--steps N] [--delay S] [--oom-at N]`. It writes
start, then one step event per delay, flushed as the trainer does; SIGINT makes it write the
trainer's "interrupted" warning and exit 130, as the real trainer does after saving its state.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

stop_requested = False


def _on_sigint(signum, frame) -> None:
    global stop_requested
    stop_requested = True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.02)
    parser.add_argument("--oom-at", type=int, default=0, help="die at this step as torch does on CUDA OOM")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, _on_sigint)
    with open(args.events, "a", encoding="utf-8") as out:
        def emit(event: dict) -> None:
            out.write(json.dumps(event) + "\n")
            out.flush()

        emit({"event": "start", "total_steps": args.steps, "epochs": 1, "images": 4, "config": {"config": args.config}})
        started = time.time()
        for step in range(1, args.steps + 1):
            time.sleep(args.delay)
            rate = step / (time.time() - started)
            emit({"event": "step", "step": step, "epoch": 1, "loss": 0.5 / step, "lr": 1e-4, "it_per_s": rate,
                  "eta_s": (args.steps - step) / rate})
            if step == args.oom_at:  # what the real trainer prints when CUDA runs out of memory
                print("Traceback (most recent call last):\n  File \"trainer/step.py\", line 80, in run\n"
                      "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                      "capacity of 7.79 GiB of which 1.02 GiB is free.", file=sys.stderr, flush=True)
                return 1
            if stop_requested:
                emit({"event": "warning", "message": f"interrupted at step {step}; state saved to X; "
                                                     "continue with --resume X"})
                print("trainer: interrupted", file=sys.stderr)
                return 130
        emit({"event": "done", "path": "output/lora.safetensors", "steps": args.steps,
              "seconds": time.time() - started})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
