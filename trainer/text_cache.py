"""cache_text_encoder_outputs: every caption encoded once, then the text encoders leave the GPU.

kohya's rule: only when the text encoder is not trained and a caption cannot change between
steps (no shuffle_caption, caption_dropout_rate or caption_tag_dropout_rate); otherwise refused
with the reason. With `_to_disk` each image gets `<stem>_te_outputs.npz`, keyed by the caption
text, the text encoders' identity, max_token_length, clip_skip and dtype (a changed caption or
model re-encodes).
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch

from trainer.cache_files import text_cache_path


def encoders_fingerprint(text_encoders) -> str:
    digest = hashlib.sha256()
    for encoder in text_encoders:
        digest.update(json.dumps(encoder.config.to_dict(), sort_keys=True, default=str).encode())
        params = list(encoder.parameters())
        for weight in (params[0], params[-1]):
            digest.update(weight.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


class TextCache:
    """Caption -> (conditioning, pooled or None), on the CPU in the training dtype."""

    def __init__(self) -> None:
        self.entries: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        self.reused = 0

    def build(self, models, items: list[tuple[Path | None, str]], options, *, device, dtype, to_disk: bool) -> None:
        """Encode each distinct caption once; items are (image path or None, caption)."""
        from trainer.step import encode_captions

        fingerprint = encoders_fingerprint(models.text_encoders) if to_disk else ""
        for image, caption in items:
            key = (f"{hashlib.sha256(caption.encode()).hexdigest()}|te={fingerprint}|tokens={options.max_token_length}"
                   f"|clip_skip={options.clip_skip}|dtype={str(dtype).replace('torch.', '')}")
            if caption in self.entries:
                if to_disk and image is not None:
                    self._write(text_cache_path(image), key, *self.entries[caption])
                continue
            if to_disk and image is not None:
                found = self._read(text_cache_path(image), key)
                if found is not None:
                    self.entries[caption] = found
                    self.reused += 1
                    continue
            with torch.no_grad():
                states, pooled = encode_captions(models, [caption], options, device)
            entry = (states[0].to("cpu", dtype), pooled[0].to("cpu", dtype) if pooled is not None else None)
            self.entries[caption] = entry
            if to_disk and image is not None:
                self._write(text_cache_path(image), key, *entry)

    def get(self, captions: list[str], device) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """The batch's stacked outputs, or None when a caption is not cached."""
        if any(c not in self.entries for c in captions):
            return None
        states = torch.stack([self.entries[c][0] for c in captions]).to(device)
        pooled = [self.entries[c][1] for c in captions]
        return states, (torch.stack(pooled).to(device) if pooled[0] is not None else None)

    @staticmethod
    def _read(path: Path, key: str):
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as data:
                if "lorakit_key" not in data or str(data["lorakit_key"]) != key:
                    return None
                states = torch.from_numpy(data["states"].copy())
                pooled = torch.from_numpy(data["pooled"].copy()) if "pooled" in data else None
                dtype = getattr(torch, str(data["dtype"]))
                return states.to(dtype), (pooled.to(dtype) if pooled is not None else None)
        except (OSError, KeyError, ValueError, EOFError, AttributeError):
            return None

    @staticmethod
    def _write(path: Path, key: str, states: torch.Tensor, pooled: torch.Tensor | None) -> None:
        import numpy as np

        from prep.fsio import atomic_write_bytes

        arrays = {"states": states.float().numpy(), "lorakit_key": np.array(key),
                  "dtype": np.array(str(states.dtype).replace("torch.", ""))}
        if pooled is not None:
            arrays["pooled"] = pooled.float().numpy()
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
