"""`lorakit queue run`: the jobs of a workspace's queue, one trainer process after another (no torch here).

One runner per workspace (a lock file holds its pid). Each job runs as `python -m trainer --config
<id>.toml --events <id>.jsonl`, resumed with `--resume STATE` from its newest state when it was
stopped or interrupted before. SIGINT or SIGTERM to the runner stops the current job the trainer's
way (SIGINT: it saves its state), marks it stopped and ends the queue; the trainer dies with the
runner (a crash leaves no orphan training on).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from trainer.queue import Job, JobQueue, QueueError, boot_id, newest_state
from trainer.run_pid import record_pid

TRAINER_COMMAND = (sys.executable, "-m", "trainer")


def _die_with_parent() -> None:
    """In the trainer child: SIGTERM when the runner dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def runnable(job: Job) -> bool:
    """Queued, or stopped / interrupted before it finished (those resume)."""
    return job.status == "queued" or job.status == "stopped" or (job.status == "failed" and job.interrupted)


def runner_pid(queue: JobQueue) -> int | None:
    """The pid of the runner working on this queue, None when none is."""
    try:
        fd = os.open(queue.lock_path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class QueueRunner:
    """Runs runnable jobs in order until none is left or it is told to stop."""

    def __init__(self, queue: JobQueue, command: Sequence[str] = TRAINER_COMMAND,
                 on_job: Callable[[Job], None] | None = None) -> None:
        self.queue, self.command, self.on_job = queue, tuple(command), on_job
        self.stop_requested = False
        self.child: subprocess.Popen[bytes] | None = None

    def _on_signal(self, signum, frame) -> None:
        self.stop_requested = True
        if self.child is not None and self.child.poll() is None:
            try:
                self.child.send_signal(signal.SIGINT)  # the trainer saves its state and exits 130
            except ProcessLookupError:
                pass

    def run(self) -> list[Job]:
        self.queue.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.queue.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise QueueError(f"a queue runner is already running on {self.queue.workspace} "
                                 f"(pid {os.pread(fd, 32, 0).decode('ascii', 'replace').strip()})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                return self._loop()
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
        finally:
            os.close(fd)  # releases the lock

    def _loop(self) -> list[Job]:
        finished: list[Job] = []
        while not self.stop_requested:
            job = next((j for j in self.queue.jobs() if runnable(j)), None)
            if job is None:
                break
            finished.append(self.run_job(job))
        return finished

    def run_job(self, job: Job) -> Job:
        queue = self.queue
        argv = [*self.command, "--config", str(queue.config_path(job.id)), "--events", str(queue.events_path(job.id))]
        state = newest_state(job.output_dir, job.output_name) if job.status != "queued" else None
        if state is not None:
            argv += ["--resume", str(state)]
        job.status, job.runner_pid, job.boot = "running", os.getpid(), boot_id()
        job.interrupted, job.returncode, job.message = False, None, ""
        job.resumed_from = str(state) if state else None
        queue.save(job)
        if self.on_job:
            self.on_job(job)
        with open(queue.log_path(job.id), "ab") as log:
            self.child = subprocess.Popen(argv, cwd=queue.workspace, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            record_pid(queue.events_path(job.id), self.child.pid)  # the TUI follows the job by it
            if self.stop_requested:  # a stop that came while the child was starting
                self._on_signal(signal.SIGINT, None)
            code = self._wait(self.child)
        self.child = None
        job.returncode = code
        done, error = _outcome(queue.events_path(job.id))
        if code == 0:
            job.status, job.lora = "done", done
        elif code in (130, -signal.SIGINT):
            job.status, job.message = "stopped", "stopped; `lorakit queue run` resumes it from its saved state"
            self.stop_requested = True  # stopped from outside (the Train screen's x): the queue ends too
        else:
            job.status = "failed"
            job.message = error or _tail(queue.log_path(job.id)) or f"the trainer exited with code {code}"
        queue.save(job)
        if self.on_job:
            self.on_job(job)
        return job

    @staticmethod
    def _wait(child: subprocess.Popen[bytes]) -> int:
        while True:
            try:
                return child.wait()
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for odd platforms
                continue


def _outcome(events: Path) -> tuple[str | None, str | None]:
    """(the done event's LoRA path, the error event's message) of a job's events file."""
    done = error = None
    try:
        lines = events.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None, None
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "done":
            done = str(event.get("path"))
        elif isinstance(event, dict) and event.get("event") == "error":
            error = str(event.get("message"))
    return done, error


def _tail(log: Path) -> str:
    try:
        lines = [x for x in log.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def detach(queue: JobQueue) -> int:
    """Start the runner in the background, in its own session (it outlives the terminal); its pid."""
    queue.folder.mkdir(parents=True, exist_ok=True)
    with open(queue.folder / "runner.log", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "trainer.queue_runner", str(queue.workspace)],
                                   cwd=queue.workspace,
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    return process.pid


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m trainer.queue_runner WORKSPACE` (what `lorakit queue run --detach` starts)."""
    from prep.errors import UserError

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m trainer.queue_runner WORKSPACE", file=sys.stderr)
        return 2
    try:
        jobs = QueueRunner(JobQueue(args[0]), on_job=_print_job).run()
    except UserError as exc:
        print(f"queue: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0 if all(j.status == "done" for j in jobs) else 1


def _print_job(job: Job) -> None:
    print(f"{job.id}  {job.status:<8} {job.output_name}" + (f"  {job.message}" if job.message else ""), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
