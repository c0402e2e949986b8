"""The concept-word finder: single-token candidates, exclusions, --check, and --model scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prep import clip_tokens
from prep.concept_words import (
    check_word,
    common_english_words,
    danbooru_words,
    dataset_words,
    find_candidates,
    single_token_words,
)
from tui.cli import main


def test_known_single_tokens():
    assert check_word("sks").tokens == [48136] and check_word("sks").single
    assert check_word("ohwx").tokens == [47993]
    assert not check_word("zwx").single and len(check_word("mksks").tokens) == 3


def test_single_token_words_come_from_the_vocabulary():
    words = single_token_words(4)
    assert len(words) == 9248  # lowercase a-z words of <= 4 letters that are one CLIP token
    by_length = {n: sum(1 for w, _ in words if len(w) == n) for n in range(1, 5)}
    assert by_length == {1: 26, 2: 619, 3: 3531, 4: 5072}
    for word, token_id in words[::97]:
        assert clip_tokens.encode(word) == [token_id]


def test_candidates_exclude_common_words_and_rank_by_id():
    candidates = find_candidates(max_length=4)
    words = [c.word for c in candidates]
    assert 0 < len(candidates) < 9248
    assert not set(words) & common_english_words() and not set(words) & danbooru_words()
    assert {"the", "red", "hair", "girl", "cat", "hat", "sky"} & set(words) == set()
    ids = [c.token_id for c in candidates]
    assert ids == sorted(ids, reverse=True)
    assert all(len(w) <= 4 and w.isalpha() and w.islower() for w in words)
    assert words[:3] == ["olis", "lun", "hta"]  # the highest ids among the survivors
    assert [c.word for c in find_candidates(max_length=2, top=5)] == [w for w in words if len(w) <= 2][:5]


def test_word_lists_are_real():
    english = common_english_words()
    assert len(english) > 3000 and {"the", "and", "water", "house"} <= english
    danbooru = danbooru_words()
    assert {"1girl", "long hair", "long", "hair", "hatsune miku", "miku"} <= danbooru
    assert "general" not in danbooru  # WD14 rating labels are not tags


def test_dataset_tags_and_their_words_are_excluded(tmp_path: Path):
    root = tmp_path / "ds"
    (root / "5_lun").mkdir(parents=True)
    (root / "5_lun" / "a.png").write_bytes(b"")
    (root / "5_lun" / "a.txt").write_text("olis_thing, hta")
    (root / "5_lun" / "b.png").write_bytes(b"")  # no caption: the concept name counts
    words = dataset_words(root)
    assert {"olis thing", "olis", "thing", "hta", "lun"} <= words
    top = [c.word for c in find_candidates(exclude=words, top=3)]
    assert not {"olis", "lun", "hta"} & set(top) and top[0] == "dits"
    assert check_word("OLIS", words).in_dataset and not check_word("dits", words).in_dataset


def test_cli_candidates_and_check(tmp_path: Path, capsys):
    assert main(["concept-words", "--top", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {"candidates": [{"word": "olis", "token_id": 49397}, {"word": "lun", "token_id": 49390},
                                   {"word": "hta", "token_id": 49384}, {"word": "dits", "token_id": 49374}]}
    assert main(["concept-words", "--max-length", "3", "--top", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["1", "lun", "49390"] and out[2].split() == ["2", "hta", "49384"]

    root = tmp_path / "ds"
    (root / "1_x").mkdir(parents=True)
    (root / "1_x" / "a.png").write_bytes(b"")
    (root / "1_x" / "a.txt").write_text("sks, red hair")
    assert main(["concept-words", "--check", "sks", "--dataset", str(root), "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert {k: check[k] for k in ("word", "tokens", "single", "in_dataset")} == {
        "word": "sks", "tokens": [48136], "single": True, "in_dataset": True}
    assert main(["concept-words", "--check", "shiina mayuri", "--json"]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["single"] is False and len(check["tokens"]) > 1 and check["in_dataset"] is False
    assert main(["concept-words", "--check", "ohwx"]) == 0
    assert "a single token [47993]" in capsys.readouterr().out


def test_cli_errors(tmp_path: Path, capsys):
    assert main(["concept-words", "--dataset", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["concept-words", "--model", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "diffusers model folder" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["concept-words", "--max-length", "0"])


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A diffusers-layout folder with a tiny random CLIP text encoder and the real SD tokenizer."""
    pytest.importorskip("torch")
    from tests.tiny_models import build_tiny_text_encoder

    return build_tiny_text_encoder(tmp_path_factory.mktemp("tiny-sd"))


def test_model_scoring_ranks_by_distance(tiny_model: Path, capsys):
    from prep.concept_words import rank_by_model, score_with_model

    assert main(["concept-words", "--top", "6", "--model", str(tiny_model), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)["candidates"]
    assert {c["word"] for c in scored} == {c.word for c in find_candidates(top=6)}
    distances = [c["distance"] for c in scored]
    assert distances == sorted(distances) and all(d > 0 for d in distances) and len(set(distances)) == 6
    # the scores are real encoder distances: the same word scores the same, a different word differently
    again = score_with_model(tiny_model, [scored[0]["word"], scored[-1]["word"]])
    assert again[0] == pytest.approx(distances[0], rel=1e-5) and again[1] == pytest.approx(distances[-1], rel=1e-5)
    assert rank_by_model(tiny_model, find_candidates(top=2))[0].distance is not None
