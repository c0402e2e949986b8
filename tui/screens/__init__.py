"""The app's screens in pipeline order: one row per key. Add a screen with one line here.

Each row names the key, the mode, the title (the header shows `lorakit — <title>`) and where the
Screen class lives ("module:Class", imported when the screen is first opened).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ScreenSpec:
    key: str
    mode: str
    title: str
    target: str  # "package.module:ClassName"

    def load(self) -> type:
        module, _, name = self.target.partition(":")
        return getattr(importlib.import_module(module), name)


SCREENS: tuple[ScreenSpec, ...] = (
    ScreenSpec("1", "scrape", "Scrape", "tui.screens.scrape:ScrapeScreen"),
    ScreenSpec("2", "tag", "Tag", "tui.screens.tag:TagScreen"),
    ScreenSpec("3", "clean", "Clean", "tui.screens.clean:CleanScreen"),
    ScreenSpec("4", "edit", "Edit", "tui.screens.edit:EditScreen"),
    ScreenSpec("5", "concept", "Concept", "tui.screens.concept:ConceptScreen"),
    ScreenSpec("6", "validate", "Validate", "tui.screens.validate:ValidateScreen"),
    ScreenSpec("7", "train", "Train", "tui.screens.train:TrainScreen"),
    ScreenSpec("8", "models", "Models", "tui.screens.models:ModelsScreen"),
)


def spec_for(mode: str) -> ScreenSpec | None:
    return next((spec for spec in SCREENS if spec.mode == mode), None)
