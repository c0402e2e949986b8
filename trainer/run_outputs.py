"""The run's outputs: LoRA saves (EMA weights when on), training states and sample previews (a trainer mixin)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class OutputsMixin:
    def _metadata(self, step: int, epoch: int) -> dict[str, str]:
        from trainer.metadata import finish_metadata

        return finish_metadata(self.base_metadata, step=step, epoch=epoch)

    def _save(self, path: Path, step: int, epoch: int, position: dict[str, Any] | None) -> None:
        import torch

        from trainer.saving import SAVE_DTYPES, save_lora, state_dir_for

        if not self.main:
            return
        with self.watch.weights():
            tensors = {k: v.clone() for k, v in self.network.kohya_state_dict().items()}
        dtype = SAVE_DTYPES[self.config.save_precision]
        if not all(bool(torch.isfinite(t.to(dtype)).all()) for t in tensors.values()):
            self._diverged(f"the LoRA weights overflow save_precision = {self.config.save_precision}",
                           "(inf)", step)
        save_lora(path, tensors, self._metadata(step, epoch), self.config.save_precision)
        self.last_save = path
        self.send("save", step=step, path=str(path))
        if self.config.save_state and position is not None:
            self._write_state(state_dir_for(path), position)

    def _write_state(self, folder: Path, position: dict[str, Any]) -> Path:
        from trainer.saving import save_state

        return save_state(folder, network_state=self.network.state_dict(), optimizer=self.optimizer,
                          scheduler=self.scheduler, scaler=self.accelerator.scaler, position=position,
                          ema_state=self.watch.state())

    def _sample(self, step: int, epoch: int | None) -> None:
        import torch

        from trainer.sampling import generate_samples, read_prompt_file

        if not self.main or self.config.sample_prompts is None:
            return
        prompts = read_prompt_file(Path(self.config.sample_prompts))
        vae_device = next(self.models.vae.parameters()).device
        self.models.vae.to(self.device)
        for encoder in self.models.text_encoders:  # off the GPU when their outputs are cached
            encoder.to(self.device)
        self.network.eval()
        try:
            with self.watch.weights():
                paths = generate_samples(self.models, prompts, self.output_dir / "sample", self.config.output_name,
                                         step=step, epoch=epoch, device=self.device, dtype=self.weight_dtype,
                                         max_token_length=self.max_token_length, clip_skip=self.config.clip_skip)
        finally:
            self.network.train()
            self.models.vae.to(vae_device)
            if self.text_cache is not None:
                for encoder in self.models.text_encoders:
                    encoder.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        self.last_sample_step = step
        for path in paths:
            self.send("sample", step=step, path=str(path))
        self.watch.samples(step, paths)
