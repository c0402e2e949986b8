"""`lorakit implications fetch`: the site's active implications and aliases for a dataset's tags.

Danbooru and e621 answer `GET /tag_implications.json?search[antecedent_name_comma]=a,b&search[status]=active
&limit=1000` and `GET /tag_aliases.json?…` with `[{"antecedent_name", "consequent_name", "status"}]`.
Implications are followed transitively (each round asks for the consequents not asked yet), through
the scraper's rate-limited, retrying ApiClient and its credential rules (booru/endpoint.py). The graph
is stored in `.lorakit/implications.sqlite` (prep/implications.py) as one journaled write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from booru.endpoint import credential_check, resolve_endpoint
from booru.errors import ApiError, BooruError, BooruUsageError
from booru.http import ApiClient
from booru.redact import Redactor
from booru.retry import RetryableAnswer
from booru.sites import SITES, SiteInfo
from booru.sites.base import Credentials, loads
from prep.caption_set import read_captions, scan_dataset
from prep.captions import KAOMOJI, unescape_parens
from prep.events import Advanced, Event, Finished, Started, Warned
from prep.implications import StoredGraph, encode_store, now_iso, store_path
from prep.journal import Journal

FAMILIES = ("danbooru", "e621")
BATCH = 100  # names per request (search[antecedent_name_comma])
PAGE_LIMIT = 1000
MAX_ROUNDS = 20  # implication chains are short; a cycle or a hostile server stops here


@dataclass
class ImplicationsSummary:
    site: str
    tags: int = 0
    implications: int = 0
    aliases: int = 0
    requests: int = 0
    store: str = ""
    fetched_at: str = ""
    dry_run: bool = False
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"site": self.site, "tags": self.tags, "implications": self.implications, "aliases": self.aliases,
                "requests": self.requests, "store": self.store, "fetched_at": self.fetched_at,
                "dry_run": self.dry_run}


def site_name(tag: str) -> str:
    """A caption tag in the site's spelling: `cat ears` -> `cat_ears`, `hat \\(x\\)` -> `hat_(x)`."""
    tag = unescape_parens(tag.strip())
    return tag if tag in KAOMOJI else tag.replace(" ", "_").lower()


def dataset_tags(root: Path) -> list[str]:
    scan = scan_dataset(root)
    names: dict[str, None] = {}
    for record in read_captions(scan.entries, []):
        for tag in record.tags or ():
            name = site_name(tag)
            if name and "," not in name:
                names.setdefault(name, None)
    return list(names)


def check_site(site: str | None) -> SiteInfo:
    if site is None:
        site = "danbooru"
    info = SITES.get(site)
    if info is None or info.family not in FAMILIES:
        choices = ", ".join(n for n, s in SITES.items() if s.family in FAMILIES)
        raise BooruUsageError(f"--site {site}: implications come from {choices}")
    return info


class _Fetcher:
    def __init__(self, site: SiteInfo, base_url: str, client: ApiClient, credentials: Credentials) -> None:
        self.site, self.base_url, self.client, self.credentials = site, base_url.rstrip("/"), client, credentials

    def relations(self, kind: str, names: list[str]) -> Iterator[tuple[str, str] | Warned]:
        """Active (antecedent, consequent) pairs of names, BATCH names a request."""
        for start in range(0, len(names), BATCH):
            batch = names[start:start + BATCH]
            params = {"search[antecedent_name_comma]": ",".join(batch), "search[status]": "active",
                      "limit": PAGE_LIMIT}
            _, records = self.client.request(f"{self.base_url}/tag_{kind}.json", params,
                                             auth=self.credentials.basic, check=self._decode)
            if len(records) >= PAGE_LIMIT:
                yield Warned(f"{self.site.name} returned {PAGE_LIMIT} {kind} for one batch; some may be missing")
            for record in records:
                pair = _pair(record)
                if pair is not None:
                    yield pair

    def _decode(self, response: requests.Response) -> list[Any]:
        try:
            data = loads(response.content.decode("utf-8", "replace"))
        except ValueError:
            raise RetryableAnswer("answered the implications request with something that is not JSON") from None
        if isinstance(data, Mapping):  # e621: {"tag_implications": []} for nothing
            if data.get("success") is False:
                raise ApiError(f"{self.site.name} refused the implications request: "
                               f"{self.client.redact(str(data.get('message') or data.get('reason')))[:200]}")
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if lists else []
        if not isinstance(data, list):
            raise ApiError(f"{self.site.name} answered the implications request with JSON that is not a list")
        return data


def _pair(record: Any) -> tuple[str, str] | None:
    if not isinstance(record, Mapping):
        return None
    a, c, status = record.get("antecedent_name"), record.get("consequent_name"), record.get("status", "active")
    if not (isinstance(a, str) and isinstance(c, str)) or status != "active":
        return None
    a, c = a.strip(), c.strip()
    if not a or not c or a == c or not (a + c).isprintable() or "," in a + c or len(a) + len(c) > 400:
        return None
    return a, c


def fetch_implications(dataset: Path, *, site: str | None = None, base_url: str | None = None,
                       base_url_origin: str = "", credentials: Credentials | None = None,
                       rate: float | None = None, dry_run: bool = False,
                       allow_insecure: bool = False) -> Iterator[Event]:
    """Fetch and store the graph for dataset's tags; the Finished event carries an ImplicationsSummary."""
    summary: ImplicationsSummary | None = None
    for event in fetch_events(dataset, site=site, base_url=base_url, base_url_origin=base_url_origin,
                              credentials=credentials, rate=rate, dry_run=dry_run, allow_insecure=allow_insecure):
        if isinstance(event, ImplicationsSummary):
            summary = event
        else:
            yield event
    yield Finished(summary)


def fetch_events(dataset: Path, *, site: str | None, base_url: str | None, base_url_origin: str,
                 credentials: Credentials | None, rate: float | None, dry_run: bool,
                 allow_insecure: bool) -> Iterator[Event | ImplicationsSummary]:
    """The fetch's events, then its summary (what `scrape --implications` runs after a scrape)."""
    root = Path(dataset)
    if not root.is_dir():
        raise BooruUsageError(f"{root}: not a folder; pass the dataset folder")
    info = check_site(site)
    endpoint = resolve_endpoint(info, base_url, base_url_origin)
    assert endpoint is not None
    credentials = credentials or Credentials()
    has_keys = bool(credentials.api_key or credentials.login)
    warning = credential_check(endpoint, info, has_keys, allow_insecure)
    redact = Redactor([credentials.api_key], login=credentials.login)
    if warning is not None:
        yield Warned(warning)
        credentials = Credentials()
    from booru.scrape import auth_hint

    client = ApiClient(site=info.name, rate=rate or info.default_rate, auth_hint=auth_hint(info), redact=redact)
    fetcher = _Fetcher(info, endpoint.url, client, credentials)
    names = dataset_tags(root)
    summary = ImplicationsSummary(site=info.name, tags=len(names), store=str(store_path(root)), dry_run=dry_run)
    implications: set[tuple[str, str]] = set()
    aliases: set[tuple[str, str]] = set()
    try:
        yield Started("implications", None)
        asked: set[str] = set()
        pending = list(names)
        for _ in range(MAX_ROUNDS):
            pending = [n for n in dict.fromkeys(pending) if n not in asked]
            if not pending:
                break
            asked.update(pending)
            found: list[str] = []
            for item in fetcher.relations("implications", pending):
                if isinstance(item, Warned):
                    yield item
                    continue
                implications.add(item)
                found.append(item[1])
            yield Advanced(len(pending), "implications")
            pending = found
        for item in fetcher.relations("aliases", names):
            if isinstance(item, Warned):
                yield item
            else:
                aliases.add(item)
        yield Advanced(len(names), "aliases")
    except BooruError as exc:
        exc.args = (redact(str(exc)),)
        raise
    summary.implications, summary.aliases = len(implications), len(aliases)
    summary.requests = client.requests_made
    summary.fetched_at = now_iso()
    if not dry_run:
        data = encode_store(StoredGraph(info.name, summary.fetched_at, sorted(implications), sorted(aliases)))
        op = Journal(root).begin(f"implications fetch --site {info.name}")
        failed = True
        try:
            op.write_bytes(store_path(root), data)
            failed = False
        finally:
            op.close("failed" if failed else "done")
    yield summary
