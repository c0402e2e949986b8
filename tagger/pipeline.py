"""Decoding ahead of inference: a pool of workers prepares images while the model runs on the last batch.

Memory is bounded by the window of images in flight (decoded, not yet inferred), not by the
folder's size: a new image is submitted only when one leaves the window, so a 100,000-image folder
streams. Decoding runs in threads: PIL releases the GIL while it decodes, pastes and resamples, and
threads hand back arrays without copying them between processes.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prep.cores import usable_cores
from tagger.preprocess import ImageLoadError, load_prepared, prepare_bgr

Prepare = Callable[[Any, int], np.ndarray]


@dataclass
class Prepared:
    """One image ready for the model (uint8 BGR) or the reason it could not be read (error)."""

    index: int
    path: Path
    bgr: np.ndarray | None
    error: str | None = None


def default_workers() -> int:
    return max(1, min(usable_cores(), 16))


def _load(index: int, path: Path, side: int, prepare: Prepare = prepare_bgr) -> Prepared:
    try:
        return Prepared(index, path, load_prepared(path, side, prepare))
    except ImageLoadError as exc:
        return Prepared(index, path, None, str(exc))


DECODE_NICE = 10
_thread_state = threading.local()


def _lower_priority() -> None:
    """Make this decoding thread yield to inference threads (Linux: a thread has its own nice value)."""
    if getattr(_thread_state, "lowered", False):
        return
    _thread_state.lowered = True
    if not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + DECODE_NICE)
    except OSError:
        pass


def _load_in_worker(index: int, path: Path, side: int, yield_cpu: threading.Event | None,
                    prepare: Prepare = prepare_bgr) -> Prepared:
    # When inference is the bottleneck, decoding needs only a sliver of CPU; at a lower priority it
    # fills the gaps instead of pre-empting the inference threads (whose parallel loops wait for
    # their slowest thread).
    if yield_cpu is not None and yield_cpu.is_set():
        _lower_priority()
    return _load(index, path, side, prepare)


def prepare_images(paths: Sequence[Path], side: int, workers: int, window: int,
                   yield_cpu: threading.Event | None = None, prepare: Prepare = prepare_bgr) -> Iterator[Prepared]:
    """Prepared images in input order; at most `window` are decoded ahead of the consumer.

    `prepare(image, side)` is the family's preprocessing (tagger.families), WD14's by default.

    Setting `yield_cpu` lowers the decoding threads' priority from their next image on.
    """
    if workers <= 0:
        for index, path in enumerate(paths):
            yield _load(index, path, side, prepare)
        return
    window = max(window, workers)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lorakit-decode") as pool:
        pending: deque[Future[Prepared]] = deque()
        upcoming = iter(enumerate(paths))
        try:
            for index, path in upcoming:
                pending.append(pool.submit(_load_in_worker, index, path, side, yield_cpu, prepare))
                if len(pending) >= window:
                    break
            while pending:
                prepared = pending.popleft().result()
                nxt = next(upcoming, None)
                if nxt is not None:
                    pending.append(pool.submit(_load_in_worker, nxt[0], nxt[1], side, yield_cpu, prepare))
                yield prepared
        finally:
            for future in pending:
                future.cancel()


@dataclass
class Batch:
    """Readable images packed into one float32 BGR tensor, plus the ones that failed on the way."""

    items: list[Prepared]
    tensor: np.ndarray
    failed: list[Prepared]


def batches(prepared: Iterator[Prepared], batch_size: int, side: int) -> Iterator[Batch]:
    """Group prepared images into model batches (float32 BGR NHWC), keeping failures aside in order."""
    buffer = np.empty((batch_size, side, side, 3), dtype=np.float32)
    items: list[Prepared] = []
    failed: list[Prepared] = []
    for item in prepared:
        if item.bgr is None:
            failed.append(item)
            continue
        buffer[len(items)] = item.bgr  # the exact uint8 -> float32 cast, contiguous
        item.bgr = None  # the tensor holds it now; let the array go
        items.append(item)
        if len(items) == batch_size:
            yield Batch(items, buffer, failed)
            # The consumer is done with the tensor when it asks for the next batch: reuse it.
            items, failed = [], []
    if items or failed:
        yield Batch(items, buffer[: len(items)], failed)
