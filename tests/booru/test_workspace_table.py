"""`lorakit scrape` with every option in `[booru]` of the lorakit.toml in the current folder."""

from __future__ import annotations

import json

from tests.booru.emulator import make_posts
from tui.cli import main


def test_a_full_booru_table_needs_no_flags(emulator, tmp_path, monkeypatch, capsys):
    emu = emulator("danbooru", make_posts(3))
    (tmp_path / "lorakit.toml").write_text(
        f'[booru]\nsite = "danbooru"\ntags = "1girl"\nlimit = 2\nout = "dataset"\nbase_url = "{emu.base_url}"\n'
        'rate = 1000.0\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["scrape", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["downloaded"] == 2
    assert len(list((tmp_path / "dataset").glob("*.txt"))) == 2  # `out` is relative to the file
    assert main(["scrape", "--json", "--limit", "3"]) == 0  # a flag wins over the table
    assert len(list((tmp_path / "dataset").glob("*.txt"))) == 3
