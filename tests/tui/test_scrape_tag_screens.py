"""Scrape against the loopback booru emulator (to completion, cancelled, a user error as a
notification) and Tag with a tiny real ONNX model (try on one image with confidence bars, then the
whole dataset as one journaled operation)."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from prep.journal import Journal
from tests.booru.emulator import Emulator, make_posts
from tests.tagger.onnx_models import STANDARD, write_model_folder
from tests.tui.conftest import open_screen, settle, wait_until
from tui.app import make_app
from tui.screens.scrape import ScrapeScreen
from tui.screens.tag import TagScreen

pytestmark = pytest.mark.asyncio


@pytest.fixture
def emulator():
    emu = Emulator("danbooru", make_posts(8)).start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def no_booru_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LORAKIT_DANBOORU_LOGIN", "LORAKIT_DANBOORU_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LORAKIT_BOORU_BACKOFF", "0.01")


def booru_table(emu: Emulator, limit: int) -> str:
    return (f'\n[booru]\nsite = "danbooru"\ntags = "1girl"\nlimit = {limit}\nconcept = "fox"\nrepeats = 2\n'
            f'base_url = "{emu.base_url}"\nrate = 1000\n')


def messages(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def test_scrape_runs_to_completion_and_shows_the_last_image(tmp_path: Path, emulator: Emulator):
    from tui.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    with open(root / "lorakit.toml", "a") as fh:
        fh.write(booru_table(emulator, 3))
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "1", ScrapeScreen)
        assert screen.query_one("#field-tags", Input).value == "1girl"
        keys = str(screen.query_one("#key-status", Static).render())
        assert "LORAKIT_DANBOORU_LOGIN missing" in keys and "LORAKIT_DANBOORU_API_KEY missing" in keys
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "downloaded 3" in screen.job_bar.status_text, timeout=30, what="scrape")
        folder = root / "dataset" / "2_fox"
        assert len(list(folder.glob("*.png"))) == 3 and len(list(folder.glob("*.txt"))) == 3
        await wait_until(pilot, lambda: screen.last is not None and screen.last.parent == folder, what="last image")
        await wait_until(pilot, lambda: "3 images" in (app.screen.sub_title or ""), what="header recount")


async def test_scrape_cancel_and_user_error(tmp_path: Path, emulator: Emulator):
    from tui.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    with open(root / "lorakit.toml", "a") as fh:
        fh.write(booru_table(emulator, 8))
    emulator.file_latency = 0.6
    app = make_app(root)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_screen(pilot, "1", ScrapeScreen)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.running, what="scrape started")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not screen.running, timeout=30, what="cancelled")
        await settle(pilot)
        assert "cancelled" in screen.job_bar.status_text
        saved = list((root / "dataset" / "2_fox").glob("*.png"))
        assert len(saved) < 8
        assert not list((root / "dataset").rglob("*.part"))

        screen.query_one("#field-tags", Input).value = ""  # blank query over the file's: the file's wins
        screen.query_one("#field-limit", Input).value = "0"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: any("--limit must be at least 1" in m for m in messages(app)),
                         what="the user error as a notification")
        assert "Traceback" not in screen.job_bar.status_text


async def test_tag_try_one_then_the_dataset(workspace: Path, tmp_path: Path):
    model = write_model_folder(tmp_path / "tiny", STANDARD)
    with open(workspace / "lorakit.toml", "a") as fh:
        fh.write(f'\n[tagger]\nmodel = "{model}"\nmode = "overwrite"\ndevice = "cpu"\n')
    dataset = workspace / "dataset"
    before = {p: p.read_bytes() for p in dataset.rglob("*.txt")}
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "2", TagScreen)
        assert "CPU" in str(screen.query_one("#provider", Static).render())
        images = screen.query_one("#tag-images", DataTable)
        assert images.row_count == 6
        await pilot.press("t")
        tags = screen.query_one("#try-tags", DataTable)
        await wait_until(pilot, lambda: tags.row_count > 0, timeout=60, what="try on one image")
        row = tags.get_row_at(0)
        assert 0.0 <= float(str(row[1])) <= 1.0 and "█" in str(row[2]) + "░"
        assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} == before  # trying writes nothing
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "tagged 6 image(s)" in screen.job_bar.status_text, timeout=90,
                         what="tag run")
        assert {p: p.read_bytes() for p in dataset.rglob("*.txt")} != before
        assert (dataset / "1_bob" / "b1.txt").is_file()  # the uncaptioned image got one
        assert len(Journal(dataset).history()) == 1


async def test_tag_model_relative_to_the_workspace_from_another_folder(workspace: Path, tmp_path: Path,
                                                                       monkeypatch):
    """`[tagger] model = "models/tiny"` is the workspace's folder (as the demo writes it), also when the
    app runs from another folder: the form's values are the file's, not flags relative to the cwd."""
    write_model_folder(workspace / "models" / "tiny", STANDARD)
    with open(workspace / "lorakit.toml", "a") as fh:
        fh.write('\n[tagger]\nmodel = "models/tiny"\nmode = "overwrite"\ndevice = "cpu"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "2", TagScreen)
        assert screen.config().model == str(workspace / "models" / "tiny")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "tagged 6 image(s)" in screen.job_bar.status_text, timeout=90,
                         what="tag run")
