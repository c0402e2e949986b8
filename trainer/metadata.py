"""The LoRA file's header metadata: kohya's `ss_*` keys (every value a string), lorakit's own keys."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from prep import __version__
from trainer.config import TrainConfig
from trainer.data import TrainingSet
from trainer.network_kinds import network_spec


def _s(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def build_metadata(config: TrainConfig, training: TrainingSet, *, model_type: str, v_parameterization: bool,
                   base_model_version: str, model_name: str, mixed_precision: str, max_token_length: int,
                   total_steps: int, epochs: int, batches_per_epoch: int, unet_lr: float,
                   text_encoder_lr: float, started_at: float, zero_terminal_snr: bool = False) -> dict[str, str]:
    """The metadata written into every save; `finish_metadata` adds step, epoch and finish time."""
    width, height = config.resolution_wh()
    spec = network_spec(config)
    network_args = spec.network_args()
    for name in ("down_lr_weight", "mid_lr_weight", "up_lr_weight"):
        if getattr(config, name) is not None:
            network_args[name] = str(getattr(config, name))
    optimizer_args = ",".join(config.optimizer_args)
    meta: dict[str, Any] = {
        "ss_session_id": str(uuid.uuid4().int % 2**32),
        "ss_training_started_at": started_at,
        "ss_output_name": config.output_name,
        "ss_learning_rate": config.learning_rate,
        "ss_text_encoder_lr": text_encoder_lr,
        "ss_unet_lr": unet_lr,
        "ss_num_train_images": training.num_train_images,
        "ss_num_reg_images": training.num_reg_images,
        "ss_num_batches_per_epoch": batches_per_epoch,
        "ss_num_epochs": epochs,
        "ss_gradient_checkpointing": config.gradient_checkpointing,
        "ss_gradient_accumulation_steps": config.gradient_accumulation_steps,
        "ss_max_train_steps": total_steps,
        "ss_lr_warmup_steps": config.lr_warmup_steps if config.lr_warmup_steps is not None
        else int(config.lr_warmup_ratio * total_steps),
        "ss_lr_scheduler": config.lr_scheduler,
        "ss_network_module": spec.module_name,
        "ss_network_dim": config.network_dim,
        "ss_network_alpha": config.network_alpha,
        "ss_network_dropout": config.network_dropout,
        "ss_network_args": network_args if network_args else None,
        "ss_mixed_precision": mixed_precision,
        "ss_full_fp16": False,
        "ss_v2": model_type in ("sd2", "sd2-v"),
        "ss_base_model_version": base_model_version,
        "ss_v_parameterization": v_parameterization,
        "ss_clip_skip": config.clip_skip if model_type != "sdxl" else None,
        "ss_max_token_length": max_token_length,
        "ss_cache_latents": config.cache_latents,
        "ss_seed": config.seed,
        "ss_lowram": False,
        "ss_noise_offset": config.noise_offset if config.noise_offset else None,
        "ss_min_snr_gamma": config.min_snr_gamma,
        "ss_multires_noise_iterations": config.multires_noise_iterations or None,
        "ss_multires_noise_discount": config.multires_noise_discount,
        "ss_ip_noise_gamma": config.ip_noise_gamma,
        "ss_zero_terminal_snr": zero_terminal_snr,
        "ss_debiased_estimation": config.debiased_estimation_loss,
        "ss_masked_loss": config.masked_loss,
        "ss_prior_loss_weight": config.prior_loss_weight,
        "ss_sd_model_name": model_name,
        "ss_vae_name": config.vae,
        "ss_optimizer": f"{config.optimizer}({optimizer_args})" if optimizer_args else config.optimizer,
        "ss_max_grad_norm": config.max_grad_norm,
        "ss_caption_dropout_rate": config.caption_dropout_rate,
        "ss_caption_tag_dropout_rate": config.caption_tag_dropout_rate,
        "ss_face_crop_aug_range": None,
        "ss_training_comment": None,
        "ss_sd_scripts_commit_hash": None,
        "ss_batch_size_per_device": config.train_batch_size,
        "ss_total_batch_size": config.train_batch_size * config.gradient_accumulation_steps,
        "ss_resolution": f"({width}, {height})",
        "ss_enable_bucket": config.enable_bucket,
        "ss_min_bucket_reso": config.min_bucket_reso,
        "ss_max_bucket_reso": config.max_bucket_reso,
        "ss_bucket_no_upscale": config.bucket_no_upscale,
        "ss_bucket_info": training.bucket_info(),
        "ss_flip_aug": config.flip_aug,
        "ss_color_aug": False,
        "ss_random_crop": config.random_crop,
        "ss_shuffle_caption": config.shuffle_caption,
        "ss_keep_tokens": config.keep_tokens,
        "ss_keep_tokens_separator": config.keep_tokens_separator,
        "ss_caption_extension": config.caption_extension,
        "ss_dataset_dirs": training.dataset_dirs,
        "ss_reg_dataset_dirs": training.reg_dataset_dirs,
        "ss_tag_frequency": training.tag_frequency,
        "lorakit_version": __version__,
        "lorakit_config": config.to_dict(),
    }
    if config.keep_tokens_separator == "":
        meta.pop("ss_keep_tokens_separator")
    return {key: _s(value) for key, value in meta.items()}


def finish_metadata(base: dict[str, str], *, step: int, epoch: int) -> dict[str, str]:
    meta = dict(base)
    meta["ss_steps"] = str(step)
    meta["ss_epoch"] = str(epoch)
    meta["ss_training_finished_at"] = str(time.time())
    return meta
