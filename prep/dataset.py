"""The dataset model: kohya layout `DATASET/<repeats>_<name>/` with image + same-stem caption."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from prep.captions import read_caption
from prep.errors import DatasetNotFound
from prep.folder_scan import (
    FOLLOW_SYMLINKS,
    confinement,
    leads_outside,
    parse_concept_folder_name,
    scan_folder,
)

DEFAULT_CAPTION_EXTENSION = ".txt"
LORAKIT_DIR = ".lorakit"

__all__ = ["FOLLOW_SYMLINKS", "Concept", "Dataset", "FolderListing", "Item", "confinement", "iter_images",
           "leads_outside", "list_folder", "normalize_caption_extension", "parse_concept_folder_name"]


def normalize_caption_extension(ext: str) -> str:
    """`txt` or `.txt` -> `.txt`."""
    return ext if ext.startswith(".") else "." + ext


@dataclass
class FolderListing:
    """The files of one folder, split by kind (one scandir, no file opened)."""

    folder: Path
    images: list[Path] = field(default_factory=list)
    captions: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    others: list[Path] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    outside: list[Path] = field(default_factory=list)  # symlinks leading out of the dataset, left out


def list_folder(folder: Path, caption_extension: str = DEFAULT_CAPTION_EXTENSION, *,
                confine: str | None = None) -> FolderListing:
    """List a folder's images, captions, sub-folders and other files, sorted by name.

    Hidden entries (`.lorakit`, dotfiles) are ignored. Entries that cannot be examined (broken
    symlinks, permission errors) go to `unreadable` with a reason instead of raising. With
    `confine` (a resolved dataset root), symlinks leading outside it go to `outside` only.
    """
    folder = Path(folder)
    scan = scan_folder(str(folder), "", normalize_caption_extension(caption_extension), confine,
                       skip_outside=True)
    listing = FolderListing(folder, [folder / n for n in scan.images], [folder / n for n in scan.captions],
                            [folder / n for n in scan.folders],
                            sorted([folder / n for n in scan.unsupported + scan.others]),
                            [(folder / n, reason) for n, reason in scan.unreadable],
                            [folder / n for n in scan.outside])
    if scan.error:
        listing.unreadable.append((folder, scan.error))
    return listing


@dataclass(frozen=True)
class Concept:
    """One `<repeats>_<name>` folder."""

    folder: Path
    name: str
    repeats: int

    @property
    def folder_name(self) -> str:
        return self.folder.name


@dataclass(frozen=True)
class Item:
    """One training image and its (possibly absent) caption file."""

    image: Path
    caption_path: Path
    concept: Concept | None

    @property
    def repeats(self) -> int:
        return self.concept.repeats if self.concept else 1

    @property
    def has_caption(self) -> bool:
        return self.caption_path.is_file()

    def read_tags(self) -> list[str]:
        """The caption's tags; [] when there is no caption file."""
        try:
            return read_caption(self.caption_path)
        except FileNotFoundError:
            return []

    @property
    def tags(self) -> list[str]:
        return self.read_tags()

    def effective_tags(self) -> list[str]:
        """What kohya trains: the caption, or the concept name when there is no caption file."""
        if self.has_caption:
            return self.read_tags()
        return [self.concept.name] if self.concept else []


@dataclass
class Dataset:
    """A folder of concept folders (or, when `bare`, a plain folder of images)."""

    root: Path
    concepts: list[Concept]
    items: list[Item]
    caption_extension: str = DEFAULT_CAPTION_EXTENSION
    bare: bool = False
    outside: list[Path] = field(default_factory=list)  # symlinks leading out of it, left out (not followed)

    @classmethod
    def load(
        cls,
        root: str | os.PathLike[str],
        caption_extension: str = DEFAULT_CAPTION_EXTENSION,
        *,
        allow_bare: bool = False,
        recursive: bool = False,
        follow_symlinks: bool | None = None,
    ) -> Dataset:
        """Scan a dataset folder without opening any image.

        With allow_bare, a folder that holds no concept folder is loaded as one bare folder of
        images (recursively with `recursive`), each item with concept None. Concept folders and
        images that are symlinks leading outside the folder are left out (listed in `outside`)
        unless `follow_symlinks` (None: FOLLOW_SYMLINKS, i.e. `--follow-symlinks`).
        """
        root_path = Path(root)
        if not root_path.is_dir():
            raise DatasetNotFound(f"{root_path}: not a folder; pass the dataset folder (DATASET/<repeats>_<name>/)")
        ext = normalize_caption_extension(caption_extension)
        confine = confinement(root_path, follow_symlinks)
        top = list_folder(root_path, ext, confine=confine)
        concepts: list[Concept] = []
        items: list[Item] = []
        outside = list(top.outside)
        for folder in top.folders:
            parsed = parse_concept_folder_name(folder.name)
            if parsed is None:
                continue
            concept = Concept(folder, parsed[1], parsed[0])
            concepts.append(concept)
            listing = list_folder(folder, ext, confine=confine)
            outside.extend(listing.outside)
            for image in listing.images:
                items.append(Item(image, image.with_suffix(ext), concept))
        if concepts or not allow_bare:
            return cls(root_path, concepts, items, ext, outside=outside)
        images = iter_images(root_path, recursive=recursive, confine=confine, outside=outside)
        items = [Item(image, image.with_suffix(ext), None) for image in images]
        return cls(root_path, [], items, ext, bare=True, outside=outside)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def relative(self, path: Path) -> str:
        """A path relative to the dataset root, with forward slashes."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def iter_images(folder: Path, *, recursive: bool = False, confine: str | None = None,
                outside: list[Path] | None = None) -> list[Path]:
    """The images of a folder (hidden entries skipped), sorted; sub-folders too when recursive.

    Symlinked folders are followed once each, so a symlink loop cannot recurse forever; with
    `confine`, symlinks leading outside it are left out (added to `outside`).
    """
    images: list[Path] = []
    seen: set[str] = set()
    pending = [folder]
    while pending:
        current = pending.pop(0)
        real = os.path.realpath(current)
        if real in seen:
            continue
        seen.add(real)
        listing = list_folder(current, confine=confine)
        if outside is not None:
            outside.extend(listing.outside)
        images.extend(listing.images)
        if recursive:
            pending.extend(listing.folders)
    return images
