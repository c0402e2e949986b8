"""The lorakit TUI: one mode per pipeline stage (Dataset, Captions, Train) over one workspace."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from tui.screens.captions import CaptionsScreen
from tui.screens.dataset import DatasetScreen
from tui.screens.train import TrainScreen
from tui.trainer_run import TRAINER_COMMAND
from tui.widgets.confirm import ConfirmScreen
from tui.workspace import Workspace, open_workspace


class LorakitApp(App[None]):
    """Walks a workspace through the pipeline; each screen calls one stage function in a worker."""

    CSS_PATH = "app.tcss"
    TITLE = "lorakit"
    MODES = {"dataset": DatasetScreen, "captions": CaptionsScreen, "train": TrainScreen}
    DEFAULT_MODE = "dataset"
    BINDINGS = [
        Binding("1", "switch_mode('dataset')", "Dataset"),
        Binding("2", "switch_mode('captions')", "Captions"),
        Binding("3", "switch_mode('train')", "Train"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, workspace: Workspace, trainer_command: Sequence[str] = TRAINER_COMMAND) -> None:
        super().__init__()
        self.workspace = workspace
        self.trainer_command = tuple(trainer_command)
        self.sub_title = str(workspace.root)

    def training_screen(self) -> TrainScreen | None:
        """The Train screen, when that mode has been opened."""
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

        def answered(yes: bool | None) -> None:
            if yes:
                train.action_stop()  # the trainer saves its state; it is not left running unseen
                self.exit()

        self.push_screen(ConfirmScreen("Training is running. Stop it (its state is saved) and quit?",
                                       yes="Stop and quit"), answered)


def make_app(workspace: Path, trainer_command: Sequence[str] | None = None) -> LorakitApp:
    """The app for the workspace folder at `workspace` (shared by `lorakit ui` and the tests)."""
    return LorakitApp(open_workspace(workspace), trainer_command or (sys.executable, "-m", "trainer"))
