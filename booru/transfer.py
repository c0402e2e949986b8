"""Bounded reads of HTTP bodies and the address rules for URLs taken from untrusted JSON.

`read_body` streams a response with a cap on the *decoded* size (a gzip bomb stops at the cap, never
decoded whole), a minimum average rate after a grace window, a deadline, and a cancel flag checked
between reads (reads return whatever has arrived, so a trickle cannot hold a worker). Responses in
flight are registered so that `abort_all` can shut their sockets from another thread: Ctrl-C stops
every download within a second.

`check_address` refuses URLs that point at this machine's other services (loopback, link-local,
unspecified addresses) unless the run's base URL is itself on loopback, and URLs that requests
cannot fetch safely (bad scheme, bad port, malformed host).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

READ_CHUNK = 64 * 1024
RATE_WINDOW_ENV = "LORAKIT_BOORU_RATE_WINDOW"  # tests shrink the 20 s grace before --min-rate applies
DEFAULT_RATE_WINDOW = 20.0


class TransferError(Exception):
    """A body broke a limit; reason is a short key (too_large, too_slow, timeout), message one line."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class BadAddress(Exception):
    """A URL lorakit will not request (its message says why)."""


class Aborted(Exception):
    """The run is stopping (cancel flag or abort_all)."""


def rate_window() -> float:
    try:
        return max(0.0, float(os.environ.get(RATE_WINDOW_ENV, DEFAULT_RATE_WINDOW)))
    except ValueError:
        return DEFAULT_RATE_WINDOW


@dataclass(frozen=True)
class Limits:
    max_bytes: int  # decoded bytes
    min_rate: float = 0.0  # bytes/s averaged from the start, checked once `window` seconds have passed
    deadline: float | None = None  # seconds for the whole body
    window: float = DEFAULT_RATE_WINDOW


# -- responses in flight -----------------------------------------------------------------------------
_active: set[requests.Response] = set()
_active_lock = threading.Lock()
_sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()  # every socket of a tracked session


def abort_all() -> None:
    """Shut the socket of every response being read, and every socket of a tracked session (a
    worker waiting for a file's headers), so blocked reads return at once."""
    with _active_lock:
        responses = list(_active)
        sockets = list(_sockets)
    for response in responses:
        _shutdown(response)
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Tracked:
    """Mixed into urllib3's connection classes: every new socket is registered for abort_all."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        with _active_lock:
            _sockets.add(sock)
        return sock


class _TrackedHTTPConnection(_Tracked, HTTPConnection):
    pass


class _TrackedHTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _TrackedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection


class TrackedAdapter(HTTPAdapter):
    """requests' adapter whose sockets abort_all can shut (the download workers mount it)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TrackedHTTPPool, "https": _TrackedHTTPSPool}


def _shutdown(response: requests.Response) -> None:
    try:
        connection = getattr(response.raw, "connection", None) or getattr(response.raw, "_connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):
        pass


# -- decoding ----------------------------------------------------------------------------------------
class _Decoder:
    """gzip/deflate/identity, decoding at most READ_CHUNK bytes per step (bombs never expand whole)."""

    def __init__(self, encoding: str) -> None:
        names = [e.strip().lower() for e in encoding.split(",") if e.strip() and e.strip().lower() != "identity"]
        if len(names) > 1 or (names and names[0] not in ("gzip", "x-gzip", "deflate")):
            raise TransferError("bad_encoding", f"the server used an unsupported Content-Encoding ({encoding[:40]})")
        self.kind = names[0] if names else ""
        self._z = zlib.decompressobj(16 + zlib.MAX_WBITS) if self.kind in ("gzip", "x-gzip") else None
        self._first = True

    def pieces(self, data: bytes):
        """Decoded pieces of data, one READ_CHUNK at a time (a generator, so a cap stops early)."""
        if not self.kind:
            if data:
                yield data
            return
        if self._z is None:
            self._z = zlib.decompressobj(zlib.MAX_WBITS if data[:1] and data[0] & 0x0F == 8 else -zlib.MAX_WBITS)
        buf = data
        try:
            while buf:
                piece = self._z.decompress(buf, READ_CHUNK)
                buf = self._z.unconsumed_tail
                if piece:
                    yield piece
                elif buf:
                    return
        except zlib.error:
            raise TransferError("bad_encoding", "the compressed body is corrupt") from None


def read_body(response: requests.Response, limits: Limits, *, cancel: threading.Event | None = None,
              sink: Callable[[bytes], None] | None = None, what: str = "the answer") -> bytes:
    """Read a `stream=True` response within limits; pieces go to sink (then b"" is returned) or are
    joined. Raises TransferError, Aborted, or requests' transport errors."""
    length = response.headers.get("Content-Length", "").strip()
    encoding = response.headers.get("Content-Encoding", "")
    if length.isdigit() and not encoding.strip() and int(length) > limits.max_bytes:
        raise TransferError("too_large", f"{what} is {int(length) / 1e6:,.1f} MB, over the "
                                         f"{limits.max_bytes / 1e6:,.0f} MB limit; not downloaded")
    decoder = _Decoder(encoding)
    chunks: list[bytes] = []
    total = 0
    start = time.monotonic()
    with _active_lock:
        _active.add(response)
    try:
        raw = response.raw
        while True:
            if cancel is not None and cancel.is_set():
                raise Aborted
            try:
                data = raw.read1(READ_CHUNK, decode_content=False)
            except Exception as exc:  # noqa: BLE001 - urllib3 errors become requests' transport errors
                if cancel is not None and cancel.is_set():
                    raise Aborted from None
                raise requests.exceptions.ChunkedEncodingError(str(exc)[:100]) from None
            if cancel is not None and cancel.is_set():
                raise Aborted
            if not data:
                break
            for piece in decoder.pieces(data):
                total += len(piece)
                if total > limits.max_bytes:
                    raise TransferError("too_large", f"{what} is over the {limits.max_bytes / 1e6:,.0f} MB "
                                                     "limit; dropped")
                if sink is not None:
                    sink(piece)
                else:
                    chunks.append(piece)
            elapsed = time.monotonic() - start
            if limits.deadline is not None and elapsed > limits.deadline:
                raise TransferError("timeout", f"{what} took over {limits.deadline:g} s; dropped")
            if limits.min_rate and elapsed > limits.window and total / elapsed < limits.min_rate:
                raise TransferError("too_slow", f"{what} arrived at {total / elapsed / 1024:.1f} KiB/s, below "
                                                f"the {limits.min_rate / 1024:g} KiB/s minimum; dropped")
    finally:
        with _active_lock:
            _active.discard(response)
    return b"".join(chunks)


# -- addresses ---------------------------------------------------------------------------------------
def is_loopback_url(url: str) -> bool:
    """Is the URL's host this machine's loopback (127.0.0.0/8, ::1, localhost)?"""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host.lower() in ("localhost", "localhost.") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_loopback: bool) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return (address.is_loopback and not allow_loopback) or address.is_link_local or address.is_unspecified


def check_address(url: str, *, allow_local: bool) -> None:
    """Raise BadAddress unless url is an http(s) URL lorakit may request for a file. allow_local: the
    base URL is on loopback, so loopback files are fine; link-local (cloud metadata at
    169.254.169.254) and unspecified addresses are refused always."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise BadAddress(f"malformed URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise BadAddress(f"not an http(s) URL ({parts.scheme or 'no'} scheme)")
    if not host:
        raise BadAddress("the URL has no host")
    if port is not None and not 0 < port < 65536:
        raise BadAddress(f"port {port} is out of range")
    if is_loopback_url(url):
        if allow_local:
            return
        raise BadAddress(f"{host} is this machine (loopback); refused")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if _forbidden(literal, allow_local):
            raise BadAddress(f"{host} is a loopback, link-local or unspecified address; refused")
        return
    if allow_local:
        return  # tests and local mirrors: names are not looked up
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80),
                                   type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return  # unresolvable: the request itself fails with a clear reason
    for info in infos:
        try:
            address = ipaddress.ip_address(info[4][0])
        except ValueError:
            continue
        if _forbidden(address, False):
            raise BadAddress(f"{host} resolves to {address}, a loopback or link-local address; refused")
