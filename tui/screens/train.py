"""Train screen: runs `python -m trainer` on the workspace's `[train]` table and follows its events."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Log, ProgressBar, Static
from textual.worker import get_current_worker

from tui.messages import TrainerEvent, TrainerExited
from tui.trainer_run import (
    TERMINAL_EVENTS,
    EventTail,
    TrainerRun,
    describe_event,
    format_step,
    latest_events,
)

POLL_SECONDS = 0.2


class TrainScreen(Screen[None]):
    """Start/stop the trainer process; a thread worker tails its event file and posts TrainerEvents."""

    BINDINGS = [
        Binding("s", "start", "Start training"),
        Binding("x", "stop", "Stop (saves state)"),
    ]
    running: reactive[bool] = reactive(False)

    def __init__(self) -> None:
        super().__init__()
        self.trainer: TrainerRun | None = None
        self.total: int | None = None
        self.last_step: dict | None = None
        self.finished: dict | None = None  # the done or error event, once read
        self.stops = 0  # SIGINTs sent to the current run

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="train-config", classes="path")
        with Horizontal(id="train-buttons"):
            yield Button("Start", id="start", variant="success")
            yield Button("Stop", id="stop", variant="error", disabled=True)
        yield ProgressBar(id="train-progress", show_eta=False)
        yield Static("not started", id="train-status", classes="summary")
        yield Log(id="train-log", highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Train"
        workspace = self.app.workspace
        self.query_one("#train-config", Static).update(
            f"Config: {workspace.config_file} [train]   Output: {workspace.output}")
        last = latest_events(workspace.runs)
        if last is not None:  # show where the last run got to (live, if it still runs in the background)
            self.query_one("#train-log", Log).write_line(f"last run: {last}")
            self.follow(TrainerRun(events=last))

    @property
    def command(self) -> Sequence[str]:
        return self.app.trainer_command

    def watch_running(self, running: bool) -> None:
        self.query_one("#start", Button).disabled = running
        self.query_one("#stop", Button).disabled = not running

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "stop":
            self.action_stop()

    def action_start(self) -> None:
        if self.running:
            self.notify("training is already running", severity="warning")
            return
        try:
            run = TrainerRun.start(self.app.workspace, self.command)
        except OSError as exc:
            self.notify(f"cannot start the trainer: {exc}", severity="error", timeout=8)
            return
        self.query_one("#train-log", Log).write_line(f"running: {' '.join(run.process.args)}")  # type: ignore[union-attr]
        self.follow(run)

    def follow(self, run: TrainerRun) -> None:
        """Show a run: the one just started, or a past run's events file (TrainerRun(events=path))."""
        self.trainer, self.total, self.last_step, self.finished = run, None, None, None
        self.stops = 0
        self.running = run.process is not None
        self.query_one("#train-progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#train-status", Static).update("waiting for the trainer…")
        self.tail_events(run)

    def action_stop(self) -> None:
        if self.trainer is not None and self.trainer.stop():
            self.stops += 1
            # The trainer's SIGINT contract: the first saves state at the next step, a second stops at once.
            self.query_one("#train-log", Log).write_line(
                "stop requested: the trainer saves its state at the next step and exits" if self.stops == 1
                else "second stop: the trainer stops at once, without saving")
        else:
            self.notify("no training is running", severity="warning")

    @work(thread=True, exclusive=True, group="train-tail", exit_on_error=False)
    def tail_events(self, run: TrainerRun) -> None:
        """Post each new event until the process exits (or, with no process, a done/error event)."""
        worker = get_current_worker()
        tail = EventTail(run.events)
        while not worker.is_cancelled:
            code = run.poll()  # before reading: lines written before the exit are all read below
            events = tail.read_new()
            for event in events:
                self.post_message(TrainerEvent(event, str(run.events)))
            if run.process is None and any(e.get("event") in TERMINAL_EVENTS for e in events):
                return
            if code is not None:
                self.post_message(TrainerExited(code, run.output_tail(), str(run.events)))
                return
            time.sleep(POLL_SECONDS)

    def is_current(self, source: str) -> bool:
        return self.trainer is not None and source == str(self.trainer.events)

    def on_trainer_event(self, message: TrainerEvent) -> None:
        if not self.is_current(message.source):
            return
        event = message.event
        name = event.get("event")
        bar = self.query_one("#train-progress", ProgressBar)
        if name == "start" and isinstance(event.get("total_steps"), int):
            self.total = event["total_steps"]
            bar.update(total=self.total, progress=0)
        elif name == "step":
            self.last_step = event
            if isinstance(event.get("step"), int):
                bar.update(total=self.total, progress=event["step"])
            self.query_one("#train-status", Static).update(format_step(event, self.total))
        if name in TERMINAL_EVENTS:
            self.finished = event
        if name == "done":
            if self.total:
                bar.update(progress=self.total)
            self.show_verdict(Text("finished", style="bold green"))
        elif name == "error":
            self.show_verdict(Text("failed: see the log", style="bold red"))
        line = describe_event(event)
        if line is not None:
            self.query_one("#train-log", Log).write_line(line)
            if name == "error":
                self.notify(str(event.get("message", "")), title="training failed", severity="error", timeout=10)

    def on_trainer_exited(self, message: TrainerExited) -> None:
        if not self.is_current(message.source):
            return
        self.running = False
        log = self.query_one("#train-log", Log)
        code = message.returncode
        if code == 0:
            verdict = Text("finished", style="bold green")
        elif code == 130 or code == -2:
            verdict = Text("stopped (state saved; see the log for --resume)", style="yellow")
        else:
            verdict = Text(f"trainer exited with code {code}", style="bold red")
            if self.finished is None or self.finished.get("event") != "error":
                for line in message.stderr_tail.splitlines():  # failed before it could write an event
                    log.write_line(line)
        log.write_line(f"exit code {code}")
        self.show_verdict(verdict)

    def show_verdict(self, verdict: Text) -> None:
        """The status line: the last step's figures, then how the run ended."""
        status = self.query_one("#train-status", Static)
        status.update(Text.assemble(format_step(self.last_step, self.total) + "   ", verdict)
                      if self.last_step else verdict)
