"""The one retry policy of every booru request: at most MAX_TRIES tries per request, shared by every
reason to retry (a dropped connection, a 429/5xx, a 200 whose body is not JSON, Moebooru's 500), so a
page that keeps failing costs MAX_TRIES requests, never more. Waits are the server's Retry-After
(seconds or an HTTP date, parsed by urllib3's Retry, capped) or exponential backoff 1, 2, 4, 8 s.
"""

from __future__ import annotations

import os

import requests
from urllib3.exceptions import InvalidHeader
from urllib3.util import Retry

MAX_TRIES = 5
RETRY_AFTER_CAP = 120.0
# Tests (and impatient users) shrink the backoff base; the documented behaviour is 1, 2, 4, 8 s.
BACKOFF_ENV = "LORAKIT_BOORU_BACKOFF"
RETRY_STATUSES = frozenset({429, 503})  # statuses whose Retry-After is honoured

_PARSER = Retry()


class RetryableAnswer(Exception):
    """An answer to try again (within the same budget); message says what it was, for the last try."""

    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.wait = wait


def backoff_base() -> float:
    try:
        return max(0.0, float(os.environ.get(BACKOFF_ENV, "1")))
    except ValueError:
        return 1.0


def backoff_delay(attempt: int) -> float:
    """Seconds to wait before try attempt+1 (attempt counts from 1)."""
    return min(60.0, backoff_base() * (2 ** (attempt - 1)))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date -> seconds to wait (capped), None when absent or invalid."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        seconds = _PARSER.parse_retry_after(value)
    except (InvalidHeader, ValueError, OverflowError):
        return None
    return min(max(0.0, float(seconds)), RETRY_AFTER_CAP)


def retry_after_seconds(response: requests.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def wait_before_retry(attempt: int, response: requests.Response | None = None) -> float:
    """The wait before try attempt+1: Retry-After on 429/503 when given, else the backoff."""
    if response is not None and response.status_code in RETRY_STATUSES:
        wait = retry_after_seconds(response)
        if wait is not None:
            return wait
    return backoff_delay(attempt)
