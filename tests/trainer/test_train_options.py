"""Training options end to end on tiny models: SDXL, LoCon, v-prediction, caching, reg, saves, resume, NaN."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import write_caption, write_image
from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
from trainer.errors import TrainingDiverged
from trainer.lora_modules import read_lora
from trainer.safetensors_read import read_header, read_tensors


def test_sdxl_trains_and_loads_in_diffusers(tiny_sdxl, tmp_path):
    from diffusers import StableDiffusionXLPipeline

    from tests.trainer.test_train_sd1 import _merged_weights_check

    dataset = make_train_dataset(tmp_path / "ds", images=2)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("chara --w 64 --h 64 --s 1 --d 3\n", encoding="utf-8")
    config = tiny_config(tiny_sdxl, dataset, tmp_path / "out", conv_dim=2, conv_alpha=1.0, save_precision="fp32",
                         learning_rate=1e-3, sample_prompts=prompts, sample_every_n_steps=2, max_token_length="150")
    path, events = run_training(config)
    samples = [e for e in events if e["event"] == "sample"]
    assert samples and samples[0]["step"] == 2 and samples[0]["path"].endswith("_3.png")
    tensors, meta = read_tensors(path)
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight" in tensors
    assert "lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight" in tensors
    assert tensors["lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight"].shape[1:] == (32, 3, 3)
    assert tensors["lora_unet_input_blocks_1_0_in_layers_2.lora_down.weight"].shape[0] == 2
    assert any(k.startswith("lora_te1_text_model_encoder_layers_") for k in tensors)
    assert any(k.startswith("lora_te2_text_model_encoder_layers_") for k in tensors)
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    modules, changed = _merged_weights_check(pipe, path, "sdxl")
    assert changed > len(modules) // 2


def test_v_prediction_model_type_and_locon(tiny_sd2v, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    config = tiny_config(tiny_sd2v, dataset, tmp_path / "out", conv_dim=2, train_unet_only=True,
                         min_snr_gamma=5.0, noise_offset=0.05, gradient_checkpointing=True,
                         max_data_loader_n_workers=1)
    path, events = run_training(config)
    meta = read_header(path).metadata
    assert meta["ss_base_model_version"] == "sd_v2_v" and meta["ss_v2"] == "True"
    assert meta["ss_network_args"] == '{"conv_dim": "2", "conv_alpha": "1.0"}'
    modules = read_lora(path).modules
    assert not any(n.startswith("lora_te") for n in modules)
    conv = modules["lora_unet_down_blocks_0_resnets_0_conv1"]
    assert conv.rank == 2 and conv.alpha == 1.0 and conv.down.shape[2:] == (3, 3)
    assert modules["lora_unet_down_blocks_0_attentions_0_proj_in"].rank == 4
    assert next(e for e in events if e["event"] == "start")["model_type"] == "sd2-v"


def test_reg_cache_saves_rotation_and_samples(tiny_sd1, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=2)
    make_train_dataset(tmp_path / "reg", images=1, name="person")
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# preview\n1girl, chara --n lowres --w 64 --h 64 --s 2 --l 5 --d 7\n", encoding="utf-8")
    config = tiny_config(tiny_sd1, dataset, tmp_path / "out", reg_dataset=tmp_path / "reg", max_train_steps=None,
                         max_train_epochs=2, cache_latents=True, cache_latents_to_disk=True, flip_aug=True,
                         save_every_n_epochs=1, save_every_n_steps=3, save_last_n=1, sample_every_n_epochs=1,
                         sample_prompts=prompts, shuffle_caption=True, keep_tokens=1, prior_loss_weight=0.5)
    path, events = run_training(config)
    start = next(e for e in events if e["event"] == "start")
    assert start["reg_images"] == 1 and start["steps_per_epoch"] == 4  # 2 train + 2 (cycled) reg
    assert start["total_steps"] == 8
    out = tmp_path / "out"
    saved = [e["path"] for e in events if e["event"] == "save"]
    assert saved == [str(out / "lora-step00000003.safetensors"), str(out / "lora-000001.safetensors"),
                     str(out / "lora-step00000006.safetensors"), str(out / "lora.safetensors")]
    assert saved[-1] == str(path)
    # save_last_n = 1: only the newest step save remains.
    assert {p.name for p in out.glob("*.safetensors")} == {"lora-000001.safetensors", "lora.safetensors",
                                                         "lora-step00000006.safetensors"}
    samples = [e for e in events if e["event"] == "sample"]
    assert [s["step"] for s in samples] == [4, 8]
    assert samples[0]["path"].endswith("_7.png") and "lora_e000001_00_" in samples[0]["path"]
    assert samples[0]["path"].startswith(str(out / "sample"))
    from PIL import Image

    with Image.open(samples[0]["path"]) as im:
        assert im.size == (64, 64)
    npz = sorted((tmp_path / "ds").rglob("*_0064x0064_sd.npz"))
    assert len(npz) == 2
    meta = read_header(path).metadata
    assert meta["ss_num_reg_images"] == "1" and meta["ss_cache_latents"] == "True"
    # A second run reads the disk cache instead of re-encoding.
    stamps = [p.stat().st_mtime_ns for p in npz]
    run_training(tiny_config(tiny_sd1, dataset, tmp_path / "out2", cache_latents_to_disk=True, flip_aug=True))
    assert [p.stat().st_mtime_ns for p in npz] == stamps


def test_resume_continues_exactly(tiny_sd1, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=3)
    common = dict(max_train_steps=4, save_precision="fp32", learning_rate=1e-3, lr_scheduler="cosine",
                  shuffle_caption=True, caption_tag_dropout_rate=0.2, flip_aug=True)
    straight, _ = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "a", **common))
    run_training(tiny_config(tiny_sd1, dataset, tmp_path / "b", save_every_n_steps=2, save_state=True, **common))
    state = tmp_path / "b" / "lora-step00000002-state"
    assert (state / "train_state.json").is_file()
    resumed, events = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "c", resume=state, **common))
    assert [e["step"] for e in events if e["event"] == "step"] == [3, 4]
    a, c = read_tensors(straight)[0], read_tensors(resumed)[0]
    assert a.keys() == c.keys()
    for key in a:
        assert torch.allclose(a[key], c[key], atol=1e-6), key
    assert any(float(a[k].abs().max()) > 0 for k in a if k.endswith("lora_up.weight"))


def test_continue_from_network_weights(tiny_sd1, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    first, _ = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "a", save_precision="fp32"))
    second, _ = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "b", network_weights=first,
                                         save_precision="fp32", learning_rate=0.0, text_encoder_lr=0.0,
                                         unet_lr=1e-12, optimizer="SGD"))
    a, b = read_tensors(first)[0], read_tensors(second)[0]
    assert all(torch.allclose(a[k], b[k], atol=1e-9) for k in a)


def test_nan_loss_stops_with_error_and_keeps_last_save(tiny_sd1, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=2)
    config = tiny_config(tiny_sd1, dataset, tmp_path / "out", optimizer="SGD", learning_rate=1e30,
                         max_grad_norm=0.0, max_train_steps=6, save_every_n_steps=1,
                         save_precision="fp32")
    events: list[dict] = []
    from trainer.run import train

    with pytest.raises(TrainingDiverged):
        train(config, events.append)
    errors = [e for e in events if e["event"] == "error"]
    assert len(errors) == 1 and "fp16" in errors[0]["message"] and "learning" in errors[0]["message"]
    assert not (tmp_path / "out" / "lora.safetensors").exists()
    saves = [e["path"] for e in events if e["event"] == "save"]
    assert saves and all(torch.isfinite(t).all() for t in read_tensors(saves[-1])[0].values())
    assert "done" not in [e["event"] for e in events]


def test_long_captions_auto_max_token_length(tiny_sd1, tmp_path):
    dataset = tmp_path / "ds"
    write_image(dataset / "1_x" / "a.png", (64, 64))
    from prep.clip_tokens import count_tokens

    words = [f"word{i}" for i in range(80)]
    while count_tokens(", ".join(words)) > 220:
        words.pop()
    assert count_tokens(", ".join(words)) > 150
    write_caption(dataset / "1_x" / "a.txt", ", ".join(words))
    path, events = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "out", max_train_steps=1,
                                            vae=str(tiny_sd1), gradient_checkpointing=True))
    assert next(e for e in events if e["event"] == "start")["max_token_length"] == 225
    assert read_header(path).metadata["ss_max_token_length"] == "225"


class Payload:
    """Stands for the arbitrary object a hostile .ckpt would unpickle."""


def test_unsafe_ckpt_is_refused(tmp_path, train_dataset):
    from trainer.errors import TrainError

    ckpt = tmp_path / "model.ckpt"
    # A pickle that names an arbitrary class: weights_only loading must refuse it.
    torch.save({"state_dict": {}, "extra": Payload()}, ckpt)
    config = tiny_config(ckpt, train_dataset, tmp_path / "out")
    events: list[dict] = []
    from trainer.run import train

    with pytest.raises(TrainError, match="unsafe pickle"):
        train(config, events.append)
    assert any(e["event"] == "warning" and "weights_only" in e["message"] for e in events)


def test_model_type_mismatch(tiny_sd1, tmp_path, train_dataset):
    from trainer.errors import TrainError

    with pytest.raises(TrainError, match="model_type = sdxl"):
        run_training(tiny_config(tiny_sd1, train_dataset, tmp_path / "out", model_type="sdxl"))


def test_fp16_checkpoint_trains_in_fp32_on_cpu(tiny_sd1, tmp_path, train_dataset):
    from diffusers import StableDiffusionPipeline

    half = tmp_path / "fp16-model"
    StableDiffusionPipeline.from_pretrained(tiny_sd1, torch_dtype=torch.float16).save_pretrained(half)
    path, events = run_training(tiny_config(half, train_dataset, tmp_path / "out", max_train_steps=1))
    assert [e["event"] for e in events if e["event"] == "done"] == ["done"]
    assert read_header(path).metadata["ss_mixed_precision"] == "no"
    assert all(torch.isfinite(t).all() for t in read_tensors(path)[0].values())
