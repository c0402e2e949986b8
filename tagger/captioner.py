"""`lorakit caption`: sentence-style captions from an image-to-text model (transformers), journaled.

The model is a local folder or a hub repo id fetched into the Hugging Face cache (HF_HUB_OFFLINE and
a missing repo give one line naming it, as for the tagger). Loaded with AutoModelForImageTextToText
(BLIP, BLIP-2, GIT, Florence-2 and other models transformers supports natively), falling back to
AutoModelForCausalLM; AutoProcessor prepares the images. Images go through the model in batches, on
the GPU when there is one. What is written: `--prefix` + the sentence, placed by `--mode` (or after
the existing tags with `--append-to-tags`), through one journal operation that `lorakit undo` reverts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prep.captions import TAG_SEPARATOR, CaptionEncodingError, decode_caption_bytes, parse_caption
from prep.config import option
from prep.dataset import Dataset, Item
from prep.events import Advanced, Event, Finished, Started, Warned
from tagger.caption_writer import CaptionWriter, WriteCounts
from tagger.errors import TaggerError
from tagger.models import hub_errors, quiet_hub_logs
from tagger.preprocess import ImageLoadError, open_rgb

STAGE = "caption"
MODES = ("skip", "overwrite", "append", "prepend")
DEVICES = ("auto", "cpu", "cuda")
# Models whose generated text starts with the prompt as part of the sentence ("a photo of ..."):
# that text is kept. For chat-style models the echoed prompt is cut off.
PROMPT_IS_SENTENCE = frozenset({"blip", "blip-2", "git"})
# Task prompts of models that need one (Florence-2 answers a task token, not free text).
DEFAULT_PROMPTS = {"florence2": "<CAPTION>", "florence_2": "<CAPTION>"}


@dataclass
class CaptionConfig:
    """Every option of `lorakit caption` (and of a `[caption]` table)."""

    model: str = option("", "image-to-text model: a hub repo id (downloaded once into the Hugging Face cache) "
                            "or a folder saved with save_pretrained (BLIP, BLIP-2, GIT, Florence-2, ...)")
    revision: str | None = option(None, "hub revision (branch, tag or commit) of the model")
    prompt: str | None = option(None, "text the caption starts from (BLIP: \"a photo of\"); Florence-2 gets "
                                      "<CAPTION> by default")
    mode: str = option("skip", "an image that already has a non-empty caption: skip it, overwrite it, or "
                               "append/prepend the sentence", choices=MODES)
    prefix: str = option("", "text written before the sentence, e.g. \"photo of mayu, \" (the SD 1.x style)")
    max_length: int = option(40, "most tokens generated per caption")
    batch_size: int = option(4, "images per generate call")
    device: str = option("auto", "where the model runs: cuda when torch sees a GPU, else cpu", choices=DEVICES)
    append_to_tags: bool = option(False, "put the sentence after the caption's tags (the mixed style of many "
                                         "SDXL fine-tunes); writes even where --mode skip would not")
    recursive: bool = option(False, "in a bare folder, caption images in sub-folders too")
    caption_extension: str = option(".txt", "caption file extension")


@dataclass
class CaptionResult:
    path: str
    sentence: str
    caption: str | None = None  # what was (or would be) written; None when the file was left alone

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sentence": self.sentence, "caption": self.caption}


@dataclass
class CaptionSummary(WriteCounts):
    device: str = ""
    batches: int = 0
    results: list[CaptionResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "written": self.written, "skipped": self.skipped,
                "unchanged": self.unchanged, "failed": self.failed, "model": self.model, "device": self.device,
                "batches": self.batches, "dry_run": self.dry_run, "would_write": self.would_write,
                "results": [r.to_dict() for r in self.results], "errors": self.errors}


@dataclass
class LoadedCaptioner:
    """A processor and model ready to generate, and where they run."""

    name: str
    processor: Any
    model: Any
    device: str
    model_type: str

    def generate(self, images: list[Any], prompt: str | None, max_length: int) -> list[str]:
        """One sentence per image (whitespace folded to single spaces)."""
        import torch

        kwargs: dict[str, Any] = {"images": images, "return_tensors": "pt"}
        if prompt:
            kwargs["text"] = [prompt] * len(images)
        inputs = self.processor(**kwargs)
        inputs = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in inputs.items()}
        dtype = next(self.model.parameters()).dtype
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=max_length)
        prompt_ids = inputs.get("input_ids")
        if (prompt_ids is not None and self.model_type not in PROMPT_IS_SENTENCE
                and not self.model.config.is_encoder_decoder and output.shape[1] >= prompt_ids.shape[1]
                and bool((output[:, : prompt_ids.shape[1]] == prompt_ids).all())):
            output = output[:, prompt_ids.shape[1]:]  # a decoder-only model echoes its prompt
        texts = self.processor.batch_decode(output, skip_special_tokens=True)
        return [" ".join(text.split()) for text in texts]


def resolve_device(device: str) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise TaggerError("--device cuda: torch sees no CUDA GPU here; use --device cpu or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def model_folder(name: str, revision: str | None = None) -> Path:
    """A local model folder as given, else the hub repo's files in the Hugging Face cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if not name or "/" not in name.strip("/"):
        raise TaggerError(f"{name or '--model'}: no such model folder, and not a hub repo id (OWNER/NAME); "
                          "pass --model DIR saved with save_pretrained or a repo such as "
                          "Salesforce/blip-image-captioning-base")
    from huggingface_hub import snapshot_download

    with quiet_hub_logs(), hub_errors(
            name, revision, "its files",
            offline_hint=f"lorakit caption DATASET --model {name}), or pass --model DIR saved with save_pretrained",
            needs="an image-to-text model needs config.json and its weights"):
        return Path(snapshot_download(name, revision=revision))


def load_captioner(config: CaptionConfig) -> LoadedCaptioner:
    """Fetch, load and place the model once, before any image is read."""
    folder = model_folder(config.model, config.revision)
    if not (folder / "config.json").is_file():
        raise TaggerError(f"{folder}: no config.json; pass a folder saved with save_pretrained (model and processor)")
    device = resolve_device(config.device)
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        processor = AutoProcessor.from_pretrained(folder)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise TaggerError(f"{config.model}: cannot load the processor ({_one_line(exc)}); the folder needs the "
                          "processor's files (save it with processor.save_pretrained)") from None
    dtype = torch.float16 if device == "cuda" else torch.float32
    model = None
    problems = []
    for auto in (AutoModelForImageTextToText, AutoModelForCausalLM):
        try:
            model = auto.from_pretrained(folder, dtype=dtype)
            break
        except (ValueError, KeyError) as exc:  # this auto class does not know the architecture
            problems.append(_one_line(exc))
        except OSError as exc:
            raise TaggerError(f"{config.model}: cannot load the model weights ({_one_line(exc)})") from None
    if model is None:
        raise TaggerError(f"{config.model}: transformers has no image-to-text model for this config "
                          f"({problems[0] if problems else 'unknown architecture'})")
    model.to(device)
    model.eval()
    return LoadedCaptioner(config.model, processor, model, device, getattr(model.config, "model_type", ""))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_config(config: CaptionConfig) -> None:
    if not config.model:
        raise TaggerError("--model is required: a hub repo id or a folder saved with save_pretrained")
    if config.batch_size < 1:
        raise TaggerError(f"--batch-size {config.batch_size}: must be at least 1")
    if config.max_length < 1:
        raise TaggerError(f"--max-length {config.max_length}: must be at least 1")
    if config.mode not in MODES:
        raise TaggerError(f"--mode {config.mode}: must be one of {', '.join(MODES)}")


def _existing_text(item: Item) -> str | None:
    """The caption's text stripped ('' when absent), or None when it is not readable UTF-8."""
    try:
        return decode_caption_bytes(item.caption_path.read_bytes(), item.caption_path).strip()
    except FileNotFoundError:
        return ""
    except (CaptionEncodingError, OSError):
        return None


def compose(existing: str, sentence: str, config: CaptionConfig) -> str | None:
    """The caption text to write, or None to leave the file alone."""
    text = f"{config.prefix}{sentence}".strip()
    if not sentence:
        return None
    if config.append_to_tags:
        return f"{existing}{TAG_SEPARATOR}{text}" if existing else text
    if config.mode == "skip":
        return None if existing else text
    if config.mode == "overwrite" or not existing:
        return text
    if config.mode == "append":
        return f"{existing}{TAG_SEPARATOR}{text}"
    return f"{text}{TAG_SEPARATOR}{existing}"  # prepend


def caption_dataset(root: str | Path, config: CaptionConfig, *, dry_run: bool = False, collect: bool = False,
                    captioner: LoadedCaptioner | None = None) -> Iterator[Event]:
    """Caption the images of a dataset or bare folder; yields events, Finished(summary=CaptionSummary)."""
    started = time.perf_counter()
    _check_config(config)
    dataset = Dataset.load(root, config.caption_extension, allow_bare=True, recursive=config.recursive)
    todo: list[Item] = []
    summary = CaptionSummary(images=len(dataset), model=config.model, dry_run=dry_run)
    pending: list[Event] = []
    for item in dataset.items:
        existing = _existing_text(item)
        rel = dataset.relative(item.image)
        if existing is None:
            summary.skipped += 1
            summary.errors.append({"path": dataset.relative(item.caption_path), "error": "caption is not readable UTF-8"})
            pending += [Warned("caption is not readable UTF-8 text; image skipped", str(item.caption_path)),
                        Advanced(1, rel)]
        elif existing and config.mode == "skip" and not config.append_to_tags:
            summary.skipped += 1
            pending.append(Advanced(1, rel))
        else:
            todo.append(item)
    captioner = captioner or (load_captioner(config) if todo else None)
    summary.device = captioner.device if captioner else ""
    prompt = config.prompt if config.prompt is not None else DEFAULT_PROMPTS.get(
        captioner.model_type if captioner else "")
    yield Started(STAGE, len(dataset))
    yield from pending
    with CaptionWriter(dataset.root, _command_line(config)) as writer:
        for start in range(0, len(todo), config.batch_size):
            chunk = todo[start:start + config.batch_size]
            images, ready = [], []
            for item in chunk:
                try:
                    images.append(open_rgb(item.image))
                    ready.append(item)
                except ImageLoadError as exc:
                    summary.failed += 1
                    summary.skipped += 1
                    rel = dataset.relative(item.image)
                    summary.errors.append({"path": rel, "error": str(exc)})
                    yield Warned(f"{exc}; skipped", str(item.image))
                    yield Advanced(1, rel)
            if not ready:
                continue
            assert captioner is not None
            sentences = captioner.generate(images, prompt, config.max_length)
            summary.batches += 1
            for item, sentence in zip(ready, sentences, strict=True):
                rel = dataset.relative(item.image)
                existing = _existing_text(item)
                final = compose(existing or "", sentence, config) if existing is not None else None
                result = CaptionResult(rel, sentence)
                if final is None or final == existing:
                    summary.unchanged += 1
                    if not sentence:
                        yield Warned("the model wrote an empty caption; file not written", str(item.image))
                else:
                    result.caption = final
                    sentence_tags = parse_caption(f"{config.prefix}{sentence}")
                    writer.put(summary, item.caption_path, final,
                               {tag: (f"caption:{config.model}", None) for tag in sentence_tags})
                if collect:
                    summary.results.append(result)
                yield Advanced(1, rel)
    summary.seconds = time.perf_counter() - started
    yield Finished(summary)


def _command_line(config: CaptionConfig) -> str:
    where = " --append-to-tags" if config.append_to_tags else f" --mode {config.mode}"
    return f"caption --model {config.model}{where}"
