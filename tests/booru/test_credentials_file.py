"""The user's credentials file (0600, user config folder): read after the flags and the environment,
refused with one line when other users may read it, never echoed."""

from __future__ import annotations

import os

import pytest

from booru.credentials import credentials_path, lookup_credentials, read_credentials_file
from booru.errors import BooruError
from booru.sites import SITES
from tests.booru.emulator import make_posts
from tests.booru.test_cli_process import _env

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


def _write(path, text: str, mode: int = 0o600):
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)
    return path


def test_flags_then_environment_then_file(tmp_path, monkeypatch):
    path = _write(tmp_path / "credentials.toml", '[danbooru]\nlogin = "file-login"\napi_key = "file-key"\n')
    monkeypatch.setenv("LORAKIT_CREDENTIALS", str(path))
    for name in ("LOGIN", "API_KEY", "USER_ID"):
        monkeypatch.delenv(f"LORAKIT_DANBOORU_{name}", raising=False)
    site = SITES["danbooru"]
    assert credentials_path() == path
    found = lookup_credentials(site)
    assert (found.login, found.api_key) == ("file-login", "file-key")
    monkeypatch.setenv("LORAKIT_DANBOORU_API_KEY", "env-key")
    found = lookup_credentials(site)
    assert (found.login, found.api_key) == ("file-login", "env-key")  # field by field
    found = lookup_credentials(site, login="flag-login", api_key="flag-key")
    assert (found.login, found.api_key) == ("flag-login", "flag-key")
    assert lookup_credentials(SITES["gelbooru"]).api_key is None  # another site's table is not used
    assert "file-key" not in repr(lookup_credentials(site))


def test_a_file_others_may_read_is_refused_before_any_key_is_read(tmp_path):
    path = _write(tmp_path / "credentials.toml", '[danbooru]\napi_key = "s3cret"\n', 0o644)
    with pytest.raises(BooruError) as refused:
        read_credentials_file(path)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "chmod 600" in message and "0644" in message
    assert "s3cret" not in message
    os.chmod(path, 0o620)  # group-writable: someone else could put their own site address and key in it
    with pytest.raises(BooruError):
        read_credentials_file(path)
    assert read_credentials_file(tmp_path / "absent.toml") == {}


@pytest.mark.parametrize("text, expected", [
    ("[danboru]\napi_key = 'k'\n", "did you mean [danbooru]?"),
    ("[danbooru]\napikey = 'k'\n", "did you mean api_key?"),
    ("[danbooru]\napi_key = [1]\n", "must be a string"),
    ("[danbooru\n", "not valid TOML"),
])
def test_a_bad_file_is_one_line_naming_it(tmp_path, text, expected):
    from prep.errors import UserError

    path = _write(tmp_path / "credentials.toml", text)
    with pytest.raises(UserError) as bad:
        read_credentials_file(path)
    assert expected in str(bad.value) and str(path) in str(bad.value) and "\n" not in str(bad.value)


def test_scrape_takes_its_key_from_the_file_and_refuses_a_readable_one(emulator, run_cli, tmp_path):
    emu = emulator("gelbooru", make_posts(3), require_key=True)
    path = _write(tmp_path / "credentials.toml",
                  f'[gelbooru]\napi_key = "{emu.api_key}"\nuser_id = "{emu.user_id}"\n')
    env = _env() | {"LORAKIT_CREDENTIALS": str(path)}
    args = ("scrape", "--site", "gelbooru", "--base-url", emu.base_url, "--tags", "1girl", "--limit", "2",
            "--rate", "100")
    ok = run_cli(*args, "--out", tmp_path / "a", env=env)
    assert ok.code == 0, ok.err
    assert "downloaded 2" in ok.out and emu.api_key not in ok.out + ok.err
    os.chmod(path, 0o644)
    refused = run_cli(*args, "--out", tmp_path / "b", env=env)
    assert refused.code == 1 and refused.err.count("\n") == 1, refused.err
    assert "chmod 600" in refused.err and emu.api_key not in refused.out + refused.err
    assert not (tmp_path / "b").exists()
    os.chmod(path, 0o600)
    _write(path, '[gelbooru]\napi_key = "wrong"\nuser_id = "0"\n')
    overridden = run_cli(*args, "--out", tmp_path / "c", env=env | {"LORAKIT_GELBOORU_API_KEY": emu.api_key,
                                                                   "LORAKIT_GELBOORU_USER_ID": emu.user_id})
    assert overridden.code == 0, overridden.err
