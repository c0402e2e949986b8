"""`lorakit queue add|list|remove|run`: a workspace's training runs, one after another."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from prep.errors import UserError
from tui.output import print_json


def register(subparsers: argparse._SubParsersAction) -> None:
    from trainer.config import add_config_arguments

    parser = subparsers.add_parser(
        "queue", help="queue training runs and run them one after another",
        description="A queue of training runs in the workspace of the nearest lorakit.toml (from the current "
                    "folder), stored in .lorakit/queue/. Each job is a frozen copy of its resolved [train] "
                    "config, with its own events file and a unique output name.")
    commands = parser.add_subparsers(dest="queue_command", metavar="ACTION", title="actions")
    commands.required = True
    add = commands.add_parser("add", help="queue a run: the [train] table of lorakit.toml (or --config), flags over it",
                              description="Queue a training run. Options as `lorakit train`: --config FILE "
                                          "(default: the [train] table of the nearest lorakit.toml), flags over it.")
    add.add_argument("--config", type=Path, metavar="FILE",
                     help="TOML file with TrainConfig fields (top level or [train]); default: the nearest lorakit.toml")
    add_config_arguments(add)
    add.set_defaults(func=run_add)
    listing = commands.add_parser("list", help="the jobs, oldest first, with their status")
    listing.add_argument("--json", action="store_true",
                         help='print {"jobs": [{"id", "status", "output_name", "events", "lora"}]}')
    listing.set_defaults(func=run_list)
    remove = commands.add_parser("remove", help="remove a job that is not running")
    remove.add_argument("id", metavar="ID")
    remove.set_defaults(func=run_remove)
    runner = commands.add_parser("run", help="run the queued jobs in order (stopped or interrupted ones resume)")
    runner.add_argument("--detach", action="store_true",
                        help="run the queue in the background, so it survives closing the terminal")
    runner.set_defaults(func=run_run)


def _workspace_of(config_file: Path | None) -> tuple[Path, Path]:
    """(workspace folder, config file): --config's folder, else the nearest lorakit.toml from here."""
    from prep.config import WORKSPACE_FILE, find_workspace_file

    if config_file is not None:
        if not config_file.is_file():
            raise UserError(f"{config_file}: no such config file")
        return config_file.resolve().parent, config_file
    found = find_workspace_file(Path.cwd())
    if found is None:
        raise UserError(f"no {WORKSPACE_FILE} in the current folder or its parent; run in a workspace "
                        f"(lorakit ui --init DIR makes one) or pass --config FILE")
    return found.resolve().parent, found


def _queue():
    from trainer.queue import JobQueue

    workspace, _ = _workspace_of(None)
    return JobQueue(workspace)


def run_add(args: argparse.Namespace) -> int:
    from trainer.checks import DeviceInfo, check_config
    from trainer.config import load_config
    from trainer.queue import JobQueue, freeze_paths

    workspace, config_file = _workspace_of(args.config)
    config = freeze_paths(load_config(config_file, args), Path.cwd())
    check_config(config, DeviceInfo.guess())  # a job that cannot start is refused now, not found failed later
    job = JobQueue(workspace).add(config)
    print(f"queued {job.id}: output {Path(job.output_dir) / job.output_name}.safetensors")
    return 0


def run_list(args: argparse.Namespace) -> int:
    queue = _queue()
    listing = queue.to_list()
    if args.json:
        print_json(listing)
        return 0
    jobs = queue.jobs()
    if not jobs:
        print("the queue is empty (lorakit queue add queues a run)")
        return 0
    for job in jobs:
        tail = job.lora or job.message
        print(f"{job.id}  {job.status:<8} {job.output_name}" + (f"  {tail}" if tail else ""))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    job = _queue().remove(args.id)
    print(f"removed {job.id} ({job.status}, {job.output_name})")
    return 0


def run_run(args: argparse.Namespace) -> int:
    from trainer.queue_runner import QueueRunner, detach, runner_pid

    queue = _queue()
    if args.detach:
        running = runner_pid(queue)
        if running is not None:
            raise UserError(f"a queue runner is already running on {queue.workspace} (pid {running})")
        pid = detach(queue)
        print(f"queue runner started in the background (pid {pid}); log: {queue.folder / 'runner.log'}")
        return 0

    def show(job) -> None:
        print(f"{job.id}  {job.status:<8} {job.output_name}" + (f"  {job.message}" if job.message else ""),
              file=sys.stderr, flush=True)

    jobs = QueueRunner(queue, on_job=show).run()
    if not jobs:
        print("nothing to run: no queued job")
        return 0
    failed = [j for j in jobs if j.status == "failed"]
    stopped = [j for j in jobs if j.status == "stopped"]
    print(f"ran {len(jobs)} job(s): {len(jobs) - len(failed) - len(stopped)} done, {len(failed)} failed, "
          f"{len(stopped)} stopped")
    return 1 if failed else (130 if stopped else 0)
