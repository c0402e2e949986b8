"""The alpha rule on every tool (issue 15 #1): a file's alpha is what consumers apply.

scale = alpha/rank; alpha 0 -> no update; no alpha -> alpha = rank (scale 1). The expected updates are
computed here from the raw tensors (safetensors' own loader), never through lorakit's read model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.lora_tools.conftest import model_lora, sd1_modules, write_lora
from tui.cli import main

RANK = 4
CASES = {"alpha 2": 2.0, "alpha 0": 0.0, "no alpha": None}
SCALES = {"alpha 2": 0.5, "alpha 0": 0.0, "no alpha": 1.0}


def raw_delta(path: Path, name: str) -> torch.Tensor:
    """scale·up@down from the file's raw tensors, by the rule (independent of lorakit's reader)."""
    t = load_file(str(path))
    down, up = t[f"{name}.lora_down.weight"].double(), t[f"{name}.lora_up.weight"].double()
    rank = down.shape[0]
    alpha = float(t[f"{name}.alpha"]) if f"{name}.alpha" in t else float(rank)
    return alpha / rank * (up.reshape(up.shape[0], -1) @ down.reshape(rank, -1))


def case_file(tmp_path: Path, case: str) -> Path:
    return write_lora(tmp_path / f"{case.replace(' ', '_')}.safetensors", sd1_modules(rank=RANK, alpha=CASES[case]),
                      {"ss_base_model_version": "sd_v1"})


def expected(case: str, name: str) -> torch.Tensor:
    down, up, _ = sd1_modules(rank=RANK, alpha=CASES[case])[name]
    return SCALES[case] * (up.double() @ down.double())


@pytest.mark.parametrize("case", CASES)
def test_info_reports_the_applied_alpha(case: str, tmp_path: Path, capsys):
    path = case_file(tmp_path, case)
    assert main(["lora", "info", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    n = len(sd1_modules())
    assert info["alphas"] == {{"alpha 2": "2", "alpha 0": "0", "no alpha": "4"}[case]: n}
    assert len(info["zero_alpha_modules"]) == (n if case == "alpha 0" else 0)
    assert info["missing_alpha_modules"] == (n if case == "no alpha" else 0)
    assert main(["lora", "info", str(path)]) == 0
    text = capsys.readouterr().out
    assert ("apply no update" in text) == (case == "alpha 0")
    assert ("applied at alpha = rank" in text) == (case == "no alpha")


@pytest.mark.parametrize("case", CASES)
def test_check_applies_the_rule(case: str, tmp_path: Path, capsys):
    path = case_file(tmp_path, case)
    code = main(["lora", "check", str(path), "--json"])
    report = json.loads(capsys.readouterr().out)
    # an alpha-0 file does nothing in A1111/ComfyUI: a problem, named as such (not "untrained")
    assert code == (1 if case == "alpha 0" else 0)
    assert report["zero"] == []
    assert len(report["zero_alpha"]) == (len(sd1_modules()) if case == "alpha 0" else 0)
    for s in report["stats"]:
        assert s["update_norm"] == pytest.approx(float(expected(case, s["name"]).norm()), rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_lora_merge_and_resize_keep_the_applied_update(case: str, tmp_path: Path, capsys):
    path = case_file(tmp_path, case)
    merged, resized = tmp_path / "m.safetensors", tmp_path / "r.safetensors"
    assert main(["lora", "merge", "--lora", str(path), "--rank", str(RANK), "--out", str(merged)]) == 0
    assert main(["lora", "resize", str(path), "--rank", str(RANK), "--out", str(resized)]) == 0
    capsys.readouterr()
    for out in (merged, resized):
        raw = load_file(str(out))
        for name in sd1_modules():
            assert torch.allclose(raw_delta(out, name), expected(case, name), atol=1e-6), (out.name, name)
            assert f"{name}.alpha" in raw  # tools always write alpha
    # resize keeps the strength: new alpha = scale * new rank (0 stays 0, missing becomes the rank)
    raw = load_file(str(resized))
    assert {float(v) for k, v in raw.items() if k.endswith(".alpha")} == {SCALES[case] * RANK}


@pytest.mark.parametrize("case", CASES)
def test_merge_into_checkpoint_applies_the_rule(case: str, tiny_sd1: Path, tmp_path: Path, capsys):
    """A file with the case's alpha merges exactly like the same update written with alpha = rank."""
    path = model_lora(tiny_sd1, tmp_path / "case.safetensors", rank=RANK, alpha=CASES[case], seed=4)
    raw = load_file(str(path))
    same = {}
    for key, value in raw.items():
        if key.endswith(".lora_up.weight"):
            same[key] = value * SCALES[case]
        elif not key.endswith(".alpha"):
            same[key] = value
    for key in raw:
        if key.endswith(".lora_down.weight"):
            same[key.replace(".lora_down.weight", ".alpha")] = torch.tensor(float(RANK))
    from safetensors.torch import save_file

    reference = tmp_path / "reference.safetensors"
    save_file(same, str(reference), metadata={"ss_base_model_version": "sd_v1"})
    outs = {}
    for label, lora in (("case", path), ("reference", reference)):
        outs[label] = tmp_path / f"merged-{label}"
        assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", f"{lora}:0.7", "--out", str(outs[label]),
                     "--format", "diffusers"]) == 0
    capsys.readouterr()
    unet = "unet/diffusion_pytorch_model.safetensors"
    got, want, base = (load_file(str(p / unet)) for p in (outs["case"], outs["reference"], tiny_sd1))
    for key in base:
        assert torch.allclose(got[key], want[key], atol=1e-6), key
    changed = sum(not torch.equal(got[k], base[k]) for k in base)
    assert (changed == 0) == (case == "alpha 0")


def test_extract_writes_alpha_equal_to_rank(tiny_sd1: Path, tmp_path: Path, capsys):
    planted = model_lora(tiny_sd1, tmp_path / "planted.safetensors", rank=2, alpha=None, scale=0.3)
    tuned = tmp_path / "tuned.safetensors"
    base = tmp_path / "base.safetensors"
    assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", str(planted), "--out", str(tuned)]) == 0
    assert main(["lora", "merge", "--base", str(tiny_sd1), "--lora", f"{planted}:0", "--out", str(base)]) == 0
    out = tmp_path / "x.safetensors"
    assert main(["lora", "extract", "--base", str(base), "--tuned", str(tuned), "--rank", "2",
                 "--clamp-quantile", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    raw = load_file(str(out))
    downs = [k for k in raw if k.endswith(".lora_down.weight")]
    assert downs
    for key in downs:
        name = key[: -len(".lora_down.weight")]
        assert float(raw[f"{name}.alpha"]) == raw[key].shape[0]
        # the planted file had no alpha (scale 1): the extracted update is the planted one
        assert torch.allclose(raw_delta(out, name), raw_delta(planted, name), atol=2e-5), name


@pytest.fixture(scope="module")
def sd1_pipe(tiny_sd1: Path):
    from trainer.lora_tools.pipelines import load_pipeline

    return load_pipeline(tiny_sd1)


def render(tiny_sd1: Path, pipe, lora: Path) -> list[np.ndarray]:
    from prep.events import Finished
    from trainer.lora_tools.preview import render_preview

    events = list(render_preview(tiny_sd1, lora, "a photo", weights=[1.0], steps=1, seed=5, pipe=pipe))
    summary = next(e.summary for e in events if isinstance(e, Finished))
    return [np.asarray(img, dtype=np.float32) for _, img in summary["images"]]


def test_preview_applies_the_rule(tiny_sd1: Path, sd1_pipe, tmp_path: Path):
    files = {case: model_lora(tiny_sd1, tmp_path / f"{i}.safetensors", rank=RANK, alpha=CASES[case], scale=0.5)
             for i, case in enumerate(CASES)}
    same_as_rank = model_lora(tiny_sd1, tmp_path / "rank.safetensors", rank=RANK, alpha=float(RANK), scale=0.5)
    without, zero = render(tiny_sd1, sd1_pipe, files["alpha 0"])
    assert np.abs(zero - without).max() <= 1  # alpha 0: no update
    _, missing = render(tiny_sd1, sd1_pipe, files["no alpha"])
    _, at_rank = render(tiny_sd1, sd1_pipe, same_as_rank)
    assert np.abs(missing - at_rank).max() <= 1  # no alpha: alpha = rank
    _, half = render(tiny_sd1, sd1_pipe, files["alpha 2"])
    assert np.abs(half - without).mean() > 0.5 and np.abs(half - at_rank).mean() > 0.5


def test_network_weights_apply_the_rule(tiny_sd1: Path, tmp_path: Path):
    """The trainer continues from what the file applies: no alpha -> rank; alpha 0 is refused."""
    import diffusers

    from trainer.errors import LoRAFileError
    from trainer.lora_modules import read_network_weights
    from trainer.network import LoRANetwork, NetworkOptions

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(tiny_sd1)
    network = LoRANetwork(pipe.unet, [pipe.text_encoder], "sd1", NetworkOptions(dim=RANK, alpha=1.0))
    missing = model_lora(tiny_sd1, tmp_path / "missing.safetensors", rank=RANK, alpha=None)
    network.load_weights(read_network_weights(missing), str(missing))
    assert {lora.scale for lora in network.loras()} == {1.0}  # what samples and training use
    assert {float(v) for k, v in network.kohya_state_dict().items() if k.endswith(".alpha")} == {float(RANK)}
    zero = model_lora(tiny_sd1, tmp_path / "zero.safetensors", rank=RANK, alpha=0.0)
    with pytest.raises(LoRAFileError, match="alpha is 0"):
        read_network_weights(zero)


def test_trainer_never_writes_alpha_zero(tiny_sd1: Path, tmp_path: Path):
    from tests.trainer.conftest import make_train_dataset, run_training, tiny_config

    dataset = make_train_dataset(tmp_path / "ds", images=1)
    path, _ = run_training(tiny_config(tiny_sd1, dataset, tmp_path / "out", network_alpha=0.0, max_train_steps=1,
                                       save_precision="fp32"))
    raw = load_file(str(path))
    alphas = {float(v) for k, v in raw.items() if k.endswith(".alpha")}
    assert alphas == {float(RANK)}  # kohya: asked for alpha 0, it writes the rank
