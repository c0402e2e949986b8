"""`lorakit caption` with a tiny random BLIP built from configs: batching, modes, prefix, undo, offline.

The text of a random model is noise, so the tests check its plumbing (which file gets which
sentence, where it goes, how many generate calls) against the sentences the run reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import write_image
from tui.cli import main

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "a", "photo", "of", "man", "fishing", "beard",
         "cat", "dog", "red", "blue", "the", "with", "sky", "tree"]


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory) -> Path:
    """A BLIP captioner with a 1-layer vision and text model and a 20-word tokenizer (save_pretrained)."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessorPil,
        BlipProcessor,
    )

    folder = tmp_path_factory.mktemp("blip")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n")
    tokenizer = BertTokenizer(str(vocab), bos_token="[DEC]")
    vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=32,
                  patch_size=16, projection_dim=16)
    text = dict(vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=64, encoder_hidden_size=16, bos_token_id=5,
                pad_token_id=0, sep_token_id=3, eos_token_id=3)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(BlipConfig(vision_config=vision, text_config=text, projection_dim=16))
    processor = BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": 32, "width": 32}),
                              tokenizer=tokenizer)
    out = folder / "tiny-blip"
    model.save_pretrained(out)
    processor.save_pretrained(out)
    vocab.unlink()
    return out


def dataset(root: Path, count: int = 3) -> Path:
    colors = [(255, 0, 0), (0, 0, 255), (0, 200, 0), (250, 250, 0), (20, 20, 20)]
    for i in range(count):
        write_image(root / "5_mayu" / f"img{i}.png", (40 + 8 * i, 36), colors[i % len(colors)])
    return root


def run_json(capsys, *args) -> dict:
    code = main(["caption", *map(str, args), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def caption_of(root: Path, i: int) -> str:
    return (root / "5_mayu" / f"img{i}.txt").read_text(encoding="utf-8")


def test_batches_and_prefix(tmp_path, blip_dir, capsys):
    root = dataset(tmp_path / "ds", 5)
    out = run_json(capsys, root, "--model", blip_dir, "--batch-size", "2", "--max-length", "6",
                   "--prefix", "photo of mayu, ", "--device", "cpu")
    assert out["images"] == 5 and out["written"] == 5 and out["batches"] == 3 and out["device"] == "cpu"
    for result in out["results"]:
        sentence = result["sentence"]
        assert sentence and "\n" not in sentence
        assert result["caption"] == f"photo of mayu, {sentence}"
        i = int(Path(result["path"]).stem[3:])
        assert caption_of(root, i) == result["caption"]
    # Batching does not change what a model writes for an image.
    again = run_json(capsys, root, "--model", blip_dir, "--batch-size", "5", "--max-length", "6", "--mode",
                     "overwrite", "--prefix", "photo of mayu, ", "--dry-run")
    assert again["batches"] == 1 and again["written"] == 0 and again["would_write"] == 0  # same text: unchanged
    assert [r["sentence"] for r in again["results"]] == [r["sentence"] for r in out["results"]]


def test_modes_and_append_to_tags(tmp_path, blip_dir, capsys):
    root = dataset(tmp_path / "ds", 2)
    tags = "1girl, smile"
    (root / "5_mayu" / "img0.txt").write_text(tags, encoding="utf-8")
    out = run_json(capsys, root, "--model", blip_dir, "--max-length", "5")  # skip: only img1 is captioned
    assert out["written"] == 1 and out["skipped"] == 1
    assert caption_of(root, 0) == tags
    sentence = {Path(r["path"]).name: r["sentence"] for r in out["results"]}["img1.png"]
    assert caption_of(root, 1) == sentence

    def sentence0(result: dict) -> str:
        return {Path(r["path"]).name: r["sentence"] for r in result["results"]}["img0.png"]

    out = run_json(capsys, root, "--model", blip_dir, "--max-length", "5", "--append-to-tags")
    s0 = sentence0(out)
    assert caption_of(root, 0) == f"{tags}, {s0}"
    from prep.provenance import read_store

    store = read_store(root)  # the sentence's source is the captioner; the existing tags are the user's
    sources = store.sources("5_mayu/img0.png", (root / "5_mayu" / "img0.txt").read_bytes())
    store.close()
    assert sources["1girl"].source == "user" and sources[s0.split(",")[0].strip()].source == f"caption:{blip_dir}"
    (root / "5_mayu" / "img0.txt").write_text(tags, encoding="utf-8")
    out = run_json(capsys, root, "--model", blip_dir, "--max-length", "5", "--mode", "prepend")
    assert caption_of(root, 0) == f"{sentence0(out)}, {tags}"
    (root / "5_mayu" / "img0.txt").write_text(tags, encoding="utf-8")
    run_json(capsys, root, "--model", blip_dir, "--max-length", "5", "--mode", "append")
    assert caption_of(root, 0) == f"{tags}, {s0}"
    run_json(capsys, root, "--model", blip_dir, "--max-length", "5", "--mode", "overwrite")
    assert caption_of(root, 0) == s0


def test_prompt_and_undo(tmp_path, blip_dir, capsys):
    root = dataset(tmp_path / "ds", 2)
    (root / "5_mayu" / "img0.txt").write_bytes(b"old, tags\n")
    out = run_json(capsys, root, "--model", blip_dir, "--max-length", "4", "--mode", "overwrite",
                   "--prompt", "a photo of")
    assert out["written"] == 2
    # BLIP continues the prompt: the sentence starts with it.
    assert all(r["sentence"].startswith("a photo of") for r in out["results"])
    assert main(["undo", str(root)]) == 0
    capsys.readouterr()
    assert (root / "5_mayu" / "img0.txt").read_bytes() == b"old, tags\n"
    assert not (root / "5_mayu" / "img1.txt").exists()


def test_dry_run_writes_nothing(tmp_path, blip_dir, capsys):
    root = dataset(tmp_path / "ds", 2)
    code = main(["caption", str(root), "--model", str(blip_dir), "--max-length", "4", "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0 and "2 would be written" in out
    assert not list((root / "5_mayu").glob("*.txt"))


def test_offline_missing_repo_is_one_line(tmp_path, run_cli):
    root = dataset(tmp_path / "ds", 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_OFFLINE="1", HF_ENDPOINT="http://127.0.0.1:9")
    r = run_cli("caption", root, "--model", "test-org/tiny-captioner", env=env)
    assert r.code == 1
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert "test-org/tiny-captioner" in r.err and "Traceback" not in r.err
    assert not list((root / "5_mayu").glob("*.txt"))


def test_bad_model_folder_and_options(tmp_path, capsys):
    root = dataset(tmp_path / "ds", 1)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    assert main(["caption", str(root), "--model", str(empty)]) == 1
    assert "config.json" in capsys.readouterr().err
    assert main(["caption", str(root), "--model", str(empty), "--batch-size", "0"]) == 1
    assert "--batch-size" in capsys.readouterr().err
