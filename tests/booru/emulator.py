"""A booru API emulator on 127.0.0.1: every family's record shapes as in the reference, real image
files with their true md5s, and switches for each fault a real site throws.

    with Emulator("danbooru", make_posts(30)) as emu:
        emu.tag_limit = 2
        emu.fault("file", "wrong_md5", post_id=emu.posts[0].id)
        lorakit scrape --site danbooru --base-url emu.base_url ...
"""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import threading
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any

from PIL import Image

from tests.booru.handler import Handler
from tests.booru.records import (
    danbooru_record,
    e621_record,
    gelbooru_record,
    moebooru_record,
    v02_record,
    v02_stored_name,
)

FAMILIES = ("danbooru", "gelbooru", "gelbooru-v02", "moebooru", "e621")
PIL_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP", "gif": "GIF"}
DELETE = object()  # an override value that removes the key from the record


class Raw(str):
    """An override value written into the JSON as is (a 5,000-digit number Python would not dump)."""


def image_bytes(ext: str, size: tuple[int, int], seed: int, noise: bool = False) -> bytes:
    fmt = PIL_FORMATS.get(ext)
    if fmt is None:  # video / zip: any bytes will do
        return hashlib.sha256(f"{ext}{seed}".encode()).digest() * 64
    if noise:
        import os

        image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    else:
        image = Image.new("RGB", size, ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


@dataclass
class FakePost:
    id: int
    ext: str = "png"
    width: int = 40
    height: int = 30
    rating: str = "g"  # g s q e
    score: int = 10
    tags: dict[str, list[str]] = field(default_factory=dict)
    source: str = ""
    deleted: bool = False
    restricted: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""
    noise: bool = False

    def __post_init__(self) -> None:
        if not self.data:
            self.data = image_bytes(self.ext, (self.width, self.height), self.id, self.noise)

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data).hexdigest()

    @property
    def all_tags(self) -> list[str]:
        return [t for group in self.tags.values() for t in group]


def default_tags(post_id: int) -> dict[str, list[str]]:
    return {"character": [f"character_{post_id % 3}"], "copyright": ["some_series"], "artist": ["artist_x"],
            "general": ["1girl", "long_hair", "^_^", f"tag_{post_id}"], "meta": ["highres"],
            "species": ["fox"]}


def make_posts(n: int, top_id: int = 5000, **kwargs: Any) -> list[FakePost]:
    """n posts, newest (highest id) first, ids top_id, top_id-1, ..."""
    return [FakePost(top_id - i, tags=default_tags(top_id - i), **kwargs) for i in range(n)]


@dataclass
class Fault:
    target: str  # "api" (searches), "tag" (Gelbooru tag lookups) or "file"
    kind: str  # status, drop, truncate, wrong_md5, junk, lone, cloudflare, empty, echo, gzip_bomb,
    #            files only: redirect (to location), slow (rate bytes/s), huge_length, stall (no answer)
    times: int = 1
    status: int = 503
    retry_after: Any = None  # a header value, or a callable making it when the fault is served
    post_id: int | None = None
    location: str = ""
    rate: float = 1024.0
    size: int = 64 * 1024


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up mid-answer (the scraper stops reading after a challenge) is normal, not an
    error to print: socketserver would write its traceback into the stderr the tests check."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class Emulator:
    def __init__(self, family: str, posts: list[FakePost] | None = None, *, prefix: str = "") -> None:
        assert family in FAMILIES, family
        self.family = family
        self.posts = sorted(posts if posts is not None else make_posts(10), key=lambda p: -p.id)
        self.prefix = prefix.rstrip("/")
        # switches
        self.tag_limit: int | None = None  # Danbooru/e621: 422 above N counted terms (anonymous)
        self.page_cap: int | None = None  # Danbooru/e621: 410 beyond numbered page N
        self.depth_cap: int | None = None  # Gelbooru: "Too deep!" (200) beyond this offset
        self.require_key = False
        self.login, self.api_key, self.user_id = "alice", "s3cret-KEY-123", "42"
        self.tag_api = True  # v02 clones: False answers tag lookups with an HTML page
        self.file_latency = 0.0
        self.chunk_delay = 0.0  # seconds between 8 KiB chunks of a file
        self.api_rate: float | None = None  # answer 429 when more than this many API requests in 1 s
        self.api_latency = 0.0
        self.faults: list[Fault] = []
        # Danbooru/e621 /tag_implications.json and /tag_aliases.json: (antecedent, consequent, status)
        self.implications: list[tuple[str, str, str]] = []
        self.aliases: list[tuple[str, str, str]] = []
        self.log: list[dict[str, Any]] = []
        self.rate_violations = 0
        self.active_files = 0
        self.max_active_files = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.files: dict[str, FakePost] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Emulator:
        handler = type("BoundHandler", (Handler,), {"emu": self})
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def root(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return self.root + self.prefix

    # -- switches --------------------------------------------------------------------------------
    def fault(self, target: str, kind: str, times: int = 1, **kwargs: Any) -> Fault:
        fault = Fault(target, kind, times, **kwargs)
        self.faults.append(fault)
        return fault

    def take_fault(self, target: str, post_id: int | None = None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.target == target and fault.times > 0 and fault.post_id in (None, post_id):
                    fault.times -= 1
                    return fault
        return None

    def file_started(self) -> None:
        with self._lock:
            self.active_files += 1
            self.max_active_files = max(self.max_active_files, self.active_files)

    def file_finished(self) -> None:
        with self._lock:
            self.active_files -= 1

    def requests(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.log if r["kind"] == kind]

    def file_url(self, post: FakePost) -> str:
        """Where the post's file lives (absolute, like the real CDNs)."""
        m = post.md5
        ext = post.ext
        path = {
            "danbooru": f"/original/{m[:2]}/{m[2:4]}/{m}.{ext}",
            "gelbooru": f"/images/{m[:2]}/{m[2:4]}/{m}.{ext}",
            "gelbooru-v02": f"/images/{post.id % 100}/{v02_stored_name(post)}",
            "moebooru": f"/image/{m}/yande.re%20{post.id}%20tags.{ext}",
            "e621": f"/data/{m[:2]}/{m[2:4]}/{m}.{ext}",
        }[self.family]
        self.files[self.prefix + path] = post
        return self.base_url + path

    # -- search ----------------------------------------------------------------------------------
    def matching(self, query: str) -> list[FakePost]:
        terms = query.split()
        show_deleted = self.family == "danbooru" or any(t in ("status:deleted", "status:any") for t in terms)
        out = []
        for post in self.posts:
            if post.deleted and not show_deleted:
                continue
            if all(_term_matches(post, t) for t in terms):
                out.append(post)
        return out

    def authorized(self, params: dict[str, str], headers: Any) -> bool:
        auth = headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                login, _, key = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return False
            return login == self.login and key == self.api_key
        if self.family == "gelbooru" or self.family == "gelbooru-v02":
            return params.get("api_key") == self.api_key and params.get("user_id") == self.user_id
        return params.get("login") == self.login and params.get("api_key") == self.api_key

    def record(self, post: FakePost) -> dict[str, Any]:
        builder = {"danbooru": danbooru_record, "gelbooru": gelbooru_record, "gelbooru-v02": v02_record,
                   "moebooru": moebooru_record, "e621": e621_record}[self.family]
        record = builder(post, self.file_url(post))
        for key, value in post.overrides.items():
            if value is DELETE:
                record.pop(key, None)
            else:
                record[key] = value
        return record

    def check_rate(self, now: float) -> bool:
        """False when this API request exceeds api_rate within the last second."""
        if self.api_rate is None:
            return True
        with self._lock:
            recent = [r for r in self.log if r["kind"] in ("api", "tag", "implications", "aliases")
                      and now - r["time"] < 1.0 and r["status"] != 429]
            if len(recent) > self.api_rate:
                self.rate_violations += 1
                return False
        return True


def _term_matches(post: FakePost, term: str) -> bool:
    negated = term.startswith("-")
    name = term[1:] if negated else term
    if name.startswith("rating:"):
        found = post.rating == name.split(":", 1)[1][:1]
    elif name.startswith("id:<"):
        found = post.id < int(name[4:])
    elif name.startswith(("status:", "order:", "sort:")):
        return True
    else:
        found = name in post.all_tags
    return found != negated


