"""Several CPU processes under `accelerate launch --num_processes N --cpu`.

accelerate's simple launcher starts ONE process for `--cpu` and leaves the fan-out to mpirun;
without MPI the run would silently be single-process. When the trainer finds itself started
that way (ACCELERATE_USE_CPU, MASTER_ADDR set by the launcher, no rank variables) it reads N from
the launcher's command line and starts N ranked workers with torch.distributed.run itself, so
the processes form a gloo group exactly as under torchrun.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

RANK_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE",
                  "MV2_COMM_WORLD_SIZE")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _launcher_num_processes(pid: int) -> int | None:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    words = [a.decode("utf-8", "replace") for a in args if a]
    if not any("accelerate" in w for w in words[:3]):
        return None
    for i, word in enumerate(words):
        for flag in ("--num_processes", "--num-processes"):
            if word == flag and i + 1 < len(words):
                value = words[i + 1]
            elif word.startswith(flag + "="):
                value = word.split("=", 1)[1]
            else:
                continue
            try:
                return int(value)
            except ValueError:
                return None
    return None


def cpu_fanout_processes() -> int:
    """N when this process was started by `accelerate launch --num_processes N --cpu` without MPI, else 0."""
    env = os.environ
    if not _truthy(env.get("ACCELERATE_USE_CPU")) or "MASTER_ADDR" not in env:
        return 0
    if any(name in env for name in RANK_VARIABLES):
        return 0
    count = _launcher_num_processes(os.getppid())
    return count if count and count > 1 else 0


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_workers(count: int, trainer_args: list[str]) -> int:
    """Start `count` ranked `python -m trainer` workers and wait; returns the first failing exit code.

    The workers meet on a free local port (accelerate's default 29500 collides when two runs
    share a machine)."""
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={count}", "--nnodes=1",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m", "trainer", *trainer_args]
    env.setdefault("OMP_NUM_THREADS", "1")
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130
