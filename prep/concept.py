"""The `[concept]` table: a trigger word for one concept folder (or all), applied as one journaled edit.

`apply_concept` makes `trigger` the first tag of every caption of the chosen concept folder
(`concept`, empty = every folder), dropping the full names in `remove_names` (any case, spaces or
underscores), as one journal operation (`lorakit undo` reverts it). It then sets
`keep_tokens = 1` and `shuffle_caption = true` in `[train]` of lorakit.toml (comments kept), so
training shuffles the tags but never moves the trigger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from prep.caption_set import EditReport, find_concept, scan_dataset
from prep.captions import normalize_tag
from prep.clean import place_trigger
from prep.config import ConfigError, find_workspace_file, load_options, option
from prep.dataset import DEFAULT_CAPTION_EXTENSION
from prep.tag_edit import EditSpec, edit_dataset
from prep.tag_query import Query, Term

TABLE = "concept"
TRAIN_SETTINGS = {"keep_tokens": 1, "shuffle_caption": True}


@dataclass
class ConceptConfig:
    """The `[concept]` table of lorakit.toml (the Concept screen's form)."""

    trigger: str = option("", "the trigger word: made the first tag of every caption it applies to")
    remove_names: list[str] = option(help="full names the trigger replaces (removed from those captions)",
                                     default_factory=list)
    concept: str = option("", "the concept folder it applies to (5_alice or alice); empty = all")

    def __post_init__(self) -> None:
        self.trigger = normalize_tag(self.trigger or "")
        if "," in self.trigger:
            raise ConfigError(f"trigger = {self.trigger!r} must be one tag (no comma)")
        self.remove_names = [name for name in (n.strip() for n in self.remove_names) if name]
        self.concept = (self.concept or "").strip()


def load_concept_config(dataset: Path) -> ConceptConfig:
    """`[concept]` of the nearest workspace file (the one options loader; defaults when there is none)."""
    return load_options(ConceptConfig, TABLE, dataset=Path(dataset))


@dataclass
class ConceptReport:
    """What apply_concept did: the caption edit, and whether `[train]` of lorakit.toml changed."""

    edit: EditReport
    config_file: Path | None = None
    train_updated: bool = False
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.edit.changed


def concept_query(name: str) -> Query:
    """The `concept:NAME` QUERY, built directly (a folder name may hold a comma or a `|`)."""
    return Query(f"concept:{name}", [Term(f"concept:{name}", concepts=[name])] if name else [])


def apply_concept(dataset: str | Path, config: ConceptConfig, *, config_file: Path | None = None,
                  dry_run: bool = False, caption_extension: str = DEFAULT_CAPTION_EXTENSION,
                  command: str | None = None) -> ConceptReport:
    """Put the trigger first (dropping `remove_names`) in the chosen concept's captions, as one
    journal operation; then set keep_tokens = 1 and shuffle_caption = true in `[train]` of
    `config_file` (default: the lorakit.toml beside the dataset; none found: skipped)."""
    if not config.trigger:
        raise ConfigError("[concept] trigger is empty; set the trigger word first")
    root = Path(dataset)
    if config.concept:
        find_concept(scan_dataset(root, caption_extension), config.concept)  # a typo names no folder
    trigger, names = config.trigger, list(config.remove_names)
    spec = EditSpec("concept", lambda tags: place_trigger(tags, trigger, names))
    scope = f" --where concept:{config.concept}" if config.concept else ""
    text = command or f"concept {trigger}{scope}"
    edit = edit_dataset(root, spec, where=concept_query(config.concept), dry_run=dry_run,
                        caption_extension=caption_extension, command=text)
    report = ConceptReport(edit, warnings=list(edit.warnings))
    # Only a file in the dataset's folder or above it: never the current folder's for a dataset elsewhere.
    target = config_file if config_file is not None else find_workspace_file(root, cwd=root)
    report.config_file = target
    if not dry_run and target is not None:
        from prep.toml_edit import update_table

        report.train_updated = update_table(target, "train", TRAIN_SETTINGS)
    return report
