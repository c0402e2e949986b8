"""HTTP for the booru APIs: a descriptive User-Agent, a request-rate limit, retries and backoff.

API requests go through `ApiClient.get`, which spaces them by `--rate`, honours Retry-After on
429/503, backs off exponentially on other 5xx and dropped connections (at most MAX_TRIES tries),
and ends the run on a Cloudflare challenge instead of retrying into it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

import prep
from booru.errors import ApiError, AuthError, CloudflareError, UnreachableError

MAX_TRIES = 5
RETRY_AFTER_CAP = 120.0
TIMEOUT = (15.0, 60.0)
# Tests (and impatient users) shrink the backoff base; the documented behaviour is 1, 2, 4, 8 s.
BACKOFF_ENV = "LORAKIT_BOORU_BACKOFF"

TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError)


def user_agent() -> str:
    return f"lorakit/{prep.__version__} (+{prep.PROJECT_URL})"


def backoff_base() -> float:
    try:
        return max(0.0, float(os.environ.get(BACKOFF_ENV, "1")))
    except ValueError:
        return 1.0


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before try attempt+1 (attempt counts from 1)."""
    return min(60.0, backoff_base() * (2 ** (attempt - 1)))


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare on boorus; fall back to the backoff
    return min(max(0.0, seconds), RETRY_AFTER_CAP)


def is_cloudflare_challenge(response: requests.Response, body: bytes | None = None) -> bool:
    """403/503 carrying `cf-mitigated: challenge`, or Cloudflare's challenge script in the body."""
    if response.status_code not in (403, 503, 429):
        return False
    if response.headers.get("cf-mitigated", "").lower() == "challenge":
        return True
    if "cloudflare" in response.headers.get("Server", "").lower():
        text = body if body is not None else response.content[:65536]
        return b"_cf_chl_opt" in text
    return False


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = user_agent()
    session.headers["Accept-Encoding"] = "gzip, deflate"
    return session


class RateLimiter:
    """At most `rate` calls per second, spaced evenly; safe to share between threads."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


class Redactor:
    """Replaces every secret value in a text; used on anything that may reach a message."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


def site_message(response: requests.Response) -> str:
    """The error text a booru put in its JSON body (message/reason), cut short; else the status."""
    try:
        data = response.json()
    except ValueError:
        data = None
    text = ""
    if isinstance(data, dict):
        for key in ("message", "reason", "error"):
            if isinstance(data.get(key), str) and data[key].strip():
                text = data[key].strip()
                break
    if not text:
        text = response.reason or ""
    text = " ".join(text.split())
    return text[:200]


class ApiClient:
    """Rate-limited, retrying GETs against one site's API."""

    def __init__(self, *, site: str, rate: float, auth_hint: str, redact: Redactor,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.site = site
        self.limiter = RateLimiter(rate)
        self.session = new_session()
        self.auth_hint = auth_hint
        self.redact = redact
        self.sleep = sleep
        self.requests_made = 0

    def get(self, url: str, params: Mapping[str, Any] | None = None, *, auth: tuple[str, str] | None = None,
            passthrough: Iterable[int] = ()) -> requests.Response:
        """GET an API URL; returns 2xx responses and those in passthrough, raises BooruError otherwise."""
        host = urlsplit(url).netloc or url
        allowed = set(passthrough)
        for attempt in range(1, MAX_TRIES + 1):
            self.limiter.wait()
            self.requests_made += 1
            try:
                response = self.session.get(url, params=params, auth=auth, timeout=TIMEOUT)
                body = response.content  # read now: a dropped body is a transport error too
            except TRANSPORT_ERRORS as exc:
                if attempt == MAX_TRIES:
                    raise UnreachableError(
                        f"cannot reach {self.site} at {host} ({_transport_reason(exc)}) after {MAX_TRIES} "
                        "tries; check the address and your connection") from None
                self.sleep(backoff_delay(attempt))
                continue
            status = response.status_code
            if is_cloudflare_challenge(response, body):
                raise CloudflareError(
                    f"{self.site} ({host}) answered with a Cloudflare challenge (HTTP {status}); lorakit "
                    "does not solve challenges: wait a while, lower --rate, or use another --base-url")
            if 200 <= status < 300 or status in allowed:
                return response
            if status in (401, 403):
                message = self.redact(site_message(response))
                raise AuthError(f"{self.site} refused the request (HTTP {status}: {message}); "
                                f"{self.auth_hint}")
            if status in (429, 503) or 500 <= status < 600:
                if attempt == MAX_TRIES:
                    message = self.redact(site_message(response))
                    raise ApiError(f"{self.site} kept failing (HTTP {status}: {message}) after {MAX_TRIES} "
                                   "tries; try again later or lower --rate")
                wait = retry_after_seconds(response) if status in (429, 503) else None
                self.sleep(wait if wait is not None else backoff_delay(attempt))
                continue
            message = self.redact(site_message(response))
            raise ApiError(f"{self.site} rejected the search (HTTP {status}: {message})")
        raise AssertionError("unreachable")  # pragma: no cover


def _transport_reason(exc: BaseException) -> str:
    """A short cause without the URL (which may carry an api_key)."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection dropped mid-answer"
    text = str(exc)
    for marker, reason in (("Name or service not known", "unknown host"), ("nodename nor servname", "unknown host"),
                           ("Connection refused", "connection refused"), ("RemoteDisconnected", "connection dropped"),
                           ("Connection reset", "connection reset"), ("timed out", "timed out")):
        if marker in text:
            return reason
    return "connection failed"
