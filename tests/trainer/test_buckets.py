"""Bucket lists and assignment against kohya's algorithm."""

from __future__ import annotations

from prep.buckets import BucketManager, make_bucket_resolutions


def test_512_gives_kohyas_17_buckets():
    buckets = make_bucket_resolutions((512, 512), 256, 1024, 64)
    assert len(buckets) == 17
    assert (512, 512) in buckets and (256, 1024) in buckets and (1024, 256) in buckets
    assert (640, 384) in buckets and (384, 640) in buckets
    assert all(w * h <= 512 * 512 for w, h in buckets)
    assert all(w % 64 == 0 and h % 64 == 0 for w, h in buckets)


def test_assignment_nearest_ratio_and_cover_resize():
    manager = BucketManager((512, 512))
    square = manager.select(1000, 1000)
    assert square.bucket == (512, 512) and square.resized == (512, 512)
    wide = manager.select(1200, 800)  # ratio 1.5: 640x384 (1.667) beats 576x448 (1.286)
    assert wide.bucket == (640, 384)
    assert wide.resized == (640, 427)  # scaled to cover the bucket width; the height overhang is cropped
    tall = manager.select(300, 900)
    ratios = {b: abs(b[0] / b[1] - 1 / 3) for b in manager.predefined}
    assert tall.bucket == min(ratios, key=ratios.get)
    # The resized image covers the bucket (upscaling when needed).
    assert tall.resized[0] >= tall.bucket[0] and tall.resized[1] >= tall.bucket[1]
    small = manager.select(100, 100)
    assert small.bucket == (512, 512) and small.resized == (512, 512)


def test_no_upscale_keeps_small_images_small():
    manager = BucketManager((512, 512), no_upscale=True)
    small = manager.select(300, 200)
    assert small.resized == (300, 200)
    assert small.bucket == (256, 192)  # floored to the 64-step
    big = manager.select(2000, 1000)
    assert big.bucket[0] * big.bucket[1] <= 512 * 512
    assert big.bucket[0] % 64 == 0 and big.bucket[1] % 64 == 0
    assert big.resized[0] >= big.bucket[0] and big.resized[1] >= big.bucket[1]


def test_disabled_buckets_use_resolution():
    manager = BucketManager((64, 64), enable_bucket=False, reso_steps=8)
    assert manager.select(200, 100).bucket == (64, 64)
    assert manager.select(200, 100).resized == (128, 64)
