"""Concept screen: rare single-token trigger candidates, a check for a word of your own, and `[concept]`.

`ctrl+r` applies the form (`prep.concept.apply_concept`): the trigger becomes the first tag in the
captions of the chosen concept folder (or all), the listed full names go, as one journaled
operation, and `[train]` gets keep_tokens = 1 and shuffle_caption = true. `w` checks a word,
the candidates are scored with the `[train]` model when it is a local diffusers folder (on open;
`m` again), enter on a candidate puts it in the trigger field.
"""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Static

from prep.concept import TABLE, ConceptConfig
from prep.config import from_mapping
from tui.runner import result_of, run_stage
from tui.screens.base import DataScreen, fill_table
from tui.widgets.form import OptionForm
from tui.widgets.plain import Plain
from tui.widgets.table import Table

CANDIDATES, CHECK, SCORE, APPLY = "candidates", "check-word", "score", "concept"
TOP = 200
SCORED = 30  # candidates scored with the model (one text-encoder pass per 32 words)


def load_candidates(dataset: Path) -> tuple[list, set[str]]:
    from prep.concept_words import dataset_words, find_candidates

    words = dataset_words(dataset) if dataset.is_dir() else set()
    return find_candidates(exclude=words, top=TOP), words


def describe_check(check) -> Text:
    single = Text("single token", style="bold green") if check.single else Text(
        f"{len(check.tokens)} tokens", style="yellow")
    collide = Text("collides with a dataset tag", style="bold red") if check.in_dataset else Text(
        "not in the dataset", style="green")
    extra = []
    if check.common_english:
        extra.append("a common English word")
    if check.danbooru:
        extra.append("a common Danbooru tag")
    return Text.assemble(f"{check.word}: tokens {check.tokens} · ", single, " · ", collide,
                         (" · " + ", ".join(extra)) if extra else "")


class ConceptScreen(DataScreen):
    JOB = APPLY
    JOB_VERB = "applying the trigger"
    TABLE = TABLE
    AUTO_FOCUS = "#candidates"
    BINDINGS = [
        Binding("ctrl+r", "run_job", "Apply", priority=True),
        Binding("w", "focus_word", "Check word"),
        Binding("m", "score", "Score"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.words: set[str] = set()
        self.candidates: list = []
        self.scored_with: Path | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="concept-main"):
            with Vertical(id="concept-left"):
                yield Plain("Rare one-token words (enter: use)", classes="heading")
                yield Table(id="candidates", cursor_type="row", zebra_stripes=True)
            with Vertical(id="concept-right"):
                yield Plain("[concept] (^s saves, ^r applies)", classes="heading")
                yield OptionForm(ConceptConfig, ["trigger", "remove_names", "concept"], self.table_values(),
                                 id="concept-form")
                yield Plain("Check a word", classes="heading")
                yield Input(placeholder="w: your own word, enter checks", id="word", classes="line-input")
                yield Plain("", id="word-check", classes="summary")

    def on_mount(self) -> None:
        self.query_one("#candidates", DataTable).add_columns("Word", "Token id", "Model score")

    def refresh_data(self) -> None:
        run_stage(self, CANDIDATES, result_of(load_candidates, self.dataset), CANDIDATES)

    def side_finished(self, group: str, summary) -> None:
        if group == CANDIDATES:
            self.candidates, self.words = summary
            self.show_candidates()
            folder = self.model_folder()  # a model is set: its score, without asking
            if folder is not None:
                self.score_with(folder)
        elif group == CHECK:
            self.query_one("#word-check", Static).update(describe_check(summary))
        elif group == SCORE:  # the scored ones first, by distance; the rest after them, unscored
            scored = {c.word for c in summary}
            self.candidates = list(summary) + [c for c in self.candidates if c.word not in scored]
            self.show_candidates()
            self.job_bar.status(f"ranked by the distance each word moves {self.scored_with.name}'s text "
                                "encoding (smaller: an emptier word)" if self.scored_with else "")

    def show_candidates(self) -> None:
        table = self.query_one("#candidates", DataTable)
        rows = []
        for candidate in self.candidates:
            score = "" if candidate.distance is None else f"{candidate.distance:.3f}"
            rows.append(((candidate.word, candidate.token_id, score), candidate.word))
        fill_table(table, rows)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table.id == "candidates" and event.row_key.value:
            self.query_one("#field-trigger", Input).value = event.row_key.value
            self.check(event.row_key.value)

    def action_focus_word(self) -> None:
        self.query_one("#word", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "word":
            event.stop()
            self.check(event.value)
            self.set_focus(None)

    def check(self, word: str) -> None:
        from prep.concept_words import check_word

        run_stage(self, CHECK, result_of(check_word, word, set(self.words)), CHECK)

    def model_folder(self) -> Path | None:
        """The `[train]` pretrained_model when it is a local diffusers folder with a text encoder."""
        model = str(self.table_values("train").get("pretrained_model") or "")
        if not model:
            return None
        folder = Path(model).expanduser()
        if not folder.is_absolute():
            folder = self.workspace.root / folder
        return folder if (folder / "text_encoder").is_dir() and (folder / "tokenizer").is_dir() else None

    def action_score(self) -> None:
        folder = self.model_folder()
        if folder is None:
            self.notify("scoring needs [train] pretrained_model set to a local diffusers folder",
                        severity="warning", timeout=8)
            return
        self.score_with(folder)

    def score_with(self, folder: Path) -> None:
        from prep.concept_words import rank_by_model

        self.scored_with = folder
        self.job_bar.status(f"scoring {min(len(self.candidates), SCORED)} candidates with {folder.name}…")
        run_stage(self, SCORE, result_of(rank_by_model, folder, list(self.candidates[:SCORED])), SCORE)

    def job_source(self):
        from prep.concept import apply_concept

        form = self.query_one("#concept-form", OptionForm)
        config = from_mapping(ConceptConfig, form.mapping(), "the [concept] form")
        dataset, config_file = self.dataset, self.workspace.config_file
        return result_of(apply_concept, dataset, config, config_file=config_file)

    def describe(self, report) -> str:
        train = "; [train] keep_tokens = 1, shuffle_caption = true" if report.train_updated else ""
        return f"trigger applied: {report.changed} caption(s) changed{train} (ctrl+z undoes the captions)"
