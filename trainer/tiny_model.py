"""Tiny Stable Diffusion pipelines built from configs (random, seeded weights; no download).

`lorakit demo` trains on one (labelled as a demo model: it draws noise), and the tests build them.

`build_tiny_sd1(path)` saves a full diffusers pipeline folder (model_index.json, unet/, vae/,
text_encoder/, tokenizer/, scheduler/) that loads with `StableDiffusionPipeline.from_pretrained`
and with the trainer (the tests' SDXL twin, tests/tiny_models.py, is built from the same parts). The architectures keep the real block layout (cross-attention down/up blocks, a
mid block, SD1's conv proj_in, SDXL's linear projections, text_time conditioning and two text
encoders) at tiny widths, so LoRA key names match real models. The VAE keeps SD's 8x
downscaling, so a 64 px image is an 8x8 latent.
"""

from __future__ import annotations

from pathlib import Path

SD_BETAS = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
            "num_train_timesteps": 1000}


def tiny_tokenizer():
    from transformers import CLIPTokenizer

    from prep.clip_tokens import vocab_files

    vocab, merges = vocab_files()
    return CLIPTokenizer(vocab, merges, model_max_length=77, pad_token="<|endoftext|>")


def _text_config(hidden: int = 32, layers: int = 3, projection_dim: int = 32, act: str = "quick_gelu"):
    from transformers import CLIPTextConfig

    # 3 layers so clip_skip=2 still leaves a trained layer and skips a real one.
    return CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=hidden * 2,
                          num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=77,
                          projection_dim=projection_dim, hidden_act=act, bos_token_id=49406,
                          eos_token_id=49407, pad_token_id=49407)


def tiny_vae():
    from diffusers import AutoencoderKL

    # Four levels: SD's 8x spatial downscale, so buckets and latent sizes behave as in real models.
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                         block_out_channels=(8, 8, 16, 16), norm_num_groups=8,
                         down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, sample_size=64)


def build_tiny_sd1(path: str | Path, *, seed: int = 0, v_prediction: bool = False) -> Path:
    """Save a tiny SD 1.x-style pipeline folder at path and return it.

    With v_prediction, the scheduler says `prediction_type = "v_prediction"` (an SD 2.x-v stand-in).
    """
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    path = Path(path)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=32, cross_attention_dim=32, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    )
    vae = tiny_vae()
    text_encoder = CLIPTextModel(_text_config())
    scheduler = DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                              prediction_type="v_prediction" if v_prediction else "epsilon")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tiny_tokenizer(), unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(path, safe_serialization=True)
    return path

