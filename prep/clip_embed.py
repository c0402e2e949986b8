"""CLIP image embeddings (batched, cached by file content) and cosine-similar pairs in blocks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from prep.errors import PrepError, first_line
from prep.fsio import atomic_write_bytes
from prep.phash import ImageFacts, content_digest, open_image_bytes
from prep.phash import _decode_error as decode_error  # one wording for both methods

# The CLIP model dedupe's clip method uses unless --model names another (dedupe imports it from here).
DEFAULT_CLIP_MODEL = "openai/clip-vit-base-patch32"

_SIM_CELLS = 4_000_000  # similarity-matrix cells computed at once (16 MB of float32)


class ClipModelError(PrepError):
    """The CLIP model cannot be loaded."""


@dataclass
class ClipEncoder:
    """A loaded CLIP vision tower and its image processor."""

    model: object
    processor: object
    kind: str  # "projection" (image_embeds) or "pooled" (pooler_output)
    identity: str  # what the cache key is made of
    device: str = "cpu"

    def encode(self, images: list) -> np.ndarray:
        import torch

        inputs = self.processor(images=images, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(pixel_values=inputs["pixel_values"].to(self.device))
        vectors = out.image_embeds if self.kind == "projection" else out.pooler_output
        return vectors.float().cpu().numpy()


def _local_identity(folder: Path) -> str:
    parts = [str(folder.resolve())]
    for entry in sorted(folder.iterdir()):
        if entry.is_file():
            st = entry.stat()
            parts.append(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def load_clip(model: str) -> ClipEncoder:
    """Load a CLIP vision model from a local folder or a hub repo id."""
    local = Path(model).expanduser()
    if local.is_dir():
        source = str(local)
        identity = _local_identity(local)
        try:
            config = json.loads((local / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise ClipModelError(f"{local}: no readable config.json; pass a CLIP model folder "
                                 "saved with save_pretrained") from None
    elif model.startswith(("/", ".", "~")) or model.count("/") > 1 or "\\" in model:
        raise ClipModelError(f"{model}: no such model folder; pass a local folder or a hub id "
                             f"such as {DEFAULT_CLIP_MODEL}")
    else:
        source = model
        identity = model
        config = {}
    from transformers.utils import logging as hf_logging

    # Library code never prints: keep transformers' load bars and backend notices off the terminal.
    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        from transformers import (
            AutoConfig,
            CLIPImageProcessor,
            CLIPVisionModel,
            CLIPVisionModelWithProjection,
        )

        if not config:
            loaded = AutoConfig.from_pretrained(source)
            config = {"model_type": loaded.model_type, "architectures": loaded.architectures}
        architectures = config.get("architectures") or []
        # A bare vision tower has no projection; anything else (a full CLIP model, or a vision model
        # saved with its projection) loads as the projected tower so embeddings match CLIP's space.
        pooled = (config.get("model_type") == "clip_vision_model"
                  and "CLIPVisionModelWithProjection" not in architectures)
        cls = CLIPVisionModel if pooled else CLIPVisionModelWithProjection
        net = cls.from_pretrained(source)
        processor = CLIPImageProcessor.from_pretrained(source)
    except Exception as exc:  # noqa: BLE001 - network, missing files, wrong architecture
        raise ClipModelError(f"cannot load CLIP model {model!r}: {first_line(exc)}; pass a local folder with "
                             "--model (config.json, weights and preprocessor_config.json)") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    net.to(device).eval()
    return ClipEncoder(net, processor, "pooled" if pooled else "projection", identity, device)


class EmbeddingCache:
    """Digest -> embedding for one model, kept as `.lorakit/cache/clip-<model key>.npz`."""

    def __init__(self, cache_dir: Path, identity: str) -> None:
        key = hashlib.sha1(identity.encode("utf-8")).hexdigest()[:16]
        self.path = Path(cache_dir) / f"clip-{key}.npz"
        self.entries: dict[str, np.ndarray] = {}
        self._dirty = False

    def load(self) -> EmbeddingCache:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                digests, vectors = data["digests"], data["vectors"]
        except (OSError, ValueError, KeyError):
            return self
        if vectors.ndim == 2 and len(digests) == len(vectors):
            self.entries = {str(d): v for d, v in zip(digests, vectors, strict=True)}
        return self

    def put(self, digest: str, vector: np.ndarray) -> None:
        self.entries[digest] = vector
        self._dirty = True

    def save(self) -> None:
        if not self._dirty or not self.entries:
            return
        import io

        digests = np.array(list(self.entries), dtype="<U32")
        vectors = np.stack(list(self.entries.values())).astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, digests=digests, vectors=vectors)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, buffer.getvalue())
        except OSError:
            return
        self._dirty = False


def iter_embeddings(paths: Sequence[Path], encoder: ClipEncoder, cache: EmbeddingCache, *,
                    batch_size: int = 32) -> Generator[ImageFacts, None, np.ndarray]:
    """Yield facts per path; return a unit-length embedding per path (zero rows for unreadable files)."""
    facts: list[ImageFacts] = []
    vectors: list[np.ndarray | None] = []
    pending: list[tuple[int, object]] = []

    def flush() -> None:
        if not pending:
            return
        out = encoder.encode([image for _, image in pending])
        for (index, _), vector in zip(pending, out, strict=True):
            vectors[index] = vector
            cache.put(facts[index].digest, vector)
        pending.clear()

    for path in paths:
        index = len(facts)
        item, image = _read(path, cache)
        facts.append(item)
        vectors.append(cache.entries.get(item.digest) if item.digest and not item.error else None)
        if image is not None and vectors[index] is None:
            pending.append((index, image))
            if len(pending) >= batch_size:
                flush()
        yield item
    flush()
    width = next((len(v) for v in vectors if v is not None), 1)
    matrix = np.zeros((len(paths), width), dtype=np.float32)
    for index, vector in enumerate(vectors):
        if vector is not None and len(vector) == width:
            matrix[index] = vector
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    np.divide(matrix, norms, out=matrix, where=norms > 0)
    return matrix


def _read(path: Path, cache: EmbeddingCache):
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return ImageFacts(Path(path), error=f"cannot read ({exc.strerror or exc})"), None
    digest = content_digest(data)
    try:
        image = open_image_bytes(data)
        width, height = image.size
        if digest in cache.entries:
            return ImageFacts(Path(path), digest, None, width, height, len(data)), None
        if getattr(image, "is_animated", False):
            image.seek(0)
        image = image.convert("RGB")
    except Exception as exc:  # noqa: BLE001 - any decoder failure
        return ImageFacts(Path(path), digest, None, 0, 0, len(data), error=decode_error(exc)), None
    return ImageFacts(Path(path), digest, None, width, height, len(data)), image


def cosine_pairs(unit: np.ndarray, threshold: float, *, block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) whose unit vectors have cosine similarity >= threshold, in row blocks."""
    n = len(unit)
    block = block or max(1, _SIM_CELLS // max(n, 1))
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    valid = np.linalg.norm(unit, axis=1) > 0
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        sims = unit[lo:hi] @ unit[lo:].T
        r, c = np.nonzero(sims >= threshold)
        i, j = r + lo, c + lo
        keep = (i < j) & valid[i] & valid[j]
        found_i.append(i[keep].astype(np.int64))
        found_j.append(j[keep].astype(np.int64))
    if not found_i:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(found_i), np.concatenate(found_j)
