"""`lorakit lora merge --base MODEL --lora FILE[:RATIO] … --out OUT`: bake LoRAs into a checkpoint exactly.

W += ratio·(alpha/rank)·ΔW per module, ΔW as LyCORIS computes it for each kind (LoRA/LoCon up@down,
3x3 and Tucker included; LoHa's Hadamard product; LoKr's Kronecker product); a DoRA module rescales
W+ΔW to its magnitude (`LoraModule.apply`). Computed in fp32 and streamed tensor by tensor, so peak
memory stays near one tensor rather than the whole checkpoint. Several LoRAs on one weight are
applied in the order given.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from prep.events import Advanced, Finished, Started

from . import ldm_keys as lk
from .checkpoint import COMPONENTS, BaseModel, WeightFile, load_base
from .errors import LoraToolError
from .io import LoraFile, LoraModule, detect_architecture, load_lora
from .safetensors_stream import PlannedTensor, iter_write_safetensors

PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
Update = tuple[slice | None, LoraModule, float]
Updates = dict[tuple[int, str], list[Update]]


def resolve_updates(model: BaseModel, loras: list[tuple[LoraFile, float]]) -> Updates:
    """Which tensor each LoRA module updates; a LoRA that does not fit the model is refused."""
    updates: Updates = {}
    for lora, ratio in loras:
        arch, _ = detect_architecture(lora)
        if (arch == "SDXL") != (model.arch == "SDXL"):
            raise LoraToolError(f"{lora.path}: this is an {arch} LoRA and cannot be merged into the "
                                f"{model.arch} model {model.path}; use a base of the architecture it was trained on")
        foreign = [n for n in lora.modules if not n.startswith("lora_")]
        if foreign:
            raise LoraToolError(f"{lora.path}: keys are not in kohya format (e.g. {foreign[0]}); lorakit merges "
                                f"kohya LoRAs (lora_unet_…/lora_te_… names)")
        missing = [n for n in lora.modules if n not in model.targets]
        if missing:
            raise LoraToolError(f"{lora.path}: {len(missing)} of {len(lora.modules)} LoRA modules do not exist in "
                                f"{model.path} (e.g. {missing[0]}); the LoRA was made for a different model")
        for name, module in lora.modules.items():
            target = model.targets[name]
            if not module.fits(target.shape()):
                raise LoraToolError(f"{lora.path}: module {name} has shape {module.weight_shape} but the "
                                    f"model's weight is {target.shape()}; the LoRA was made for a different model")
            if not all(t.isfinite().all() for t in module.tensors.values()):
                raise LoraToolError(f"{lora.path}: module {name} holds NaN/Inf; run `lorakit lora check` on it")
            updates.setdefault((id(target.file), target.key), []).append((target.rows, module, ratio))
    return updates


def _producer(wf: WeightFile, key: str, updates: Updates, dtype: torch.dtype | None) -> Callable[[], torch.Tensor]:
    ups = updates.get((id(wf), key), [])

    def make() -> torch.Tensor:
        t = wf.tensors.get(key)
        out_dtype = dtype if dtype is not None and t.is_floating_point() else t.dtype
        if ups:
            w = t.to(torch.float32, copy=True)
            for rows, module, ratio in ups:
                view = w[rows] if rows is not None else w
                module.apply(view, ratio)
            t = w
        return t.to(out_dtype)

    return make


def _out_dtype(wf: WeightFile, key: str, dtype: torch.dtype | None) -> torch.dtype:
    source = wf.tensors.dtype(key)
    return dtype if dtype is not None and source.is_floating_point else source


def same_layout_plan(files: list[WeightFile], updates: Updates, dtype: torch.dtype | None) -> list[PlannedTensor]:
    return [PlannedTensor(k, wf.tensors.shape(k), _out_dtype(wf, k, dtype), _producer(wf, k, updates, dtype))
            for wf in files for k in wf.tensors.keys()]


def ldm_plan(model: BaseModel, updates: Updates, dtype: torch.dtype | None) -> list[PlannedTensor]:
    """A diffusers model's tensors under the original single-file key layout (A1111/ComfyUI)."""
    plan: list[PlannedTensor] = []
    fused: dict[str, dict[str, tuple[WeightFile, str]]] = {}
    sdxl = model.arch == "SDXL"
    for wf in model.files:
        for key in wf.tensors.keys():
            shape = wf.tensors.shape(key)
            make = _producer(wf, key, updates, dtype)
            out_dtype = _out_dtype(wf, key, dtype)
            if wf.component == "unet":
                new = lk.UNET_PREFIX + lk.unet_to_ldm(key, model.layers_per_block, model.up_has_attention)
            elif wf.component == "vae":
                inner, as_conv = lk.vae_to_ldm(key, model.vae_up_blocks)
                new = lk.VAE_PREFIX + inner
                if as_conv and len(shape) == 2:
                    shape = (*shape, 1, 1)
                    make = (lambda f: lambda: f()[:, :, None, None])(make)
            elif wf.component == "text_encoder" and not sdxl and model.arch != "SD2":
                new = lk.SD1_TE_PREFIX + lk.clip_path(key)
            elif wf.component == "text_encoder" and sdxl:
                new = lk.SDXL_TE1_PREFIX + lk.clip_path(key)
            else:  # OpenCLIP layout: SD2's encoder, SDXL's second
                prefix = lk.SDXL_TE2_PREFIX if sdxl else lk.SD2_TE_PREFIX
                inner, part = lk.openclip_from_clip(key)
                if part is not None:
                    fused.setdefault(prefix + inner, {})[part] = (wf, key)
                    continue
                new = prefix + inner
                if inner == "text_projection":
                    shape = (shape[1], shape[0])
                    make = (lambda f: lambda: f().T.contiguous())(make)
            plan.append(PlannedTensor(new, tuple(shape), out_dtype, make))
    for new, parts in fused.items():
        if set(parts) != {"q", "k", "v"}:
            raise LoraToolError(f"{model.path}: text encoder is missing q/k/v weights for {new}")
        first_wf, first_key = parts["q"]
        shape = first_wf.tensors.shape(first_key)
        makes = [_producer(*parts[p], updates, dtype) for p in "qkv"]
        plan.append(PlannedTensor(new, (3 * shape[0], *shape[1:]), _out_dtype(first_wf, first_key, dtype),
                                  (lambda ms: lambda: torch.cat([m() for m in ms], dim=0))(makes)))
    return plan


def merge_into_checkpoint(base: str | Path, specs: list[tuple[Path, float]], out: str | Path, *,
                          fmt: str | None = None, precision: str | None = None) -> Iterator[object]:
    """Events; Finished.summary = {"out", "format", "modules", "architecture", "base"}."""
    out = Path(out)
    if not specs:
        raise LoraToolError("give at least one --lora FILE[:RATIO]")
    model = load_base(base)
    loras = [(load_lora(path), ratio) for path, ratio in specs]
    updates = resolve_updates(model, loras)
    dtype = PRECISIONS[precision] if precision else None
    fmt = fmt or ("safetensors" if out.suffix.lower() == ".safetensors" else "diffusers")
    if out.resolve() == model.path.resolve() or any(out.resolve() == lo.path.resolve() for lo, _ in loras):
        raise LoraToolError(f"{out}: choose an --out different from the inputs")
    meta = {"lorakit_merged_loras": json.dumps([{"file": lo.path.name, "ratio": r,
                                                  "sshs_model_hash": lo.metadata.get("sshs_model_hash")}
                                                 for lo, r in loras])}
    if fmt == "safetensors":
        if out.suffix.lower() != ".safetensors":
            raise LoraToolError(f"{out}: a single-file checkpoint must end in .safetensors")
        plan = same_layout_plan(model.files, updates, dtype) if model.kind == "single" else ldm_plan(model, updates, dtype)
        yield Started("merge", len(plan))
        for _ in iter_write_safetensors(out, plan, meta):
            yield Advanced(1, "")
    elif model.kind == "diffusers":
        yield from _write_diffusers(model, updates, dtype, out)
    else:
        yield from _single_to_diffusers(model, updates, dtype, out, meta)
    yield Finished({"out": str(out), "format": fmt, "modules": sum(len(lo.modules) for lo, _ in loras),
                    "architecture": model.arch, "base": str(model.path)})


def _write_diffusers(model: BaseModel, updates: Updates, dtype: torch.dtype | None, out: Path) -> Iterator[object]:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LoraToolError(f"{out}: already exists; choose a new folder for the merged model")
    weights = {wf.rel for wf in model.files}

    def ignore(folder: str, names: list[str]) -> list[str]:
        rel = Path(folder).relative_to(model.path)
        skip = rel.parts[:1] and rel.parts[0] in COMPONENTS
        return [n for n in names if skip and n.endswith((".safetensors", ".bin"))
                and str(rel / n) not in weights] + [n for n in names if str(rel / n) in weights]

    shutil.copytree(model.path, out, ignore=ignore, dirs_exist_ok=True)
    total = sum(len(wf.tensors.keys()) for wf in model.files)
    yield Started("merge", total)
    for wf in model.files:
        plan = same_layout_plan([wf], updates, dtype)
        for _ in iter_write_safetensors(out / wf.rel, plan, wf.tensors.metadata or {"format": "pt"}):
            yield Advanced(1, wf.rel)
    for index in out.glob("*/*.safetensors.index.json"):
        data = json.loads(index.read_text(encoding="utf-8"))
        shards = set(data.get("weight_map", {}).values())
        data.setdefault("metadata", {})["total_size"] = sum((index.parent / s).stat().st_size for s in shards)
        index.write_text(json.dumps(data, indent=2), encoding="utf-8")


def _single_to_diffusers(model: BaseModel, updates: Updates, dtype: torch.dtype | None, out: Path,
                         meta: dict[str, str]) -> Iterator[object]:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LoraToolError(f"{out}: already exists; choose a new folder for the merged model")
    plan = same_layout_plan(model.files, updates, dtype)
    yield Started("merge", len(plan) + 1)
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        merged = Path(tmp) / "merged.safetensors"
        for _ in iter_write_safetensors(merged, plan, meta):
            yield Advanced(1, "")
        try:
            from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

            cls = StableDiffusionXLPipeline if model.arch == "SDXL" else StableDiffusionPipeline
            pipe = cls.from_single_file(str(merged), torch_dtype=dtype)
        except Exception as exc:  # diffusers needs the model's configs (Hub or cache) for a single file
            raise LoraToolError(f"{model.path}: cannot convert a single-file checkpoint to a diffusers folder "
                                f"here ({type(exc).__name__}); merge to OUT.safetensors instead, or use a "
                                f"diffusers folder as --base") from None
        pipe.save_pretrained(out, safe_serialization=True)
        yield Advanced(1, str(out))
