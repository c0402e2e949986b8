"""Block-wise learning rates as kohya's networks/lora.py: down_lr_weight, mid_lr_weight, up_lr_weight.

SD 1.x/2.x have 12 down, 1 mid and 12 up blocks (25 weights); SDXL 9 down, 3 mid and 9 up, plus
1.0 for its first and last layers (23). A weight is a list of numbers (missing ones are 1.0) or a
preset: sine, cosine, linear, reverse_linear, zeros, optionally `+offset`. A block whose weight is
at most block_lr_zero_threshold gets no LoRA modules; the others train at unet_lr x weight.
"""

from __future__ import annotations

import math
import re

from trainer.errors import TrainError

SD_BLOCKS, SD_MID = 12, 1
SDXL_BLOCKS, SDXL_MID = 9, 3
PRESETS = ("sine", "cosine", "linear", "reverse_linear", "zeros")

_UPDOWN = re.compile(r"(up|down)_blocks_(\d+)_(resnets|upsamplers|downsamplers|attentions)_(\d+)_")


def _preset(text: str, length: int) -> list[float]:
    name, _plus, offset_text = text.partition("+")
    try:
        offset = float(offset_text) if offset_text else 0.0
    except ValueError:
        raise TrainError(f"block LR weight {text!r}: the offset after + is not a number") from None
    span = max(length - 1, 1)
    if name == "sine":
        return [math.sin(math.pi * (i / span) / 2) + offset for i in range(length)]
    if name == "cosine":
        return [math.sin(math.pi * (i / span) / 2) + offset for i in reversed(range(length))]
    if name == "linear":
        return [i / span + offset for i in range(length)]
    if name == "reverse_linear":
        return [i / span + offset for i in reversed(range(length))]
    if name == "zeros":
        return [offset] * length
    raise TrainError(f"block LR weight {text!r}: not a list of numbers nor one of {', '.join(PRESETS)}")


def parse_weights(field: str, value: str | None, length: int, presets: bool) -> list[float] | None:
    """A weight list of exactly `length` numbers (short lists filled with 1.0, as kohya)."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().strip("[]")
    if presets and text.split("+")[0].strip() in PRESETS:
        return _preset(text.replace(" ", ""), length)
    try:
        numbers = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise TrainError(f"{field} = {value!r}: give {length} comma-separated numbers"
                         + (f" or a preset ({', '.join(PRESETS)})" if presets else "")) from None
    if len(numbers) > length:
        raise TrainError(f"{field} has {len(numbers)} values; this model has {length} such blocks")
    if any(n < 0 for n in numbers):
        raise TrainError(f"{field} must not hold negative weights")
    return numbers + [1.0] * (length - len(numbers))


def block_lr_weights(config, sdxl: bool) -> list[float] | None:
    """Every UNet block's LR weight (index as `block_index`), or None when none is set."""
    blocks, mid = (SDXL_BLOCKS, SDXL_MID) if sdxl else (SD_BLOCKS, SD_MID)
    down = parse_weights("down_lr_weight", config.down_lr_weight, blocks, True)
    middle = parse_weights("mid_lr_weight", config.mid_lr_weight, mid, False)
    up = parse_weights("up_lr_weight", config.up_lr_weight, blocks, True)
    if down is None and middle is None and up is None:
        return None
    threshold = config.block_lr_zero_threshold
    weights = [w if w > threshold else 0.0 for w in (down or [1.0] * blocks) + (middle or [1.0] * mid)
               + (up or [1.0] * blocks)]
    return [1.0] + weights + [1.0] if sdxl else weights


def block_index(lora_name: str, sdxl: bool) -> int:
    """kohya's get_block_index: the UNet block a LoRA module belongs to (-1: none, e.g. text encoder)."""
    if not sdxl:
        m = _UPDOWN.search(lora_name)
        if m:
            kind, i, part, j = m[1], int(m[2]), m[3], int(m[4])
            idx = 3 * i + (2 if part in ("upsamplers", "downsamplers") else j)
            return 1 + idx if kind == "down" else SD_BLOCKS + 1 + idx
        return SD_BLOCKS if "mid_block_" in lora_name else -1
    if not lora_name.startswith("lora_unet_"):
        return -1
    name = lora_name[len("lora_unet_"):]
    if name.startswith(("time_embed_", "label_emb_")):
        return 0
    for prefix, base in (("input_blocks_", 1), ("middle_block_", 10), ("output_blocks_", 13)):
        if name.startswith(prefix):
            return base + int(name.split("_")[2])
    return 22 if name.startswith("out_") else -1


def weight_of(weights: list[float] | None, lora_name: str, sdxl: bool) -> float:
    """The LR weight of one UNet module (1.0 without block weights or outside the blocks)."""
    if weights is None:
        return 1.0
    index = block_index(lora_name, sdxl)
    # Index 0 is conv_in (input_blocks.0), which has no LoRA; kohya indexes the list directly.
    return weights[index] if 0 <= index < len(weights) else 1.0
