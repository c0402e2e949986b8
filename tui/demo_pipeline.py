"""`lorakit demo`'s road: a workspace with generated shapes, demo models, then every stage on it (no Textual).

`run_demo(folder, steps)` yields one `StageDone` per stage (the CLI prints them) and returns the
`DemoResult`. Each stage reads its table from the workspace's lorakit.toml through the same loader
as its command, so `lorakit tag dataset`, `lorakit train` and each screen's `ctrl+r` work there again.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prep.config import WORKSPACE_FILE, ConfigError, load_options, read_toml
from prep.errors import UserError

DEFAULT_FOLDER = Path("lorakit-demo")
DEFAULT_STEPS = 40
MARKER = Path(".lorakit") / "demo.json"  # says "lorakit demo made this folder": it may be rebuilt
BASE_MODEL = Path("models") / "demo-base"
TAGGER_MODEL = Path("models") / "demo-tagger"
DEMO_NOTE = ("DEMO MODEL: random weights in the real diffusers format, built by `lorakit demo` to show the "
             "pipeline working offline. It draws noise; train real LoRAs on a real base model.\n")
# What a rebuilt demo workspace replaces (everything the demo writes; nothing else is touched).
DEMO_PATHS = ("dataset", "reg", "output", "models", ".lorakit", WORKSPACE_FILE, "prompts.txt")


class DemoError(UserError):
    """The demo cannot use the folder it was given."""


@dataclass(frozen=True)
class StageDone:
    name: str
    seconds: float
    summary: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": round(self.seconds, 3), "summary": self.summary}


@dataclass
class DemoResult:
    workspace: Path
    base_model: Path
    lora: Path | None = None
    images: int = 0
    steps: int = 0
    events: Path | None = None
    stages: list[StageDone] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"workspace": str(self.workspace), "base_model": str(self.base_model),
                "lora": str(self.lora) if self.lora else None, "images": self.images, "steps": self.steps,
                "stages": [s.to_dict() for s in self.stages]}


def prepare_folder(folder: Path) -> Path:
    """An empty folder or an earlier demo workspace (its demo files removed); refuse anything else."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DemoError(f"{folder}: exists and is not a folder; pick another demo folder")
    if folder.is_dir() and any(folder.iterdir()):
        if not (folder / MARKER).is_file():
            raise DemoError(f"{folder}: not empty and not a demo workspace; pass an empty or new folder "
                            f"(lorakit demo DIR)")
        for name in DEMO_PATHS:
            path = folder / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def workspace_toml(root: Path, steps: int, trigger: str = "") -> str:
    """The demo's lorakit.toml: every table the demo uses, with comments."""
    save_every = max(steps // 2, 1)
    return f"""\
# lorakit demo workspace, made by `lorakit demo`. The models under models/ are DEMO MODELS
# (random weights, real formats): they show every stage working offline, nothing more.
# Paths are relative to this file. Every screen of `lorakit ui` reads and writes these tables.

[tagger]
model = "{TAGGER_MODEL.as_posix()}"  # the demo tagger: a tiny ONNX graph with the WD14 signature
general_threshold = 0.35

[clean]
remove = ["no humans"]
remove_redundant = true

[concept]
trigger = "{trigger}"  # picked by the concept-word finder
remove_names = []
concept = ""  # the concept folder it applies to; empty: every folder

[validate]
resolution = 64

[fix]
alpha = "white"

[train]
pretrained_model = "{BASE_MODEL.as_posix()}"
dataset = "dataset"
output_dir = "output"
output_name = "demo"
resolution = "64"
min_bucket_reso = 32
max_bucket_reso = 128
bucket_reso_steps = 32
network_dim = 4
network_alpha = 4.0
learning_rate = 1e-3
max_train_steps = {steps}
train_batch_size = 2
keep_tokens = 1
shuffle_caption = true
mixed_precision = "no"
save_every_n_steps = {save_every}
save_state = true
sample_prompts = "prompts.txt"
sample_every_n_steps = {steps}
"""


def run_demo(folder: Path = DEFAULT_FOLDER, steps: int = DEFAULT_STEPS,
             on_train_event: Callable[[dict[str, Any]], None] | None = None
             ) -> Generator[StageDone, None, DemoResult]:
    """Build the demo workspace and run every stage on it; yields each stage as it finishes."""
    if steps < 1:
        raise DemoError(f"--steps {steps}: must be at least 1")
    root = prepare_folder(folder)
    result = DemoResult(root, root / BASE_MODEL)

    def stage(name: str, started: float, summary: str) -> StageDone:
        done = StageDone(name, time.perf_counter() - started, summary)
        result.stages.append(done)
        return done

    t = time.perf_counter()
    from prep.demo_dataset import write_demo_dataset
    from prep.fsio import atomic_write_text

    for name in ("dataset", "reg", "output", ".lorakit"):
        (root / name).mkdir(exist_ok=True)
    atomic_write_text(root / MARKER, json.dumps({"made_by": "lorakit demo", "steps": steps}) + "\n")
    config_file = root / WORKSPACE_FILE
    atomic_write_text(config_file, workspace_toml(root, steps))
    atomic_write_text(root / "prompts.txt", "a red circle, simple background --w 64 --h 64 --s 4 --d 1\n")
    written = write_demo_dataset(root / "dataset")
    result.images = written.images
    yield stage("workspace", t, f"{written.images} images in 2 concept folders, {written.captioned} captioned")

    t = time.perf_counter()
    from tagger.tiny_model import build_demo_tagger
    from trainer.cli import quiet_libraries
    from trainer.tiny_model import build_tiny_sd1

    quiet_libraries()

    build_tiny_sd1(root / BASE_MODEL)
    (root / BASE_MODEL / "DEMO-MODEL.txt").write_text(DEMO_NOTE, encoding="utf-8")
    build_demo_tagger(root / TAGGER_MODEL)
    yield stage("models", t, f"demo base {BASE_MODEL.as_posix()}, demo tagger {TAGGER_MODEL.as_posix()}")

    dataset = root / "dataset"
    from tui.output import drive

    t = time.perf_counter()
    from tagger.config import TagConfig
    from tagger.run import tag_dataset

    tag_config = load_options(TagConfig, "tagger", dataset=dataset, path_or_id=("model",))
    tagged = drive(tag_dataset(dataset, tag_config), quiet=True)
    yield stage("tag", t, f"{tagged.written} captions written, {tagged.skipped} already captioned")

    t = time.perf_counter()
    from prep.clean import CleanConfig, clean_dataset

    cleaned = clean_dataset(dataset, load_options(CleanConfig, "clean", dataset=dataset),
                            command="lorakit demo: clean")
    yield stage("clean", t, f"{cleaned.changed} captions cleaned, {cleaned.unchanged} unchanged")

    t = time.perf_counter()
    from prep.concept import apply_concept, load_concept_config
    from prep.toml_edit import update_table

    trigger = _concept_word(dataset, root / BASE_MODEL)
    update_table(config_file, "concept", {"trigger": trigger})  # tomlkit: the comments stay
    applied = apply_concept(dataset, load_concept_config(dataset), config_file=config_file)
    yield stage("concept", t, f"trigger {trigger!r} first in {applied.changed} captions")

    t = time.perf_counter()
    from prep.validate import load_validate_options, validate

    options = load_validate_options(dataset)
    report = validate(dataset, options)
    yield stage("validate", t, f"{report.images} images, {_problems(report)}")

    t = time.perf_counter()
    from prep.fix import iter_fix
    from prep.fix.options import FixOptions

    fixed = drive(iter_fix(dataset, load_options(FixOptions, "fix", dataset=dataset)), quiet=True)
    after = validate(dataset, options)
    counts = ", ".join(f"{code} {n}" for code, n in sorted(fixed.fixed.items())) or "nothing"
    yield stage("fix", t, f"fixed {counts}; validate now {_problems(after)}")

    t = time.perf_counter()
    result.lora, result.steps, result.events = _train(root, config_file, on_train_event)
    yield stage("train", t, f"{result.steps} steps -> {result.lora.relative_to(root)}")

    t = time.perf_counter()
    from trainer.lora_tools.check import check_lora

    checked = check_lora(result.lora)
    verdict = "ok" if checked.get("ok") else "problems found"
    yield stage("check", t, f"{verdict}: {checked.get('modules', 0)} modules, "
                            f"{len(checked.get('nonfinite') or [])} non-finite")
    return result


def _problems(report) -> str:
    """`0 errors, 1 warning (has-alpha)`: what validate found, info notes aside."""
    errors = sorted({p.code for p in report.problems if p.severity == "error"})
    warnings = sorted({p.code for p in report.problems if p.severity == "warning"})
    count = sum(1 for p in report.problems if p.severity == "warning")
    text = f"{sum(1 for p in report.problems if p.severity == 'error')} error(s)"
    if errors:
        text += f" ({', '.join(errors)})"
    text += f", {count} warning(s)"
    return text + (f" ({', '.join(warnings)})" if warnings else "")


def _concept_word(dataset: Path, base_model: Path) -> str:
    """The rarest single-token word not in the captions, re-ranked by the demo base's text encoder."""
    from prep import concept_words as cw

    candidates = cw.find_candidates(max_length=5, exclude=cw.dataset_words(dataset), top=8)
    if not candidates:
        raise DemoError("the concept-word finder found no candidate")
    ranked = cw.rank_by_model(base_model, candidates)
    return ranked[0].word


def _train(root: Path, config_file: Path, on_event: Callable[[dict[str, Any]], None] | None
           ) -> tuple[Path, int, Path]:
    """Train on [train] in this process, events to the workspace's runs folder (the Train screen shows it)."""
    from trainer.config import load_config
    from trainer.events import JsonLinesWriter, fan_out
    from trainer.run import train

    runs = root / ".lorakit" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    events = runs / f"{time.strftime('%Y%m%d-%H%M%S')}-demo.jsonl"
    config = load_config(config_file)
    if not isinstance(read_toml(config_file).get("train"), dict):
        raise ConfigError(f"{config_file}: [train] is missing")
    writer = JsonLinesWriter(events)
    steps = 0

    def count(event: dict[str, Any]) -> None:
        nonlocal steps
        if event.get("event") == "step":
            steps = int(event["step"])

    try:
        lora = train(config, fan_out(writer, count, on_event))
    finally:
        writer.close()
    return Path(lora), steps, events
