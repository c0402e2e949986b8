"""The supported sites, their API family, default root and request rate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports this registry on every run: keep requests out of it
    from booru.http import ApiClient
    from booru.sites.base import Credentials, Family


@dataclass(frozen=True)
class SiteInfo:
    name: str
    family: str
    root: str | None  # None: the user must give --base-url
    default_rate: float  # API requests per second

    @property
    def env_prefix(self) -> str:
        return "LORAKIT_" + self.name.upper().replace("-", "_")

    def credential_vars(self) -> list[str]:
        """The environment variables a key for this site goes in (named in auth errors)."""
        if self.family == "gelbooru":
            return [f"{self.env_prefix}_API_KEY", f"{self.env_prefix}_USER_ID"]
        return [f"{self.env_prefix}_LOGIN", f"{self.env_prefix}_API_KEY"]


SITES: dict[str, SiteInfo] = {
    info.name: info
    for info in (
        SiteInfo("danbooru", "danbooru", "https://danbooru.donmai.us", 2.0),
        SiteInfo("safebooru", "danbooru", "https://safebooru.donmai.us", 2.0),
        SiteInfo("gelbooru", "gelbooru", "https://gelbooru.com", 2.0),
        SiteInfo("gelbooru-v02", "gelbooru", None, 1.0),
        SiteInfo("moebooru", "moebooru", "https://yande.re", 2.0),
        SiteInfo("e621", "e621", "https://e621.net", 1.0),
        SiteInfo("e926", "e621", "https://e926.net", 1.0),
    )
}


def make_family(site: SiteInfo, base_url: str, client: ApiClient, credentials: Credentials) -> Family:
    if site.family == "danbooru":
        from booru.sites.danbooru import Danbooru as cls
    elif site.family == "gelbooru":
        from booru.sites.gelbooru import Gelbooru as cls  # type: ignore[assignment]
    elif site.family == "moebooru":
        from booru.sites.moebooru import Moebooru as cls  # type: ignore[assignment]
    else:
        from booru.sites.e621 import E621 as cls  # type: ignore[assignment]
    return cls(site.name, base_url, client, credentials)
