"""Run the per-image inspection: headers in this process, or full decodes across a process pool."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

from prep.validation.inspect import ImageInfo, decode_chunk, header_info, init_decode_worker

HEADER_BATCH = 512  # images per progress event in header mode
MAX_DECODE_CHUNK = 64


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def inspect_images(paths: list[str], *, deep: bool, workers: int | None = None) -> Iterator[list[ImageInfo]]:
    """Yield ImageInfo lists, in the order of `paths`, a batch at a time (for progress)."""
    if not deep:
        for start in range(0, len(paths), HEADER_BATCH):
            yield [header_info(path) for path in paths[start:start + HEADER_BATCH]]
        return
    workers = workers or available_cores()
    workers = max(1, min(workers, len(paths)))
    # Small chunks keep both cores busy to the end; big enough that pickling stays negligible.
    chunk = max(1, min(MAX_DECODE_CHUNK, len(paths) // (workers * 8) or 1))
    chunks = [paths[start:start + chunk] for start in range(0, len(paths), chunk)]
    if workers == 1:
        decode = _in_process_decoder()
        for part in chunks:
            yield decode(part)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=init_decode_worker) as pool:
        # map() keeps the order and still yields each chunk as soon as it (and those before) finish.
        for results in pool.map(decode_chunk, chunks):
            yield [ImageInfo(*values) for values in results]


def _in_process_decoder():
    from PIL import ImageFile

    def decode(part: list[str]) -> list[ImageInfo]:
        # Only for the duration of the decode: the caller's setting is restored afterwards.
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            return [ImageInfo(*values) for values in decode_chunk(part)]
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous

    return decode
