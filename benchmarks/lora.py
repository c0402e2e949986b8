"""Merging a dim-32 LoRA into a full-size SD1.5-architecture UNet (random weights, CPU).

Builds the SD 1.5 UNet from its config (no download) with random fp16 weights as a diffusers
folder (unet/ only, ~1.6 GiB), and a kohya LoRA of rank 32 on all 192 transformer modules, then
times, each in its own process (peak RSS from wait4), best of --repeat runs:
  * baseline: the bare per-module loop a script would write: safetensors load_file, for every
    module W = (W.float() + (alpha/rank)·up@down).half(), save_file;
  * `lorakit lora merge --base DIR --lora L --out OUT.safetensors` (single file, original layout);
  * `lorakit lora merge ... --format diffusers` (a diffusers folder).
Checks that both lorakit outputs hold the baseline's weights. Targets: time <= 1.3x the baseline,
peak RSS <= the checkpoint's size + 20%. Prints a Markdown table.

    python benchmarks/lora.py [--repeat 2] [--rank 32]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SD15_UNET_CONFIG = {
    "_class_name": "UNet2DConditionModel",
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}

BARE_LOOP = r"""
import json, sys, torch
from safetensors.torch import load_file, save_file
unet_file, lora_file, names_file, out = sys.argv[1:5]
names = json.load(open(names_file))
sd = load_file(unet_file)
lora = load_file(lora_file)
for name, key in names.items():
    down = lora[name + ".lora_down.weight"].float()
    up = lora[name + ".lora_up.weight"].float()
    scale = float(lora[name + ".alpha"]) / down.shape[0]
    w = sd[key]
    delta = (up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1)).reshape(w.shape)
    sd[key] = (w.float() + scale * delta).to(w.dtype)
save_file(sd, out)
"""


def build(folder: Path, rank: int) -> tuple[Path, dict[str, str]]:
    """The random SD1.5 UNet folder and a rank-`rank` LoRA; returns (LoRA path, kohya name -> UNet key)."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    from trainer.lora_keys import unet_lora_targets
    from trainer.lora_tools.safetensors_stream import PlannedTensor, iter_write_safetensors

    config = {k: v for k, v in SD15_UNET_CONFIG.items() if not k.startswith("_")}
    with init_empty_weights():
        unet = UNet2DConditionModel(**config)
    g = torch.Generator().manual_seed(0)
    shapes = {k: tuple(v.shape) for k, v in unet.state_dict().items()}
    plan = [PlannedTensor(k, s, torch.float16, (lambda s=s: (torch.randn(s, generator=g) * 0.02).half()))
            for k, s in shapes.items()]
    (folder / "unet").mkdir(parents=True)
    for _ in iter_write_safetensors(folder / "unet" / "diffusion_pytorch_model.safetensors", plan, {"format": "pt"}):
        pass
    (folder / "unet" / "config.json").write_text(json.dumps(SD15_UNET_CONFIG))
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                         "unet": ["diffusers", "UNet2DConditionModel"]}))
    tensors, names = {}, {}
    for name, (path, module) in unet_lora_targets(unet, "sd1").items():
        shape = tuple(module.weight.shape)
        extra = shape[2:]
        tensors[f"{name}.lora_down.weight"] = (torch.randn(rank, shape[1], *extra, generator=g) * 0.05).half()
        tensors[f"{name}.lora_up.weight"] = (torch.randn(shape[0], rank, *[1] * len(extra), generator=g) * 0.05).half()
        tensors[f"{name}.alpha"] = torch.tensor(16.0)
        names[name] = f"{path}.weight"
    lora = folder.parent / "lora.safetensors"
    save_file(tensors, str(lora), {"ss_network_dim": str(rank), "ss_network_alpha": "16",
                                   "ss_base_model_version": "sd_v1"})
    return lora, names


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{err}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--rank", type=int, default=32)
    args = parser.parse_args()
    import torch
    from safetensors.torch import load_file

    from trainer.lora_tools import ldm_keys

    tmp = Path(tempfile.mkdtemp(prefix="lorakit-bench-lora-"))
    try:
        base = tmp / "sd15"
        lora, names = build(base, args.rank)
        unet_file = base / "unet" / "diffusion_pytorch_model.safetensors"
        size_mib = unet_file.stat().st_size / 2**20
        (tmp / "names.json").write_text(json.dumps(names))
        py = sys.executable
        runs = {
            "bare loop (load_file, W += s·up@down, save_file)":
                [py, "-c", BARE_LOOP, str(unet_file), str(lora), str(tmp / "names.json"), str(tmp / "bare.safetensors")],
            "lorakit lora merge -> single file (LDM keys)":
                [py, "-m", "tui", "lora", "merge", "--base", str(base), "--lora", str(lora),
                 "--out", str(tmp / "ours.safetensors")],
            "lorakit lora merge -> diffusers folder":
                [py, "-m", "tui", "lora", "merge", "--base", str(base), "--lora", str(lora),
                 "--out", str(tmp / "ours_diffusers"), "--format", "diffusers"],
        }
        best: dict[str, tuple[float, float]] = {}
        for _ in range(args.repeat):
            for label, cmd in runs.items():
                shutil.rmtree(tmp / "ours_diffusers", ignore_errors=True)
                t, rss = timed(cmd)
                old = best.get(label)
                best[label] = (min(t, old[0]) if old else t, max(rss, old[1]) if old else rss)
        bare = load_file(str(tmp / "bare.safetensors"))
        ours = load_file(str(tmp / "ours_diffusers" / "unet" / "diffusion_pytorch_model.safetensors"))
        single = load_file(str(tmp / "ours.safetensors"))
        worst = max(float((bare[k].float() - ours[k].float()).abs().max()) for k in bare)
        layers = SD15_UNET_CONFIG["layers_per_block"]
        up_attn = {i: "CrossAttn" in t for i, t in enumerate(SD15_UNET_CONFIG["up_block_types"])}
        worst_single = max(float((bare[k].float() - single[ldm_keys.UNET_PREFIX + ldm_keys.unet_to_ldm(
            k, layers, up_attn)].float()).abs().max()) for k in bare)
        base_time = best["bare loop (load_file, W += s·up@down, save_file)"][0]
        print(f"SD1.5-architecture UNet, random fp16 weights: checkpoint {size_mib:.0f} MiB, LoRA rank "
              f"{args.rank} on {len(names)} modules; best of {args.repeat}; torch threads "
              f"{torch.get_num_threads()}\n")
        print("| run | time (s) | vs bare loop | peak RSS (MiB) | peak RSS / checkpoint |")
        print("|---|---:|---:|---:|---:|")
        for label, (t, rss) in best.items():
            print(f"| {label} | {t:.2f} | {t / base_time:.2f}x | {rss:.0f} | {rss / size_mib:.2f} |")
        print(f"\nmax |lorakit - bare loop| over all weights: diffusers {worst:.2e}, single file {worst_single:.2e}")
        ok_time = all(t <= 1.3 * base_time for label, (t, _) in best.items() if label.startswith("lorakit"))
        ok_mem = all(rss <= 1.2 * size_mib for label, (_, rss) in best.items() if label.startswith("lorakit"))
        print(f"targets: time <= 1.3x bare loop: {'met' if ok_time else 'NOT met'}; "
              f"peak RSS <= checkpoint + 20%: {'met' if ok_mem else 'NOT met'}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
