"""TagConfig: every option of `lorakit tag` and of the `[tagger]` table in lorakit.toml."""

from __future__ import annotations

from dataclasses import dataclass

from prep.config import option
from tagger.models import DEFAULT_CHARACTER_THRESHOLD, DEFAULT_MODEL

MODES = ("skip", "overwrite", "append", "prepend", "merge")
RATING_PLACES = ("none", "first", "last")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TagConfig:
    model: str = option(DEFAULT_MODEL, "hub repo id (downloaded once into the Hugging Face cache) or a "
                                       "folder holding model.onnx and selected_tags.csv")
    revision: str | None = option(None, "hub revision (branch, tag or commit) of the model")
    device: str = option("auto", "where inference runs: cuda when onnxruntime-gpu sees a GPU, else cpu",
                         choices=DEVICES)
    batch_size: int | None = option(None, "images per inference call (default: 8 on CPU, 32 on CUDA; a model "
                                          "with a fixed batch dimension runs at that size)")
    workers: int | None = option(None, "image decoding threads running ahead of inference (default: one per "
                                       "CPU core; 0 decodes in the main thread)")
    threads: int | None = option(None, "onnxruntime intra-op threads on CPU (default: onnxruntime's choice)")
    general_threshold: float | None = option(None, "keep a general tag when p > this (default: the model's "
                                                   "published precision=recall threshold, 0.35 if unknown)")
    character_threshold: float | None = option(None, "keep a character tag when p > this (default: the model's, "
                                                     f"{DEFAULT_CHARACTER_THRESHOLD} for WD14)")
    mcut: bool = option(False, "choose the general threshold per image with MCut (largest gap)")
    character_mcut: bool = option(False, "choose the character threshold per image with MCut (at least 0.15)")
    max_tags: int | None = option(None, "keep at most N predicted tags per image (the most confident)")
    characters: bool = option(True, "include character tags (before the general tags)")
    rating: str = option("none", "add the rating tag (general/sensitive/questionable/explicit)",
                         choices=RATING_PLACES)
    exclude: list[str] = option(default_factory=list, help="tags never written (also @file)", cli=False)
    always_first: list[str] = option(default_factory=list, help="tags moved to the front when predicted "
                                                                "(also @file)", cli=False)
    keep_underscores: bool = option(False, "keep Danbooru underscores instead of spaces (kaomoji always keep theirs)")
    escape_parens: bool = option(False, r"write ( ) as \( \) for A1111-style prompts")
    mode: str = option("skip", "what to do with an image that already has a non-empty caption: skip it, "
                               "overwrite it, append/prepend the new tags, or merge (union, existing first)",
                       choices=MODES)
    recursive: bool = option(False, "in a bare folder, tag images in sub-folders too")
    caption_extension: str = option(".txt", "caption file extension")
