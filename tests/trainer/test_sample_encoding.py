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


def test_225_token_samples_keep_their_third_chunk(tiny_sd1):
    from trainer.config import TrainConfig
    from trainer.models import load_models

    models = load_models(TrainConfig(pretrained_model=str(tiny_sd1)))
    cpu = torch.device("cpu")
    long_prompt = SamplePrompt(", ".join(f"tag{i}" for i in range(55)))  # ~215 tokens: three chunks
    full = prompt_embeddings(models, long_prompt, max_token_length=225, clip_skip=1, device=cpu)
    assert full["prompt_embeds"].shape == (1, 227, 32)
    two_chunks = SamplePrompt(", ".join(f"tag{i}" for i in range(37)))  # ~140 tokens: the third chunk is padding
    shorter = prompt_embeddings(models, two_chunks, max_token_length=225, clip_skip=1, device=cpu)
    assert not torch.allclose(full["prompt_embeds"][:, 154:], shorter["prompt_embeds"][:, 154:])


def test_training_samples_get_the_runs_clip_skip_and_token_length(tiny_sd1, tmp_path, monkeypatch):
    """The trainer's sample path hands the run's own clip_skip and max_token_length to the encoder
    (a recording wrapper around the real prompt_embeddings; the images are really rendered)."""
    from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
    from trainer import sampling

    seen: list[tuple[int, int]] = []
    real = sampling.prompt_embeddings

    def recording(models, sample, *, max_token_length, clip_skip, **kwargs):
        seen.append((max_token_length, clip_skip))
        return real(models, sample, max_token_length=max_token_length, clip_skip=clip_skip, **kwargs)

    monkeypatch.setattr(sampling, "prompt_embeddings", recording)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("chara --w 64 --h 64 --s 1 --d 3\n", encoding="utf-8")
    config = tiny_config(tiny_sd1, make_train_dataset(tmp_path / "ds", images=2), tmp_path / "out",
                         sample_prompts=prompts, sample_every_n_steps=1, clip_skip=2, max_token_length="225",
                         max_train_steps=1)
    run_training(config)
    assert seen and set(seen) == {(225, 2)}
    assert list((tmp_path / "out" / "sample").glob("*.png"))
