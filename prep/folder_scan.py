"""The one dataset scan: one scandir per folder, names as plain strings (no Path per file).

`scan_folder` lists a folder's images, captions, unsupported images, sub-folders, other files and
unreadable entries; `scan_tree` a dataset root and its `<repeats>_<name>` concept folders. Every
reader of a dataset goes through them: `Dataset.load` (via `list_folder`), the caption engine
(`caption_set.scan_dataset`) and `validate`. Strings instead of Paths keep the 20,000-image
validate and the 100,000-caption edits within their benchmark targets (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
import re
from contextvars import ContextVar
from dataclasses import dataclass, field

from prep.images import IMAGE_EXTENSIONS, UNSUPPORTED_IMAGE_EXTENSIONS

_CONCEPT_RE = re.compile(r"^(\d+)_(.*)$", re.DOTALL)

# Whether writing commands follow symbolic links that lead outside the dataset (`--follow-symlinks`
# sets it for the command). Off, their scans leave such concept folders and images out: nothing a
# writing command does can then land outside the dataset. Commands that only read pass follow=True.
FOLLOW_SYMLINKS: ContextVar[bool] = ContextVar("lorakit_follow_symlinks", default=False)


def confinement(root: str | os.PathLike[str], follow_symlinks: bool | None = None) -> str | None:
    """The resolved dataset root that scans keep symlinks inside, or None when they follow every link."""
    follow = FOLLOW_SYMLINKS.get() if follow_symlinks is None else follow_symlinks
    return None if follow else os.path.realpath(root)


def leads_outside(path: str | os.PathLike[str], root_real: str) -> bool:
    """True when path (a symlink, or under one) resolves to a place outside the resolved root."""
    real = os.path.realpath(path)
    return real != root_real and not real.startswith(root_real.rstrip(os.sep) + os.sep)


def parse_concept_folder_name(name: str) -> tuple[int, str] | None:
    """`10_shiina mayuri` -> (10, "shiina mayuri"); None when not `<positive int>_<name>`."""
    match = _CONCEPT_RE.match(name)
    if not match:
        return None
    repeats = int(match.group(1))
    concept = match.group(2)
    if repeats <= 0 or not concept.strip():
        return None
    return repeats, concept


def suffix_of(name: str) -> str:
    """The lower-cased extension with its dot (`A.PNG` -> `.png`), "" when there is none."""
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


@dataclass
class FolderScan:
    """The entries of one folder, by kind; names only (the folder's path is `path`)."""

    path: str
    rel: str  # as reported: "2_HighRes", "reg/1_man", "" (dataset root) or "reg" (reg root)
    images: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)  # names ending in the caption extension, any case
    unsupported: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # other files (and fifos, sockets)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    outside: list[str] = field(default_factory=list)  # symlinks leading out of the dataset (see scan_folder)
    error: str = ""  # the folder itself could not be listed

    def rel_of(self, name: str) -> str:
        return f"{self.rel}/{name}" if self.rel else name

    def path_of(self, name: str) -> str:
        return self.path + name if self.path.endswith(os.sep) else self.path + os.sep + name


def scan_folder(path: str, rel: str, caption_extension: str, root_real: str | None = None, *,
                skip_outside: bool = False) -> FolderScan:
    """List a folder without opening any file; hidden entries (`.lorakit`, dotfiles) are skipped.

    With `root_real` (the resolved dataset root), symlinks that lead outside it are noted in
    `outside`; with `skip_outside` too they are listed nowhere else (writers never reach them).
    """
    scan = FolderScan(path, rel)
    caption_ext = caption_extension.lower()
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith("."):
                    continue
                if root_real is not None and entry.is_symlink() and leads_outside(entry.path, root_real):
                    scan.outside.append(name)
                    if skip_outside:
                        continue
                try:
                    if entry.is_file():
                        suffix = suffix_of(name)
                        if suffix in IMAGE_EXTENSIONS:
                            scan.images.append(name)
                        elif suffix in UNSUPPORTED_IMAGE_EXTENSIONS:
                            scan.unsupported.append(name)
                        elif name.lower().endswith(caption_ext):
                            scan.captions.append(name)
                        else:
                            scan.others.append(name)
                    elif entry.is_dir():
                        scan.folders.append(name)
                    elif entry.is_symlink():
                        scan.unreadable.append((name, "broken symbolic link"))
                    else:
                        scan.others.append(name)
                except OSError as exc:  # symlink loops (ELOOP), permission denied on the target
                    scan.unreadable.append((name, exc.strerror or str(exc)))
    except OSError as exc:
        scan.error = exc.strerror or str(exc)
    for names in (scan.images, scan.captions, scan.unsupported, scan.folders, scan.others, scan.unreadable,
                  scan.outside):
        names.sort()
    return scan


@dataclass
class ConceptScan:
    """A `<repeats>_<name>` folder and its listing."""

    folder: str  # the folder's name
    name: str
    repeats: int
    scan: FolderScan


@dataclass
class TreeScan:
    """A dataset (or regularization) folder: its root listing, concepts and badly named folders."""

    root: FolderScan
    prefix: str  # "" for the dataset, "reg/" for the regularization folder
    concepts: list[ConceptScan] = field(default_factory=list)
    bad_folders: list[str] = field(default_factory=list)


def scan_tree(root: str, prefix: str, caption_extension: str, root_real: str | None = None, *,
              skip_outside: bool = False) -> TreeScan:
    """Scan a dataset root and each concept folder in it (one level: kohya does not recurse).

    `root_real`, `skip_outside`: symlinks leading out of the dataset, as in scan_folder.
    """
    root_rel = prefix.rstrip("/")
    tree = TreeScan(scan_folder(root, root_rel, caption_extension, root_real, skip_outside=skip_outside), prefix)
    for name in tree.root.folders:
        parsed = parse_concept_folder_name(name)
        if parsed is None:
            tree.bad_folders.append(name)
            continue
        repeats, concept = parsed
        folder = scan_folder(os.path.join(root, name), prefix + name, caption_extension, root_real,
                             skip_outside=skip_outside)
        tree.concepts.append(ConceptScan(name, concept, repeats, folder))
    return tree
