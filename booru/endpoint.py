"""Which root a run talks to, and whether the user's credentials may go there.

Credentials go only where the user sent them: the site's official host, a `--base-url` typed on
the command line, or `LORAKIT_<SITE>_BASE_URL` in the user's own environment. A base URL read from a
workspace file (which may come with a dataset someone shared) gets none, with a warning naming the
file. Over plain http to a host other than this machine's loopback they are refused unless the
user passes `--allow-insecure`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from booru.errors import BooruUsageError
from booru.sites import SiteInfo
from booru.transfer import is_loopback_url

COMMAND_LINE = "command line"
OFFICIAL = "official"


def base_url_var(site: SiteInfo) -> str:
    return f"{site.env_prefix}_BASE_URL"


@dataclass(frozen=True)
class Endpoint:
    url: str
    origin: str  # OFFICIAL, COMMAND_LINE, the environment variable's name, or the workspace file

    @property
    def trusted(self) -> bool:
        """May credentials go here?"""
        return self.origin in (OFFICIAL, COMMAND_LINE) or self.origin.startswith("LORAKIT_")

    @property
    def loopback(self) -> bool:
        return is_loopback_url(self.url)


def _same_root(a: str, b: str) -> bool:
    try:
        x, y = urlsplit(a), urlsplit(b)
        return (x.scheme, x.hostname, x.port) == (y.scheme, y.hostname, y.port)
    except ValueError:
        return False


def resolve_endpoint(site: SiteInfo, base_url: str | None, origin: str = "") -> Endpoint | None:
    """The run's root: base_url as given (origin: COMMAND_LINE or the file it came from), else
    LORAKIT_<SITE>_BASE_URL, else the official root; None when the site has no root at all."""
    env_url = os.environ.get(base_url_var(site), "").strip() or None
    if base_url:
        if origin == COMMAND_LINE:
            return Endpoint(base_url, COMMAND_LINE)
        if env_url and base_url.rstrip("/") == env_url.rstrip("/"):
            return Endpoint(base_url, base_url_var(site))
        if site.root and _same_root(base_url, site.root):
            return Endpoint(base_url, OFFICIAL)
        return Endpoint(base_url, origin or "a workspace file")
    if env_url:
        return Endpoint(env_url, base_url_var(site))
    return Endpoint(site.root, OFFICIAL) if site.root else None


def credential_check(endpoint: Endpoint, site: SiteInfo, has_credentials: bool,
                     allow_insecure: bool) -> str | None:
    """None when credentials may be sent; else the warning to print (credentials then stay home).
    Raises BooruUsageError for credentials bound for plain http without --allow-insecure."""
    if not has_credentials:
        return None
    if not endpoint.trusted:
        return (f"{endpoint.origin}: base_url {endpoint.url} comes from a workspace file, so no credentials "
                f"are sent to it; pass --base-url or set {base_url_var(site)} to trust it")
    try:
        scheme = urlsplit(endpoint.url).scheme
    except ValueError:
        scheme = ""
    if scheme == "http" and not endpoint.loopback and not allow_insecure:
        raise BooruUsageError(f"--base-url {endpoint.url} is plain http: lorakit will not send your "
                              f"{site.name} credentials unencrypted; use https, or pass --allow-insecure")
    return None
