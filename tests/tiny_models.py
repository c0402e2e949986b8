"""The tiny diffusers pipelines the tests train on; the builders live in the package (trainer.tiny_model)."""

from trainer.tiny_model import SD_BETAS, build_tiny_sd1, build_tiny_sdxl, tiny_tokenizer, tiny_vae

# The names the tests and benchmarks used before the builders moved into the package.
_tokenizer, _vae = tiny_tokenizer, tiny_vae

__all__ = ["SD_BETAS", "build_tiny_sd1", "build_tiny_sdxl", "tiny_tokenizer", "tiny_vae", "_tokenizer", "_vae"]
