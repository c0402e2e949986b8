"""Decoding ahead of inference: a pool of workers prepares images while the model runs on the last batch.

Memory is bounded by the window of images in flight (decoded, not yet inferred), not by the
folder's size: a new image is submitted only when one leaves the window, so a 100,000-image folder
streams. Decoding runs in threads: PIL releases the GIL while it decodes, pastes and resamples, and
threads hand back arrays without copying them between processes.

The decode threads run at the process's own priority. A heuristic that lowered them (nice +10 once
inference was the bottleneck) did not pay: benchmarks/machinery.py on 100 JPEGs with an
inference-bound model, both variants interleaved in one run (2 cores, loaded, load average
4.2-5.9), tagged at 1.6 img/s with it against 1.7 without (0.98x), and a quicker A/B on 40 gave
0.73x: a nice value is system-wide, so on a busy machine the decoders lose to every other process,
not just to inference.
"""

from __future__ import annotations

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


def prepare_images(paths: Sequence[Path], side: int, workers: int, window: int,
                   prepare: Prepare = prepare_bgr) -> Iterator[Prepared]:
    """Prepared images in input order; at most `window` are decoded ahead of the consumer.

    `prepare(image, side)` is the family's preprocessing (tagger.families), WD14's by default.
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
                pending.append(pool.submit(_load, index, path, side, prepare))
                if len(pending) >= window:
                    break
            while pending:
                prepared = pending.popleft().result()
                nxt = next(upcoming, None)
                if nxt is not None:
                    pending.append(pool.submit(_load, nxt[0], nxt[1], side, prepare))
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
