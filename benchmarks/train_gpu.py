"""Issue 16's GPU figures: peak VRAM and it/s of `lorakit train` on full-size random-weight models.

SD 1.5 (UNet + CLIP-L, 512 px, dim 32, batch 1, UNet and text encoder trained) and SDXL (UNet + both
text encoders, 1024 px, dim 16, batch 1, U-Net only), built from configs (no download), with and
without gradient checkpointing, fp16 vs bf16, AdamW vs AdamW8bit, cached latents and text outputs;
and a bare diffusers-style loop (same LoRA, fixed latents and conditioning, no data, no events) on
the same card, to check lorakit's step time is within 10% of it. Each case runs in its own process
(accelerate's state and the peak-memory counters start clean). Targets: SD 1.5 under 4 GiB and
SDXL under 10 GiB with the memory options on.

    python benchmarks/train_gpu.py [--only sd15|sdxl] [--steps 12] [--json OUT]   # on a CUDA machine
    python benchmarks/train_gpu.py --tiny        # the same script on the tiny models, CPU (a smoke run)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MEMORY_ON = {"gradient_checkpointing": True, "optimizer": "AdamW8bit", "cache_latents": True,
             "cache_text_encoder_outputs": True, "train_unet_only": True}
SD15_CASES = {
    "fp16, AdamW": {"mixed_precision": "fp16"},
    "bf16, AdamW": {"mixed_precision": "bf16"},
    "bf16, AdamW, cached latents": {"mixed_precision": "bf16", "cache_latents": True},
    "bf16, gradient checkpointing": {"mixed_precision": "bf16", "gradient_checkpointing": True},
    "bf16, AdamW8bit": {"mixed_precision": "bf16", "optimizer": "AdamW8bit"},
    "fp16, memory options on (GC, AdamW8bit, cached latents + text, U-Net only)": {"mixed_precision": "fp16",
                                                                                  **MEMORY_ON},
    "bf16, memory options on (GC, AdamW8bit, cached latents + text, U-Net only)": {"mixed_precision": "bf16",
                                                                                  **MEMORY_ON},
}
SDXL_CASES = {
    "fp16, AdamW, cached latents + text": {"mixed_precision": "fp16", "cache_latents": True,
                                          "cache_text_encoder_outputs": True},
    "bf16, AdamW, cached latents + text": {"mixed_precision": "bf16", "cache_latents": True,
                                          "cache_text_encoder_outputs": True},
    "bf16, AdamW, no caches": {"mixed_precision": "bf16"},
    "bf16, gradient checkpointing, cached latents + text": {"mixed_precision": "bf16", "gradient_checkpointing": True,
                                                           "cache_latents": True, "cache_text_encoder_outputs": True},
    "fp16, memory options on (GC, AdamW8bit, cached latents + text)": {"mixed_precision": "fp16", **MEMORY_ON},
    "bf16, memory options on (GC, AdamW8bit, cached latents + text)": {"mixed_precision": "bf16", **MEMORY_ON},
}
# The lorakit case each bare loop does the same work as (fixed latents; SDXL: fixed text conditioning).
BARE_TWIN = {"sd15": "bf16, AdamW, cached latents", "sdxl": "bf16, AdamW, cached latents + text"}
FAMILY = {"sd15": {"resolution": 512, "dim": 32, "unet_only": False},
          "sdxl": {"resolution": 1024, "dim": 16, "unet_only": True}}


def build_sd15(path: Path) -> Path:
    """A full-size SD 1.5-architecture pipeline folder with random fp16 weights (no download)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from trainer.tiny_model import SD_BETAS, tiny_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8,
                                block_out_channels=(320, 640, 1280, 1280), layers_per_block=2)
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                        num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                                        projection_dim=768, hidden_act="quick_gelu"))
    pipe = StableDiffusionPipeline(vae=_vae(512), text_encoder=text, tokenizer=tiny_tokenizer(), unet=unet,
                                   scheduler=DDIMScheduler(**SD_BETAS, clip_sample=False, set_alpha_to_one=False,
                                                           steps_offset=1), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    pipe.to(torch.float16).save_pretrained(path, safe_serialization=True)
    return path


def _vae(size: int, scaling: float = 0.18215):
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                         down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                         sample_size=size, scaling_factor=scaling)


def build_sdxl(path: Path) -> Path:
    """A full-size SDXL-architecture pipeline folder (UNet, CLIP-L, OpenCLIP bigG) with random fp16 weights."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from trainer.tiny_model import SD_BETAS, tiny_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816)
    te1 = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                       num_hidden_layers=12, num_attention_heads=12, max_position_embeddings=77,
                                       hidden_act="quick_gelu"))
    te2 = CLIPTextModelWithProjection(CLIPTextConfig(vocab_size=49408, hidden_size=1280, intermediate_size=5120,
                                                     num_hidden_layers=32, num_attention_heads=20,
                                                     max_position_embeddings=77, projection_dim=1280,
                                                     hidden_act="gelu"))
    pipe = StableDiffusionXLPipeline(vae=_vae(1024, 0.13025), text_encoder=te1, text_encoder_2=te2,
                                     tokenizer=tiny_tokenizer(), tokenizer_2=tiny_tokenizer(), unet=unet,
                                     scheduler=EulerDiscreteScheduler(**SD_BETAS, steps_offset=1,
                                                                      timestep_spacing="leading"),
                                     force_zeros_for_empty_prompt=True)
    pipe.to(torch.float16).save_pretrained(path, safe_serialization=True)
    return path


def make_dataset(root: Path, size: int, images: int = 4) -> Path:
    from PIL import Image

    folder = root / "1_chara"
    folder.mkdir(parents=True)
    for i in range(images):
        Image.new("RGB", (size, size), (50 * i, 110, 190 - 30 * i)).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(f"chara, 1girl, solo, tag{i}", encoding="utf-8")
    return root


def _case_values(family: str, overrides: dict, steps: int, tiny: bool) -> dict:
    values = {"network_dim": FAMILY[family]["dim"], "network_alpha": FAMILY[family]["dim"] / 2,
              "resolution": str(64 if tiny else FAMILY[family]["resolution"]), "train_batch_size": 1,
              "max_train_steps": steps, "validate_dataset": False, "learning_rate": 1e-4,
              "train_unet_only": FAMILY[family]["unet_only"], **overrides}
    if tiny:  # CPU: full precision and the plain optimizer; everything else as on the GPU
        values.update(mixed_precision="no", min_bucket_reso=32, bucket_reso_steps=32)
        if values.get("optimizer") == "AdamW8bit":
            values["optimizer"] = "AdamW"
    return values


def _peak() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"peak_gib": None, "reserved_gib": None}
    return {"peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            "reserved_gib": torch.cuda.max_memory_reserved() / 2**30}


def _rate(times: list[float]) -> float:
    """Steps per second after the first two (warm-up) steps."""
    return (len(times) - 3) / (times[-1] - times[2])


def run_lorakit(family: str, model: Path, dataset: Path, out: Path, overrides: dict, steps: int, tiny: bool) -> dict:
    from trainer.cli import quiet_libraries
    from trainer.config import TrainConfig
    from trainer.run import train

    quiet_libraries()
    config = TrainConfig(pretrained_model=str(model), dataset=dataset, output_dir=out,
                         **_case_values(family, overrides, steps, tiny))
    # trainer/estimate.py's figure beside the measured peak: the ratio calibrates its (uncalibrated) constants.
    from trainer.estimate import CUDA_CONTEXT_GB, estimate_vram

    estimate = estimate_vram(config).total_gb - CUDA_CONTEXT_GB  # allocated memory holds no CUDA context
    times: list[float] = []

    def on_event(event: dict) -> None:
        if event["event"] == "step":
            import torch

            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    train(config, on_event)
    return {"it_s": _rate(times), **_peak(), "estimate_gib": estimate}


def run_bare(family: str, model: Path, steps: int, tiny: bool) -> dict:
    """The same LoRA and step on fixed latents (and for SDXL fixed text conditioning), bf16 autocast."""
    import torch

    from trainer.config import TrainConfig
    from trainer.models import load_models
    from trainer.network import LoRANetwork, NetworkOptions

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    models = load_models(TrainConfig(pretrained_model=str(model)))
    unet, encoders = models.unet, models.text_encoders
    for module in (unet, *encoders):
        module.requires_grad_(False).eval().to(device, dtype)
    sdxl = family == "sdxl"
    torch.manual_seed(0)
    dim = FAMILY[family]["dim"]
    network = LoRANetwork(unet, encoders, models.model_type,
                          NetworkOptions(dim=dim, alpha=dim / 2, train_text_encoder=not sdxl))
    network.apply_to()
    network.to(device, torch.float32)
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    side = (64 if tiny else FAMILY[family]["resolution"]) // 8
    latents = torch.randn(1, 4, side, side, device=device)
    scheduler = models.noise_scheduler
    alphas = scheduler.alphas_cumprod.to(device)
    if sdxl:
        hidden = sum(e.config.hidden_size for e in encoders)
        states = torch.randn(1, 77, hidden, device=device, dtype=dtype)
        pooled = torch.randn(1, encoders[1].config.projection_dim, device=device, dtype=dtype)
        size = float(side * 8)
        time_ids = torch.tensor([[size, size, 0.0, 0.0, size, size]], device=device, dtype=dtype)
    else:
        ids = models.tokenizers[0](["chara, 1girl, solo, tag0"], padding="max_length", max_length=77,
                                   return_tensors="pt").input_ids.to(device)
    times = []
    for _ in range(steps):
        with torch.autocast(device.type, dtype=dtype, enabled=cuda):
            if not sdxl:
                states = encoders[0](ids).last_hidden_state
            noise = torch.randn_like(latents)
            t = torch.randint(0, 1000, (1,), device=device)
            a = alphas[t].view(-1, 1, 1, 1)
            noisy = a.sqrt() * latents + (1 - a).sqrt() * noise
            extra = {"added_cond_kwargs": {"text_embeds": pooled, "time_ids": time_ids}} if sdxl else {}
            pred = unet(noisy, t, states, **extra).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter())
    return {"it_s": _rate(times), **_peak()}


def _child(args: argparse.Namespace) -> int:
    """One case in this process; prints its figures as one JSON line."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if args.case == "bare":
        result = run_bare(args.family, Path(args.model), args.steps, args.tiny)
    else:
        cases = SD15_CASES if args.family == "sd15" else SDXL_CASES
        result = run_lorakit(args.family, Path(args.model), Path(args.dataset), Path(args.out), cases[args.case],
                             args.steps, args.tiny)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _run_child(family: str, case: str, model: Path, dataset: Path, out: Path, steps: int, tiny: bool) -> dict:
    command = [sys.executable, __file__, "--child", "--family", family, "--case", case, "--model", str(model),
               "--dataset", str(dataset), "--out", str(out), "--steps", str(steps)] + (["--tiny"] if tiny else [])
    proc = subprocess.run(command, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": tail[:200]}


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("sd15", "sdxl"), help="one model family")
    parser.add_argument("--steps", type=int, default=12, help="steps per case (the first two are warm-up)")
    parser.add_argument("--tiny", action="store_true", help="the tiny test models on CPU (checks the script runs)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    for name in ("family", "case", "model", "dataset", "out"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args)
    import torch

    cuda = torch.cuda.is_available()
    if not cuda and not args.tiny:
        print("no CUDA GPU here: run this on a GPU machine, or with --tiny for a CPU smoke run")
        return 1
    card = torch.cuda.get_device_name(0) if cuda else "CPU (tiny models, smoke run: figures mean nothing)"
    import diffusers
    import transformers

    print(f"card: {card}; torch {torch.__version__}, diffusers {diffusers.__version__}, "
          f"transformers {transformers.__version__}; {args.steps} steps per case, first two not timed\n")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for family in [args.only] if args.only else ["sd15", "sdxl"]:
            if args.tiny:
                from tests.tiny_models import build_tiny_sd1, build_tiny_sdxl

                model = (build_tiny_sd1 if family == "sd15" else build_tiny_sdxl)(root / family)
            else:
                model = (build_sd15 if family == "sd15" else build_sdxl)(root / family)
            dataset = make_dataset(root / f"{family}-data", 64 if args.tiny else FAMILY[family]["resolution"])
            spec = FAMILY[family]
            print(f"| {family.upper()} ({spec['resolution']} px, dim {spec['dim']}, batch 1"
                  f"{', U-Net only' if spec['unet_only'] else ''}) | it/s | peak VRAM (GiB) | reserved (GiB) | "
                  "estimate (GiB) | estimate / peak |")
            print("|---|---:|---:|---:|---:|---:|")
            cases = SD15_CASES if family == "sd15" else SDXL_CASES
            for case in [*cases, "bare"]:
                started = time.perf_counter()
                result = _run_child(family, case, model, dataset, root / "out", args.steps, args.tiny)
                result["wall_s"] = round(time.perf_counter() - started, 1)
                results[f"{family}: {case}"] = result
                label = f"bare loop (same LoRA and step as '{BARE_TWIN[family]}')" if case == "bare" else case
                if "error" in result:
                    print(f"| {label} | failed: {result['error']} | | | | |")
                else:
                    estimate, peak = result.get("estimate_gib"), result["peak_gib"]
                    ratio = estimate / peak if estimate is not None and peak else None
                    print(f"| {label} | {_fmt(result['it_s'], '.2f')} | {_fmt(peak, '.2f')} | "
                          f"{_fmt(result['reserved_gib'], '.2f')} | {_fmt(estimate, '.2f')} | {_fmt(ratio, '.2f')} |",
                          flush=True)
            bare, twin = results[f"{family}: bare"], results[f"{family}: {BARE_TWIN[family]}"]
            if "it_s" in bare and "it_s" in twin:
                ratio = bare["it_s"] / twin["it_s"]
                print(f"\nlorakit step time / bare loop: {ratio:.2f} (target <= 1.10)\n")
    if args.json:
        args.json.write_text(json.dumps({"card": card, "steps": args.steps, "results": results}, indent=1) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
