"""Latent cache: every image encoded by the VAE once (RAM, or `<stem>_<W>x<H>_sd.npz` beside it).

The disk files follow kohya's naming (`_sd.npz`, `_sdxl.npz` for SDXL) and are keyed by content:
`lorakit_key` holds the SHA-256 of the image's bytes, the bucket resolution and resized size, the
crop, whether a flipped copy is held, the VAE's identity and the dtype. A file whose key differs
(an edited image, another resolution or VAE) is re-encoded, never read stale.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from prep.fsio import file_digest
from trainer.data import TrainImage
from trainer.images import load_pixels

if TYPE_CHECKING:
    import torch


def vae_fingerprint(vae) -> str:
    """A short id of a VAE: its config and every weight that encoding reads (encoder, quant_conv), so
    a VAE whose encoder differs anywhere re-encodes (a decoder-only fine-tune keeps the cache)."""
    config = json.dumps(dict(vae.config), sort_keys=True, default=str)
    digest = hashlib.sha256(config.encode())
    parts = [m for m in (getattr(vae, "encoder", None), getattr(vae, "quant_conv", None)) if m is not None]
    params = [p for part in parts for p in part.parameters()] or list(vae.parameters())
    for weight in params:
        digest.update(weight.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def npz_path(img: TrainImage, sdxl: bool) -> Path:
    w, h = img.bucket
    return img.path.with_name(f"{img.path.stem}_{w:04d}x{h:04d}_{'sdxl' if sdxl else 'sd'}.npz")




def cache_key(img: TrainImage, *, fingerprint: str, flip_aug: bool, dtype, crop: tuple[int, int] | None = None) -> str:
    """What a cached latent depends on: image bytes, bucket, resize, crop, flip, VAE and dtype."""
    w, h = img.resized
    bw, bh = img.bucket
    crop = crop if crop is not None else ((h - bh) // 2 if h > bh else 0, (w - bw) // 2 if w > bw else 0)
    parts = [file_digest(img.path), f"bucket={bw}x{bh}", f"resized={w}x{h}", f"crop={crop[0]},{crop[1]}",
             f"flip={int(flip_aug)}", f"vae={fingerprint}", f"dtype={str(dtype).replace('torch.', '')}"]
    return "|".join(parts)


def _read_npz(path: Path, key: str, want_flip: bool):
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            if "lorakit_key" not in data or str(data["lorakit_key"]) != key:
                return None
            if want_flip and "latents_flipped" not in data:
                return None
            latents = data["latents"].copy()
            flipped = data["latents_flipped"].copy() if want_flip else None
            crop = tuple(int(v) for v in data["crop_ltrb"][:2][::-1])
            return latents, flipped, crop
    except (OSError, KeyError, ValueError, EOFError):
        return None


class LatentCache:
    """Image index -> (latents, flipped latents or None, crop top-left)."""

    def __init__(self) -> None:
        self.entries: dict[int, tuple[torch.Tensor, torch.Tensor | None, tuple[int, int]]] = {}

    def get(self, index: int, flip: bool) -> tuple[torch.Tensor, tuple[int, int]]:
        latents, flipped, crop = self.entries[index]
        return (flipped if flip and flipped is not None else latents), crop

    def build(self, images: list[TrainImage], indices: list[int], vae, *, scaling: float, flip_aug: bool,
              to_disk: bool, sdxl: bool, device, dtype, on_progress=None) -> None:
        """Encode (or read from disk) the latents of the given images, grouped by bucket."""
        import torch

        fingerprint = vae_fingerprint(vae) if to_disk else ""
        todo: dict[tuple[int, int], list[int]] = {}
        self.keys: dict[int, str] = {}
        self.reused = 0
        for index in indices:
            img = images[index]
            if to_disk:
                key = self.keys[index] = cache_key(img, fingerprint=fingerprint, flip_aug=flip_aug, dtype=dtype)
                found = _read_npz(npz_path(img, sdxl), key, flip_aug)
                if found is not None:
                    latents, flipped, crop = found
                    self.entries[index] = (torch.from_numpy(latents),
                                           torch.from_numpy(flipped) if flipped is not None else None, crop)
                    self.reused += 1
                    continue
            todo.setdefault(img.bucket, []).append(index)
        done = 0
        for bucket in sorted(todo):
            group = todo[bucket]
            for start in range(0, len(group), 4):
                chunk = group[start:start + 4]
                prepared = [load_pixels(images[i]) for i in chunk]
                pixels = torch.stack([p.pixels for p in prepared]).to(device, dtype)
                with torch.no_grad():
                    latents = vae.encode(pixels).latent_dist.sample() * scaling
                    flipped = (vae.encode(torch.flip(pixels, dims=[3])).latent_dist.sample() * scaling
                               if flip_aug else None)
                for k, index in enumerate(chunk):
                    lat = latents[k].float().cpu()
                    flp = flipped[k].float().cpu() if flipped is not None else None
                    crop = prepared[k].crop_top_left
                    self.entries[index] = (lat, flp, crop)
                    if to_disk:
                        self._write(images[index], lat, flp, crop, self.keys[index], sdxl)
                done += len(chunk)
                if on_progress:
                    on_progress(done)

    @staticmethod
    def _write(img: TrainImage, latents, flipped, crop, key: str, sdxl: bool) -> None:
        import io

        import numpy as np

        from prep.fsio import atomic_write_bytes

        w, h = img.bucket
        top, left = crop
        arrays = {"latents": latents.numpy(), "original_size": np.array(img.size),
                  "crop_ltrb": np.array([left, top, left + w, top + h]),
                  "lorakit_key": np.array(key)}
        if flipped is not None:
            arrays["latents_flipped"] = flipped.numpy()
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(npz_path(img, sdxl), buffer.getvalue())
