"""Checks that stop a run before any model loads: invalid combinations, the device, the dataset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trainer.config import TrainConfig, parse_resolution
from trainer.errors import TrainError
from trainer.optim import optimizer_available


@dataclass(frozen=True)
class DeviceInfo:
    cuda: bool
    bf16: bool

    @classmethod
    def detect(cls) -> DeviceInfo:
        import torch

        cuda = torch.cuda.is_available()
        return cls(cuda, bool(cuda and torch.cuda.is_bf16_supported()))


def resolve_mixed_precision(config: TrainConfig, device: DeviceInfo) -> str:
    """The configured precision, or the default: bf16 where the GPU has it, fp16 on other GPUs, no on CPU."""
    if config.mixed_precision is not None:
        return config.mixed_precision
    if not device.cuda:
        return "no"
    return "bf16" if device.bf16 else "fp16"


def check_config(config: TrainConfig, device: DeviceInfo) -> list[str]:
    """Raise TrainError for the first invalid setting; return warnings for odd but valid ones."""
    warnings: list[str] = []

    def need(condition: bool, message: str) -> None:
        if not condition:
            raise TrainError(message)

    need(bool(config.pretrained_model), "no base model given; set pretrained_model (a diffusers folder, "
                                        ".safetensors file or hub id)")
    need(config.dataset is not None, "no dataset given; set dataset or pass --dataset DIR")
    need(config.network_dim > 0, f"network_dim must be at least 1, not {config.network_dim}")
    need(config.network_alpha >= 0, f"network_alpha must not be negative, not {config.network_alpha}")
    if config.conv_dim is not None:
        need(config.conv_dim > 0, f"conv_dim must be at least 1 (or unset), not {config.conv_dim}")
    if config.conv_alpha is not None:
        need(config.conv_alpha >= 0, f"conv_alpha must not be negative, not {config.conv_alpha}")
    if config.network_dropout is not None:
        need(0 <= config.network_dropout < 1, "network_dropout must be in [0, 1)")
    need(not (config.train_unet_only and config.train_text_encoder_only),
         "train_unet_only and train_text_encoder_only exclude each other; set at most one")
    need(config.learning_rate >= 0, "learning_rate must not be negative")
    for name in ("unet_lr", "text_encoder_lr"):
        value = getattr(config, name)
        need(value is None or value >= 0, f"{name} must not be negative")
    need(config.train_batch_size >= 1, "train_batch_size must be at least 1")
    need(config.gradient_accumulation_steps >= 1, "gradient_accumulation_steps must be at least 1")
    for name in ("max_train_epochs", "max_train_steps", "save_every_n_epochs", "save_every_n_steps",
                 "save_last_n", "sample_every_n_steps", "sample_every_n_epochs"):
        value = getattr(config, name)
        need(value is None or value >= 1, f"{name} must be at least 1 (or unset), not {value}")
    need(0 <= config.lr_warmup_ratio < 1, "lr_warmup_ratio must be in [0, 1)")
    need(config.lr_warmup_steps is None or config.lr_warmup_steps >= 0, "lr_warmup_steps must not be negative")
    if config.lr_scheduler == "constant" and (config.lr_warmup_ratio > 0 or (config.lr_warmup_steps or 0) > 0):
        raise TrainError("lr_scheduler = constant has no warmup; use constant_with_warmup or set the warmup to 0")
    need(config.lr_scheduler_num_cycles >= 1, "lr_scheduler_num_cycles must be at least 1")
    for name in ("caption_dropout_rate", "caption_tag_dropout_rate"):
        need(0 <= getattr(config, name) <= 1, f"{name} must be between 0 and 1")
    need(config.keep_tokens >= 0, "keep_tokens must not be negative")
    need(config.clip_skip >= 1, "clip_skip must be at least 1")
    need(config.prior_loss_weight >= 0, "prior_loss_weight must not be negative")
    need(config.noise_offset >= 0, "noise_offset must not be negative")
    need(config.min_snr_gamma is None or config.min_snr_gamma > 0, "min_snr_gamma must be positive")
    need(config.max_grad_norm >= 0, "max_grad_norm must not be negative")
    width, height = parse_resolution(config.resolution)
    step = config.bucket_reso_steps
    need(step > 0 and step % 8 == 0, f"bucket_reso_steps must be a positive multiple of 8, not {step}")
    if config.model_type == "sdxl" and step % 32:
        raise TrainError(f"bucket_reso_steps must be a multiple of 32 for SDXL, not {step}")
    need(width % 8 == 0 and height % 8 == 0, f"resolution {config.resolution} must be a multiple of 8")
    need(0 < config.min_bucket_reso <= config.max_bucket_reso,
         "min_bucket_reso must be positive and at most max_bucket_reso")
    if config.enable_bucket and not config.bucket_no_upscale:
        need(config.min_bucket_reso <= min(width, height) and max(width, height) <= config.max_bucket_reso,
             f"resolution {config.resolution} must lie within min_bucket_reso..max_bucket_reso "
             f"({config.min_bucket_reso}..{config.max_bucket_reso})")
    if config.cache_latents_to_disk and not config.cache_latents:
        warnings.append("cache_latents_to_disk implies cache_latents; caching latents")
        config.cache_latents = True
    if config.cache_latents and config.random_crop:
        raise TrainError("random_crop needs a fresh crop every step, so it cannot be used with cache_latents; "
                         "turn one of them off")
    precision = config.mixed_precision
    if precision == "bf16" and device.cuda and not device.bf16:
        raise TrainError("mixed_precision = bf16 but this GPU has no bf16 support; use fp16")
    if precision in ("fp16", "bf16") and not device.cuda:
        raise TrainError(f"mixed_precision = {precision} needs a GPU; use mixed_precision = no on this machine")
    if config.save_precision == "bf16" and device.cuda and not device.bf16:
        warnings.append("save_precision = bf16 on a GPU without bf16: the file is still written in bf16")
    problem = optimizer_available(config.optimizer)
    if problem:
        raise TrainError(problem)
    if config.xformers:
        try:
            import xformers  # noqa: F401
        except ImportError:
            warnings.append("xformers is not installed; using PyTorch SDPA attention")
            config.xformers = False
    for name in ("network_weights", "sample_prompts"):
        value = getattr(config, name)
        if value is not None and not Path(value).is_file():
            raise TrainError(f"{name}: {value}: no such file")
    if config.resume is not None and not Path(config.resume).is_dir():
        raise TrainError(f"resume: {config.resume}: no such state folder (written by save_state)")
    if config.sample_prompts is None and (config.sample_every_n_steps or config.sample_every_n_epochs):
        warnings.append("sample_every_n_* is set but sample_prompts is not; no samples will be made")
    return warnings


def check_dataset(config: TrainConfig, warn: Callable[[str], None]) -> None:
    """Run `lorakit validate`'s checks; a rejected dataset stops the run with its first error."""
    if config.dataset is None:
        raise TrainError("no dataset given; set dataset or pass --dataset DIR")
    root = Path(config.dataset)
    if not root.is_dir():
        raise TrainError(f"{root}: dataset folder not found")
    if config.reg_dataset is not None and not Path(config.reg_dataset).is_dir():
        raise TrainError(f"{config.reg_dataset}: reg_dataset folder not found")
    if not config.validate_dataset:
        return
    try:
        from prep.validate import ValidateOptions, validate
    except ImportError:  # validation not available in this checkout
        return
    max_len = None if config.max_token_length == "auto" else int(config.max_token_length)
    report = validate(root, ValidateOptions(reg=config.reg_dataset, max_token_length=max_len,
                                            resolution=0, caption_extension=config.caption_extension,
                                            batch_size=config.train_batch_size))
    errors = [p for p in report.problems if p.is_error]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise TrainError(f"{root}: dataset rejected by validate: {first.code} {first.path}: "
                         f"{first.message}{more}; run `lorakit validate {root}`")
    for found in report.problems:
        if found.code in ("has-alpha", "duplicate-image", "missing-caption"):
            warn(f"{found.code} {found.path}: {found.message}")
