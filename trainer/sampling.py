"""Sample previews from a kohya-syntax prompt file, saved as PNGs under `output_dir/sample/`.

One prompt per line (`#` starts a comment line): the prompt text, then options `--n` negative
prompt, `--w`/`--h` size (rounded down to a multiple of 8), `--s` steps, `--l` CFG scale, `--d` seed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from trainer.errors import TrainError

_OPTION = re.compile(r"\s--(n|w|h|s|l|d)\s")


@dataclass
class SamplePrompt:
    prompt: str
    negative: str = ""
    width: int = 512
    height: int = 512
    steps: int = 30
    scale: float = 7.5
    seed: int | None = None


def parse_prompt_line(line: str) -> SamplePrompt:
    """`1girl, smile --n lowres --w 768 --h 512 --s 20 --l 6 --d 42` -> SamplePrompt."""
    text = " " + line.strip() + " "
    pieces = _OPTION.split(text)
    sample = SamplePrompt(pieces[0].strip())
    for key, value in zip(pieces[1::2], pieces[2::2], strict=False):
        value = value.strip()
        try:
            if key == "n":
                sample.negative = value
            elif key == "w":
                sample.width = max(int(value) // 8 * 8, 8)
            elif key == "h":
                sample.height = max(int(value) // 8 * 8, 8)
            elif key == "s":
                sample.steps = max(int(value), 1)
            elif key == "l":
                sample.scale = float(value)
            elif key == "d":
                sample.seed = int(value)
        except ValueError:
            raise TrainError(f"sample prompt {line.strip()!r}: --{key} {value!r} is not a number") from None
    return sample


def read_prompt_file(path: Path) -> list[SamplePrompt]:
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TrainError(f"{path}: cannot read sample prompts ({exc.strerror})") from None
    return [parse_prompt_line(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def sample_file_name(output_name: str, *, step: int, epoch: int | None, index: int, seed: int | None) -> str:
    """kohya's name: `<name>_<e000001|000100>_<i>_<time>[_<seed>].png`."""
    number = f"e{epoch:06d}" if epoch is not None else f"{step:06d}"
    stamp = time.strftime("%Y%m%d%H%M%S", time.localtime())
    seed_part = f"_{seed}" if seed is not None else ""
    return f"{output_name}_{number}_{index:02d}_{stamp}{seed_part}.png"


def prompt_embeddings(models, sample: SamplePrompt, *, max_token_length: int, clip_skip: int,
                      device) -> dict:
    """The pipeline's embedding arguments for one prompt, encoded exactly as training encodes captions
    (75-token chunks up to max_token_length, clip_skip on SD 1.x/2.x)."""
    from trainer.text_encoding import encode_sd, encode_sdxl

    texts = [sample.prompt, sample.negative]
    if models.is_sdxl:
        states, pooled = encode_sdxl(models.text_encoders, models.tokenizers, texts, max_token_length, device)
        return {"prompt_embeds": states[:1], "negative_prompt_embeds": states[1:],
                "pooled_prompt_embeds": pooled[:1], "negative_pooled_prompt_embeds": pooled[1:]}
    states = encode_sd(models.text_encoders[0], models.tokenizers[0], texts, max_token_length, clip_skip, device)
    return {"prompt_embeds": states[:1], "negative_prompt_embeds": states[1:]}


def generate_samples(models, prompts: list[SamplePrompt], out_dir: Path, output_name: str, *, step: int,
                     epoch: int | None, device, dtype, max_token_length: int = 75,
                     clip_skip: int = 1) -> list[Path]:
    """Render every prompt with the current (LoRA-patched) model; returns the PNG paths."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    extra = {"rescale_betas_zero_snr": True, "timestep_spacing": "trailing"} if models.zero_terminal_snr else {}
    scheduler = DDIMScheduler.from_config(models.sample_scheduler_config or {}, clip_sample=False,
                                          prediction_type="v_prediction" if models.v_parameterization else "epsilon",
                                          **extra)
    common = {"vae": models.vae, "unet": models.unet, "scheduler": scheduler}
    if models.is_sdxl:
        pipe = StableDiffusionXLPipeline(text_encoder=models.text_encoders[0], text_encoder_2=models.text_encoders[1],
                                         tokenizer=models.tokenizers[0], tokenizer_2=models.tokenizers[1], **common)
    else:
        pipe = StableDiffusionPipeline(text_encoder=models.text_encoders[0], tokenizer=models.tokenizers[0],
                                       safety_checker=None, feature_extractor=None, requires_safety_checker=False,
                                       **common)
    pipe.set_progress_bar_config(disable=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    rng_state = torch.get_rng_state()
    try:
        for index, sample in enumerate(prompts):
            generator = torch.Generator("cpu").manual_seed(sample.seed if sample.seed is not None else step + index)
            with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                embeds = prompt_embeddings(models, sample, max_token_length=max_token_length, clip_skip=clip_skip,
                                           device=device)
                image = pipe(width=sample.width, height=sample.height, num_inference_steps=sample.steps,
                             guidance_scale=sample.scale, generator=generator, **embeds).images[0]
            path = out_dir / sample_file_name(output_name, step=step, epoch=epoch, index=index, seed=sample.seed)
            image.save(path)
            paths.append(path)
    finally:
        torch.set_rng_state(rng_state)
    return paths
