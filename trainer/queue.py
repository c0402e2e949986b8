"""The run queue's store: one JSON file per job under `<workspace>/.lorakit/queue/` (no torch here).

A job is a frozen copy of its resolved TrainConfig (`<id>.toml`, absolute paths), so editing
lorakit.toml later does not change it, with its own events file (`<id>.jsonl`) and a unique
`output_name`. Its record (`<id>.json`) holds the status: queued, running, done, failed or stopped.
A job left "running" by a runner that no longer exists (a crash, a reboot) reads as failed with
`interrupted` set; `queue run` resumes such a job (and a stopped one) from its newest saved state.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prep.fsio import atomic_write_text
from trainer.config import PATH_FIELDS, TrainConfig
from trainer.errors import TrainError
from trainer.run_pid import process_alive

STATE_FILE = "train_state.json"  # as trainer.saving writes it (that module needs torch)


class QueueError(TrainError):
    """A queue command cannot do what was asked (unknown job, a runner already running)."""


def boot_id() -> str:
    """Changes at every reboot (Linux); a pid recorded before a reboot means nothing after it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: int | None, boot: str = "") -> bool:
    if not pid or (boot and boot != boot_id()):
        return False
    return process_alive(pid)


@dataclass
class Job:
    id: str
    output_name: str
    output_dir: str
    save_state: bool
    status: str = "queued"
    created: float = 0.0
    runner_pid: int | None = None
    boot: str = ""
    returncode: int | None = None
    lora: str | None = None
    message: str = ""
    interrupted: bool = False
    resumed_from: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def newest_state(output_dir: str | Path, output_name: str) -> Path | None:
    """The saved state of this output name with the highest step (None when there is none)."""
    best: tuple[int, float, Path] | None = None
    try:
        folders = list(Path(output_dir).glob(f"{output_name}*-state"))
    except OSError:
        return None
    for folder in folders:
        rest = folder.name[len(output_name):-len("-state")]
        if rest and not rest.startswith("-"):
            continue  # another output name that starts with this one
        try:
            step = int(json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))["step"])
            mtime = folder.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if best is None or (step, mtime) > best[:2]:
            best = (step, mtime, folder)
    return best[2] if best else None


class JobQueue:
    """The jobs of one workspace, oldest first."""

    def __init__(self, workspace: str | Path) -> None:
        self.workspace = Path(workspace).resolve()
        self.folder = self.workspace / ".lorakit" / "queue"

    # -- files -------------------------------------------------------------------------------
    def record_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.json"

    def config_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.toml"

    def events_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.jsonl"

    def log_path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.log"

    @property
    def lock_path(self) -> Path:
        return self.folder / "runner.lock"

    def save(self, job: Job) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.record_path(job.id), json.dumps(asdict(job), indent=2) + "\n")

    def get(self, job_id: str) -> Job:
        try:
            job = Job.from_dict(json.loads(self.record_path(job_id).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise QueueError(f"no queued job {job_id!r}; `lorakit queue list` shows the ids") from None
        except (OSError, ValueError, TypeError) as exc:
            raise QueueError(f"{self.record_path(job_id)}: unreadable job record ({exc})") from None
        return self._settle(job)

    def jobs(self) -> list[Job]:
        """Every job, oldest first; one left running by a dead runner reads as failed (interrupted)."""
        try:
            records = sorted(self.folder.glob("*.json"))
        except OSError:
            return []
        out = []
        for path in records:
            try:
                out.append(self.get(path.stem))
            except QueueError:
                continue  # a damaged record is skipped, not fatal to the listing
        return sorted(out, key=lambda j: (j.created, j.id))

    def _settle(self, job: Job) -> Job:
        if job.status == "running" and not pid_alive(job.runner_pid, job.boot):
            job.status, job.interrupted = "failed", True
            job.message = "interrupted: the queue runner stopped (a crash or a reboot) while this job ran"
            self.save(job)
        return job

    # -- changes -----------------------------------------------------------------------------
    def add(self, config: TrainConfig) -> Job:
        """Freeze a resolved config as a new queued job (its output name made unique)."""
        import tomli_w

        taken = {j.output_name for j in self.jobs() if j.output_dir == str(config.output_dir)}
        name = unique_output_name(config, taken)
        config.output_name = name
        job_id = time.strftime("%Y%m%d-%H%M%S")
        n = 1
        while self.record_path(job_id).exists() or self.config_path(job_id).exists():
            n += 1
            job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{n}"
        self.folder.mkdir(parents=True, exist_ok=True)
        values = {k: v for k, v in config.to_dict().items() if v is not None}
        atomic_write_text(self.config_path(job_id), "# a queued job: a frozen copy of its resolved [train]\n"
                          + tomli_w.dumps({"train": values}))
        job = Job(job_id, name, str(config.output_dir), bool(config.save_state), created=time.time())
        self.save(job)
        return job

    def remove(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status == "running":
            raise QueueError(f"job {job_id} is running; stop the queue first (its runner pid {job.runner_pid})")
        for path in (self.record_path(job_id), self.config_path(job_id)):
            path.unlink(missing_ok=True)
        return job

    def move(self, job_id: str, delta: int) -> list[Job]:
        """Move a job up (delta < 0) or down the run order; returns the jobs in their new order."""
        jobs = self.jobs()
        index = next((i for i, j in enumerate(jobs) if j.id == job_id), None)
        if index is None:
            raise QueueError(f"no queued job {job_id!r}; `lorakit queue list` shows the ids")
        target = max(0, min(len(jobs) - 1, index + delta))
        if target == index:
            return jobs
        jobs.insert(target, jobs.pop(index))
        base = min(j.created for j in jobs)
        for n, job in enumerate(jobs):  # the run order is the created order: renumber it
            if job.created != base + n * 1e-3:
                job.created = base + n * 1e-3
                self.save(job)
        return jobs

    def to_list(self) -> dict[str, Any]:
        """`lorakit queue list --json`."""
        return {"jobs": [{"id": j.id, "status": j.status, "output_name": j.output_name,
                          "events": str(self.events_path(j.id)), "lora": j.lora} for j in self.jobs()]}


def freeze_paths(config: TrainConfig, base: Path) -> TrainConfig:
    """Every relative path field made absolute against base (a hub id that is no file stays as it is)."""
    for name in PATH_FIELDS:
        value = getattr(config, name, None)
        if value is None or value == "" or Path(value).expanduser().is_absolute():
            continue
        path = (base / Path(value).expanduser()).resolve()
        if isinstance(value, str) and not path.exists():
            continue  # e.g. pretrained_model = "org/model"
        setattr(config, name, path if isinstance(value, Path) else str(path))
    return config


def unique_output_name(config: TrainConfig, taken: set[str]) -> str:
    """config.output_name, or `<name>-2`, `-3`… when a queued job or a file in output_dir has it."""
    base = config.output_name
    out = Path(config.output_dir)

    def used(name: str) -> bool:
        return name in taken or (out / f"{name}.safetensors").exists()

    name, n = base, 1
    while used(name):
        n += 1
        name = f"{base}-{n}"
    return name
