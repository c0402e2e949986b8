"""`lorakit lora preview`: the same prompt and seed without the LoRA and at several weights, in one grid PNG."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prep.events import Advanced, Finished, Started
from prep.fsio import atomic_write_bytes

from .errors import LoraToolError
from .io import LoraFile, detect_architecture, load_lora
from .pipelines import default_size, load_pipeline

LABEL_HEIGHT = 18


def preview_weights(weight: float, weights: list[float] | None = None) -> list[float]:
    """Without the LoRA first, then the asked weights (default: half and full)."""
    chosen = list(weights) if weights else [weight / 2, weight]
    out = [0.0]
    for w in chosen:
        if w not in out:
            out.append(float(w))
    return out


def render_preview(base: str | Path, lora_path: str | Path, prompt: str, *, weight: float = 1.0,
                   weights: list[float] | None = None, negative: str | None = None, seed: int = 0,
                   steps: int = 20, size: tuple[int, int] | None = None, cfg: float = 7.5,
                   pipe: Any = None) -> Iterator[object]:
    """Events; Finished.summary = {"images": [(weight, PIL image)], "grid": PIL image}."""
    import torch

    if not prompt.strip():
        raise LoraToolError("--prompt must not be empty")
    if steps < 1:
        raise LoraToolError("--steps must be at least 1")
    lora = load_lora(lora_path)
    pipe = pipe or load_pipeline(base)
    arch, _ = detect_architecture(lora)
    pipe_sdxl = hasattr(pipe, "text_encoder_2")
    if (arch == "SDXL") != pipe_sdxl:
        raise LoraToolError(f"{lora.path}: an {arch} LoRA cannot be previewed on the "
                            f"{'SDXL' if pipe_sdxl else 'SD1/SD2'} model {base}")
    patch = WeightPatch(pipe, lora) if needs_weight_patch(lora) else None
    if patch is None:
        try:
            pipe.load_lora_weights(str(lora.path), adapter_name="preview")
        except Exception as exc:  # diffusers refuses keys it cannot place
            raise LoraToolError(f"{lora.path}: diffusers cannot load this LoRA ({str(exc)[:200]})") from None
    width, height = size or default_size(pipe)
    chosen = preview_weights(weight, weights)
    yield Started("preview", len(chosen))
    images = []
    try:
        for w in chosen:
            if patch is not None:
                patch.set(w)
            elif w == 0:
                pipe.disable_lora()
            else:
                pipe.enable_lora()
                pipe.set_adapters(["preview"], adapter_weights=[w])
            generator = torch.Generator(device="cpu").manual_seed(seed)
            result = pipe(prompt, negative_prompt=negative or None, num_inference_steps=steps,
                          guidance_scale=cfg, width=width, height=height, generator=generator)
            images.append((w, result.images[0]))
            yield Advanced(1, f"weight {w:g}")
    finally:
        if patch is not None:
            patch.set(0.0)
        else:
            pipe.enable_lora()
            pipe.delete_adapters(["preview"])
    yield Finished({"images": images, "grid": make_grid(images)})


def needs_weight_patch(lora: LoraFile) -> bool:
    """LoHa, LoKr, Tucker LoCon and DoRA (LyCORIS's) are previewed by patching weights with lorakit's exact
    update (diffusers' loader does not place them, or computes DoRA differently); plain LoRA/LoCon go
    through diffusers' own loader, as users' pipelines load them."""
    return lora.dora or any(m.kind in ("loha", "lokr") or m.mid is not None for m in lora.modules.values())


class WeightPatch:
    """The pipeline's adapted weights set to W0 + weight·ΔW (the merge's `LoraModule.apply`), W0 kept aside."""

    def __init__(self, pipe: Any, lora: LoraFile) -> None:
        from trainer.lora_keys import text_encoder_lora_targets, text_encoder_prefixes, unet_lora_targets

        sdxl = hasattr(pipe, "text_encoder_2")
        model_type = "sdxl" if sdxl else "sd1"
        found = dict(unet_lora_targets(pipe.unet, model_type, conv=True))
        encoders = [pipe.text_encoder, pipe.text_encoder_2] if sdxl else [pipe.text_encoder]
        for prefix, encoder in zip(text_encoder_prefixes(model_type), encoders, strict=False):
            found.update(text_encoder_lora_targets(encoder, prefix))
            if not sdxl:  # diffusers' kohya export names the SD1 encoder lora_te1
                found.update(text_encoder_lora_targets(encoder, "lora_te1"))
        missing = [n for n in lora.modules if n not in found]
        if missing:
            raise LoraToolError(f"{lora.path}: {len(missing)} of {len(lora.modules)} modules do not exist in this "
                                f"model (e.g. {missing[0]}); the LoRA was made for a different model")
        self.targets = []
        for name, module in lora.modules.items():
            layer = found[name][1]
            if not module.fits(tuple(layer.weight.shape)):
                raise LoraToolError(f"{lora.path}: module {name} does not fit the model's weight "
                                    f"{tuple(layer.weight.shape)}; the LoRA was made for a different model")
            self.targets.append((module, layer, layer.weight.detach().clone()))

    def set(self, weight: float) -> None:
        import torch

        with torch.no_grad():
            for module, layer, original in self.targets:
                w = original.to(torch.float32, copy=True)
                if weight != 0:
                    module.apply(w, weight)
                layer.weight.copy_(w.to(layer.weight.dtype))


def make_grid(images: list[tuple[float, Any]]) -> Any:
    """One row of images, each under a label (\"without LoRA\", \"LoRA 0.5\")."""
    from PIL import Image, ImageDraw

    width = sum(img.width for _, img in images)
    height = max(img.height for _, img in images) + LABEL_HEIGHT
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    x = 0
    for w, img in images:
        grid.paste(img.convert("RGB"), (x, LABEL_HEIGHT))
        draw.text((x + 3, 3), "without LoRA" if w == 0 else f"LoRA {w:g}", fill="black")
        x += img.width
    return grid


def save_png(image: Any, path: str | Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def preview_lora(base: str | Path, lora_path: str | Path, prompt: str, out: str | Path,
                 **kwargs: Any) -> Iterator[object]:
    """render_preview, then the grid written to out; Finished.summary = {"out", "weights", "size"}."""
    summary = None
    for event in render_preview(base, lora_path, prompt, **kwargs):
        if isinstance(event, Finished):
            summary = event.summary
        else:
            yield event
    assert summary is not None
    save_png(summary["grid"], out)
    yield Finished({"out": str(out), "weights": [w for w, _ in summary["images"]],
                    "size": list(summary["grid"].size)})
