"""Memory and caches: content-keyed latent cache, --clear-cache, cached text encoder outputs, fp8_base."""

from __future__ import annotations

import os

import pytest
import torch

from tests.conftest import write_image
from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
from trainer.errors import TrainError
from trainer.safetensors_read import read_tensors as load_lora_file


def test_stale_latent_cache_is_reencoded(tiny_sd1, tmp_path):
    from diffusers import AutoencoderKL

    from trainer.config import TrainConfig
    from trainer.data import build_training_set
    from trainer.latent_cache import LatentCache, npz_path

    dataset = make_train_dataset(tmp_path / "ds", images=2)
    vae = AutoencoderKL.from_pretrained(tiny_sd1, subfolder="vae")
    config = TrainConfig(dataset=dataset, resolution="64", min_bucket_reso=32, max_bucket_reso=128,
                         bucket_reso_steps=32)

    def build(vae=vae, flip_aug=False):
        training = build_training_set(config)
        cache = LatentCache()
        torch.manual_seed(0)
        cache.build(training.images, [0, 1], vae, scaling=0.18215, flip_aug=flip_aug, to_disk=True, sdxl=False,
                    device=torch.device("cpu"), dtype=torch.float32)
        return training, cache

    training, first = build()
    assert first.reused == 0 and all(npz_path(img, False).is_file() for img in training.images)
    _, second = build()
    assert second.reused == 2
    # Edit one image's pixels, keeping its size and modification time: the content key still sees it.
    edited = training.images[0].path
    stat = edited.stat()
    write_image(edited, (64, 64), (250, 250, 10))
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    _, third = build()
    assert third.reused == 1
    assert not torch.allclose(third.entries[0][0], second.entries[0][0])
    assert torch.equal(third.entries[1][0], second.entries[1][0])
    # Another VAE (same config, other weights), flip_aug or resolution: nothing is read stale.
    other = AutoencoderKL.from_pretrained(tiny_sd1, subfolder="vae")
    with torch.no_grad():
        other.decoder.conv_out.weight.mul_(1.5)  # a decoder-only change leaves the latents as they were
    assert build(vae=other)[1].reused == 2
    with torch.no_grad():
        other.encoder.down_blocks[0].resnets[0].conv1.weight.mul_(1.5)  # a middle layer of the encoder
    assert build(vae=other)[1].reused == 0
    assert build(flip_aug=True)[1].reused == 0
    config.resolution = "96"
    assert build()[1].reused == 0


def test_clear_cache_removes_only_cache_files(tiny_sd1, tmp_path, capsys):
    from tui.cli import main as lorakit

    dataset = make_train_dataset(tmp_path / "ds", images=2)
    folder = dataset / "1_chara"
    for name in ("img0_0064x0064_sd.npz", "img1_0512x0768_sdxl.npz", "img0_te_outputs.npz"):
        (folder / name).write_bytes(b"x")
    (folder / "notes_0064x0064_sd.npz").write_bytes(b"keep")  # not an image's cache
    assert lorakit(["train", "--dataset", str(dataset), "--clear-cache"]) == 0
    assert "removed 3 cache file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in folder.iterdir()) == ["img0.png", "img0.txt", "img1.png", "img1.txt",
                                                        "notes_0064x0064_sd.npz"]


def test_text_encoder_cache_refusals(tiny_sd1, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    for extra, reason in (({}, "train_unet_only"), ({"train_unet_only": True, "shuffle_caption": True}, "shuffle"),
                          ({"train_unet_only": True, "caption_tag_dropout_rate": 0.1}, "caption_tag_dropout")):
        config = tiny_config(tiny_sd1, dataset, tmp_path / "out", cache_text_encoder_outputs=True, **extra)
        with pytest.raises(TrainError, match=reason):
            run_training(config)


def test_cached_text_encoder_outputs_train_the_same(tiny_sd1, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=2)
    common = {"train_unet_only": True, "max_train_steps": 2, "learning_rate": 1e-2, "save_precision": "fp32"}
    plain, _ = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "a", **common))
    cached, _ = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "b", cache_text_encoder_outputs_to_disk=True,
                                         **common))
    assert sorted(p.name for p in (dataset / "1_chara").glob("*_te_outputs.npz")) == [
        "img0_te_outputs.npz", "img1_te_outputs.npz"]
    a, b = load_lora_file(plain)[0], load_lora_file(cached)[0]
    assert set(a) == set(b) and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_fp8_base_halves_weight_bytes_and_trains(tiny_sd1, tmp_path):
    from diffusers import UNet2DConditionModel

    from trainer.fp8 import FP8, store_fp8, weight_bytes

    half = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet", torch_dtype=torch.float16)
    fp8 = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet").requires_grad_(False)
    assert store_fp8(fp8) > 0
    assert weight_bytes(fp8) <= 0.55 * weight_bytes(half)  # norms/embeddings stay in the compute dtype
    assert fp8.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q.weight.dtype == FP8
    out = fp8(torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 77, 32)).sample
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    path, events = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "out", fp8_base=True, max_train_steps=1,
                                            learning_rate=1e-2))
    tensors = load_lora_file(path)[0]
    assert any(float(t.abs().max()) > 0 for k, t in tensors.items() if k.endswith("lora_up.weight"))
    with pytest.raises(TrainError, match="fp8_base"):
        run_training(tiny_config(tiny_sd1, dataset, tmp_path / "o2", fp8_base=True, network_type="loha"))


def test_fp8_base_samples_during_training(tiny_sd1, tmp_path):
    """Sampling goes through the pipeline's forward on the fp8-stored UNet and text encoder."""
    import numpy as np
    from PIL import Image

    dataset = make_train_dataset(tmp_path / "ds", images=1)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("chara, 1girl --w 64 --h 64 --s 2 --d 5\n", encoding="utf-8")
    _path, events = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "out", fp8_base=True, max_train_steps=1,
                                             sample_prompts=prompts, sample_every_n_steps=1))
    samples = [e for e in events if e["event"] == "sample"]
    assert [e["step"] for e in samples] == [1]
    (png,) = (tmp_path / "out" / "sample").glob("*.png")
    pixels = np.asarray(Image.open(png).convert("RGB"))
    assert pixels.shape == (64, 64, 3) and pixels.std() > 0  # a rendered image, not a blank/NaN one
