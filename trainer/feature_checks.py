"""The checks of issue 16's options (network kinds, block LRs, masks, noise, validation, logging, EMA,
caches, fp8), without torch: `config_problems` reports them with the field they are about.

Each check yields (field, message, severity); nothing here changes the config or imports torch,
diffusers or lycoris (the `lorakit train` error and the Train form's live marks come in milliseconds).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

from trainer.block_lr import SD_BLOCKS, SD_MID, SDXL_BLOCKS, SDXL_MID, parse_weights
from trainer.errors import TrainError
from trainer.model_family import config_family

Finding = tuple[str, str, str]  # field, message, "error" | "warning"
TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


def installed(module: str) -> bool:
    """Whether a package can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def trains_text_encoder(config) -> bool:
    te_lr = config.text_encoder_lr if config.text_encoder_lr is not None else config.learning_rate
    return not config.train_unet_only and te_lr > 0


def text_cache_refusal(config) -> str | None:
    """Why the text encoder outputs cannot be cached for this run (kohya's rule), or None."""
    if trains_text_encoder(config):
        return "the text encoder is trained; set train_unet_only = true (or text_encoder_lr = 0)"
    if config.shuffle_caption:
        return "shuffle_caption changes the captions every step; turn it off"
    if config.caption_dropout_rate > 0:
        return "caption_dropout_rate changes the captions between steps; set it to 0"
    if config.caption_tag_dropout_rate > 0:
        return "caption_tag_dropout_rate changes the captions between steps; set it to 0"
    return None


def guess_is_sdxl(config) -> bool | None:
    """SDXL or not (trainer.model_family); None when that needs the hub or a model load (then the
    block weight counts wait for the model)."""
    family = config_family(config)
    return None if family is None else family == "sdxl"


def _block_weight_findings(config) -> Iterator[Finding]:
    sdxl = guess_is_sdxl(config)
    # Without the family: the larger of the two counts (SD's 12 down/up, SDXL's 3 mid).
    blocks = SDXL_BLOCKS if sdxl else SD_BLOCKS
    mid = SD_MID if sdxl is False else SDXL_MID
    family = {True: " (SDXL)", False: " (SD 1.x/2.x)", None: ""}[sdxl]
    for field, length, presets in (("down_lr_weight", blocks, True), ("mid_lr_weight", mid, False),
                                   ("up_lr_weight", blocks, True)):
        try:
            parse_weights(field, getattr(config, field), length, presets)
        except TrainError as exc:
            yield field, str(exc).replace("this model has", f"this model{family} has"), "error"
    if config.block_lr_zero_threshold < 0:
        yield "block_lr_zero_threshold", "block_lr_zero_threshold must not be negative", "error"


def network_findings(config) -> Iterator[Finding]:
    kind = config.network_type
    if kind in ("loha", "lokr") and config.network_dropout:
        yield "network_dropout", (f"network_dropout is not implemented by LyCORIS for {kind}; unset it or use "
                                  "network_type = locon"), "error"
    if config.dora and config.network_dropout:
        yield "network_dropout", "network_dropout is ignored by DoRA (LyCORIS dora_wd); unset it", "error"
    if kind == "lokr" and (config.lokr_factor == 0 or config.lokr_factor < -1):
        yield "lokr_factor", f"lokr_factor must be -1 or a positive number, not {config.lokr_factor}", "error"
    if config.fp8_base and (kind in ("loha", "lokr") or config.dora):
        yield "fp8_base", ("fp8_base works with network_type = lora or locon without dora (LoHa, LoKr and DoRA "
                           "rebuild the full base weight); unset fp8_base or change the network"), "error"


def _loss_findings(config) -> Iterator[Finding]:
    if config.masked_loss and not (config.alpha_mask or config.mask_dir):
        yield "masked_loss", ("masked_loss needs masks: set alpha_mask = true (the images' alpha channel) "
                              "or mask_dir"), "error"
    if config.alpha_mask and config.mask_dir:
        yield "mask_dir", "alpha_mask and mask_dir are two mask sources; set one", "error"
    if config.mask_dir is not None and not Path(config.mask_dir).is_dir():
        yield "mask_dir", f"mask_dir {config.mask_dir}: no such folder", "error"
    if (config.alpha_mask or config.mask_dir) and not config.masked_loss:
        yield "masked_loss", "alpha_mask/mask_dir are set but masked_loss is off: the masks are not used", "warning"
    if config.multires_noise_iterations < 0:
        yield "multires_noise_iterations", "multires_noise_iterations must not be negative", "error"
    if not 0 < config.multires_noise_discount <= 1:
        yield "multires_noise_discount", "multires_noise_discount must be in (0, 1]", "error"
    if config.ip_noise_gamma is not None and config.ip_noise_gamma < 0:
        yield "ip_noise_gamma", "ip_noise_gamma must not be negative", "error"
    if config.zero_terminal_snr and config.v_parameterization is False:
        yield "zero_terminal_snr", ("zero_terminal_snr with an epsilon target cannot denoise the last "
                                    "timestep; use it with v_parameterization = true"), "warning"


def _watch_findings(config) -> Iterator[Finding]:
    if not 0 <= config.validation_split < 1:
        yield "validation_split", f"validation_split must be in [0, 1), not {config.validation_split}", "error"
    if config.validation_dataset is not None:
        if not Path(config.validation_dataset).is_dir():
            yield "validation_dataset", f"validation_dataset {config.validation_dataset}: no such folder", "error"
        if config.validation_split:
            yield "validation_split", "validation_dataset is set, so validation_split is not used", "warning"
    validating = bool(config.validation_split) or config.validation_dataset is not None
    for field in ("validate_every_n_steps", "validate_every_n_epochs"):
        value = getattr(config, field)
        if value is not None and value < 1:
            yield field, f"{field} must be at least 1 (or unset), not {value}", "error"
        elif value is not None and not validating:
            yield field, (f"{field} is set but there are no validation images; set validation_split or "
                          "validation_dataset"), "warning"
    if config.overfit_patience < 1:
        yield "overfit_patience", "overfit_patience must be at least 1", "error"
    if config.save_best and not validating:
        yield "save_best", ("save_best keeps the file with the lowest validation loss, but there is no validation: "
                            "set validation_split (e.g. 0.1) or validation_dataset"), "error"
    if config.log_with is not None:
        package = TRACKER_PACKAGES.get(config.log_with)
        if package is None:
            yield "log_with", f"log_with = {config.log_with!r}: expected tensorboard or wandb", "error"
        elif not installed(package):
            yield "log_with", (f"log_with = {config.log_with} needs the {package} package: "
                               f"pip install 'lorakit[{package}]'"), "error"
    elif config.logging_dir is not None:
        yield "logging_dir", "logging_dir is set but log_with is not; nothing is logged there", "warning"
    if config.ema_decay is not None and not 0 < config.ema_decay < 1:
        yield "ema_decay", f"ema_decay must be between 0 and 1 (e.g. 0.999), not {config.ema_decay}", "error"
    if config.ema_on_cpu and config.ema_decay is None:
        yield "ema_on_cpu", "ema_on_cpu is set but ema_decay is not; no EMA is kept", "warning"


def _cache_findings(config) -> Iterator[Finding]:
    if config.cache_text_encoder_outputs or config.cache_text_encoder_outputs_to_disk:
        reason = text_cache_refusal(config)
        if reason:
            yield "cache_text_encoder_outputs", f"cache_text_encoder_outputs is not possible: {reason}", "error"


def feature_findings(config) -> list[Finding]:
    """Every problem of the network, loss, watching and cache options."""
    return [*network_findings(config), *_block_weight_findings(config), *_loss_findings(config),
            *_watch_findings(config), *_cache_findings(config)]
