"""Noise and loss weighting options (kohya's custom_train_functions, SNR via diffusers' compute_snr).

- `pyramid_noise`: multi-resolution noise (`multires_noise_iterations`/`_discount`).
- `input_perturbation`: the extra noise of `ip_noise_gamma`, added to the noisy latents' noise only.
- `min_snr_weights`: min(SNR, gamma)/SNR, or /(SNR+1) for v-prediction.
- `debiased_weights`: 1/sqrt(SNR), or 1/(SNR+1) for v-prediction (SNR capped at 1000 as kohya).
- `apply_mask`: a per-sample [0, 1] mask brought to the latent size (area) times the per-pixel loss.
With zero terminal SNR the last step's SNR is 0; it is floored at 1e-8 where a weight divides by it.
"""

from __future__ import annotations

import torch

SNR_FLOOR = 1e-8


def pyramid_noise(noise: torch.Tensor, iterations: int, discount: float) -> torch.Tensor:
    """kohya's pyramid_noise_like: coarser noise upsampled and added, each level x discount^i."""
    b, c, h, w = noise.shape
    upsample = torch.nn.Upsample(size=(h, w), mode="bilinear")
    out = noise.clone()
    for i in range(iterations):
        r = float(torch.rand(()) * 2 + 2)
        hn, wn = max(1, int(h / (r ** i))), max(1, int(w / (r ** i)))
        out = out + upsample(torch.randn(b, c, hn, wn, device=noise.device, dtype=noise.dtype)) * discount ** i
        if hn == 1 or wn == 1:
            break
    return out / out.std()


def input_perturbation(noise: torch.Tensor, gamma: float) -> torch.Tensor:
    return noise + gamma * torch.randn_like(noise)


def snr(noise_scheduler, timesteps: torch.Tensor) -> torch.Tensor:
    from diffusers.training_utils import compute_snr

    return compute_snr(noise_scheduler, timesteps).float()


def min_snr_weights(noise_scheduler, timesteps: torch.Tensor, gamma: float, v_prediction: bool) -> torch.Tensor:
    values = snr(noise_scheduler, timesteps)
    clipped = torch.clamp(values, max=gamma)
    return clipped / (values + 1.0) if v_prediction else clipped / values.clamp(min=SNR_FLOOR)


def debiased_weights(noise_scheduler, timesteps: torch.Tensor, v_prediction: bool) -> torch.Tensor:
    values = torch.clamp(snr(noise_scheduler, timesteps), max=1000.0)
    return 1.0 / (values + 1.0) if v_prediction else 1.0 / torch.sqrt(values.clamp(min=SNR_FLOOR))


def apply_mask(loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """loss (B, C, h, w) x mask (B, 1, H, W) area-resized to (h, w)."""
    mask = torch.nn.functional.interpolate(mask.to(loss.device, loss.dtype), size=loss.shape[2:], mode="area")
    return loss * mask
