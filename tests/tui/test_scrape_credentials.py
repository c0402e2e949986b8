"""Scrape screen credentials follow `lorakit scrape`'s rule (booru/endpoint.py): a base URL typed
into the form this session gets the user's keys (like --base-url), one only read from lorakit.toml
gets none. The loopback emulator records what each API request carried."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.booru.emulator import Emulator, make_posts
from tests.tui.conftest import open_screen, wait_until
from tui.app import make_app
from tui.screens.scrape import ScrapeScreen
from tui.workspace import init_workspace

pytestmark = pytest.mark.asyncio


@pytest.fixture
def emulator():
    emu = Emulator("danbooru", make_posts(4)).start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def booru_keys(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    monkeypatch.setenv("LORAKIT_DANBOORU_LOGIN", emulator.login)
    monkeypatch.setenv("LORAKIT_DANBOORU_API_KEY", emulator.api_key)
    monkeypatch.delenv("LORAKIT_DANBOORU_BASE_URL", raising=False)
    monkeypatch.setenv("LORAKIT_BOORU_BACKOFF", "0.01")


def carried_key(request: dict, emu: Emulator) -> bool:
    return bool(request["authorization"]) or emu.api_key in request["query"] or \
        request["params"].get("api_key") == emu.api_key


def workspace_with(tmp_path: Path, base_url: str | None) -> Path:
    root = tmp_path / "ws"
    init_workspace(root)
    table = '\n[booru]\nsite = "danbooru"\ntags = "1girl"\nlimit = 2\nconcept = "fox"\nrate = 1000\n'
    if base_url:
        table += f'base_url = "{base_url}"\n'
    with open(root / "lorakit.toml", "a") as fh:
        fh.write(table)
    return root


async def scrape_and_wait(pilot, screen) -> None:
    await pilot.press("ctrl+r")
    await wait_until(pilot, lambda: "downloaded 2" in screen.job_bar.status_text and not screen.running,
                     timeout=30, what="scrape")


async def test_a_base_url_only_from_lorakit_toml_gets_no_credentials(tmp_path: Path, emulator: Emulator):
    root = workspace_with(tmp_path, emulator.base_url)
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "1", ScrapeScreen)
        await scrape_and_wait(pilot, screen)
        log = "\n".join(screen.query_one("#log").lines)
    api = emulator.requests("api")
    assert api and not any(carried_key(r, emulator) for r in api), api
    assert "comes from a workspace file" in log and emulator.api_key not in log


async def test_a_base_url_typed_in_the_form_gets_the_credentials(tmp_path: Path, emulator: Emulator):
    root = workspace_with(tmp_path, None)
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "1", ScrapeScreen)
        for _ in range(30):  # tab into the base URL field, as a user would
            if getattr(app.focused, "id", None) == "field-base_url":
                break
            await pilot.press("tab")
        assert app.focused.id == "field-base_url"
        await pilot.press(*emulator.base_url)
        await pilot.press("escape")
        await scrape_and_wait(pilot, screen)
    api = emulator.requests("api")
    assert api and all(carried_key(r, emulator) for r in api), api
