"""`--export-kohya DIR`: the same run as kohya sd-scripts inputs (dataset_config.toml, config_file.toml).

Train elsewhere with:
    accelerate launch train_network.py --config_file DIR/config_file.toml
(`sdxl_train_network.py` for SDXL). The dataset config lists every concept folder as a subset
with its repeats and the caption extension; reg folders are subsets with `is_reg = true`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prep.dataset import Dataset
from prep.fsio import atomic_write_text
from trainer.config import TrainConfig
from trainer.errors import TrainError
from trainer.network_kinds import network_spec
from trainer.trackers import logging_dir

SAVE_PRECISION = {"fp32": "float", "fp16": "fp16", "bf16": "bf16"}
V2_TYPES = ("sd2", "sd2-v")


BLOCK_LR_FIELDS = ("down_lr_weight", "mid_lr_weight", "up_lr_weight")
DEFAULT_EPOCHS = 10


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _model_path(source: str) -> str:
    """A local model as an absolute path (kohya runs from its own folder); a hub id as is."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def _default_precision() -> str:
    """lorakit's default on a GPU: bf16 where the GPU has it, else fp16 (kohya's default, no, is fp32)."""
    from trainer.checks import DeviceInfo

    device = DeviceInfo.detect()
    return "bf16" if device.bf16 else "fp16"


def model_kind(config: TrainConfig) -> str:
    """model_type, with "auto" resolved to sdxl where the model folder or file says so (no model load)."""
    from trainer.feature_checks import guess_is_sdxl

    return "sdxl" if config.model_type == "auto" and guess_is_sdxl(config) else config.model_type


def without_kohya_equivalent(config: TrainConfig) -> list[str]:
    """Options set in config that kohya sd-scripts cannot be given (named in the export's header)."""
    spec = network_spec(config)
    kind = model_kind(config)
    missing = []
    if spec.uses_lycoris and any(getattr(config, name) is not None for name in BLOCK_LR_FIELDS):
        missing.append("down/mid/up_lr_weight (lycoris.kohya has no block-wise learning rates)")
    if kind != "sdxl" and (config.cache_text_encoder_outputs or config.cache_text_encoder_outputs_to_disk):
        missing.append("cache_text_encoder_outputs (train_network.py has it for SDXL only)")
    if config.validation_dataset is not None:
        missing.append("validation_dataset (kohya holds out validation_split of the training images only)")
    if config.save_best:
        missing.append("save_best")
    if config.validation_split or config.validation_dataset:
        missing.append(f"overfit_patience = {config.overfit_patience}")
    if config.ema_decay is not None:
        missing.append("ema_decay/ema_on_cpu (sd-scripts has no EMA for LoRA)")
    return missing


def dataset_config(config: TrainConfig) -> dict[str, Any]:
    """kohya's dataset_config TOML as a dict: [general], one [[datasets]] with its subsets."""
    if config.dataset is None:
        raise TrainError("no dataset given; set dataset or pass --dataset DIR")
    width, height = config.resolution_wh()
    general = _drop_none({
        "caption_extension": config.caption_extension,
        "shuffle_caption": config.shuffle_caption,
        "keep_tokens": config.keep_tokens,
        "keep_tokens_separator": config.keep_tokens_separator or None,
        "caption_dropout_rate": config.caption_dropout_rate,
        "caption_tag_dropout_rate": config.caption_tag_dropout_rate,
        "flip_aug": config.flip_aug,
        "random_crop": config.random_crop,
        "alpha_mask": True if config.alpha_mask else None,
    })
    subsets: list[dict[str, Any]] = []
    for root, is_reg in ((config.dataset, False), (config.reg_dataset, True)):
        if root is None:
            continue
        dataset = Dataset.load(Path(root), config.caption_extension, follow_symlinks=True)
        if not dataset.concepts:
            raise TrainError(f"{root}: no <repeats>_<name> concept folders to export")
        for concept in dataset.concepts:
            subset: dict[str, Any] = {"image_dir": str(Path(concept.folder).resolve()),
                                      "num_repeats": concept.repeats, "class_tokens": concept.name}
            if is_reg:
                subset["is_reg"] = True
            elif config.mask_dir is not None:  # kohya reads mask images from conditioning_data_dir
                subset["conditioning_data_dir"] = str((Path(config.mask_dir) / concept.folder_name).resolve())
            subsets.append(subset)
    dataset_table = {
        "resolution": width if width == height else [width, height],
        "batch_size": config.train_batch_size,
        "enable_bucket": config.enable_bucket,
        "min_bucket_reso": config.min_bucket_reso,
        "max_bucket_reso": config.max_bucket_reso,
        "bucket_reso_steps": config.bucket_reso_steps,
        "bucket_no_upscale": config.bucket_no_upscale,
        # sd-scripts reads validation_split/_seed at the dataset level of a dataset config.
        **_drop_none({"validation_split": config.validation_split or None,
                      "validation_seed": config.validation_seed if config.validation_split else None}),
        "subsets": subsets,
    }
    return {"general": general, "datasets": [dataset_table]}


def train_config(config: TrainConfig, dataset_config_path: Path, model_type: str | None = None) -> dict[str, Any]:
    """train_network.py arguments for `--config_file` (flat keys, as kohya reads them)."""
    kind = model_type or model_kind(config)
    spec = network_spec(config)
    args = spec.network_args()
    if not spec.uses_lycoris:  # LyCORIS's kohya module has no block-wise learning rates
        for name in BLOCK_LR_FIELDS:
            if getattr(config, name) is not None:
                args[name] = str(getattr(config, name)).replace(" ", "")
        if any(getattr(config, name) is not None for name in BLOCK_LR_FIELDS) and config.block_lr_zero_threshold:
            args["block_lr_zero_threshold"] = str(config.block_lr_zero_threshold)
    network_args = [f"{k}={v}" for k, v in args.items()] or None
    epochs = config.max_train_epochs
    if epochs is None and config.max_train_steps is None:
        epochs = DEFAULT_EPOCHS  # lorakit's default; kohya's would be max_train_steps = 1600
    warmup: int | float | None = config.lr_warmup_steps
    if warmup is None and config.lr_warmup_ratio > 0:
        warmup = config.lr_warmup_ratio  # kohya reads a value below 1 as a fraction of the steps
    caches_text = config.cache_text_encoder_outputs or config.cache_text_encoder_outputs_to_disk
    max_len = None if config.max_token_length in ("auto", "75") else int(config.max_token_length)
    return _drop_none({
        "pretrained_model_name_or_path": _model_path(config.pretrained_model),
        "v2": True if kind in V2_TYPES else None,
        "v_parameterization": True if (config.v_parameterization or kind == "sd2-v") else None,
        "vae": _model_path(config.vae) if config.vae else None,
        "dataset_config": str(dataset_config_path.resolve()),
        "output_dir": str(Path(config.output_dir).resolve()),
        "output_name": config.output_name,
        "save_model_as": "safetensors",
        "network_module": spec.module_name,
        "network_dim": config.network_dim,
        "network_alpha": config.network_alpha,
        "network_dropout": config.network_dropout,
        "network_args": network_args,
        # kohya caches text encoder outputs only with network_train_unet_only (lorakit also takes TE lr 0).
        "network_train_unet_only": (config.train_unet_only or (kind == "sdxl" and caches_text)) or None,
        "network_train_text_encoder_only": config.train_text_encoder_only or None,
        "network_weights": str(config.network_weights) if config.network_weights else None,
        "learning_rate": config.learning_rate,
        "unet_lr": config.unet_lr,
        "text_encoder_lr": config.text_encoder_lr,
        "optimizer_type": config.optimizer,
        "optimizer_args": list(config.optimizer_args) or None,
        "lr_scheduler": config.lr_scheduler,
        "lr_warmup_steps": warmup,
        "lr_scheduler_num_cycles": config.lr_scheduler_num_cycles,
        "lr_scheduler_power": config.lr_scheduler_power,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "max_train_epochs": epochs,
        "max_train_steps": config.max_train_steps,
        "max_grad_norm": config.max_grad_norm,
        "seed": config.seed,
        "noise_offset": config.noise_offset or None,
        "min_snr_gamma": config.min_snr_gamma,
        "multires_noise_iterations": config.multires_noise_iterations or None,
        "multires_noise_discount": config.multires_noise_discount if config.multires_noise_iterations else None,
        "ip_noise_gamma": config.ip_noise_gamma,
        "zero_terminal_snr": True if config.zero_terminal_snr else None,
        "debiased_estimation_loss": config.debiased_estimation_loss or None,
        "masked_loss": config.masked_loss or None,
        "prior_loss_weight": config.prior_loss_weight,
        "mixed_precision": config.mixed_precision or _default_precision(),
        "save_precision": SAVE_PRECISION[config.save_precision],
        "gradient_checkpointing": config.gradient_checkpointing or None,
        "sdpa": None if config.xformers else True,
        "xformers": True if config.xformers else None,
        "cache_latents": config.cache_latents or None,
        "cache_latents_to_disk": config.cache_latents_to_disk or None,
        "cache_text_encoder_outputs": True if caches_text and kind == "sdxl" else None,
        "cache_text_encoder_outputs_to_disk": (True if config.cache_text_encoder_outputs_to_disk and kind == "sdxl"
                                               else None),
        "fp8_base": config.fp8_base or None,
        "validation_split": config.validation_split or None,
        "validation_seed": config.validation_seed if config.validation_split else None,
        "validate_every_n_steps": config.validate_every_n_steps if config.validation_split else None,
        "validate_every_n_epochs": config.validate_every_n_epochs if config.validation_split else None,
        "log_with": config.log_with,
        "logging_dir": str(logging_dir(config).resolve()) if config.log_with else None,
        "max_token_length": max_len,
        "clip_skip": config.clip_skip if kind != "sdxl" else None,
        "max_data_loader_n_workers": config.max_data_loader_n_workers,
        "save_every_n_epochs": config.save_every_n_epochs,
        "save_every_n_steps": config.save_every_n_steps,
        "save_last_n_epochs": config.save_last_n if config.save_every_n_epochs else None,
        "save_last_n_steps": (config.save_last_n * config.save_every_n_steps
                              if config.save_last_n and config.save_every_n_steps else None),
        "save_state": config.save_state or None,
        "resume": str(config.resume) if config.resume else None,
        "sample_every_n_steps": config.sample_every_n_steps,
        "sample_every_n_epochs": config.sample_every_n_epochs,
        "sample_prompts": str(Path(config.sample_prompts).resolve()) if config.sample_prompts else None,
        "sample_sampler": "ddim" if config.sample_prompts else None,
    })


def export_kohya(config: TrainConfig, out_dir: Path) -> tuple[Path, Path]:
    """Write DIR/dataset_config.toml and DIR/config_file.toml; returns their paths. Options without
    a kohya equivalent (`without_kohya_equivalent`) are named in config_file.toml's header."""
    import tomli_w

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset_path = out_dir / "dataset_config.toml"
    config_path = out_dir / "config_file.toml"
    script = "sdxl_train_network.py" if model_kind(config) == "sdxl" else "train_network.py"
    header = (f"# Written by lorakit train --export-kohya. Run with:\n"
              f"#   accelerate launch {script} --config_file {config_path.resolve()}\n")
    missing = without_kohya_equivalent(config)
    if missing:
        header += "# Not exported (no kohya equivalent): " + "; ".join(missing) + "\n"
    atomic_write_text(dataset_path, "# kohya sd-scripts dataset config written by lorakit\n"
                      + tomli_w.dumps(dataset_config(config)))
    atomic_write_text(config_path, header + tomli_w.dumps(train_config(config, dataset_path)))
    return dataset_path, config_path
