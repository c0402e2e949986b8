"""`tag_dataset`: the tagging stage, a generator of prep.events writing captions through one journal operation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prep.captions import CaptionEncodingError, format_caption, read_caption
from prep.dataset import Dataset, Item
from prep.events import Advanced, Event, Finished, Started, Warned
from prep.provenance import stored_predictions
from tagger.caption_writer import CaptionWriter, WriteCounts
from tagger.compose import CaptionStyle, caption_tags, combine, split_tag_list, with_rating
from tagger.config import TagConfig
from tagger.errors import TaggerError
from tagger.families import FAMILIES
from tagger.label_formats import read_model_labels
from tagger.labels import Labels
from tagger.models import ModelFiles, resolve_model
from tagger.pipeline import batches, default_workers, prepare_images
from tagger.session import DEFAULT_BATCH, TaggerSession, check_label_count, open_session
from tagger.thresholds import Thresholds, predict

STAGE = "tag"


@dataclass
class ImageResult:
    path: str
    rating: str
    tags: list[tuple[str, float]]
    caption: str | None = None  # what was (or, in a dry run, would be) written; None when left alone

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "rating": self.rating, "tags": [[t, round(p, 6)] for t, p in self.tags]}


@dataclass
class TagSummary(WriteCounts):
    provider: str = ""
    results: list[ImageResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "images": self.images,
            "written": self.written,
            "skipped": self.skipped,
            "provider": self.provider,
            "results": [r.to_dict() for r in self.results],
            "unchanged": self.unchanged,
            "failed": self.failed,
            "errors": self.errors,
            "model": self.model,
            "dry_run": self.dry_run,
            "would_write": self.would_write,
        }


@dataclass
class LoadedModel:
    files: ModelFiles
    labels: Labels
    session: TaggerSession


def load_model(config: TagConfig) -> LoadedModel:
    """Resolve, read and check the model once, before any image is touched."""
    files = resolve_model(config.model, config.revision)
    labels, side = read_model_labels(files.family, files.labels_path)
    session = open_session(files.model_path, config.device, config.threads, label_count=len(labels),
                           family=files.family)
    if side is not None and side != session.layout.side:
        raise TaggerError(f"{files.labels_path}: names an input side of {side} but the model takes "
                          f"{session.layout.side}; the files belong to different models")
    check_label_count(session, len(labels), files.labels_path)
    return LoadedModel(files, labels, session)


def _check_config(config: TagConfig) -> None:
    for name in ("batch_size", "max_tags"):
        value = getattr(config, name)
        if value is not None and value < (1 if name == "batch_size" else 0):
            raise TaggerError(f"--{name.replace('_', '-')} {value}: must be at least {1 if name == 'batch_size' else 0}")
    for name in ("general_threshold", "character_threshold"):
        value = getattr(config, name)
        if value is not None and not 0.0 <= value <= 1.0:
            raise TaggerError(f"--{name.replace('_', '-')} {value}: must be between 0 and 1")
    if config.workers is not None and config.workers < 0:
        raise TaggerError(f"--workers {config.workers}: must be 0 or more")


def _existing_tags(item: Item) -> list[str] | None:
    """The caption's tags ([] when absent or empty), or None when it cannot be read."""
    try:
        return read_caption(item.caption_path)
    except FileNotFoundError:
        return []
    except (CaptionEncodingError, OSError):
        return None


def tag_dataset(root: str | Path, config: TagConfig, *, dry_run: bool = False, collect: bool = False,
                model: LoadedModel | None = None) -> Iterator[Event]:
    """Tag the images of a dataset or bare folder; yields events, Finished(summary=TagSummary).

    collect: keep every image's result in the summary (for --json and --dry-run output).
    """
    started = time.perf_counter()
    _check_config(config)
    dataset = Dataset.load(root, config.caption_extension, allow_bare=True, recursive=config.recursive)
    model = model or load_model(config)
    session, labels = model.session, model.labels
    summary = TagSummary(images=len(dataset), provider=session.provider, model=model.files.name, dry_run=dry_run)
    thresholds = Thresholds(
        general=config.general_threshold if config.general_threshold is not None else model.files.general_threshold,
        character=(config.character_threshold if config.character_threshold is not None
                   else model.files.character_threshold),
        general_mcut=config.mcut,
        character_mcut=config.character_mcut,
    )
    style = CaptionStyle(
        characters=config.characters, rating=config.rating, max_tags=config.max_tags,
        exclude=split_tag_list(config.exclude), always_first=split_tag_list(config.always_first),
        keep_underscores=config.keep_underscores, escape_parens=config.escape_parens,
    )
    yield Started(STAGE, len(dataset))

    # Decide from the captions alone which images need the model, so skipped ones are never decoded.
    todo: list[Item] = []  # no caption text kept: a 100,000-image folder must not pile up in memory
    for item in dataset.items:
        existing = _existing_tags(item)
        if existing is None:
            summary.skipped += 1
            summary.errors.append({"path": dataset.relative(item.caption_path), "error": "caption is not readable UTF-8"})
            yield Warned("caption is not readable UTF-8 text; image skipped", str(item.caption_path))
            yield Advanced(1, dataset.relative(item.image))
        elif config.mode == "skip" and existing:
            summary.skipped += 1
            yield Advanced(1, dataset.relative(item.image))
        else:
            todo.append(item)

    batch_size = session.layout.fixed_batch or config.batch_size or DEFAULT_BATCH.get(session.provider, 8)
    if session.layout.fixed_batch and config.batch_size and config.batch_size != session.layout.fixed_batch:
        yield Warned(f"the model takes batches of exactly {session.layout.fixed_batch}; --batch-size "
                     f"{config.batch_size} ignored")
    workers = config.workers if config.workers is not None else default_workers()
    if config.workers is None and len(todo) < 2 * workers:
        workers = 0  # a handful of images: starting threads costs more than it saves
    side = session.layout.side
    prepared = prepare_images([item.image for item in todo], side, workers, window=batch_size + 2 * workers,
                              prepare=FAMILIES[model.files.family].prepare)

    known: dict[str, set[tuple[str, str]]] = {}  # the store's (image, model) pairs, read once when needed
    with CaptionWriter(dataset.root, _command_line(config)) as writer:
        for batch in batches(prepared, batch_size, side):
            for failure in batch.failed:
                summary.failed += 1  # counted once: as unreadable, not also as skipped
                rel = dataset.relative(failure.path)
                summary.errors.append({"path": rel, "error": failure.error or "unreadable"})
                yield Warned(f"{failure.error}; skipped", str(failure.path))
                yield Advanced(1, rel)
            if not batch.items:
                continue
            probs = session.run(batch.tensor)
            for prepared_item, row in zip(batch.items, probs, strict=True):
                item = todo[prepared_item.index]
                existing = _existing_tags(item)
                if existing is None:  # became unreadable since the scan
                    summary.skipped += 1
                    yield Advanced(1, dataset.relative(item.image))
                    continue
                pred = predict(row, labels, thresholds)
                tagged = caption_tags(pred, style)
                new = with_rating([t for t, _ in tagged], pred, style)
                final = combine(existing, new, config.mode)
                rel = dataset.relative(item.image)
                result = ImageResult(rel, pred.rating, tagged)
                if not final:
                    summary.unchanged += 1
                    if final is not None:
                        yield Warned("no tag above the thresholds; caption not written", str(item.image))
                elif final == existing:
                    summary.unchanged += 1
                    if not dry_run and (rel_caption := dataset.relative(item.caption_path)) \
                            and not stored_predictions(dataset.root, rel_caption, model.files.name, known):
                        # The caption stays; this model's confidences, new to the store, still go there.
                        writer.keep_predictions(item.caption_path,
                                                (model.files.name, _prediction_rows(row, labels, style)))
                else:
                    result.caption = format_caption(final)
                    writer.put(summary, item.caption_path, result.caption, _sources(pred, tagged, new, model.files.name),
                               (model.files.name, _prediction_rows(row, labels, style)))
                if collect:
                    summary.results.append(result)
                yield Advanced(1, rel)
    summary.seconds = time.perf_counter() - started
    yield Finished(summary)


# Confidences kept per label for --rethreshold: anything lower would never pass a sane threshold.
PREDICTION_FLOOR = 0.05


def _sources(pred, tagged: list[tuple[str, float]], written: list[str], model_name: str) -> dict:
    source = f"tagger:{model_name}"
    found: dict[str, tuple[str, float | None]] = {tag: (source, p) for tag, p in tagged}
    for tag in written:  # the rating tag
        found.setdefault(tag, (source, pred.rating_p))
    return found


def _prediction_rows(row, labels: Labels, style: CaptionStyle) -> list[tuple[str, int, float]]:
    """(caption spelling, category, confidence) of every general/character label over the floor."""
    import numpy as np

    probs = np.asarray(row, dtype=np.float32)
    rows = []
    for columns in (labels.general, labels.character):
        if columns.size == 0:
            continue
        keep = columns[probs[columns] >= PREDICTION_FLOOR]
        rows.extend((style.spell(labels.names[i]), int(labels.categories[i]), float(probs[i])) for i in keep)
    return rows


def _command_line(config: TagConfig) -> str:
    return f"tag --model {config.model} --mode {config.mode}"
