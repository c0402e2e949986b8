"""The decode pool: input order kept, failures in place, and a bounded number of images in flight."""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

import tagger.pipeline as pipeline
from tests.tagger.reference import prepare_rgb, to_model_input


def _images(folder, n):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        if i % 7 == 3:
            path.write_bytes(b"broken")
        else:
            Image.fromarray(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_order_failures_and_bounded_window(tmp_path, monkeypatch):
    paths = _images(tmp_path, 40)
    started = []
    lock = threading.Lock()
    real_load = pipeline._load

    def counting_load(index, path, side, *prepare):
        with lock:
            started.append(index)
        return real_load(index, path, side, *prepare)

    monkeypatch.setattr(pipeline, "_load", counting_load)
    window = 5
    consumed = []
    for prepared in pipeline.prepare_images(paths, 32, workers=3, window=window):
        # However slowly we consume, no more than `window` images beyond what we took are started.
        assert len(started) <= len(consumed) + window + 1
        consumed.append(prepared)
    assert [p.index for p in consumed] == list(range(40))
    assert [p.path for p in consumed] == paths
    failed = [p.index for p in consumed if p.bgr is None]
    assert failed == [i for i in range(40) if i % 7 == 3]
    assert all(p.error and "cannot read image" in p.error for p in consumed if p.bgr is None)
    with Image.open(paths[5]) as image:
        np.testing.assert_array_equal(consumed[5].bgr, prepare_rgb(image, 32)[..., ::-1])


def test_batches_pack_bgr_float_and_set_failures_aside(tmp_path):
    paths = _images(tmp_path, 10)
    out = list(pipeline.batches(pipeline.prepare_images(paths, 16, workers=0, window=1), 4, 16))
    packed = [[p.index for p in b.items] for b in out]
    assert packed == [[0, 1, 2, 4], [5, 6, 7, 8], [9]]
    assert [[p.index for p in b.failed] for b in out] == [[3], [], []]
    with Image.open(paths[9]) as image:
        np.testing.assert_array_equal(out[-1].tensor[0], to_model_input(prepare_rgb(image, 16)))
    assert out[-1].tensor.shape == (1, 16, 16, 3) and out[-1].tensor.dtype == np.float32
