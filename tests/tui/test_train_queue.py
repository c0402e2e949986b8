"""The run queue from the Train screen, against real trainer processes on the tiny model: `a` queues
the form (a frozen TrainConfig in .lorakit/queue/), `[` reorders, `u` runs the queue in the background,
the table shows each job's status and progress, the reopened app follows the running job, `k` stops
it (state saved); `lorakit queue list --json` agrees at each step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import DataTable, TabbedContent

from prep.config import read_toml
from tests.tui.conftest import tiny_train_table, wait_until
from tui.app import make_app
from tui.screens.train import TrainScreen

pytestmark = pytest.mark.asyncio


def listed(workspace: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, "-m", "tui", "queue", "list", "--json"], cwd=workspace,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["jobs"]


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


@pytest.mark.slow
async def test_queue_add_reorder_run_and_stop_from_the_train_screen(workspace: Path, tiny_base: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    from trainer.queue import JobQueue
    from trainer.queue_runner import runner_pid

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    tiny_train_table(workspace, tiny_base, steps=2, name="q")
    queue = JobQueue(workspace)
    app = make_app(workspace)
    try:
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("7")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, TrainScreen)
            steps = screen.query_one("#field-max_train_steps")
            await pilot.press("a")  # job 1: the form as it is (2 steps)
            steps.value = "3000"
            await pilot.pause()
            await pilot.press("a")  # job 2: 3000 steps, the same output name made unique
            table = screen.query_one("#queue-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 2, what="two queued jobs")
            short, long = listed(workspace)
            assert (short["output_name"], long["output_name"]) == ("q", "q-2")
            frozen = read_toml(queue.config_path(long["id"]))["train"]
            assert frozen["max_train_steps"] == 3000 and Path(frozen["dataset"]).is_absolute()
            tiny_train_table(workspace, tiny_base, steps=7, name="edited")  # a later edit changes no job
            assert read_toml(queue.config_path(short["id"]))["train"]["max_train_steps"] == 2

            screen.query_one(TabbedContent).active = "tab-queue"
            await pilot.pause()
            table.move_cursor(row=1)
            await pilot.press("left_square_bracket")  # the long job first
            await wait_until(pilot, lambda: rows(table)[0][0] == long["id"], what="the reordered table")
            assert [j["id"] for j in listed(workspace)] == [long["id"], short["id"]]
            assert screen.selected_job() == long["id"]  # the selection follows the moved job
            screen.refresh_queue()
            assert screen.selected_job() == long["id"]  # and survives the periodic refresh

            await pilot.press("u")  # the queue runs in the background
            await wait_until(pilot, lambda: runner_pid(queue) is not None, timeout=30, what="the runner")
            await wait_until(pilot, lambda: rows(table)[0][1] == "running" and "/3000" in rows(table)[0][3],
                             timeout=300, what="the first job's progress in the table")
            assert rows(table)[1][1] == "queued"
            assert [j["status"] for j in listed(workspace)] == ["running", "queued"]
        # The runner outlives the app; reopened, the Train screen follows the queue's running job live.
        app = make_app(workspace)
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("7")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, TrainScreen)
            await wait_until(pilot, lambda: screen.trainer is not None, what="reattach")
            assert screen.trainer.events == queue.events_path(long["id"]) and screen.running
            seen = len(screen.losses)
            await wait_until(pilot, lambda: len(screen.losses) > seen, timeout=120, what="the job's steps, live")
            table = screen.query_one("#queue-table", DataTable)
            await wait_until(pilot, lambda: table.row_count == 2, what="the queue listed")
            assert rows(table)[0][1] == "running"
            await pilot.press("ctrl+r")  # one run at a time: refused while the queue runs a job
            await pilot.pause()
            assert screen.trainer.events == queue.events_path(long["id"])
            assert not list((workspace / ".lorakit" / "runs").glob("*.jsonl"))
            await pilot.press("k")  # stop: the trainer saves its state, the queue ends
            await wait_until(pilot, lambda: rows(table)[0][1] == "stopped", timeout=300, what="the stopped job")
            await wait_until(pilot, lambda: runner_pid(queue) is None, timeout=60, what="the runner to end")
            assert [(j["id"], j["status"]) for j in listed(workspace)] == [(long["id"], "stopped"),
                                                                          (short["id"], "queued")]
            stopped_at = int(rows(table)[0][3].split("/")[0])
            assert 0 < stopped_at < 3000
            record = json.loads(queue.record_path(long["id"]).read_text())
            assert record["status"] == "stopped" and "resumes it" in record["message"]
            assert any((workspace / "output").glob("q-2-step*-state/train_state.json"))  # its state was saved
            await wait_until(pilot, lambda: "stopped" in str(screen.query_one("#train-status").render()),
                             timeout=60, what="the followed job shown stopped")
            await pilot.press("R")  # a queue job resumes through the queue (its frozen config), not the form
            await pilot.pause()
            assert screen.trainer.events == queue.events_path(long["id"]) and not screen.running
    finally:
        pid = runner_pid(queue)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
