"""Network kinds through LyCORIS (LoCon, LoHa, LoKr, DoRA) and kohya's block-wise learning rates."""

from __future__ import annotations

import json

import pytest
import torch

from tests.trainer.conftest import make_train_dataset, run_training, tiny_config
from trainer.block_lr import block_index, block_lr_weights, parse_weights, weight_of
from trainer.errors import LoRAFileError, TrainError
from trainer.network import LoRANetwork, NetworkOptions
from trainer.safetensors_read import read_tensors as load_lora_file

ATTN = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"


def _network(pipe, model_type: str, **options):
    encoders = [pipe.text_encoder] + ([pipe.text_encoder_2] if model_type == "sdxl" else [])
    return LoRANetwork(pipe.unet, encoders, model_type, NetworkOptions(**{"dim": 4, "alpha": 2.0, **options}))


@pytest.mark.parametrize(("kind", "extra", "suffixes", "args"), [
    ("loha", {}, {"alpha", "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"}, {"algo": "loha"}),
    ("lokr", {"lokr_factor": 4}, None, {"algo": "lokr", "factor": "4"}),
])
def test_lycoris_kinds_write_lycoris_files_that_reload(kind, extra, suffixes, args, tiny_sd1, tmp_path):
    from diffusers import StableDiffusionPipeline

    dataset = make_train_dataset(tmp_path / "ds", images=1)
    config = tiny_config(tiny_sd1, dataset, tmp_path / "out", network_type=kind, max_train_steps=1,
                         learning_rate=1e-2, save_precision="fp32", **extra)
    path, _events = run_training(config)
    tensors, meta = load_lora_file(path)
    assert meta["ss_network_module"] == "lycoris.kohya"
    assert json.loads(meta["ss_network_args"]) == args
    found = {k.split(".", 1)[1] for k in tensors}
    if suffixes:
        assert found == suffixes
    else:
        assert "alpha" in found and any(s.startswith("lokr_w1") for s in found)
    assert any(k.startswith("lora_te_text_model_encoder_layers_0_") for k in tensors)
    # network_weights: the same network reloads every tensor exactly.
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    net = _network(pipe, "sd1", network_type=kind, lokr_factor=extra.get("lokr_factor", -1))
    net.load_weights(tensors, str(path))
    again = net.kohya_state_dict()
    assert set(again) == set(tensors)
    assert all(torch.equal(again[k], tensors[k]) for k in tensors)
    # ... and a network of another kind refuses it with a line naming the file.
    with pytest.raises(LoRAFileError, match="network_type"):
        _network(pipe, "sd1").load_weights(tensors, str(path))
    # Continue training from the file.
    more = tiny_config(tiny_sd1, dataset, tmp_path / "out2", network_type=kind, max_train_steps=1,
                       network_weights=path, **extra)
    assert run_training(more)[0].is_file()


def test_locon_loads_in_diffusers_as_lycoris_computes_and_dora_file(tiny_sd1, tmp_path):
    """diffusers loads LoCon exactly as LyCORIS merges it; it drops kohya-format dora_scale keys
    (diffusers 0.3x: "not compatible"), so the DoRA file is checked against LyCORIS only."""
    from diffusers import StableDiffusionPipeline

    dataset = make_train_dataset(tmp_path / "ds", images=1)
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    module = pipe.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q
    before = module.weight.detach().clone()
    for kind, dora in (("lora", True), ("locon", False)):
        out = tmp_path / f"out-{kind}"
        path, _ = run_training(tiny_config(tiny_sd1, dataset, out, network_type=kind, dora=dora, max_train_steps=1,
                                           learning_rate=1e-2, save_precision="fp32"))
        tensors, meta = load_lora_file(path)
        args = json.loads(meta["ss_network_args"])
        assert meta["ss_network_module"] == "lycoris.kohya" and args["algo"] == kind
        net = _network(pipe, "sd1", network_type=kind, dora=dora, conv_dim=4 if kind == "locon" else None,
                       conv_alpha=2.0)
        net.load_weights(tensors, str(path))
        expected = getattr(net, ATTN).get_merged_weight()[0].detach().clone()  # LyCORIS's own merge
        assert (expected - before).abs().max() > 1e-6
        if dora:
            assert args["dora_wd"] == "True" and f"{ATTN}.dora_scale" in tensors
            assert torch.equal(tensors[f"{ATTN}.dora_scale"], getattr(net, ATTN).dora_scale.detach())
            continue
        assert args["conv_dim"] == "4"  # locon adapts the 3x3 convs at network_dim by default
        assert tensors["lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight"].shape[2:] == (3, 3)
        pipe.load_lora_weights(str(path))
        pipe.fuse_lora()
        assert torch.allclose(module.weight.detach(), expected, atol=1e-5)


def test_sdxl_lokr_dora_ldm_names(tiny_sdxl, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=1)
    config = tiny_config(tiny_sdxl, dataset, tmp_path / "out", network_type="lokr", dora=True, conv_dim=2,
                         train_unet_only=True, max_train_steps=1)
    tensors, meta = load_lora_file(run_training(config)[0])
    assert json.loads(meta["ss_network_args"]) == {"algo": "lokr", "conv_dim": "2", "conv_alpha": "2.0",
                                                   "factor": "-1", "dora_wd": "True"}
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.dora_scale" in tensors
    assert any(k.startswith("lora_unet_input_blocks_1_0_in_layers_2.lokr_") for k in tensors)
    assert not any(k.startswith("lora_te") for k in tensors)


def test_loha_refuses_network_dropout(tiny_sd1, tmp_path):
    config = tiny_config(tiny_sd1, make_train_dataset(tmp_path / "ds", images=1), tmp_path / "out",
                         network_type="loha", network_dropout=0.1)
    with pytest.raises(TrainError, match="network_dropout"):
        run_training(config)


def test_block_lr_presets_and_lists():
    sine = parse_weights("down_lr_weight", "sine", 12, True)
    assert sine[0] == 0.0 and sine[-1] == pytest.approx(1.0) and sine == sorted(sine)
    assert parse_weights("down_lr_weight", "cosine+0.5", 12, True)[0] == pytest.approx(1.5)
    assert parse_weights("up_lr_weight", "0, 0.5", 12, True) == [0.0, 0.5] + [1.0] * 10
    assert parse_weights("down_lr_weight", "zeros", 9, True) == [0.0] * 9
    with pytest.raises(TrainError, match="12"):
        parse_weights("down_lr_weight", ",".join(["1"] * 13), 12, True)
    with pytest.raises(TrainError, match="preset"):
        parse_weights("down_lr_weight", "wavy", 12, True)

    class C:
        down_lr_weight, mid_lr_weight, up_lr_weight, block_lr_zero_threshold = "zeros+0.25", "2", None, 0.3

    weights = block_lr_weights(C, sdxl=False)
    assert len(weights) == 25 and weights[:12] == [0.0] * 12 and weights[12] == 2.0 and weights[13:] == [1.0] * 12
    assert len(block_lr_weights(C, sdxl=True)) == 23
    # kohya's block indices
    assert block_index("lora_unet_down_blocks_0_attentions_0_proj_in", False) == 1
    assert block_index("lora_unet_down_blocks_1_downsamplers_0_conv", False) == 6
    assert block_index("lora_unet_mid_block_attentions_0_proj_in", False) == 12
    assert block_index("lora_unet_up_blocks_1_attentions_2_proj_out", False) == 13 + 5
    assert block_index("lora_te_text_model_encoder_layers_0_mlp_fc1", False) == -1
    assert block_index("lora_unet_input_blocks_4_1_proj_in", True) == 5
    assert block_index("lora_unet_middle_block_1_proj_in", True) == 11
    assert block_index("lora_unet_output_blocks_0_1_proj_in", True) == 13
    assert weight_of(weights, "lora_unet_mid_block_attentions_0_proj_in", False) == 2.0


def test_block_lr_groups_and_zero_blocks(tiny_sd1):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    weights = [0.0] * 12 + [1.0] + [0.5] * 12
    net = _network(pipe, "sd1", block_lr_weights=tuple(weights))
    assert not any(n.startswith("lora_unet_down_blocks_") for n in net.unet_names)  # zero blocks: no LoRA
    assert any(n.startswith("lora_unet_mid_block_") for n in net.unet_names)
    groups = {g["name"]: g for g in net.parameter_groups(1e-3, 1e-4)}
    assert set(groups) == {"textencoder", "unet_x1", "unet_x0.5"}
    assert groups["unet_x0.5"]["lr"] == pytest.approx(5e-4) and groups["unet_x1"]["lr"] == pytest.approx(1e-3)
    mid = {id(p) for n in net.unet_names if "mid_block" in n for p in getattr(net, n).parameters()}
    assert {id(p) for p in groups["unet_x1"]["params"]} == mid


def test_sdxl_loha_with_both_text_encoders_reloads_and_lora_tools_read_it(tiny_sdxl, tmp_path, capsys):
    """LoHa on the tiny SDXL model, UNet and both text encoders trained: LyCORIS/kohya keys (lora_unet_<LDM>,
    lora_te1_, lora_te2_), reloaded for network_weights, named by `lora info`, merged by `lora merge`
    exactly as the trained LyCORIS modules compute."""
    from diffusers import StableDiffusionXLPipeline
    from safetensors.torch import load_file

    from tui.cli import main

    dataset = make_train_dataset(tmp_path / "ds", images=1)
    config = tiny_config(tiny_sdxl, dataset, tmp_path / "out", network_type="loha", max_train_steps=1,
                         learning_rate=1e-2, save_precision="fp32")
    path, _events = run_training(config)
    tensors, meta = load_lora_file(path)
    assert meta["ss_network_module"] == "lycoris.kohya" and json.loads(meta["ss_network_args"]) == {"algo": "loha"}
    assert meta["ss_base_model_version"].startswith("sdxl")
    prefixes = {k.split(".", 1)[0].split("_")[1] for k in tensors}
    assert prefixes == {"unet", "te1", "te2"}
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.hada_w1_a" in tensors
    assert "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.hada_w2_b" in tensors
    assert "lora_te2_text_model_encoder_layers_0_mlp_fc1.alpha" in tensors
    assert {k.split(".", 1)[1] for k in tensors} == {"alpha", "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"}
    # network_weights: the same network reloads every tensor exactly, and training continues from it.
    pipe = StableDiffusionXLPipeline.from_pretrained(tiny_sdxl)
    net = _network(pipe, "sdxl", network_type="loha")
    net.load_weights(tensors, str(path))
    again = net.kohya_state_dict()
    assert set(again) == set(tensors) and all(torch.equal(again[k], tensors[k]) for k in tensors)
    more = tiny_config(tiny_sdxl, dataset, tmp_path / "out2", network_type="loha", max_train_steps=1,
                       network_weights=path)
    assert run_training(more)[0].is_file()
    capsys.readouterr()

    assert main(["lora", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "loha" and info["architecture"] == "SDXL" and not info["incomplete_modules"]
    assert info["total_modules"] == len({k.split(".", 1)[0] for k in tensors})
    ratio = 0.6
    out = tmp_path / "merged"
    assert main(["lora", "merge", "--base", str(tiny_sdxl), "--lora", f"{path}:{ratio}", "--out", str(out),
                 "--format", "diffusers"]) == 0
    capsys.readouterr()
    parts = {"lora_unet_": (pipe.unet, "unet/diffusion_pytorch_model.safetensors"),
             "lora_te1_": (pipe.text_encoder, "text_encoder/model.safetensors"),
             "lora_te2_": (pipe.text_encoder_2, "text_encoder_2/model.safetensors")}
    for prefix, (model, file) in parts.items():
        merged = load_file(str(out / file))
        names = {id(m): n for n, m in model.named_modules()}
        checked = 0
        for name in sorted({k.split(".", 1)[0] for k in tensors if k.startswith(prefix)})[:6]:
            module = getattr(net, name)
            layer = module.org_module[0]
            key = f"{names[id(layer)]}.weight"
            key = key if key in merged else f"text_model.{key}"
            x = torch.randn(2, layer.in_features) if isinstance(layer, torch.nn.Linear) else torch.randn(
                1, layer.in_channels, 6, 6)
            module.multiplier = ratio
            with torch.no_grad():
                reference = module(x)  # LyCORIS's forward at the merge ratio
                if isinstance(layer, torch.nn.Linear):
                    ours = torch.nn.functional.linear(x, merged[key].float(), layer.bias)
                else:
                    ours = torch.nn.functional.conv2d(x, merged[key].float(), layer.bias, layer.stride, layer.padding)
            assert (reference - layer(x)).abs().max() > 1e-6  # the module did train
            assert torch.allclose(ours, reference, atol=2e-5, rtol=1e-4), name
            checked += 1
        assert checked


def test_dora_file_diffusers_drops_it_lorakit_applies_it(tiny_sd1, tmp_path, capsys):
    """diffusers 0.42's loader drops dora_scale (its output differs from LyCORIS's forward), so `lora info`
    says the file does not load there, and `lora preview` applies it through lorakit's exact merge."""
    from diffusers import StableDiffusionPipeline

    from trainer.lora_tools.io import load_lora
    from trainer.lora_tools.preview import WeightPatch, needs_weight_patch
    from tui.cli import main

    dataset = make_train_dataset(tmp_path / "ds", images=1)
    path, _ = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "out", dora=True, max_train_steps=1,
                                       learning_rate=1e-2, save_precision="fp32"))
    tensors, _meta = load_lora_file(path)
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    net = _network(pipe, "sd1", dora=True)
    net.load_weights(tensors, str(path))
    module = getattr(net, ATTN)
    layer = module.org_module[0]
    x = torch.randn(3, layer.in_features)
    with torch.no_grad():
        base, reference = layer(x), module(x)  # the trained DoRA module's forward
    assert (reference - base).abs().max() > 1e-4
    # lorakit's patch (the merge's update) gives LyCORIS's output ...
    lora = load_lora(path)
    assert needs_weight_patch(lora)
    patch = WeightPatch(pipe, lora)
    patch.set(1.0)
    with torch.no_grad():
        assert torch.allclose(layer(x), reference, atol=1e-5)
    patch.set(0.0)
    with torch.no_grad():
        assert torch.equal(layer(x), base)
    # ... diffusers' loader does not (dora_scale dropped): the claim `lora info` makes.
    plain = StableDiffusionPipeline.from_pretrained(tiny_sd1)
    plain.load_lora_weights(str(path))
    target = plain.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn1.to_q
    with torch.no_grad():
        assert (target(x) - reference).abs().max() > 1e-4
    capsys.readouterr()
    assert main(["lora", "info", str(path), "--json"]) == 0
    loads = json.loads(capsys.readouterr().out)["loaders"]
    assert loads["tools"] == ["A1111", "ComfyUI", "LyCORIS"] and "dora_scale" in loads["not_diffusers"]
    assert main(["lora", "info", str(path)]) == 0
    assert "loads in: A1111, ComfyUI, LyCORIS; not diffusers (diffusers drops dora_scale" in capsys.readouterr().out
    out = tmp_path / "grid.png"
    assert main(["lora", "preview", "--base", str(tiny_sd1), "--lora", str(path), "--prompt", "chara",
                 "--steps", "1", "--out", str(out)]) == 0
    assert out.is_file()
