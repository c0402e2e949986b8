"""End-to-end SD1 training on a tiny model: the file, its metadata, diffusers loading, events."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
from trainer.lora_keys import text_encoder_lora_targets, unet_lora_targets
from trainer.lora_modules import parse_lora_tensors
from trainer.safetensors_read import read_header


@pytest.fixture(scope="module")
def trained(tiny_sd1, tmp_path_factory):
    root = tmp_path_factory.mktemp("sd1run")
    dataset = make_train_dataset(root / "dataset", images=2, repeats=2)
    config = tiny_config(tiny_sd1, dataset, root / "out", save_precision="fp32", lr_scheduler="linear",
                         learning_rate=1e-3, max_train_steps=3, output_name="chara", clip_skip=2)
    path, events = run_training(config)
    return path, events, config


def _merged_weights_check(pipe, file, model_type):
    from trainer.safetensors_read import read_tensors

    tensors, _ = read_tensors(file)
    modules = parse_lora_tensors(tensors, {}).modules
    paths = {n: ("unet", p) for n, (p, _m) in unet_lora_targets(pipe.unet, model_type, conv=True).items()}
    encoders = [("text_encoder", pipe.text_encoder)]
    prefixes = ["lora_te"]
    if model_type == "sdxl":
        encoders.append(("text_encoder_2", pipe.text_encoder_2))
        prefixes = ["lora_te1", "lora_te2"]
    for prefix, (attr, encoder) in zip(prefixes, encoders, strict=True):
        paths.update({n: (attr, p) for n, (p, _m) in text_encoder_lora_targets(encoder, prefix).items()})
    assert set(modules) <= set(paths)

    def weight(name):
        attr, path = paths[name]
        module = getattr(pipe, attr).get_submodule(path)
        return (module.base_layer.weight if hasattr(module, "base_layer") else module.weight).detach().clone()

    before = {name: weight(name) for name in modules}
    pipe.load_lora_weights(str(file))
    pipe.fuse_lora()
    changed = 0
    for name, lora in modules.items():
        delta = weight(name) - before[name]
        expected = lora.delta().reshape(delta.shape)
        assert torch.allclose(delta, expected, rtol=1e-4, atol=1e-7), name
        changed += bool(expected.abs().max() > 0)
    return modules, changed


def test_file_format_and_diffusers_loading(trained, tiny_sd1):
    from diffusers import StableDiffusionPipeline

    path, _events, _config = trained
    assert path.name == "chara.safetensors"
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    unet_count = len(unet_lora_targets(pipe.unet, "sd1"))
    te_count = len(text_encoder_lora_targets(pipe.text_encoder, "lora_te"))
    modules, changed = _merged_weights_check(pipe, path, "sd1")
    assert len(modules) == unet_count + te_count
    assert "lora_te_text_model_encoder_layers_0_mlp_fc1" in modules
    for lora in modules.values():
        assert lora.rank == 4 and lora.alpha == 2.0 and lora.scale == 0.5
        assert lora.down.dtype == torch.float32
    # clip_skip=2: the last text encoder layer gets no gradient and stays 0 (as the guide says).
    last = [n for n in modules if n.startswith("lora_te_text_model_encoder_layers_2_")]
    assert last and all(float(modules[n].up.abs().max()) == 0.0 for n in last)
    assert changed == len(modules) - len(last)


def test_unet_output_changes_by_the_lora(trained, tiny_sd1):
    """The pipeline's UNet with the file loaded equals a UNet whose weights were merged by hand."""
    from diffusers import UNet2DConditionModel

    from trainer.safetensors_read import read_tensors

    path = trained[0]
    tensors, _ = read_tensors(path)
    modules = parse_lora_tensors(tensors, {}).modules
    manual = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet")
    base = UNet2DConditionModel.from_pretrained(tiny_sd1, subfolder="unet")
    targets = unet_lora_targets(manual, "sd1")
    with torch.no_grad():
        for name, lora in modules.items():
            if name in targets:
                targets[name][1].weight += lora.delta().reshape(targets[name][1].weight.shape)
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    pipe.load_lora_weights(str(path))
    torch.manual_seed(0)
    x, states = torch.randn(1, 4, 8, 8), torch.randn(1, 77, 32)
    with torch.no_grad():
        loaded = pipe.unet(x, 10, states).sample
        merged = manual(x, 10, states).sample
        original = base(x, 10, states).sample
    assert torch.allclose(loaded, merged, atol=1e-5)
    assert not torch.allclose(loaded, original, atol=1e-6)


def test_metadata(trained):
    path, _events, config = trained
    meta = read_header(path).metadata
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["ss_network_module"] == "networks.lora"
    assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "2.0"
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert meta["ss_resolution"] == "(64, 64)"
    assert meta["ss_clip_skip"] == "2"
    assert meta["ss_num_train_images"] == "4" and meta["ss_num_reg_images"] == "0"
    assert meta["ss_max_train_steps"] == "3" and meta["ss_num_epochs"] == "1"  # 4 entries per epoch
    assert meta["ss_learning_rate"] == "0.001" and meta["ss_unet_lr"] == "0.001"
    assert meta["ss_text_encoder_lr"] == "0.001" and meta["ss_lr_scheduler"] == "linear"
    assert meta["ss_mixed_precision"] == "no" and meta["ss_seed"] == "42"
    assert meta["ss_keep_tokens"] == "0" and meta["ss_shuffle_caption"] == "False"
    assert meta["ss_max_token_length"] == "75"
    assert json.loads(meta["ss_dataset_dirs"]) == {"2_chara": {"n_repeats": 2, "img_count": 2}}
    assert json.loads(meta["ss_tag_frequency"]) == {"2_chara": {"chara": 2, "1girl": 2, "tag0": 1, "tag1": 1}}
    assert float(meta["ss_training_finished_at"]) >= float(meta["ss_training_started_at"])
    assert meta["ss_steps"] == "3"
    assert meta["lorakit_version"]
    assert json.loads(meta["lorakit_config"])["network_dim"] == 4
    # sshs hashes as kohya/A1111 compute them.
    data = path.read_bytes()
    import hashlib

    header = int.from_bytes(data[:8], "little")
    assert meta["sshs_model_hash"] == hashlib.sha256(data[8 + header:]).hexdigest()
    assert meta["sshs_legacy_hash"] == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]


def test_events(trained):
    path, events, _config = trained
    names = [e["event"] for e in events]
    assert names[0] == "start" and names[-1] == "done"
    start = events[0]
    assert start["total_steps"] == 3 and start["epochs"] == 1 and start["images"] == 2
    assert start["config"]["network_dim"] == 4
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == [1, 2, 3]
    assert [e["epoch"] for e in steps] == [1, 1, 1]
    for event in steps:
        assert set(event) == {"event", "step", "epoch", "loss", "lr", "it_per_s", "eta_s"}
        assert math.isfinite(event["loss"]) and event["it_per_s"] > 0
    # linear decay to 0 over 3 steps: the lr after step s is lr * (3 - s) / 3
    assert [e["lr"] for e in steps] == pytest.approx([1e-3 * 2 / 3, 1e-3 / 3, 0.0])
    saves = [e for e in events if e["event"] == "save"]
    assert saves == [{"event": "save", "step": 3, "path": str(path)}]
    assert events[-1]["path"] == str(path) and events[-1]["steps"] == 3 and events[-1]["seconds"] >= 0
