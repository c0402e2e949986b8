"""How long `lorakit demo` takes end to end, per stage, against its target (about two minutes on 2 cores).

Runs `python -m tui demo DIR --json` as a fresh process (imports included, as a new user sees it)
with the CPU threads limited to --cores, and prints each stage's seconds, the wall time, and the
ratio to the 120 s target. The baseline measured in the same run is the bare cost of starting Python
and importing torch + diffusers, which no stage can avoid.

    python benchmarks/demo.py [--cores 2] [--steps 40]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 120.0


def _timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    return time.perf_counter() - started, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cores", type=int, default=2, help="CPU cores the demo may use (taskset + thread limits)")
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    env = dict(os.environ, OMP_NUM_THREADS=str(args.cores), MKL_NUM_THREADS=str(args.cores))
    pin = ["taskset", "-c", ",".join(str(i) for i in range(args.cores))] if sys.platform == "linux" else []
    imports, _ = _timed([*pin, sys.executable, "-c", "import torch, diffusers, transformers"], env)
    with tempfile.TemporaryDirectory() as tmp:
        wall, proc = _timed([*pin, sys.executable, "-m", "tui", "demo", str(Path(tmp) / "demo"), "--steps",
                             str(args.steps), "--json"], env)
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return 1
    result = json.loads(proc.stdout)
    print(f"lorakit demo, {args.cores} cores, {args.steps} steps")
    print(f"{'stage':<10} {'seconds':>8}")
    for stage in result["stages"]:
        print(f"{stage['name']:<10} {stage['seconds']:8.1f}")
    print(f"{'wall':<10} {wall:8.1f}   {wall / TARGET_S:.2f}x the {TARGET_S:.0f} s target")
    print(f"{'imports':<10} {imports:8.1f}   baseline: python + torch + diffusers import ({wall / imports:.1f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
