"""CLIP token counts (the tokenizer Stable Diffusion 1.x/2.x/XL share), with no model download."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

MAX_TOKEN_LENGTHS = (75, 150, 225)


@lru_cache(maxsize=1)
def _tokenizer():
    import instant_clip_tokenizer

    return instant_clip_tokenizer.Tokenizer()


def encode(text: str) -> list[int]:
    """Token ids of text, without the start/end tokens."""
    return list(_tokenizer().encode(text))


def count_tokens(text: str) -> int:
    """How many CLIP tokens text takes, excluding start/end tokens."""
    return len(_tokenizer().encode(text))


def recommended_max_token_length(tokens: int) -> int:
    """The smallest of 75/150/225 that fits `tokens` (225 when nothing fits)."""
    for length in MAX_TOKEN_LENGTHS:
        if tokens <= length:
            return length
    return MAX_TOKEN_LENGTHS[-1]


@lru_cache(maxsize=1)
def vocabulary() -> dict[str, int]:
    """The BPE vocabulary (`word</w>` -> id) vendored from the SD tokenizer."""
    data = resources.files("prep").joinpath("data/clip/vocab.json").read_text(encoding="utf-8")
    return json.loads(data)


def vocab_files() -> tuple[str, str]:
    """Paths of the vendored vocab.json and merges.txt (for transformers' CLIPTokenizer)."""
    base = resources.files("prep").joinpath("data/clip")
    return str(base.joinpath("vocab.json")), str(base.joinpath("merges.txt"))
