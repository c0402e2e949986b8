"""The demo's raw dataset: simple coloured shapes in two concept folders (generated with Pillow, seeded).

Some images come with a hand-written caption, the rest have none (the tagger writes theirs); one
image is a transparent RGBA PNG, which `validate` reports (has-alpha) and `fix --alpha white`
flattens. Everything is small (64 px), so the whole demo trains in seconds on a CPU.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from prep.fsio import atomic_write_text

DEMO_SIDE = 64
# (concept folder, shape, images): the subject the trigger word is for, and a second concept.
DEMO_CONCEPTS = (("4_circle", "circle", 10), ("2_square", "square", 8))
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220)}
BACKGROUNDS = {"white background": (250, 250, 250), "grey background": (128, 128, 128)}
ALPHA_IMAGE = "4_circle/circle_transparent.png"


@dataclass
class DemoDataset:
    root: Path
    images: int = 0
    captioned: int = 0
    files: list[Path] = field(default_factory=list)


def _draw(shape: str, colour: tuple[int, int, int], background: tuple[int, int, int, int], rng: random.Random,
          mode: str = "RGB"):
    from PIL import Image, ImageDraw

    image = Image.new(mode, (DEMO_SIDE, DEMO_SIDE), background if mode == "RGBA" else background[:3])
    draw = ImageDraw.Draw(image)
    size = rng.randint(28, 44)
    x = rng.randint(4, DEMO_SIDE - size - 4)
    y = rng.randint(4, DEMO_SIDE - size - 4)
    box = (x, y, x + size, y + size)
    fill = (*colour, 255) if mode == "RGBA" else colour
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    else:
        draw.rectangle(box, fill=fill)
    return image


def write_demo_dataset(root: str | Path, seed: int = 0) -> DemoDataset:
    """Write the demo images (and some captions) under root; returns what was written."""
    root = Path(root)
    rng = random.Random(seed)
    out = DemoDataset(root)
    colour_names = list(COLOURS)
    background_names = list(BACKGROUNDS)
    for folder, shape, count in DEMO_CONCEPTS:
        concept = root / folder
        concept.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            colour = colour_names[i % len(colour_names)]
            background = background_names[(i // len(colour_names)) % len(background_names)]
            image = _draw(shape, COLOURS[colour], (*BACKGROUNDS[background], 255), rng)
            path = concept / f"{shape}_{i:02d}.png"
            image.save(path)
            out.files.append(path)
            if i % 2 == 0:  # every other image has a caption already; the tagger writes the others
                atomic_write_text(path.with_suffix(".txt"), f"{shape}, {colour} theme, {background}, no humans\n")
                out.captioned += 1
    # A transparent PNG: the shape on a see-through background, as cut-outs often come.
    path = root / ALPHA_IMAGE
    _draw("circle", COLOURS["red"], (0, 0, 0, 0), rng, mode="RGBA").save(path)
    out.files.append(path)
    out.images = len(out.files)
    return out
