"""Training speed: `lorakit train` on a tiny SD1-style model against a bare loop, same run, CPU.

Both sides use the same tiny model (tests/tiny_models.py), the same LoRA (trainer.network, dim 8,
UNet + text encoder), the same batch (2 x 64 px), AdamW and gradient clipping. The trainer runs
through `trainer.run.train` (what `lorakit train` calls) with cached latents and bucketed
data; the bare loop feeds fixed random latents and fixed token ids (no data loading, no events,
no checks). Steps/s are measured between the warm-up step and the last step, best of --repeat
alternating runs. Target: trainer >= 0.9 x the bare loop once latents are cached.

The GPU figures (full-size SD 1.5 and SDXL, peak VRAM and it/s per memory option, against a bare
loop on the same card, beside trainer/estimate.py's estimate) are benchmarks/train_gpu.py; --gpu
here runs it after the CPU table.

    python benchmarks/train.py [--steps 40] [--repeat 3] [--gpu]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_dataset(root: Path, images: int = 4) -> Path:
    from PIL import Image

    folder = root / "1_chara"
    folder.mkdir(parents=True)
    for i in range(images):
        Image.new("RGB", (64, 64), (40 * i, 120, 200 - 30 * i)).save(folder / f"img{i}.png")
        (folder / f"img{i}.txt").write_text(f"chara, 1girl, tag{i}", encoding="utf-8")
    return root


def trainer_rate(model: Path, dataset: Path, out: Path, steps: int) -> float:
    from trainer.config import TrainConfig
    from trainer.run import train

    config = TrainConfig(pretrained_model=str(model), dataset=dataset, output_dir=out, resolution="64",
                         min_bucket_reso=32, max_bucket_reso=128, bucket_reso_steps=32, network_dim=8,
                         network_alpha=4, train_batch_size=2, max_train_steps=steps, cache_latents=True,
                         validate_dataset=False)
    times: list[tuple[float, float]] = []

    def on_event(event: dict) -> None:
        if event["event"] == "step":
            times.append((time.perf_counter(), time.process_time()))

    train(config, on_event)
    return _rates(times)


def _rates(times: list[tuple[float, float]]) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second) between the warm-up step and the last."""
    steps = len(times) - 2
    return steps / (times[-1][0] - times[1][0]), steps / (times[-1][1] - times[1][1])


def bare_rate(model: Path, steps: int) -> float:
    import torch

    from trainer.config import TrainConfig
    from trainer.models import load_models
    from trainer.network import LoRANetwork, NetworkOptions

    models = load_models(TrainConfig(pretrained_model=str(model)))
    unet, te, tok = models.unet, models.text_encoders[0], models.tokenizers[0]
    for module in (unet, te, models.vae):
        module.requires_grad_(False)
        module.eval()
    torch.manual_seed(0)
    network = LoRANetwork(unet, [te], "sd1", NetworkOptions(dim=8, alpha=4))
    network.apply_to()
    params = list(network.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    latents = torch.randn(2, 4, 8, 8)
    ids = tok(["chara, 1girl, tag0", "chara, 1girl, tag1"], padding="max_length", max_length=77,
              return_tensors="pt").input_ids
    scheduler = models.noise_scheduler
    times = []
    for _ in range(steps):
        states = te(ids).last_hidden_state
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (2,))
        pred = unet(scheduler.add_noise(latents, noise, t), t, states).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append((time.perf_counter(), time.process_time()))
    network.restore()
    return _rates(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gpu", action="store_true", help="also run benchmarks/train_gpu.py (a CUDA GPU)")
    args = parser.parse_args()

    import diffusers
    import torch
    import transformers

    from tests.tiny_models import build_tiny_sd1

    torch.set_num_threads(1)  # CPU-time figures comparable between the two sides
    diffusers.utils.logging.set_verbosity_error()
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_sd1(root / "model")
        dataset = make_dataset(root / "dataset")
        bare, ours = [], []
        for i in range(args.repeat):
            bare.append(bare_rate(model, args.steps))
            ours.append(trainer_rate(model, dataset, root / f"out{i}", args.steps))
    bare_wall, bare_cpu = max(r[0] for r in bare), max(r[1] for r in bare)
    ours_wall, ours_cpu = max(r[0] for r in ours), max(r[1] for r in ours)
    print(f"CPU, {torch.get_num_threads()} thread, tiny SD1 model, 64 px, batch 2, LoRA dim 8 (UNet + text "
          f"encoder), AdamW, {args.steps} steps, best of {args.repeat} alternating runs\n")
    print("| case | steps/s (wall) | steps per CPU-second | ratio (CPU) |")
    print("|---|---:|---:|---:|")
    print(f"| bare loop (random latents, fixed tokens) | {bare_wall:.2f} | {bare_cpu:.2f} | 1.00 |")
    print(f"| lorakit train (cached latents, buckets, captions, events) | {ours_wall:.2f} | {ours_cpu:.2f} | "
          f"{ours_cpu / bare_cpu:.2f} |")
    ratio = ours_cpu / bare_cpu
    print(f"\ntarget: >= 0.90 of the bare loop: {'met' if ratio >= 0.9 else 'NOT met'} ({ratio:.2f}; CPU time is "
          "the figure compared because the shared machine's wall-clock is noisy)")
    if args.gpu and torch.cuda.is_available():
        print()
        import subprocess

        subprocess.run([sys.executable, str(Path(__file__).with_name("train_gpu.py"))], check=False)
    else:
        print("GPU figures (benchmarks/train_gpu.py: SD 1.5 and SDXL, it/s and peak VRAM): not measured here "
              "(no CUDA GPU; run with --gpu on one)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
