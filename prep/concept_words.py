"""The concept-word finder: short, rare, single-CLIP-token words to use as a LoRA's trigger.

The guide's procedure: pick a short word the CLIP tokenizer reads as ONE token and that means
little, put it first in every caption instead of the character's full name, keep_tokens = 1.
Candidates are the vocabulary's lowercase a-z words up to a length, minus words of the dataset's
tags, common English words and common Danbooru tags, ranked by token id (a higher BPE id was merged
later, from rarer text). With a diffusers model, the top candidates are re-ranked by how little they
move the text encoder's output (`a photo of WORD` vs `a photo of`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from prep import clip_tokens
from prep.caption_set import read_captions, scan_dataset
from prep.captions import unescape_parens
from prep.dataset import DEFAULT_CAPTION_EXTENSION, Dataset
from prep.errors import PrepError

_WORD = re.compile(r"[a-z]+")
_CANDIDATE = re.compile(r"^[a-z]+$")
BASE_PROMPT = "a photo of"
_WD14_RATING_CATEGORY = "9"


@dataclass(frozen=True)
class Candidate:
    word: str
    token_id: int
    distance: float | None = None  # with a model: how far the word moves the text encoding

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"word": self.word, "token_id": self.token_id}
        if self.distance is not None:
            out["distance"] = self.distance
        return out


@dataclass(frozen=True)
class WordCheck:
    word: str
    tokens: list[int]
    in_dataset: bool
    common_english: bool
    danbooru: bool

    @property
    def single(self) -> bool:
        return len(self.tokens) == 1

    def to_dict(self) -> dict[str, object]:
        return {"word": self.word, "tokens": self.tokens, "single": self.single, "in_dataset": self.in_dataset,
                "common_english": self.common_english, "danbooru_tag": self.danbooru}


def words_of(tag: str) -> set[str]:
    """A tag's own lowercase form and each a-z word inside it (`long_hair` -> long hair, long, hair)."""
    text = unescape_parens(tag).replace("_", " ").lower().strip()
    return {text, *_WORD.findall(text)}


@lru_cache(maxsize=1)
def common_english_words() -> frozenset[str]:
    """A few thousand common English words (package data, see prep/data/NOTICE)."""
    text = resources.files("prep").joinpath("data/english_words.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


@lru_cache(maxsize=1)
def danbooru_words() -> frozenset[str]:
    """The tags of the vendored WD14 list (the ~10k most common Danbooru tags) and the words in them."""
    text = resources.files("prep").joinpath("data/danbooru_tags.csv").read_text(encoding="utf-8")
    words: set[str] = set()
    for row in csv.DictReader(io.StringIO(text)):
        if row.get("category") != _WD14_RATING_CATEGORY:
            words |= words_of(row["name"])
    return frozenset(words)


def dataset_words(dataset: Dataset | str | Path, caption_extension: str = DEFAULT_CAPTION_EXTENSION) -> set[str]:
    """Every tag (lowercased) of the dataset's captions, and every word inside one (concept names too)."""
    scan = scan_dataset(dataset, caption_extension)
    tags: set[str] = set()
    for record in read_captions(scan.entries):
        tags.update(record.effective_tags())
    for concept in scan.concepts:
        tags.add(concept.name)
    words: set[str] = set()
    for tag in tags:
        words |= words_of(tag)
    return words


@lru_cache(maxsize=4)
def single_token_words(max_length: int) -> tuple[tuple[str, int], ...]:
    """(word, token id) for each lowercase a-z word of at most max_length that CLIP reads as one token."""
    found = []
    for entry, token_id in clip_tokens.vocabulary().items():
        if not entry.endswith("</w>"):
            continue
        word = entry[:-4]
        if len(word) <= max_length and _CANDIDATE.match(word) and clip_tokens.encode(word) == [token_id]:
            found.append((word, token_id))
    return tuple(found)


def rank_key(candidate: Candidate) -> tuple[int, int, str]:
    """Rarest first: higher token id, then shorter, then alphabetical."""
    return (-candidate.token_id, len(candidate.word), candidate.word)


def find_candidates(*, max_length: int = 4, exclude: Iterable[str] = (), top: int | None = None,
                    skip_common: bool = True) -> list[Candidate]:
    """Single-token words not in `exclude`, common English or common Danbooru tags, rarest first."""
    if max_length < 1:
        raise PrepError(f"--max-length {max_length}: must be 1 or more")
    excluded = set(exclude)
    if skip_common:
        excluded |= common_english_words() | danbooru_words()
    found = [Candidate(w, i) for w, i in single_token_words(max_length) if w not in excluded]
    found.sort(key=rank_key)
    return found if top is None else found[:top]


def check_word(word: str, in_dataset_words: Iterable[str] = ()) -> WordCheck:
    """How CLIP tokenizes `word`, and whether it collides with the dataset's tags or common words."""
    text = word.strip()
    if not text:
        raise PrepError("--check needs a word")
    lowered = text.lower()
    words = set(in_dataset_words)
    return WordCheck(text, clip_tokens.encode(text), lowered in words, lowered in common_english_words(),
                     lowered in danbooru_words())


def score_with_model(model_path: str | Path, words: Sequence[str], *, batch_size: int = 32) -> list[float]:
    """Per word, the L2 distance between the text encodings of `a photo of WORD` and `a photo of`.

    Uses the model folder's own tokenizer and CLIP text encoder (diffusers layout: tokenizer/,
    text_encoder/) on the full padded 77-token sequence the UNet is conditioned on.
    """
    root = Path(model_path)
    tokenizer_dir, encoder_dir = root / "tokenizer", root / "text_encoder"
    for folder in (tokenizer_dir, encoder_dir):
        if not folder.is_dir():
            raise PrepError(f"{root}: no {folder.name}/ folder; pass a diffusers model folder "
                            "(with tokenizer/ and text_encoder/)")
    import torch
    from transformers import CLIPTextModel, CLIPTokenizer

    try:
        tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir))
        model = CLIPTextModel.from_pretrained(str(encoder_dir))
    except (OSError, ValueError) as exc:
        raise PrepError(f"{root}: cannot load the tokenizer or text encoder ({exc})") from None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device).eval()
    length = min(int(tokenizer.model_max_length), model.config.max_position_embeddings, 77)

    def encode(texts: list[str]):
        ids = tokenizer(texts, padding="max_length", max_length=length, truncation=True,
                        return_tensors="pt").input_ids.to(device)
        with torch.no_grad():
            return model(input_ids=ids).last_hidden_state.float()

    base = encode([BASE_PROMPT])[0]
    distances: list[float] = []
    for start in range(0, len(words), batch_size):
        chunk = [f"{BASE_PROMPT} {w}" for w in words[start:start + batch_size]]
        hidden = encode(chunk)
        distances.extend(torch.linalg.vector_norm(hidden - base, dim=(1, 2)).tolist())
    return distances


def rank_by_model(model_path: str | Path, candidates: Sequence[Candidate]) -> list[Candidate]:
    """Re-rank candidates by distance (smaller = emptier prior), ties by the rarity order."""
    distances = score_with_model(model_path, [c.word for c in candidates])
    scored = [Candidate(c.word, c.token_id, d) for c, d in zip(candidates, distances, strict=True)]
    return sorted(scored, key=lambda c: (c.distance, rank_key(c)))
