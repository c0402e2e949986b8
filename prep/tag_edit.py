"""`lorakit tags`: bulk tag edits (add, remove, replace, move-front) and find, on the captions a QUERY selects.

Edits are pure functions on tag lists returning the new list. A caption whose tag list does not
change is not rewritten (not even reformatted). An image without a caption file is treated as
having its effective caption (its concept name, as kohya trains it): `find`/`--where` see that, and
`add` creates the caption file from it; the other edits leave such images alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prep.caption_set import (
    CaptionRecord,
    EditReport,
    apply_changes,
    gc_paused,
    iter_records,
    read_captions,
    scan_dataset,
)
from prep.captions import parse_caption, unique_tags
from prep.dataset import DEFAULT_CAPTION_EXTENSION, Dataset
from prep.tag_query import (
    PatternSet,
    Query,
    QueryError,
    TagPattern,
    bind_query,
    match_key,
    parse_query,
    remove_matching,
)
from prep.tag_stats import check_query_concepts


def split_tags(values: Iterable[str]) -> list[str]:
    """Tags given on a command line (`a, b` as one argument is two tags); QueryError when none."""
    tags = [tag for value in values for tag in parse_caption(value)]
    if not tags:
        raise QueryError("no tag given; pass at least one tag")
    return tags


# -- the edits -------------------------------------------------------------------------------------

def add_tags(tags: Sequence[str], new: Sequence[str], *, front: bool = False) -> list[str]:
    """Add the tags not already present (by spelling key), at the end or, with front, at the start."""
    added = unique_tags(new, match_key, present=tags)
    return [*added, *tags] if front else [*tags, *added]


remove_tags = remove_matching  # one function for clean's remove rule and `tags remove`


def replace_tags(tags: Sequence[str], old: TagPattern, new: Sequence[str]) -> list[str]:
    """Put `new` where the first tag matching `old` was; drop every match; never duplicate a tag."""
    kept = [t for t in tags if not old.matches(t)]
    out: list[str] = []
    inserted = False
    for tag in tags:
        if not old.matches(tag):
            out.append(tag)
        elif not inserted:
            inserted = True
            out.extend(unique_tags(new, match_key, present=kept))
    return out


def move_front(tags: Sequence[str], patterns: Sequence[TagPattern]) -> list[str]:
    """Move the tags matching the patterns to the front, in the patterns' order."""
    front: list[str] = []
    taken: set[int] = set()
    for pattern in patterns:
        for i, tag in enumerate(tags):
            if i not in taken and pattern.matches(tag):
                taken.add(i)
                front.append(tag)
    return front + [tag for i, tag in enumerate(tags) if i not in taken]


# -- running an edit over a dataset --------------------------------------------------------------

TagEdit = Callable[[list[str]], list[str]]


@dataclass
class EditSpec:
    """One bulk edit: what it does to a tag list, and whether it may create missing captions."""

    name: str
    apply: TagEdit
    creates_captions: bool = False
    # Cheap test on a caption's raw text: False means the edit cannot change it (it is not parsed).
    prefilter: Callable[[str], bool] | None = None


def add_edit(tags: Iterable[str], *, front: bool = False) -> EditSpec:
    new = split_tags(tags)
    return EditSpec("add", lambda t: add_tags(t, new, front=front), creates_captions=True)


def remove_edit(patterns: Iterable[str]) -> EditSpec:
    pattern_set = PatternSet(split_patterns(patterns))
    return EditSpec("remove", lambda t: remove_tags(t, pattern_set), prefilter=pattern_set.text_may_match)


def replace_edit(old: str, new: str) -> EditSpec:
    pattern = TagPattern(old)
    new_tags = parse_caption(new)
    return EditSpec("replace", lambda t: replace_tags(t, pattern, new_tags))


def move_front_edit(patterns: Iterable[str]) -> EditSpec:
    compiled = [TagPattern(p) for p in split_patterns(patterns)]
    return EditSpec("move-front", lambda t: move_front(t, compiled))


def split_patterns(values: Iterable[str]) -> list[str]:
    """Patterns given on a command line; a comma separates patterns as it separates tags."""
    return split_tags(values)


def find_items(dataset: Dataset | str | Path, query: str | Query | None, *,
               caption_extension: str = DEFAULT_CAPTION_EXTENSION,
               warnings: list[str] | None = None) -> list[CaptionRecord]:
    """The items whose (effective) tags match the query, in dataset order."""
    scan = scan_dataset(dataset, caption_extension)
    parsed = query if isinstance(query, Query) else parse_query(query)
    check_query_concepts(parsed, scan)
    records = read_captions(scan.entries, warnings)
    with bind_query(parsed, scan.root) as bound:
        return [r for r in records if bound.matches(r)]


def edit_dataset(dataset: Dataset | str | Path, edit: EditSpec, *, where: str | Query | None = None,
                 dry_run: bool = False, caption_extension: str = DEFAULT_CAPTION_EXTENSION,
                 command: str | None = None) -> EditReport:
    """Apply one edit to every caption the `where` query selects, as one journal operation."""
    scan = scan_dataset(dataset, caption_extension)
    query = where if isinstance(where, Query) else parse_query(where)
    check_query_concepts(query, scan)
    report = EditReport(dry_run=dry_run)
    records = iter_records(scan.entries, report.warnings, edit.prefilter)
    if not edit.creates_captions:
        records = (r for r in records if r.exists)

    # source:/confidence terms pick the tags remove and replace touch; for add and move-front
    # (which act on a whole caption) they only select the images, as in find.
    picks = edit.name in ("remove", "replace")
    bound = bind_query(query, scan.root)

    def apply(record: CaptionRecord) -> list[str] | None:
        if record.tags is None:  # the prefilter showed the edit cannot change this caption
            return None
        if (query.terms or query.tag_filters) and not bound.matches(record):
            return None
        if picks and bound.picks_tags:
            if not record.exists:
                return None
            picked = bound.picked(record)
            # Each picked tag goes through the edit alone; the others stay as they are.
            new = [out for tag in record.tags for out in (edit.apply([tag]) if tag in picked else [tag])]
            return None if new == record.tags else new
        new = edit.apply(list(record.effective_tags()))
        if record.exists and new == record.tags:
            return None
        return new

    try:
        with gc_paused():
            apply_changes(scan.root, command or f"tags {edit.name}", records, apply, report)
    finally:
        bound.close()
    return report

