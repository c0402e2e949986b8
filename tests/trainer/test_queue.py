"""`lorakit queue`: frozen jobs, unique output names, runs in order, a stopped job and a crashed runner resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.trainer.conftest import make_train_dataset

JOB_KEYS = {"id", "status", "output_name", "events", "lora"}


def _workspace(tmp_path: Path, model: Path, steps: int = 2, **extra) -> Path:
    root = tmp_path / "ws"
    make_train_dataset(root / "dataset", images=2)
    lines = ["[train]", f'pretrained_model = "{model}"', 'dataset = "dataset"', 'output_dir = "output"',
             'output_name = "job"', 'resolution = "64"', "min_bucket_reso = 32", "max_bucket_reso = 128",
             "bucket_reso_steps = 32", "network_dim = 4", "network_alpha = 2.0", f"max_train_steps = {steps}"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    (root / "lorakit.toml").write_text("\n".join(lines) + "\n")
    return root


def _cli(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "tui", *args], cwd=root, capture_output=True, text=True,
                          env=env, timeout=timeout)


def _jobs(root: Path) -> list[dict]:
    proc = _cli(root, "queue", "list", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"jobs"}
    for job in data["jobs"]:
        assert set(job) == JOB_KEYS
    return data["jobs"]


def _events(path: str | Path) -> list[dict]:
    try:
        return [json.loads(x) for x in Path(path).read_text().splitlines() if x.strip()]
    except FileNotFoundError:
        return []


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _start_runner(root: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "tui", "queue", "run"], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def test_add_freezes_the_config_and_makes_output_names_unique(tmp_path: Path, tiny_sd1: Path):
    root = _workspace(tmp_path, tiny_sd1)
    assert _cli(root, "queue", "add").returncode == 0
    assert _cli(root, "queue", "add", "--network-dim", "8").returncode == 0
    (root / "output").mkdir()
    (root / "output" / "job-3.safetensors").write_bytes(b"not ours")  # a file of that name exists already
    assert _cli(root, "queue", "add").returncode == 0
    jobs = _jobs(root)
    assert [j["output_name"] for j in jobs] == ["job", "job-2", "job-4"]
    assert all(j["status"] == "queued" and j["lora"] is None for j in jobs)
    assert len({j["events"] for j in jobs}) == 3
    assert all(Path(j["events"]).parent == root.resolve() / ".lorakit" / "queue" for j in jobs)
    # Editing lorakit.toml later changes no queued job.
    (root / "lorakit.toml").write_text((root / "lorakit.toml").read_text().replace("network_dim = 4", "network_dim = 64"))
    from trainer.config import load_config

    frozen = [load_config(root / ".lorakit" / "queue" / f"{j['id']}.toml") for j in jobs]
    assert [c.network_dim for c in frozen] == [4, 8, 4]
    assert all(Path(c.dataset).is_absolute() and Path(c.output_dir) == root.resolve() / "output" for c in frozen)

    from trainer.queue import JobQueue

    moved = JobQueue(root).move(jobs[2]["id"], -2)  # reorder: the last job runs first
    assert [j.id for j in moved] == [jobs[2]["id"], jobs[0]["id"], jobs[1]["id"]]
    assert [j["id"] for j in _jobs(root)] == [jobs[2]["id"], jobs[0]["id"], jobs[1]["id"]]
    JobQueue(root).move(jobs[2]["id"], 2)
    assert [j["id"] for j in _jobs(root)] == [j["id"] for j in jobs]
    removed = _cli(root, "queue", "remove", jobs[1]["id"])
    assert removed.returncode == 0
    assert [j["id"] for j in _jobs(root)] == [jobs[0]["id"], jobs[2]["id"]]
    unknown = _cli(root, "queue", "remove", "nope")
    assert unknown.returncode == 1 and "no queued job 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    # A job left "running" before a reboot (another boot id) reads as failed and interrupted, even
    # though its recorded runner pid is alive now (pids are reused after a reboot).
    queue = JobQueue(root)
    job = queue.get(jobs[0]["id"])
    job.status, job.runner_pid, job.boot = "running", os.getpid(), "an-earlier-boot"
    queue.save(job)
    settled = queue.get(job.id)
    assert settled.status == "failed" and settled.interrupted and "reboot" in settled.message
    assert _jobs(root)[0]["status"] == "failed"
    bad = _cli(root, "queue", "add", "--mixed-precision", "fp16")  # refused at once: no GPU here
    assert bad.returncode == 1 and "needs a GPU" in bad.stderr
    assert len(_jobs(root)) == 2


@pytest.mark.slow
def test_two_jobs_in_order_a_stopped_job_resumes(tmp_path: Path, tiny_sd1: Path):
    root = _workspace(tmp_path, tiny_sd1, steps=40)
    assert _cli(root, "queue", "add").returncode == 0
    assert _cli(root, "queue", "add", "--max-train-steps", "2").returncode == 0
    first, second = _jobs(root)

    runner = _start_runner(root)
    _wait_for(lambda: any(e["event"] == "step" for e in _events(first["events"])), 300, "the first job's steps")
    assert [j["status"] for j in _jobs(root)] == ["running", "queued"]
    runner.send_signal(signal.SIGINT)  # stop: the trainer saves its state, the queue ends
    out, err = runner.communicate(timeout=300)
    assert runner.returncode == 130, err
    jobs = _jobs(root)
    assert [j["status"] for j in jobs] == ["stopped", "queued"]
    stopped_at = [e for e in _events(first["events"]) if e["event"] == "step"][-1]["step"]
    assert stopped_at < 40

    again = _cli(root, "queue", "run")
    assert again.returncode == 0, again.stderr
    jobs = _jobs(root)
    assert [j["status"] for j in jobs] == ["done", "done"]
    # In order: the stopped job resumed and finished before the second started.
    assert again.stderr.index(f"{first['id']}  done") < again.stderr.index(f"{second['id']}  running")
    resumed = [e for e in _events(first["events"]) if e["event"] == "step"]
    assert resumed[0]["step"] == stopped_at + 1 and resumed[-1]["step"] == 40
    for job in jobs:
        assert Path(job["lora"]).is_file() and Path(job["lora"]).name == f"{job['output_name']}.safetensors"
    assert _cli(root, "queue", "run").stdout.startswith("nothing to run")


@pytest.mark.slow
def test_a_crashed_runner_is_marked_and_the_job_resumes_from_its_state(tmp_path: Path, tiny_sd1: Path):
    root = _workspace(tmp_path, tiny_sd1, steps=30, save_state=True, save_every_n_steps=3)
    assert _cli(root, "queue", "add").returncode == 0
    (job,) = _jobs(root)
    runner = _start_runner(root)
    states = root / "output"
    _wait_for(lambda: any(states.glob("job-step*-state/train_state.json")), 300, "a saved state")
    os.killpg(runner.pid, signal.SIGKILL)  # a crash: no handler runs, the trainer dies with its runner
    runner.communicate(timeout=60)
    (crashed,) = _jobs(root)
    assert crashed["status"] == "failed"
    record = json.loads((root / ".lorakit" / "queue" / f"{job['id']}.json").read_text())
    assert record["interrupted"] and "interrupted" in record["message"]
    saved = [e["step"] for e in _events(job["events"]) if e["event"] == "save"]

    again = _cli(root, "queue", "run")
    assert again.returncode == 0, again.stderr
    (done,) = _jobs(root)
    assert done["status"] == "done" and Path(done["lora"]).is_file()
    record = json.loads((root / ".lorakit" / "queue" / f"{job['id']}.json").read_text())
    assert record["resumed_from"] and Path(record["resumed_from"]).name.endswith("-state")
    steps = [e["step"] for e in _events(job["events"]) if e["event"] == "step"]
    assert steps[0] > 1 and steps[0] - 1 in saved and steps[-1] == 30


@pytest.mark.slow
def test_detach_runs_the_queue_in_its_own_session(tmp_path: Path, tiny_sd1: Path):
    """`queue run --detach` returns at once; the runner has its own session (closing the terminal does
    not reach it), runs the job to the end and leaves each job's trainer pid beside its events."""
    import re

    from trainer.queue import JobQueue
    from trainer.queue_runner import runner_pid

    root = _workspace(tmp_path, tiny_sd1, steps=2)
    assert _cli(root, "queue", "add").returncode == 0
    (job,) = _jobs(root)
    terminal = _cli(root, "queue", "run", "--detach", timeout=60)
    assert terminal.returncode == 0, terminal.stderr
    pid = int(re.search(r"in the background \(pid (\d+)\)", terminal.stdout).group(1))
    try:
        assert os.getsid(pid) == pid != os.getsid(0)  # a session of its own: no SIGHUP from our terminal
        _wait_for(lambda: runner_pid(JobQueue(root)) == pid, 60, "the runner's lock")
        refused = _cli(root, "queue", "run", "--detach", timeout=60)
        assert refused.returncode == 1 and f"already running on {root.resolve()} (pid {pid})" in refused.stderr
        _wait_for(lambda: _jobs(root)[0]["status"] == "done", 300, "the detached job")
        _wait_for(lambda: runner_pid(JobQueue(root)) is None, 60, "the runner to end")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (done,) = _jobs(root)
    assert Path(done["lora"]).is_file()
    assert f"{job['id']}  done" in (root / ".lorakit" / "queue" / "runner.log").read_text()
    recorded = int(Path(done["events"]).with_suffix(".pid").read_text())
    assert recorded != pid  # the job's trainer, not the runner
