"""`lorakit scrape` as a real process: the JSON on stdout, exit codes, the one-line errors."""

from __future__ import annotations

import json
import os

from tests.booru.emulator import make_posts


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAKIT_")}
    env["LORAKIT_BOORU_BACKOFF"] = "0.01"
    env["LORAKIT_CREDENTIALS"] = os.environ["LORAKIT_CREDENTIALS"]  # never the developer's own file
    return env


def test_gelbooru_scrape_as_a_process(emulator, run_cli, tmp_path):
    emu = emulator("gelbooru", make_posts(5), require_key=True)
    env = _env() | {"LORAKIT_GELBOORU_API_KEY": emu.api_key, "LORAKIT_GELBOORU_USER_ID": emu.user_id}
    out = tmp_path / "dataset"
    result = run_cli("scrape", "--site", "gelbooru", "--base-url", emu.base_url, "--tags", "1girl", "--limit", "4",
                     "--out", out, "--concept", "miku", "--repeats", "10", "--rate", "100", "--json", env=env)
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert set(data) == {"downloaded", "skipped", "failed", "files"}
    assert data["downloaded"] == 4 and data["failed"] == 0 and data["skipped"] == {}
    assert [os.path.basename(f) for f in data["files"]] == [f"gelbooru_{p.id}.png" for p in emu.posts[:4]]
    assert all(os.path.isfile(f) for f in data["files"])
    assert (out / "10_miku" / f"gelbooru_{emu.posts[0].id}.txt").is_file()
    assert emu.api_key not in result.out + result.err


def test_plain_summary_and_auth_failure_as_a_process(emulator, run_cli, tmp_path):
    emu = emulator("danbooru", make_posts(3))
    ok = run_cli("scrape", "--site", "danbooru", "--base-url", emu.base_url, "--tags", "1girl", "--limit", "2",
                 "--out", tmp_path / "a", "--rate", "100", env=_env())
    assert ok.code == 0, ok.err
    assert "downloaded 2" in ok.out and "failed 0" in ok.out
    emu.require_key = True
    refused = run_cli("scrape", "--site", "danbooru", "--base-url", emu.base_url, "--tags", "1girl", "--limit",
                      "2", "--out", tmp_path / "b", "--rate", "100", env=_env())
    assert refused.code == 1
    assert refused.err.count("\n") == 1 and "LORAKIT_DANBOORU_API_KEY" in refused.err
    usage = run_cli("scrape", "--site", "danbooru", "--out", tmp_path / "c", env=_env())
    assert usage.code == 2
