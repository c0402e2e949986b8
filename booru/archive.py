"""The download archive `DATASET/.lorakit/booru.sqlite`: one row per saved post, for resume and
for rewriting captions without the network. Credentials are never stored."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from booru.errors import BooruError
from booru.post import Post
from prep.dataset import LORAKIT_DIR

ARCHIVE_NAME = "booru.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    site TEXT NOT NULL,
    id INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    file TEXT NOT NULL,
    rating TEXT,
    score INTEGER,
    source TEXT,
    tags TEXT NOT NULL,
    query TEXT,
    time REAL NOT NULL,
    PRIMARY KEY (site, id)
)
"""


@dataclass(frozen=True)
class ArchivedPost:
    site: str
    id: int
    md5: str
    file: str  # relative to the dataset root, '/'-separated
    rating: str | None
    score: int | None
    source: str
    tags: dict[str, list[str]]
    query: str
    time: float


class Archive:
    def __init__(self, dataset_root: Path, *, create: bool = True) -> None:
        self.root = Path(dataset_root)
        self.path = self.root / LORAKIT_DIR / ARCHIVE_NAME
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.is_file():
            raise BooruError(f"{self.path}: no booru archive here; run `lorakit scrape --out {self.root}` first")
        try:
            self.db = sqlite3.connect(self.path)
            # WAL with NORMAL sync: a commit per post without an fsync each; a kill loses at most the
            # last rows, and those posts are recognised again by their files' md5s.
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute(_SCHEMA)
            self.db.commit()
        except sqlite3.DatabaseError as exc:
            raise BooruError(f"{self.path}: cannot use the booru archive ({exc}); move it away to start "
                             "a fresh one") from None

    def close(self) -> None:
        self.db.close()

    def get(self, site: str, post_id: int) -> ArchivedPost | None:
        row = self.db.execute("SELECT * FROM posts WHERE site = ? AND id = ?", (site, post_id)).fetchone()
        return _row(row) if row else None

    def record(self, post: Post, file: str, query: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO posts (site, id, md5, file, rating, score, source, tags, query, time) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (post.site, post.id, post.md5, file, post.rating, post.score, post.source,
             json.dumps(post.tags, ensure_ascii=False), query, time.time()),
        )
        self.db.commit()

    def forget_files(self, files: list[str]) -> int:
        """Drop the rows of these dataset files (an undone scrape), so a new scrape downloads them again."""
        removed = 0
        for file in files:
            removed += self.db.execute("DELETE FROM posts WHERE file = ?", (file,)).rowcount
        self.db.commit()
        return removed

    def rows(self, site: str | None = None) -> list[ArchivedPost]:
        if site is None:
            cursor = self.db.execute("SELECT * FROM posts ORDER BY site, id DESC")
        else:
            cursor = self.db.execute("SELECT * FROM posts WHERE site = ? ORDER BY id DESC", (site,))
        return [_row(r) for r in cursor.fetchall()]


def _row(row: tuple) -> ArchivedPost:
    site, post_id, md5, file, rating, score, source, tags, query, when = row
    try:
        decoded = json.loads(tags)
    except ValueError:
        decoded = {}
    if not isinstance(decoded, dict):
        decoded = {}
    clean = {str(k): [str(t) for t in v] for k, v in decoded.items() if isinstance(v, list)}
    return ArchivedPost(str(site), int(post_id), str(md5), str(file), rating, score, source or "", clean,
                        query or "", float(when))
