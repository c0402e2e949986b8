"""Loss and noise options: masked loss, multires/ip noise, zero terminal SNR, debiased/min-SNR weights,
v-prediction markers of single-file checkpoints."""

from __future__ import annotations

import json
import random
from contextlib import nullcontext
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
from trainer.errors import TrainError


def _rgba_dataset(root: Path, size=(96, 64)) -> Path:
    """One 96x64 RGBA image: opaque left half, transparent right half."""
    folder = root / "1_chara"
    folder.mkdir(parents=True)
    image = Image.new("RGBA", size, (200, 40, 40, 255))
    for x in range(size[0] // 2, size[0]):
        for y in range(size[1]):
            image.putpixel((x, y), (10, 200, 10, 0))
    image.save(folder / "img0.png")
    (folder / "img0.txt").write_text("chara, 1girl", encoding="utf-8")
    return root


def test_mask_follows_crop_flip_and_resize(tmp_path):
    from trainer.config import TrainConfig
    from trainer.data import build_training_set
    from trainer.masks import MaskOptions, load_mask

    dataset = _rgba_dataset(tmp_path / "ds", size=(128, 64))
    config = TrainConfig(dataset=dataset, resolution="64", min_bucket_reso=32, max_bucket_reso=128,
                         bucket_reso_steps=32, enable_bucket=False)
    img = build_training_set(config).images[0]
    assert img.bucket == (64, 64) and img.resized == (128, 64)  # scaled to cover, 64 px overhang cropped
    options = MaskOptions(alpha_mask=True)
    centre = load_mask(img, options, flip=False, crop_top_left=(0, 32))[0]
    assert centre.shape == (64, 64)
    assert centre[:, :31].min() == 1.0 and centre[:, 33:].max() == 0.0  # the opaque/transparent edge at x=32
    left = load_mask(img, options, flip=False, crop_top_left=(0, 0))[0]
    assert left.min() == 1.0  # the crop's left 64 px are all opaque
    flipped = load_mask(img, options, flip=True, crop_top_left=(0, 32))[0]
    assert torch.equal(flipped, centre.flip(-1))


def test_mask_dir_mirror_and_zero_mask_gives_no_gradient(tiny_sd1, tmp_path):
    from trainer.caption_augment import CaptionOptions
    from trainer.config import TrainConfig
    from trainer.data import build_training_set
    from trainer.masks import MaskOptions
    from trainer.models import load_models
    from trainer.step import LossOptions, assemble_batch, compute_loss

    dataset = make_train_dataset(tmp_path / "ds", images=1)
    mask = Image.new("L", (64, 64), 0)
    for x in range(32):
        for y in range(64):
            mask.putpixel((x, y), 255)
    (tmp_path / "masks" / "1_chara").mkdir(parents=True)
    mask.save(tmp_path / "masks" / "1_chara" / "img0.png")
    config = TrainConfig(pretrained_model=str(tiny_sd1), dataset=dataset, resolution="64", min_bucket_reso=32,
                         max_bucket_reso=128, bucket_reso_steps=32)
    training = build_training_set(config)
    models = load_models(config)
    for module in [models.vae, *models.text_encoders]:
        module.requires_grad_(False)  # the UNet stays trainable: its output then carries a gradient
    batch = assemble_batch(training, [0], rng=random.Random(0), caption_options=CaptionOptions(), flip_aug=False,
                           random_crop=False, prior_loss_weight=1.0, cache=None,
                           masks=MaskOptions(mask_dir=tmp_path / "masks"))
    assert batch.masks.shape == (1, 1, 64, 64) and batch.masks[0, 0, :, :32].min() == 1.0
    captured = {}

    def keep_grad(_module, _args, output):
        output.sample.retain_grad()
        captured["pred"] = output.sample

    handle = models.unet.register_forward_hook(keep_grad)
    torch.manual_seed(0)
    loss = compute_loss(models, batch, LossOptions(False, 75, min_snr_gamma=5.0), device=torch.device("cpu"),
                        weight_dtype=torch.float32, autocast=nullcontext)
    handle.remove()
    loss.backward()
    grad = captured["pred"].grad[0]  # 4 x 8 x 8 latent
    assert grad[:, :, 4:].abs().max() == 0.0  # black mask: no gradient
    assert grad[:, :, :4].abs().min() > 0.0  # white mask: learned


def test_masked_training_run_and_refusals(tiny_sd1, tmp_path):
    dataset = _rgba_dataset(tmp_path / "ds")
    config = tiny_config(tiny_sd1, dataset, tmp_path / "out", masked_loss=True, alpha_mask=True, max_train_steps=1,
                         multires_noise_iterations=4, ip_noise_gamma=0.1, debiased_estimation_loss=True,
                         cache_latents=True)
    path, events = run_training(config)
    from trainer.safetensors_read import read_header

    meta = read_header(path).metadata
    assert meta["ss_masked_loss"] == "True" and meta["ss_multires_noise_iterations"] == "4"
    assert meta["ss_ip_noise_gamma"] == "0.1" and meta["ss_debiased_estimation"] == "True"
    with pytest.raises(TrainError, match="masked_loss needs masks"):
        run_training(tiny_config(tiny_sd1, dataset, tmp_path / "o2", masked_loss=True))


def test_zero_terminal_snr_and_weights():
    from diffusers.training_utils import compute_snr

    from trainer.models import training_noise_scheduler
    from trainer.noise import debiased_weights, min_snr_weights, pyramid_noise

    plain = training_noise_scheduler(True)
    ztsnr = training_noise_scheduler(True, zero_terminal_snr=True)
    assert float(ztsnr.alphas_cumprod[-1]) == 0.0 and float(plain.alphas_cumprod[-1]) > 0.0
    t = torch.tensor([0, 500, 999])
    assert compute_snr(ztsnr, t)[-1] == 0.0
    for v in (True, False):
        for weights in (min_snr_weights(ztsnr, t, 5.0, v), debiased_weights(ztsnr, t, v)):
            assert torch.isfinite(weights).all()
    eps = training_noise_scheduler(False)
    snr = compute_snr(eps, t)
    assert torch.allclose(min_snr_weights(eps, t, 5.0, False), torch.clamp(snr, max=5.0) / snr)
    assert torch.allclose(debiased_weights(eps, t, False), 1 / torch.sqrt(snr.clamp(max=1000)))  # capped as kohya
    torch.manual_seed(0)
    noise = pyramid_noise(torch.randn(2, 4, 16, 16), 6, 0.3)
    assert noise.shape == (2, 4, 16, 16) and abs(float(noise.std()) - 1.0) < 1e-5


def _marked_checkpoint(path: Path, markers: tuple[str, ...]) -> Path:
    from safetensors.torch import save_file

    tensors = {"conditioner.embedders.1.model.x": torch.zeros(1)}
    tensors.update({name: torch.zeros(0) for name in markers})
    save_file(tensors, str(path))
    return path


def test_v_pred_markers_turn_options_on_and_refuse_epsilon(tmp_path):
    from trainer.config import TrainConfig
    from trainer.models import load_models, prediction_from_markers

    lines: list[str] = []
    config = TrainConfig(pretrained_model="noob.safetensors")
    v, z = prediction_from_markers(config, {"v_pred", "ztsnr"}, "/m/noob.safetensors", lines.append)
    assert (v, z) == (True, True)
    assert lines == ["noob.safetensors: v-prediction model (v_pred/ztsnr marker keys): v_parameterization and "
                     "zero_terminal_snr turned on"]
    assert prediction_from_markers(config, set(), "x", lines.append) == (None, None)
    kept = TrainConfig(v_parameterization=True, zero_terminal_snr=False)
    assert prediction_from_markers(kept, {"v_pred", "ztsnr"}, "x", lines.append) == (True, False)
    # An explicit epsilon run of a marked file is refused before any weight loads.
    model = _marked_checkpoint(tmp_path / "noob.safetensors", ("v_pred", "ztsnr"))
    with pytest.raises(TrainError, match="v_pred marker") as info:
        load_models(TrainConfig(pretrained_model=str(model), v_parameterization=False))
    assert "\n" not in str(info.value) and "set it to true" in str(info.value)


def test_v_prediction_folder_trained_as_epsilon_is_refused(tiny_sd2v, tmp_path):
    config = tiny_config(tiny_sd2v, make_train_dataset(tmp_path / "ds", images=1), tmp_path / "out",
                         v_parameterization=False)
    with pytest.raises(TrainError, match="v_prediction"):
        run_training(config)


def test_export_loss_options(tmp_path, tiny_sd1):
    from trainer.export_kohya import dataset_config, train_config

    dataset = make_train_dataset(tmp_path / "ds")
    (tmp_path / "masks" / "1_chara").mkdir(parents=True)
    config = tiny_config(tiny_sd1, dataset, tmp_path / "out", masked_loss=True, mask_dir=tmp_path / "masks",
                         multires_noise_iterations=6, zero_terminal_snr=True, v_parameterization=True,
                         debiased_estimation_loss=True, ip_noise_gamma=0.05)
    cf = train_config(config, tmp_path / "dataset_config.toml")
    assert (cf["masked_loss"], cf["multires_noise_iterations"], cf["multires_noise_discount"]) == (True, 6, 0.3)
    assert cf["zero_terminal_snr"] is True and cf["debiased_estimation_loss"] is True and cf["ip_noise_gamma"] == 0.05
    (subset,) = dataset_config(config)["datasets"][0]["subsets"]
    assert subset["conditioning_data_dir"] == str((tmp_path / "masks" / "1_chara").resolve())
    json.dumps(cf)
