"""One file download: stream to NAME.part, check the md5 the API gave, check it decodes.

Runs in worker threads (one requests session per thread); the caller renames the .part into
place. Credentials are never sent to file hosts: their URLs come from untrusted JSON.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import requests
from PIL import Image

from booru.errors import CloudflareError
from booru.http import (
    MAX_TRIES,
    TIMEOUT,
    TRANSPORT_ERRORS,
    backoff_delay,
    is_cloudflare_challenge,
    new_session,
    retry_after_seconds,
)
from booru.post import Post

PART_SUFFIX = ".part"
# Only our own leftovers are ever deleted: `<site>_<id>.<ext>.part`.
PART_RE = re.compile(r"^[a-z0-9-]+_\d+\.(png|jpg|webp|bmp)\.part$")
CHUNK = 256 * 1024
FULL_DECODE_PIXELS = 40_000_000

_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = new_session()
    return session


class Cancelled(Exception):
    """The run is stopping; the download was abandoned and its .part removed."""


@dataclass
class DownloadResult:
    post: Post
    part: Path
    ok: bool
    reason: str = ""  # "failed" or a skip reason (too_small)
    message: str = ""
    width: int = 0
    height: int = 0


def remove_stale_parts(folder: Path) -> int:
    """Delete `.part` leftovers of an interrupted run in folder; returns how many."""
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if PART_RE.match(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def fetch(url: str, part: Path, cancel: threading.Event) -> tuple[str | None, str]:
    """Stream url into part, retrying transport errors and 5xx; returns (md5 hex or None, error)."""
    last = ""
    for attempt in range(1, MAX_TRIES + 1):
        if cancel.is_set():
            raise Cancelled
        try:
            with _session().get(url, stream=True, timeout=TIMEOUT) as response:
                status = response.status_code
                if status != 200:
                    if is_cloudflare_challenge(response):
                        raise CloudflareError(
                            f"the file host {requests.utils.urlparse(url).netloc} answered with a Cloudflare "
                            "challenge; lorakit does not solve challenges: wait a while and run again")
                    last = f"HTTP {status}"
                    if status in (429, 503) or 500 <= status < 600:
                        wait = retry_after_seconds(response)
                        if attempt < MAX_TRIES and cancel.wait(wait if wait is not None else backoff_delay(attempt)):
                            raise Cancelled
                        continue
                    return None, last
                digest = hashlib.md5()
                with open(part, "wb") as fh:
                    for chunk in response.iter_content(CHUNK):
                        if cancel.is_set():
                            raise Cancelled
                        fh.write(chunk)
                        digest.update(chunk)
                return digest.hexdigest(), ""
        except TRANSPORT_ERRORS:
            last = "the connection dropped"
            _unlink(part)
            if attempt < MAX_TRIES and cancel.wait(backoff_delay(attempt)):
                raise Cancelled from None
        except Cancelled:
            _unlink(part)
            raise
    return None, f"{last} after {MAX_TRIES} tries"


def download_post(post: Post, part: Path, *, min_side: int | None, cancel: threading.Event) -> DownloadResult:
    """Download post's file to part; ok only when the md5 matches and the image decodes."""
    try:
        return _download_post(post, part, min_side=min_side, cancel=cancel)
    except CloudflareError:
        cancel.set()  # queued downloads must not walk into the challenge too
        raise


def _download_post(post: Post, part: Path, *, min_side: int | None, cancel: threading.Event) -> DownloadResult:
    assert post.file_url and post.md5
    for delivery in range(2):  # a wrong md5 is retried once
        digest, error = fetch(post.file_url, part, cancel)
        if digest is None:
            _unlink(part)
            return DownloadResult(post, part, False, "failed", f"download failed: {error}")
        if digest == post.md5:
            break
        _unlink(part)
        if delivery == 1:
            return DownloadResult(post, part, False, "failed",
                                  f"md5 mismatch twice (site says {post.md5}, got {digest}); dropped")
    try:
        with Image.open(part) as image:
            width, height = image.size
            if width * height <= FULL_DECODE_PIXELS:
                image.load()
            else:
                image.verify()  # structure and checksums, without holding every pixel in memory
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is unusable
        _unlink(part)
        return DownloadResult(post, part, False, "failed",
                              f"the file does not decode as an image ({type(exc).__name__}); dropped")
    if min_side and min(width, height) < min_side:
        _unlink(part)
        return DownloadResult(post, part, False, "too_small", "", width, height)
    return DownloadResult(post, part, True, "", "", width, height)
