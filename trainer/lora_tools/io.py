"""Reading kohya-format LoRA files: modules (down, up, alpha), metadata, architecture, `FILE:RATIO` specs."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import LoraToolError
from .safetensors_stream import read_header

PARTS = ("unet", "te", "te1", "te2")
PART_LABELS = {"unet": "UNet", "te": "text encoder", "te1": "text encoder 1 (CLIP-L)",
               "te2": "text encoder 2 (CLIP-bigG)"}
_SUFFIXES = {
    ".lora_down.weight": "down", ".lora_up.weight": "up", ".alpha": "alpha",
    # PEFT names, written by diffusers-side exporters next to kohya prefixes
    ".lora_A.weight": "down", ".lora_B.weight": "up",
}
_LYCORIS_MARKERS = ("hada_", "lokr_", "lora_mid", "oft_", ".dora_scale", ".diff", "b_norm", "w_norm")
SDXL_UNET_NAME = re.compile(r"^lora_unet_(input_blocks|output_blocks|middle_block)_")


@dataclass
class LoraModule:
    """One kohya LoRA module: ΔW = (alpha/rank)·up@down (conv-aware)."""

    name: str
    down: torch.Tensor
    up: torch.Tensor
    alpha: float | None = None

    @property
    def rank(self) -> int:
        return int(self.down.shape[0])

    @property
    def part(self) -> str:
        return module_part(self.name)

    @property
    def is_conv(self) -> bool:
        return self.down.dim() == 4

    @property
    def kernel(self) -> tuple[int, int]:
        return (int(self.down.shape[2]), int(self.down.shape[3])) if self.is_conv else (1, 1)

    @property
    def effective_alpha(self) -> float:
        """Loaders (kohya, A1111, ComfyUI) use alpha/rank, or 1.0 when the file has no alpha."""
        return float(self.rank) if self.alpha is None else float(self.alpha)

    @property
    def scale(self) -> float:
        return self.effective_alpha / self.rank

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """Shape of the layer weight the update applies to."""
        if self.is_conv:
            return (int(self.up.shape[0]), int(self.down.shape[1]), *self.kernel)
        return (int(self.up.shape[0]), int(self.down.shape[1]))

    def factors(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """(up [out, r], down [r, in·kh·kw]) as 2-D matrices; the update is scale·up@down."""
        return (self.up.reshape(self.up.shape[0], -1).to(dtype),
                self.down.reshape(self.rank, -1).to(dtype))

    def delta(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The full weight update (alpha/rank)·up@down in the layer weight's shape."""
        up, down = self.factors(dtype)
        return (up @ down).mul_(self.scale).reshape(self.weight_shape)


@dataclass
class LoraFile:
    path: Path
    modules: dict[str, LoraModule]
    metadata: dict[str, str]
    dtypes: Counter = field(default_factory=Counter)
    size_bytes: int = 0
    other_keys: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    def parts(self) -> Counter:
        return Counter(m.part for m in self.modules.values())


def module_part(name: str) -> str:
    for part in ("te1", "te2", "te", "unet"):
        if name.startswith(f"lora_{part}_"):
            return part
    return "other"


def load_lora(path: str | Path) -> LoraFile:
    """Read a LoRA .safetensors file; raises LoraToolError with one line when it is not one."""
    path = Path(path)
    if path.is_dir():
        raise LoraToolError(f"{path}: is a folder; pass a LoRA .safetensors file")
    header, metadata = read_header(path)
    if not any(k.endswith(tuple(_SUFFIXES)) for k in header):
        # decided from the header alone, so a multi-GiB checkpoint passed by mistake is not read
        what = " (it looks like a model checkpoint)" if any(k.startswith(("model.diffusion_model.", "unet.",
                                                                          "down_blocks.")) for k in header) else ""
        raise LoraToolError(f"{path}: no LoRA modules found{what}; expected kohya keys such as "
                            f"lora_unet_….lora_down.weight")
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as fh:
            tensors = {k: fh.get_tensor(k) for k in header}
    except Exception as exc:  # safetensors raises its own errors for corrupt data
        raise LoraToolError(f"{path}: cannot read tensors ({exc})") from None
    lora = parse_lora_tensors(tensors, metadata, path)
    lora.size_bytes = path.stat().st_size
    if not lora.modules:
        lycoris = any(m in k for k in tensors for m in _LYCORIS_MARKERS)
        hint = " (LyCORIS LoHa/LoKr/OFT files are not supported)" if lycoris else ""
        raise LoraToolError(f"{path}: no LoRA modules found (expected kohya keys such as "
                            f"lora_unet_….lora_down.weight){hint}")
    return lora


def parse_lora_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str],
                       path: Path | None = None) -> LoraFile:
    groups: dict[str, dict[str, torch.Tensor]] = {}
    other: list[str] = []
    dtypes: Counter = Counter()
    for key, tensor in tensors.items():
        for suffix, role in _SUFFIXES.items():
            if key.endswith(suffix):
                groups.setdefault(key[: -len(suffix)], {})[role] = tensor
                if role != "alpha":
                    dtypes[str(tensor.dtype).replace("torch.", "")] += 1
                break
        else:
            other.append(key)
    modules: dict[str, LoraModule] = {}
    incomplete: list[str] = []
    for name, parts in sorted(groups.items()):
        if "down" not in parts or "up" not in parts:
            incomplete.append(name)
            continue
        alpha = parts.get("alpha")
        alpha_value = float(alpha.float().reshape(-1)[0]) if alpha is not None and alpha.numel() else None
        module = LoraModule(name, parts["down"], parts["up"], alpha_value)
        if not _shapes_agree(module):
            raise LoraToolError(f"{path or 'LoRA'}: module {name} has mismatched shapes "
                                f"down {tuple(module.down.shape)} / up {tuple(module.up.shape)}")
        modules[name] = module
    return LoraFile(Path(path) if path else Path("-"), modules, dict(metadata), dtypes,
                    other_keys=other, incomplete=incomplete)


def _shapes_agree(m: LoraModule) -> bool:
    if m.down.dim() not in (2, 4) or m.up.dim() != m.down.dim():
        return False
    if m.up.shape[1] != m.down.shape[0]:
        return False
    return m.up.dim() == 2 or tuple(m.up.shape[2:]) == (1, 1)


def detect_architecture(lora: LoraFile) -> tuple[str, str]:
    """("SD1"|"SD2"|"SDXL", how it was decided) from metadata first, then key names, then shapes."""
    meta = lora.metadata
    version = meta.get("ss_base_model_version", "")
    if version.startswith("sdxl"):
        return "SDXL", "metadata ss_base_model_version"
    if version.startswith("sd_v2") or meta.get("ss_v2", "").lower() == "true":
        return "SD2", "metadata ss_base_model_version/ss_v2"
    arch = meta.get("modelspec.architecture", "")
    if arch.startswith("stable-diffusion-xl"):
        return "SDXL", "metadata modelspec.architecture"
    names = lora.modules
    if any(module_part(n) == "te2" for n in names) or any(SDXL_UNET_NAME.match(n) for n in names):
        return "SDXL", "key names (lora_te2 or LDM UNet names)"
    if version.startswith("sd_v1"):
        return "SD1", "metadata ss_base_model_version"
    for name, module in names.items():
        if name.endswith("attn2_to_k"):
            context = int(module.down.shape[1])
            if context == 1024:
                return "SD2", "cross-attention width 1024"
            if context == 2048:
                return "SDXL", "cross-attention width 2048"
            break
    if any(module_part(n) == "te1" for n in names) and not any(module_part(n) == "unet" for n in names):
        return "SDXL", "key names (lora_te1)"
    # diffusers' convert_state_dict_to_kohya names the SD1 text encoder lora_te1
    return "SD1", "key names (diffusers UNet names)"


def parse_lora_spec(spec: str, default: float = 1.0) -> tuple[Path, float]:
    """`FILE` or `FILE:RATIO` (a trailing `:number`; a Windows drive letter is not a ratio)."""
    head, sep, tail = spec.rpartition(":")
    if sep and head and not (len(head) == 1 and head.isalpha()):
        try:
            return Path(head), float(tail)
        except ValueError:
            pass
    return Path(spec), default


def lora_tensors(modules: dict[str, LoraModule], dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The kohya tensors of modules (alpha as a 0-d fp32 tensor, as kohya writes it)."""
    out: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        out[f"{name}.lora_down.weight"] = m.down.to(dtype or m.down.dtype).contiguous()
        out[f"{name}.lora_up.weight"] = m.up.to(dtype or m.up.dtype).contiguous()
        out[f"{name}.alpha"] = torch.tensor(m.effective_alpha, dtype=torch.float32)
    return out


__all__ = ["LoraFile", "LoraModule", "PARTS", "PART_LABELS", "detect_architecture", "load_lora",
           "lora_tensors", "module_part", "parse_lora_spec", "parse_lora_tensors", "read_header"]
