"""`lorakit reg generate`: the guide's regularization images, made with the base model.

Images of the class the concept belongs to ("photo of a man"), at least as many as the training
images, go to `DIR/1_<prompt words>/NNNNN.png` with the prompt as caption. Image i always uses
seed + i, so a run that was stopped and started again ends with the same images as one that was not.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prep.config import find_workspace
from prep.dataset import Dataset
from prep.events import Advanced, Finished, Started
from prep.fsio import atomic_write_bytes, atomic_write_text
from prep.images import IMAGE_EXTENSIONS

from .errors import LoraToolError
from .pipelines import default_size, load_pipeline, parse_size
from .reg_config import RegConfig

_NUMBERED = re.compile(r"^(\d+)\.png$")
_UNSAFE = re.compile(r'[\\/:*?"<>|\x00-\x1f(),\[\]{}]+')


def concept_folder_name(prompt: str) -> str:
    """`1_<prompt words>`: kohya's `<repeats>_<class words>` with characters no file system allows removed."""
    words = " ".join(_UNSAFE.sub(" ", prompt).split())
    if not words or words in (".", ".."):
        raise LoraToolError(f"--prompt {prompt!r}: no usable words for the folder name")
    return f"1_{words[:100]}"


def workspace_paths(start: Path) -> tuple[Path | None, Path | None]:
    """(dataset folder, workspace folder) near start: lorakit.toml's [train] dataset, or dataset/ beside it."""
    workspace = find_workspace(cwd=start)
    root = workspace.folder or (start if (start / "dataset").is_dir() else None)
    if root is None:
        return None, None
    dataset = None
    train = workspace.table("train")
    if isinstance(train.get("dataset"), str):
        dataset = (root / train["dataset"]).resolve()
    if dataset is None and (root / "dataset").is_dir():
        dataset = root / "dataset"
    return dataset, root


def training_image_count(dataset: Path, caption_extension: str) -> int:
    return len(Dataset.load(dataset, caption_extension, allow_bare=True, follow_symlinks=True))


def existing_images(folder: Path) -> tuple[int, int]:
    """(images already in the folder, next free number for NNNNN.png)."""
    if not folder.is_dir():
        return 0, 0
    count, top = 0, -1
    for entry in folder.iterdir():
        if entry.is_file() and not entry.name.startswith(".") and entry.suffix.lower() in IMAGE_EXTENSIONS:
            count += 1
            if m := _NUMBERED.match(entry.name):
                top = max(top, int(m[1]))
    return count, top + 1


def plan_reg(config: RegConfig, cwd: Path) -> tuple[Path, int]:
    """(concept folder to fill, total image count wanted); raises LoraToolError with what to pass."""
    if not config.base:
        raise LoraToolError("reg generate: give --base MODEL (a diffusers folder or .safetensors checkpoint)")
    if not config.prompt or not config.prompt.strip():
        raise LoraToolError("reg generate: give --prompt, the class of your concept (e.g. 'photo of a man')")
    dataset, root = workspace_paths(cwd)
    if config.dataset:
        dataset = Path(config.dataset)
    count = config.count
    if count is None:
        if dataset is None:
            raise LoraToolError(f"reg generate: no workspace dataset found from {cwd}; give --count N "
                                f"or --dataset DATASET")
        count = training_image_count(dataset, config.caption_extension)
        if count == 0:
            raise LoraToolError(f"{dataset}: no training images to match; give --count N")
    if count < 1:
        raise LoraToolError(f"--count must be at least 1 (got {count})")
    parent = Path(config.out) if config.out else (root / "reg" if root else cwd / "reg")
    return parent / concept_folder_name(config.prompt), count


def generate_reg_images(config: RegConfig, cwd: Path | None = None, pipe: Any = None) -> Iterator[object]:
    """Events; Finished.summary = {"folder", "count", "existing", "generated"}."""
    import torch

    folder, count = plan_reg(config, cwd or Path.cwd())
    size = parse_size(config.size)
    if config.steps < 1:
        raise LoraToolError("--steps must be at least 1")
    have, number = existing_images(folder)
    todo = max(0, count - have)
    yield Started("reg", todo)
    if todo:
        pipe = pipe or load_pipeline(config.base)
        width, height = size or default_size(pipe)
        folder.mkdir(parents=True, exist_ok=True)
        ext = config.caption_extension if config.caption_extension.startswith(".") else "." + config.caption_extension
        for _ in range(todo):
            generator = torch.Generator(device="cpu").manual_seed(config.seed + number)
            image = pipe(config.prompt, negative_prompt=config.negative or None, num_inference_steps=config.steps,
                         guidance_scale=config.cfg, width=width, height=height, generator=generator).images[0]
            stem = f"{number:05d}"
            # caption first: the image appearing is what marks the item done for a resumed run
            atomic_write_text(folder / f"{stem}{ext}", config.prompt.strip())
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            atomic_write_bytes(folder / f"{stem}.png", buffer.getvalue())
            number += 1
            yield Advanced(1, f"{stem}.png")
    yield Finished({"folder": str(folder), "count": count, "existing": have, "generated": todo})
