"""The scrape stage: search a booru, filter, download in parallel, caption, archive.

`scrape()` and `refresh_captions()` are generators of prep.events; the Finished event carries
a ScrapeSummary.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

from booru.archive import Archive
from booru.captions import parse_categories
from booru.config import ScrapeConfig
from booru.download import PART_SUFFIX, Cancelled, DownloadResult, FileLimits, download_post
from booru.endpoint import Endpoint, credential_check, resolve_endpoint
from booru.errors import BooruError, BooruUsageError
from booru.filters import ALREADY_PRESENT, BAD_RECORD, PostFilter
from booru.http import ApiClient
from booru.post import Post, Rejected
from booru.redact import Redactor
from booru.refresh import refresh_captions
from booru.saving import Writer, already_present, commit_download, relative, remove_parts, target_folder
from booru.sites import SITES, SiteInfo, make_family
from booru.sites.base import Credentials, Family
from booru.summary import ScrapeSummary
from booru.transfer import abort_all
from prep.events import Advanced, Event, Finished, Started, Warned

__all__ = ["ScrapeSummary", "auth_hint", "refresh_captions", "scrape"]

MIN_PAGE = 20
QUEUE_PER_WORKER = 4  # downloads queued per worker, so bookkeeping never leaves a worker idle


def auth_hint(site: SiteInfo) -> str:
    names = site.credential_vars()
    flags = "--api-key and --user-id" if site.family == "gelbooru" else "--login and --api-key"
    return f"set {' and '.join(names)} (or pass {flags})"


def _check(config: ScrapeConfig) -> SiteInfo:
    if config.refresh_captions and config.out is None:
        raise BooruUsageError("--out DATASET is required")
    if config.site is None:
        raise BooruUsageError("--site is required (" + ", ".join(SITES) + ")")
    if config.out is None:
        raise BooruUsageError("--out DATASET is required")
    site = SITES[config.site]
    if config.tags is None and not config.refresh_captions:
        raise BooruUsageError("--tags is required: the search query, quoted")
    if config.limit is None and not config.refresh_captions:
        raise BooruUsageError("--limit N is required: how many posts to save")
    if config.limit is not None and config.limit < 1:
        raise BooruUsageError("--limit must be at least 1")
    if config.concurrency < 1:
        raise BooruUsageError("--concurrency must be at least 1")
    if config.rate is not None and not config.rate > 0:
        raise BooruUsageError("--rate must be above 0 (requests per second)")
    for name, value in (("--max-file-mb", config.max_file_mb), ("--file-timeout", config.file_timeout),
                        ("--max-pixels", config.max_pixels)):
        if not value > 0:
            raise BooruUsageError(f"{name} must be above 0")
    if config.min_rate < 0:
        raise BooruUsageError("--min-rate must be 0 or more (KiB/s)")
    if config.base_url is not None and urlsplit(config.base_url).scheme not in ("http", "https"):
        raise BooruUsageError(f"--base-url: {config.base_url!r} is not an http(s) URL")
    if site.root is None and config.base_url is None and not config.refresh_captions:
        raise BooruUsageError(f"--site {site.name} needs --base-url (the clone's root, e.g. "
                              "https://safebooru.org)")
    return site


def _command_line(config: ScrapeConfig) -> str:
    """What the journal shows; never a credential."""
    return f"scrape --site {config.site} --tags {config.tags!r} --limit {config.limit}"


def scrape(config: ScrapeConfig, credentials: Credentials | None = None, *, base_url_origin: str = "",
           allow_insecure: bool = False) -> Iterator[Event]:
    """Search, filter and download until `limit` posts are saved or the search runs out.

    base_url_origin: where config.base_url came from: booru.endpoint.COMMAND_LINE, or the workspace
    file's name (credentials are then not sent to it). allow_insecure: credentials may go over http.
    """
    if config.refresh_captions:
        yield from refresh_captions(config)
        return
    site = _check(config)
    credentials = credentials or Credentials()
    endpoint = resolve_endpoint(site, config.base_url, base_url_origin)
    assert endpoint is not None  # _check asked for --base-url
    has_keys = bool(credentials.api_key or credentials.login or credentials.user_id)
    warning = credential_check(endpoint, site, has_keys, allow_insecure)
    redact = Redactor([credentials.api_key], login=credentials.login)  # user ids are not secret (and numeric)
    keys = credentials
    if warning is not None:
        credentials = Credentials()
    try:
        run = _Run(config, site, credentials, endpoint, redact)
        yield Started("scrape", config.limit)
        if warning is not None:
            yield Warned(warning)
        for event in run.events():
            yield Warned(redact(event.message), event.path) if isinstance(event, Warned) else event
    except BooruError as exc:
        exc.args = (redact(str(exc)),)
        raise
    if config.implications:
        yield from _implications(config, run.summary, keys, base_url_origin, allow_insecure)
    yield Finished(run.summary)


def _implications(config: ScrapeConfig, summary: ScrapeSummary, credentials: Credentials, origin: str,
                  allow_insecure: bool) -> Iterator[Event]:
    """`scrape --implications`: the graph for the dataset, fetched after the scrape."""
    from booru.implications import FAMILIES, ImplicationsSummary, fetch_events

    site = SITES[config.site or ""]
    if site.family not in FAMILIES:
        yield Warned(f"--implications: {site.name} publishes no implication graph (danbooru and e621 do); skipped")
        return
    assert config.out is not None
    for event in fetch_events(config.out, site=site.name, base_url=config.base_url, base_url_origin=origin,
                              credentials=credentials, rate=config.rate, dry_run=False,
                              allow_insecure=allow_insecure):
        if isinstance(event, ImplicationsSummary):
            summary.implications = event.to_dict()
        elif isinstance(event, Warned):
            yield event


class _Run:
    """One scrape: the search feeds a bounded queue of downloads; results are saved in this thread."""

    def __init__(self, config: ScrapeConfig, site: SiteInfo, credentials: Credentials, endpoint: Endpoint,
                 redact: Redactor) -> None:
        assert config.out is not None and config.limit is not None and config.tags is not None
        self.config = config
        self.limit = config.limit
        self.query = config.tags
        self.categories = parse_categories(config.categories)
        self.filter = PostFilter.build(config.rating, config.min_score, config.min_side, config.blacklist)
        self.root = config.out
        self.folder = target_folder(config)
        client = ApiClient(site=site.name, rate=config.rate or site.default_rate, auth_hint=auth_hint(site),
                           redact=redact)
        self.family: Family = make_family(site, endpoint.url, client, credentials)
        self.limits = FileLimits(max_bytes=int(config.max_file_mb * 1_000_000), min_rate=config.min_rate * 1024,
                                 deadline=config.file_timeout, max_pixels=config.max_pixels,
                                 allow_local=endpoint.loopback)
        self.summary = ScrapeSummary(folder=str(self.folder))
        self.cancel = threading.Event()
        self.pending: dict[Future[DownloadResult], Post] = {}
        self.seen: dict[int, int] = {}  # post id -> place in the site's order
        self.position: dict[str, int] = {}  # saved file -> place in the site's order
        self.saved = 0

    def events(self) -> Iterator[Event]:
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_parts(self.root)
        self.archive = Archive(self.root)
        self.writer = Writer(self.root, f"scrape --site {self.config.site} --tags {self.query!r} "
                                        f"--limit {self.limit}")  # never a credential
        executor = ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="lorakit-download")
        failed = True
        try:
            search = self.family.search(self.query, min(self.family.page_size_max, max(self.limit, MIN_PAGE)))
            exhausted = False
            while self.saved < self.limit:
                room = QUEUE_PER_WORKER * self.config.concurrency
                while not exhausted and self.saved + len(self.pending) < self.limit and len(self.pending) < room:
                    item = next(search, None)
                    if item is None:
                        exhausted = True
                    else:
                        yield from self.take(item, executor)
                if not self.pending:
                    break
                done, _ = wait(list(self.pending), return_when=FIRST_COMPLETED)
                for future in done:
                    self.pending.pop(future)
                    try:
                        result = future.result()  # a CloudflareError ends the run here
                    except Cancelled:
                        continue
                    yield from self.settle(result)
            failed = False
            self.summary.files.sort(key=lambda f: self.position.get(f, 0))
        finally:
            self.cancel.set()
            abort_all()  # blocked reads return now: Ctrl-C stops the run within a second
            executor.shutdown(wait=True, cancel_futures=True)
            remove_parts(self.root)
            self.writer.close(failed)
            self.archive.close()

    def take(self, item: Post | Rejected | Warned, executor: ThreadPoolExecutor) -> Iterator[Event]:
        """Count a search result as skipped, saved already, or queue its download."""
        if isinstance(item, Warned):
            yield item
            return
        if isinstance(item, Rejected):
            self.summary.skipped[item.reason] += 1
            if item.reason == BAD_RECORD and item.message:
                yield Warned(item.message)
            return
        if item.id in self.seen:
            return
        self.seen[item.id] = len(self.seen)
        reason = self.filter.reason(item, self.family.local_terms)
        if reason is not None:
            self.summary.skipped[reason] += 1
            return
        if already_present(item, self.folder, self.archive, self.writer, self.categories, self.query):
            self.summary.skipped[ALREADY_PRESENT] += 1
            self.saved += 1
            yield Advanced(1, item.file_name)
            return
        part = self.folder / (item.file_name + PART_SUFFIX)
        future = executor.submit(download_post, item, part, min_side=self.config.min_side, cancel=self.cancel,
                                 limits=self.limits)
        self.pending[future] = item

    def settle(self, result: DownloadResult) -> Iterator[Event]:
        """Save a finished download (rename, caption, archive) or count why it was dropped."""
        if result.ok and self.saved < self.limit:
            path = commit_download(result, self.folder, self.writer, self.categories)
            self.archive.record(result.post, relative(path, self.root), self.query)
            self.summary.downloaded += 1
            self.summary.files.append(str(path))
            self.position[str(path)] = self.seen[result.post.id]
            self.saved += 1
            yield Advanced(1, path.name)
        elif result.ok:
            result.part.unlink(missing_ok=True)
        elif result.reason == "failed":
            self.summary.failed += 1
            yield Warned(result.message, path=result.post.file_name)
        else:
            self.summary.skipped[result.reason] += 1
            if result.message:
                yield Warned(result.message)
