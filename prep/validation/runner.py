"""Run the per-image inspection: headers here, full decodes in a process pool while captions are checked."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from prep.cores import usable_cores
from prep.validation.inspect import ImageInfo, decode_chunk, header_info, init_decode_worker

MAX_CHUNK = 64  # images per pool task when decoding
# With fewer images, starting a pool costs more than it saves (unless workers are asked for).
POOL_MIN_IMAGES = 48
HEADER_CHUNK = 512  # images per progress event when reading headers


class Inspection:
    """Per-image facts for `paths`, in order: headers (in this process: a pool costs more than it
    saves when reading a few KB per file), or full decodes with deep, in a pool of `workers`.

    The pool starts on construction, so the caller can check captions meanwhile on its own core
    and collect `batches()` after.
    """

    def __init__(self, paths: list[str], *, deep: bool, workers: int | None = None) -> None:
        self.paths = paths
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future] = []
        self.deep = deep
        if workers is None:
            workers = usable_cores() if len(paths) >= POOL_MIN_IMAGES else 1
        workers = max(1, min(workers, len(paths) or 1)) if deep else 1
        # Small chunks keep every core busy to the end; big enough that pickling stays negligible.
        size = max(1, min(MAX_CHUNK, len(paths) // (workers * 8))) if deep else HEADER_CHUNK
        self._chunks = [paths[start:start + size] for start in range(0, len(paths), size)]
        if workers > 1:
            try:
                self._pool = ProcessPoolExecutor(max_workers=workers, initializer=init_decode_worker,
                                                 mp_context=_pool_context())
                self._futures = [self._pool.submit(decode_chunk, chunk) for chunk in self._chunks]
            except Exception:  # noqa: BLE001 - no pool here (no semaphores, no fork): work in-process
                self.close()
                self._futures = []

    def batches(self) -> Iterator[list[ImageInfo]]:
        """ImageInfo lists in path order, one chunk at a time (for progress events)."""
        if self._pool is None:
            for chunk in self._chunks:
                yield _decode_here(chunk) if self.deep else [header_info(path) for path in chunk]
            return
        try:
            for index, future in enumerate(self._futures):
                try:
                    values = future.result()
                except Exception:  # noqa: BLE001 - a broken pool (a worker killed, OOM): finish here
                    self.close()
                    for chunk in self._chunks[index:]:
                        yield _decode_here(chunk)
                    return
                yield [ImageInfo(*item) for item in values]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the pool (cancelling what has not started) when the caller stops early."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _pool_context() -> multiprocessing.context.BaseContext | None:
    """The platform's default, except fork from a threaded process (the TUI's workers): a lock held
    by another thread at fork time would stay locked in the child forever."""
    if threading.active_count() > 1 and "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return None


def _decode_here(chunk: list[str]) -> list[ImageInfo]:
    from PIL import ImageFile

    # As in a pool worker, but only for the duration: the caller's setting is restored afterwards.
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        return [ImageInfo(*values) for values in decode_chunk(chunk)]
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
