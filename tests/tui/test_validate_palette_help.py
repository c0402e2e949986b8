"""Validate's `d` (deep: decodes every image) and enter on a caption problem, the command palette's
fuzzy search typed by keys (finds and runs undo), and `?` on every data screen at 80x24."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image
from textual.command import CommandPalette
from textual.widgets import DataTable

from prep.journal import Journal
from prep.tag_edit import edit_dataset, remove_edit
from tests.tui.conftest import open_screen, settle, wait_until
from tui.app import make_app
from tui.screens import SCREENS
from tui.screens.validate import ValidateScreen
from tui.widgets.confirm import ConfirmScreen
from tui.widgets.help import HelpScreen

pytestmark = pytest.mark.asyncio


def corrupt_body_png(path: Path) -> None:
    """A PNG whose header and IEND are intact but whose pixel data is damaged: only a decode finds it."""
    rng = random.Random(7)
    image = Image.frombytes("RGB", (96, 96), bytes(rng.randrange(256) for _ in range(96 * 96 * 3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    data = bytearray(out.getvalue())
    start = data.index(b"IDAT") + 200
    data[start:start + 64] = bytes(64)
    path.write_bytes(bytes(data))


def code_at_cursor(table: DataTable) -> str:
    return str(table.get_row_at(table.cursor_row)[1])


async def test_deep_validate_finds_what_the_header_read_cannot(workspace: Path):
    corrupt_body_png(workspace / "dataset" / "1_bob" / "broken.png")
    (workspace / "dataset" / "1_bob" / "broken.txt").write_text("bob, 1boy")
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "6", ValidateScreen)
        await wait_until(pilot, lambda: screen.report is not None and not screen.running, what="validate on open")
        quick = screen.report
        assert "corrupt-image" not in quick.codes()
        await pilot.press("d")
        await wait_until(pilot, lambda: screen.report is not quick and not screen.running, timeout=60,
                         what="deep validate")
        deep = screen.report
        assert [p.path for p in deep.problems if p.code == "corrupt-image"] == ["1_bob/broken.png"]
        assert screen.deep_run and not deep.ok
        await wait_until(pilot, lambda: "validate: 1 error" in (app.screen.sub_title or ""), what="the header")


async def test_enter_on_a_caption_problem_shows_the_caption(workspace: Path):
    (workspace / "dataset" / "1_bob" / "b0.txt").write_text("bob, 1boy, hat, hat")
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "6", ValidateScreen)
        await wait_until(pilot, lambda: screen.report is not None and not screen.running, what="validate on open")
        problems = screen.query_one("#problems", DataTable)
        assert app.focused is problems
        for _ in range(problems.row_count):
            if code_at_cursor(problems) == "duplicate-tag":
                break
            await pilot.press("down")
        assert code_at_cursor(problems) == "duplicate-tag"
        await pilot.press("enter")
        caption = screen.query_one("#problem-caption")
        await wait_until(pilot, lambda: "bob, 1boy, hat, hat" in str(caption.render()), what="the caption text")
        assert "b0.txt" in str(caption.render())
        assert "duplicate-tag: 1_bob/b0.txt" in str(screen.query_one("#problem-detail").render())


async def test_palette_search_typed_finds_undo_and_runs_it(workspace: Path):
    dataset = workspace / "dataset"
    before = {p: p.read_bytes() for p in dataset.rglob("*.txt")}
    edit_dataset(dataset, remove_edit(["hat"]), command="tags remove hat")
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"undo")
        options = app.screen.query_one("CommandList")
        await wait_until(pilot, lambda: options.option_count > 0 and "undo" in str(
            options.get_option_at_index(0).prompt), what="undo listed first")
        await pilot.press("down", "enter")  # down highlights the first hit, enter runs it
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the undo question")
        assert "tags remove hat" in str(app.screen.query_one("#question").render())
        await pilot.press("y")
        await settle(pilot)
        await wait_until(pilot, lambda: not Journal(dataset).history() or
                         Journal(dataset).history()[-1].state != "done", what="undone")
    assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} == before


@pytest.mark.parametrize("spec", [s for s in SCREENS if s.mode not in ("train", "models")], ids=lambda s: s.mode)
async def test_question_mark_lists_the_screen_keys_at_80x24(workspace: Path, spec):
    app = make_app(workspace)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot, spec.key, object)
        own = {b.key: b.description for b in type(screen).BINDINGS if b.description}
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        help_keys = app.screen.query_one("#help-keys")
        text = str(help_keys.render())
        for key, what in {**own, "ctrl+z": "Undo", "question_mark": "Keys"}.items():
            shown = {"slash": "/", "colon": ":", "question_mark": "?", "escape": "esc"}.get(key, key)
            assert f"{shown}" in text and what in text, (spec.mode, key, what, text)
        assert "ctrl+p" in text and "6" in text
        # The list fits the 80x24 terminal or scrolls: its last line can be reached.
        scroll = app.screen.query_one("VerticalScroll")
        assert scroll.region.bottom <= 24 and scroll.region.right <= 80
        scroll.scroll_end(animate=False)
        await pilot.pause()
        assert help_keys.region.bottom <= scroll.region.bottom or scroll.max_scroll_y > 0
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen


@pytest.fixture(scope="module")
def tiny_text_encoder(tmp_path_factory) -> Path:
    """A diffusers-layout folder with the real SD tokenizer and a tiny random CLIP text encoder."""
    pytest.importorskip("torch")
    from tests.tiny_models import build_tiny_text_encoder

    return build_tiny_text_encoder(tmp_path_factory.mktemp("tiny-te"))


async def test_concept_candidates_carry_the_model_score_when_a_model_is_set(workspace: Path, tiny_text_encoder):
    from prep.concept_words import score_with_model
    from prep.toml_edit import update_table
    from tui.screens.concept import ConceptScreen

    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:  # no model: the column stays empty
        screen = await open_screen(pilot, "5", ConceptScreen)
        table = screen.query_one("#candidates", DataTable)
        assert table.row_count > 0 and all(str(table.get_row_at(i)[2]) == "" for i in range(table.row_count))
    update_table(workspace / "lorakit.toml", "train", {"pretrained_model": str(tiny_text_encoder)})
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "5", ConceptScreen)
        table = screen.query_one("#candidates", DataTable)
        await wait_until(pilot, lambda: table.row_count > 0 and str(table.get_row_at(0)[2]) != "", timeout=60,
                         what="the model score")
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        scored = [(str(r[0]), float(str(r[2]))) for r in rows if str(r[2])]
        assert len(scored) == 30 and [d for _w, d in scored] == sorted(d for _w, d in scored)
        assert len(rows) > 30 and [str(r[2]) for r in rows[30:]] == [""] * (len(rows) - 30)  # the rest kept
        word, distance = scored[0]
        assert score_with_model(tiny_text_encoder, [word])[0] == pytest.approx(distance, abs=1e-3)
        assert "text encoding" in screen.job_bar.status_text
