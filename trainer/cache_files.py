"""The trainer's cache files beside dataset images, and `lorakit train --clear-cache`.

Latents: `<stem>_<WWWW>x<HHHH>_sd.npz` / `_sdxl.npz` (kohya's names); text encoder outputs:
`<stem>_te_outputs.npz`. Only files of these names whose stem is an image of the dataset are
removed; images and captions are never touched.
"""

from __future__ import annotations

import re
from pathlib import Path

from prep.dataset import Dataset

LATENT_NAME = re.compile(r"^(?P<stem>.+)_\d{4}x\d{4}_(sd|sdxl)\.npz$")
TEXT_SUFFIX = "_te_outputs.npz"


def text_cache_path(image: Path) -> Path:
    return image.with_name(image.stem + TEXT_SUFFIX)


def cache_files(root: Path, caption_extension: str = ".txt") -> list[Path]:
    """Every latent or text cache file beside the dataset's images."""
    dataset = Dataset.load(Path(root), caption_extension)
    by_folder: dict[Path, set[str]] = {}
    for item in dataset.items:
        by_folder.setdefault(item.image.parent, set()).add(item.image.stem)
    found: list[Path] = []
    for folder, stems in by_folder.items():
        for path in sorted(folder.glob("*.npz")):
            match = LATENT_NAME.match(path.name)
            stem = match["stem"] if match else (path.name[: -len(TEXT_SUFFIX)] if path.name.endswith(TEXT_SUFFIX)
                                                else None)
            if stem in stems and path.is_file() and not path.is_symlink():
                found.append(path)
    return found


def clear_caches(roots: list[Path], caption_extension: str = ".txt") -> list[Path]:
    """Remove the cache files of the given dataset folders; returns what was removed."""
    removed: list[Path] = []
    for root in roots:
        for path in cache_files(root, caption_extension):
            path.unlink()
            removed.append(path)
    return removed
