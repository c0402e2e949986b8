"""Run the per-image inspection across a process pool, while the caller checks captions."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from prep.validation.inspect import ImageInfo, decode_chunk, header_chunk, init_decode_worker

MAX_CHUNK = 64  # images per task when decoding
MAX_HEADER_CHUNK = 512
# Below this many images a pool costs more to start than header reading takes.
POOL_MIN_HEADERS = 2000


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Inspection:
    """Per-image facts for `paths`, in order: headers, or full decodes with deep.

    With several workers the pool starts on construction, so the caller can check captions on its
    own core meanwhile and collect `batches()` after.
    """

    def __init__(self, paths: list[str], *, deep: bool, workers: int | None = None) -> None:
        self.paths = paths
        self._pool: ProcessPoolExecutor | None = None
        self._futures: list[Future] = []
        self._work: Callable[[list[str]], list[tuple]] = decode_chunk if deep else header_chunk
        workers = max(1, min(workers or available_cores(), len(paths) or 1))
        if not deep and workers > 1 and len(paths) < POOL_MIN_HEADERS:
            workers = 1
        # Small chunks keep every core busy to the end; big enough that pickling stays negligible.
        most = MAX_CHUNK if deep else MAX_HEADER_CHUNK
        size = max(1, min(most, len(paths) // (workers * 8)))
        self._chunks = [paths[start:start + size] for start in range(0, len(paths), size)]
        if workers > 1:
            try:
                self._pool = ProcessPoolExecutor(max_workers=workers, initializer=init_decode_worker,
                                                 mp_context=_pool_context())
                self._futures = [self._pool.submit(self._work, chunk) for chunk in self._chunks]
            except Exception:  # noqa: BLE001 - no pool here (no semaphores, no fork): work in-process
                self.close()
                self._futures = []

    def batches(self) -> Iterator[list[ImageInfo]]:
        """ImageInfo lists in path order, one chunk at a time (for progress events)."""
        if self._pool is None:
            for chunk in self._chunks:
                yield _run_here(self._work, chunk)
            return
        try:
            for index, future in enumerate(self._futures):
                try:
                    values = future.result()
                except Exception:  # noqa: BLE001 - a broken pool (a worker killed, OOM): finish here
                    self.close()
                    for chunk in self._chunks[index:]:
                        yield _run_here(self._work, chunk)
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


def _run_here(work: Callable[[list[str]], list[tuple]], chunk: list[str]) -> list[ImageInfo]:
    from PIL import ImageFile

    # As in a pool worker, but only for the duration: the caller's setting is restored afterwards.
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        return [ImageInfo(*values) for values in work(chunk)]
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
