"""Train screen: following a real events file, a stand-in trainer process stopped with SIGINT, and
the real `python -m trainer` failing on an unconfigured workspace."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from textual.widgets import Button, ProgressBar, Static

from tests.conftest import write_image
from tests.tui.conftest import tiny_train_table, wait_until
from tui.app import make_app
from tui.screens.train import QuitWhileTraining, TrainScreen
from tui.trainer_run import TrainerRun

pytestmark = pytest.mark.asyncio
STANDIN = [sys.executable, str(Path(__file__).with_name("standin_trainer.py"))]


def log_text(screen: TrainScreen) -> str:
    return "\n".join(screen.log_lines)


def status(screen: TrainScreen) -> str:
    return str(screen.query_one("#train-status", Static).render())


async def open_train(pilot) -> TrainScreen:
    await pilot.press("7")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, TrainScreen)
    return screen


def append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()


def line(event: str, **fields) -> str:
    return json.dumps({"event": event, **fields}) + "\n"


async def test_follows_an_events_file_as_the_trainer_writes_it(workspace: Path):
    events = workspace / "events.jsonl"  # not there yet: the tailer waits for it
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        screen.follow(TrainerRun(events=events))
        bar = screen.query_one("#train-progress", ProgressBar)
        append(events, line("warning", message="network_alpha 64 > network_dim 32"))
        append(events, line("start", total_steps=40, epochs=2, images=5, config={}))
        await wait_until(pilot, lambda: bar.total == 40, what="start event")
        assert "warning: network_alpha 64 > network_dim 32" in log_text(screen)
        for step in range(1, 11):
            append(events, line("step", step=step, epoch=1, loss=0.25, lr=1e-4, it_per_s=2.5, eta_s=(40 - step) / 2.5))
        # A line the trainer is still writing must wait for its newline.
        append(events, '{"event": "step", "step": 11, "epoch": 1, "lo')
        await wait_until(pilot, lambda: bar.progress == 10, what="step 10")
        await pilot.pause(0.5)
        assert bar.progress == 10
        assert status(screen) == "step 10/40  epoch 1  loss 0.2500  lr 1.00e-04  2.50 it/s  ETA 0:12"
        append(events, 'ss": 0.125, "lr": 5e-05, "it_per_s": 2.0, "eta_s": 3725}\n')
        await wait_until(pilot, lambda: bar.progress == 11, what="step 11")
        assert "loss 0.1250" in status(screen) and "ETA 1:02:05" in status(screen)
        sample = write_image(workspace / "output" / "sample" / "lora_000020_00.png", (64, 64), (0, 0, 250))
        append(events, line("sample", step=20, path=str(sample)))
        preview = screen.query_one("#train-sample")
        await wait_until(pilot, lambda: preview.loaded == sample, what="the sample image shown")
        append(events, "not json at all\n" + line("save", step=20, path="output/lora-000001.safetensors"))
        append(events, line("done", path="output/lora.safetensors", steps=40, seconds=75.0))
        await app.workers.wait_for_complete()  # a done event ends a file-only tail
        await pilot.pause()
        assert bar.progress == 40
        text = log_text(screen)
        assert "save at step 20: output/lora-000001.safetensors" in text
        assert "done: output/lora.safetensors (40 steps, 1:15)" in text
        assert "not json" not in text
        assert [step for step, _ in screen.losses] == list(range(1, 12))  # every step kept for the plot


async def test_at_80x24_the_log_is_readable_and_a_resume_path_wraps_whole(workspace: Path):
    runs = workspace / ".lorakit" / "runs"
    runs.mkdir(parents=True)
    state = workspace / "output" / ("a-rather-long-output-name-for-a-run-" * 2 + "step00000003-state")
    (runs / "20260104-100000.jsonl").write_text(
        line("start", total_steps=50, epochs=1, images=5, config={})
        + "".join(line("step", step=s, epoch=1, loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=50 - s) for s in (1, 2, 3))
        + line("warning", message=f"interrupted at step 3; state saved to {state}; continue with --resume {state}"))
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: "stopped" in status(screen), what="the stopped verdict")
        await pilot.pause(0.3)
        log = screen.query_one("#train-log")
        assert log.content_region.height >= 5 and log.content_region.width >= 70  # full width, 5+ lines
        assert screen.query_one("#loss-plot").region.height >= 6
        shown = "".join(strip.text.rstrip() for strip in log.lines)
        assert shown.count(str(state)) == 2  # wrapped, not cut: the whole path twice
        bottom = log.region.bottom
        assert bottom <= screen.query_one("#train-tabs").region.bottom  # nothing pushed off the screen


async def test_start_and_stop_a_trainer_process(workspace: Path):
    app = make_app(workspace, trainer_command=STANDIN)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        assert screen.query_one("#stop", Button).disabled
        await pilot.press("ctrl+r")
        assert screen.running and screen.query_one("#start", Button).disabled
        bar = screen.query_one("#train-progress", ProgressBar)
        await wait_until(pilot, lambda: (bar.progress or 0) >= 3, what="three steps")
        assert bar.total == 1000

        await pilot.press("q")  # quitting while training asks first
        await pilot.pause()
        assert isinstance(app.screen, QuitWhileTraining)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen and screen.running

        await pilot.click("#stop")
        await wait_until(pilot, lambda: not screen.running, what="the trainer to exit")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.trainer.process.returncode == 130
        text = log_text(screen)
        assert "stop requested" in text and "warning: interrupted at step" in text and "exit code 130" in text
        assert "stopped" in status(screen)
        # The screen shows the last step the trainer wrote to its events file.
        events = [json.loads(x) for x in screen.trainer.events.read_text().splitlines()]
        assert screen.trainer.events.parent == workspace / ".lorakit" / "runs"
        last_step = [e for e in events if e["event"] == "step"][-1]["step"]
        assert bar.progress == last_step < 1000
        assert f"--config {workspace / 'lorakit.toml'}" in text
        assert not screen.query_one("#start", Button).disabled


async def test_quit_and_stop_stops_the_trainer(workspace: Path):
    app = make_app(workspace, trainer_command=STANDIN)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("ctrl+r")
        bar = screen.query_one("#train-progress", ProgressBar)
        await wait_until(pilot, lambda: (bar.progress or 0) >= 2, what="two steps")
        process = screen.trainer.process
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitWhileTraining)
        await pilot.press("s")  # stop it (SIGINT: the trainer saves its state) and quit
        await pilot.pause()
    assert process.wait(timeout=30) == 130
    events = [json.loads(x) for x in screen.trainer.events.read_text().splitlines()]
    assert events[-1]["event"] == "warning" and events[-1]["message"].startswith("interrupted at step")


async def test_out_of_memory_shows_the_error_line_and_advice(workspace: Path):
    """A CUDA OOM kills the trainer with a traceback and no error event: its last line and the advice."""
    app = make_app(workspace, trainer_command=[*STANDIN, "--oom-at", "3"])
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.trainer is not None and not screen.running, timeout=60,
                         what="the trainer to die")
        await app.workers.wait_for_complete()
        await pilot.pause()
        error = str(screen.query_one("#train-error", Static).render())
        assert error.startswith("error: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB")
        assert "gradient_checkpointing = true" in error and "cache_latents = true" in error  # the advice
        assert "failed (exit code 1)" in status(screen)


async def test_real_trainer_error_is_shown(workspace: Path):
    """The workspace `--init` writes has no base model: the real trainer says so, and so does the screen."""
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.trainer is not None and not screen.running, timeout=90,
                         what="the trainer to fail")
        await app.workers.wait_for_complete()
        await pilot.pause()
        text = log_text(screen)
        assert any(x.startswith("error: ") and "pretrained_model" in x for x in text.splitlines())
        assert "exit code 1" in text and "failed (exit code 1)" in status(screen)
        error = str(screen.query_one("#train-error", Static).render())
        assert "pretrained_model" in error and "Set pretrained_model on the Config tab" in error  # line + advice


async def test_reopening_shows_the_last_run(workspace: Path):
    runs = workspace / ".lorakit" / "runs"
    runs.mkdir(parents=True)
    old = runs / "20260101-100000.jsonl"
    old.write_text(line("start", total_steps=5, epochs=1, images=5, config={})
                   + "".join(line("step", step=s, epoch=1, loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=5 - s)
                             for s in range(1, 4)))
    newest = runs / "20260102-100000.jsonl"
    newest.write_text(line("start", total_steps=8, epochs=2, images=4, config={})
                      + "".join(line("step", step=s, epoch=1 + s // 5, loss=0.2, lr=1e-4, it_per_s=2.0, eta_s=None)
                                for s in range(1, 9))
                      + line("done", path="output/lora.safetensors", steps=8, seconds=4.0))
    os.utime(old, (1, 1))  # the newest by time is the one shown
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        await app.workers.wait_for_complete()
        await pilot.pause()
        bar = screen.query_one("#train-progress", ProgressBar)
        assert (bar.total, bar.progress) == (8, 8)
        assert f"last run: {newest}" in log_text(screen)
        assert status(screen).startswith("step 8/8  epoch 2") and status(screen).endswith("finished")
        assert not screen.running and not screen.query_one("#start", Button).disabled


async def test_a_stopped_run_reads_as_stopped_after_reopening(workspace: Path):
    """The trainer ends a stopped run with its "interrupted" warning, not done/error: not live, stopped."""
    runs = workspace / ".lorakit" / "runs"
    runs.mkdir(parents=True)
    (runs / "20260103-100000.jsonl").write_text(
        line("start", total_steps=50, epochs=1, images=5, config={})
        + "".join(line("step", step=s, epoch=1, loss=0.1, lr=1e-4, it_per_s=1.0, eta_s=50 - s) for s in (1, 2, 3))
        + line("save", step=3, path="output/lora-step00000003.safetensors")
        + line("warning", message="interrupted at step 3; state saved to X; continue with --resume X"))
    (runs / "20260103-100000.pid").write_text("999999999\n")  # a trainer that is long gone
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: "stopped" in status(screen), what="the stopped verdict")
        assert not screen.running and screen.query_one("#stop", Button).disabled
        assert status(screen).startswith("step 3/50")


async def test_queue_add_lists_the_form_as_a_job(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        screen.query_one("#field-pretrained_model").value = "org/some-model"  # a hub id: no file needed
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        from textual.widgets import DataTable

        table = screen.query_one("#queue-table", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the queued job")
        row = table.get_row_at(0)
        assert row[1] == "queued" and row[2] == "lora"
        jobs = list((workspace / ".lorakit" / "queue").glob("*.toml"))
        assert len(jobs) == 1 and 'pretrained_model = "org/some-model"' in jobs[0].read_text()


async def test_live_validation_marks_fields_without_torch(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        field = screen.query_one("#field-resolution")
        field.value = "500"
        await pilot.pause()
        await wait_until(pilot, lambda: field.has_class("invalid"), what="the resolution marked")
        assert "resolution 500 must be a multiple of 8" in str(screen.query_one("#train-problems", Static).render())
        field.value = "512"
        await wait_until(pilot, lambda: not field.has_class("invalid"), what="the mark cleared")
        # An issue-16 option mistake (trainer.feature_checks) is marked on its own field as well.
        weights = screen.query_one("#field-down_lr_weight")
        weights.value = "sinus"
        await wait_until(pilot, lambda: weights.has_class("invalid"), what="the block weights marked")
        assert "down_lr_weight = 'sinus'" in str(screen.query_one("#train-problems", Static).render())
        weights.value = "sine"
        await wait_until(pilot, lambda: not weights.has_class("invalid"), what="the block weights cleared")
        estimate = str(screen.query_one("#train-estimate", Static).render())
        assert "GB VRAM" in estimate and "gradient_checkpointing = true" in estimate
        await wait_until(pilot, lambda: "steps (" in str(screen.query_one("#train-estimate", Static).render()),
                         what="the step count")
        field.focus()  # the focused field's help, from TrainConfig
        await pilot.pause()
        from trainer.config import TrainConfig

        help_text = TrainConfig.__dataclass_fields__["resolution"].metadata["help"]
        assert str(screen.query_one("#field-help", Static).render()) == f"resolution: {help_text}"


@pytest.mark.slow
async def test_real_trainer_start_stop_leave_reattach_resume(workspace: Path, tiny_base: Path):
    """The real trainer on the tiny model: progress and the loss plot, quit leaving it running, the
    reopened app reattaches by its events file, x stops it (state saved), R resumes from that state."""
    tiny_train_table(workspace, tiny_base, steps=60, name="pilot")
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("ctrl+r")
        assert screen.running
        await wait_until(pilot, lambda: len(screen.losses) >= 2, timeout=300, what="two steps")
        await wait_until(pilot, lambda: screen.plot_updates >= 1, timeout=10, what="the loss plot")
        assert status(screen).startswith("step ") and "/60" in status(screen)
        events = screen.trainer.events
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, QuitWhileTraining)
        await pilot.press("l")  # leave it running
        await pilot.pause()
    app = make_app(workspace)
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: screen.trainer is not None and screen.trainer.events == events, what="reattach")
        assert screen.running and f"last run: {events}" in log_text(screen)
        await wait_until(pilot, lambda: len(screen.losses) >= 1, timeout=60, what="steps after reattaching")
        await pilot.press("x")
        await wait_until(pilot, lambda: not screen.running, timeout=300, what="the trainer to stop")
        await wait_until(pilot, lambda: "stopped" in status(screen), timeout=30, what="the stopped verdict")
        stopped_at = screen.losses[-1][0]
        assert stopped_at < 60
        state = screen.resume_state()
        assert state is not None and state.name == f"pilot-step{stopped_at:08d}-state"
        await pilot.press("R")
        await wait_until(pilot, lambda: screen.running and screen.trainer.events != events, what="the resumed run")
        assert "--resume" in screen.trainer.argv
        await wait_until(pilot, lambda: screen.finished is not None, timeout=600, what="the resumed run to finish")
        assert screen.finished["event"] == "done", log_text(screen)
        assert screen.losses[0][0] == stopped_at + 1 and screen.losses[-1][0] == 60
        await wait_until(pilot, lambda: "finished" in status(screen), timeout=30, what="finished")


@pytest.mark.slow
async def test_real_trainer_nan_shows_its_error_and_advice(workspace: Path, tiny_base: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    """A learning rate of 1e30 makes the tiny model's loss NaN within a few steps: the trainer's line
    (training diverged, what to try) and the screen's advice are shown."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    tiny_train_table(workspace, tiny_base, steps=20, name="nan", learning_rate=1e30)
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.finished is not None, timeout=300, what="the error event")
        await wait_until(pilot, lambda: not screen.running, timeout=60, what="the trainer to exit")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.finished["event"] == "error" and "training diverged" in screen.finished["message"]
        assert screen.loading_notes, "the screen said nothing while the model loaded"
        error = str(screen.query_one("#train-error", Static).render())
        assert "training diverged" in error and "Lower learning_rate" in error
        assert "failed (exit code 1)" in status(screen)


@pytest.mark.slow
async def test_reattach_live_then_killed_reads_as_interrupted(workspace: Path, tiny_base: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    """Reopening reattaches to the running trainer by its events file and .pid; once the trainer is
    killed (kill -9: no final event), the reopened app shows the run interrupted, not live."""
    import signal

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    tiny_train_table(workspace, tiny_base, steps=5000, name="killed")
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_train(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: len(screen.losses) >= 1, timeout=300, what="a first step")
        events, pid = screen.trainer.events, screen.trainer.process.pid
        assert int((events.with_suffix(".pid")).read_text()) == pid  # the trainer keeps what the app wrote
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("l")  # leave it running
        await pilot.pause()
    try:
        app = make_app(workspace)
        async with app.run_test(size=(120, 36)) as pilot:
            screen = await open_train(pilot)
            await wait_until(pilot, lambda: screen.trainer is not None and screen.trainer.events == events,
                             what="reattach")
            assert screen.running and screen.trainer.pid == pid
            await wait_until(pilot, lambda: len(screen.losses) >= 1, timeout=60, what="the steps so far")
            seen = screen.losses[-1][0]
            await wait_until(pilot, lambda: screen.losses[-1][0] > seen, timeout=120, what="new steps (live)")
            os.kill(pid, signal.SIGKILL)
            await wait_until(pilot, lambda: not screen.running, timeout=30, what="the dead trainer noticed")
            await wait_until(pilot, lambda: "interrupted" in status(screen), timeout=30, what="the verdict")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    app = make_app(workspace)  # the pid file now names a dead process: stopped, not live
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_train(pilot)
        await wait_until(pilot, lambda: "interrupted" in status(screen), timeout=30, what="the verdict on reopening")
        assert not screen.running and screen.query_one("#stop", Button).disabled
        assert "killed or crashed" in status(screen) and status(screen).startswith("step ")
        assert not screen.query_one("#start", Button).disabled


async def test_ctrl_s_saves_the_form_to_train_keeping_comments(workspace: Path):
    from prep.config import read_toml

    config = workspace / "lorakit.toml"
    config.write_text("# my notes on this workspace\n" + config.read_text())
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_train(pilot)
        screen.query_one("#field-network_dim").value = "24"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert read_toml(config)["train"]["network_dim"] == 24
    assert config.read_text().startswith("# my notes on this workspace\n")
