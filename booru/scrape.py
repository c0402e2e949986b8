"""The scrape stage: search a booru, filter, download in parallel, caption, archive.

`scrape()` and `refresh_captions()` are generators of prep.events; the Finished event carries
a ScrapeSummary.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from booru.archive import Archive
from booru.captions import caption_tags, parse_categories
from booru.config import ScrapeConfig
from booru.download import PART_SUFFIX, Cancelled, DownloadResult, download_post, remove_stale_parts
from booru.errors import BooruUsageError
from booru.filters import ALREADY_PRESENT, INVALID, PostFilter
from booru.http import ApiClient, Redactor
from booru.post import Post, Rejected
from booru.sites import SITES, SiteInfo, make_family
from booru.sites.base import Credentials
from prep.events import Advanced, Event, Finished, Started, Warned
from prep.journal import Journal, Operation

MIN_PAGE = 20


@dataclass
class ScrapeSummary:
    downloaded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    files: list[str] = field(default_factory=list)
    folder: str = ""
    captions: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"downloaded": self.downloaded, "skipped": dict(sorted(self.skipped.items())),
                "failed": self.failed, "files": list(self.files)}


def credentials_from_env(site: SiteInfo, login: str | None = None, api_key: str | None = None,
                         user_id: str | None = None) -> Credentials:
    """Flags first, then LORAKIT_<SITE>_LOGIN / _API_KEY / _USER_ID."""
    env = os.environ
    return Credentials(login or env.get(f"{site.env_prefix}_LOGIN") or None,
                       api_key or env.get(f"{site.env_prefix}_API_KEY") or None,
                       user_id or env.get(f"{site.env_prefix}_USER_ID") or None)


def auth_hint(site: SiteInfo) -> str:
    names = site.credential_vars()
    flags = "--api-key and --user-id" if site.family == "gelbooru" else "--login and --api-key"
    return f"set {' and '.join(names)} (or pass {flags})"


def target_folder(config: ScrapeConfig) -> Path:
    assert config.out is not None
    if config.concept is None:
        return config.out
    name = config.concept.strip()
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise BooruUsageError(f"--concept: {config.concept!r} cannot be a folder name; use a plain name")
    if config.repeats < 1:
        raise BooruUsageError("--repeats must be at least 1")
    return config.out / f"{config.repeats}_{name}"


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
    if config.base_url is not None and urlsplit(config.base_url).scheme not in ("http", "https"):
        raise BooruUsageError(f"--base-url: {config.base_url!r} is not an http(s) URL")
    if site.root is None and config.base_url is None and not config.refresh_captions:
        raise BooruUsageError(f"--site {site.name} needs --base-url (the clone's root, e.g. "
                              "https://safebooru.org)")
    return site


def _command_line(config: ScrapeConfig) -> str:
    """What the journal shows; never a credential."""
    return f"scrape --site {config.site} --tags {config.tags!r} --limit {config.limit}"


class _Writer:
    """Journaled writes of the run, opened on the first one so re-runs leave no empty entries."""

    def __init__(self, root: Path, command: str) -> None:
        self.root, self.command = root, command
        self.op: Operation | None = None

    def get(self) -> Operation:
        if self.op is None:
            self.op = Journal(self.root).begin(self.command)
        return self.op

    def close(self, failed: bool) -> None:
        if self.op is not None:
            self.op.close("failed" if failed else "done")


def scrape(config: ScrapeConfig, credentials: Credentials | None = None) -> Iterator[Event]:
    """Search, filter and download until `limit` posts are saved or the search runs out."""
    if config.refresh_captions:
        yield from refresh_captions(config)
        return
    site = _check(config)
    categories = parse_categories(config.categories)
    post_filter = PostFilter.build(config.rating, config.min_score, config.min_side, config.blacklist)
    creds = credentials or Credentials()
    assert config.out is not None and config.limit is not None and config.tags is not None
    folder = target_folder(config)
    folder.mkdir(parents=True, exist_ok=True)
    root = config.out
    _remove_parts(root)
    archive = Archive(root)
    client = ApiClient(site=site.name, rate=config.rate or site.default_rate, auth_hint=auth_hint(site),
                       redact=Redactor([creds.api_key]))
    family = make_family(site, config.base_url or site.root or "", client, creds)
    page_size = min(family.page_size_max, max(config.limit, MIN_PAGE))
    summary = ScrapeSummary(folder=str(folder))
    writer = _Writer(root, _command_line(config))
    cancel = threading.Event()
    pending: dict[Future[DownloadResult], Post] = {}
    position: dict[str, int] = {}  # file -> place in the site's order, so files are listed that way
    seen: dict[int, int] = {}
    saved = 0
    failed_run = True
    yield Started("scrape", config.limit)
    executor = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="lorakit-download")
    try:
        search = family.search(config.tags, page_size)
        exhausted = False
        while saved < config.limit:
            while not exhausted and saved + len(pending) < config.limit and len(pending) < 4 * config.concurrency:
                item = next(search, None)
                if item is None:
                    exhausted = True
                    break
                if isinstance(item, Warned):
                    yield item
                    continue
                if isinstance(item, Rejected):
                    summary.skipped[item.reason] += 1
                    if item.reason == INVALID and item.message:
                        yield Warned(item.message)
                    continue
                if item.id in seen:
                    continue
                seen[item.id] = len(seen)
                reason = post_filter.reason(item)
                if reason is not None:
                    summary.skipped[reason] += 1
                    continue
                if _already_present(item, folder, archive, writer, categories, config.tags):
                    summary.skipped[ALREADY_PRESENT] += 1
                    saved += 1
                    yield Advanced(1, item.file_name)
                    continue
                part = folder / (item.file_name + PART_SUFFIX)
                future = executor.submit(download_post, item, part, min_side=config.min_side, cancel=cancel)
                pending[future] = item
            if not pending:
                break
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for future in done:
                pending.pop(future)
                try:
                    result = future.result()  # a CloudflareError ends the run here
                except Cancelled:
                    continue
                if result.ok and saved < config.limit:
                    path = _commit(result, folder, writer, categories)
                    archive.record(result.post, _relative(path, root), config.tags)
                    summary.downloaded += 1
                    summary.files.append(str(path))
                    position[str(path)] = seen[result.post.id]
                    saved += 1
                    yield Advanced(1, path.name)
                elif result.ok:
                    result.part.unlink(missing_ok=True)
                elif result.reason == "failed":
                    summary.failed += 1
                    yield Warned(result.message, path=result.post.file_name)
                else:
                    summary.skipped[result.reason] += 1
        failed_run = False
        summary.files.sort(key=lambda f: position.get(f, 0))
    finally:
        cancel.set()
        executor.shutdown(wait=True, cancel_futures=True)
        _remove_parts(root)
        writer.close(failed_run)
        archive.close()
    yield Finished(summary)


def _remove_parts(root: Path) -> None:
    """Leftovers of a killed run, in the dataset root and its concept folders."""
    remove_stale_parts(root)
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            remove_stale_parts(Path(entry.path))


def _relative(path: Path, root: Path) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _commit(result: DownloadResult, folder: Path, writer: _Writer, categories: tuple[str, ...]) -> Path:
    post = result.post
    final = folder / post.file_name
    op = writer.get()
    if final.exists():
        op.delete(final)  # an older file under our name that the archive did not know
    op.move(result.part, final)
    op.write_caption(folder / f"{post.stem}.txt", caption_tags(post.tags, categories))
    return final


def _already_present(post: Post, folder: Path, archive: Archive, writer: _Writer,
                     categories: tuple[str, ...], query: str) -> bool:
    """True when the post's file is on disk already (archived, or complete with the right md5)."""
    final = folder / post.file_name
    archived = archive.get(post.site, post.id)
    if archived is not None and (archive.root / archived.file).is_file():
        present = True
    elif final.is_file() and _md5_of(final) == post.md5:
        archive.record(post, _relative(final, archive.root), query)
        present = True
    else:
        return False
    caption = final.with_suffix(".txt") if archived is None else (archive.root / archived.file).with_suffix(".txt")
    if present and not caption.exists():
        writer.get().write_caption(caption, caption_tags(post.tags, categories))
    return present


def _md5_of(path: Path) -> str:
    import hashlib

    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def refresh_captions(config: ScrapeConfig) -> Iterator[Event]:
    """Rewrite the captions of archived posts with config.categories, journaled so undo restores them."""
    if config.out is None:
        raise BooruUsageError("--out DATASET is required")
    if config.site is not None and config.site not in SITES:
        raise BooruUsageError(f"--site: {config.site!r} is not a known site")
    categories = parse_categories(config.categories)
    root = config.out
    if not root.is_dir():
        raise BooruUsageError(f"{root}: not a folder; pass the dataset you scraped into with --out")
    archive = Archive(root, create=False)
    folder = target_folder(config) if config.concept is not None else None
    summary = ScrapeSummary(folder=str(folder or root))
    writer = _Writer(root, f"scrape --refresh-captions --categories {','.join(categories)}")
    try:
        rows = archive.rows(config.site)
        yield Started("captions", len(rows))
        resolved_root = root.resolve()
        for row in rows:
            image = (root / row.file)
            try:
                inside = resolved_root in image.resolve().parents
            except OSError:
                inside = False
            if not inside or not image.is_file():
                summary.skipped["missing"] += 1
                yield Advanced(1, row.file)
                continue
            if folder is not None and image.parent.resolve() != folder.resolve():
                yield Advanced(1, row.file)
                continue
            caption = image.with_suffix(".txt")
            if writer.get().write_caption(caption, caption_tags(row.tags, categories)):
                summary.captions += 1
                summary.files.append(str(caption))
            yield Advanced(1, row.file)
    finally:
        writer.close(False)
        archive.close()
    yield Finished(summary)
