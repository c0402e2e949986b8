"""Models screen (key 8): the workspace's LoRA files (output folder and the queue's outputs) with their
metadata (`lorakit lora info`), a check with a per-block bar chart of update norms, merge into the
base checkpoint, resize, a preview grid (base without and with the LoRA at several weights) and the
sample images of the run that made the file. Every tool runs in a thread worker (tui/runner.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static

from prep.errors import UserError
from tui.screens.base import DataScreen
from tui.widgets.plain import Plain
from tui.widgets.table import Table

_BLOCK = re.compile(r"^lora_(unet|te\d?)_(?:(down|up)_blocks_(\d+)|(mid)_block|(input|output|middle)_blocks?_(\d+)"
                    r"|text_model_encoder_layers_(\d+))?")


def block_of(module: str) -> str:
    """A short block label of a kohya module name: down0, mid, up1, te, te2, ..."""
    match = _BLOCK.match(module)
    if not match:
        return "other"
    part = match.group(1)
    if part.startswith("te"):
        return part
    if match.group(2):
        return f"{match.group(2)}{match.group(3)}"
    if match.group(4):
        return "mid"
    if match.group(5):
        return f"{match.group(5)[:3]}{match.group(6) or ''}"
    return "unet"


def block_norms(report: dict[str, Any]) -> list[tuple[str, float]]:
    """(block, summed update norm) in the order the blocks first appear."""
    totals: dict[str, float] = {}
    for stat in report.get("stats", []):
        if stat.get("finite"):
            block = block_of(stat["name"])
            totals[block] = totals.get(block, 0.0) + float(stat.get("update_norm") or 0.0)
    return list(totals.items())


def lora_files(folders: list[Path]) -> list[Path]:
    """The .safetensors LoRA files in these folders (no state folders), newest first."""
    found: dict[Path, float] = {}
    for folder in folders:
        try:
            for path in Path(folder).glob("*.safetensors"):
                if path.is_file():
                    found[path.resolve()] = path.stat().st_mtime
        except OSError:
            continue
    return sorted(found, key=lambda p: (-found[p], p.name))


def samples_of(lora: Path) -> list[Path]:
    """The sample images of the run that wrote this file (output/sample/<output_name>_*.png)."""
    name = re.sub(r"-(step)?\d+$", "", lora.stem)
    folder = lora.parent / "sample"
    try:
        return sorted(folder.glob(f"{name}_*.png"))
    except OSError:
        return []


def merged_path(lora: Path) -> Path:
    """Where `m` writes the base with this LoRA merged in: a subfolder, so it is not listed as a LoRA."""
    return lora.parent / "merged" / f"{lora.stem}-merged.safetensors"


def preview_path(lora: Path) -> Path:
    """Where `p` writes the preview grid (base without the LoRA, then with it at each weight)."""
    return lora.parent / "preview" / f"{lora.stem}-preview.png"


class ModelsScreen(DataScreen):
    """The LoRA files of the workspace and the tools that inspect and change them."""

    JOB = "lora-tool"
    JOB_VERB = "working"
    DEFAULT_CSS = """
    ModelsScreen #models-left { width: 2fr; }
    ModelsScreen #models-right { width: 3fr; border-left: solid $primary; }
    ModelsScreen #lora-table { height: 1fr; }
    ModelsScreen #lora-info { height: auto; max-height: 14; padding: 0 1; }
    ModelsScreen #check-plot { height: 12; }
    ModelsScreen #check-summary { height: auto; padding: 0 1; }
    ModelsScreen #models-image { height: 1fr; }
    """
    BINDINGS = [
        Binding("c", "check", "Check"),
        Binding("p", "preview", "Preview"),
        Binding("m", "merge", "Merge"),
        Binding("z", "resize", "Resize ½"),
        Binding("s", "next_sample", "Samples"),
        Binding("ctrl+r", "check", "Check", priority=True, show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.files: list[Path] = []
        self.info: dict[str, Any] | None = None
        self.check_report: dict[str, Any] | None = None
        self.sample_index = -1
        self.shown_image: Path | None = None
        self.pending: str = ""
        self.shown_file: Path | None = None  # the LoRA whose info, check and images are shown
        self.preview: dict[str, Any] | None = None  # the last preview grid's summary
        self.written: dict[str, Any] | None = None  # the last merge or resize summary

    def compose_body(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        from tui.widgets.image_preview import ImagePreview

        with Horizontal():
            with Vertical(id="models-left"):
                yield Table(id="lora-table", cursor_type="row")
                yield Plain("c check · p preview grid · m merge into the base · z resize to half the rank · "
                            "s samples of the run", classes="path")
            with VerticalScroll(id="models-right"):
                yield Plain(id="lora-info")
                yield Plain(id="check-summary")
                yield PlotextPlot(id="check-plot")
                yield ImagePreview(id="models-image")

    def on_mount(self) -> None:
        table = self.query_one("#lora-table", DataTable)
        table.add_columns("file", "MB", "folder")
        self.refresh_data()

    def folders(self) -> list[Path]:
        folders = [self.app.workspace.output]
        try:
            from trainer.queue import JobQueue

            folders += [Path(job.output_dir) for job in JobQueue(self.app.workspace.root).jobs()]
        except (UserError, OSError):
            pass
        return folders

    def refresh_data(self) -> None:
        table = self.query_one("#lora-table", DataTable)
        table.clear()
        self.files = lora_files(self.folders())
        root = self.app.workspace.root
        for path in self.files:
            try:
                size = f"{path.stat().st_size / 1e6:.1f}"
                folder = str(path.parent.relative_to(root))
            except (OSError, ValueError):
                size, folder = "?", str(path.parent)
            table.add_row(path.name, size, folder, key=str(path))
        if not self.files:
            self.query_one("#lora-info", Static).update(
                Text("no LoRA files yet: train one on the Train screen (7)", style="dim"))

    def selected(self) -> Path | None:
        table = self.query_one("#lora-table", DataTable)
        if not self.files or table.cursor_row is None or table.cursor_row >= len(self.files):
            return None
        return self.files[table.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        path = self.selected()
        if path is None or path == self.shown_file:  # a refresh of the list keeps what is shown
            return
        self.shown_file = path
        self.check_report, self.sample_index = None, -1
        self.query_one("#check-summary", Static).update("")
        self.query_one("#check-plot").plt.clear_data()
        self.query_one("#check-plot").refresh()
        self.run_tool("info", path)
        samples = samples_of(path)
        if samples:
            self.show_image(samples[-1])

    # -- tools ------------------------------------------------------------------------------

    def run_tool(self, tool: str, path: Path) -> None:
        from prep.events import Finished

        def source():
            if tool == "info":
                from trainer.lora_tools.info import lora_info

                yield Finished(("info", lora_info(path)))
            elif tool == "check":
                from trainer.lora_tools.check import check_lora

                yield Finished(("check", check_lora(path)))
            elif tool == "resize":
                from trainer.lora_tools.info import lora_info
                from trainer.lora_tools.resize import resize_lora

                ranks = [int(r) for r in lora_info(path).get("linear_ranks", {}) if str(r).isdigit()]
                rank = max(max(ranks, default=2) // 2, 1)
                out = path.with_name(f"{path.stem}-r{rank}.safetensors")
                yield from _relabel(resize_lora(path, out, rank=rank), "resize")
            elif tool == "merge":
                from trainer.lora_tools.merge import merge_into_checkpoint

                out = merged_path(path)
                out.parent.mkdir(parents=True, exist_ok=True)
                yield from _relabel(merge_into_checkpoint(self.base_model(), [(path, 1.0)], out), "merge")
            elif tool == "preview":
                from trainer.lora_tools.preview import preview_lora

                out = preview_path(path)
                out.parent.mkdir(parents=True, exist_ok=True)
                yield from _relabel(preview_lora(self.base_model(), path, self.prompt(path), out, steps=4), "preview")

        if tool == "info":  # its own worker group: moving the cursor never cancels a merge
            from tui.runner import run_stage

            run_stage(self, "lora-info", source)
            return
        if self.running:
            self.notify("a LoRA tool is running (escape cancels it)", severity="warning")
            return
        self.pending = tool
        self.start_job(source)

    def base_model(self) -> str:
        from trainer.config import load_config

        base = load_config(self.app.workspace.config_file).pretrained_model
        if not base:
            raise UserError("no base model: set pretrained_model in [train] (the Train screen, 7)")
        return base

    def prompt(self, path: Path) -> str:
        trigger = self.table_values("concept").get("trigger") or ""
        return f"{trigger}, best quality" if trigger else "best quality"

    def describe(self, summary: Any) -> str:
        kind, value = summary if isinstance(summary, tuple) else ("", summary)
        if kind in ("resize", "merge", "preview") and isinstance(value, dict):
            return f"{kind}: wrote {value.get('out')}"
        return f"{kind or 'done'}"

    def side_finished(self, group: str, summary: Any) -> None:
        if group == "lora-info":
            self.job_finished(summary)

    def job_finished(self, summary: Any) -> None:
        kind, value = summary if isinstance(summary, tuple) else ("", summary)
        if kind == "info":
            self.info = value
            self.query_one("#lora-info", Static).update(_info_text(value))
        elif kind == "check":
            self.show_check(value)
        elif kind == "preview":
            self.preview = value
            self.show_image(Path(value["out"]))
            weights = ", ".join(f"{w:g}" for w in value.get("weights", []) if w)
            self.query_one("#check-summary", Static).update(Text.assemble(
                ("preview grid", "bold"), f" (left to right): the base without the LoRA, then at weight {weights}\n",
                (str(value["out"]), "dim")))
            self.notify(f"preview grid: {value['out']}")
        elif kind in ("resize", "merge"):
            self.written = value
            if kind == "merge":
                self.query_one("#check-summary", Static).update(Text.assemble(
                    ("merged into the base", "bold"), f": {value.get('out')} ({value.get('modules')} modules, "
                                                      f"{value.get('format')})"))
            self.notify(f"wrote {value.get('out')}")
            self.refresh_data()

    def show_check(self, report: dict[str, Any]) -> None:
        self.check_report = report
        flags = Text()
        flags.append("ok" if report.get("ok") else "problems", style="bold green" if report.get("ok") else "bold red")
        flags.append(f" · {report.get('modules', 0)} modules · zero {len(report.get('zero') or [])} · "
                     f"NaN/Inf {len(report.get('nonfinite') or [])} · outliers {len(report.get('outliers') or [])}")
        self.query_one("#check-summary", Static).update(flags)
        plot = self.query_one("#check-plot")
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        norms = block_norms(report)
        if norms:
            plt.bar([name for name, _ in norms], [value for _, value in norms])
            plt.title("update norm per block")
        plot.refresh()

    def show_image(self, path: Path) -> None:
        self.shown_image = path
        self.query_one("#models-image").show(path)

    def run_on_selected(self, tool: str) -> None:
        path = self.selected()
        if path is not None:
            self.run_tool(tool, path)

    def action_check(self) -> None:
        self.run_on_selected("check")

    def action_preview(self) -> None:
        self.run_on_selected("preview")

    def action_merge(self) -> None:
        self.run_on_selected("merge")

    def action_resize(self) -> None:
        self.run_on_selected("resize")

    def action_next_sample(self) -> None:
        path = self.selected()
        samples = samples_of(path) if path is not None else []
        if not samples:
            self.notify("no sample images of this run (sample_prompts and sample_every_n_* in [train])",
                        severity="warning")
            return
        self.sample_index = (self.sample_index + 1) % len(samples)
        self.show_image(samples[self.sample_index])


def _relabel(events, kind: str):
    """Pass a tool's events on, its Finished summary tagged with the tool's name."""
    from prep.events import Finished

    for event in events:
        if isinstance(event, Finished):
            yield Finished((kind, event.summary))
        else:
            yield event


def _info_text(info: dict[str, Any]) -> Text:
    from trainer.lora_tools.info import format_info

    try:
        return Text(format_info(info))
    except (KeyError, TypeError, ValueError):
        return Text(str(info))
