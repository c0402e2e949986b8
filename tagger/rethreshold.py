"""`lorakit tag DATASET --rethreshold`: re-apply thresholds to the stored confidences, without the model.

A tagger run keeps every label's confidence per model in `.lorakit/tags.sqlite` (prep.provenance).
Here, per image: the tagger-sourced tags leave the caption, the stored predictions of the chosen
model(s) (combined with `--ensemble mean|max` when several runs are kept) pass the thresholds again
(`--mcut` per image), and those tags are added after the booru, user and command tags, which stay
as they are. A caption edited by hand since lorakit wrote it counts as `user` and is left alone.
One journaled operation: `lorakit undo` restores captions and store together.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from prep.captions import CaptionEncodingError, decode_caption_bytes, format_caption, parse_caption
from prep.dataset import Dataset
from prep.events import Advanced, Event, Finished, Started
from prep.provenance import USER, TagStore, caption_hash, image_key, read_store, source_kind
from tagger.caption_writer import CaptionWriter, WriteCounts
from tagger.config import TagConfig
from tagger.errors import TaggerError
from tagger.labels import CATEGORY_CHARACTER, CATEGORY_GENERAL
from tagger.models import DEFAULT_CHARACTER_THRESHOLD, DEFAULT_MODEL, FALLBACK_GENERAL_THRESHOLD, known_model
from tagger.thresholds import CHARACTER_MCUT_FLOOR, mcut_threshold

ENSEMBLES = ("mean", "max")


@dataclass
class RethresholdSummary(WriteCounts):
    models: list[str] = field(default_factory=list)
    results: list[dict[str, object]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"images": self.images, "written": self.written, "unchanged": self.unchanged, "skipped": self.skipped,
                "models": self.models, "dry_run": self.dry_run, "would_write": self.would_write,
                "results": self.results}


def choose_models(store: TagStore, config: TagConfig, ensemble: str | None) -> list[str]:
    stored = store.models()
    if not stored:
        raise TaggerError(f"{store.root}: no tagger confidences stored; run lorakit tag once (with any model) first")
    if ensemble:
        return stored
    if config.model != DEFAULT_MODEL or len(stored) == 1:
        wanted = [m for m in stored if m == config.model or Path(m).name == Path(config.model).name]
        if wanted:
            return wanted[:1]
        if len(stored) == 1 and config.model == DEFAULT_MODEL:
            return stored
        raise TaggerError(f"--model {config.model}: no confidences stored for it; stored: {', '.join(stored)}")
    raise TaggerError(f"confidences of {len(stored)} models are stored ({', '.join(stored)}); pick one with "
                      "--model or combine them with --ensemble mean|max")


def _threshold(value: float | None, models: list[str], general: bool) -> float:
    if value is not None:
        return value
    found = [known_model(m) for m in models]
    if general:
        picks = [k.general_threshold if k else FALLBACK_GENERAL_THRESHOLD for k in found]
    else:
        picks = [k.character_threshold if k else DEFAULT_CHARACTER_THRESHOLD for k in found]
    return float(np.mean(picks))


def combine(rows: list[tuple[str, str, int, float]], models: list[str], how: str) -> dict[str, tuple[int, float]]:
    """{tag: (category, combined confidence)}; a model that did not store a tag counts it as 0."""
    by_tag: dict[str, tuple[int, list[float]]] = {}
    for model, tag, category, p in rows:
        if model in models:
            by_tag.setdefault(tag, (category, []))[1].append(p)
    out = {}
    for tag, (category, values) in by_tag.items():
        padded = values + [0.0] * (len(models) - len(values))
        out[tag] = (category, float(max(padded) if how == "max" else np.mean(padded)))
    return out


def rethreshold(root: str | Path, config: TagConfig, *, ensemble: str | None = None, dry_run: bool = False,
                collect: bool = False) -> Iterator[Event]:
    """Re-apply thresholds from the store; yields events, Finished(RethresholdSummary)."""
    started = time.perf_counter()
    if ensemble is not None and ensemble not in ENSEMBLES:
        raise TaggerError(f"--ensemble {ensemble}: must be mean or max")
    dataset = Dataset.load(root, config.caption_extension, allow_bare=True, recursive=config.recursive)
    store = read_store(dataset.root)
    if store is None:
        raise TaggerError(f"{dataset.root}: no .lorakit/tags.sqlite; run lorakit tag first (it stores confidences)")
    try:
        with CaptionWriter(dataset.root, _command_line(config, ensemble)) as writer:
            models = choose_models(store, config, ensemble)
            general_t = _threshold(config.general_threshold, models, True)
            character_t = _threshold(config.character_threshold, models, False)
            source = f"tagger:{models[0]}" if len(models) == 1 else f"tagger:{ensemble}({'+'.join(models)})"
            summary = RethresholdSummary(images=len(dataset), models=models, dry_run=dry_run)
            yield Started("tag", len(dataset))
            listing: dict[str, dict[str, str]] = {}  # image_key's folder listings, read once each
            for item in dataset.items:
                rel = dataset.relative(item.image)
                image = image_key(dataset.root, dataset.relative(item.caption_path), listing)
                try:
                    data = item.caption_path.read_bytes()
                    tags = parse_caption(decode_caption_bytes(data))
                except FileNotFoundError:
                    data, tags = b"", []
                except (OSError, CaptionEncodingError):
                    summary.skipped += 1
                    yield Advanced(1, rel)
                    continue
                rows = store.predictions(image, models)
                stored_hash = store.stored_hash(image)
                if not rows or (stored_hash is not None and stored_hash != caption_hash(data)):
                    summary.skipped += 1  # never tagged, or edited by hand since: the user's caption stays
                    yield Advanced(1, rel)
                    continue
                sources = store.sources(image)
                kept = [t for t in tags if source_kind(sources[t].source if t in sources else USER) != "tagger"]
                pool = combine(rows, models, ensemble or "mean")
                general = {t: p for t, (c, p) in pool.items() if c == CATEGORY_GENERAL}
                chars = {t: p for t, (c, p) in pool.items() if c == CATEGORY_CHARACTER}
                g_t, c_t = general_t, character_t
                if config.mcut and len(general) > 1:
                    g_t = mcut_threshold(np.asarray(list(general.values()), dtype=np.float32))
                if config.character_mcut and len(chars) > 1:
                    c_t = max(CHARACTER_MCUT_FLOOR, mcut_threshold(np.asarray(list(chars.values()), dtype=np.float32)))
                chosen = sorted(((t, p) for t, p in chars.items() if p > c_t), key=lambda x: -x[1]) if config.characters \
                    else []
                chosen += sorted(((t, p) for t, p in general.items() if p > g_t), key=lambda x: -x[1])
                present = set(kept)
                added = [(t, p) for t, p in chosen if t not in present]
                final = kept + [t for t, _ in added]
                if collect:
                    summary.results.append({"path": rel, "tags": [[t, round(p, 6)] for t, p in added]})
                if final == tags:
                    summary.unchanged += 1
                else:
                    writer.put(summary, item.caption_path, format_caption(final), {t: (source, p) for t, p in added})
                yield Advanced(1, rel)
    finally:
        store.close()
    summary.seconds = time.perf_counter() - started
    yield Finished(summary)


def _command_line(config: TagConfig, ensemble: str | None) -> str:
    extra = f" --ensemble {ensemble}" if ensemble else ""
    return f"tag --rethreshold{extra}" + (f" --general-threshold {config.general_threshold}"
                                          if config.general_threshold is not None else "")
