"""[concept] apply (trigger per concept folder, one journaled edit, [train] keep_tokens) and clean --where."""

from __future__ import annotations

from pathlib import Path

import pytest

from prep.concept import ConceptConfig, apply_concept, load_concept_config
from prep.config import ConfigError, tomllib
from prep.errors import PrepError
from prep.journal import Journal
from prep.toml_edit import update_table
from tests.conftest import write_caption, write_image

COMMENTED = """\
# my workspace
[train]
# the base model
pretrained_model = "x"  # inline note
learning_rate = 1e-4

[concept]
# who the LoRA is about
trigger = "alc"
remove_names = ["Alice Liddell"]
concept = "2_alice"
"""


def two_concepts(root: Path) -> Path:
    dataset = root / "dataset"
    write_image(dataset / "2_alice" / "a0.png")
    write_caption(dataset / "2_alice" / "a0.txt", "1girl, alice_liddell, hat")
    write_image(dataset / "2_alice" / "a1.png")
    write_caption(dataset / "2_alice" / "a1.txt", "smile, alc")
    write_image(dataset / "1_bob" / "b0.png")
    write_caption(dataset / "1_bob" / "b0.txt", "1boy, alice liddell")
    (root / "lorakit.toml").write_text(COMMENTED)
    return dataset


def test_apply_concept_sets_trigger_in_one_folder_and_train(tmp_path: Path):
    dataset = two_concepts(tmp_path)
    config = load_concept_config(dataset)
    assert config == ConceptConfig("alc", ["Alice Liddell"], "2_alice")
    report = apply_concept(dataset, config)
    assert report.changed == 2 and report.train_updated
    assert (dataset / "2_alice" / "a0.txt").read_text() == "alc, 1girl, hat"
    assert (dataset / "2_alice" / "a1.txt").read_text() == "alc, smile"
    assert (dataset / "1_bob" / "b0.txt").read_text() == "1boy, alice liddell"  # other concept untouched
    text = (tmp_path / "lorakit.toml").read_text()
    assert "# the base model" in text and "# inline note" in text and "# who the LoRA is about" in text
    assert "learning_rate = 1e-4" in text
    train = tomllib.loads(text)["train"]
    assert train["keep_tokens"] == 1 and train["shuffle_caption"] is True
    history = Journal(dataset).history()
    assert len(history) == 1 and history[-1].count == 2
    Journal(dataset).undo()
    assert (dataset / "2_alice" / "a0.txt").read_text() == "1girl, alice_liddell, hat"


def test_apply_concept_to_all_and_errors(tmp_path: Path):
    dataset = two_concepts(tmp_path)
    report = apply_concept(dataset, ConceptConfig("alc", ["alice liddell"]))
    assert report.changed == 3
    assert (dataset / "1_bob" / "b0.txt").read_text() == "alc, 1boy"
    with pytest.raises(PrepError, match="no concept folder 'carol'"):
        apply_concept(dataset, ConceptConfig("alc", [], "carol"))
    with pytest.raises(ConfigError, match="trigger is empty"):
        apply_concept(dataset, ConceptConfig(""))
    with pytest.raises(ConfigError, match="one tag"):
        ConceptConfig("a, b")


def test_update_table_keeps_other_tables_and_removes(tmp_path: Path):
    path = tmp_path / "lorakit.toml"
    path.write_text(COMMENTED)
    assert update_table(path, "clean", {"remove": ["hat"], "lowercase": True})
    assert update_table(path, "concept", {"concept": None, "trigger": "zz"})
    assert not update_table(path, "concept", {"trigger": "zz"})  # nothing changed, nothing written
    data = tomllib.loads(path.read_text())
    assert data["clean"] == {"remove": ["hat"], "lowercase": True}
    assert data["concept"] == {"trigger": "zz", "remove_names": ["Alice Liddell"]}
    assert "# who the LoRA is about" in path.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        update_table(bad, "train", {"a": 1})


def test_clean_where_restricts_to_the_query(tmp_path: Path, run_cli):
    dataset = two_concepts(tmp_path)
    result = run_cli("clean", dataset, "--where", "concept:1_bob", "--trigger", "bb", "--remove-name", "alice liddell")
    assert result.code == 0, result.err
    assert (dataset / "1_bob" / "b0.txt").read_text() == "bb, 1boy"
    assert (dataset / "2_alice" / "a0.txt").read_text() == "1girl, alice_liddell, hat"
    result = run_cli("clean", dataset, "--where", "hat", "--remove", "hat")
    assert result.code == 0 and (dataset / "2_alice" / "a0.txt").read_text() == "1girl, alice liddell"
    assert (dataset / "2_alice" / "a1.txt").read_text() == "smile, alc"  # not selected: not normalised
    result = run_cli("clean", dataset, "--where", "concept:nobody")
    assert result.code != 0 and "no concept folder 'nobody'" in result.err and "Traceback" not in result.err
