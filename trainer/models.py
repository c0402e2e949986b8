"""Loading the base model: diffusers folder or hub id, single-file .safetensors, or (safely) .ckpt.

`load_models(config, warn)` returns a `Models` bundle with the UNet, VAE, text encoder(s),
tokenizer(s), the training noise scheduler (DDPM with SD's betas, built in code as kohya does)
and the resolved model type and v-parameterization.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.config import TrainConfig
from trainer.errors import TrainError

BASE_MODEL_VERSIONS = {"sd1": "sd_v1", "sd2": "sd_v2", "sd2-v": "sd_v2_v", "sdxl": "sdxl_base_v1-0"}


@dataclass
class Models:
    unet: Any
    vae: Any
    text_encoders: list[Any]
    tokenizers: list[Any]
    noise_scheduler: Any
    sample_scheduler_config: dict[str, Any]
    model_type: str
    v_parameterization: bool
    name: str
    extra: dict[str, Any] = field(default_factory=dict)
    zero_terminal_snr: bool = False

    @property
    def is_sdxl(self) -> bool:
        return self.model_type == "sdxl"

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def latent_scaling(self) -> float:
        return float(getattr(self.vae.config, "scaling_factor", 0.18215))


def detect_model_type(unet, text_encoders, scheduler_config: dict[str, Any]) -> str:
    """sd1 / sd2 / sd2-v / sdxl from the model's own config."""
    unet_config = unet.config
    if len(text_encoders) > 1 or getattr(unet_config, "addition_embed_type", None) == "text_time":
        return "sdxl"
    v_pred = scheduler_config.get("prediction_type") == "v_prediction"
    cross = getattr(unet_config, "cross_attention_dim", 768)
    sd2 = cross == 1024 or getattr(text_encoders[0].config, "hidden_size", 768) == 1024
    if v_pred:
        return "sd2-v"
    return "sd2" if sd2 else "sd1"


def training_noise_scheduler(v_parameterization: bool, zero_terminal_snr: bool = False):
    """SD's DDPM schedule; zero_terminal_snr rescales the betas so the last step is pure noise
    (alpha-bar 0), as kohya's fix_noise_scheduler_betas_for_zero_terminal_snr."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                         clip_sample=False, prediction_type="v_prediction" if v_parameterization else "epsilon",
                         rescale_betas_zero_snr=zero_terminal_snr)


# NoobAI-style v-prediction SDXL files carry these (empty) tensors as markers.
PREDICTION_MARKERS = ("v_pred", "ztsnr")


def _single_file_keys(path: Path) -> list[str]:
    """The tensor names of a .safetensors checkpoint (header validated: one line naming a bad file)."""
    from trainer.safetensors_read import read_header

    return list(read_header(path).entries)


def _is_sdxl_single_file(path: Path) -> bool:
    from trainer.model_family import family_from_keys

    return family_from_keys(_single_file_keys(path)) == "sdxl"


def prediction_from_markers(config: TrainConfig, markers: set[str], source: str,
                            warn: Callable[[str], None]) -> tuple[bool | None, bool | None]:
    """(v_parameterization, zero_terminal_snr) after a checkpoint's v_pred/ztsnr markers: turned on
    with a line saying so; an explicit epsilon run of a v-prediction model is refused."""
    v_param, ztsnr = config.v_parameterization, config.zero_terminal_snr
    if "v_pred" not in markers:
        return v_param, ztsnr
    if v_param is False:
        raise TrainError(f"{source}: a v-prediction model (it carries the v_pred marker key) cannot be trained "
                         "with v_parameterization = false (epsilon): its images come out black or noise. Unset "
                         "v_parameterization (it is turned on for this model) or set it to true")
    turned = []
    if v_param is None:
        v_param = True
        turned.append("v_parameterization")
    if "ztsnr" in markers and ztsnr is None:
        ztsnr = True
        turned.append("zero_terminal_snr")
    if turned:
        warn(f"{Path(source).name}: v-prediction model ({'/'.join(sorted(markers & set(PREDICTION_MARKERS)))} "
             f"marker keys): {' and '.join(turned)} turned on")
    return v_param, ztsnr


def _check_ckpt(path: Path) -> None:
    import pickle

    import torch

    try:
        torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, ValueError) as exc:
        raise TrainError(f"{path}: this .ckpt holds more than tensors and is not loaded (unsafe pickle: "
                         f"{str(exc).splitlines()[0]}); convert it to .safetensors") from None


def _components_from_single_file(path: Path, model_type: str, config_source: str | None = None) -> dict[str, Any]:
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if path.suffix == ".safetensors":
        from trainer.safetensors_read import read_header

        read_header(path)  # the whole header validated (offsets, sizes) before diffusers reads it
    sdxl = model_type == "sdxl" or (model_type == "auto" and path.suffix == ".safetensors"
                                    and _is_sdxl_single_file(path))
    cls = StableDiffusionXLPipeline if sdxl else StableDiffusionPipeline
    kwargs: dict[str, Any] = {}
    if not sdxl:
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    if config_source:
        kwargs["config"] = config_source
        if Path(config_source).is_dir():
            kwargs["local_files_only"] = True
    try:
        pipe = cls.from_single_file(str(path), **kwargs)
    except (OSError, ValueError) as exc:
        raise TrainError(f"{path}: cannot load as a single-file checkpoint ({str(exc).splitlines()[0]})") from None
    return dict(pipe.components)


def _components_from_diffusers(source: str) -> dict[str, Any]:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    index = _model_index(source)
    comps: dict[str, Any] = {"unet": UNet2DConditionModel.from_pretrained(source, subfolder="unet"),
                             "vae": AutoencoderKL.from_pretrained(source, subfolder="vae"),
                             "text_encoder": CLIPTextModel.from_pretrained(source, subfolder="text_encoder"),
                             "tokenizer": CLIPTokenizer.from_pretrained(source, subfolder="tokenizer")}
    if "text_encoder_2" in index and index["text_encoder_2"] and index["text_encoder_2"][0] is not None:
        comps["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(source, subfolder="text_encoder_2")
        comps["tokenizer_2"] = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer_2")
    comps["scheduler_config"] = _scheduler_config(source)
    return comps


def _model_index(source: str) -> dict[str, Any]:
    local = Path(source)
    if local.is_dir():
        try:
            return json.loads((local / "model_index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise TrainError(f"{source}: not a diffusers model folder (no readable model_index.json)") from None
    from diffusers import DiffusionPipeline

    try:
        return dict(DiffusionPipeline.load_config(source))
    except (OSError, ValueError) as exc:
        raise TrainError(f"{source}: not a local model and not found on the hub ({str(exc).splitlines()[0]})") from None


def _scheduler_config(source: str) -> dict[str, Any]:
    from diffusers import DDIMScheduler

    try:
        return dict(DDIMScheduler.load_config(source, subfolder="scheduler"))
    except (OSError, ValueError):
        return {}


def load_models(config: TrainConfig, warn: Callable[[str], None] = lambda message: None) -> Models:
    """Load the base model named by config.pretrained_model (and config.vae)."""
    source = config.pretrained_model
    v_param_set, ztsnr_set = config.v_parameterization, config.zero_terminal_snr
    if not source:
        raise TrainError("no base model given; set pretrained_model (a diffusers folder, .safetensors or hub id)")
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in (".ckpt", ".pt", ".pth", ".bin"):
        if not path.is_file():
            raise TrainError(f"{source}: no such checkpoint file")
        warn(f"{path.name}: .ckpt files can hide code; loading it with weights_only (tensors only). "
             "Prefer .safetensors")
        _check_ckpt(path)
        comps = _components_from_single_file(path, config.model_type, config.pretrained_model_config)
    elif suffix == ".safetensors":
        if not path.is_file():
            raise TrainError(f"{source}: no such checkpoint file")
        markers = set(_single_file_keys(path)) & set(PREDICTION_MARKERS)
        v_param_set, ztsnr_set = prediction_from_markers(config, markers, source, warn)
        comps = _components_from_single_file(path, config.model_type, config.pretrained_model_config)
    else:
        comps = _components_from_diffusers(source)
    scheduler_config = comps.pop("scheduler_config", None)
    if scheduler_config is None:
        scheduler = comps.get("scheduler")
        scheduler_config = dict(scheduler.config) if scheduler is not None else {}
    text_encoders = [comps["text_encoder"]] + ([comps["text_encoder_2"]] if comps.get("text_encoder_2") else [])
    tokenizers = [comps["tokenizer"]] + ([comps["tokenizer_2"]] if comps.get("tokenizer_2") else [])
    model_type = config.model_type
    if model_type == "auto":
        model_type = detect_model_type(comps["unet"], text_encoders, scheduler_config)
    elif (model_type == "sdxl") != (len(text_encoders) > 1):
        raise TrainError(f"{source}: model_type = {model_type} does not match the model "
                         f"({'two text encoders' if len(text_encoders) > 1 else 'one text encoder'})")
    v_model = model_type == "sd2-v" or scheduler_config.get("prediction_type") == "v_prediction"
    if v_model and v_param_set is False:
        raise TrainError(f"{source}: a v-prediction model (its scheduler says prediction_type = v_prediction) "
                         "cannot be trained with v_parameterization = false (epsilon); unset it or set it to true")
    v_param = v_param_set if v_param_set is not None else v_model
    ztsnr = bool(ztsnr_set)
    vae = comps["vae"]
    if config.vae:
        vae = load_vae(config.vae)
    return Models(unet=comps["unet"], vae=vae, text_encoders=text_encoders, tokenizers=tokenizers,
                  noise_scheduler=training_noise_scheduler(v_param, ztsnr), sample_scheduler_config=scheduler_config,
                  model_type=model_type, v_parameterization=v_param, name=path.name or source,
                  zero_terminal_snr=ztsnr)


def load_vae(source: str):
    from diffusers import AutoencoderKL

    path = Path(source)
    try:
        if path.is_file():
            return AutoencoderKL.from_single_file(str(path))
        if (path / "vae" / "config.json").is_file():
            return AutoencoderKL.from_pretrained(source, subfolder="vae")
        return AutoencoderKL.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise TrainError(f"vae {source}: cannot load ({str(exc).splitlines()[0]})") from None


def base_model_version(model_type: str) -> str:
    return BASE_MODEL_VERSIONS[model_type]
