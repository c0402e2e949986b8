"""Step counts as kohya: images x repeats, reg cycled to match, bucket-pure batches."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_caption, write_image
from trainer.config import TrainConfig
from trainer.data import build_training_set
from trainer.run import plan_steps


def _config(dataset: Path, **kw) -> TrainConfig:
    base = dict(dataset=dataset, resolution="64", min_bucket_reso=32, max_bucket_reso=128, bucket_reso_steps=32)
    base.update(kw)
    return TrainConfig(**base)


def _folder(root: Path, name: str, sizes: list[tuple[int, int]]) -> None:
    for i, size in enumerate(sizes):
        write_image(root / name / f"{i}.png", size)
        write_caption(root / name / f"{i}.txt", f"{name}, tag{i}")


def test_repeats_count_in_steps(tmp_path):
    _folder(tmp_path / "ds", "3_a", [(64, 64)] * 2)
    _folder(tmp_path / "ds", "1_b", [(64, 64)] * 3)
    training = build_training_set(_config(tmp_path / "ds", train_batch_size=2))
    assert training.num_images == 5
    assert training.num_train_images == 3 * 2 + 3
    assert training.batches_per_epoch() == 5  # 9 entries in one bucket, batch 2
    assert training.dataset_dirs == {"3_a": {"n_repeats": 3, "img_count": 2}, "1_b": {"n_repeats": 1, "img_count": 3}}
    assert training.tag_frequency["3_a"] == {"3_a": 2, "tag0": 1, "tag1": 1}
    per_epoch, epochs, total = plan_steps(_config(tmp_path / "ds", max_train_epochs=3), training.batches_per_epoch())
    assert (per_epoch, epochs, total) == (5, 3, 15)


def test_reg_images_cycle_to_match_and_double_steps(tmp_path):
    _folder(tmp_path / "ds", "2_a", [(64, 64)] * 3)  # 6 training entries
    _folder(tmp_path / "reg", "1_person", [(64, 64)] * 4)
    training = build_training_set(_config(tmp_path / "ds", reg_dataset=tmp_path / "reg"))
    reg = [img for img in training.images if img.is_reg]
    assert sum(img.repeats for img in reg) == 6  # 4 once, then 2 of them a second time
    assert sorted(img.repeats for img in reg) == [1, 1, 2, 2]
    assert training.batches_per_epoch() == 12  # reg doubles the steps
    assert training.num_reg_images == 4
    # More reg images than needed: the surplus is unused.
    _folder(tmp_path / "reg2", "1_person", [(64, 64)] * 9)
    training = build_training_set(_config(tmp_path / "ds", reg_dataset=tmp_path / "reg2"))
    assert sum(img.repeats for img in training.images if img.is_reg) == 6


def test_batches_never_mix_buckets_and_cover_every_entry(tmp_path):
    _folder(tmp_path / "ds", "2_a", [(64, 64), (64, 64), (192, 64), (192, 64), (192, 64), (64, 192)])
    training = build_training_set(_config(tmp_path / "ds", train_batch_size=4))
    assert len(training.buckets) == 3
    for epoch in range(3):
        batches = training.epoch_batches(epoch)
        assert len(batches) == training.batches_per_epoch() == 1 + 2 + 1
        for batch in batches:
            assert len({training.images[i].bucket for i in batch}) == 1
        counts = sorted(i for b in batches for i in b)
        assert counts == sorted(i for i in range(6) for _ in range(2))
    assert training.epoch_batches(1) == training.epoch_batches(1)  # seeded: resume sees the same order
    assert training.epoch_batches(0) != training.epoch_batches(1) or training.epoch_batches(0) != training.epoch_batches(2)


def test_bucket_info_mean_aspect_error(tmp_path):
    from prep.buckets import BucketManager

    _folder(tmp_path / "ds", "1_a", [(64, 64), (70, 50)])
    config = _config(tmp_path / "ds")
    info = build_training_set(config).bucket_info()
    manager = BucketManager(config.resolution_wh(), min_size=32, max_size=128, reso_steps=32)
    expected = (0.0 + abs(manager.select(70, 50).ar_error)) / 2
    assert expected > 0 and info["mean_img_ar_error"] == expected
