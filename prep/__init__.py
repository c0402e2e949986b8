"""lorakit's shared core and its dataset stages (files stay flat; this docstring is the layout).

Kernel: what every lorakit package (booru, tagger, trainer, tui) builds on. It imports nothing
else of lorakit but the kernel itself.
    dataset        Dataset / Concept / Item: the kohya layout `<repeats>_<name>/` image + caption
    folder_scan    the one dataset scan (string names; under Dataset.load, caption_set, validate)
    captions       caption parsing and formatting, tag spelling keys, unique_tags
    caption_set    the caption engine: fast scan, read, change and write of many captions
    image_io       the one safe image open (pixel limit, one-line error), flatten, reduced decode
    images         which file extensions are images (kohya's and the unsupported ones)
    fsio           atomic writes, the atomic swap, file digests
    journal        the undo journal (exact, confined, one writer): journal_write (Operation),
                   journal_undo (checked, restartable revert), journal_lock (the one-writer lock)
    provenance     where each caption tag came from (.lorakit/tags.sqlite, kept in step by the journal)
    safe_text      printable: control characters in printed paths and values escaped
    config         option dataclasses, CLI flags, and the one lorakit.toml options loader
    events         Started / Advanced / Warned / Finished; errors   UserError and PrepError
    cores, clip_tokens, tag_vocabulary, toml_edit, buckets, phash, hash_index, png_strips, clip_embed
    demo_dataset   the generated dataset `lorakit demo` starts from

Stages: one module (or sub-package) per dataset step; each is a stage function (a generator of
events, or a report) plus its options dataclass, exported here by name (imported on first use):
    clean          CleanConfig, clean_dataset, Cleaner (one caption: Cleaner(c).clean_all([tags]))
    tag_edit       edit_dataset, find_items (the `tags` bulk edits: add, remove, replace, front)
    tag_query      parse_query, remove_matching (QUERY terms and wildcards)
    tag_stats      count_tags (and tag_stats.tag_stats)
    concept_words  find_candidates, check_word (rare single-token trigger words)
    concept        ConceptConfig, apply_concept
    validate       ValidateOptions, iter_validate, load_validate_options (+ validation/)
    fix            FixOptions, iter_fix, plan_fixes (sub-package)
    dedupe         DedupeOptions, find_duplicates, apply_dedupe
    implications   tag implication graphs (fetched or bundled) for clean's rules
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("lorakit")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

PROJECT_URL = "https://github.com/lorakit/lorakit"

# Stage entry points: name -> module. Imported lazily so `import prep` stays cheap for every package.
# (`validate` and `tag_stats` are also module names, so those two functions are reached as
# prep.validate.validate and prep.tag_stats.tag_stats.)
STAGE_EXPORTS: dict[str, str] = {
    "CleanConfig": "prep.clean", "clean_dataset": "prep.clean", "Cleaner": "prep.clean",
    "edit_dataset": "prep.tag_edit", "find_items": "prep.tag_edit",
    "parse_query": "prep.tag_query", "remove_matching": "prep.tag_query",
    "count_tags": "prep.tag_stats",
    "find_candidates": "prep.concept_words", "check_word": "prep.concept_words",
    "ConceptConfig": "prep.concept", "apply_concept": "prep.concept",
    "ValidateOptions": "prep.validate", "iter_validate": "prep.validate",
    "load_validate_options": "prep.validate",
    "FixOptions": "prep.fix", "iter_fix": "prep.fix", "plan_fixes": "prep.fix",
    "DedupeOptions": "prep.dedupe", "find_duplicates": "prep.dedupe", "apply_dedupe": "prep.dedupe",
}

__all__ = ["PROJECT_URL", "STAGE_EXPORTS", "__version__", *STAGE_EXPORTS]


def __getattr__(name: str) -> Any:
    module = STAGE_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'prep' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
