"""`TrainConfig`: every training option, its default and its meaning (the lora-guide's names).

The TOML file holds the fields at the top level or under `[train]` (so `lorakit.toml` works);
relative paths in a file are relative to that file's folder. Every field is also a CLI flag
(`--network-dim` and `--network_dim`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prep.buckets import parse_resolution
from prep.config import (
    WORKSPACE_FILE,
    add_arguments,
    load_options,
    read_toml,
    read_workspace_file,
    resolve,
    to_mapping,
)
from prep.config import option as o

MODEL_TYPE_CHOICES = ("auto", "sd1", "sd2", "sd2-v", "sdxl")
OPTIMIZERS = ("AdamW", "AdamW8bit", "Lion", "SGD", "Adafactor", "Prodigy")
SCHEDULERS = ("constant", "linear", "cosine", "cosine_with_restarts", "polynomial", "constant_with_warmup")
PRECISIONS = ("no", "fp16", "bf16")
SAVE_PRECISIONS = ("fp32", "fp16", "bf16")
TOKEN_LENGTHS = ("auto", "75", "150", "225")
NETWORK_TYPES = ("lora", "locon", "loha", "lokr")
LOGGERS = ("tensorboard", "wandb")

# Fields naming files or folders; in a config file they are relative to the file's folder.
PATH_FIELDS = ("dataset", "reg_dataset", "vae", "network_weights", "output_dir", "resume", "sample_prompts",
               "pretrained_model", "mask_dir", "validation_dataset", "logging_dir")


@dataclass
class TrainConfig:
    """A LoRA training run (kohya train_network.py semantics, LoRA-friendly defaults)."""

    # Model
    pretrained_model: str = o("", "base model: a diffusers folder, a single-file .safetensors (or .ckpt, "
                                  "loaded safely), or a Hugging Face hub id")
    model_type: str = o("auto", "model family; auto reads it from the model config (sd2-v = v-prediction)",
                        choices=MODEL_TYPE_CHOICES)
    v_parameterization: bool | None = o(None, "train with the v-prediction target (follows model_type "
                                              "when unset)")
    vae: str | None = o(None, "a VAE to use instead of the model's own (folder, file or hub id)")
    pretrained_model_config: str | None = o(
        None, "for a single-file checkpoint: a diffusers folder (or hub id) holding the model's configs; "
              "by default diffusers fetches the matching configs from the hub (a local folder works offline)")
    # Data
    dataset: Path | None = o(None, "dataset folder holding <repeats>_<name> concept folders")
    reg_dataset: Path | None = o(None, "regularization images folder (same layout); cycled to match the "
                                       "training images and mixed into the batches")
    caption_extension: str = o(".txt", "caption file extension")
    resolution: str = o("512", "training resolution: an int (square) or \"W,H\"; buckets keep this area")
    enable_bucket: bool = o(True, "aspect-ratio bucketing: images are trained at the bucket nearest "
                                  "their aspect ratio instead of being cropped square")
    min_bucket_reso: int = o(256, "smallest bucket side")
    max_bucket_reso: int = o(1024, "largest bucket side")
    bucket_reso_steps: int = o(64, "bucket sides are multiples of this (a multiple of 8; 32 for SDXL)")
    bucket_no_upscale: bool = o(False, "never upscale: small images get a bucket of their own size "
                                       "(floored to bucket_reso_steps)")
    flip_aug: bool = o(False, "randomly mirror images horizontally (not for asymmetrical characters)")
    random_crop: bool = o(False, "crop a random part of the resized image instead of the centre")
    shuffle_caption: bool = o(False, "shuffle the comma-separated tags of each caption every step")
    keep_tokens: int = o(0, "keep the first N tags in place when shuffling (e.g. 1 to keep the "
                            "trigger word first)")
    keep_tokens_separator: str = o("", "tags before this separator (e.g. |||) stay fixed; overrides keep_tokens")
    caption_dropout_rate: float = o(0.0, "probability of training a step with an empty caption")
    caption_tag_dropout_rate: float = o(0.0, "probability of dropping each (non-kept) tag")
    prior_loss_weight: float = o(1.0, "loss weight of regularization images")
    cache_latents: bool = o(False, "encode every image with the VAE once, before training (faster, less "
                                   "VRAM; rules out random_crop)")
    cache_latents_to_disk: bool = o(False, "keep the latent cache in .npz files beside the images between runs "
                                           "(keyed by image bytes, bucket, crop/flip, VAE and dtype; "
                                           "`lorakit train --clear-cache` removes them)")
    cache_text_encoder_outputs: bool = o(False, "encode every caption once and move the text encoders off the GPU "
                                                "(needs train_unet_only and captions that never change: no "
                                                "shuffle or dropout)")
    cache_text_encoder_outputs_to_disk: bool = o(False, "also keep them in <image>_te_outputs.npz files beside "
                                                        "the images between runs")
    # Text
    max_token_length: str = o("auto", "caption tokens: 75, 150 or 225 (captions are encoded in 75-token "
                                      "chunks); auto = the smallest that fits the longest caption",
                              choices=TOKEN_LENGTHS)
    clip_skip: int = o(1, "use the text encoder layer this far from the end (1 for SD-based models, 2 "
                          "for NAI-based anime models); SDXL ignores it")
    # Network
    network_dim: int = o(32, "LoRA rank: how many parameters of the UNet and text encoder to train; "
                             "bigger = more VRAM and a bigger file, above 128 rarely helps")
    network_alpha: float = o(16.0, "scales the LoRA update by network_alpha/network_dim (kohya's "
                                   "anti-underflow knob; a lower alpha needs a higher learning rate)")
    network_dropout: float | None = o(None, "dropout on the LoRA down projection's output")
    conv_dim: int | None = o(None, "rank of the LoRA on 3x3 convs of ResNet blocks and up/down samplers "
                                   "(LoCon); unset = no conv LoRA (locon: network_dim)")
    conv_alpha: float | None = o(None, "alpha of the conv LoRA (default 1 as kohya; LyCORIS kinds: network_alpha)")
    network_type: str = o("lora", "network kind: lora (kohya networks.lora; LoCon when conv_dim is set), "
                                  "locon, loha or lokr (LyCORIS lycoris.kohya, algo=...)", choices=NETWORK_TYPES)
    lokr_factor: int = o(-1, "LoKr: Kronecker factor of the split (LyCORIS factor; -1 = the most even split)")
    dora: bool = o(False, "DoRA weight decomposition on lora/locon/loha/lokr (LyCORIS dora_wd; the file "
                          "gets dora_scale tensors and is written as lycoris.kohya)")
    down_lr_weight: str | None = o(None, "block-wise LR weights of the UNet down blocks (kohya network_args): "
                                         "12 comma-separated numbers for SD1/2, 9 for SDXL (missing ones are "
                                         "1), or a preset sine, cosine, linear, reverse_linear, zeros, with an "
                                         "optional +offset (e.g. sine+0.5)")
    mid_lr_weight: str | None = o(None, "block-wise LR weight of the UNet mid block (1 number for SD1/2, 3 for "
                                        "SDXL)")
    up_lr_weight: str | None = o(None, "block-wise LR weights of the UNet up blocks (as down_lr_weight)")
    block_lr_zero_threshold: float = o(0.0, "blocks whose LR weight is at most this get no LoRA at all "
                                            "(kohya block_lr_zero_threshold)")
    train_unet_only: bool = o(False, "train only the UNet LoRA (text encoder untouched; advised for SDXL)")
    train_text_encoder_only: bool = o(False, "train only the text encoder LoRA")
    network_weights: Path | None = o(None, "a LoRA file to continue training from")
    # Optimisation
    learning_rate: float = o(1e-4, "master learning rate for UNet and text encoder unless they are set "
                                   "(1e-4 suits SD 1.x); scale it with the batch size")
    unet_lr: float | None = o(None, "UNet learning rate; supersedes learning_rate")
    text_encoder_lr: float | None = o(None, "text encoder learning rate; supersedes learning_rate (often "
                                            "5-10x lower than unet_lr)")
    optimizer: str = o("AdamW", "optimizer (AdamW8bit needs bitsandbytes and a GPU; Prodigy needs prodigyopt)",
                       choices=OPTIMIZERS)
    optimizer_args: list[str] = o(help="extra optimizer arguments as key=value (e.g. weight_decay=0.01)",
                                  default_factory=list)
    lr_scheduler: str = o("constant", "learning-rate curve: constant, linear (to 0), cosine (to 0), "
                                      "cosine_with_restarts, polynomial, constant_with_warmup",
                          choices=SCHEDULERS)
    lr_warmup_ratio: float = o(0.0, "fraction of the steps during which the learning rate rises linearly "
                                    "from 0 (not for constant)")
    lr_warmup_steps: int | None = o(None, "warmup as a number of steps (overrides lr_warmup_ratio)")
    lr_scheduler_num_cycles: int = o(1, "hard restarts of cosine_with_restarts")
    lr_scheduler_power: float = o(1.0, "power of the polynomial decay")
    train_batch_size: int = o(1, "images per step; when raising it, raise learning_rate in proportion")
    gradient_accumulation_steps: int = o(1, "batches accumulated into one optimizer step")
    max_train_epochs: int | None = o(None, "number of epochs (one epoch = every image x its repeats); "
                                           "default 10 when max_train_steps is unset")
    max_train_steps: int | None = o(None, "number of optimizer steps (max_train_epochs wins when both are set)")
    max_grad_norm: float = o(1.0, "gradient clipping norm (0 = off)")
    seed: int = o(42, "random seed (data order, noise, initial LoRA weights)")
    # Loss
    noise_offset: float = o(0.0, "noise offset (about 0.05-0.1 helps very dark/bright images)")
    min_snr_gamma: float | None = o(None, "Min-SNR loss weighting gamma (5 is common; diffusers compute_snr)")
    multires_noise_iterations: int = o(0, "multi-resolution (pyramid) noise levels (6-10 is common; 0 = off)")
    multires_noise_discount: float = o(0.3, "weight of each coarser pyramid noise level")
    ip_noise_gamma: float | None = o(None, "input perturbation noise on the noisy latents (0.1 is common)")
    zero_terminal_snr: bool | None = o(None, "rescale the betas to zero terminal SNR (use with "
                                             "v_parameterization); follows the model's ztsnr marker when unset")
    debiased_estimation_loss: bool = o(False, "weight the loss by 1/sqrt(SNR) (1/(SNR+1) for v-prediction)")
    masked_loss: bool = o(False, "learn only where the mask is white: per latent pixel, after the image's crop, "
                                 "flip and resize (needs alpha_mask or mask_dir)")
    alpha_mask: bool = o(False, "masked_loss masks from each image's alpha channel (transparent = ignored)")
    mask_dir: Path | None = o(None, "masked_loss masks from mask images: a folder mirroring the dataset "
                                    "(<concept folder>/<image stem>.png), white = learn, black = ignore")
    # Memory / speed
    mixed_precision: str | None = o(None, "no, fp16 or bf16; default bf16 where the GPU has it, else fp16; "
                                          "no on CPU", choices=PRECISIONS)
    save_precision: str = o("fp16", "precision of the saved LoRA file", choices=SAVE_PRECISIONS)
    gradient_checkpointing: bool = o(False, "recompute activations in the backward pass: much less VRAM, slower")
    fp8_base: bool = o(False, "store the frozen UNet and text encoder weights as float8_e4m3fn, upcast layer by "
                              "layer (about half the weight memory of fp16; lora/locon only)")
    xformers: bool = o(False, "use xformers attention when installed (PyTorch SDPA is the default)")
    max_data_loader_n_workers: int = o(0, "image loading worker processes (0 = in the training process)")
    # Output
    output_dir: Path = o(Path("output"), "folder for LoRA files, states and samples")
    output_name: str = o("lora", "file name stem: <name>.safetensors, <name>-000001.safetensors per epoch")
    save_every_n_epochs: int | None = o(None, "also save a LoRA every N epochs")
    save_every_n_steps: int | None = o(None, "also save a LoRA every N steps")
    save_last_n: int | None = o(None, "keep only the newest N intermediate saves (and states)")
    save_state: bool = o(False, "save the training state (optimizer, scheduler, RNG, step) with each save, "
                                "for resume")
    resume: Path | None = o(None, "a state folder written by save_state to continue exactly from")
    sample_every_n_steps: int | None = o(None, "generate sample images every N steps")
    sample_every_n_epochs: int | None = o(None, "generate sample images every N epochs (wins over steps)")
    sample_prompts: Path | None = o(None, "prompt file in kohya syntax: one prompt per line with --n negative, "
                                          "--w, --h, --s steps, --l CFG scale, --d seed")
    validate_dataset: bool = o(True, "run the dataset checks of `lorakit validate` before loading models")
    # Watching a run
    validation_split: float = o(0.0, "fraction of the training images held out for validation loss (chosen "
                                     "with validation_seed, never trained on)")
    validation_seed: int | None = o(None, "seed choosing the held-out images and the validation noise "
                                          "(default: seed)")
    validation_dataset: Path | None = o(None, "a separate dataset folder (same layout) for validation loss "
                                              "instead of validation_split")
    validate_every_n_steps: int | None = o(None, "compute the validation loss every N steps")
    validate_every_n_epochs: int | None = o(None, "compute the validation loss every N epochs (default 1 when "
                                                  "validation images exist and neither is set)")
    overfit_patience: int = o(3, "warn when the validation loss has risen for this many evaluations in a row")
    save_best: bool = o(False, "keep the LoRA with the lowest validation loss as <output_name>-best.safetensors")
    log_with: str | None = o(None, "log loss, learning rates, validation loss and samples through accelerate's "
                                   "trackers: tensorboard or wandb (pip install lorakit[tensorboard] / [wandb])",
                             choices=LOGGERS)
    logging_dir: Path | None = o(None, "folder for tracker logs (default: <output_dir>/logs)")
    ema_decay: float | None = o(None, "keep an exponential moving average of the LoRA weights with this decay "
                                      "(e.g. 0.999); samples, validation and saved files use it")
    ema_on_cpu: bool = o(False, "keep the EMA copy in CPU memory (saves VRAM, a little slower)")

    def resolution_wh(self) -> tuple[int, int]:
        return parse_resolution(self.resolution)

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)


# The lora-guide's spellings of three options (its PowerShell variables), accepted as aliases.
GUIDE_ALIASES = {"num_epochs": "max_train_epochs", "scheduler": "lr_scheduler", "shuffle_captions": "shuffle_caption"}


def config_table(data: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig table of a parsed TOML file: `[train]` when present, else the top level."""
    table = data.get("train")
    values = dict(table) if isinstance(table, dict) else dict(data)
    for alias, name in GUIDE_ALIASES.items():
        if alias in values and name not in values:
            values[name] = values.pop(alias)
    return values


def _rebase_paths(values: dict[str, Any], base: Path) -> dict[str, Any]:
    out = dict(values)
    for name in PATH_FIELDS:
        value = out.get(name)
        if not isinstance(value, str) or not value:
            continue
        path = Path(value).expanduser()
        if path.is_absolute():
            out[name] = str(path)
            continue
        rebased = base / path
        if name != "output_dir" and not rebased.exists() and path.exists():
            continue  # an existing path relative to the working folder, as kohya reads paths
        # A hub id like "org/model" is not a path: keep it unless the file or folder exists.
        if name in ("pretrained_model", "vae", "pretrained_model_config") and not rebased.exists():
            continue
        out[name] = str(rebased)
    return out


def load_config(config_file: Path | None = None, args: argparse.Namespace | dict[str, Any] | None = None,
                cwd: Path | None = None) -> TrainConfig:
    """The file's values (top level or [train]) with CLI overrides layered on top.

    Without a file: `[train]` of the nearest lorakit.toml (from --dataset, else the current folder),
    read by the one options loader.
    """
    if config_file is None:
        given = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
        dataset = given.get("dataset")
        return load_options(TrainConfig, "train", args, dataset=Path(dataset) if dataset else None, cwd=cwd,
                            adapt=_adapt_table)
    path = Path(config_file)
    if path.name == WORKSPACE_FILE:  # a workspace file: its tables are checked like every command's
        return load_options(TrainConfig, "train", args, workspace=read_workspace_file(path), adapt=_adapt_table)
    data = read_toml(path)
    return resolve(TrainConfig, args, _adapt_table(config_table(data), path.resolve().parent), str(path))


def _adapt_table(values: dict[str, Any], folder: Path) -> dict[str, Any]:
    return _rebase_paths(config_table({"train": values}), folder.resolve())


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, with `--field_name` aliases for kohya users (and the guide's names)."""
    add_arguments(parser, TrainConfig, underscore_aliases=True)
    parser.add_argument("--num-epochs", "--num_epochs", dest="max_train_epochs", type=int, metavar="N",
                        default=argparse.SUPPRESS, help="the guide's name for --max-train-epochs")
    parser.add_argument("--scheduler", dest="lr_scheduler", choices=SCHEDULERS, default=argparse.SUPPRESS,
                        help="the guide's name for --lr-scheduler")
    parser.add_argument("--shuffle-captions", "--shuffle_captions", dest="shuffle_caption",
                        action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                        help="the guide's name for --shuffle-caption")

