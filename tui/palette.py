"""The command palette (ctrl+p): every screen, and every screen's actions by name."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


@dataclass(frozen=True)
class PaletteAction:
    name: str
    help: str
    mode: str  # the screen it runs on ("" = the current one)
    action: str  # an action of that screen (or of the app, for mode "app")


ACTIONS: tuple[PaletteAction, ...] = (
    PaletteAction("scrape", "download the [booru] query into the dataset", "scrape", "run_job"),
    PaletteAction("tag", "tag the dataset with the [tagger] model", "tag", "run_job"),
    PaletteAction("try tagger on one image", "the highlighted image's predicted tags", "tag", "try_one"),
    PaletteAction("clean", "apply the cleaning rules (one undoable step)", "clean", "run_job"),
    PaletteAction("filter captions", "a QUERY restricting the Edit screen", "edit", "focus_filter"),
    PaletteAction("edit caption", "edit the highlighted caption", "edit", "edit_caption"),
    PaletteAction("tag command", "add / remove / replace / move-front on the filtered captions", "edit",
                  "command_line"),
    PaletteAction("concept apply", "make the trigger word the first tag ([concept])", "concept", "run_job"),
    PaletteAction("check word", "tokens of a trigger word candidate", "concept", "focus_word"),
    PaletteAction("validate", "check the dataset before training", "validate", "run_job"),
    PaletteAction("deep validate", "decode every image too", "validate", "deep"),
    PaletteAction("fix", "apply every safe fix (lorakit fix --all), then validate", "validate", "fix"),
    PaletteAction("undo", "undo the dataset's last journaled operation", "app", "undo"),
    PaletteAction("save form", "write this screen's form to lorakit.toml", "", "save_form"),
    PaletteAction("keys", "every key of this screen", "app", "help"),
)


class LorakitCommands(Provider):
    """Screens ("go to Edit") and actions ("validate", "undo", …) as palette commands."""

    def commands(self) -> list[tuple[str, str, object]]:
        from tui.screens import SCREENS

        app = self.app
        found: list[tuple[str, str, object]] = []
        for spec in SCREENS:
            found.append((f"go to {spec.title}", f"screen {spec.key}", partial(app.action_switch_mode, spec.mode)))
        for action in ACTIONS:
            found.append((action.name, action.help, partial(app.run_palette_action, action.mode, action.action)))
        return found

    async def discover(self) -> Hits:
        for name, help_text, callback in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)  # type: ignore[arg-type]
