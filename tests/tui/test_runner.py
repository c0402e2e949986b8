"""tui.runner: a stage's events become messages on the main thread; errors never kill the app."""

from __future__ import annotations

import threading

import pytest
from textual.app import App
from textual.worker import WorkerFailed, WorkerState

from prep.errors import PrepError
from prep.events import Advanced, Finished, Started, Warned
from tests.tui.conftest import wait_until
from tui.messages import StageFailed, StageFinished, StageProgress, StageStarted, StageWarnings
from tui.runner import result_of, run_stage

pytestmark = pytest.mark.asyncio


class Recorder(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple] = []
        self.threads: set[int] = set()

    def _record(self, *entry) -> None:
        self.threads.add(threading.get_ident())
        self.seen.append(entry)

    def on_stage_started(self, m: StageStarted) -> None:
        self._record("started", m.group, m.total)

    def on_stage_progress(self, m: StageProgress) -> None:
        self._record("progress", m.group, m.done, m.total, m.item)

    def on_stage_warnings(self, m: StageWarnings) -> None:
        for message, path in m.items:
            self._record("warned", m.group, message, path)

    def on_stage_finished(self, m: StageFinished) -> None:
        self._record("finished", m.group, m.summary)

    def on_stage_failed(self, m: StageFailed) -> None:
        self._record("failed", m.group, m.error, m.user_error)


def stage(fail: Exception | None = None):
    yield Started("demo", 3)
    yield Advanced(2, "b.png")
    yield Warned("too small", "b.png")
    if fail is not None:
        raise fail
    yield Advanced(1, "c.png")
    yield Finished({"done": 3})


async def test_events_arrive_in_order_on_the_main_thread():
    app = Recorder()
    async with app.run_test() as pilot:
        run_stage(app, "demo", lambda: stage())
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.seen[0] == ("started", "demo", 3)
        assert app.seen[-1] == ("finished", "demo", {"done": 3})
        progress = [s for s in app.seen if s[0] == "progress"]
        assert progress[-1] == ("progress", "demo", 3, 3, "c.png")  # cumulative, the newest kept
        assert ("warned", "demo", "too small", "b.png") in app.seen
        assert app.threads == {threading.get_ident()}


async def test_user_error_is_one_message_and_a_bug_keeps_its_traceback():
    app = Recorder()
    async with app.run_test() as pilot:
        worker = run_stage(app, "user", lambda: stage(PrepError("dataset/x.txt: bad caption")))
        await app.workers.wait_for_complete()
        assert worker.state == WorkerState.SUCCESS
        bug = run_stage(app, "bug", lambda: stage(ZeroDivisionError("division by zero")))
        with pytest.raises(WorkerFailed):
            await bug.wait()
        await pilot.pause()
        assert bug.state == WorkerState.ERROR and isinstance(bug.error, ZeroDivisionError)
        assert ("failed", "user", "dataset/x.txt: bad caption", True) in app.seen
        assert ("failed", "bug", "ZeroDivisionError: division by zero", False) in app.seen
        assert not [s for s in app.seen if s[0] == "finished"]
        assert app.is_running  # exit_on_error=False: the app survives


async def test_result_of_wraps_a_plain_function():
    app = Recorder()
    async with app.run_test() as pilot:
        run_stage(app, "sum", result_of(sum, [1, 2, 3]))
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.seen == [("finished", "sum", 6)]


async def test_a_newer_run_cancels_the_older_one_and_closes_its_generator():
    closed = threading.Event()
    release = threading.Event()

    def slow():
        try:
            yield Started("slow", None)
            release.wait(5)
            yield Advanced(1, "x")
            yield Finished("old")
        finally:
            closed.set()

    app = Recorder()
    async with app.run_test() as pilot:
        first = run_stage(app, "g", slow)
        await pilot.pause(0.1)
        second = run_stage(app, "g", result_of(str, "new"))
        release.set()
        await second.wait()
        await wait_until(pilot, closed.is_set, what="the old generator closed")
        await pilot.pause()
        assert first.is_cancelled
        assert [s for s in app.seen if s[0] == "finished"] == [("finished", "g", "new")]


async def test_an_oserror_is_one_line_with_the_path(tmp_path):
    """Issue 14 #17: a file the user can fix (here: a folder where a file belongs) is a user error."""
    folder = tmp_path / "a.txt"
    folder.mkdir()

    def writes_into_a_folder():
        yield Started("demo", 1)
        folder.write_bytes(b"x")  # IsADirectoryError, a real one

    app = Recorder()
    async with app.run_test() as pilot:
        worker = run_stage(app, "os", writes_into_a_folder)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert worker.state == WorkerState.SUCCESS  # not a crash
        (failed,) = [s for s in app.seen if s[0] == "failed"]
        assert failed[1] == "os" and failed[3] is True
        assert str(folder) in failed[2] and "is a folder" in failed[2] and "\n" not in failed[2]


def many_warnings(n: int):
    yield Started("flood", n)
    for i in range(n):
        yield Warned(f"w{i}", f"{i}.png")
    yield Finished(n)


async def test_warnings_arrive_batched_and_all_before_the_result():
    app = Recorder()
    batches: list[int] = []
    async with app.run_test(message_hook=lambda m: batches.append(len(m.items))
                            if isinstance(m, StageWarnings) else None) as pilot:
        run_stage(app, "flood", lambda: many_warnings(5000))
        await app.workers.wait_for_complete()
        await pilot.pause()
        warned = [s for s in app.seen if s[0] == "warned"]
        assert [s[2] for s in warned] == [f"w{i}" for i in range(5000)]
        assert app.seen[-1] == ("finished", "flood", 5000)
        assert sum(batches) == 5000 and len(batches) < 100  # not one message per warning
