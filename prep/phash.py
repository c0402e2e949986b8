"""64-bit perceptual hashes of image files (imagehash's pHash), on every core, cached by content.

Each file is read once: its bytes give a content digest (the cache key) and, when the digest is not
cached, a thumbnail-sized decode gives the hash. The cache lives in `DATASET/.lorakit/cache/` so a
second run over an unchanged dataset decodes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from prep.cores import usable_cores
from prep.fsio import atomic_write_bytes

HASH_VERSION = "phash-v1"  # bump when the hashing recipe changes, so old cache entries are ignored
_POOL_MIN_ITEMS = 48  # below this, starting processes costs more than it saves
_CHUNK = 32


@dataclass(frozen=True)
class ImageFacts:
    """What dedupe needs to know about one image file."""

    path: Path
    digest: str = ""
    hash: int | None = None  # None when the file could not be decoded
    width: int = 0
    height: int = 0
    size: int = 0  # bytes
    error: str = ""

    @property
    def pixels(self) -> int:
        return self.width * self.height


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def open_image_bytes(data: bytes):
    """Open image bytes (prep.image_io), refusing images over Pillow's warning limit (hostile input)."""
    from PIL import Image

    from prep.image_io import open_image

    return open_image(data, max_pixels=Image.MAX_IMAGE_PIXELS or None)


def phash_of_image(image) -> int:
    """The 64-bit pHash of an open Pillow image, decoding only as much as it needs."""
    import imagehash
    import numpy as np

    image.draft("L", (64, 64))  # JPEG: decode at 1/2..1/8 scale, grey only
    if getattr(image, "is_animated", False):
        image.seek(0)
    grey = image.convert("L")
    factor = min(grey.size) // 64
    if factor > 1:  # a fast box reduction first, so Lanczos to 32x32 only sees a small image
        grey = grey.reduce(factor)
    bits = imagehash.phash(grey).hash.flatten()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


# The cache a worker consults; set once per worker process by _init_worker.
_worker_cache: dict[str, list[int]] = {}


def _init_worker(cache: dict[str, list[int]]) -> None:
    global _worker_cache
    _worker_cache = cache


def facts_of_file(path: Path, cache: dict[str, list[int]] | None = None) -> ImageFacts:
    """Read one file, digest it, and hash it unless the cache already knows its digest."""
    cache = _worker_cache if cache is None else cache
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return ImageFacts(Path(path), error=f"cannot read ({exc.strerror or exc})")
    digest = content_digest(data)
    known = cache.get(digest)
    if known is not None:
        value, width, height = known
        return ImageFacts(Path(path), digest, int(value), int(width), int(height), len(data))
    try:
        image = open_image_bytes(data)
        width, height = image.size
        value = phash_of_image(image)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means "not an image we can use"
        return ImageFacts(Path(path), digest, None, 0, 0, len(data), error=_decode_error(exc))
    return ImageFacts(Path(path), digest, value, width, height, len(data))


def _facts_of_path_str(path: str) -> ImageFacts:
    return facts_of_file(Path(path))


def _decode_error(exc: Exception) -> str:
    from prep.image_io import ImageError, ImageTooLarge

    if isinstance(exc, ImageTooLarge):
        return "too many pixels to decode safely (Pillow's decompression-bomb limit)"
    if isinstance(exc, ImageError):
        return f"cannot decode as an image ({exc.reason})"
    return f"cannot decode as an image ({exc})"


def iter_file_facts(paths: Sequence[Path], cache: dict[str, list[int]], *,
                    workers: int | None = None) -> Iterator[ImageFacts]:
    """Facts for each path, in order, from a process pool when there is enough work."""
    workers = workers or usable_cores()
    if workers <= 1 or len(paths) < _POOL_MIN_ITEMS:
        for path in paths:
            yield facts_of_file(path, cache)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(cache,)) as pool:
        yield from pool.map(_facts_of_path_str, [str(p) for p in paths], chunksize=_CHUNK)


class HashCache:
    """Digest -> [hash, width, height], kept as JSON in `.lorakit/cache/<version>.json`."""

    def __init__(self, cache_dir: Path, version: str = HASH_VERSION) -> None:
        self.path = Path(cache_dir) / f"{version}.json"
        self.entries: dict[str, list[int]] = {}
        self._dirty = False

    def load(self) -> HashCache:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return self  # absent or damaged: start afresh, it is only a cache
        if isinstance(data, dict):
            self.entries = {k: v for k, v in data.items()
                            if isinstance(k, str) and isinstance(v, list) and len(v) == 3
                            and all(isinstance(x, int) for x in v)}
        return self

    def update(self, facts: Sequence[ImageFacts]) -> None:
        for item in facts:
            if item.hash is not None and item.digest and item.digest not in self.entries:
                self.entries[item.digest] = [item.hash, item.width, item.height]
                self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.path, json.dumps(self.entries, separators=(",", ":")).encode())
        except OSError:
            return  # a read-only dataset still dedupes, just without a cache
        self._dirty = False
