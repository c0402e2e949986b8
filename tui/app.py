"""The lorakit TUI: one mode per pipeline stage (tui/screens/__init__.py SCREENS) over one workspace."""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from pathlib import Path

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.screen import Screen

from tui.palette import LorakitCommands
from tui.screens import SCREENS, spec_for
from tui.summary import DatasetSummary, folder_signature, summarize, validation_state
from tui.trainer_run import TRAINER_COMMAND
from tui.widgets.confirm import ConfirmScreen
from tui.workspace import Workspace, open_workspace

SUMMARY_POLL_SECONDS = 3.0


def _empty(dataset: Path) -> bool:
    try:
        return not dataset.is_dir() or not any(True for _ in dataset.iterdir())
    except OSError:
        return True


def _factory(spec):
    def make() -> Screen:
        screen = spec.load()()
        screen.title = f"lorakit — {spec.title}"
        return screen

    return make


class LorakitApp(App[None]):
    """Walks a workspace through the pipeline; each screen calls one stage function in a worker."""

    CSS_PATH = "app.tcss"
    TITLE = "lorakit"
    MODES = {spec.mode: _factory(spec) for spec in SCREENS}
    DEFAULT_MODE = "validate"
    COMMANDS = App.COMMANDS | {LorakitCommands}
    BINDINGS = [
        *(Binding(spec.key, f"switch_mode('{spec.mode}')", spec.title, show=False) for spec in SCREENS),
        Binding("ctrl+z", "undo", "Undo", priority=True),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: Workspace, trainer_command: Sequence[str] = TRAINER_COMMAND,
                 start_mode: str | None = None, typed_ahead: str = "") -> None:
        # A new workspace starts where its data comes from (Scrape), a filled one on Validate.
        self.DEFAULT_MODE = start_mode or ("scrape" if _empty(workspace.dataset) else "validate")
        super().__init__()
        self.workspace = workspace
        self.trainer_command = tuple(trainer_command)
        self.data_version = 0  # bumped whenever a job, an undo or the disk changed the dataset
        self.validation = None  # the last ValidationReport (None: not run)
        self.summary: DatasetSummary | None = None
        self._signature: tuple | None = None
        self.typed_ahead = typed_ahead  # keys typed while `lorakit ui` started (tui/typeahead.py)

    # -- start and the header ---------------------------------------------------------------

    def on_mount(self) -> None:
        self.poll_summary(force=True)
        self.set_interval(SUMMARY_POLL_SECONDS, self.poll_summary)
        # Modules, styles and widgets loaded by now live as long as the app: keep them out of the
        # cyclic collector's scans. Its full passes over them paused every thread (keys included)
        # for 60-160 ms during a long job (benchmarks/tui.py); on_unmount hands them back.
        self.call_after_refresh(gc.freeze)
        if self.typed_ahead:
            self.call_after_refresh(self._replay_typed_ahead)

    def _replay_typed_ahead(self) -> None:
        """The keys typed before the app owned the terminal, pressed now that its screen is shown."""
        from textual import events
        from textual.keys import _character_to_key  # the name Textual's input parser gives a character

        for char in self.typed_ahead:
            self.post_message(events.Key(_character_to_key(char), char))
        self.typed_ahead = ""

    def on_unmount(self) -> None:
        gc.unfreeze()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Notifications quote file names and errors: plain text, never markup (tui/widgets/plain.py)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    @work(thread=True, exclusive=True, group="summary", exit_on_error=False)
    def poll_summary(self, force: bool = False) -> None:
        """Recount images and captions when a folder changed (or when asked), off the UI thread."""
        signature = folder_signature(self.workspace.dataset)
        if not force and signature == self._signature:
            return
        summary = summarize(self.workspace.dataset)
        self.call_from_thread(self._show_summary, signature, summary, force)

    def _show_summary(self, signature: tuple, summary: DatasetSummary, forced: bool) -> None:
        changed_on_disk = not forced and self._signature is not None and signature != self._signature
        self._signature, self.summary = signature, summary
        self.show_header()
        if changed_on_disk:
            self.data_version += 1
            current = self.screen
            if hasattr(current, "seen_version"):
                current.seen_version = self.data_version
                current.refresh_data()

    def header_text(self) -> str:
        state = validation_state(self.validation)
        if self.summary is None:
            return f"counting… · validate: {state}"
        return self.summary.describe(state)

    def show_header(self) -> None:
        text = self.header_text()
        for spec in SCREENS:
            try:
                stack = self.get_screen_stack(spec.mode)
            except KeyError:
                continue
            for screen in stack:
                screen.sub_title = text

    async def action_switch_mode(self, mode: str) -> None:
        await self.switch_mode(mode)
        self.call_after_refresh(self._title_current)

    def _title_current(self) -> None:
        self.screen.sub_title = self.header_text()

    def set_validation(self, report) -> None:
        self.validation = report
        self.show_header()

    def dataset_changed(self, source: Screen | None = None) -> None:
        """A job or an undo changed files: recount, and let the other screens re-read on show."""
        self.data_version += 1
        if source is not None and hasattr(source, "seen_version"):
            source.seen_version = self.data_version
        current = self.screen
        # A screen still being composed (a mode switch under way) re-reads when it is shown.
        if current is not source and hasattr(current, "refresh_data") and current.is_mounted:
            current.seen_version = self.data_version
            current.refresh_data()
        self.poll_summary(force=True)

    # -- keys shared by every screen ---------------------------------------------------------

    def action_help(self) -> None:
        from tui.widgets.help import HelpScreen

        screen = self.screen
        if not hasattr(screen, "key_help"):
            return
        keys = screen.key_help()
        keys += [(spec.key, f"{spec.title} screen") for spec in SCREENS]
        keys += [("ctrl+p", "command palette: every action by name")]
        spec = spec_for(self.current_mode)
        self.push_screen(HelpScreen(spec.title if spec else "lorakit", keys))

    async def run_palette_action(self, mode: str, action: str) -> None:
        if mode == "app":
            await self.run_action(action)
            return
        if mode and mode != self.current_mode:
            await self.switch_mode(mode)
        await self.run_action(action, self.screen)

    def action_undo(self) -> None:
        if isinstance(self.screen, ConfirmScreen):
            return
        from prep.errors import UserError
        from prep.journal import Journal

        try:
            history = Journal(self.workspace.dataset).history()
        except (UserError, OSError) as exc:
            self.notify(f"cannot read the journal: {exc}", severity="error", timeout=8)
            return
        if not history:
            self.notify("nothing to undo", severity="warning")
            return
        last = history[-1]
        question = (f"Undo operation {last.id} '{last.command}'? It restores the {last.count} file(s) it "
                    "changed to their previous bytes.")

        def answered(yes: bool | None) -> None:
            if yes:
                self.undo_last()

        self.push_screen(ConfirmScreen(question, yes="Undo"), answered)

    @work(thread=True, exclusive=True, group="undo", exit_on_error=False)
    def undo_last(self) -> None:
        from prep.errors import UserError, describe_os_error
        from tui.undo import undo_dataset

        try:
            info = undo_dataset(self.workspace.dataset)
        except UserError as exc:
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=8)
            return
        except OSError as exc:
            self.call_from_thread(self.notify, f"undo failed: {describe_os_error(exc)}", severity="error",
                                  timeout=8)
            return
        self.call_from_thread(self._undone, info)

    def _undone(self, info) -> None:
        kept = "".join(f"; kept your later version of {path} as {aside}" for path, aside in info.kept)
        self.notify(f"undone: {info.command} ({info.count} file(s) restored){kept}")
        self.dataset_changed()

    # -- quitting while training ----------------------------------------------------------

    def training_screen(self):
        """The Train screen, when that mode has been opened."""
        from tui.screens.train import TrainScreen

        try:
            stack = self.get_screen_stack("train")
        except KeyError:
            return None
        return next((screen for screen in stack if isinstance(screen, TrainScreen)), None)

    async def action_quit(self) -> None:
        train = self.training_screen()
        if train is None or not train.running:
            self.exit()
            return

        train.ask_quit()  # stop the run (its state is saved), leave it running, or stay


def make_app(workspace: Path, trainer_command: Sequence[str] | None = None,
             start_mode: str | None = None, typed_ahead: str = "") -> LorakitApp:
    """The app for the workspace folder at `workspace` (shared by `lorakit ui` and the tests)."""
    return LorakitApp(open_workspace(workspace), trainer_command or (sys.executable, "-m", "trainer"),
                      start_mode, typed_ahead)


def run_app(workspace: Path) -> None:
    """Run the app in this terminal (`lorakit ui`, `lorakit demo --tui`). textual-image asks the
    terminal what it can draw first, before Textual owns it; keys typed meanwhile are kept apart
    from the terminal's answers and pressed once the app is up (tui/typeahead.py)."""
    from tui.typeahead import pending_input, typed_keys
    from tui.widgets.image_preview import image_widget_class

    typed = typed_keys(pending_input())
    image_widget_class()
    # What is left now is answers, or their tails when a key typed meanwhile cut textual-image's
    # reading short (`?62;4c` without its escape would press `?`): all of it goes.
    pending_input(quiet=0.05)
    make_app(workspace, typed_ahead=typed).run()
