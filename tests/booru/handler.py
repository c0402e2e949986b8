"""The emulator's request handler: routes API searches, tag lookups and files; applies faults."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.booru.records import GELBOORU_TYPES, MOEBOORU_TYPES

DANBOORU_FREE = frozenset(
    "status rating limit is id date age filesize filetype parent child md5 width height duration mpixels "
    "ratio score upvote downvotes favcount embedded tagcount pixiv pixiv_id".split())
E621_FREE = frozenset({"status", "rating", "limit"})
CLOUDFLARE_BODY = (b"<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
                   b"<script>window._cf_chl_opt={cvId:'3'};</script></body></html>")
TOO_DEEP = b"Too deep! Pull it back some. Holy fuck."
JUNK = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
_lock = threading.Lock()
_bomb: list[bytes] = []


def _gzip_bomb() -> bytes:
    """`[` and 1 GB of spaces, gzip-compressed to about 1 MB (made once per test session). After a full
    flush the compressor starts afresh, so each 1 MB block compresses to the same bytes: one block is
    compressed and repeated, and the gzip header and trailer are written by hand."""
    if not _bomb:
        import struct
        import zlib

        block = b" " * (1 << 20)
        c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        head = c.compress(b"[") + c.flush(zlib.Z_FULL_FLUSH)
        body = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
        tail = c.flush(zlib.Z_FINISH)
        crc = zlib.crc32(b"[")
        for _ in range(1024):
            crc = zlib.crc32(block, crc)
        size = (1 + 1024 * len(block)) & 0xFFFFFFFF
        _bomb.append(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + head + body * 1024 + tail
                     + struct.pack("<II", crc, size))
    return _bomb[0]


class Handler(BaseHTTPRequestHandler):
    emu: Any = None
    server_version = "emulator"
    protocol_version = "HTTP/1.1"  # keep-alive, like the real sites
    disable_nagle_algorithm = True  # headers and body go out as separate writes

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    # -- plumbing --------------------------------------------------------------------------------
    def send(self, status: int, body: bytes, ctype: str = "application/json",
             headers: dict[str, str] | None = None, *, truncate: bool = False) -> None:
        self.entry["status"] = status
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if truncate:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        from tests.booru.emulator import Raw

        raws: list[str] = []

        def placeholder(value: Any) -> Any:
            if isinstance(value, Raw):
                raws.append(str(value))
                return f"\u0000RAW{len(raws) - 1}\u0000"
            if isinstance(value, dict):
                return {k: placeholder(v) for k, v in value.items()}
            if isinstance(value, list):
                return [placeholder(v) for v in value]
            return value

        text = json.dumps(placeholder(data))
        for i, raw in enumerate(raws):
            text = text.replace(json.dumps(f"\u0000RAW{i}\u0000"), raw)
        self.send(status, text.encode(), headers=headers)

    def do_GET(self) -> None:  # noqa: N802
        emu = self.emu
        split = urlsplit(self.path)
        path = split.path
        params = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        prefix = emu.prefix
        kind = "unknown"
        if path in emu.files:
            kind = "file"
        elif path == prefix + "/posts.json" and emu.family in ("danbooru", "e621"):
            kind = "api"
        elif path in (prefix + "/tag_implications.json", prefix + "/tag_aliases.json") and \
                emu.family in ("danbooru", "e621"):
            kind = "implications" if "implications" in path else "aliases"
        elif path == prefix + "/post.json" and emu.family == "moebooru":
            kind = "api"
        elif path == prefix + "/index.php" and emu.family in ("gelbooru", "gelbooru-v02"):
            kind = {"post": "api", "tag": "tag"}.get(params.get("s", ""), "unknown")
        self.entry = {"time": time.monotonic(), "kind": kind, "path": path, "params": params,
                      "query": split.query, "ua": self.headers.get("User-Agent", ""),
                      "authorization": self.headers.get("Authorization", ""), "status": None}
        with _lock:
            emu.log.append(self.entry)
        if kind == "file":
            self.serve_file(emu.files[path])
        elif kind in ("api", "tag"):
            self.serve_api(kind, params)
        elif kind in ("implications", "aliases"):
            self.serve_relations(kind, params)
        else:
            self.send_json(404, {"success": False, "reason": "not found"})

    def apply_fault(self, fault: Any) -> bool:
        """Answer with the fault; False for faults that only change the body (lone, wrong_md5)."""
        if fault is None or fault.kind in ("lone", "wrong_md5"):
            return False
        if fault.kind == "drop":
            self.entry["status"] = "dropped"
            self.close_connection = True
        elif fault.kind == "status":
            value = fault.retry_after() if callable(fault.retry_after) else fault.retry_after
            headers = {"Retry-After": value} if value is not None else {}
            self.send_json(fault.status, {"success": False, "message": "fault injected"}, headers)
        elif fault.kind == "junk":
            self.send(200, JUNK, "text/html")
        elif fault.kind == "quota":  # Gelbooru's old daily quota: XML even to json=1
            self.send(200, b'<?xml version="1.0" encoding="UTF-8"?><response success="false" reason="Search '
                           b'error: Please use your API key. Currently you have exceeded maximum queries per '
                           b'day."/>', "text/xml")
        elif fault.kind == "empty":
            self.send(200, b"", "text/html")
        elif fault.kind == "cloudflare":
            self.send(403, CLOUDFLARE_BODY, "text/html",
                      {"cf-mitigated": "challenge", "Server": "cloudflare"})
        elif fault.kind == "truncate":
            self.send(200, b'[{"id": 1, "md5": "' + b"0" * 200, truncate=True)
        elif fault.kind == "echo":  # an error page quoting the request, as Moebooru's 500 does
            echo = f"GET {self.path} Authorization: {self.headers.get('Authorization', '')}"
            self.send_json(fault.status, {"success": False, "reason": f"Error: undefined method for {echo}",
                                          "message": f"PostQuery::Error {echo}"})
        elif fault.kind == "gzip_bomb":  # `[` then 1 GB of spaces, 1 MB on the wire
            self.send(200, _gzip_bomb(), headers={"Content-Encoding": "gzip"})
        elif fault.kind == "redirect":
            self.send(302, b"", "text/html", {"Location": fault.location})
        elif fault.kind == "huge_length":  # claims 5 GB, sends a little, then hangs up
            self.send_raw_headers(200, {"Content-Length": str(5 * 10**9), "Content-Type": "image/png"})
            try:
                self.wfile.write(b"\x89PNG" * 1024)
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True
        elif fault.kind == "stall":  # reads the request, never answers (up to 20 s)
            self.entry["status"] = "stalled"
            time.sleep(20)
            self.close_connection = True
        elif fault.kind == "slow":  # fault.size bytes at fault.rate bytes per second
            self.send_raw_headers(200, {"Content-Length": str(fault.size), "Content-Type": "image/png"})
            step = max(1, int(fault.rate / 10))
            try:
                for _ in range(0, fault.size, step):
                    self.wfile.write(b"\0" * step)
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass
            self.close_connection = True
        else:
            raise AssertionError(fault.kind)
        return True

    def send_raw_headers(self, status: int, headers: dict[str, str]) -> None:
        self.entry["status"] = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.flush()

    # -- files -----------------------------------------------------------------------------------
    def serve_file(self, post: Any) -> None:
        self.emu.file_started()
        try:
            self._serve_file(post)
        finally:
            self.emu.file_finished()

    def _serve_file(self, post: Any) -> None:
        emu = self.emu
        fault = emu.take_fault("file", post.id)
        if emu.file_latency:
            time.sleep(emu.file_latency)
        body = post.data
        if fault is not None and fault.kind == "wrong_md5":
            from tests.booru.emulator import image_bytes

            body = image_bytes(post.ext, (post.width, post.height), post.id + 999)
        if fault is not None and fault.kind == "truncate":
            self.send(200, body, "application/octet-stream", truncate=True)
            return
        if self.apply_fault(fault):
            return
        self.entry["status"] = 200
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"image/{post.ext}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not emu.chunk_delay:
                self.wfile.write(body)
                return
            for start in range(0, len(body), 8192):
                self.wfile.write(body[start:start + 8192])
                self.wfile.flush()
                time.sleep(emu.chunk_delay)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # -- API -------------------------------------------------------------------------------------
    def serve_api(self, kind: str, params: dict[str, str]) -> None:
        emu = self.emu
        if not emu.check_rate(self.entry["time"]):
            self.send_json(429, {"success": False, "message": "Throttled"}, {"Retry-After": "1"})
            return
        if emu.api_latency:
            time.sleep(emu.api_latency)
        fault = emu.take_fault(kind)
        if self.apply_fault(fault):
            return
        lone = fault is not None and fault.kind == "lone"
        given = bool(self.headers.get("Authorization") or params.get("api_key") or params.get("login"))
        valid = emu.authorized(params, self.headers)
        if (given and not valid) or (emu.require_key and not valid):
            self.refuse_auth(given)
            return
        if kind == "tag":
            self.serve_tags(params)
            return
        family = emu.family
        query = params.get("tags", "")
        if family in ("danbooru", "e621") and emu.tag_limit is not None and not valid:
            free = DANBOORU_FREE if family == "danbooru" else E621_FREE
            terms = query.split()
            counted = [t for t in terms if t.lstrip("-").split(":", 1)[0].lower() not in free or ":" not in t]
            if len(terms) > 1 and len(counted) > emu.tag_limit:
                self.send_json(422, {"success": False, "error": "PostQuery::TagLimitError",
                                     "message": f"You cannot search for more than {emu.tag_limit} tags at a time.",
                                     "backtrace": ["app/logical/post_query.rb:123"]})
                return
        if family == "moebooru" and emu.tag_limit is not None:
            counted = [t for t in query.split() if not t.startswith(("rating:", "limit:", "status:"))]
            if len(counted) > emu.tag_limit:
                self.send_json(500, {"success": False, "reason": "Error: You cannot search for more than "
                                                                 f"{emu.tag_limit} tags at a time"})
                return
        posts = emu.matching(query)
        page_cut = self.page(posts, params)
        if page_cut is None:
            return
        records = [emu.record(p) for p in page_cut[0]]
        offset, limit = page_cut[1], page_cut[2]
        if family == "danbooru":
            self.send_json(200, records[0] if lone and records else records)
        elif family == "gelbooru":
            envelope: dict[str, Any] = {"@attributes": {"limit": limit, "offset": offset, "count": len(posts)}}
            if records:
                envelope["post"] = records[0] if lone else records
            self.send_json(200, envelope)
        elif family == "gelbooru-v02":
            if not records:
                self.send(200, b"", "text/html")  # clones answer "nothing" with an empty body
            else:
                self.send_json(200, records[0] if lone else records)
        elif family == "moebooru":
            if params.get("api_version") == "2":
                types: dict[str, str] = {}
                for post in page_cut[0]:
                    for category, names in post.tags.items():
                        for name in names:
                            types.setdefault(name, MOEBOORU_TYPES[category])
                self.send_json(200, {"posts": records[0] if lone and records else records, "pools": [],
                                     "pool_posts": [], "tags": types})
            else:
                self.send_json(200, records)
        else:
            self.send_json(200, {"post": records[0]} if lone and records else {"posts": records})

    def page(self, posts: list[Any], params: dict[str, str]) -> tuple[list[Any], int, int] | None:
        emu = self.emu
        family = emu.family
        try:
            limit = int(params.get("limit", "20"))
        except ValueError:
            limit = 20
        if family in ("danbooru", "e621"):
            top = 200 if family == "danbooru" else 320
            if family == "e621" and limit > top:
                self.send_json(410, {"success": False, "message": "Limit must be between 0 and 320."})
                return None
            limit = max(1, min(limit, top))
            page = params.get("page", "1")
            if page.startswith("b"):
                cursor = int(page[1:])
                return [p for p in posts if p.id < cursor][:limit], 0, limit
            if page.startswith("a"):
                cursor = int(page[1:])
                return list(reversed([p for p in posts if p.id > cursor][-limit:])), 0, limit
            number = int(page)
            if emu.page_cap is not None and number > emu.page_cap:
                extra = " Please narrow your search terms." if family == "e621" else ""
                self.send_json(410, {"success": False,
                                     "message": f"You cannot go beyond page {emu.page_cap}.{extra}"})
                return None
            offset = (number - 1) * limit
            return posts[offset:offset + limit], offset, limit
        if family in ("gelbooru", "gelbooru-v02"):
            limit = max(1, min(limit, 100 if family == "gelbooru" else 1000))
            offset = int(params.get("pid", "0")) * limit
            if emu.depth_cap is not None and offset > emu.depth_cap:
                self.send(200, TOO_DEEP, "text/html")
                return None
            return posts[offset:offset + limit], offset, limit
        limit = max(1, min(limit, 1000))
        offset = (max(1, int(params.get("page", "1"))) - 1) * limit
        return posts[offset:offset + limit], offset, limit

    def serve_tags(self, params: dict[str, str]) -> None:
        emu = self.emu
        if emu.family == "gelbooru-v02" and not emu.tag_api:
            self.send(200, b"<html><body>Tag list</body></html>", "text/html")
            return
        types: dict[str, int] = {}
        for post in emu.posts:
            for category, names in post.tags.items():
                for name in names:
                    types.setdefault(name, GELBOORU_TYPES[category])
        wanted = params.get("names", "").split()
        tags = [{"id": i + 1, "name": name, "count": 5, "type": types[name], "ambiguous": False}
                for i, name in enumerate(wanted) if name in types]
        if emu.family == "gelbooru":
            self.send_json(200, {"@attributes": {"limit": 100, "offset": 0, "count": len(tags)}, "tag": tags})
        else:
            self.send_json(200, tags)

    def serve_relations(self, kind: str, params: dict[str, str]) -> None:
        """`GET /tag_implications.json?search[antecedent_name_comma]=a,b&search[status]=active&limit=1000`
        (and /tag_aliases.json): `[{id, antecedent_name, consequent_name, status, ...}]`; e621 answers an
        empty result as `{"tag_implications": []}`."""
        emu = self.emu
        if not emu.check_rate(self.entry["time"]):
            self.send_json(429, {"success": False, "message": "Throttled"}, {"Retry-After": "1"})
            return
        fault = emu.take_fault(kind)
        if self.apply_fault(fault):
            return
        given = bool(self.headers.get("Authorization"))
        if (given and not emu.authorized(params, self.headers)) or (emu.require_key and not given):
            self.refuse_auth(given)
            return
        wanted = set(params.get("search[antecedent_name_comma]", "").split(","))
        status = params.get("search[status]")
        limit = int(params.get("limit", "20"))
        rows = emu.implications if kind == "implications" else emu.aliases
        records = [{"id": i + 1, "antecedent_name": a, "consequent_name": c, "status": st, "reason": "",
                    "forum_topic_id": None, "created_at": "2020-01-01T00:00:00.000-05:00"}
                   for i, (a, c, st) in enumerate(rows) if a in wanted and (status is None or st == status)]
        records = records[:limit]
        if not records and emu.family == "e621":
            self.send_json(200, {f"tag_{kind}": []})
        else:
            self.send_json(200, records)

    def refuse_auth(self, given: bool) -> None:
        family = self.emu.family
        if family == "gelbooru-v02":
            self.send(200, b"<error>Missing authentication. Go to api.rule34.xxx for more information</error>",
                      "text/xml")
        elif family == "danbooru":
            message = "Invalid API key" if given else "Missing `login` or `api_key`"
            self.send_json(401, {"success": False, "error": "SessionLoader::AuthenticationFailure",
                                 "message": message})
        else:
            self.send_json(401, {"success": False, "reason": "Access denied: API key required"})
