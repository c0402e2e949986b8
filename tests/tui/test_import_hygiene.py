"""The stage packages never import Textual; the TUI never imports the heavy libraries up front."""

from __future__ import annotations

import subprocess
import sys

STAGE_MODULES = ["prep", "booru", "tagger", "trainer", "prep.validate", "prep.journal", "prep.tag_stats",
                 "prep.tag_edit", "prep.clean", "tagger.run", "trainer.cli", "trainer.events", "trainer.config"]
TUI_MODULES = ["tui.app", "tui.cli", "tui.commands.ui", "tui.screens.validate", "tui.screens.edit", "tui.screens.concept",
               "tui.screens.clean", "tui.screens.tag", "tui.screens.scrape",
               "tui.screens.train", "tui.runner", "tui.trainer_run"]


def imported_after(modules: list[str], watched: list[str]) -> list[str]:
    code = (f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print(','.join(w for w in {watched!r} if w in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [name for name in proc.stdout.strip().split(",") if name]


def test_stage_packages_do_not_import_textual():
    assert imported_after(STAGE_MODULES, ["textual", "tui"]) == []


def test_tui_does_not_import_heavy_libraries_up_front():
    assert imported_after(TUI_MODULES, ["torch", "onnxruntime", "requests", "diffusers", "transformers"]) == []
