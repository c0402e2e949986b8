"""Tag implications and aliases: the bundled table (a small curated subset of Danbooru's), and the
site's own graph that `lorakit implications fetch` stores in `.lorakit/implications.sqlite`.

The store holds the active implications (antecedent -> consequent) and aliases (deprecated name ->
canonical name) with the site and fetch time. It is written whole, through the dataset's journal
(so `lorakit undo` restores the previous file). `clean --remove-implied` and `--canonical` read it
through `dataset_graph`, which falls back to the bundled table when nothing was fetched.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path

from prep.dataset import LORAKIT_DIR
from prep.errors import PrepError
from prep.tag_query import match_key

STORE_NAME = "implications.sqlite"
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE implications (antecedent TEXT NOT NULL, consequent TEXT NOT NULL, PRIMARY KEY (antecedent, consequent));
CREATE TABLE aliases (antecedent TEXT PRIMARY KEY, consequent TEXT NOT NULL);
"""


def _closure(direct: Mapping[str, Iterable[str]]) -> dict[str, frozenset[str]]:
    """Per antecedent key, every key it implies, followed transitively (cycles are harmless)."""
    closed: dict[str, frozenset[str]] = {}
    for start in direct:
        seen: set[str] = set()
        pending = list(direct[start])
        while pending:
            key = pending.pop()
            if key not in seen and key != start:
                seen.add(key)
                pending.extend(direct.get(key, ()))
        closed[start] = frozenset(seen)
    return closed


@lru_cache(maxsize=1)
def implications() -> dict[str, frozenset[str]]:
    """The bundled table: per antecedent key, every tag key it implies (followed transitively)."""
    direct: dict[str, set[str]] = {}
    text = resources.files("prep").joinpath("data/implications.csv").read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        antecedent, _, consequent = line.partition(",")
        direct.setdefault(match_key(antecedent), set()).add(match_key(consequent))
    return _closure(direct)


def implied_by(tag_key: str) -> frozenset[str]:
    """The tag keys the bundled table says a present tag implies (empty when it implies nothing)."""
    return implications().get(tag_key, frozenset())


@dataclass
class TagGraph:
    """Implications (closed transitively) and aliases, keyed by prep's match key."""

    implied: dict[str, frozenset[str]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)  # match key -> canonical tag (site spelling)
    source: str = ""  # the line saying which graph this is

    def implied_by(self, key: str) -> frozenset[str]:
        return self.implied.get(key, frozenset())

    def canonical(self, key: str) -> str | None:
        return self.aliases.get(key)


def bundled_graph() -> TagGraph:
    table = implications()
    return TagGraph(dict(table), {}, f"using lorakit's bundled implication table ({len(table)} tags; no fetched "
                                    "graph: run `lorakit implications fetch DATASET` for the site's own)")


def store_path(dataset_root: Path) -> Path:
    return Path(dataset_root) / LORAKIT_DIR / STORE_NAME


@dataclass
class StoredGraph:
    """The fetched graph as stored: raw pairs in the site's spelling (underscores)."""

    site: str
    fetched_at: str
    implications: list[tuple[str, str]]
    aliases: list[tuple[str, str]]


def encode_store(graph: StoredGraph) -> bytes:
    """The SQLite file's bytes for a graph (built in a temporary file, written by the caller's journal)."""
    fd, tmp = tempfile.mkstemp(suffix=".sqlite")
    os.close(fd)
    try:
        db = sqlite3.connect(tmp)
        try:
            db.executescript(SCHEMA)
            db.executemany("INSERT INTO meta VALUES (?, ?)", [("site", graph.site), ("fetched_at", graph.fetched_at),
                                                              ("format", "1")])
            db.executemany("INSERT OR IGNORE INTO implications VALUES (?, ?)", sorted(set(graph.implications)))
            db.executemany("INSERT OR REPLACE INTO aliases VALUES (?, ?)", sorted(set(graph.aliases)))
            db.commit()
        finally:
            db.close()
        return Path(tmp).read_bytes()
    finally:
        os.unlink(tmp)


def read_store(dataset_root: Path) -> StoredGraph | None:
    """The stored graph, None when none was fetched; a one-line error when the file is not one."""
    path = store_path(dataset_root)
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            pairs = db.execute("SELECT antecedent, consequent FROM implications").fetchall()
            aliases = db.execute("SELECT antecedent, consequent FROM aliases").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise PrepError(f"{path}: not a lorakit implications store ({exc}); delete it and run "
                        "`lorakit implications fetch` again") from None
    return StoredGraph(str(meta.get("site", "?")), str(meta.get("fetched_at", "?")),
                       [(str(a), str(c)) for a, c in pairs], [(str(a), str(c)) for a, c in aliases])


def graph_of(stored: StoredGraph) -> TagGraph:
    direct: dict[str, set[str]] = {}
    for antecedent, consequent in stored.implications:
        direct.setdefault(match_key(antecedent), set()).add(match_key(consequent))
    aliases = {match_key(a): c for a, c in stored.aliases}
    return TagGraph(_closure(direct), aliases,
                    f"using the implications fetched from {stored.site} at {stored.fetched_at} "
                    f"({len(stored.implications)} implications, {len(stored.aliases)} aliases)")


def dataset_graph(dataset_root: Path) -> TagGraph:
    """The fetched graph of the dataset, else the bundled table (its `source` says which)."""
    stored = read_store(dataset_root)
    return graph_of(stored) if stored is not None else bundled_graph()


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()
