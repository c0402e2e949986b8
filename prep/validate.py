"""`lorakit validate`: check a kohya-layout dataset before hours of GPU time are spent on it.

Default mode reads image headers only; `deep` decodes every pixel in a process pool. Every finding
is a Problem with a code from `prep.validation.report.CODES`; the report's `to_dict()` is the
`--json` object of the CLI.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prep.buckets import parse_resolution
from prep.clip_tokens import MAX_TOKEN_LENGTHS, recommended_max_token_length
from prep.config import option
from prep.dataset import DEFAULT_CAPTION_EXTENSION, normalize_caption_extension
from prep.errors import DatasetNotFound, PrepError
from prep.events import Advanced, Event, Finished, Started, Warned
from prep.folder_scan import ConceptScan, FolderScan, TreeScan, scan_tree, suffix_of
from prep.images import FORMAT_EXTENSIONS, MAX_PIXELS
from prep.validation.bucket_report import BucketSettings, bucket_problems
from prep.validation.caption_checks import CaptionStats, check_folder_captions
from prep.validation.caption_rules import CONTRADICTORY_TAGS, DUPLICATE_CAPTION_IMAGES, CaptionRules
from prep.validation.duplicates import find_duplicates
from prep.validation.inspect import BOMB, CORRUPT, TRUNCATED, UNREADABLE, ImageInfo
from prep.validation.report import CODES, ConceptSummary, Problem, ValidationReport, display_name, problem
from prep.validation.runner import Inspection

__all__ = ["CODES", "Problem", "ValidateOptions", "ValidationReport", "iter_validate", "load_validate_options",
           "validate"]

STAGE = "validate"


@dataclass
class ValidateOptions:
    """How to validate; the `lorakit validate` flags come from these fields."""

    reg: Path | None = option(None, "regularization folder to check too (same layout; problems under reg/)")
    resolution: int = option(512, "warn about images whose shorter side is below this")
    max_token_length: int | None = option(
        None, "warn about captions longer than this many CLIP tokens", choices=MAX_TOKEN_LENGTHS)
    epochs: int = option(1, "epochs, for the total step count")
    batch_size: int = option(1, "batch size, for the step counts")
    deep: bool = option(False, "decode every image fully (finds truncated files; slower, uses all cores)")
    caption_extension: str = option(DEFAULT_CAPTION_EXTENSION, "extension of caption files")
    workers: int | None = option(None, "processes for --deep (default: one per core)", cli=False)
    trigger: str | None = option(None, "trigger word every training caption must hold (default: the "
                                       "workspace's [concept] trigger); see trigger-missing")
    trigger_concept: str | None = option(None, "the concept folder the trigger applies to (5_alice or alice; "
                                               "default: [concept] concept with its trigger; empty = all)")
    keep_tokens: int = option(0, "tags kept in place when shuffling (default: [train] keep_tokens); with 1 "
                                 "or more the trigger must be the first tag")
    contradictory_tags: list[list[str]] = option(
        default_factory=list, help="more groups of tags that exclude each other, added to the bundled table",
        cli=False)
    duplicate_caption_images: int = option(DUPLICATE_CAPTION_IMAGES, "report byte-identical captions shared "
                                           "by this many images or more (two alike are common; many are not)",
                                           cli=False)
    # The trainer's bucket settings; the CLI reads them from the workspace's [train] table.
    bucket_resolution: str | None = option(None, "bucket area as \"W,H\" (default: resolution square)", cli=False)
    enable_bucket: bool = option(True, "aspect-ratio bucketing on", cli=False)
    min_bucket_reso: int = option(256, "smallest bucket side", cli=False)
    max_bucket_reso: int = option(1024, "largest bucket side", cli=False)
    bucket_reso_steps: int = option(64, "bucket sides are multiples of this", cli=False)
    bucket_no_upscale: bool = option(False, "buckets never upscale", cli=False)

    def bucket_settings(self) -> BucketSettings | None:
        """The buckets to check against: [train] resolution, else --resolution; None when that is 0."""
        if not self.bucket_resolution and not self.resolution:
            return None
        resolution = parse_resolution(self.bucket_resolution or str(self.resolution))
        return BucketSettings(resolution, self.enable_bucket, self.min_bucket_reso, self.max_bucket_reso,
                              self.bucket_reso_steps, self.bucket_no_upscale)

    def caption_rules(self) -> CaptionRules:
        groups = list(CONTRADICTORY_TAGS) + [list(group) for group in self.contradictory_tags]
        return CaptionRules(groups, self.trigger or None, self.keep_tokens, self.duplicate_caption_images,
                            self.trigger_concept or None)


def validate(dataset: str | os.PathLike[str], options: ValidateOptions | None = None) -> ValidationReport:
    """Validate a dataset folder and return the report (raises DatasetNotFound when it is no folder)."""
    report = None
    for event in iter_validate(dataset, options):
        if isinstance(event, Finished):
            report = event.summary
    assert report is not None
    return report


def iter_validate(dataset: str | os.PathLike[str], options: ValidateOptions | None = None) -> Iterator[Event]:
    """Validate as a stream of events: Started, Advanced per image batch, Warned per problem,
    Finished(ValidationReport). Raises DatasetNotFound at once when a folder is missing."""
    options = options or ValidateOptions()
    _check_options(options)
    root = Path(dataset)
    if not root.is_dir():
        raise DatasetNotFound(f"{root}: not a folder; pass the dataset folder (DATASET/<repeats>_<name>/)")
    if options.reg is not None and not Path(options.reg).is_dir():
        raise DatasetNotFound(f"{options.reg}: regularization folder (--reg) not found or not a folder")
    return _validate_events(root, options)


def _check_options(options: ValidateOptions) -> None:
    for name in ("epochs", "batch_size", "duplicate_caption_images", "bucket_reso_steps"):
        value = getattr(options, name)
        if not isinstance(value, int) or value < 1:
            raise PrepError(f"--{name.replace('_', '-')} must be a positive whole number, not {value!r}")
    if not isinstance(options.resolution, int) or options.resolution < 0:
        raise PrepError(f"--resolution must be a whole number of pixels, not {options.resolution!r}")
    if options.max_token_length is not None and options.max_token_length not in MAX_TOKEN_LENGTHS:
        raise PrepError(f"--max-token-length must be one of 75, 150, 225, not {options.max_token_length!r}")
    if not isinstance(options.keep_tokens, int) or options.keep_tokens < 0:
        raise PrepError(f"--keep-tokens must be a whole number, not {options.keep_tokens!r}")
    if options.min_bucket_reso < 1 or options.max_bucket_reso < options.min_bucket_reso:
        raise PrepError(f"min_bucket_reso {options.min_bucket_reso} / max_bucket_reso {options.max_bucket_reso}: "
                        "need 1 <= min <= max")
    options.bucket_settings()  # a bad resolution fails here, before any file is read


def _validate_events(root: Path, options: ValidateOptions) -> Iterator[Event]:
    ext = normalize_caption_extension(options.caption_extension)
    trees = [scan_tree(str(root), "", ext, os.path.realpath(root))]  # notes symlinks leading out
    if options.reg is not None:
        trees.append(scan_tree(str(options.reg), "reg/", ext, os.path.realpath(options.reg)))
    problems: list[Problem] = []
    for tree in trees:
        problems.extend(_structure_problems(tree))
    emitted = 0

    def flush() -> Iterator[Warned]:
        nonlocal emitted
        for found in problems[emitted:]:
            yield Warned(f"{found.severity} {found.code}: {found.message}", found.path)
        emitted = len(problems)

    yield from flush()
    jobs = [(concept.scan, name) for tree in trees for concept in tree.concepts for name in concept.scan.images]
    yield Started(STAGE, len(jobs))
    inspection = Inspection([folder.path_of(name) for folder, name in jobs], deep=options.deep,
                            workers=options.workers)
    try:
        # With --deep the pool decodes meanwhile: captions are checked here, on the spare time.
        stats = CaptionStats()
        rules = options.caption_rules()
        summaries: list[list[ConceptSummary]] = []
        for tree in trees:
            tree_summaries = []
            tree_rules = None if tree.prefix else rules  # reg captions are generic by design
            for concept in tree.concepts:
                rules.enter_concept(concept.folder, concept.name)
                captioned, found = check_folder_captions(concept.scan, concept.name, ext,
                                                         options.max_token_length, stats, tree_rules)
                problems.extend(found)
                tree_summaries.append(_summary(concept, captioned))
            summaries.append(tree_summaries)
        problems.extend(rules.finish())
        yield from flush()
        infos: list[ImageInfo] = []
        for batch in inspection.batches():
            infos.extend(batch)
            yield Advanced(len(batch), display_name(jobs[len(infos) - 1][1]))
    finally:
        inspection.close()
    pixel_limit = _pixel_limit()
    for (folder, name), info in zip(jobs, infos, strict=True):
        problems.extend(_image_problems(folder, name, info, options, pixel_limit))
    yield from flush()

    problems.extend(_duplicate_problems(jobs, infos))
    sizes = [(folder.rel_of(name), info.width, info.height) for (folder, name), info in zip(jobs, infos, strict=True)
             if not info.failure]
    settings = options.bucket_settings()
    buckets, found = bucket_problems(sizes, settings, options.batch_size) if settings else ([], [])
    problems.extend(found)
    yield from flush()

    report = _build_report(root, summaries, problems, stats, options)
    report.buckets = buckets
    yield Finished(report)


def _structure_problems(tree: TreeScan) -> list[Problem]:
    """Problems of the folder layout: names, stray files, empty concepts, unreadable entries."""
    found: list[Problem] = []
    root = tree.root
    root_rel = root.rel or "."
    is_reg = bool(tree.prefix)
    if root.error:
        found.append(problem("unreadable", root_rel, f"cannot list the folder: {root.error}"))
        return found
    for name in tree.bad_folders:
        found.append(problem("bad-folder-name", root.rel_of(name),
                             "not a concept folder: name it <repeats>_<name>, e.g. 10_"
                             f"{_concept_suggestion(name)} (repeats is a positive whole number)"))
    for name in root.images:
        found.append(problem("stray-image", root.rel_of(name),
                             "an image outside any concept folder is not trained; move it into a "
                             "<repeats>_<name> folder"))
    for name in root.unsupported:
        found.append(problem("unsupported-format", root.rel_of(name), _unsupported_message(name)))
    for name, reason in root.unreadable:
        found.append(problem("unreadable", root.rel_of(name), f"cannot read: {reason}"))
    for scan in [root, *(c.scan for c in tree.concepts)]:
        for name in scan.outside:
            found.append(problem("symlink-outside", scan.rel_of(name), _OUTSIDE_MESSAGE))
    # An empty regularization folder is fine (the guide: regularization is optional).
    if not tree.concepts and not (is_reg and not root.images and not tree.bad_folders):
        where = "the regularization folder" if is_reg else "the dataset"
        stray = f"; {len(root.images)} image(s) lie directly in it" if root.images else ""
        found.append(problem("no-concepts", root_rel,
                             f"no concept folder (<repeats>_<name>, e.g. 10_mychar) in {where}{stray}"))
    for concept in tree.concepts:
        scan = concept.scan
        if scan.error:
            found.append(problem("unreadable", scan.rel, f"cannot list the folder: {scan.error}"))
            continue
        for name, reason in scan.unreadable:
            found.append(problem("unreadable", scan.rel_of(name), f"cannot read: {reason}"))
        for name in scan.unsupported:
            found.append(problem("unsupported-format", scan.rel_of(name), _unsupported_message(name)))
        if not scan.images:
            found.append(problem("empty-concept", scan.rel,
                                 "holds no image kohya reads (.png .jpg .jpeg .webp .bmp); add images or "
                                 "remove the folder"))
    return found


_OUTSIDE_MESSAGE = ("a symbolic link leading outside the dataset; the trainer reads it, but tag, tags, clean, fix "
                    "and dedupe skip it unless --follow-symlinks")


def _concept_suggestion(name: str) -> str:
    head, _sep, tail = name.partition("_")
    if head.strip().lstrip("-").isdigit():  # `10_`, `0_x`, `10`: keep the name part, or suggest one
        return tail.strip() or "name"
    return name.strip() or "name"


def _unsupported_message(name: str) -> str:
    return (f"kohya does not read {suffix_of(name)} images; convert it to .png, .jpg or .webp")


def _pixel_limit() -> float:
    from PIL import Image

    return min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or math.inf)


def _image_problems(folder: FolderScan, name: str, info: ImageInfo, options: ValidateOptions,
                    pixel_limit: float) -> list[Problem]:
    rel = folder.rel_of(name)
    if info.failure == UNREADABLE:
        return [problem("unreadable", rel, f"cannot read: {info.detail}")]
    if info.failure == TRUNCATED:
        return [problem("truncated-image", rel, f"the file is cut short ({info.detail}); the trainer would fail "
                                                "on it: download or export it again")]
    if info.failure in (CORRUPT, BOMB):
        what = "cannot be decoded" if options.deep and info.failure == CORRUPT else "cannot be opened as an image"
        return [problem("corrupt-image", rel, f"{what}: {info.detail}")]
    found: list[Problem] = []
    suffix = suffix_of(name)
    allowed = FORMAT_EXTENSIONS.get(info.format)
    if allowed is None or suffix not in allowed:
        should = sorted(allowed)[0] if allowed else ""
        rename = f"; rename it to {name[: len(name) - len(suffix)]}{should}" if should else ""
        found.append(problem("extension-mismatch", rel, f"the content is {info.format or 'unknown'}, "
                                                        f"not {suffix}{rename}"))
    if info.width * info.height > pixel_limit:
        found.append(problem("too-large", rel,
                             f"{info.width}x{info.height} is over lorakit's {pixel_limit:,}-pixel limit "
                             "(taggers and trainers would decode it whole); downscale it"))
    if info.has_alpha:
        found.append(problem("has-alpha", rel,
                             "has transparency; trainers drop the alpha channel, so the colour under "
                             "transparent pixels (often black) is what gets learned: flatten it onto a background"))
    if min(info.width, info.height) < options.resolution:
        found.append(problem("too-small", rel,
                             f"{info.width}x{info.height}: the shorter side is below the training "
                             f"resolution {options.resolution}, so it is upscaled (blurry)"))
    return found


def _duplicate_problems(jobs: list[tuple[FolderScan, str]], infos: list[ImageInfo]) -> list[Problem]:
    candidates = [(index, jobs[index][0].path_of(jobs[index][1]), info.file_size, info.head_hash)
                  for index, info in enumerate(infos) if info.failure != UNREADABLE and info.file_size > 0]
    found: list[Problem] = []
    for copy, original in find_duplicates(candidates):
        folder, name = jobs[copy]
        first_folder, first_name = jobs[original]
        found.append(problem("duplicate-image", folder.rel_of(name),
                             f"byte-identical to {first_folder.rel_of(first_name)}; delete one copy"))
    return found


def _summary(concept: ConceptScan, captioned: int) -> ConceptSummary:
    return ConceptSummary(display_name(concept.folder), display_name(concept.name), concept.repeats,
                          len(concept.scan.images), captioned)


def _build_report(root: Path, summaries: list[list[ConceptSummary]], problems: list[Problem],
                  stats: CaptionStats, options: ValidateOptions) -> ValidationReport:
    concepts = summaries[0]
    reg_concepts = summaries[1] if len(summaries) > 1 else []
    for group in (concepts, reg_concepts):
        total = sum(c.weighted for c in group)
        for concept in group:
            concept.share = concept.weighted / total if total else 0.0
    weighted = sum(c.weighted for c in concepts)
    steps_per_epoch = math.ceil(weighted / options.batch_size)
    has_reg = options.reg is not None
    ordered = sorted(problems, key=lambda p: (has_reg and (p.path == "reg" or p.path.startswith("reg/")),
                                              p.path, p.code))
    return ValidationReport(
        dataset=str(root), concepts=concepts, reg_concepts=reg_concepts, problems=ordered,
        steps_per_epoch=steps_per_epoch, total_steps=steps_per_epoch * options.epochs,
        batch_size=options.batch_size, epochs=options.epochs,
        longest_caption_tokens=stats.longest_tokens,
        recommended_max_token_length=recommended_max_token_length(stats.longest_tokens))


# The trainer's epochs when [train] sets neither max_train_epochs nor max_train_steps (trainer.run.plan_steps).
TRAIN_DEFAULT_EPOCHS = 10


# [train] keys validate reads as they are: the buckets and shuffling the run will use.
TRAIN_BUCKET_KEYS = ("keep_tokens", "enable_bucket", "min_bucket_reso", "max_bucket_reso", "bucket_reso_steps",
                     "bucket_no_upscale")


def load_validate_options(dataset: Path | None = None, args: Any = None, *,
                          cwd: Path | None = None) -> ValidateOptions:
    """`[validate]` of the nearest lorakit.toml, over what `[train]` will run (epochs, batch size, the
    shorter side of its resolution, its buckets and keep_tokens, caption extension, an existing reg
    folder) and the `[concept]` trigger, then the CLI flags."""
    from prep.config import find_workspace, load_options, rebase_path_fields

    workspace = find_workspace(dataset, cwd)
    train = workspace.table("train")
    defaults: dict[str, Any] = {}
    if workspace.path is not None and "train" in workspace.tables:
        if isinstance(train.get("max_train_epochs"), int):
            defaults["epochs"] = train["max_train_epochs"]
        elif train.get("max_train_steps") is None:
            defaults["epochs"] = TRAIN_DEFAULT_EPOCHS
        if isinstance(train.get("train_batch_size"), int):
            defaults["batch_size"] = train["train_batch_size"]
        sides = [s for s in str(train.get("resolution", "")).replace("x", ",").split(",") if s.strip()]
        if sides and all(s.strip().isdigit() for s in sides):
            defaults["resolution"] = min(int(s) for s in sides)
            defaults["bucket_resolution"] = ",".join(s.strip() for s in sides)
        for key in TRAIN_BUCKET_KEYS:
            if key in train:
                defaults[key] = train[key]
        if isinstance(train.get("caption_extension"), str):
            defaults["caption_extension"] = train["caption_extension"]
        reg = train.get("reg_dataset")
        if isinstance(reg, str) and reg:
            reg_path = Path(rebase_path_fields(ValidateOptions, {"reg": reg}, workspace.path.parent)["reg"])
            if reg_path.is_dir():
                defaults["reg"] = reg_path
    concept_table = workspace.table("concept")
    trigger = concept_table.get("trigger")
    if isinstance(trigger, str) and trigger.strip():
        defaults["trigger"] = trigger.strip()
        # [concept] concept names the folder that trigger is for; a --trigger WORD of its own is for all.
        folder = concept_table.get("concept")
        if isinstance(folder, str) and folder.strip() and getattr(args, "trigger", None) is None:
            defaults["trigger_concept"] = folder.strip()
    return load_options(ValidateOptions, "validate", args, workspace=workspace, defaults=defaults)
