"""Base models for merging: a diffusers folder or a single-file (LDM/A1111) checkpoint, read lazily.

`load_base` finds the weight files and maps every kohya module name the model can take to the
tensor (and, for OpenCLIP's fused q/k/v, the rows) it updates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from trainer.lora_keys import kohya_name
from trainer.model_family import family_from_folder_config, family_from_keys
from trainer.safetensors_read import LazyTensors

from . import ldm_keys as lk
from .errors import LoraToolError

COMPONENTS = ("unet", "text_encoder", "text_encoder_2", "vae")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


@dataclass
class WeightFile:
    rel: str
    component: str
    tensors: LazyTensors


@dataclass
class Target:
    file: WeightFile
    key: str
    rows: slice | None = None
    path: str = ""  # the diffusers-style module path (dotted), for choosing kohya targets
    canonical: bool = True  # the name kohya itself writes (False for accepted aliases)

    def load(self):
        tensor = self.file.tensors.get(self.key)
        return tensor[self.rows] if self.rows is not None else tensor

    def shape(self) -> tuple[int, ...]:
        shape = self.file.tensors.shape(self.key)
        if self.rows is not None:
            return (self.rows.stop - self.rows.start, *shape[1:])
        return shape


@dataclass
class BaseModel:
    path: Path
    kind: str  # "diffusers" or "single"
    arch: str  # "SD1", "SD2" or "SDXL"
    files: list[WeightFile]
    targets: dict[str, Target] = field(default_factory=dict)
    layers_per_block: int = 2
    up_has_attention: dict[int, bool] = field(default_factory=dict)
    vae_up_blocks: int = 4

    def size_bytes(self) -> int:
        return sum(f.tensors.path.stat().st_size for f in self.files)


def load_base(path: str | Path) -> BaseModel:
    path = Path(path)
    if not path.exists():
        raise LoraToolError(f"{path}: no such model; pass a diffusers folder or a .safetensors checkpoint")
    if path.is_dir():
        return _load_diffusers(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise LoraToolError(f"{path}: pickle checkpoints are not loaded (they can run code); "
                            f"convert it to .safetensors first")
    return _load_single(path)


def _component_files(folder: Path, component: str) -> list[Path]:
    sub = folder / component
    indexes = sorted(sub.glob("*.safetensors.index.json"))
    if indexes:
        index = next((i for i in indexes if ".fp16." not in i.name), indexes[0])
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (ValueError, KeyError, OSError) as exc:
            raise LoraToolError(f"{index}: unreadable shard index ({exc})") from None
        return [sub / s for s in shards]
    files = sorted(sub.glob("*.safetensors"))
    plain = [f for f in files if len(f.name.split(".")) == 2]
    if plain or files:
        return plain[:1] or files[:1]
    if any(sub.glob("*.bin")):
        raise LoraToolError(f"{sub}: weights are pickle .bin files; re-save the model with safetensors "
                            f"(pipe.save_pretrained(..., safe_serialization=True))")
    return []


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LoraToolError(f"{path}: cannot read ({exc})") from None
    return data if isinstance(data, dict) else {}


def _load_diffusers(folder: Path) -> BaseModel:
    if not (folder / "model_index.json").is_file():
        raise LoraToolError(f"{folder}: not a diffusers model folder (no model_index.json)")
    index = _read_json(folder / "model_index.json")
    files: list[WeightFile] = []
    for component in COMPONENTS:
        if component in index and (folder / component).is_dir():
            for f in _component_files(folder, component):
                files.append(WeightFile(str(f.relative_to(folder)), component, LazyTensors(f)))
    if not any(f.component == "unet" for f in files):
        raise LoraToolError(f"{folder}: no UNet weights (unet/*.safetensors)")
    unet_cfg = _read_json(folder / "unet" / "config.json")
    arch = family_from_folder_config(index, unet_cfg).upper()
    sdxl = arch == "SDXL"
    layers = unet_cfg.get("layers_per_block", 2)
    layers = int(layers[0] if isinstance(layers, list) else layers)
    up_types = unet_cfg.get("up_block_types") or []
    model = BaseModel(folder, "diffusers", arch, files, layers_per_block=layers,
                      up_has_attention={i: "CrossAttn" in t for i, t in enumerate(up_types)})
    if (folder / "vae" / "config.json").is_file():
        model.vae_up_blocks = len(_read_json(folder / "vae" / "config.json").get("up_block_types") or [1] * 4)
    te_prefix = {"text_encoder": "lora_te1" if sdxl else "lora_te", "text_encoder_2": "lora_te2"}
    for wf in files:
        for key in wf.tensors.keys():
            if not key.endswith(".weight") or len(wf.tensors.shape(key)) not in (2, 4):
                continue
            path = key[: -len(".weight")]
            if wf.component == "unet":
                model.targets[kohya_name("lora_unet", path)] = Target(wf, key, None, path, not sdxl)
                if sdxl:
                    ldm = lk.unet_to_ldm(key, layers, model.up_has_attention)[: -len(".weight")]
                    model.targets[kohya_name("lora_unet", ldm)] = Target(wf, key, None, path)
            elif wf.component in te_prefix:
                te_path = lk.clip_path(path)
                model.targets[kohya_name(te_prefix[wf.component], te_path)] = Target(wf, key, None, te_path)
                if not sdxl:  # diffusers' kohya export names the SD1 encoder lora_te1
                    model.targets[kohya_name("lora_te1", te_path)] = Target(wf, key, None, te_path, False)
    return model


def _load_single(path: Path) -> BaseModel:
    tensors = LazyTensors(path)
    keys = tensors.keys()
    if not any(k.startswith(lk.UNET_PREFIX) for k in keys):
        raise LoraToolError(f"{path}: not a Stable Diffusion checkpoint (no {lk.UNET_PREFIX}* keys); "
                            f"is it a LoRA or a diffusers-format file?")
    arch = family_from_keys(keys).upper()
    wf = WeightFile(path.name, "single", tensors)
    unet_keys = [k[len(lk.UNET_PREFIX):] for k in keys if k.startswith(lk.UNET_PREFIX)]
    layers = lk.ldm_layers_per_block(unet_keys)
    model = BaseModel(path, "single", arch, [wf], layers_per_block=layers)
    openclip = {lk.SD2_TE_PREFIX: "lora_te", lk.SDXL_TE2_PREFIX: "lora_te2"}
    clip = {lk.SD1_TE_PREFIX: "lora_te", lk.SDXL_TE1_PREFIX: "lora_te1"}
    for key in keys:
        shape = tensors.shape(key)
        if key.startswith(lk.UNET_PREFIX) and key.endswith(".weight") and len(shape) in (2, 4):
            inner = key[len(lk.UNET_PREFIX):]
            diffusers = lk.unet_from_ldm(inner, layers)[: -len(".weight")]
            model.targets[kohya_name("lora_unet", diffusers)] = Target(wf, key, None, diffusers, arch != "SDXL")
            if arch == "SDXL":
                model.targets[kohya_name("lora_unet", inner[: -len(".weight")])] = Target(wf, key, None, diffusers)
            continue
        for prefix, te in clip.items():
            if key.startswith(prefix) and key.endswith(".weight") and len(shape) == 2:
                inner = lk.clip_path(key[len(prefix):])[: -len(".weight")]
                model.targets[kohya_name(te, inner)] = Target(wf, key, None, inner)
                if te == "lora_te":
                    model.targets[kohya_name("lora_te1", inner)] = Target(wf, key, None, inner, False)
        for prefix, te in openclip.items():
            if key.startswith(prefix) and len(shape) == 2:
                inner = key[len(prefix):]
                hidden = shape[1]
                for name, rows, path in lk.openclip_kohya_targets(inner, hidden):
                    model.targets[f"{te}_{name}"] = Target(wf, key, rows, path)
    return model
