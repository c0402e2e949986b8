"""Train screen (key 7): the `[train]` form with live checks and an estimate, the running trainer
(progress, loss and LR plots, samples), stop/resume, and the run queue.

The trainer is its own process (`python -m trainer --config lorakit.toml --events FILE`); a thread
worker tails its events file and posts TrainerEvents, so closing the app loses no run and reopening
the workspace reattaches to it (tui/trainer_run.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import DescendantFocus
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Select,
    Static,
    Switch,
    TabbedContent,
    TabPane,
)
from textual.worker import get_current_worker

from prep.config import ConfigError
from prep.errors import UserError
from trainer.run_pid import pid_path
from tui.messages import TrainerEvents, TrainerExited
from tui.screens.base import DataScreen
from tui.trainer_run import (
    EventTail,
    TrainerRun,
    describe_event,
    format_step,
    is_final_event,
    latest_events,
    run_outcome,
    smooth,
)
from tui.widgets.form import OptionForm
from tui.widgets.plain import Plain
from tui.widgets.table import Table

POLL_SECONDS = 0.2
PLOT_SECONDS = 0.5
# The form's groups; every TrainConfig field not named here lands in "More", so new fields appear.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Essentials", ("pretrained_model", "model_type", "dataset", "reg_dataset", "resolution", "max_train_epochs",
                    "max_train_steps", "train_batch_size", "network_dim", "network_alpha", "learning_rate",
                    "unet_lr", "text_encoder_lr", "lr_scheduler", "lr_warmup_ratio", "lr_warmup_steps",
                    "optimizer")),
    ("Captions", ("shuffle_caption", "keep_tokens", "keep_tokens_separator", "caption_dropout_rate",
                  "caption_tag_dropout_rate", "max_token_length", "caption_extension", "clip_skip")),
    ("Memory & precision", ("mixed_precision", "save_precision", "gradient_checkpointing", "cache_latents",
                            "cache_latents_to_disk", "xformers", "train_unet_only", "train_text_encoder_only",
                            "gradient_accumulation_steps", "max_data_loader_n_workers")),
    ("Samples & saving", ("output_dir", "output_name", "save_every_n_epochs", "save_every_n_steps", "save_last_n",
                          "save_state", "resume", "sample_prompts", "sample_every_n_steps",
                          "sample_every_n_epochs")),
)

# Labels are one row of 27 characters; the few longer field names get a short label (help has the name).
SHORT_LABELS = {"cache_text_encoder_outputs_to_disk": "cache TE outputs to disk"}


def form_groups() -> list[tuple[str, list[str]]]:
    """(group title, TrainConfig field names) in order, with "More" holding every other field."""
    import dataclasses

    from trainer.config import TrainConfig

    names = [f.name for f in dataclasses.fields(TrainConfig)]
    out, seen = [], set()
    for title, fields in GROUPS:
        present = [n for n in fields if n in names]
        seen.update(present)
        out.append((title, present))
    rest = [n for n in names if n not in seen]
    if rest:
        out.append(("More", rest))
    return out


class QuitWhileTraining(ModalScreen[str | None]):
    """Closing the app while a run trains: stop it, leave it running, or stay."""

    BINDINGS = [Binding("s", "answer('stop')", "Stop and quit"), Binding("l", "answer('leave')", "Leave running"),
                Binding("escape", "answer(None)", "Cancel"), Binding("n", "answer(None)", "Cancel")]
    DEFAULT_CSS = """
    QuitWhileTraining { align: center middle; }
    QuitWhileTraining > Vertical { width: 64; height: auto; border: thick $warning; padding: 1 2; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Training is running.")
            yield Label("s: stop it (its state is saved) and quit\nl: leave it running and quit (reopening "
                        "the workspace reattaches)\nescape: stay")

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)


class TrainScreen(DataScreen):
    """The [train] form, the trainer process and the queue."""

    DEFAULT_CSS = """
    TrainScreen #train-tabs { height: 1fr; }
    TrainScreen #train-tabs > ContentSwitcher { height: 1fr; }
    TrainScreen #train-tabs TabPane { height: 1fr; padding: 0; }
    TrainScreen #train-form { width: 3fr; }
    TrainScreen #train-side { width: 2fr; border-left: solid $primary; padding: 0 1; }
    TrainScreen .group-title { text-style: bold; color: $accent; padding: 1 1 0 1; }
    TrainScreen #train-form OptionForm { max-height: 1000; overflow-y: hidden; }
    TrainScreen #train-form OptionForm Label.field-label { width: 28; }
    TrainScreen #field-help { margin-bottom: 1; }
    TrainScreen #train-problems { margin-bottom: 1; }
    TrainScreen .invalid { border: tall $error; }
    TrainScreen #train-error { height: auto; padding: 0 1; display: none; }
    TrainScreen #train-buttons { height: 1; }
    TrainScreen #train-buttons Button { margin: 0 1 0 0; }
    TrainScreen #train-progress { width: 1fr; padding-left: 1; }
    TrainScreen #train-plots { height: 1fr; min-height: 6; }
    TrainScreen #loss-plot { width: 2fr; }
    TrainScreen #lr-plot { width: 1fr; }
    TrainScreen #train-sample { width: 1fr; }
    TrainScreen #train-log { height: 1fr; min-height: 6; border: round $primary; }
    TrainScreen #queue-help { height: auto; color: $text-muted; padding: 0 1; }
    """
    TABLE = "train"
    BINDINGS = [
        Binding("ctrl+r", "start", "Train", priority=True),
        Binding("x", "stop", "Stop (saves state)"),
        Binding("R", "resume", "Resume"),
        Binding("a", "queue_add", "Add to queue"),
        Binding("u", "queue_run", "Run queue", show=False),
        Binding("k", "queue_stop", "Stop queue", show=False),
        Binding("left_square_bracket", "queue_move(-1)", "Job up", show=False),
        Binding("right_square_bracket", "queue_move(1)", "Job down", show=False),
    ]
    running: reactive[bool] = reactive(False)

    def __init__(self) -> None:
        super().__init__()
        self.trainer: TrainerRun | None = None
        self.total: int | None = None
        self.last_step: dict | None = None
        self.finished: dict | None = None  # the done or error event, once read
        self.interrupted: dict | None = None  # the trainer's "interrupted at step" warning
        self.start_event: dict | None = None
        self.stops = 0
        self.losses: list[tuple[int, float]] = []
        self.lrs: list[tuple[int, float]] = []
        self.samples: list[str] = []
        self.saves: list[str] = []
        self.log_lines: list[str] = []
        self.loading_notes: list[str] = []  # what the trainer said it loads before its first step
        self.plot_updates = 0
        self._plot_due = False
        self.weighted_images: int | None = None
        self.form_problems: dict[str, str] = {}

    # -- layout -----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        from tui.widgets.image_preview import ImagePreview

        values = self.table_values()
        with TabbedContent(id="train-tabs", initial="tab-run" if self._has_runs() else "tab-config"):
            with TabPane("Config", id="tab-config"):
                with Horizontal(id="train-config-body"):
                    with VerticalScroll(id="train-form"):
                        for title, names in form_groups():
                            yield Label(title, classes="group-title")
                            yield OptionForm(_config_cls(), names, values, labels=SHORT_LABELS,
                                             id=f"form-{_slug(title)}")
                    with VerticalScroll(id="train-side"):  # the focused field's help first: it is read while typing
                        yield Plain(id="field-help")
                        yield Plain(id="train-problems")
                        yield Plain(id="train-estimate")
                        yield Plain(id="train-config", classes="path")
            with TabPane("Run", id="tab-run"):
                with Horizontal(id="train-buttons"):  # one line each: 80x24 leaves room for the log
                    yield Button("Start", id="start", variant="success", compact=True)
                    yield Button("Stop", id="stop", variant="error", disabled=True, compact=True)
                    yield Button("Resume", id="resume", disabled=True, compact=True)
                    yield ProgressBar(id="train-progress", show_eta=False)
                yield Plain("not started", id="train-status", classes="summary")
                yield Plain(id="train-error")
                with Horizontal(id="train-plots"):
                    yield PlotextPlot(id="loss-plot")
                    yield PlotextPlot(id="lr-plot")
                    yield ImagePreview(id="train-sample")
                # Full width and wrapped: a resume path or an error line is read whole, not cut.
                yield RichLog(id="train-log", wrap=True, markup=False, highlight=False, min_width=20)
            with TabPane("Queue", id="tab-queue"):
                yield Table(id="queue-table", cursor_type="row")
                yield Plain("a adds the form as a job · [ ] move the selected job · u runs the queue in the "
                            "background · k stops it",
                            id="queue-help")

    def run_folders(self) -> tuple[Path, Path]:
        """Where runs leave their events files: the Train screen's runs and the queue's jobs."""
        return self.app.workspace.runs, self.app.workspace.root / ".lorakit" / "queue"

    def _has_runs(self) -> bool:
        return latest_events(*self.run_folders()) is not None

    def on_mount(self) -> None:
        workspace = self.app.workspace
        self.query_one("#train-config", Static).update(
            f"Config: {workspace.config_file} [train]   Output: {workspace.output}")
        self.query_one("#field-help", Static).update(
            Text("the focused field's help shows here (tab moves between fields; ctrl+s saves [train])", style="dim"))
        table = self.query_one("#queue-table", DataTable)
        table.add_columns("job", "status", "output", "progress", "LoRA")
        for plot_id, title in (("#loss-plot", "loss (raw, smoothed)"), ("#lr-plot", "learning rate")):
            plot = self.query_one(plot_id).plt
            plot.title(title)
        self.count_images()
        self.check_form()
        self.refresh_queue()
        self.set_interval(PLOT_SECONDS, self._redraw_plots)
        self.set_interval(2.0, self.refresh_queue)
        last = latest_events(*self.run_folders())
        if last is not None:  # reattach: live if its trainer still runs, else its final state
            self.write_log(f"last run: {last}")
            self.follow(TrainerRun.attach(last))

    # -- the form ---------------------------------------------------------------------------

    def forms(self) -> list[OptionForm]:
        return list(self.query(OptionForm))

    def form_values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(TOML values of every set field, field -> error for fields that do not parse)."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for form in self.forms():
            for f in form.fields:
                try:
                    value = form.value(f)
                except (ConfigError, ValueError) as exc:
                    errors[f.name] = str(exc)
                    continue
                if value is not None:
                    values[f.name] = value
        return values, errors

    def form_config(self):
        """The TrainConfig the form describes (paths relative to the workspace), and field -> problem."""
        from prep.config import from_mapping
        from trainer.checks import DeviceInfo, config_problems
        from trainer.config import TrainConfig
        from trainer.config import _adapt_table as as_in_file  # the paths read as lorakit.toml's are

        values, errors = self.form_values()
        config = None
        try:
            config = from_mapping(TrainConfig, as_in_file(values, self.app.workspace.root), "form")
        except ConfigError as exc:
            errors[_field_of(str(exc))] = str(exc)
        problems: list[tuple[str, str, bool]] = [(name, message, True) for name, message in errors.items()]
        if config is not None:
            problems += [(p.field, p.message, p.is_error) for p in config_problems(config, DeviceInfo.guess())]
        return config, problems

    @on(Input.Changed)
    @on(Switch.Changed)
    @on(Select.Changed)
    def _form_changed(self, event) -> None:
        if getattr(event, "control", None) is not None and str(getattr(event.control, "id", "")).startswith("field-"):
            self.check_form()

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        widget_id = str(event.widget.id or "")
        if widget_id.startswith("field-"):
            import dataclasses

            from trainer.config import TrainConfig

            name = widget_id[len("field-"):]
            helps = {f.name: f.metadata.get("help", "") for f in dataclasses.fields(TrainConfig)}
            self.query_one("#field-help", Static).update(Text(f"{name}: {helps.get(name, '')}"))

    def check_form(self) -> None:
        """Mark the fields with problems (the trainer's own checks, no torch) and update the estimate."""
        config, problems = self.form_config()
        errors = {name: message for name, message, is_error in problems if is_error}
        self.form_problems = errors
        for form in self.forms():
            for f in form.fields:
                widget = form.query_one(f"#field-{f.name}")
                widget.set_class(f.name in errors, "invalid")
        lines = Text()
        for _name, message, is_error in problems:
            lines.append(("✗ " if is_error else "! ") + message + "\n", style="red" if is_error else "yellow")
        self.query_one("#train-problems", Static).update(lines if problems else Text("✓ the config is valid",
                                                                                     style="green"))
        self.query_one("#train-estimate", Static).update(self.estimate_text(config))

    def estimate_text(self, config) -> Text:
        from trainer.estimate import estimate_vram, lowering_options, plan_steps

        if config is None:
            return Text("estimate: fix the marked fields first", style="dim")
        text = Text()
        if self.weighted_images is not None:
            try:
                per_epoch, epochs, total = plan_steps(config, self.weighted_images)
                text.append(f"{total} steps ({epochs} epoch(s) × {per_epoch}; {self.weighted_images} images × "
                            f"repeats)\n", style="bold")
            except (ValueError, TypeError, ZeroDivisionError):
                pass
        try:
            vram = estimate_vram(config)
        except (ConfigError, ValueError, KeyError):
            return text
        text.append(vram.describe() + "\n")
        for label, saved in [o for o in lowering_options(config) if o[1] >= 0.05][:5]:
            text.append(f"  {label}: −{saved:.1f} GB\n", style="dim")
        return text

    @work(thread=True, exclusive=True, group="train-count", exit_on_error=False)
    def count_images(self) -> None:
        from prep.caption_set import scan_dataset

        try:
            scan = scan_dataset(self.app.workspace.dataset)
        except (UserError, OSError):
            return
        weighted = sum(getattr(entry[2], "repeats", 1) for entry in scan.entries if entry[2] is not None)
        self.app.call_from_thread(self._set_weighted, weighted)

    def _set_weighted(self, weighted: int) -> None:
        self.weighted_images = weighted
        self.check_form()

    def refresh_data(self) -> None:
        self.count_images()

    def save_form_quietly(self) -> bool:
        """Write the form to [train] (comments kept) so the trainer runs what the form shows."""
        from prep.toml_edit import update_table

        changes: dict[str, Any] = {}
        for form in self.forms():
            changes.update(form.changes())
        if changes:
            update_table(self.app.workspace.config_file, "train", changes)
            for form in self.forms():
                form.saved()
        return bool(changes)

    def action_save_form(self) -> None:
        try:
            changed = self.save_form_quietly()
        except UserError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        where = f"[train] of {self.app.workspace.config_file.name}"
        self.notify(f"saved {where}" if changed else f"{where} already holds these values")

    # -- starting and stopping ----------------------------------------------------------------

    @property
    def command(self):
        """`python -m trainer`, or `accelerate launch -m trainer` over every GPU when there are several."""
        from tui.trainer_run import gpu_count, launch_command

        return launch_command(self.app.trainer_command, gpu_count())

    def watch_running(self, running: bool) -> None:
        self.query_one("#start", Button).disabled = running
        self.query_one("#stop", Button).disabled = not running
        self.query_one("#resume", Button).disabled = running or self.resume_state() is None

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"start": self.action_start, "stop": self.action_stop, "resume": self.action_resume}
        if event.button.id in actions:
            actions[event.button.id]()

    def action_run_job(self) -> None:
        self.action_start()

    def action_start(self, resume: Path | None = None) -> None:
        if self.running:
            self.notify("training is already running (x stops it)", severity="warning")
            return
        from trainer.queue_runner import runner_pid

        if runner_pid(self.queue()) is not None:  # one run at a time: the queue's job holds the GPU
            self.notify("the queue is running a job; k stops the queue, or a adds this run to it",
                        severity="warning", timeout=8)
            return
        if self.form_problems:  # started anyway: the trainer's own error line and advice are shown
            self.notify(next(iter(self.form_problems.values())), title="the config has a problem",
                        severity="warning", timeout=6)
        try:
            self.save_form_quietly()
            extra = ["--resume", str(resume)] if resume is not None else []
            run = TrainerRun.start(self.app.workspace, self.command, extra)
        except (OSError, UserError) as exc:
            self.notify(f"cannot start the trainer: {exc}", severity="error", timeout=8)
            return
        self.query_one(TabbedContent).active = "tab-run"
        self.write_log(f"running: {' '.join(run.argv)}")
        self.follow(run)

    def follow(self, run: TrainerRun) -> None:
        """Show a run: the one just started, a live one found on disk, or a past run's events file."""
        self.trainer, self.total, self.last_step, self.finished = run, None, None, None
        self.interrupted, self.start_event, self.stops = None, None, 0
        self.losses, self.lrs, self.samples, self.saves = [], [], [], []
        self.loading_notes = []
        self._plot_due = True
        self.running = run.running
        self.query_one("#train-progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#train-error", Static).update("")
        self.query_one("#train-error", Static).display = False
        self.query_one("#train-status", Static).update(
            "starting the trainer: importing torch and diffusers…" if run.running else "reading the run…")
        self.tail_events(run)

    def action_stop(self) -> None:
        if self.trainer is not None and self.trainer.stop():
            self.stops += 1
            # The trainer's SIGINT contract: the first saves state at the next step, a second stops at once.
            self.write_log("stop requested: the trainer saves its state at the next step and exits" if self.stops == 1
                           else "second stop: the trainer stops at once, without saving")
        else:
            self.notify("no training is running", severity="warning")

    def resume_state(self) -> Path | None:
        """The newest saved state of the shown run's output name."""
        from trainer.queue import newest_state

        config = (self.start_event or {}).get("config") or {}
        out, name = config.get("output_dir"), config.get("output_name")
        if not out or not name:
            return None
        path = Path(out)
        if not path.is_absolute():
            path = self.app.workspace.root / path
        return newest_state(path, name)

    def action_resume(self) -> None:
        if self.running:
            self.notify("training is running", severity="warning")
            return
        if self.trainer is not None and self.trainer.events.resolve().parent == self.queue().folder:
            # A queue job resumes with its own frozen config, which the runner holds: not the form's.
            self.notify("this run is a queue job: u runs the queue, which resumes it from its saved state",
                        severity="warning", timeout=8)
            return
        state = self.resume_state()
        if state is None:
            self.notify("no saved state of this run to resume from (save_state, or stop it with x)",
                        severity="warning", timeout=8)
            return
        self.write_log(f"resuming from {state}")
        self.action_start(resume=state)

    # -- following the events ---------------------------------------------------------------

    @work(thread=True, exclusive=True, group="train-tail", exit_on_error=False)
    def tail_events(self, run: TrainerRun) -> None:
        """Post each new event until the process exits (a past run: until the file is read)."""
        worker = get_current_worker()
        tail = EventTail(run.events)
        started, loading = False, ""
        while not worker.is_cancelled:
            code = run.poll()  # before reading: lines written before the exit are all read below
            events = tail.read_new()
            if events:
                started = started or any(event.get("event") == "start" for event in events)
                self.post_message(TrainerEvents(events, str(run.events)))
            if not started and run.running:  # say what loads: the trainer prints it before its start event
                last = run.output_tail(1)
                if last.startswith("loading: ") and last != loading:
                    loading = last
                    self.post_message(TrainerEvents([{"event": "load", "what": last[len("loading: "):]}],
                                                   str(run.events)))
            if run.process is None and not run.running:
                # A run found on disk: its trainer has ended (its pid file names a dead process), or a
                # file someone else writes: followed until its last event (done, error or the interrupt).
                ended = run.pid is not None or pid_path(run.events).exists()
                if ended or any(is_final_event(e) for e in events):
                    self.post_message(TrainerExited(None, run.output_tail(), str(run.events)))
                    return
            if code is not None:
                self.post_message(TrainerExited(code, run.output_tail(), str(run.events)))
                return
            time.sleep(POLL_SECONDS)

    def is_current(self, source: str) -> bool:
        return self.trainer is not None and source == str(self.trainer.events)

    def write_log(self, line: str) -> None:
        self.log_lines.append(line)
        self.query_one("#train-log", RichLog).write(line)

    def on_trainer_events(self, message: TrainerEvents) -> None:
        if not self.is_current(message.source):
            return
        for event in message.events:
            self.show_event(event)

    def show_event(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        bar = self.query_one("#train-progress", ProgressBar)
        status = self.query_one("#train-status", Static)
        if name == "load":
            self.loading_notes.append(str(event.get("what", "")))
            status.update(f"loading: {event.get('what', '')}…")
        elif name == "start":
            self.start_event = event
            if isinstance(event.get("total_steps"), int):
                self.total = event["total_steps"]
                bar.update(total=self.total, progress=0)
            status.update("training: waiting for the first step…")
        elif name == "step":
            self.last_step = event
            step = event.get("step")
            if isinstance(step, int):
                bar.update(total=self.total, progress=step)
                if isinstance(event.get("loss"), (int, float)):
                    self.losses.append((step, float(event["loss"])))
                if isinstance(event.get("lr"), (int, float)):
                    self.lrs.append((step, float(event["lr"])))
                self._plot_due = True
            status.update(format_step(event, self.total))
        elif name == "sample" and event.get("path"):
            self.samples.append(str(event["path"]))
            self.query_one("#train-sample").show(Path(event["path"]))
        elif name == "save" and event.get("path"):
            self.saves.append(str(event["path"]))
        elif name == "warning" and str(event.get("message", "")).startswith("interrupted at step"):
            self.interrupted = event
        if name in ("done", "error"):
            self.finished = event
        if name == "done":
            if self.total:
                bar.update(progress=self.total)
            self.show_verdict(Text("finished", style="bold green"))
        elif name == "error":
            self.show_error(str(event.get("message", "")))
        line = describe_event(event)
        if line is not None and name != "load":
            self.write_log(line)

    def on_trainer_exited(self, message: TrainerExited) -> None:
        if not self.is_current(message.source):
            return
        self.running = False
        code = message.returncode
        outcome = run_outcome(self.finished, self.interrupted, code)
        if code is not None:
            self.write_log(f"exit code {code}")
        if outcome == "finished":
            verdict = Text("finished", style="bold green")
        elif outcome == "stopped":
            verdict = Text("stopped (state saved; R resumes)", style="yellow")
        elif outcome == "failed":
            if self.finished is None or self.finished.get("event") != "error":
                tail = message.stderr_tail.splitlines()
                for line in tail:  # failed before it could write an event
                    self.write_log(line)
                self.show_error(tail[-1] if tail else f"the trainer exited with code {code}")
            verdict = Text(f"failed (exit code {code})" if code is not None else "failed", style="bold red")
        elif outcome == "running":
            verdict = Text("running", style="bold")
        else:
            how = f"killed by signal {-code}" if code is not None and code < 0 else "killed or crashed"
            again = "R resumes from its newest saved state" if self.resume_state() else "ctrl+r starts it again"
            verdict = Text(f"interrupted: the trainer ended without a final event ({how}); {again}",
                           style="bold yellow")
        self.show_verdict(verdict)
        self.watch_running(False)
        self._plot_due = True

    def show_error(self, message: str) -> None:
        from tui.trainer_run import advice_for

        text = Text(f"error: {message}", style="bold red")
        advice = advice_for(message)
        if advice:
            text.append(f"\n{advice}", style="yellow")
        self.query_one("#train-error", Static).update(text)
        self.query_one("#train-error", Static).display = True
        self.show_verdict(Text("failed: see the error above", style="bold red"))
        self.notify(message, title="training failed", severity="error", timeout=10)

    def show_verdict(self, verdict: Text) -> None:
        """The status line: the last step's figures, then how the run ended."""
        status = self.query_one("#train-status", Static)
        status.update(Text.assemble(format_step(self.last_step, self.total) + "   ", verdict)
                      if self.last_step else verdict)

    def _redraw_plots(self) -> None:
        if not self._plot_due:
            return
        self._plot_due = False
        loss_plot = self.query_one("#loss-plot")
        plt = loss_plot.plt
        plt.clear_data()
        if self.losses:
            steps = [s for s, _ in self.losses]
            raw = [v for _, v in self.losses]
            plt.plot(steps, raw, label="raw", marker="dot")
            plt.plot(steps, smooth(raw), label="smoothed", marker="braille")
        loss_plot.refresh()
        lr_plot = self.query_one("#lr-plot")
        lr_plot.plt.clear_data()
        if self.lrs:
            lr_plot.plt.plot([s for s, _ in self.lrs], [v for _, v in self.lrs], marker="braille")
        lr_plot.refresh()
        self.plot_updates += 1

    # -- the queue --------------------------------------------------------------------------

    def queue(self):
        from trainer.queue import JobQueue

        return JobQueue(self.app.workspace.root)

    def action_queue_add(self) -> None:
        from trainer.checks import DeviceInfo, check_config
        from trainer.queue import freeze_paths

        config, _problems = self.form_config()
        if config is None or self.form_problems:
            self.notify(next(iter(self.form_problems.values()), "the form does not parse"),
                        title="fix the config first", severity="error", timeout=8)
            return
        try:
            check_config(config, DeviceInfo.guess())
            job = self.queue().add(freeze_paths(config, self.app.workspace.root))
        except (UserError, OSError) as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        self.notify(f"queued {job.id} (output {job.output_name})")
        self.refresh_queue()

    def action_queue_move(self, delta: int) -> None:
        job_id = self.selected_job()
        if job_id is None:
            return
        try:
            jobs = self.queue().move(job_id, delta)
        except (UserError, OSError) as exc:
            self.notify(str(exc), severity="error")
            return
        self.refresh_queue()
        self.query_one("#queue-table", DataTable).move_cursor(row=[j.id for j in jobs].index(job_id), animate=False)

    def action_queue_run(self) -> None:
        from trainer.queue_runner import detach, runner_pid

        queue = self.queue()
        if runner_pid(queue) is not None:
            self.notify("the queue is already running", severity="warning")
            return
        pid = detach(queue)
        self.notify(f"queue runner started in the background (pid {pid})")

    def action_queue_stop(self) -> None:
        import os
        import signal

        from trainer.queue_runner import runner_pid

        pid = runner_pid(self.queue())
        if pid is None:
            self.notify("the queue is not running", severity="warning")
            return
        os.kill(pid, signal.SIGINT)  # the runner stops its job the trainer's way (state saved)
        self.notify("stopping the queue: the running job saves its state")

    def refresh_queue(self) -> None:
        from tui.trainer_run import events_progress

        try:
            jobs = self.queue().jobs()
        except (UserError, OSError):
            return
        table = self.query_one("#queue-table", DataTable)
        selected = self.selected_job()
        table.clear()
        queue = self.queue()
        for job in jobs:
            step, total = events_progress(queue.events_path(job.id))
            progress = f"{step}/{total}" if total else ("" if step is None else str(step))
            table.add_row(job.id, job.status, job.output_name, progress, Path(job.lora).name if job.lora else "",
                          key=job.id)
        ids = [job.id for job in jobs]
        if selected in ids:  # the refresh every 2 s keeps the selection ([ ] move it)
            table.move_cursor(row=ids.index(selected), animate=False)

    def selected_job(self) -> str | None:
        table = self.query_one("#queue-table", DataTable)
        if not table.row_count or table.cursor_row is None or table.cursor_row >= table.row_count:
            return None
        return str(table.get_row_at(table.cursor_row)[0])

    def ask_quit(self) -> None:
        """Called by the app's quit while this run trains."""

        def answered(answer: str | None) -> None:
            if answer == "stop":
                self.action_stop()
                self.app.exit()
            elif answer == "leave":
                self.app.exit()

        self.app.push_screen(QuitWhileTraining(), answered)


def _config_cls():
    from trainer.config import TrainConfig

    return TrainConfig


def _slug(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")


def _field_of(message: str) -> str:
    head = message.split(" ", 1)[0].strip(":")
    return head if head.isidentifier() else ""
