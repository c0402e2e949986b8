"""The run's caches: text encoder outputs and VAE latents, built before the loop (a mixin of the trainer)."""

from __future__ import annotations

from contextlib import nullcontext


class CachesMixin:
    def _build_text_cache(self, caption_options, loss_options):
        """Every caption (training and validation) encoded once; the text encoders then leave the GPU."""
        import random

        import torch

        from trainer.caption_augment import process_caption
        from trainer.text_cache import TextCache

        config = self.config
        if not (config.cache_text_encoder_outputs or config.cache_text_encoder_outputs_to_disk):
            return None
        cache = TextCache()
        images = self.training.images + self.training.validation
        items = [(img.path, process_caption(img.caption, caption_options, random.Random(0))) for img in images]
        autocast = self.accelerator.autocast if self.precision != "no" else nullcontext
        with autocast():
            cache.build(self.models, items, loss_options, device=self.device, dtype=self.weight_dtype,
                        to_disk=config.cache_text_encoder_outputs_to_disk and self.main)
        for encoder in self.models.text_encoders:
            encoder.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return cache

    def _build_cache(self):
        from trainer.latent_cache import LatentCache

        config = self.config
        if not config.cache_latents:
            return None
        cache = LatentCache()
        indices = sorted({i for entries in self.training.buckets.values() for i in entries})
        cache.build(self.training.images, indices, self.models.vae, scaling=self.models.latent_scaling,
                    flip_aug=config.flip_aug, to_disk=config.cache_latents_to_disk and self.main,
                    sdxl=self.models.is_sdxl, device=self.device, dtype=self.models.vae.dtype)
        self.models.vae.to("cpu")  # no longer needed on the GPU (sampling moves it back)
        return cache
