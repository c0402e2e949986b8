"""Tag screen: the `[tagger]` options, the provider, `t` tries the model on the highlighted image
(predicted tags with a confidence bar each), ctrl+r tags the dataset (`[tagger]` mode decides what
happens to existing captions)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from tui.runner import result_of, run_stage
from tui.screens.base import DataScreen, fill_table
from tui.widgets.form import OptionForm
from tui.widgets.image_preview import ImagePreview
from tui.widgets.plain import Plain
from tui.widgets.table import Table

FIELDS = ["model", "general_threshold", "character_threshold", "mcut", "character_mcut", "mode", "exclude",
          "max_tags", "rating", "device"]
APPLY, TRY, IMAGES, PROVIDERS = "tag", "try-one", "tag-images", "providers"
BAR_WIDTH = 20
MAX_IMAGES = 1000


def bar(p: float, width: int = BAR_WIDTH) -> Text:
    filled = max(0, min(width, round(p * width)))
    return Text.assemble(("█" * filled, "green" if p >= 0.5 else "yellow"), ("░" * (width - filled), "dim"))


def list_images(dataset: Path) -> list[str]:
    from prep.caption_set import scan_dataset

    if not dataset.is_dir():
        return []
    return [image for image, _caption, _concept in scan_dataset(dataset).entries]


class TagScreen(DataScreen):
    JOB = APPLY
    JOB_VERB = "tagging"
    TABLE = "tagger"
    AUTO_FOCUS = "#tag-images"
    BINDINGS = [Binding("ctrl+r", "run_job", "Tag all", priority=True),
                Binding("t", "try_one", "Try one")]

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []

    def compose_body(self) -> ComposeResult:
        from tagger.models import KNOWN_MODELS

        known = ", ".join(m.repo.split("/")[-1] for m in KNOWN_MODELS[:2])
        with Horizontal(id="tag-main"):
            with Vertical(id="tag-left"):
                yield Plain("[tagger] (ctrl+s saves, ctrl+r tags, t tries)", classes="heading")
                yield OptionForm(self.config_class(), FIELDS, self.table_values(), id="tag-form")
                yield Plain(f"models: {known}, … (`lorakit tag --list-models`) or a folder with "
                            "model.onnx + selected_tags.csv", classes="summary")
                yield Plain("provider: …", id="provider", classes="summary")
            with Vertical(id="tag-middle"):
                yield Plain("", id="images-summary", classes="summary")
                yield Table(id="tag-images", cursor_type="row", zebra_stripes=True)
            with Vertical(id="tag-right"):
                yield ImagePreview(id="tag-image")
                yield Plain("", id="try-summary", classes="summary")
                yield Table(id="try-tags", cursor_type="row", zebra_stripes=True, show_cursor=False)

    @staticmethod
    def config_class():
        from tagger.config import TagConfig

        return TagConfig

    def on_mount(self) -> None:
        self.query_one("#tag-images", DataTable).add_columns("Image")
        self.query_one("#try-tags", DataTable).add_columns("Tag", "p", "Confidence")

    def refresh_data(self) -> None:
        run_stage(self, IMAGES, result_of(list_images, self.dataset), IMAGES)
        try:
            device = self.config().device
        except ValueError:
            device = "auto"
        from tui.tag_try import providers

        run_stage(self, PROVIDERS, result_of(providers, device), PROVIDERS)

    def config(self):
        from tui.output import expand_at_files
        from tui.stage_options import form_options

        values = self.query_one("#tag-form", OptionForm).mapping()  # over [tagger]: the rest still applies
        config = form_options(self.config_class(), "tagger", self.workspace, values, path_or_id=("model",))
        return dataclasses.replace(config, exclude=expand_at_files(config.exclude),
                                   always_first=expand_at_files(config.always_first))

    def side_finished(self, group: str, summary) -> None:
        if group == IMAGES:
            self.images = summary
            table = self.query_one("#tag-images", DataTable)
            fill_table(table, [((self.relative(image),), image) for image in summary[:MAX_IMAGES]])
            self.query_one("#images-summary", Static).update(f"{len(summary)} image(s); t tries the highlighted one")
        elif group == PROVIDERS:
            self.query_one("#provider", Static).update(f"provider: {' then '.join(summary)}")
        elif group == TRY:
            provider, result = summary
            self.query_one("#provider", Static).update(f"provider in use: {provider}")
            self.show_try(result)

    def relative(self, path: str) -> str:
        try:
            return Path(path).relative_to(self.dataset).as_posix()
        except ValueError:
            return path

    def highlighted(self) -> str | None:
        table = self.query_one("#tag-images", DataTable)
        if not table.row_count:
            return None
        row = table.cursor_row
        return self.images[row] if 0 <= row < len(self.images) else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "tag-images" and event.row_key.value:
            self.query_one("#tag-image", ImagePreview).show(Path(event.row_key.value))

    def action_try_one(self) -> None:
        image = self.highlighted()
        if image is None:
            self.notify("no image to try: the dataset is empty", severity="warning")
            return
        try:
            config = self.config()
        except ValueError as exc:
            self.notify(str(exc), severity="error", timeout=8)
            return
        from tui.tag_try import try_one

        self.query_one("#try-summary", Static).update(f"tagging {Path(image).name}…")
        fill_table(self.query_one("#try-tags", DataTable), [])
        run_stage(self, TRY, result_of(try_one, Path(image), config), TRY)

    def show_try(self, result) -> None:
        table = self.query_one("#try-tags", DataTable)
        fill_table(table, [((tag, f"{p:.2f}", bar(p)), tag) for tag, p in result.tags])
        self.query_one("#try-summary", Static).update(
            f"{Path(result.path).name}: {len(result.tags)} tag(s), rating {result.rating}")

    def side_failed(self, group: str, error: str) -> None:
        if group == TRY:
            self.query_one("#try-summary", Static).update(Text(error, style="bold red"))
        super().side_failed(group, error)

    def job_source(self):
        from tagger.run import tag_dataset

        config = self.config()
        dataset = self.dataset
        return lambda: tag_dataset(dataset, config)

    def describe(self, summary) -> str:
        failed = f", {summary.failed} failed" if summary.failed else ""
        return (f"tagged {summary.images} image(s) with {summary.model} on {summary.provider}: "
                f"{summary.written} written, {summary.skipped} skipped, {summary.unchanged} unchanged{failed}")
