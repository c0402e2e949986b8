"""HTTP for the booru APIs: a descriptive User-Agent, a request-rate limit, the one retry policy.

API requests go through `ApiClient.get`, which spaces them by `--rate`, reads the body within limits
(decoded size, minimum rate), and retries under booru/retry.py's single budget: 429/503 with
Retry-After, other 5xx and dropped connections with backoff, and answers the caller's `check` asks
to retry (a 200 that is not JSON, Moebooru's 500), MAX_TRIES tries in all. A Cloudflare challenge
ends the run instead of being retried into.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests

import prep
from booru.errors import ApiError, AuthError, CloudflareError, UnreachableError
from booru.redact import Redactor, redact_patterns
from booru.retry import MAX_TRIES, RetryableAnswer, wait_before_retry
from booru.transfer import Limits, TransferError, rate_window, read_body

__all__ = ["MAX_TRIES", "TIMEOUT", "TRANSPORT_ERRORS", "ApiClient", "RateLimiter", "Redactor", "new_session",
           "site_message", "user_agent"]

TIMEOUT = (15.0, 60.0)
MAX_API_BODY = 64 * 1024 * 1024  # decoded bytes of one API answer (a gzip bomb stops here)
API_MIN_RATE = 8 * 1024  # bytes/s after the grace window: a slower answer is a failed try

TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError)
T = TypeVar("T")


def user_agent() -> str:
    return f"lorakit/{prep.__version__} (+{prep.PROJECT_URL})"


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
    text = " ".join(redact_patterns(text).split())
    return "".join(c if c.isprintable() else "?" for c in text[:200])


class ApiClient:
    """Rate-limited, retrying GETs against one site's API."""

    def __init__(self, *, site: str, rate: float, auth_hint: str, redact: Redactor,
                 sleep: Callable[[float], None] = time.sleep, min_rate: float = API_MIN_RATE) -> None:
        self.site = site
        self.limiter = RateLimiter(rate)
        self.session = new_session()
        self.auth_hint = auth_hint
        self.redact = redact
        self.sleep = sleep
        self.requests_made = 0
        self.limits = Limits(MAX_API_BODY, min_rate, window=rate_window())

    def message(self, response: requests.Response) -> str:
        """The site's error text, redacted."""
        return self.redact(site_message(response))

    def get(self, url: str, params: Mapping[str, Any] | None = None, *, auth: tuple[str, str] | None = None,
            passthrough: Iterable[int] = ()) -> requests.Response:
        """GET an API URL; returns 2xx responses and those in passthrough, raises BooruError otherwise."""
        return self.request(url, params, auth=auth, passthrough=passthrough)[0]

    def request(self, url: str, params: Mapping[str, Any] | None = None, *, auth: tuple[str, str] | None = None,
                passthrough: Iterable[int] = (),
                check: Callable[[requests.Response], T] | None = None) -> tuple[requests.Response, T | None]:
        """GET with the one retry budget. check(response) turns an accepted response into a value, or
        raises RetryableAnswer to spend another try on it."""
        host = urlsplit(url).netloc or url
        allowed = set(passthrough)
        last = ""
        for attempt in range(1, MAX_TRIES + 1):
            self.limiter.wait()
            self.requests_made += 1
            final = attempt == MAX_TRIES
            try:
                with self.session.get(url, params=params, auth=auth, timeout=TIMEOUT, stream=True) as response:
                    body = read_body(response, self.limits, what=f"{self.site}'s answer")
                    response._content, response._content_consumed = body, True  # requests' own cache
            except (TransferError, *TRANSPORT_ERRORS) as exc:
                reason = exc.message if isinstance(exc, TransferError) else _transport_reason(exc)
                if final:
                    raise UnreachableError(
                        f"cannot reach {self.site} at {host} ({reason}) after {MAX_TRIES} tries; check the "
                        "address and your connection") from None
                self.sleep(wait_before_retry(attempt))
                continue
            except requests.RequestException as exc:
                raise ApiError(f"{self.site}: the request to {host} failed "
                               f"({self.redact(type(exc).__name__)}); check --base-url") from None
            status = response.status_code
            if is_cloudflare_challenge(response, response.content):
                raise CloudflareError(
                    f"{self.site} ({host}) answered with a Cloudflare challenge (HTTP {status}); lorakit "
                    "does not solve challenges: wait a while, lower --rate, or use another --base-url")
            if 200 <= status < 300 or status in allowed:
                if check is None:
                    return response, None
                try:
                    return response, check(response)
                except RetryableAnswer as exc:
                    last = self.redact(exc.message)
                    if final:
                        raise ApiError(f"{self.site} {last} {MAX_TRIES} times; check --base-url, or try "
                                       "again later") from None
                    self.sleep(exc.wait if exc.wait is not None else wait_before_retry(attempt))
                    continue
            if status in (401, 403):
                raise AuthError(f"{self.site} refused the request (HTTP {status}: {self.message(response)}); "
                                f"{self.auth_hint}")
            if status in (429, 503) or 500 <= status < 600:
                if final:
                    raise ApiError(f"{self.site} kept failing (HTTP {status}: {self.message(response)}) after "
                                   f"{MAX_TRIES} tries; try again later or lower --rate")
                self.sleep(wait_before_retry(attempt, response))
                continue
            raise ApiError(f"{self.site} rejected the search (HTTP {status}: {self.message(response)})")
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
