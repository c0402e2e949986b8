"""Checks that stop a run before any model loads: invalid combinations, the device, the dataset.

`config_problems` only reports (it changes nothing and imports no torch, so `lorakit train` and the
Train screen's live validation say what is wrong in milliseconds); `apply_defaults` is the separate
step that fills in what the checks imply (cache_latents for cache_latents_to_disk, SDPA without
xformers); `check_config` runs both the way a run needs them.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prep.config import ConfigError
from trainer.config import TrainConfig, parse_resolution
from trainer.errors import TrainError
from trainer.feature_checks import feature_findings, installed


@dataclass(frozen=True)
class DeviceInfo:
    cuda: bool
    bf16: bool
    known: bool = True  # False: guessed from /dev without torch; bf16 support is then unknown

    @classmethod
    def detect(cls) -> DeviceInfo:
        import torch

        cuda = torch.cuda.is_available()
        return cls(cuda, bool(cuda and torch.cuda.is_bf16_supported()))

    @classmethod
    def guess(cls) -> DeviceInfo:
        """Without importing torch: no NVIDIA/AMD device node means certainly no CUDA GPU."""
        nodes = glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/kfd") or glob.glob("/dev/dxg")
        return cls(cuda=bool(nodes), bf16=True, known=False)


@dataclass(frozen=True)
class ConfigProblem:
    """One finding about a TrainConfig: the field it is about ("" for the run as a whole) and the message."""

    field: str
    message: str
    severity: str = "error"  # or "warning"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


def resolve_mixed_precision(config: TrainConfig, device: DeviceInfo) -> str:
    """The configured precision, or the default: bf16 where the GPU has it, fp16 on other GPUs, no on CPU."""
    if config.mixed_precision is not None:
        return config.mixed_precision
    if not device.cuda:
        return "no"
    return "bf16" if device.bf16 else "fp16"


def optimizer_problem(name: str, device: DeviceInfo | None) -> str | None:
    """Why this optimizer cannot run here (from what is installed, without importing it), else None."""
    if name == "AdamW8bit":
        if not installed("bitsandbytes"):
            return "AdamW8bit needs bitsandbytes: pip install 'lorakit[gpu]'"
        if device is not None and not device.cuda:
            return "AdamW8bit needs a CUDA GPU; use AdamW on this machine"
    if name == "Prodigy" and not installed("prodigyopt"):
        return "Prodigy needs prodigyopt: pip install 'lorakit[optim]'"
    if name == "Lion" and not installed("lion_pytorch"):
        return "Lion needs lion-pytorch: pip install 'lorakit[optim]'"
    return None


def config_problems(config: TrainConfig, device: DeviceInfo | None = None) -> list[ConfigProblem]:
    """Every problem of the config, errors and warnings; device None leaves out the machine's checks."""
    problems: list[ConfigProblem] = []

    def need(condition: bool, field: str, message: str) -> None:
        if not condition:
            problems.append(ConfigProblem(field, message))

    def warn(field: str, message: str) -> None:
        problems.append(ConfigProblem(field, message, "warning"))

    need(bool(config.pretrained_model), "pretrained_model", "no base model given; set pretrained_model (a "
                                                           "diffusers folder, .safetensors file or hub id)")
    need(config.dataset is not None, "dataset", "no dataset given; set dataset or pass --dataset DIR")
    need(config.network_dim > 0, "network_dim", f"network_dim must be at least 1, not {config.network_dim}")
    need(config.network_alpha >= 0, "network_alpha",
         f"network_alpha must not be negative, not {config.network_alpha}")
    if config.conv_dim is not None:
        need(config.conv_dim > 0, "conv_dim", f"conv_dim must be at least 1 (or unset), not {config.conv_dim}")
    if config.conv_alpha is not None:
        need(config.conv_alpha >= 0, "conv_alpha", f"conv_alpha must not be negative, not {config.conv_alpha}")
    if config.network_dropout is not None:
        need(0 <= config.network_dropout < 1, "network_dropout", "network_dropout must be in [0, 1)")
    need(not (config.train_unet_only and config.train_text_encoder_only), "train_text_encoder_only",
         "train_unet_only and train_text_encoder_only exclude each other; set at most one")
    need(config.learning_rate >= 0, "learning_rate", "learning_rate must not be negative")
    for name in ("unet_lr", "text_encoder_lr"):
        value = getattr(config, name)
        need(value is None or value >= 0, name, f"{name} must not be negative")
    need(config.train_batch_size >= 1, "train_batch_size", "train_batch_size must be at least 1")
    need(config.gradient_accumulation_steps >= 1, "gradient_accumulation_steps",
         "gradient_accumulation_steps must be at least 1")
    for name in ("max_train_epochs", "max_train_steps", "save_every_n_epochs", "save_every_n_steps",
                 "save_last_n", "sample_every_n_steps", "sample_every_n_epochs"):
        value = getattr(config, name)
        need(value is None or value >= 1, name, f"{name} must be at least 1 (or unset), not {value}")
    need(0 <= config.lr_warmup_ratio < 1, "lr_warmup_ratio", "lr_warmup_ratio must be in [0, 1)")
    need(config.lr_warmup_steps is None or config.lr_warmup_steps >= 0, "lr_warmup_steps",
         "lr_warmup_steps must not be negative")
    if config.lr_scheduler == "constant" and (config.lr_warmup_ratio > 0 or (config.lr_warmup_steps or 0) > 0):
        need(False, "lr_scheduler",
             "lr_scheduler = constant has no warmup; use constant_with_warmup or set the warmup to 0")
    need(config.lr_scheduler_num_cycles >= 1, "lr_scheduler_num_cycles", "lr_scheduler_num_cycles must be at least 1")
    for name in ("caption_dropout_rate", "caption_tag_dropout_rate"):
        need(0 <= getattr(config, name) <= 1, name, f"{name} must be between 0 and 1")
    need(config.keep_tokens >= 0, "keep_tokens", "keep_tokens must not be negative")
    need(config.clip_skip >= 1, "clip_skip", "clip_skip must be at least 1")
    need(config.prior_loss_weight >= 0, "prior_loss_weight", "prior_loss_weight must not be negative")
    need(config.noise_offset >= 0, "noise_offset", "noise_offset must not be negative")
    need(config.min_snr_gamma is None or config.min_snr_gamma > 0, "min_snr_gamma", "min_snr_gamma must be positive")
    need(config.max_grad_norm >= 0, "max_grad_norm", "max_grad_norm must not be negative")
    _resolution_problems(config, need)
    if config.cache_latents_to_disk and not config.cache_latents:
        warn("cache_latents", "cache_latents_to_disk implies cache_latents; caching latents")
    if (config.cache_latents or config.cache_latents_to_disk) and config.random_crop:
        need(False, "random_crop", "random_crop needs a fresh crop every step, so it cannot be used with "
                                   "cache_latents; turn one of them off")
    if device is not None:
        precision = config.mixed_precision
        if precision == "bf16" and device.known and device.cuda and not device.bf16:
            need(False, "mixed_precision", "mixed_precision = bf16 but this GPU has no bf16 support; use fp16")
        if precision in ("fp16", "bf16") and not device.cuda:
            need(False, "mixed_precision",
                 f"mixed_precision = {precision} needs a GPU; use mixed_precision = no on this machine")
        if config.save_precision == "bf16" and device.known and device.cuda and not device.bf16:
            warn("save_precision", "save_precision = bf16 on a GPU without bf16: the file is still written in bf16")
    problem = optimizer_problem(config.optimizer, device)
    if problem:
        need(False, "optimizer", problem)
    if config.xformers and not installed("xformers"):
        warn("xformers", "xformers is not installed (pip install 'lorakit[gpu]'); using PyTorch SDPA attention")
    for name in ("network_weights", "sample_prompts"):
        value = getattr(config, name)
        if value is not None and not Path(value).is_file():
            need(False, name, f"{name}: {value}: no such file")
    if config.resume is not None and not Path(config.resume).is_dir():
        need(False, "resume", f"resume: {config.resume}: no such state folder (written by save_state)")
    if config.sample_prompts is None and (config.sample_every_n_steps or config.sample_every_n_epochs):
        warn("sample_prompts", "sample_every_n_* is set but sample_prompts is not; no samples will be made")
    problems += [ConfigProblem(field, message, severity) for field, message, severity in feature_findings(config)]
    return problems


def _resolution_problems(config: TrainConfig, need: Callable[[bool, str, str], None]) -> None:
    try:
        width, height = parse_resolution(config.resolution)
    except ConfigError as exc:
        need(False, "resolution", str(exc))
        return
    step = config.bucket_reso_steps
    need(step > 0 and step % 8 == 0, "bucket_reso_steps",
         f"bucket_reso_steps must be a positive multiple of 8, not {step}")
    if config.model_type == "sdxl" and step % 32:
        need(False, "bucket_reso_steps", f"bucket_reso_steps must be a multiple of 32 for SDXL, not {step}")
    need(width % 8 == 0 and height % 8 == 0, "resolution", f"resolution {config.resolution} must be a multiple of 8")
    need(0 < config.min_bucket_reso <= config.max_bucket_reso, "min_bucket_reso",
         "min_bucket_reso must be positive and at most max_bucket_reso")
    if config.enable_bucket and not config.bucket_no_upscale:
        need(config.min_bucket_reso <= min(width, height) and max(width, height) <= config.max_bucket_reso,
             "resolution", f"resolution {config.resolution} must lie within min_bucket_reso..max_bucket_reso "
                           f"({config.min_bucket_reso}..{config.max_bucket_reso})")


def apply_defaults(config: TrainConfig) -> None:
    """Fill in what the checks imply: cache_latents for cache_latents_to_disk, SDPA when xformers is missing."""
    if config.cache_latents_to_disk and not config.cache_latents:
        config.cache_latents = True
    if config.xformers and not installed("xformers"):
        config.xformers = False


def check_config(config: TrainConfig, device: DeviceInfo | None = None) -> list[str]:
    """Raise TrainError for the first invalid setting, apply the defaults, return the warnings."""
    problems = config_problems(config, device)
    errors = [p for p in problems if p.is_error]
    if errors:
        raise TrainError(errors[0].message)
    apply_defaults(config)
    return [p.message for p in problems if not p.is_error]


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
