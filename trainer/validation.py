"""Validation loss on held-out images, comparable between evaluations, and overfit detection.

Each validation image is encoded once with the VAE's mean latent (no sampling noise), centre
cropped and not flipped; its caption is used as written (no shuffle or dropout). Every
evaluation uses the same timesteps and the same noise per image (drawn from validation_seed and
the image's position), so two evaluations of the same weights give the same loss, whatever the
training data order was.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import torch

from trainer.caption_augment import CaptionOptions, process_caption
from trainer.data import TrainImage
from trainer.images import load_pixels
from trainer.step import Batch, LossOptions, compute_loss, encode_captions

TIMESTEPS = (100, 300, 500, 700, 900)


@dataclass
class _Item:
    image: TrainImage
    latents: torch.Tensor  # C x h x w
    noise: torch.Tensor  # len(TIMESTEPS) x C x h x w
    mask: torch.Tensor | None


@dataclass
class Validator:
    images: list[TrainImage]
    seed: int
    items: list[_Item] = field(default_factory=list)

    def prepare(self, models: Any, device, masks=None) -> None:
        """Encode every validation image once (call while the VAE is on the device)."""
        from trainer.masks import load_mask

        self.items = []
        vae = models.vae
        for position, img in enumerate(self.images):
            prepared = load_pixels(img, rng=random.Random(0))
            with torch.no_grad():
                pixels = prepared.pixels.unsqueeze(0).to(device, vae.dtype)
                latents = (vae.encode(pixels).latent_dist.mean.float() * models.latent_scaling)[0].cpu()
            generator = torch.Generator("cpu").manual_seed(self.seed * 1_000_003 + position)
            noise = torch.randn((len(TIMESTEPS), *latents.shape), generator=generator)
            mask = load_mask(img, masks, flip=False, crop_top_left=prepared.crop_top_left) if masks else None
            self.items.append(_Item(img, latents, noise, mask))

    def loss(self, models: Any, options: LossOptions, *, device, weight_dtype, autocast, text_cache=None) -> float:
        """The mean loss over every validation image and fixed timestep."""
        total = 0.0
        count = len(TIMESTEPS)
        rng_state = torch.get_rng_state()
        try:
            for item in self.items:
                img = item.image
                caption = process_caption(img.caption, CaptionOptions(), random.Random(0))
                batch = Batch(latents=None, pixels=None, captions=[caption] * count,
                              loss_weights=torch.ones(count), original_sizes=[img.size] * count,
                              crops=[(0, 0)] * count, targets=[img.bucket] * count,
                              masks=item.mask.unsqueeze(0).expand(count, -1, -1, -1) if item.mask is not None
                              else None)
                with torch.no_grad():
                    text = text_cache.get([caption], device) if text_cache is not None else None
                    if text is None:
                        with autocast():
                            text = encode_captions(models, [caption], options, device)
                    states, pooled = text
                    text = (states.expand(count, -1, -1),
                            pooled.expand(count, -1) if pooled is not None else None)
                    loss = compute_loss(models, batch, options, device=device, weight_dtype=weight_dtype,
                                        autocast=autocast,
                                        latents=item.latents.unsqueeze(0).expand(count, -1, -1, -1).to(device),
                                        noise=item.noise.to(device),
                                        timesteps=torch.tensor(TIMESTEPS, device=device, dtype=torch.long),
                                        text=text)
                total += float(loss.item())
        finally:
            torch.set_rng_state(rng_state)
        return total / max(len(self.items), 1)


class OverfitWatch:
    """Counts evaluations in a row whose loss rose; says so once per rising streak of `patience`."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.history: list[float] = []
        self.rises = 0
        self.best = math.inf

    def add(self, loss: float) -> str | None:
        previous = self.history[-1] if self.history else None
        self.history.append(loss)
        self.best = min(self.best, loss)
        self.rises = self.rises + 1 if previous is not None and loss > previous else 0
        if self.patience > 0 and self.rises == self.patience:
            start = self.history[-1 - self.patience]
            return (f"validation loss has risen for {self.patience} evaluations in a row ({start:.4f} -> "
                    f"{loss:.4f}; best {self.best:.4f}): the LoRA is likely overfitting; an earlier save "
                    "may be better")
        return None
