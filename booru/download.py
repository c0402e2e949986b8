"""One file download: stream to NAME.part within limits, check the md5 the API gave, check it decodes.

Runs in worker threads (one requests session per thread); the caller renames the .part into
place. Credentials are never sent to file hosts: their URLs come from untrusted JSON, so every URL
and redirect is checked (booru/transfer.py: no loopback or link-local unless the base URL is
loopback), redirects are followed by hand (at most MAX_REDIRECTS), and every requests error ends
only this post. Retries follow the one policy of booru/retry.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests

from booru.errors import CloudflareError
from booru.filters import BAD_RECORD, TOO_LARGE, TOO_MANY_PIXELS
from booru.http import TRANSPORT_ERRORS, is_cloudflare_challenge, new_session
from booru.post import Post
from booru.retry import MAX_TRIES, wait_before_retry
from booru.transfer import (
    Aborted,
    BadAddress,
    Limits,
    TrackedAdapter,
    TransferError,
    check_address,
    rate_window,
    read_body,
)
from prep.image_io import ImageError, open_image
from prep.images import MAX_PIXELS

PART_SUFFIX = ".part"
# Only our own leftovers are ever deleted: `<site>_<id>.<ext>.part`.
PART_RE = re.compile(r"^[a-z0-9-]+_\d+\.(png|jpg|webp|bmp)\.part$")
FULL_DECODE_PIXELS = 40_000_000
MAX_REDIRECTS = 5
FILE_TIMEOUT = (15.0, 30.0)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_MAX_FILE_MB = 100
DEFAULT_MIN_RATE_KIB = 8
DEFAULT_FILE_TIMEOUT = 600.0

_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = new_session()
        session.headers["Accept-Encoding"] = "identity"  # images are compressed already
        for prefix in ("http://", "https://"):
            session.mount(prefix, TrackedAdapter())  # Ctrl-C shuts even a socket waiting for headers
    return session


class Cancelled(Exception):
    """The run is stopping; the download was abandoned and its .part removed."""


@dataclass(frozen=True)
class FileLimits:
    """What one download may cost; allow_local: the base URL is loopback, so files may be too."""

    max_bytes: int = DEFAULT_MAX_FILE_MB * 1_000_000
    min_rate: float = DEFAULT_MIN_RATE_KIB * 1024.0
    deadline: float = DEFAULT_FILE_TIMEOUT
    max_pixels: int = MAX_PIXELS
    allow_local: bool = False

    def body(self) -> Limits:
        return Limits(self.max_bytes, self.min_rate, self.deadline, window=rate_window())


@dataclass
class DownloadResult:
    post: Post
    part: Path
    ok: bool
    reason: str = ""  # "failed" or a skip reason (too_small, too_large, too_many_pixels, bad-record)
    message: str = ""
    width: int = 0
    height: int = 0


class _Refused(Exception):
    """This post's file will not be fetched: reason is the skip key, message the warning."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


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


def _open(url: str, limits: FileLimits) -> requests.Response:
    """GET url following redirects by hand, each hop checked; raises _Refused for a bad address."""
    seen = {url}
    for _ in range(MAX_REDIRECTS + 1):
        try:
            check_address(url, allow_local=limits.allow_local)
        except BadAddress as exc:
            raise _Refused(BAD_RECORD, f"file URL refused: {exc}") from None
        try:
            response = _session().get(url, stream=True, timeout=FILE_TIMEOUT, allow_redirects=False)
        except ValueError:  # requests parses the Location even when it follows none
            raise _Refused(BAD_RECORD, "the file host redirected to a malformed URL") from None
        if response.status_code not in REDIRECT_STATUSES:
            return response
        location = response.headers.get("Location", "")
        response.close()
        try:
            url = urljoin(url, location)
        except ValueError:
            raise _Refused(BAD_RECORD, "the file host redirected to a malformed URL") from None
        if not location or url in seen:
            raise _Refused(BAD_RECORD, "the file host redirects in a loop")
        seen.add(url)
    raise _Refused(BAD_RECORD, f"the file host redirected more than {MAX_REDIRECTS} times")


class _Sink:
    """Writes each piece to the .part and the md5 digest."""

    def __init__(self, fh, digest) -> None:  # noqa: ANN001
        self.fh, self.digest = fh, digest

    def __call__(self, piece: bytes) -> None:
        self.fh.write(piece)
        self.digest.update(piece)


def fetch(url: str, part: Path, cancel: threading.Event,
          limits: FileLimits | None = None) -> tuple[str | None, str]:
    """Stream url into part within limits, retrying transport errors and 5xx; returns (md5 hex or None,
    error). Raises _Refused for what is not worth retrying (bad address, too large) and Cancelled."""
    limits = limits or FileLimits()
    last = ""
    host = urlsplit(url).netloc
    for attempt in range(1, MAX_TRIES + 1):
        if cancel.is_set():
            raise Cancelled
        try:
            with _open(url, limits) as response:
                status = response.status_code
                if status != 200:
                    if is_cloudflare_challenge(response):
                        raise CloudflareError(
                            f"the file host {host} answered with a Cloudflare challenge; lorakit does not solve "
                            "challenges: wait a while and run again")
                    last = f"HTTP {status}"
                    if status in (429, 503) or 500 <= status < 600:
                        if attempt < MAX_TRIES and cancel.wait(wait_before_retry(attempt, response)):
                            raise Cancelled
                        continue
                    return None, last
                digest = hashlib.md5()
                with open(part, "wb") as fh:
                    read_body(response, limits.body(), cancel=cancel, sink=_Sink(fh, digest), what="the file")
                return digest.hexdigest(), ""
        except TransferError as exc:
            _unlink(part)
            if exc.reason == "too_large":
                raise _Refused(TOO_LARGE, exc.message) from None
            return None, exc.message
        except (Aborted, Cancelled):
            _unlink(part)
            raise Cancelled from None
        except TRANSPORT_ERRORS:
            last = "the connection dropped"
            _unlink(part)
            if cancel.is_set():
                raise Cancelled from None
            if attempt < MAX_TRIES and cancel.wait(wait_before_retry(attempt)):
                raise Cancelled from None
        except requests.RequestException as exc:  # InvalidURL, InvalidSchema, ...: this post only
            _unlink(part)
            raise _Refused(BAD_RECORD, f"the file URL cannot be fetched ({type(exc).__name__})") from None
    return None, f"{last} after {MAX_TRIES} tries"


def download_post(post: Post, part: Path, *, min_side: int | None, cancel: threading.Event,
                  limits: FileLimits | None = None) -> DownloadResult:
    """Download post's file to part; ok only when the md5 matches and the image decodes."""
    try:
        return _download_post(post, part, min_side=min_side, cancel=cancel, limits=limits or FileLimits())
    except CloudflareError:
        cancel.set()  # queued downloads must not walk into the challenge too
        raise
    except _Refused as exc:
        _unlink(part)
        return DownloadResult(post, part, False, exc.reason, f"post {post.id}: {exc.message}")
    except (requests.RequestException, ValueError) as exc:  # whatever else a hostile host does: this post only
        _unlink(part)
        return DownloadResult(post, part, False, BAD_RECORD,
                              f"post {post.id}: the file cannot be fetched ({type(exc).__name__})")


def _pixels_message(post: Post, width: int, height: int, limits: FileLimits) -> str:
    return (f"{width}x{height} is {width * height / 1e6:,.1f} megapixels, over the "
            f"{limits.max_pixels / 1e6:g}-megapixel limit (--max-pixels); skipped")


def _download_post(post: Post, part: Path, *, min_side: int | None, cancel: threading.Event,
                   limits: FileLimits) -> DownloadResult:
    assert post.file_url and post.md5
    if post.width and post.height and post.width * post.height > limits.max_pixels:
        return DownloadResult(post, part, False, TOO_MANY_PIXELS,
                              f"post {post.id}: {_pixels_message(post, post.width, post.height, limits)}")
    for delivery in range(2):  # a wrong md5 is retried once
        digest, error = fetch(post.file_url, part, cancel, limits)
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
        with open_image(part) as image:
            width, height = image.size
            if width * height > limits.max_pixels:
                raise _Refused(TOO_MANY_PIXELS, _pixels_message(post, width, height, limits))
            if width * height <= FULL_DECODE_PIXELS:
                image.load()
            else:
                image.verify()  # structure and checksums, without holding every pixel in memory
    except _Refused:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure means the file is unusable
        _unlink(part)
        reason = exc.reason if isinstance(exc, ImageError) else type(exc).__name__
        return DownloadResult(post, part, False, "failed", f"the file does not decode as an image ({reason}); dropped")
    if min_side and min(width, height) < min_side:
        _unlink(part)
        return DownloadResult(post, part, False, "too_small", "", width, height)
    return DownloadResult(post, part, True, "", "", width, height)
