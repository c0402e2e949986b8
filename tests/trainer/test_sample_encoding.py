"""Sample previews are conditioned as training is: the same 75-token chunks and clip_skip."""

from __future__ import annotations

import torch

from trainer.sampling import SamplePrompt, prompt_embeddings


def test_samples_use_training_encoding(tiny_sd1, tmp_path):
    from trainer.config import TrainConfig
    from trainer.models import load_models

    models = load_models(TrainConfig(pretrained_model=str(tiny_sd1)))
    long_prompt = ", ".join(f"tag{i}" for i in range(60))  # > 75 tokens
    sample = SamplePrompt(long_prompt, negative="lowres")
    one = prompt_embeddings(models, sample, max_token_length=150, clip_skip=1, device=torch.device("cpu"))
    two = prompt_embeddings(models, sample, max_token_length=150, clip_skip=2, device=torch.device("cpu"))
    assert one["prompt_embeds"].shape == (1, 152, 32) == one["negative_prompt_embeds"].shape
    assert not torch.allclose(one["prompt_embeds"], two["prompt_embeds"])
    # The tail of a long prompt reaches the conditioning (the pipeline alone would cut it at 77 tokens).
    cut = prompt_embeddings(models, SamplePrompt(", ".join(f"tag{i}" for i in range(40))), max_token_length=150,
                            clip_skip=1, device=torch.device("cpu"))
    assert not torch.allclose(one["prompt_embeds"][:, 80:], cut["prompt_embeds"][:, 80:])
