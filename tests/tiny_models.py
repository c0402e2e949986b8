"""The tiny diffusers pipelines the tests train on: SD1 is the demo's (trainer.tiny_model), SDXL is built
here from the same parts."""

from __future__ import annotations

from pathlib import Path

from trainer.tiny_model import SD_BETAS, _text_config, build_tiny_sd1, tiny_tokenizer, tiny_vae

# The names the tests and benchmarks used before the builders moved into the package.
_tokenizer, _vae = tiny_tokenizer, tiny_vae

__all__ = ["SD_BETAS", "build_tiny_sd1", "build_tiny_sdxl", "tiny_tokenizer", "tiny_vae", "_tokenizer", "_vae"]


def build_tiny_sdxl(path: str | Path, *, seed: int = 0, te2_hidden: int = 32) -> Path:
    """Save a tiny SDXL-style pipeline folder (two text encoders, text_time conditioning) at path.

    te2_hidden other than CLIP-L's 32: diffusers' single-file loader tells the encoders apart by width
    (as the real 768 and 1280 are), so a single file converted from this model loads both correctly."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    path = Path(path)
    torch.manual_seed(seed)
    te1_hidden, projection = 32, 32
    time_dim = 8
    # SDXL's layout: three levels, two resnets per level (so the LDM input_blocks/output_blocks
    # numbering is the real one), attention in the lower two levels, linear proj_in/out.
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(32, 32, 64), norm_num_groups=32,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 1, 2), attention_head_dim=(2, 4, 8),
        cross_attention_dim=te1_hidden + te2_hidden, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + projection,
    )
    vae = tiny_vae()
    text_encoder = CLIPTextModel(_text_config(te1_hidden))
    text_encoder_2 = CLIPTextModelWithProjection(_text_config(te2_hidden, projection_dim=projection, act="gelu"))
    scheduler = EulerDiscreteScheduler(**SD_BETAS, steps_offset=1, timestep_spacing="leading")
    pipe = StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tiny_tokenizer(), tokenizer_2=tiny_tokenizer(), unet=unet,
                                     scheduler=scheduler, force_zeros_for_empty_prompt=True)
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def build_tiny_text_encoder(root: Path) -> Path:
    """A diffusers-layout folder (tokenizer/, text_encoder/) with the real SD tokenizer and a tiny
    random CLIP text encoder: what the concept-word scoring reads."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from prep import clip_tokens

    vocab, merges = clip_tokens.vocab_files()
    CLIPTokenizer(vocab, merges).save_pretrained(str(root / "tokenizer"))
    torch.manual_seed(0)
    config = CLIPTextConfig(vocab_size=49408, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                            num_attention_heads=2, max_position_embeddings=77, projection_dim=16)
    CLIPTextModel(config).save_pretrained(str(root / "text_encoder"))
    return root
