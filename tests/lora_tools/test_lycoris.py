"""LyCORIS files (issue 16, LoRA tools): real LoHa / LoKr / LoCon / DoRA files built with the lycoris
library on the tiny SD1 model; `lora info` names them, `lora check` reads them, `lora merge --base`
merges them exactly as LyCORIS's own modules compute them, resize / LoRA merge refuse them with one line.

The reference is LyCORIS's forward (the weights it trains): for each module, the merged layer's output
on a random input must equal the LyCORIS module's output at the same multiplier. (LyCORIS 4.1.3's
`get_diff_weight` / `get_merged_weight` apply alpha/rank twice for LoHa and LoKr, so those equal the
forward only at alpha = rank; they are compared there.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from tui.cli import main

ALGOS = {
    "loha": ("lycoris.modules.loha", "LohaModule", {}),
    "lokr": ("lycoris.modules.lokr", "LokrModule", {"decompose_both": True, "factor": 4}),
    "locon-tucker": ("lycoris.modules.locon", "LoConModule", {"use_tucker": True}),
    "dora": ("lycoris.modules.locon", "LoConModule", {"weight_decompose": True}),
    "loha-dora": ("lycoris.modules.loha", "LohaModule", {"weight_decompose": True}),
    "lokr-dora": ("lycoris.modules.lokr", "LokrModule", {"weight_decompose": True}),
}
KIND = {"loha": "loha", "lokr": "lokr", "locon-tucker": "locon", "dora": "locon", "loha-dora": "loha",
        "lokr-dora": "lokr"}


def lycoris_class(algo: str):
    import importlib

    module, name, kwargs = ALGOS[algo]
    return getattr(importlib.import_module(module), name), kwargs


@pytest.fixture(scope="module")
def sd1(tiny_sd1: Path):
    import diffusers

    return diffusers.StableDiffusionPipeline.from_pretrained(tiny_sd1)


def targets(pipe) -> dict:
    from trainer.lora_keys import text_encoder_lora_targets, unet_lora_targets

    return {**unet_lora_targets(pipe.unet, "sd1", conv=True), **text_encoder_lora_targets(pipe.text_encoder, "lora_te")}


def build(pipe, algo: str, path: Path, *, dim: int = 4, alpha: float = 2.0, seed: int = 0, std: float = 0.1) -> dict:
    """LyCORIS modules on every kohya target of the tiny model, random (trained-looking) weights, saved
    as LyCORIS saves them (`<kohya name>.<custom_state_dict key>`). Returns {name: (module, layer)}."""
    cls, kwargs = lycoris_class(algo)
    torch.manual_seed(seed)
    built, tensors = {}, {}
    for name, (_path, layer) in targets(pipe).items():
        module = cls(name, layer, 1.0, dim, alpha, **kwargs)
        with torch.no_grad():
            for pname, p in module.named_parameters():
                if pname.startswith(("lora_", "hada_", "lokr_")):
                    p.normal_(0, std)
                elif pname == "dora_scale":
                    p.mul_(1 + 0.2 * torch.rand_like(p))
        module.eval()
        built[name] = (module, layer)
        for key, value in module.custom_state_dict().items():
            tensors[f"{name}.{key}"] = value.detach().contiguous().clone()
    save_file(tensors, str(path), metadata={"ss_network_module": "lycoris.kohya", "ss_base_model_version": "sd_v1",
                                            "ss_network_args": json.dumps({"algo": algo.split("-")[0]})})
    return built


def layer_output(layer, weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    if isinstance(layer, torch.nn.Linear):
        return F.linear(x, weight, layer.bias)
    return F.conv2d(x, weight, layer.bias, layer.stride, layer.padding, layer.dilation, layer.groups)


def probe(layer) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    if isinstance(layer, torch.nn.Linear):
        return torch.randn(3, layer.in_features, generator=g)
    return torch.randn(2, layer.in_channels, 6, 6, generator=g)


def merged_weights(out: Path) -> dict[str, torch.Tensor]:
    return {**{f"unet.{k}": v for k, v in load_file(str(out / "unet" / "diffusion_pytorch_model.safetensors")).items()},
            **{f"te.{k}": v for k, v in load_file(str(out / "text_encoder" / "model.safetensors")).items()}}


def merged_key(weights: dict, name: str, path: str) -> str:
    """The merged file's key of a target (text encoder files may or may not say `text_model.`)."""
    if name.startswith("lora_unet"):
        return f"unet.{path}.weight"
    key = f"te.{path}.weight"
    return key if key in weights else f"te.text_model.{path}.weight"


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_lycoris_file_info_check_and_exact_merge(algo: str, sd1, tiny_sd1: Path, tmp_path: Path, capsys):
    path = tmp_path / f"{algo}.safetensors"
    built = build(sd1, algo, path)
    capsys.readouterr()  # LyCORIS logs its warnings to stdout

    assert main(["lora", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == KIND[algo] and info["dora"] == algo.endswith("dora")
    assert info["total_modules"] == len(built) and not info["incomplete_modules"]
    assert info["architecture"] == "SD1"
    assert main(["lora", "info", str(path)]) == 0
    label = {"loha": "LoHa", "lokr": "LoKr", "locon": "LoCon"}[KIND[algo]]
    assert f"kind: {label}" in capsys.readouterr().out

    assert main(["lora", "check", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["modules"] == len(built) and report["zero"] == []

    ratio = 0.7
    out = tmp_path / "merged"
    assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", f"{path}:{ratio}", "--out", str(out),
                 "--format", "diffusers"]) == 0
    capsys.readouterr()
    weights = merged_weights(out)
    paths = {name: p for name, (p, _) in targets(sd1).items()}
    for name, (module, layer) in built.items():
        x = probe(layer)
        module.multiplier = ratio
        with torch.no_grad():
            reference = module(x)
            ours = layer_output(layer, weights[merged_key(weights, name, paths[name])].reshape(layer.weight.shape), x)
        assert torch.allclose(ours, reference, atol=2e-5, rtol=1e-4), name


@pytest.mark.parametrize("algo", ["loha", "lokr", "dora"])
def test_merge_equals_lycoris_merged_weight_at_alpha_equal_rank(algo: str, sd1, tiny_sd1: Path, tmp_path: Path,
                                                                 capsys):
    path = tmp_path / f"{algo}.safetensors"
    built = build(sd1, algo, path, dim=4, alpha=4.0, seed=3)
    out = tmp_path / "merged"
    assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", str(path), "--out", str(out),
                 "--format", "diffusers"]) == 0
    capsys.readouterr()
    weights = merged_weights(out)
    paths = {name: p for name, (p, _) in targets(sd1).items()}
    for name, (module, layer) in built.items():
        with torch.no_grad():
            expected, _ = module.get_merged_weight(multiplier=1.0, shape=layer.weight.shape)
        got = weights[merged_key(weights, name, paths[name])].reshape(layer.weight.shape)
        assert torch.allclose(got, expected.reshape(layer.weight.shape), atol=2e-5), name


def test_lycoris_single_file_merge_and_mixed_with_lora(sd1, tiny_sd1: Path, tmp_path: Path, capsys):
    """A LoHa and a LoKr (text encoder and UNet) merged together into an original-layout single file."""
    from tests.lora_tools.conftest import model_lora

    loha, lokr = tmp_path / "loha.safetensors", tmp_path / "lokr.safetensors"
    build(sd1, "loha", loha)
    build(sd1, "lokr", lokr, seed=5)
    plain = model_lora(tiny_sd1, tmp_path / "plain.safetensors", conv=True)
    out = tmp_path / "merged.safetensors"
    capsys.readouterr()  # LyCORIS logs its warnings to stdout
    assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", f"{loha}:0.5", "--lora", f"{lokr}:0.5",
                 "--lora", f"{plain}:0.3", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "safetensors" and summary["architecture"] == "SD1"
    assert "model.diffusion_model.input_blocks.0.0.weight" in load_file(str(out))


@pytest.mark.parametrize("algo", ["loha", "lokr", "dora"])
def test_resize_and_lora_merge_refuse_lycoris_with_one_line(algo: str, sd1, tmp_path: Path, capsys):
    path = tmp_path / f"{algo}.safetensors"
    build(sd1, algo, path)
    for command in (["lora", "resize", str(path), "--rank", "2", "--out", str(tmp_path / "r.safetensors")],
                    ["lora", "merge", "--lora", str(path), "--rank", "2", "--out", str(tmp_path / "m.safetensors")]):
        assert main(command) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path) in err and "LoRA and LoCon files only" in err, err
        assert {"loha": "LoHa", "lokr": "LoKr", "dora": "DoRA"}[algo] in err
    assert not (tmp_path / "r.safetensors").exists() and not (tmp_path / "m.safetensors").exists()


def test_unsupported_lycoris_algorithm_is_named(tmp_path: Path, capsys):
    path = tmp_path / "oft.safetensors"
    save_file({"lora_unet_a_b.oft_blocks": torch.zeros(2, 4, 4), "lora_unet_a_b.alpha": torch.tensor(1.0)}, str(path))
    assert main(["lora", "info", str(path)]) == 1
    err = capsys.readouterr().err
    assert "OFT" in err and str(path) in err


def test_preview_of_lycoris_equals_the_merged_model(sd1, tiny_sd1: Path, tmp_path: Path, capsys):
    """`lora preview` patches LoHa/LoKr/DoRA weights with the merge's exact update, then restores them."""
    import numpy as np

    from prep.events import Finished
    from trainer.lora_tools.pipelines import load_pipeline
    from trainer.lora_tools.preview import render_preview

    path = tmp_path / "loha-dora.safetensors"
    build(sd1, "loha-dora", path, seed=7, std=0.6)
    merged = tmp_path / "merged"
    assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", f"{path}:0.8", "--out", str(merged),
                 "--format", "diffusers"]) == 0
    capsys.readouterr()
    pipe = load_pipeline(tiny_sd1)
    before = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    events = list(render_preview(tiny_sd1, path, "a photo", weights=[0.8], steps=1, seed=2, pipe=pipe))
    images = next(e.summary for e in events if isinstance(e, Finished))["images"]
    assert all(torch.equal(v, before[k]) for k, v in pipe.unet.state_dict().items())  # weights restored
    merged_pipe = load_pipeline(merged)
    reference = merged_pipe("a photo", num_inference_steps=1, width=64, height=64,
                            generator=torch.Generator().manual_seed(2)).images[0]
    got = np.asarray(images[1][1], dtype=np.float32)
    assert np.abs(got - np.asarray(reference, dtype=np.float32)).max() <= 1
    assert np.abs(got - np.asarray(images[0][1], dtype=np.float32)).mean() > 0.1  # and it changes the image
