"""One training step: a batch of images/latents and captions -> the diffusion loss."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from trainer.caption_augment import CaptionOptions, process_caption
from trainer.data import TrainingSet
from trainer.images import load_pixels
from trainer.latent_cache import LatentCache
from trainer.text_encoding import encode_sd, encode_sdxl, sdxl_time_ids


@dataclass
class Batch:
    latents: torch.Tensor | None
    pixels: torch.Tensor | None
    captions: list[str]
    loss_weights: torch.Tensor
    original_sizes: list[tuple[int, int]]
    crops: list[tuple[int, int]]
    targets: list[tuple[int, int]]


def step_seed(seed: int, epoch: int, index: int, rank: int) -> int:
    """A seed per (epoch, batch, process): the same step draws the same noise in a resumed run."""
    return (seed * 7919 + epoch * 1_000_003 + index * 131 + rank * 17) % (2**62)


def assemble_batch(training: TrainingSet, indices: list[int], *, rng: random.Random, caption_options: CaptionOptions,
                   flip_aug: bool, random_crop: bool, prior_loss_weight: float,
                   cache: LatentCache | None) -> Batch:
    """Load (or fetch cached) images and draw this step's captions and flips."""
    latents, pixels, captions, weights, sizes, crops, targets = [], [], [], [], [], [], []
    for index in indices:
        img = training.images[index]
        flip = flip_aug and rng.random() < 0.5
        if cache is not None:
            lat, crop = cache.get(index, flip)
            latents.append(lat)
        else:
            prepared = load_pixels(img, flip=flip, random_crop=random_crop, rng=rng)
            pixels.append(prepared.pixels)
            crop = prepared.crop_top_left
        captions.append(process_caption(img.caption, caption_options, rng))
        weights.append(prior_loss_weight if img.is_reg else 1.0)
        sizes.append(img.size)
        crops.append(crop)
        targets.append(img.bucket)
    return Batch(torch.stack(latents) if latents else None, torch.stack(pixels) if pixels else None, captions,
                 torch.tensor(weights, dtype=torch.float32), sizes, crops, targets)


def _identity(item):
    return item


class EpochBatches(torch.utils.data.Dataset):
    """One process's batches of one epoch, from `first` on, as (index, seed, Batch); images load in
    DataLoader workers when max_data_loader_n_workers > 0."""

    def __init__(self, training: TrainingSet, batches: list[list[int]], first: int, *, epoch: int, rank: int,
                 seed: int, **options: Any) -> None:
        self.training, self.batches, self.first = training, batches, first
        self.epoch, self.rank, self.seed, self.options = epoch, rank, seed, options

    def __len__(self) -> int:
        return len(self.batches) - self.first

    def __getitem__(self, i: int) -> tuple[int, int, Batch]:
        index = self.first + i
        seed = step_seed(self.seed, self.epoch, index, self.rank)
        return index, seed, assemble_batch(self.training, self.batches[index], rng=random.Random(seed), **self.options)


def batch_loader(dataset: EpochBatches, workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=workers,
                                       collate_fn=_identity)


def snr_weights(noise_scheduler, timesteps: torch.Tensor, gamma: float, v_prediction: bool) -> torch.Tensor:
    """Min-SNR weighting: min(SNR, gamma)/SNR, or /(SNR+1) for v-prediction (as kohya)."""
    alphas = noise_scheduler.alphas_cumprod.to(timesteps.device)[timesteps]
    snr = alphas / (1.0 - alphas)
    clipped = torch.clamp(snr, max=gamma)
    return clipped / (snr + 1.0) if v_prediction else clipped / snr


def compute_loss(models: Any, batch: Batch, *, device, weight_dtype, train_text_encoder: bool,
                 max_token_length: int, clip_skip: int, noise_offset: float, min_snr_gamma: float | None,
                 autocast) -> torch.Tensor:
    """The weighted MSE between the UNet's prediction and the noise (or velocity) target."""
    if batch.latents is not None:
        latents = batch.latents.to(device, torch.float32)
    else:
        with torch.no_grad():
            pixels = batch.pixels.to(device, models.vae.dtype)
            latents = models.vae.encode(pixels).latent_dist.sample().float() * models.latent_scaling
    with torch.set_grad_enabled(train_text_encoder), autocast():
        if models.is_sdxl:
            states, pooled = encode_sdxl(models.text_encoders, models.tokenizers, batch.captions, max_token_length,
                                         device)
        else:
            states = encode_sd(models.text_encoders[0], models.tokenizers[0], batch.captions, max_token_length,
                               clip_skip, device)
            pooled = None
    noise = torch.randn_like(latents)
    if noise_offset:
        noise = noise + noise_offset * torch.randn((latents.shape[0], latents.shape[1], 1, 1), device=device)
    scheduler = models.noise_scheduler
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), device=device).long()
    noisy = scheduler.add_noise(latents, noise, timesteps)
    kwargs: dict[str, Any] = {}
    if models.is_sdxl:
        time_ids = sdxl_time_ids(batch.original_sizes, batch.crops,
                                 [(w, h) for (w, h) in batch.targets], device, torch.float32)
        kwargs["added_cond_kwargs"] = {"text_embeds": pooled.to(weight_dtype), "time_ids": time_ids.to(weight_dtype)}
    with autocast():
        pred = models.unet(noisy.to(weight_dtype), timesteps, states.to(weight_dtype), **kwargs).sample
    target = scheduler.get_velocity(latents, noise, timesteps) if models.v_parameterization else noise
    loss = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction="none").mean(dim=[1, 2, 3])
    loss = loss * batch.loss_weights.to(device)
    if min_snr_gamma:
        loss = loss * snr_weights(scheduler, timesteps, min_snr_gamma, models.v_parameterization)
    return loss.mean()
