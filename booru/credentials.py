"""Booru credentials: the flags, then the environment, then the user's credentials file.

Never from a workspace's `lorakit.toml` (a shared folder is no place for a key). The file is
`credentials.toml` in the user config folder (platformdirs: `~/.config/lorakit/` on Linux,
`~/Library/Application Support/lorakit/` on macOS, `%APPDATA%\\lorakit\\` on Windows), or the
file `LORAKIT_CREDENTIALS` names; one table per site, the keys of the environment variables:

    [danbooru]
    login = "alice"
    api_key = "..."

    [gelbooru]
    api_key = "..."
    user_id = "123"

On POSIX the file must be private (mode 0600): one that its group or others may read or write is
refused with one line, before any key is read. `LORAKIT_<SITE>_LOGIN` / `_API_KEY` / `_USER_ID`
override the file, field by field; flags override both.
"""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

from booru.errors import BooruError
from booru.sites import SITES, SiteInfo
from booru.sites.base import Credentials

CREDENTIALS_FILE = "credentials.toml"
FIELDS = ("login", "api_key", "user_id")


def credentials_path() -> Path:
    """Where the credentials file is looked for (it need not exist)."""
    named = os.environ.get("LORAKIT_CREDENTIALS")
    if named:
        return Path(named).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("lorakit", appauthor=False)) / CREDENTIALS_FILE


def read_credentials_file(path: Path | None = None) -> dict[str, dict[str, str]]:
    """The file's tables ({} when there is no file); BooruError for a file others may read, or a bad one."""
    from prep.config import read_toml

    path = credentials_path() if path is None else path
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise BooruError(f"{path}: cannot read the credentials file ({exc.strerror})") from None
    if os.name == "posix" and st.st_mode & 0o077:
        raise BooruError(f"{path}: the credentials file may be read or changed by other users (mode "
                         f"{stat.S_IMODE(st.st_mode):04o}); run chmod 600 {path}")
    tables = read_toml(path)
    for site, table in tables.items():
        if site not in SITES:
            close = difflib.get_close_matches(site, list(SITES), n=1)
            hint = f" (did you mean [{close[0]}]?)" if close else f" (sites: {', '.join(SITES)})"
            raise BooruError(f"{path}: unknown site [{site}]{hint}")
        if not isinstance(table, dict):
            raise BooruError(f"{path}: [{site}] must be a table of {', '.join(FIELDS)}")
        for key, value in table.items():
            if key not in FIELDS:
                close = difflib.get_close_matches(key, FIELDS, n=1)
                hint = f" (did you mean {close[0]}?)" if close else f" (keys: {', '.join(FIELDS)})"
                raise BooruError(f"{path}: unknown key {key} in [{site}]{hint}")
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise BooruError(f"{path}: [{site}] {key} must be a string")
    return {site: {k: str(v) for k, v in table.items()} for site, table in tables.items()}


def lookup_credentials(site: SiteInfo, login: str | None = None, api_key: str | None = None,
                       user_id: str | None = None) -> Credentials:
    """A site's credentials: flags first, then LORAKIT_<SITE>_LOGIN / _API_KEY / _USER_ID, then the file."""
    given = {"login": login, "api_key": api_key, "user_id": user_id}
    env = {f: os.environ.get(f"{site.env_prefix}_{f.upper()}") or None for f in FIELDS}
    stored = read_credentials_file().get(site.name, {})  # read (and its mode checked) on every run
    values = {f: given[f] or env[f] or stored.get(f) or None for f in FIELDS}
    return Credentials(values["login"], values["api_key"], values["user_id"])
