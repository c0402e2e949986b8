"""Run the per-image inspection: headers in this process, or full decodes across a process pool."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from prep.validation.inspect import ImageInfo, decode_chunk, header_info, init_decode_worker

HEADER_BATCH = 512  # images per progress event in header mode
MAX_DECODE_CHUNK = 64


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Inspection:
    """Per-image facts for `paths`, in order. With deep and several workers the decoding starts in
    the pool at once, so the caller can check captions meanwhile and collect `batches()` after."""

    def __init__(self, paths: list[str], *, deep: bool, workers: int | None = None) -> None:
        self.paths = paths
        self.deep = deep
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future] = []
        if not deep or not paths:
            return
        workers = max(1, min(workers or available_cores(), len(paths)))
        # Small chunks keep every core busy to the end; big enough that pickling stays negligible.
        size = max(1, min(MAX_DECODE_CHUNK, len(paths) // (workers * 8)))
        self._chunks = [paths[start:start + size] for start in range(0, len(paths), size)]
        if workers > 1:
            self._pool = ProcessPoolExecutor(max_workers=workers, initializer=init_decode_worker)
            self._futures = [self._pool.submit(decode_chunk, chunk) for chunk in self._chunks]

    def batches(self) -> Iterator[list[ImageInfo]]:
        """ImageInfo lists in path order, one batch at a time (for progress events)."""
        if not self.deep:
            for start in range(0, len(self.paths), HEADER_BATCH):
                yield [header_info(path) for path in self.paths[start:start + HEADER_BATCH]]
            return
        if not self.paths:
            return
        if self._pool is None:
            for chunk in self._chunks:
                yield _decode_here(chunk)
            return
        try:
            for future in self._futures:
                yield [ImageInfo(*values) for values in future.result()]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the pool (cancelling what has not started) when the caller stops early."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _decode_here(chunk: list[str]) -> list[ImageInfo]:
    from PIL import ImageFile

    # Only for the duration of the decode: the caller's setting is restored afterwards.
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        return [ImageInfo(*values) for values in decode_chunk(chunk)]
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
