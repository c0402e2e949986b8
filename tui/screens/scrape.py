"""Scrape screen: the `[booru]` options as a form, the site's key status, ctrl+r scrapes into the dataset.

Keys are read from LORAKIT_<SITE>_LOGIN / _API_KEY / _USER_ID (or the user's credentials file):
the screen says whether they are set (naming the variables), never shows them, and never writes
them to lorakit.toml. They follow the rule of `lorakit scrape` (booru/endpoint.py): a base URL the
user typed into the form this session counts as given on the command line and gets them; one only
read from lorakit.toml (which may come with a shared dataset) gets none.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static

from tui.screens.base import DataScreen
from tui.widgets.form import OptionForm
from tui.widgets.image_preview import ImagePreview
from tui.widgets.plain import Plain

FIELDS = ["site", "tags", "limit", "concept", "repeats", "rating", "min_side", "blacklist", "categories",
          "base_url"]
APPLY = "scrape"


def key_status(site_name: str | None) -> Text:
    """`LORAKIT_DANBOORU_LOGIN set, LORAKIT_DANBOORU_API_KEY missing` (never the values)."""
    from booru.sites import SITES

    if not site_name or site_name not in SITES:
        return Text("choose a site", style="yellow")
    parts: list[tuple[str, str] | str] = ["keys: "]
    names = SITES[site_name].credential_vars()
    for i, name in enumerate(names):
        present = bool(os.environ.get(name))
        parts.append((f"{name} {'set' if present else 'missing'}", "green" if present else "yellow"))
        if i < len(names) - 1:
            parts.append(", ")
    if not any(os.environ.get(name) for name in names):
        parts.append(" (anonymous: fine for most searches, some sites limit tags or rate)")
    return Text.assemble(*parts)


class ScrapeScreen(DataScreen):
    JOB = APPLY
    JOB_VERB = "scraping"
    TABLE = "booru"
    AUTO_FOCUS = None
    BINDINGS = [Binding("ctrl+r", "run_job", "Scrape", priority=True)]

    def __init__(self) -> None:
        super().__init__()
        self.failed = 0
        self.last: Path | None = None
        self.folder: Path | None = None
        self.typed_base_urls: set[str] = set()  # base URLs the user typed into the form this session

    def compose_body(self) -> ComposeResult:
        from booru.config import ScrapeConfig

        with Horizontal(id="scrape-main"):
            with Vertical(id="scrape-left"):
                yield Plain("[booru] (ctrl+s saves, ctrl+r scrapes into the dataset)", classes="heading")
                yield OptionForm(ScrapeConfig, FIELDS, self.table_values(), id="scrape-form",
                                 labels={"tags": "query"})
                yield Plain("", id="key-status", classes="summary")
            with Vertical(id="scrape-right"):
                yield Plain("Last downloaded", classes="heading")
                yield ImagePreview(id="scrape-image")
                yield Plain("", id="scrape-last", classes="summary")

    def on_mount(self) -> None:
        self.show_key_status()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "field-site":
            self.show_key_status()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "field-base_url" and event.input.has_focus:
            # Only keys typed by the user count (not the value the form was filled with from the file).
            self.typed_base_urls.add(event.value.strip())

    def base_url_origin(self, base_url: str | None) -> str:
        """COMMAND_LINE for a base URL the user typed here, else the workspace file it came from."""
        from booru.endpoint import COMMAND_LINE

        if base_url and base_url.strip() in self.typed_base_urls:
            return COMMAND_LINE
        return str(self.workspace.config_file)

    def show_key_status(self) -> None:
        form = self.query_one("#scrape-form", OptionForm)
        self.query_one("#key-status", Static).update(key_status(form.raw("site")))

    def config(self):
        from booru.config import ScrapeConfig
        from tui.output import expand_at_files

        values = self.query_one("#scrape-form", OptionForm).mapping()
        values["out"] = str(self.dataset)
        from tui.stage_options import form_options

        config = form_options(ScrapeConfig, "booru", self.workspace, values)
        return dataclasses.replace(config, blacklist=expand_at_files(config.blacklist))

    def job_source(self):
        from booru.credentials import lookup_credentials
        from booru.scrape import scrape
        from booru.sites import SITES

        config = self.config()
        credentials = lookup_credentials(SITES[config.site]) if config.site in SITES else None
        self.failed = 0
        from booru.saving import target_folder

        self.folder = Path(target_folder(config))
        origin = self.base_url_origin(config.base_url)
        return lambda: scrape(config, credentials, base_url_origin=origin)

    def on_stage_progress(self, message) -> None:  # with the base's handler (Textual calls both)
        if message.group == APPLY and message.item and self.folder is not None:
            path = self.folder / message.item
            if path.is_file() and path != self.last:
                self.last = path
                self.query_one("#scrape-image", ImagePreview).show(path)
                self.query_one("#scrape-last", Static).update(message.item)

    def on_stage_warnings(self, message) -> None:  # the base logs them
        if message.group == APPLY:
            self.failed += len(message.items)

    def describe(self, summary) -> str:
        skipped = ", ".join(f"{reason} {n}" for reason, n in sorted(summary.skipped.items()))
        line = f"downloaded {summary.downloaded}, skipped {sum(summary.skipped.values())}"
        line += f" ({skipped})" if skipped else ""
        return line + f", failed {summary.failed} -> {summary.folder}"
