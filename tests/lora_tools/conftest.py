"""Hand-built kohya LoRA files (written with safetensors directly, as other tools do) and tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

SD1_LINEAR = [  # (kohya name, out, in) with SD1's real names at tiny widths
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 32, 32),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 32, 24),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_ff_net_2", 32, 128),
    ("lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0", 64, 64),
    ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 24, 24),
    ("lora_te_text_model_encoder_layers_0_mlp_fc1", 48, 24),
    ("lora_te_text_model_encoder_layers_1_self_attn_q_proj", 24, 24),
    ("lora_te_text_model_encoder_layers_1_mlp_fc2", 24, 48),
]
CONV_3X3 = ("lora_unet_down_blocks_0_resnets_0_conv1", 32, 16)
SDXL_LINEAR = [
    ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 40, 40),
    ("lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k", 40, 64),
    ("lora_unet_output_blocks_2_1_proj_in", 40, 40),
    ("lora_te1_text_model_encoder_layers_0_self_attn_k_proj", 32, 32),
    ("lora_te1_text_model_encoder_layers_1_mlp_fc1", 64, 32),
    ("lora_te2_text_model_encoder_layers_0_self_attn_v_proj", 32, 32),
    ("lora_te2_text_model_encoder_layers_1_mlp_fc2", 32, 64),
]


def linear_module(out: int, inp: int, rank: int, g: torch.Generator, scale: float = 0.1):
    return torch.randn(rank, inp, generator=g) * scale, torch.randn(out, rank, generator=g) * scale


def write_lora(path: Path, modules: dict[str, tuple[torch.Tensor, torch.Tensor, float | None]],
               metadata: dict[str, str] | None = None, dtype: torch.dtype = torch.float32) -> Path:
    """A kohya file: `<name>.lora_down.weight`, `.lora_up.weight`, `.alpha` (0-d), string metadata."""
    tensors = {}
    for name, (down, up, alpha) in modules.items():
        tensors[f"{name}.lora_down.weight"] = down.to(dtype).contiguous()
        tensors[f"{name}.lora_up.weight"] = up.to(dtype).contiguous()
        if alpha is not None:
            tensors[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)
    return path


def sd1_modules(rank: int = 4, alpha: float | None = 2.0, seed: int = 0, conv: bool = False,
                dynamic: bool = False):
    g = torch.Generator().manual_seed(seed)
    modules = {}
    for i, (name, out, inp) in enumerate(SD1_LINEAR):
        r = rank + (i % 3) * 2 if dynamic else rank
        down, up = linear_module(out, inp, r, g)
        modules[name] = (down, up, alpha if alpha is None or not dynamic else alpha * r / rank)
    if conv:
        name, out, inp = CONV_3X3
        down = torch.randn(rank, inp, 3, 3, generator=g) * 0.1
        up = torch.randn(out, rank, 1, 1, generator=g) * 0.1
        modules[name] = (down, up, 1.0)
    return modules


KOHYA_METADATA = {
    "ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "2.0",
    "ss_base_model_version": "sd_v1", "ss_v2": "False", "ss_clip_skip": "1",
    "ss_learning_rate": "0.0001", "ss_num_train_images": "40", "ss_resolution": "(512, 512)",
    "ss_training_started_at": "1700000000.0", "ss_optimizer": "bitsandbytes.optim.adamw.AdamW8bit",
    "ss_tag_frequency": json.dumps({"2_HighRes": {"1girl": 20, "solo": 15, "smile": 3},
                                    "1_LowRes": {"1girl": 10, "lowres": 10}}),
    "ss_dataset_dirs": json.dumps({"2_HighRes": {"n_repeats": 2, "img_count": 20},
                                   "1_LowRes": {"n_repeats": 1, "img_count": 10}}),
    "ss_bucket_info": json.dumps({"buckets": {"0": {"resolution": [512, 512], "count": 40}}}),
    # written by tools we do not know: shown raw, never an error
    "ot_custom_field": "{not json",
    "another.tool/version": "7",
}


@pytest.fixture
def sd1_lora(tmp_path: Path) -> Path:
    return write_lora(tmp_path / "sd1.safetensors", sd1_modules(), KOHYA_METADATA)


@pytest.fixture(scope="session")
def tiny_sd1(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_sd1

    return build_tiny_sd1(tmp_path_factory.mktemp("tiny") / "sd1")


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_sdxl

    return build_tiny_sdxl(tmp_path_factory.mktemp("tiny") / "sdxl")


_TARGET_SHAPES: dict[tuple[str, bool], list[tuple[str, tuple[int, ...]]]] = {}


def target_shapes(model: Path, conv: bool) -> list[tuple[str, tuple[int, ...]]]:
    """(kohya name, weight shape) of every kohya target of a tiny model (trainer.lora_keys), cached."""
    if (str(model), conv) not in _TARGET_SHAPES:
        import diffusers

        from trainer.lora_keys import text_encoder_lora_targets, unet_lora_targets

        sdxl = is_sdxl(model)
        cls = diffusers.StableDiffusionXLPipeline if sdxl else diffusers.StableDiffusionPipeline
        pipe = cls.from_pretrained(model)
        if sdxl:
            te = {**text_encoder_lora_targets(pipe.text_encoder, "lora_te1"),
                  **text_encoder_lora_targets(pipe.text_encoder_2, "lora_te2")}
        else:
            te = text_encoder_lora_targets(pipe.text_encoder, "lora_te")
        for with_conv in (False, True):
            targets = {**unet_lora_targets(pipe.unet, "sdxl" if sdxl else "sd1", conv=with_conv), **te}
            _TARGET_SHAPES[(str(model), with_conv)] = [(name, tuple(module.weight.shape))
                                                       for name, (_, module) in targets.items()]
    return _TARGET_SHAPES[(str(model), conv)]


def is_sdxl(model: Path) -> bool:
    return "text_encoder_2" in json.loads((model / "model_index.json").read_text())


def model_lora(model: Path, path: Path, *, rank: int = 4, alpha: float = 2.0, conv: bool = False,
               seed: int = 0, scale: float = 0.1, metadata: dict[str, str] | None = None) -> Path:
    """A LoRA over every kohya target of a tiny model, random weights."""
    g = torch.Generator().manual_seed(seed)
    modules = {}
    for name, shape in target_shapes(model, conv):
        if len(shape) == 4:
            down = torch.randn(rank, shape[1], *shape[2:], generator=g) * scale
            up = torch.randn(shape[0], rank, 1, 1, generator=g) * scale
        else:
            down, up = linear_module(shape[0], shape[1], rank, g, scale)
        modules[name] = (down, up, alpha)
    meta = {"ss_base_model_version": "sdxl_base_v1-0" if is_sdxl(model) else "sd_v1", **(metadata or {})}
    return write_lora(path, modules, meta)
