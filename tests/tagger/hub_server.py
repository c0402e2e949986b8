"""A stand-in for the Hugging Face Hub on 127.0.0.1: the resolve endpoint hf_hub_download uses.

`HEAD|GET /{owner}/{name}/resolve/{revision}/{filename}` answers with the headers huggingface_hub
reads (X-Repo-Commit, ETag, Content-Length) and the hub's X-Error-Code on 404s; every request is
recorded with its Authorization header.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class FakeHub:
    # repo id -> revision -> filename -> bytes ("main" is the default branch)
    repos: dict[str, dict[str, dict[str, bytes]]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, authorization)
    url: str = ""

    def add(self, repo: str, files: dict[str, bytes], revision: str = "main") -> None:
        self.repos.setdefault(repo, {})[revision] = files

    def commit(self, repo: str, revision: str) -> str:
        return hashlib.sha1(f"{repo}@{revision}".encode()).hexdigest()


def _handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path, self.headers.get("Authorization")))
            parts = path.strip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error(404, "RepoNotFound")
            repo, revision, filename = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
            revisions = hub.repos.get(repo)
            if revisions is None:
                return self._error(404, "RepoNotFound")
            files = revisions.get(revision)
            if files is None:
                # A full commit hash of a known revision resolves too.
                files = next((f for r, f in revisions.items() if hub.commit(repo, r) == revision), None)
                if files is None:
                    return self._error(404, "RevisionNotFound")
            commit = hub.commit(repo, revision if revision in revisions else next(
                r for r in revisions if hub.commit(repo, r) == revision))
            data = files.get(filename)
            if data is None:
                return self._error(404, "EntryNotFound", commit)
            self.send_response(200)
            self.send_header("X-Repo-Commit", commit)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _error(self, status: int, code: str, commit: str | None = None) -> None:
            message = f"{code}".encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", code)
            if commit:
                self.send_header("X-Repo-Commit", commit)
            self.send_header("Content-Length", str(len(message)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(message)

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer(body=False)

        def do_GET(self) -> None:  # noqa: N802
            self._answer(body=True)

    return Handler


class HubServer:
    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        self.hub.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self.hub

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
