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
from trainer.masks import MaskOptions, load_mask
from trainer.noise import apply_mask, debiased_weights, input_perturbation, min_snr_weights, pyramid_noise
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
    masks: torch.Tensor | None = None  # B x 1 x H x W in [0, 1] (masked_loss)
    indices: list[int] | None = None


@dataclass(frozen=True)
class LossOptions:
    """How a batch becomes a loss: text encoding, noise and loss weighting options."""

    train_text_encoder: bool
    max_token_length: int
    clip_skip: int = 1
    noise_offset: float = 0.0
    min_snr_gamma: float | None = None
    multires_noise_iterations: int = 0
    multires_noise_discount: float = 0.3
    ip_noise_gamma: float | None = None
    debiased_estimation_loss: bool = False

    @classmethod
    def from_config(cls, config, *, train_text_encoder: bool, max_token_length: int) -> LossOptions:
        return cls(train_text_encoder, max_token_length, config.clip_skip, config.noise_offset, config.min_snr_gamma,
                   config.multires_noise_iterations, config.multires_noise_discount, config.ip_noise_gamma,
                   config.debiased_estimation_loss)


def step_seed(seed: int, epoch: int, index: int, rank: int) -> int:
    """A seed per (epoch, batch, process): the same step draws the same noise in a resumed run."""
    return (seed * 7919 + epoch * 1_000_003 + index * 131 + rank * 17) % (2**62)


def assemble_batch(training: TrainingSet, indices: list[int], *, rng: random.Random, caption_options: CaptionOptions,
                   flip_aug: bool, random_crop: bool, prior_loss_weight: float,
                   cache: LatentCache | None, masks: MaskOptions | None = None) -> Batch:
    """Load (or fetch cached) images and draw this step's captions and flips (and masks)."""
    latents, pixels, captions, weights, sizes, crops, targets, mask_list = [], [], [], [], [], [], [], []
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
        if masks is not None:
            mask_list.append(load_mask(img, masks, flip=flip, crop_top_left=crop))
        captions.append(process_caption(img.caption, caption_options, rng))
        weights.append(prior_loss_weight if img.is_reg else 1.0)
        sizes.append(img.size)
        crops.append(crop)
        targets.append(img.bucket)
    return Batch(torch.stack(latents) if latents else None, torch.stack(pixels) if pixels else None, captions,
                 torch.tensor(weights, dtype=torch.float32), sizes, crops, targets,
                 torch.stack(mask_list) if mask_list else None, list(indices))


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


def encode_captions(models: Any, captions: list[str], options: LossOptions, device):
    """(UNet conditioning, SDXL pooled output or None) for captions."""
    if models.is_sdxl:
        return encode_sdxl(models.text_encoders, models.tokenizers, captions, options.max_token_length, device)
    states = encode_sd(models.text_encoders[0], models.tokenizers[0], captions, options.max_token_length,
                       options.clip_skip, device)
    return states, None


def batch_latents(models: Any, batch: Batch, device) -> torch.Tensor:
    if batch.latents is not None:
        return batch.latents.to(device, torch.float32)
    with torch.no_grad():
        pixels = batch.pixels.to(device, models.vae.dtype)
        return models.vae.encode(pixels).latent_dist.sample().float() * models.latent_scaling


def draw_noise(latents: torch.Tensor, options: LossOptions) -> torch.Tensor:
    noise = torch.randn_like(latents)
    if options.noise_offset:
        noise = noise + options.noise_offset * torch.randn((latents.shape[0], latents.shape[1], 1, 1),
                                                           device=latents.device)
    if options.multires_noise_iterations:
        noise = pyramid_noise(noise, options.multires_noise_iterations, options.multires_noise_discount)
    return noise


def compute_loss(models: Any, batch: Batch, options: LossOptions, *, device, weight_dtype, autocast,
                 latents: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                 timesteps: torch.Tensor | None = None, text=None) -> torch.Tensor:
    """The weighted MSE between the UNet's prediction and the noise (or velocity) target.

    latents, noise, timesteps and text (conditioning, pooled) may be given (validation uses fixed
    ones; cached text encoder outputs skip the encoders); otherwise they are computed and drawn.
    """
    if latents is None:
        latents = batch_latents(models, batch, device)
    if text is None:
        with torch.set_grad_enabled(options.train_text_encoder), autocast():
            text = encode_captions(models, batch.captions, options, device)
    states, pooled = text
    if noise is None:
        noise = draw_noise(latents, options)
    scheduler = models.noise_scheduler
    if timesteps is None:
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (latents.shape[0],), device=device).long()
    noised_with = input_perturbation(noise, options.ip_noise_gamma) if options.ip_noise_gamma else noise
    noisy = scheduler.add_noise(latents, noised_with, timesteps)
    kwargs: dict[str, Any] = {}
    if models.is_sdxl:
        time_ids = sdxl_time_ids(batch.original_sizes, batch.crops,
                                 [(w, h) for (w, h) in batch.targets], device, torch.float32)
        kwargs["added_cond_kwargs"] = {"text_embeds": pooled.to(device, weight_dtype),
                                       "time_ids": time_ids.to(weight_dtype)}
    with autocast():
        pred = models.unet(noisy.to(weight_dtype), timesteps, states.to(device, weight_dtype), **kwargs).sample
    target = scheduler.get_velocity(latents, noise, timesteps) if models.v_parameterization else noise
    loss = torch.nn.functional.mse_loss(pred.float(), target.float(), reduction="none")
    if batch.masks is not None:
        loss = apply_mask(loss, batch.masks)
    loss = loss.mean(dim=[1, 2, 3]) * batch.loss_weights.to(device)
    if options.min_snr_gamma:
        loss = loss * min_snr_weights(scheduler, timesteps, options.min_snr_gamma, models.v_parameterization)
    if options.debiased_estimation_loss:
        loss = loss * debiased_weights(scheduler, timesteps, models.v_parameterization)
    return loss.mean()
