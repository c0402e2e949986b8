"""`lorakit clean`: caption cleaning rules as pure functions on tag lists, applied in a fixed order.

Order (the contract of `lorakit clean`): 1 normalise, 2 underscores to spaces, 3 unescape (or escape)
parentheses, 4 replace, 5 remove, 6 canonical (aliases to their consequent), 7 remove implied (the
site's implication graph, else the bundled table), 8 remove redundant, 9 deduplicate, 10 trigger /
remove names, 11 sort after keep_tokens, 12 max tags, 13 lowercase. Only captions whose bytes change are written,
through one journal operation.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prep.caption_set import EditReport, apply_changes, gc_paused, read_captions, scan_dataset
from prep.captions import (
    KAOMOJI,
    escape_parens,
    normalize_tag,
    parse_caption,
    underscores_to_spaces,
    unescape_parens,
)
from prep.config import ConfigError, option
from prep.dataset import DEFAULT_CAPTION_EXTENSION, Dataset
from prep.implications import TagGraph, bundled_graph, dataset_graph, implied_by
from prep.tag_query import PatternSet, Query, TagPattern, bind_query, match_key, parse_query, remove_matching

SORT_CHOICES = ("alpha", "frequency", "none")


@dataclass
class CleanConfig:
    """The cleaning rules; the `[clean]` table of lorakit.toml uses the same names."""

    keep_underscores: bool = option(False, "keep underscores in tags (default: `long_hair` -> `long hair`; "
                                           "kaomoji such as ^_^ always keep theirs)")
    escape_parens: bool = option(False, "escape parentheses as \\( \\) for prompt-style captions "
                                        "(default: unescape them; training reads captions raw)")
    replace: list[str] = option(help="OLD=NEW: rename a tag, an empty NEW removes it (repeatable, or @FILE "
                                     "with one pair a line; write \\= for a literal =)", default_factory=list)
    remove: list[str] = option(help="remove a tag; * is a wildcard: '*background', 'artist:*' "
                                    "(repeatable, or @FILE with one a line)", default_factory=list)
    canonical: bool = option(False, "replace aliased (deprecated) tags by their canonical name, from the graph "
                                    "`lorakit implications fetch` stored")
    remove_implied: bool = option(False, "drop a tag another present tag implies, by the fetched implication "
                                         "graph (else lorakit's bundled table)")
    remove_redundant: bool = option(False, "drop a tag another tag ends with as whole words (shirt with white "
                                           "shirt) or that another tag implies (animal ears with cat ears)")
    trigger: str | None = option(None, "make WORD the first tag of every caption (moved or inserted)")
    remove_name: list[str] = option(help="remove this full name (any case, spaces or underscores); the "
                                         "trigger replaces it (repeatable)", default_factory=list)
    sort: str | None = option(None, "sort tags after the first --keep-tokens: alpha, or frequency (most "
                                    "common in the dataset first), or none (default: none, keep the order)",
                                    choices=SORT_CHOICES)
    keep_tokens: int | None = option(None, "tags at the front that sorting leaves in place "
                                           "(default: 0, or 1 with --trigger)")
    max_tags: int | None = option(None, "keep only the first N tags after sorting")
    lowercase: bool = option(False, "lowercase every tag")

    def __post_init__(self) -> None:
        if self.sort == "none":  # lets a flag undo a `sort` set in lorakit.toml
            self.sort = None
        if self.keep_tokens is not None and self.keep_tokens < 0:
            raise ConfigError(f"keep_tokens = {self.keep_tokens} must be 0 or more")
        if self.max_tags is not None and self.max_tags < 1:
            raise ConfigError(f"max_tags = {self.max_tags} must be 1 or more")
        if self.trigger is not None:
            self.trigger = normalize_tag(self.trigger) or None
            if self.trigger is not None and "," in self.trigger:
                raise ConfigError(f"trigger = {self.trigger!r} must be one tag (no comma)")

    @property
    def effective_keep_tokens(self) -> int:
        if self.keep_tokens is not None:
            return self.keep_tokens
        return 1 if self.trigger else 0


# -- the rules, in order ------------------------------------------------------------------------

def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Rule 1: trim, collapse inner whitespace, drop empty tags."""
    return [t for t in (normalize_tag(tag) for tag in tags) if t]


def underscores_to_spaces_all(tags: Iterable[str]) -> list[str]:
    """Rule 2: `long_hair` -> `long hair`; kaomoji (`^_^`) keep their underscores."""
    return [t for t in (normalize_tag(underscores_to_spaces(tag)) for tag in tags) if t]


def unescape_parens_all(tags: Iterable[str]) -> list[str]:
    r"""Rule 3: `\(` `\)` -> `(` `)`."""
    return [unescape_parens(tag) for tag in tags]


def escape_parens_all(tags: Iterable[str]) -> list[str]:
    r"""Rule 3 with --escape-parens: `(` `)` -> `\(` `\)` (kaomoji left alone)."""
    return [tag if tag in KAOMOJI else escape_parens(tag) for tag in tags]


def parse_replacement(pair: str) -> tuple[str, str]:
    r"""`OLD=NEW` -> (OLD, NEW), split at the first `=` that is not `\=` and leaves OLD non-empty.

    A kaomoji OLD needs no escape: `=_==smile` splits after `=_=`.
    """
    def old_at(i: int) -> str:
        return pair[:i].replace("\\=", "=").strip()

    splits = [i for i, ch in enumerate(pair) if ch == "=" and i > 0 and pair[i - 1] != "\\" and old_at(i)]
    if not splits:
        raise ConfigError(f"replace {pair!r}: write OLD=NEW (an empty NEW removes the tag; \\= for a literal =)")
    at = next((i for i in splits if old_at(i) in KAOMOJI), splits[0])
    return old_at(at), pair[at + 1:].replace("\\=", "=").strip()


class Replacements:
    """Rule 4's table: the first pair whose OLD matches a tag gives its new tags (none: removed)."""

    def __init__(self, pairs: Iterable[tuple[str, str]], *, keep_underscores: bool = False,
                 escape: bool = False) -> None:
        self.rules: list[tuple[TagPattern, list[str]]] = []
        for old, new in pairs:
            new_tags = parse_caption(new)
            if not keep_underscores:
                new_tags = underscores_to_spaces_all(new_tags)
            new_tags = escape_parens_all(new_tags) if escape else unescape_parens_all(new_tags)
            self.rules.append((TagPattern(old), new_tags))
        self._cache: dict[str, list[str] | None] = {}

    def lookup(self, tag: str) -> list[str] | None:
        if tag not in self._cache:
            self._cache[tag] = next((new for pattern, new in self.rules if pattern.matches(tag)), None)
        return self._cache[tag]

    def apply(self, tags: Iterable[str]) -> list[str]:
        out: list[str] = []
        for tag in tags:
            new = self.lookup(tag)
            if new is None:
                out.append(tag)
            else:
                out.extend(new)
        return out


def canonical_tags(tags: Iterable[str], graph: TagGraph, *, keep_underscores: bool = False,
                   escape: bool = False) -> list[str]:
    """Rule 6: an aliased tag becomes its consequent, spelled as the other rules spell tags."""
    out: list[str] = []
    for tag in tags:
        new = graph.canonical(match_key(tag))
        if new is None:
            out.append(tag)
            continue
        spelled = new if keep_underscores else underscores_to_spaces(new)
        out.append(escape_parens(spelled) if escape and spelled not in KAOMOJI else spelled)
    return out


def remove_implied(tags: Sequence[str], graph: TagGraph) -> list[str]:
    """Rule 7: drop a tag that another present tag implies (`cat ears` drops `animal ears`)."""
    keys = [match_key(tag) for tag in tags]
    implied: set[str] = set()
    for key in set(keys):
        implied |= graph.implied_by(key)
    return [tag for tag, key in zip(tags, keys, strict=True) if key not in implied]


def remove_redundant(tags: Sequence[str], *, use_implications: bool = True) -> list[str]:
    """Rule 8: drop a tag that another tag ends with as whole words, or that another tag implies."""
    keys = [match_key(tag) for tag in tags]
    present = set(keys)
    implied: set[str] = set()
    if use_implications:
        for key in present:
            implied |= implied_by(key)
    suffixes: set[str] = set()
    for key in present:
        words = key.split(" ")
        for i in range(1, len(words)):
            suffixes.add(" ".join(words[i:]))
    return [tag for tag, key in zip(tags, keys, strict=True) if key not in suffixes and key not in implied]


def deduplicate(tags: Iterable[str]) -> list[str]:
    """Rule 9: keep the first occurrence of each tag."""
    return list(dict.fromkeys(tags))


def place_trigger(tags: Iterable[str], trigger: str | None, remove_names: Iterable[str] = ()) -> list[str]:
    """Rule 10: drop the full names (any case, spaces or underscores), then put the trigger first."""
    drop = {match_key(name) for name in remove_names if name.strip()}
    if trigger:
        drop.add(match_key(trigger))
    kept = [tag for tag in tags if match_key(tag) not in drop] if drop else list(tags)
    return [trigger, *kept] if trigger else kept


def sort_tags(tags: Sequence[str], how: str | None, keep_tokens: int = 0,
              frequency: Counter[str] | None = None) -> list[str]:
    """Rule 11: sort the tags after the first keep_tokens (alpha, or dataset frequency then alpha)."""
    if how is None:
        return list(tags)
    head, tail = list(tags[:keep_tokens]), tags[keep_tokens:]
    if how == "alpha":
        return head + sorted(tail, key=lambda t: (t.casefold(), t))
    if how == "frequency":
        counts = frequency or Counter()
        return head + sorted(tail, key=lambda t: (-counts[t], t.casefold(), t))
    raise ConfigError(f"sort = {how!r} is not one of {', '.join(SORT_CHOICES)}")


def limit_tags(tags: Sequence[str], max_tags: int | None) -> list[str]:
    """Rule 12: keep the first max_tags tags."""
    return list(tags if max_tags is None else tags[:max_tags])


def lowercase_tags(tags: Iterable[str]) -> list[str]:
    """Rule 13: lowercase (duplicates that lowercasing creates are dropped, first kept)."""
    return deduplicate(tag.lower() for tag in tags)


# -- the pipeline --------------------------------------------------------------------------------

class Cleaner:
    """The rules of one CleanConfig, compiled once and applied to many captions."""

    def __init__(self, config: CleanConfig, graph: TagGraph | None = None) -> None:
        self.config = config
        if graph is None and (config.canonical or config.remove_implied):
            graph = bundled_graph()  # clean_dataset passes the dataset's fetched graph
        self.graph = graph
        pairs = [parse_replacement(p) for p in config.replace]
        self.replacements = Replacements(pairs, keep_underscores=config.keep_underscores,
                                         escape=config.escape_parens) if pairs else None
        self.removals = PatternSet(config.remove)

    def before_sort(self, tags: Iterable[str]) -> list[str]:
        """Rules 1-10 (they need nothing from other captions)."""
        c = self.config
        out = normalize_tags(tags)
        if not c.keep_underscores:
            out = underscores_to_spaces_all(out)
        out = escape_parens_all(out) if c.escape_parens else unescape_parens_all(out)
        if self.replacements is not None:
            out = self.replacements.apply(out)
        if self.removals:
            out = remove_matching(out, self.removals)
        if c.canonical and self.graph is not None:
            out = canonical_tags(out, self.graph, keep_underscores=c.keep_underscores, escape=c.escape_parens)
        if c.remove_implied and self.graph is not None:
            out = remove_implied(out, self.graph)
        if c.remove_redundant:
            out = remove_redundant(out)
        out = deduplicate(out)
        if c.trigger or c.remove_name:
            out = place_trigger(out, c.trigger, c.remove_name)
        return out

    def after_sort(self, tags: Sequence[str], frequency: Counter[str] | None = None) -> list[str]:
        """Rules 11-13."""
        c = self.config
        out = sort_tags(tags, c.sort, c.effective_keep_tokens, frequency)
        out = limit_tags(out, c.max_tags)
        if c.lowercase:
            out = lowercase_tags(out)
        return out

    def clean_all(self, captions: Sequence[Sequence[str]]) -> list[list[str]]:
        """Clean many captions together (frequency sorting counts tags across all of them)."""
        staged = [self.before_sort(tags) for tags in captions]
        frequency: Counter[str] | None = None
        if self.config.sort == "frequency":
            frequency = Counter()
            for tags in staged:
                frequency.update(set(tags))
        return [self.after_sort(tags, frequency) for tags in staged]


def clean_dataset(dataset: Dataset | str | Path, config: CleanConfig, *, dry_run: bool = False,
                  caption_extension: str = DEFAULT_CAPTION_EXTENSION, command: str = "clean",
                  where: str | Query | None = None) -> EditReport:
    """Clean every caption file of a dataset (or those the `where` QUERY selects, e.g.
    `concept:5_alice`); write only changed ones, as one journal operation.

    Images without a caption file are left alone (clean never creates captions).
    """
    from prep.tag_stats import check_query_concepts

    scan = scan_dataset(dataset, caption_extension)
    query = where if isinstance(where, Query) else parse_query(where)
    check_query_concepts(query, scan)
    report = EditReport(dry_run=dry_run)
    with bind_query(query, scan.root) as bound:
        records = [r for r in read_captions(scan.entries, report.warnings)
                   if r.exists and (not (query.terms or query.tag_filters) or bound.matches(r))]
    graph = None
    if config.canonical or config.remove_implied:
        graph = dataset_graph(scan.root)
        if config.canonical and not graph.aliases:
            report.warnings.append("--canonical: no fetched aliases (run `lorakit implications fetch DATASET`); "
                                   "nothing to replace")
        report.warnings.append(graph.source)
    cleaned = Cleaner(config, graph).clean_all([r.tags for r in records])
    by_record = {id(r): tags for r, tags in zip(records, cleaned, strict=True)}
    with gc_paused():
        apply_changes(scan.root, command, records, lambda r: by_record[id(r)], report)
    for change in report.changes:
        if not change.after:
            report.warnings.append(f"{change.path}: every tag was removed; the caption is now empty")
    return report
