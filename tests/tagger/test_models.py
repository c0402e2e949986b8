"""Model resolution: local folders, the hub (a real HTTP stand-in), offline use, and bad models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from tests.conftest import write_image
from tests.tagger.conftest import by_name
from tests.tagger.hub_server import FakeHub, HubServer
from tests.tagger.onnx_models import STANDARD, build_model, constant, labels_csv, write_model_folder

REPO = "test-org/tiny-tagger"


def _model_files(features=STANDARD, side=448) -> dict[str, bytes]:
    return {"model.onnx": build_model(features, side).SerializeToString(),
            "selected_tags.csv": labels_csv(features).encode()}


def _env(tmp_path: Path, endpoint: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HOME"] = str(tmp_path / "hf-home")
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    env["HF_HUB_DISABLE_XET"] = "1"
    if endpoint:
        env["HF_ENDPOINT"] = endpoint
    env.update(extra)
    return env


@pytest.fixture
def red_folder(tmp_path) -> Path:
    folder = tmp_path / "imgs"
    write_image(folder / "red.png", (64, 64), (255, 0, 0))
    return folder


def test_hub_download_then_offline_from_cache(tmp_path, red_folder, run_cli):
    hub = FakeHub()
    hub.add(REPO, _model_files())
    with HubServer(hub):
        r = run_cli("tag", red_folder, "--model", REPO, "--json", "--general-threshold", "0.5",
                    env=_env(tmp_path, hub.url, HF_TOKEN="hf_secret_token"))
        assert r.code == 0, r.err
        report = json.loads(r.out)
        assert report["provider"] == "CPUExecutionProvider"
        assert [t for t, _ in by_name(report)["red.png"]["tags"]][:1] == ["kaname madoka"]
        paths = {p for _, p, _ in hub.requests}
        assert f"/{REPO}/resolve/main/model.onnx" in paths and f"/{REPO}/resolve/main/selected_tags.csv" in paths
        # The token comes from the environment and is sent to the hub.
        assert {auth for _, _, auth in hub.requests} == {"Bearer hf_secret_token"}
        seen = len(hub.requests)
        (red_folder / "red.txt").unlink()
        r = run_cli("tag", red_folder, "--model", REPO, "--json", env=_env(tmp_path, hub.url, HF_HUB_OFFLINE="1"))
        assert r.code == 0, r.err
        assert len(hub.requests) == seen  # offline: nothing asked of the hub
        assert json.loads(r.out)["written"] == 1
    # The hub gone (connection refused) but the model cached: still works.
    (red_folder / "red.txt").unlink()
    r = run_cli("tag", red_folder, "--model", REPO, "--json", env=_env(tmp_path, hub.url))
    assert r.code == 0, r.err


def test_offline_without_cache_fails_with_one_line_naming_the_repo(tmp_path, red_folder, run_cli):
    r = run_cli("tag", red_folder, "--model", REPO, env=_env(tmp_path, "http://127.0.0.1:9", HF_HUB_OFFLINE="1"))
    assert r.code == 1
    assert len(r.err.strip().splitlines()) == 1, r.err
    assert REPO in r.err and "--model DIR" in r.err and "Traceback" not in r.err
    assert not (red_folder / "red.txt").exists()


def test_revision_selects_the_files_and_unknown_repo_or_revision_fail(tmp_path, red_folder, run_cli):
    hub = FakeHub()
    hub.add(REPO, _model_files([constant("general", 9, 0.9), constant("from_main", 0, 0.9)]))
    hub.add(REPO, _model_files([constant("general", 9, 0.9), constant("from_v2", 0, 0.9)]), revision="v2")
    with HubServer(hub):
        env = _env(tmp_path, hub.url)
        r = run_cli("tag", red_folder, "--model", REPO, "--revision", "v2", "--dry-run", env=env)
        assert r.code == 0 and "red.png: from v2" in r.out, r.err
        r = run_cli("tag", red_folder, "--model", REPO, "--dry-run", env=env)
        assert "red.png: from main" in r.out, r.err
        r = run_cli("tag", red_folder, "--model", REPO, "--revision", "nope", env=env)
        assert r.code == 1 and "nope" in r.err and len(r.err.strip().splitlines()) == 1, r.err
        r = run_cli("tag", red_folder, "--model", "test-org/missing", env=env)
        assert r.code == 1 and "test-org/missing" in r.err and len(r.err.strip().splitlines()) == 1, r.err
        hub.add("test-org/no-onnx", {"selected_tags.csv": b"tag_id,name,category,count\n1,a,0,1\n"})
        r = run_cli("tag", red_folder, "--model", "test-org/no-onnx", env=env)
        assert r.code == 1 and "model.onnx" in r.err, r.err


def test_list_models(tag):
    code, out, _ = tag("--list-models")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("SmilingWolf/wd-swinv2-tagger-v3") and "0.2653" in line and "default" in line
               for line in lines)
    for repo in ("wd-vit-tagger-v3", "wd-convnext-tagger-v3", "wd-eva02-large-tagger-v3", "wd-vit-large-tagger-v3",
                 "wd-v1-4-moat-tagger-v2", "wd-v1-4-convnextv2-tagger-v2", "wd-v1-4-vit-tagger-v2"):
        assert f"SmilingWolf/{repo}" in out
    code, out, _ = tag("--list-models", "--json")
    models = {m["repo"]: m for m in json.loads(out)["models"]}
    assert models["SmilingWolf/wd-eva02-large-tagger-v3"]["general_threshold"] == 0.5296
    assert models["SmilingWolf/wd-swinv2-tagger-v3"]["default"] is True
    assert all(m["character_threshold"] == 0.85 for m in models.values() if m["family"] == "wd14")


def _one_line_error(tag, *args) -> str:
    code, out, err = tag(*args)
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_folder_missing_a_file(tmp_path, red_folder, tag):
    folder = write_model_folder(tmp_path / "m")
    (folder / "selected_tags.csv").unlink()
    err = _one_line_error(tag, red_folder, "--model", folder)
    assert str(folder) in err and "selected_tags.csv" in err
    (folder / "model.onnx").unlink()
    assert "model.onnx" in _one_line_error(tag, red_folder, "--model", folder)
    assert "no such model folder" in _one_line_error(tag, red_folder, "--model", tmp_path / "a" / "b" / "c")


def test_csv_row_count_must_match_output_width(tmp_path, red_folder, tag):
    folder = write_model_folder(tmp_path / "m", csv_features=STANDARD[:-1])
    err = _one_line_error(tag, red_folder, "--model", folder)
    assert "16 label rows" in err and "outputs 17" in err
    # The same check when the graph leaves the output width symbolic (probed with one blank image).
    folder = write_model_folder(tmp_path / "m2", csv_features=STANDARD + STANDARD[:1], output_width="labels")
    assert "outputs 17" in _one_line_error(tag, red_folder, "--model", folder)
    assert not (red_folder / "red.txt").exists()


@pytest.mark.parametrize("shape, words", [
    (["batch", 3, 448, 448], "channels first"),
    (["batch", "h", "w", 3], "fixed square side"),
    (["batch", 448, 448], "expected NHWC"),
])
def test_unexpected_input_layout_fails_up_front(tmp_path, red_folder, tag, shape, words):
    # A valid graph over an image input of the given shape: mean of everything but the batch axis.
    from onnx import TensorProto, helper

    axes = onnx.numpy_helper.from_array(np.arange(1, len(shape), dtype=np.int64), "axes")
    one = onnx.numpy_helper.from_array(np.array([1], dtype=np.int64), "one")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=0),
         helper.make_node("Unsqueeze", ["m", "one"], ["output"])],
        "layout", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1])], initializer=[axes, one])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    folder = tmp_path / "m"
    folder.mkdir()
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "selected_tags.csv").write_text(labels_csv([constant("general", 9, 0.5)]))
    err = _one_line_error(tag, red_folder, "--model", folder)
    assert words in err and str(folder / "model.onnx") in err, err


def test_garbage_model_file(tmp_path, red_folder, tag):
    folder = write_model_folder(tmp_path / "m")
    (folder / "model.onnx").write_bytes(b"\x00garbage")
    assert "onnxruntime cannot load" in _one_line_error(tag, red_folder, "--model", folder)


def test_bad_labels_file(tmp_path, red_folder, tag):
    folder = write_model_folder(tmp_path / "m")
    (folder / "selected_tags.csv").write_text("id,label\n1,a\n")
    assert "name and category" in _one_line_error(tag, red_folder, "--model", folder)
    (folder / "selected_tags.csv").write_text("tag_id,name,category,count\n1,a,zero,5\n")
    assert "line 2" in _one_line_error(tag, red_folder, "--model", folder)


@pytest.mark.parametrize("fixed", [1, 3])
def test_fixed_batch_models_run_at_their_size(tmp_path, tag_json, tag, model_dir, fixed):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(fixed)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (50 + 30 * i, 80, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    fixed_dir = write_model_folder(tmp_path / f"fixed{fixed}", fixed_batch=fixed)
    assert onnx.load(str(fixed_dir / "model.onnx")).graph.input[0].type.tensor_type.shape.dim[0].dim_value == fixed
    dynamic = tag_json(folder, "--model", model_dir, "--dry-run", "--batch-size", "4", "--workers", "2")
    code, out, err = tag(folder, "--model", fixed_dir, "--dry-run", "--batch-size", "4", "--workers", "2", "--json")
    assert code == 0, err
    assert f"batches of exactly {fixed}" in err
    got = json.loads(out)
    assert len(got["results"]) == 5
    for a, b in zip(dynamic["results"], got["results"], strict=True):
        assert a["path"] == b["path"] and a["rating"] == b["rating"]
        assert [t for t, _ in a["tags"]] == [t for t, _ in b["tags"]]
        np.testing.assert_allclose([p for _, p in a["tags"]], [p for _, p in b["tags"]], atol=1e-6)


def test_model_file_path_and_short_known_names(tmp_path, red_folder, tag_json, tag, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read at import time; patched for in-process runs
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    folder = write_model_folder(tmp_path / "m")
    (folder / "model.onnx").rename(folder / "tagger-fp32.onnx")
    report = tag_json(red_folder, "--model", folder / "tagger-fp32.onnx", "--dry-run")
    assert report["results"] and report["model"].endswith("tagger-fp32.onnx")
    # A short known name means the SmilingWolf repo (here: offline and not cached -> one line naming it).
    code, _, err = tag(red_folder, "--model", "wd-vit-tagger-v3")
    assert code == 1 and "SmilingWolf/wd-vit-tagger-v3" in err
