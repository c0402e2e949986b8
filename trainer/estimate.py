"""Before a run: how many steps it takes, and about how much GPU memory (plain Python, no torch).

The VRAM figure adds the frozen weights (in the training dtype), the LoRA with its gradients and
optimizer states, the activations (scaled by batch x pixels, much smaller with gradient
checkpointing) and the CUDA context. The per-family constants are sd-scripts' commonly reported
peaks (SD 1.5 at 512 px batch 1 fp16 ~6 GB without checkpointing; SDXL at 1024 px with
checkpointing and U-Net only ~10 GB); `benchmarks/train.py --gpu` measures the real peak to
calibrate them. `lowering_options` says what each memory option would save.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from trainer.config import TrainConfig, parse_resolution
from trainer.model_family import config_family


@dataclass(frozen=True)
class Family:
    name: str
    unet: float  # parameters, millions
    text_encoders: float
    vae: float
    lora_per_dim: float  # LoRA parameters per rank unit (U-Net + text encoders), millions
    lora_unet_share: float  # the U-Net's part of those
    activations_gb: float  # fp16 activations at `base_pixels`, batch 1, no checkpointing
    base_pixels: int
    checkpointing_factor: float = 0.25  # what stays of the activations with gradient checkpointing


FAMILIES = {
    "sd1": Family("SD 1.x", 860, 123, 84, 0.6, 0.83, 3.2, 512 * 512),
    "sd2": Family("SD 2.x", 866, 340, 84, 0.75, 0.75, 3.4, 768 * 768),
    "sdxl": Family("SDXL", 2567, 817, 84, 3.6, 0.84, 8.5, 1024 * 1024),
}
CUDA_CONTEXT_GB = 0.6
GB = 1024 ** 3


@dataclass(frozen=True)
class VramEstimate:
    family: str
    total_gb: float
    weights_gb: float
    lora_gb: float
    activations_gb: float

    def describe(self) -> str:
        return (f"~{self.total_gb:.1f} GB VRAM ({self.family}: weights {self.weights_gb:.1f}, LoRA+optimizer "
                f"{self.lora_gb:.2f}, activations {self.activations_gb:.1f})")


def model_family(config: TrainConfig) -> str:
    """sd1, sd2 or sdxl (trainer.model_family); a hub id not yet downloaded counts as sd1 unless its
    name says XL (the estimate is shown before any download)."""
    family = config_family(config)
    if family is not None:
        return family
    return "sdxl" if "xl" in str(config.pretrained_model).lower() else "sd1"


def estimate_vram(config: TrainConfig) -> VramEstimate:
    family = FAMILIES[model_family(config)]
    precision = config.mixed_precision or "fp16"
    weight_bytes = 4 if precision == "no" else 2
    unet_only, te_only = config.train_unet_only, config.train_text_encoder_only
    weights = (family.unet + family.text_encoders + (0 if config.cache_latents else family.vae)) * 1e6 * weight_bytes
    share = family.lora_unet_share if unet_only else (1 - family.lora_unet_share) if te_only else 1.0
    dims = config.network_dim + (config.conv_dim or 0) * 0.5
    lora_params = family.lora_per_dim * dims * share * 1e6
    optimizer_bytes = {"AdamW8bit": 2, "SGD": 4, "Lion": 4, "Adafactor": 2}.get(config.optimizer, 8)
    lora = lora_params * (4 + 4 + optimizer_bytes)  # fp32 weights + gradients + optimizer states
    width, height = parse_resolution(config.resolution)
    scale = config.train_batch_size * (width * height) / family.base_pixels
    activations = family.activations_gb * GB * scale * (2 if precision == "no" else 1)
    if config.gradient_checkpointing:
        activations *= family.checkpointing_factor
    if te_only:
        activations *= 0.3  # the U-Net's backward pass is not needed
    elif not unet_only:
        activations *= 1.1  # the text encoders' backward pass
    total = weights + lora + activations + CUDA_CONTEXT_GB * GB
    return VramEstimate(family.name, total / GB, weights / GB, lora / GB, activations / GB)


def lowering_options(config: TrainConfig) -> list[tuple[str, float]]:
    """(the option, GB it would save) for each memory option not yet on, biggest saving first."""
    base = estimate_vram(config).total_gb
    options: list[tuple[str, dict]] = []
    if not config.gradient_checkpointing:
        options.append(("gradient_checkpointing = true", {"gradient_checkpointing": True}))
    if not config.cache_latents:
        options.append(("cache_latents = true", {"cache_latents": True}))
    if config.optimizer != "AdamW8bit":
        options.append(("optimizer = AdamW8bit", {"optimizer": "AdamW8bit"}))
    if not config.train_unet_only and not config.train_text_encoder_only:
        options.append(("train_unet_only = true", {"train_unet_only": True}))
    if config.network_dim > 4:
        options.append((f"network_dim = {config.network_dim // 2}", {"network_dim": config.network_dim // 2}))
    out = []
    for label, change in options:
        saved = base - estimate_vram(dataclasses.replace(config, **change)).total_gb
        if saved > 0.005:
            out.append((label, saved))
    return sorted(out, key=lambda item: -item[1])


def plan_steps(config: TrainConfig, weighted_images: int) -> tuple[int, int, int]:
    """(steps per epoch, epochs, total steps) for this many images x repeats, as the trainer plans them
    (buckets can add a few batches: each bucket's last batch may be short)."""
    from trainer.run import plan_steps as trainer_plan

    return trainer_plan(config, math.ceil(max(weighted_images, 0) / max(config.train_batch_size, 1)))
