"""Edit screen: the highlighted caption's tags with their source and confidence from the provenance
store (.lorakit/tags.sqlite), after a real booru scrape (loopback emulator) and a tiny-tagger run."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from booru.config import ScrapeConfig
from booru.scrape import scrape
from prep.config import from_mapping
from tagger.config import TagConfig
from tagger.run import tag_dataset
from tests.booru.emulator import Emulator, make_posts
from tests.tagger.onnx_models import STANDARD, write_model_folder
from tests.tui.conftest import open_screen, wait_until
from tui.app import make_app
from tui.screens.edit import EditScreen
from tui.workspace import init_workspace

pytestmark = pytest.mark.asyncio


def run(events) -> None:
    for _event in events:
        pass


@pytest.fixture
def emulator():
    emu = Emulator("danbooru", make_posts(2)).start()
    yield emu
    emu.stop()


def source_rows(table: DataTable) -> dict[str, tuple[str, str]]:
    """tag -> (source, confidence) as the table shows them (columns Tag, p, Source)."""
    return {str(row[0]): (str(row[2]), str(row[1])) for row in (table.get_row_at(i) for i in range(table.row_count))}


async def test_edit_shows_each_tags_source_and_confidence(tmp_path: Path, emulator: Emulator, monkeypatch):
    monkeypatch.setenv("LORAKIT_BOORU_BACKOFF", "0.01")
    root = tmp_path / "ws"
    init_workspace(root)
    dataset = root / "dataset"
    config = from_mapping(ScrapeConfig, {"site": "danbooru", "tags": "1girl", "limit": 2, "concept": "fox",
                                         "out": str(dataset), "base_url": emulator.base_url, "rate": 1000},
                          "test")
    run(scrape(config, None, base_url_origin="test"))
    model = write_model_folder(tmp_path / "tiny-tagger", STANDARD)
    run(tag_dataset(dataset, from_mapping(TagConfig, {"model": str(model), "mode": "merge", "device": "cpu"},
                                          "test")))
    assert (dataset / ".lorakit" / "tags.sqlite").is_file()

    app = make_app(root)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "4", EditScreen)
        table = screen.query_one("#tag-sources", DataTable)
        await wait_until(pilot, lambda: table.row_count > 0, what="the tag sources")
        record = screen.current_record()
        post_id = Path(record.image).stem.split("_")[-1]
        rows = source_rows(table)
        assert list(rows) == record.tags  # every tag of the caption, in its order
        assert rows[f"tag {post_id}"] == (f"booru:danbooru:{post_id}", "")  # a booru tag has no confidence
        tagged = {tag: value for tag, value in rows.items() if value[0].startswith("tagger:")}
        assert tagged, rows
        for _tag, (source, confidence) in tagged.items():
            assert source == "tagger:tiny-tagger" and 0.0 <= float(confidence) <= 1.0  # the folder's name
        await pilot.press("down")  # the other image: its own post id
        await wait_until(pilot, lambda: screen.current_record() is not record, what="the next image")
        other = Path(screen.current_record().image).stem.split("_")[-1]
        await wait_until(pilot, lambda: f"tag {other}" in source_rows(table), what="its sources")
        assert source_rows(table)[f"tag {other}"][0] == f"booru:danbooru:{other}"


async def test_edit_without_a_store_hides_the_sources(workspace: Path):
    app = make_app(workspace)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await open_screen(pilot, "4", EditScreen)
        assert not screen.query_one("#tag-sources", DataTable).display
