"""The issue's "Done when" road, with keys alone: `lorakit ui --init` (its workspace code path) →
Scrape (the booru emulator on loopback) → Tag (a tiny real ONNX tagger) → Clean → Edit (`:` op, `y`)
→ Concept (trigger word) → Validate (`ctrl+r`) → fix (`f`), ending with a validated dataset.

Every form field is reached with `tab` and filled by typing, Selects are opened with `enter` and
searched by typing; the test only reads state (files on disk, the header) to know when to go on."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from prep.config import tomllib
from prep.journal import Journal
from tests.booru.emulator import Emulator, FakePost, default_tags
from tests.tagger.onnx_models import STANDARD, write_model_folder
from tests.tui.conftest import settle, wait_until
from tui.app import make_app
from tui.workspace import init_workspace

pytestmark = pytest.mark.asyncio


def rgba_png(side: int) -> bytes:
    """A PNG with a transparent corner: `has-alpha`, which `fix --all` flattens."""
    image = Image.new("RGBA", (side, side), (200, 40, 90, 255))
    image.paste((0, 0, 0, 0), (0, 0, side // 4, side // 4))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def emulator():
    posts = [FakePost(5000 - i, width=520, height=520, tags=default_tags(5000 - i)) for i in range(2)]
    posts.append(FakePost(4990, tags=default_tags(4990), data=rgba_png(520)))
    emu = Emulator("danbooru", posts).start()
    yield emu
    emu.stop()


@pytest.fixture(autouse=True)
def no_booru_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LORAKIT_DANBOORU_LOGIN", "LORAKIT_DANBOORU_API_KEY", "LORAKIT_DANBOORU_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LORAKIT_BOORU_BACKOFF", "0.01")


async def focus(pilot, field_id: str) -> None:
    for _ in range(60):
        if getattr(pilot.app.focused, "id", None) == field_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached #{field_id} (focus: {pilot.app.focused})")


async def fill(pilot, field_id: str, text: str) -> None:
    """Tab to an Input, clear it (home, delete to the end) and type `text`."""
    await focus(pilot, field_id)
    await pilot.press("ctrl+a", "ctrl+k", *text)


async def choose(pilot, field_id: str, value: str) -> None:
    """Tab to a Select, open it, type to search, pick with enter."""
    await focus(pilot, field_id)
    await pilot.press("enter", *value, "enter")
    await pilot.pause()
    assert pilot.app.focused.value == value


async def leave_field(pilot) -> None:
    await pilot.press("escape")
    await pilot.pause()
    assert pilot.app.focused is None or pilot.app.focused.id in ("tag-images", "clean-preview", "candidates")


def captions(dataset: Path) -> dict[str, str]:
    return {p.relative_to(dataset).as_posix(): p.read_text() for p in sorted(dataset.rglob("*.txt"))
            if ".lorakit" not in p.parts}


async def test_from_init_to_a_validated_dataset_with_keys_alone(tmp_path: Path, emulator: Emulator):
    root = tmp_path / "ws"
    init_workspace(root)  # what `lorakit ui --init ws` does before it opens the app
    model = write_model_folder(tmp_path / "tiny-tagger", STANDARD)
    dataset = root / "dataset"
    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        await settle(pilot)
        assert app.screen.title == "lorakit — Scrape"  # a new workspace opens where its data comes from

        # 1 Scrape: site, query, limit, concept, repeats and the emulator's root, typed in the form.
        await choose(pilot, "field-site", "danbooru")
        await fill(pilot, "field-tags", "1girl")
        await fill(pilot, "field-limit", "3")
        await fill(pilot, "field-concept", "fox")
        await fill(pilot, "field-repeats", "2")
        await fill(pilot, "field-base_url", emulator.base_url)
        await leave_field(pilot)
        await pilot.press("ctrl+r")
        screen = app.screen
        await wait_until(pilot, lambda: "downloaded 3" in screen.job_bar.status_text and not screen.running,
                         timeout=60, what="scrape")
        folder = dataset / "2_fox"
        assert len(list(folder.glob("*.png"))) == 3
        scraped = captions(dataset)
        assert len(scraped) == 3 and all("1girl" in text for text in scraped.values())

        # 2 Tag: the tiny model folder, merge with the booru tags.
        await pilot.press("2")
        await settle(pilot)
        assert app.screen.title == "lorakit — Tag"
        screen = app.screen
        await fill(pilot, "field-model", str(model))
        await choose(pilot, "field-mode", "merge")
        await leave_field(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: "tagged 3 image(s)" in screen.job_bar.status_text and not screen.running,
                         timeout=120, what="tag run")
        tagged = captions(dataset)
        assert tagged != scraped and all(tagged[k].startswith(scraped[k]) for k in scraped), (scraped, tagged)

        # 3 Clean: drop the copyright tag the booru gave every post.
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        await fill(pilot, "field-remove", "some series")
        await leave_field(pilot)
        summary = screen.query_one("#clean-summary")
        await wait_until(pilot, lambda: "3 caption(s) would change" in str(summary.render()), what="clean preview")
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not screen.running and all(
            "some series" not in t for t in captions(dataset).values()), what="clean applied")
        await settle(pilot)

        # 4 Edit: `:add solo`, the count, `y`.
        await pilot.press("4")
        await settle(pilot)
        assert app.screen.title == "lorakit — Edit"
        await pilot.press("colon", *"add solo", "enter")
        await settle(pilot)
        question = str(app.screen.query_one("#question").render())
        assert "3 caption(s)" in question
        await pilot.press("y")
        await wait_until(pilot, lambda: all("solo" in t.split(", ") for t in captions(dataset).values()),
                         what="the command line applied")
        await settle(pilot)

        # 5 Concept: the trigger word, first in every caption; [train] gets keep_tokens / shuffle.
        await pilot.press("5")
        await settle(pilot)
        screen = app.screen
        assert screen.title == "lorakit — Concept"
        await fill(pilot, "field-trigger", "zqfox")
        await leave_field(pilot)
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: all(t.startswith("zqfox, ") for t in captions(dataset).values()),
                         what="trigger applied")
        await settle(pilot)
        train = tomllib.loads((root / "lorakit.toml").read_text())["train"]
        assert train["keep_tokens"] == 1 and train["shuffle_caption"] is True

        # 6 Validate: the transparent image is a problem until `f` fixes it; then ok.
        await pilot.press("6")
        await settle(pilot)
        screen = app.screen
        assert screen.title == "lorakit — Validate"
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: screen.report is not None and not screen.running, what="validate")
        first = screen.report
        assert "has-alpha" in first.codes(), first.codes()
        await pilot.press("f")
        await wait_until(pilot, lambda: screen.report is not first and not screen.running, timeout=30,
                         what="fix, then validate again")
        await settle(pilot)
        report = screen.report
        assert report.ok and "has-alpha" not in report.codes(), [(p.code, p.path) for p in report.problems]
        await wait_until(pilot, lambda: "validate: ok" in (app.screen.sub_title or ""), what="the header")
        assert "3 images" in app.screen.sub_title and "100% captioned" in app.screen.sub_title

    for image in folder.glob("*.png"):
        with Image.open(image) as opened:
            assert "A" not in opened.getbands(), image
    final = captions(dataset)
    assert all(t.startswith("zqfox, ") and "solo" in t and "some series" not in t for t in final.values())
    # One journaled operation per stage that wrote captions or images, in the order walked.
    commands = [op.command.split()[0] for op in Journal(dataset).history()]
    assert commands[-5:] == ["tag", "clean", "tags", "concept", "fix"], commands
