"""Deciding what `lorakit fix` changes: one plan per run, from names, headers and caption text only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from prep.captions import (
    CaptionEncodingError,
    decode_caption_bytes,
    format_caption,
    parse_caption,
    unique_tags,
)
from prep.dataset import (
    FolderListing,
    confinement,
    list_folder,
    normalize_caption_extension,
    parse_concept_folder_name,
)
from prep.errors import DatasetNotFound
from prep.fix.options import ALPHA_COLOURS, FIX_CODES, FixOptions
from prep.fix.pixels import PixelError, read_header_file
from prep.images import UNSUPPORTED_IMAGE_EXTENSIONS

_CONVERTIBLE = frozenset({".gif", ".tif", ".tiff", ".avif", ".heic"})
_JPEG_SUFFIXES = frozenset({".jpg", ".jpeg", ".jfif"})


@dataclass
class ImageFix:
    """One image file's changes: a rename, pixel changes, or both (in that file's own format)."""

    src: Path
    dst: Path
    codes: list[str] = field(default_factory=list)
    flatten: tuple[int, int, int] | None = None
    max_side: int | None = None
    convert: bool = False  # to PNG, the original going to the trash

    @property
    def changes_pixels(self) -> bool:
        return self.convert or self.flatten is not None or self.max_side is not None


@dataclass
class CaptionFix:
    """Write `text` to a caption file, or remove it when text is None."""

    path: Path
    code: str
    text: str | None


@dataclass
class FixPlan:
    root: Path
    options: FixOptions
    images: list[ImageFix] = field(default_factory=list)
    captions: list[CaptionFix] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why not)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def rel(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def counts(self) -> dict[str, int]:
        fixed: dict[str, int] = {}
        for fix in self.images:
            for code in fix.codes:
                fixed[code] = fixed.get(code, 0) + 1
        for caption in self.captions:
            fixed[caption.code] = fixed.get(caption.code, 0) + 1
        return fixed

    def files(self) -> list[str]:
        paths: set[str] = set()
        for fix in self.images:
            paths.update({self.rel(fix.src), self.rel(fix.dst)})
        paths.update(self.rel(c.path) for c in self.captions)
        return sorted(paths)

    def __bool__(self) -> bool:
        return bool(self.images or self.captions)


@dataclass
class _Folder:
    listing: FolderListing
    concept: str | None  # the concept name (None: the dataset root or a bare folder)


def _folders(root: Path, ext: str) -> list[_Folder]:
    confine = confinement(root)  # symlinks leading out of the dataset are left out (--follow-symlinks)
    top = list_folder(root, ext, confine=confine)
    folders = []
    for folder in top.folders:
        parsed = parse_concept_folder_name(folder.name)
        if parsed is not None:
            folders.append(_Folder(list_folder(folder, ext, confine=confine), parsed[1]))
    # The root too: stray and unsupported files there are reported by the validator as well.
    folders.append(_Folder(top, None))
    return folders


def plan_fixes(root: Path, options: FixOptions) -> FixPlan:
    """What the selected fixes would change; reads headers and captions, writes nothing."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFound(f"{root}: not a folder; pass the dataset folder")
    opts = options.effective()
    ext = normalize_caption_extension(opts.caption_extension)
    plan = FixPlan(root, opts)
    targets: set[Path] = set()
    for folder in _folders(root, ext):
        final_images = _plan_images(plan, folder, targets)
        _plan_captions(plan, folder, final_images, ext)
    return plan


def _plan_images(plan: FixPlan, folder: _Folder, targets: set[Path]) -> list[Path]:
    """Add the folder's image fixes; return the images the folder will hold afterwards."""
    opts = plan.options
    listing = folder.listing
    unsupported = [p for p in listing.others if p.suffix.lower() in UNSUPPORTED_IMAGE_EXTENSIONS]
    stems = {p.stem for p in listing.images}
    final: list[Path] = []
    for path in [*listing.images, *unsupported]:
        suffix = path.suffix.lower()
        supported = path in listing.images
        fix = ImageFix(path, path)
        if not supported:
            if suffix == ".jfif" and (opts.convert_unsupported or opts.rename_jpeg):
                fix.dst = path.with_suffix(".jpg")
                fix.codes.append("unsupported-format")
            elif suffix in _CONVERTIBLE and opts.convert_unsupported:
                fix.dst = path.with_suffix(".png")
                fix.convert = True
                fix.codes.append("unsupported-format")
                if path.stem in stems:
                    plan.refused.append((plan.rel(path), f"{path.stem}.* already holds an image, which would "
                                                         "share its caption; rename one first"))
                    continue
            else:
                continue
        elif suffix in _JPEG_SUFFIXES and path.suffix != ".jpg" and opts.rename_jpeg:
            fix.dst = path.with_suffix(".jpg")
            fix.codes.append(FIX_CODES["rename_jpeg"])
        if opts.alpha or opts.max_side:
            try:
                header = read_header_file(path)
            except PixelError as exc:
                if fix.convert:
                    plan.refused.append((plan.rel(path), str(exc)))
                    continue
                plan.warnings.append((plan.rel(path), f"{exc}; not checked"))
                header = None
            if header is not None:
                if opts.alpha and header.has_alpha:
                    fix.flatten = ALPHA_COLOURS[opts.alpha]
                    fix.codes.append(FIX_CODES["alpha"])
                if opts.max_side and max(header.width, header.height) > opts.max_side:
                    fix.max_side = opts.max_side
                    fix.codes.append(FIX_CODES["max_side"])
        if fix.dst != fix.src:
            clash = _target_clash(fix, targets)
            if clash:
                plan.refused.append((plan.rel(path), clash))
                if supported:
                    final.append(path)
                continue
            targets.add(fix.dst)
        if fix.codes:
            plan.images.append(fix)
        if supported or fix.dst != fix.src:
            final.append(fix.dst)
    return final


def _target_clash(fix: ImageFix, targets: set[Path]) -> str:
    if fix.dst in targets:
        return f"another file is being renamed to {fix.dst.name} too; rename one by hand"
    if fix.dst.exists() or fix.dst.is_symlink():
        try:
            if os.path.samefile(fix.src, fix.dst):  # only the case differs on this file system
                return ""
        except OSError:
            pass
        return f"{fix.dst.name} already exists; rename or remove one of them first"
    return ""


def _plan_captions(plan: FixPlan, folder: _Folder, final_images: list[Path], ext: str) -> None:
    opts = plan.options
    captioned_stems = {p.stem for p in final_images}
    planned: set[Path] = set()
    if opts.drop_empty or opts.dedupe_tags:
        for path in folder.listing.captions:
            try:
                tags = parse_caption(decode_caption_bytes(path.read_bytes(), path))
            except OSError as exc:  # the warning names the path; the message must not repeat it
                plan.warnings.append((plan.rel(path), f"cannot read ({exc.strerror or exc}); caption not checked"))
                continue
            except CaptionEncodingError as exc:
                reason = str(exc).removeprefix(f"{path}: ")
                plan.warnings.append((plan.rel(path), f"{reason}; caption not checked"))
                continue
            if not tags:
                if not opts.drop_empty:
                    continue
                refill = opts.missing_captions and folder.concept is not None and path.stem in captioned_stems
                plan.captions.append(CaptionFix(path, FIX_CODES["drop_empty"],
                                                folder.concept if refill else None))
                planned.add(path)
            elif opts.dedupe_tags:
                unique = _unique_tags(tags)
                if len(unique) < len(tags):
                    plan.captions.append(CaptionFix(path, FIX_CODES["dedupe_tags"], format_caption(unique)))
    if opts.missing_captions and folder.concept is not None:
        for image in final_images:
            caption = image.with_suffix(ext)
            if caption in planned or caption.is_file():
                continue
            plan.captions.append(CaptionFix(caption, FIX_CODES["missing_captions"], folder.concept))
            planned.add(caption)


def _unique_tags(tags: list[str]) -> list[str]:
    """First spelling of each tag; repeats differing only in case, `_` or spaces count as repeats."""
    return unique_tags(tags)
