"""The last step's sample images are rendered once (issue 14 #21), not again by the final sampling."""

from __future__ import annotations

from tests.trainer.conftest import make_train_dataset, run_training, tiny_config


def test_last_step_samples_are_rendered_once(tiny_sd1, tmp_path):
    dataset = make_train_dataset(tmp_path / "ds", images=2)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("chara --w 64 --h 64 --s 1 --d 3\n", encoding="utf-8")
    config = tiny_config(tiny_sd1, dataset, tmp_path / "out", sample_prompts=prompts, sample_every_n_steps=1)
    _path, events = run_training(config)
    steps = [e["step"] for e in events if e["event"] == "sample"]
    assert steps == [1, 2]  # max_train_steps 2, one prompt: once per step
    assert len(list((tmp_path / "out" / "sample").glob("*.png"))) == 2
