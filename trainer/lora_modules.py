"""The one read model of a kohya / LyCORIS LoRA file: keys grouped into modules, each with its kind and update.

A file holds, per adapted layer `<name>` (`lora_unet_…`, `lora_te_…`, `lora_te1_…`, `lora_te2_…`):
- LoRA / LoCon: `<name>.lora_down.weight`, `.lora_up.weight`, optional `.lora_mid.weight` (LoCon's
  Tucker core) and `.alpha`; PEFT's `.lora_A.weight` / `.lora_B.weight` are read as down / up.
- LoHa: `.hada_w1_a`, `.hada_w1_b`, `.hada_w2_a`, `.hada_w2_b`, optional `.hada_t1`, `.hada_t2`, `.alpha`.
- LoKr: `.lokr_w1` or `.lokr_w1_a` + `.lokr_w1_b`; `.lokr_w2` or `.lokr_w2_a` + `.lokr_w2_b`;
  optional `.lokr_t2`, `.alpha`.
- any of them with `.dora_scale` (DoRA weight decomposition).

`LoraModule.kind` is "lora" (linear or 1x1), "locon" (a LoRA on a k×k conv, or with a Tucker mid),
"loha" or "lokr"; `.dora` says whether it carries a DoRA magnitude.

The alpha rule, one for every consumer (A1111, ComfyUI, kohya's merge_lora.py agree):
the update is (alpha/rank)·ΔW; alpha 0 means no update; no alpha means alpha = rank (scale 1).
A LoKr module with both halves full has no rank and scale 1 (LyCORIS and A1111).
`LoraModule.delta(shape)` is the exact update as LyCORIS's forward computes it, `apply(weight, ratio)`
adds it to a layer weight in place (DoRA included: W' = (W+ΔW)·(ratio·(m/‖W+ΔW‖ - 1) + 1)).

`read_lora(path)` -> `LoraFile` (modules, metadata, dtypes, other keys, incomplete modules), reading
through the validated header of `trainer.safetensors_read`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prep.errors import first_line
from trainer.errors import LoRAFileError
from trainer.safetensors_read import SafetensorsFileError, read_header, read_tensors

if TYPE_CHECKING:
    import torch

KINDS = ("lora", "locon", "loha", "lokr")
KIND_LABELS = {"lora": "LoRA", "locon": "LoCon", "loha": "LoHa", "lokr": "LoKr"}
# file suffix -> role; every role belongs to one kind (alpha and dora_scale to all)
ROLES = {
    ".lora_down.weight": "down", ".lora_up.weight": "up", ".lora_mid.weight": "mid",
    ".lora_A.weight": "down", ".lora_B.weight": "up",
    ".hada_w1_a": "hada_w1_a", ".hada_w1_b": "hada_w1_b", ".hada_w2_a": "hada_w2_a", ".hada_w2_b": "hada_w2_b",
    ".hada_t1": "hada_t1", ".hada_t2": "hada_t2",
    ".lokr_w1": "lokr_w1", ".lokr_w1_a": "lokr_w1_a", ".lokr_w1_b": "lokr_w1_b",
    ".lokr_w2": "lokr_w2", ".lokr_w2_a": "lokr_w2_a", ".lokr_w2_b": "lokr_w2_b", ".lokr_t2": "lokr_t2",
    ".alpha": "alpha", ".dora_scale": "dora_scale",
}
_KIND_OF_ROLE = {"down": "lora", "up": "lora", "mid": "lora"}
_KIND_OF_ROLE.update({r: "loha" for r in ROLES.values() if r.startswith("hada_")})
_KIND_OF_ROLE.update({r: "lokr" for r in ROLES.values() if r.startswith("lokr_")})
# LyCORIS algorithms lorakit does not merge: recognised so the message can name them
UNSUPPORTED_MARKERS = {".oft_blocks": "OFT", ".oft_diag": "OFT", ".oft_R": "BOFT", ".diff": "full (diff)",
                       ".diff_b": "full (diff)", ".a1.weight": "GLoRA", ".w_norm": "norm", ".b_norm": "norm",
                       ".on_input": "IA3"}


def split_module_key(key: str) -> tuple[str, str | None]:
    """`lora_unet_x.hada_w1_a` -> (`lora_unet_x`, "hada_w1_a"); role None for keys that are no module part."""
    for suffix, role in ROLES.items():
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)], role
    return key, None


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


@dataclass
class LoraModule:
    """One adapted layer's tensors, as the file holds them (role -> tensor)."""

    name: str
    tensors: dict[str, torch.Tensor]
    kind: str = "lora"

    @classmethod
    def from_factors(cls, name: str, down: torch.Tensor, up: torch.Tensor, alpha: float | None,
                     weight_shape: tuple[int, ...] | None = None) -> LoraModule:
        """A LoRA/LoCon module made by a tool (resize, merge, extract); alpha None = rank.

        With weight_shape, 2-D factors (up [out, r], down [r, in·kh·kw]) are shaped for that layer.
        """
        import torch

        if weight_shape is not None:
            r = down.shape[0]
            if len(weight_shape) == 4:
                down, up = down.reshape(r, *weight_shape[1:]), up.reshape(weight_shape[0], r, 1, 1)
            else:
                down, up = down.reshape(r, weight_shape[1]), up.reshape(weight_shape[0], r)
        tensors = {"down": down, "up": up}
        if alpha is not None:
            tensors["alpha"] = torch.tensor(float(alpha), dtype=torch.float32)
        kind = "locon" if down.dim() == 4 and tuple(down.shape[2:]) != (1, 1) else "lora"
        return cls(name, tensors, kind)

    # -- the factors ---------------------------------------------------------------------------
    @property
    def down(self) -> torch.Tensor:
        return self.tensors["down"]

    @property
    def up(self) -> torch.Tensor:
        return self.tensors["up"]

    @property
    def mid(self) -> torch.Tensor | None:
        return self.tensors.get("mid")

    @property
    def dora_scale(self) -> torch.Tensor | None:
        return self.tensors.get("dora_scale")

    @property
    def dora(self) -> bool:
        return "dora_scale" in self.tensors

    @property
    def alpha(self) -> float | None:
        """The file's alpha, None when it has none."""
        a = self.tensors.get("alpha")
        if a is None or a.numel() == 0:
            return None
        return float(a.float().reshape(-1)[0])

    @property
    def rank(self) -> int | None:
        t = self.tensors
        if self.kind in ("lora", "locon"):
            return int(t["down"].shape[0])
        if self.kind == "loha":
            return int(t["hada_w1_b"].shape[0])
        if "lokr_w1_b" in t:
            return int(t["lokr_w1_b"].shape[0])
        if "lokr_w2_b" in t:
            return int(t["lokr_w2_b"].shape[0])
        return None  # LoKr with both halves full

    @property
    def effective_alpha(self) -> float:
        """What loaders apply: the file's alpha, or the rank when it has none."""
        rank = self.rank
        if self.alpha is not None:
            return self.alpha
        return float(rank) if rank else 1.0

    @property
    def scale(self) -> float:
        """alpha/rank; alpha 0 -> 0 (no update); no alpha -> 1; a rankless LoKr -> 1."""
        rank = self.rank
        if not rank:
            return 1.0
        return self.effective_alpha / rank

    @property
    def is_conv(self) -> bool:
        return any(t.dim() == 4 for r, t in self.tensors.items() if r not in ("alpha", "dora_scale"))

    @property
    def kernel(self) -> tuple[int, int] | None:
        """The conv kernel, when the file tells it (a LoHa/LoKr on a conv may store it flattened)."""
        t = self.tensors
        for role in ("mid", "hada_t1", "lokr_t2"):
            if role in t:
                return int(t[role].shape[2]), int(t[role].shape[3])
        if self.kind in ("lora", "locon"):
            down = t["down"]
            return (int(down.shape[2]), int(down.shape[3])) if down.dim() == 4 else (1, 1)
        for role in ("lokr_w2", "lokr_w2_b", "hada_w1_b"):
            if role in t and t[role].dim() == 4:
                return int(t[role].shape[2]), int(t[role].shape[3])
        return None  # LoHa/LoKr store a conv's kernel flattened into the input side

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """(out, in·kh·kw): the layer weight flattened to a matrix, which every kind's update fills."""
        t = self.tensors
        if self.kind in ("lora", "locon"):
            k = _numel(tuple(t["mid"].shape[2:])) if "mid" in t else _numel(tuple(t["down"].shape[2:]))
            return int(t["up"].shape[0]), int(t["down"].shape[1]) * k
        if self.kind == "loha":
            if "hada_t1" in t:
                return int(t["hada_w1_a"].shape[1]), int(t["hada_w1_b"].shape[1]) * _numel(tuple(t["hada_t1"].shape[2:]))
            return int(t["hada_w1_a"].shape[0]), _numel(tuple(t["hada_w1_b"].shape[1:]))
        o1, i1 = self._lokr_w1_shape()
        o2, i2 = self._lokr_w2_matrix_shape()
        return o1 * o2, i1 * i2

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The layer weight's shape where the file tells it fully (else the matrix shape)."""
        out, inp = self.matrix_shape
        kernel = self.kernel
        if kernel is None or not self.is_conv:
            return (out, inp)
        return (out, inp // (kernel[0] * kernel[1]), *kernel)

    def _lokr_w1_shape(self) -> tuple[int, int]:
        t = self.tensors
        if "lokr_w1" in t:
            return int(t["lokr_w1"].shape[0]), int(t["lokr_w1"].shape[1])
        return int(t["lokr_w1_a"].shape[0]), int(t["lokr_w1_b"].shape[1])

    def _lokr_w2_matrix_shape(self) -> tuple[int, int]:
        t = self.tensors
        if "lokr_w2" in t:
            return int(t["lokr_w2"].shape[0]), _numel(tuple(t["lokr_w2"].shape[1:]))
        if "lokr_t2" in t:
            return int(t["lokr_w2_a"].shape[1]), int(t["lokr_w2_b"].shape[1]) * _numel(tuple(t["lokr_t2"].shape[2:]))
        return int(t["lokr_w2_a"].shape[0]), _numel(tuple(t["lokr_w2_b"].shape[1:]))

    def fits(self, weight_shape: tuple[int, ...]) -> bool:
        """Whether this module can update a layer weight of that shape (a linear LoRA fits a 1x1 conv)."""
        shape = tuple(int(s) for s in weight_shape)
        if len(shape) not in (2, 4):
            return False
        out, inp = self.matrix_shape
        if (shape[0], _numel(shape[1:])) != (out, inp):
            return False
        kernel = self.kernel
        if kernel is None:
            return True
        return (tuple(shape[2:]) if len(shape) == 4 else (1, 1)) == kernel

    # -- the update ------------------------------------------------------------------------------
    def factors(self, dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """LoRA/LoCon only: (up [out, r], down [r, in·kh·kw]) with ΔW = scale·up@down (a Tucker mid folded in)."""
        import torch

        if self.kind not in ("lora", "locon"):
            raise ValueError(f"{self.name}: a {KIND_LABELS[self.kind]} module has no up/down factors")
        dtype = dtype or torch.float32
        up = self.up.reshape(self.up.shape[0], -1).to(dtype)
        down = self.down.reshape(self.down.shape[0], -1).to(dtype)
        if self.mid is not None:
            mid = self.mid.to(dtype)  # [r, r, kh, kw]; down is a 1x1 [r, in]
            down = torch.einsum("a b ..., b i -> a i ...", mid, down).reshape(mid.shape[0], -1)
        return up, down

    def delta_matrix(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The update scale·ΔW as a [out, in·kh·kw] matrix (without ratio and DoRA)."""
        import torch

        dtype = dtype or torch.float32
        t = {k: v.to(dtype) for k, v in self.tensors.items() if k not in ("alpha", "dora_scale")}
        if self.kind in ("lora", "locon"):
            up, down = self.factors(dtype)
            result = up @ down
        elif self.kind == "loha":
            if "hada_t1" in t:
                w1 = torch.einsum("i j ..., j r, i p -> p r ...", t["hada_t1"], t["hada_w1_b"], t["hada_w1_a"])
                w2 = torch.einsum("i j ..., j r, i p -> p r ...", t["hada_t2"], t["hada_w2_b"], t["hada_w2_a"])
                result = (w1 * w2).reshape(w1.shape[0], -1)
            else:
                w1 = t["hada_w1_a"].reshape(t["hada_w1_a"].shape[0], -1) @ t["hada_w1_b"].reshape(
                    t["hada_w1_b"].shape[0], -1)
                w2 = t["hada_w2_a"].reshape(t["hada_w2_a"].shape[0], -1) @ t["hada_w2_b"].reshape(
                    t["hada_w2_b"].shape[0], -1)
                result = w1 * w2
        else:
            w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
            if "lokr_w2" in t:
                w2 = t["lokr_w2"]
            elif "lokr_t2" in t:
                w2 = torch.einsum("i j ..., i p, j r -> p r ...", t["lokr_t2"], t["lokr_w2_a"], t["lokr_w2_b"])
            else:
                w2b = t["lokr_w2_b"]
                w2 = t["lokr_w2_a"] @ w2b.reshape(w2b.shape[0], -1)
            result = torch.kron(w1, w2.reshape(w2.shape[0], -1))
        return result * self.scale

    def delta(self, shape: tuple[int, ...] | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """scale·ΔW shaped like the layer weight (shape when the file does not tell it)."""
        return self.delta_matrix(dtype).reshape(tuple(shape) if shape is not None else self.weight_shape)

    def apply(self, weight: torch.Tensor, ratio: float = 1.0) -> None:
        """weight (fp32, the layer's weight or a row block of it) += this module at ratio, in place."""
        matrix = weight.reshape(weight.shape[0], -1)
        if self.kind in ("lora", "locon") and not self.dora:
            up, down = self.factors(weight.dtype)
            matrix.addmm_(up.to(weight.device), down.to(weight.device), alpha=ratio * self.scale)
            return
        matrix.add_(self.delta_matrix(weight.dtype).to(weight.device), alpha=1.0 if self.dora else ratio)
        if self.dora:
            weight.copy_(dora_rescale(weight, self.dora_scale, ratio))


def dora_rescale(weight: torch.Tensor, magnitude: torch.Tensor, ratio: float) -> torch.Tensor:
    """LyCORIS's DoRA step on W+ΔW: W·(ratio·(m/‖W‖ - 1) + 1), ‖·‖ per output row (m [out,1,..]) or
    per input column (m [1,in,..]), plus float32 eps as LyCORIS adds."""
    import torch

    m = magnitude.to(weight.device, torch.float32)
    w = weight.to(torch.float32)
    per_out = m.shape[0] == w.shape[0] and m.numel() == w.shape[0]
    # the magnitude's layout follows the adapted layer (a linear LoRA may update a 1x1 conv)
    m = m.reshape(w.shape[0], *([1] * (w.dim() - 1))) if per_out else m.reshape(1, -1, *([1] * (w.dim() - 2)))
    eps = torch.finfo(torch.float32).eps
    if per_out:
        norm = w.reshape(w.shape[0], -1).norm(dim=1).reshape(w.shape[0], *([1] * (w.dim() - 1))) + eps
    else:
        norm = (w.transpose(0, 1).reshape(w.shape[1], -1).norm(dim=1, keepdim=True)
                .reshape(w.shape[1], *([1] * (w.dim() - 1))).transpose(0, 1)) + eps
    scale = m / norm
    if ratio != 1:
        scale = ratio * (scale - 1) + 1
    return (w * scale).to(weight.dtype)


@dataclass
class LoraFile:
    path: Path
    modules: dict[str, LoraModule]
    metadata: dict[str, str]
    dtypes: Counter = field(default_factory=Counter)
    size_bytes: int = 0
    other_keys: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    unsupported: dict[str, str] = field(default_factory=dict)  # module -> LyCORIS algorithm name

    def kinds(self) -> Counter:
        return Counter(m.kind for m in self.modules.values())

    @property
    def kind(self) -> str:
        """The file's kind: "lora", "locon" (LoRA with conv modules), "loha", "lokr" (joined with + if mixed)."""
        kinds = set(self.kinds())
        if "locon" in kinds:
            kinds.discard("lora")
        return "+".join(k for k in KINDS if k in kinds) or "lora"

    @property
    def dora(self) -> bool:
        return any(m.dora for m in self.modules.values())

    def zero_alpha(self) -> list[str]:
        return [n for n, m in self.modules.items() if m.alpha == 0 and m.rank]

    def missing_alpha(self) -> list[str]:
        return [n for n, m in self.modules.items() if m.alpha is None]


_REQUIRED = {
    "lora": ({"down", "up"},),
    "loha": ({"hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b"},),
    "lokr": ({"lokr_w1"}, {"lokr_w1_a", "lokr_w1_b"}),
}


def _complete(kind: str, roles: set[str]) -> bool:
    if kind == "lokr":
        w1 = "lokr_w1" in roles or {"lokr_w1_a", "lokr_w1_b"} <= roles
        w2 = "lokr_w2" in roles or {"lokr_w2_a", "lokr_w2_b"} <= roles
        return w1 and w2
    if kind == "loha" and ("hada_t1" in roles) != ("hada_t2" in roles):
        return False
    return _REQUIRED[kind][0] <= roles


def _shape_error(m: LoraModule) -> str | None:
    """Why the tensors of a complete module cannot form an update (None when they can)."""
    t = m.tensors
    try:
        if m.kind in ("lora", "locon"):
            down, up = t["down"], t["up"]
            if down.dim() not in (2, 4) or up.dim() != down.dim() or up.shape[1] != down.shape[0]:
                return f"down {tuple(down.shape)} / up {tuple(up.shape)}"
            if up.dim() == 4 and tuple(up.shape[2:]) != (1, 1):
                return f"up {tuple(up.shape)} is not a 1x1 conv"
            if "mid" in t and (t["mid"].dim() != 4 or tuple(t["mid"].shape[:2]) != (down.shape[0],) * 2
                               or tuple(down.shape[2:]) not in ((), (1, 1))):
                return f"mid {tuple(t['mid'].shape)} does not fit down {tuple(down.shape)}"
        if "alpha" in t and t["alpha"].numel() != 1:
            return f"alpha has {t['alpha'].numel()} values"
        out, inp = m.matrix_shape
        if out <= 0 or inp <= 0:
            return "empty update"
        # the update itself must compute; a mismatch raises here (cheap: files are small per module)
        if m.kind != "lora" or "mid" in t:
            import torch

            probe = LoraModule(m.name, {k: torch.zeros(v.shape, dtype=torch.float32)
                                        for k, v in t.items() if k not in ("alpha", "dora_scale")}, m.kind)
            if tuple(probe.delta_matrix().shape) != (out, inp):
                return "factors do not multiply to one weight"
        if m.dora:
            n = m.dora_scale.numel()
            if n != out and (n == 0 or inp % n):
                return f"dora_scale {tuple(m.dora_scale.shape)} fits neither side of a {out}x{inp} update"
    except (RuntimeError, KeyError, IndexError, ValueError) as exc:
        return first_line(exc, 120)
    return None


def parse_lora_tensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str],
                       path: str | os.PathLike[str] | None = None) -> LoraFile:
    """Group a file's tensors into modules; malformed modules raise LoRAFileError naming the file."""
    where = str(path) if path is not None else "LoRA"
    groups: dict[str, dict[str, torch.Tensor]] = {}
    other: list[str] = []
    dtypes: Counter = Counter()
    for key, tensor in tensors.items():
        name, role = split_module_key(key)
        if role is None:
            other.append(key)
            continue
        if role in groups.setdefault(name, {}):
            raise LoRAFileError(f"{where}: module {name} has two {role} tensors (e.g. lora_down and lora_A)")
        groups[name][role] = tensor
        if role != "alpha":
            dtypes[str(tensor.dtype).replace("torch.", "")] += 1
    unsupported: dict[str, str] = {}
    for key in other:
        for marker, algo in UNSUPPORTED_MARKERS.items():
            if key.endswith(marker):
                unsupported[key[: -len(marker)]] = algo
    modules: dict[str, LoraModule] = {}
    incomplete: list[str] = []
    for name, parts in sorted(groups.items()):
        kinds = {_KIND_OF_ROLE[r] for r in parts if r in _KIND_OF_ROLE}
        if len(kinds) > 1:
            raise LoRAFileError(f"{where}: module {name} mixes {' and '.join(sorted(KIND_LABELS[k] for k in kinds))} "
                                f"tensors")
        if not kinds or not _complete(next(iter(kinds)), set(parts)):
            if name not in unsupported:
                incomplete.append(name)
            continue
        kind = kinds.pop()
        if kind == "lora" and ("mid" in parts or (parts["down"].dim() == 4
                                                   and tuple(parts["down"].shape[2:]) != (1, 1))):
            kind = "locon"
        module = LoraModule(name, parts, kind)
        problem = _shape_error(module)
        if problem:
            raise LoRAFileError(f"{where}: module {name} has mismatched shapes ({problem})")
        modules[name] = module
    return LoraFile(Path(path) if path is not None else Path("-"), modules, dict(metadata), dtypes,
                    other_keys=other, incomplete=incomplete, unsupported=unsupported)


def read_lora(path: str | os.PathLike[str], *, allow_empty: bool = False) -> LoraFile:
    """Read a LoRA / LyCORIS file; raises LoRAFileError (one line naming the file) when it is not one."""
    path = Path(path)
    if path.is_dir():
        raise LoRAFileError(f"{path}: is a folder; pass a LoRA .safetensors file")
    try:
        header = read_header(path)
        if not any(split_module_key(k)[1] for k in header.entries):
            # decided from the header alone, so a multi-GiB checkpoint passed by mistake is not read
            checkpoint = any(k.startswith(("model.diffusion_model.", "unet.", "down_blocks."))
                             for k in header.entries)
            what = " (it looks like a model checkpoint)" if checkpoint else ""
            if not allow_empty:
                raise LoRAFileError(f"{path}: no LoRA modules found{what}; expected kohya keys such as "
                                    f"lora_unet_….lora_down.weight")
        tensors, metadata = read_tensors(path)
    except SafetensorsFileError as exc:
        raise LoRAFileError(str(exc)) from None
    lora = parse_lora_tensors(tensors, metadata, path)
    lora.size_bytes = header.file_size
    if not lora.modules and not allow_empty:
        if lora.unsupported:
            algos = ", ".join(sorted(set(lora.unsupported.values())))
            raise LoRAFileError(f"{path}: LyCORIS {algos} modules are not supported (lorakit reads LoRA, LoCon, "
                                f"LoHa, LoKr and DoRA)")
        raise LoRAFileError(f"{path}: no complete LoRA modules found (expected kohya keys such as "
                            f"lora_unet_….lora_down.weight and .lora_up.weight)")
    return lora


def module_state(module: LoraModule) -> dict[str, torch.Tensor]:
    """The module's tensors under their file suffixes, alpha filled by the rule (missing -> rank)."""
    import torch

    suffix = {role: s for s, role in ROLES.items() if not s.startswith((".lora_A", ".lora_B"))}
    out = {f"{module.name}{suffix[r]}": t for r, t in module.tensors.items() if r != "alpha"}
    out[f"{module.name}.alpha"] = torch.tensor(module.effective_alpha, dtype=torch.float32)
    return out


def read_network_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The tensors to continue training from (`network_weights`), keyed as in the file.

    Alpha follows the rule: a module without alpha gets alpha = rank (what it applied); a module
    with alpha 0 applied no update and would train at scale 0, so such a file is refused.
    """
    lora = read_lora(path)
    zero = lora.zero_alpha()
    if zero:
        raise LoRAFileError(f"{lora.path}: alpha is 0 in {len(zero)} module(s) (e.g. {zero[0]}), so loaders apply "
                            f"no update for them and training would not move them; start without "
                            f"network_weights or re-save the file with alpha = rank")
    out: dict[str, torch.Tensor] = {}
    for module in lora.modules.values():
        out.update(module_state(module))
    return out
