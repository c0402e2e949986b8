"""`lorakit validate`: the guide's example, JSON shape, human output, exit codes, reg/ paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.prep.validate_fixtures import caption, picture
from tui.cli import main

TOP_KEYS = {"ok", "images", "captioned", "concepts", "steps_per_epoch", "total_steps", "longest_caption_tokens",
            "recommended_max_token_length", "buckets", "problems"}
CONCEPT_KEYS = {"folder", "name", "repeats", "images", "captioned", "weighted", "share"}
PROBLEM_KEYS = {"severity", "code", "path", "message"}


def guide_dataset(root: Path) -> Path:
    """The guide's example: 2_HighRes with 20 images, 1_LowRes with 10."""
    for i in range(20):
        picture(root / "2_HighRes" / f"h{i:02d}.png", (32, 32), seed=i)
        caption(root / "2_HighRes" / f"h{i:02d}.txt", f"highres, 1girl, pose {i}")
    for i in range(10):
        picture(root / "1_LowRes" / f"l{i:02d}.jpg", (32, 24), seed=100 + i)
        caption(root / "1_LowRes" / f"l{i:02d}.txt", f"lowres, 1girl, pose {i}")
    return root


def run_json(capsys, *args: str) -> tuple[int, dict]:
    code = main(["validate", *map(str, args), "--json"])
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1  # exactly one JSON object
    return code, json.loads(captured.out)


def test_guide_example(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    code, out = run_json(capsys, root, "--resolution", "16")
    assert code == 0 and out["ok"] is True and out["problems"] == []
    assert set(out) == TOP_KEYS
    assert out["images"] == 30 and out["captioned"] == 30
    concepts = {c["folder"]: c for c in out["concepts"]}
    assert all(set(c) == CONCEPT_KEYS for c in out["concepts"])
    assert concepts["2_HighRes"] == {"folder": "2_HighRes", "name": "HighRes", "repeats": 2, "images": 20,
                                     "captioned": 20, "weighted": 40, "share": 0.8}
    assert concepts["1_LowRes"] == {"folder": "1_LowRes", "name": "LowRes", "repeats": 1, "images": 10,
                                    "captioned": 10, "weighted": 10, "share": 0.2}
    assert sum(c["weighted"] for c in out["concepts"]) == 50
    assert out["steps_per_epoch"] == 50 and out["total_steps"] == 50
    assert out["recommended_max_token_length"] == 75 and 0 < out["longest_caption_tokens"] <= 75


def test_steps_follow_batch_size_and_epochs(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    code, out = run_json(capsys, root, "--resolution", "16", "--batch-size", "4", "--epochs", "3")
    assert code == 0
    assert out["steps_per_epoch"] == 13  # ceil(50 / 4)
    assert out["total_steps"] == 39


def test_json_problem_shape_and_exit_1(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    (root / "photo").mkdir()
    picture(root / "2_HighRes" / "bare.png", (32, 32), seed=77)
    code, out = run_json(capsys, root)
    assert code == 1 and out["ok"] is False
    assert all(set(p) == PROBLEM_KEYS for p in out["problems"])
    problems = {(p["code"], p["path"]): p["severity"] for p in out["problems"]}
    assert problems[("bad-folder-name", "photo")] == "error"
    assert problems[("missing-caption", "2_HighRes/bare.png")] == "warning"
    assert problems[("too-small", "2_HighRes/bare.png")] == "warning"
    assert out["images"] == 31 and out["captioned"] == 30


def test_warnings_only_exit_0(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    code, out = run_json(capsys, root)  # every image is below 512 (and upscaled 16x): warnings only
    assert code == 0 and out["ok"] is True
    assert {p["code"] for p in out["problems"]} == {"too-small", "bucket-upscale"}
    assert len(out["problems"]) == 60


def test_missing_or_not_a_folder_exit_2(tmp_path: Path, capsys):
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
    (tmp_path / "file.txt").write_text("x")
    assert main(["validate", str(tmp_path / "file.txt"), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "file.txt" in captured.err


def test_usage_errors_exit_2(tmp_path: Path, capsys):
    for args in (["--max-token-length", "100"], ["--bogus"], []):
        with pytest.raises(SystemExit) as exc:
            main(["validate", *([str(tmp_path)] if args else []), *args])
        assert exc.value.code == 2
    capsys.readouterr()


def test_bad_numbers_are_one_line_errors(tmp_path: Path, capsys):
    assert main(["validate", str(tmp_path), "--batch-size", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "batch" in err
    assert main(["validate", str(tmp_path), "--epochs", "many"]) == 1
    assert "epochs" in capsys.readouterr().err


def test_reg_folder_problems_are_prefixed(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    reg = tmp_path / "regs"
    picture(reg / "1_woman" / "w1.png", (32, 32), seed=500)
    caption(reg / "1_woman" / "w1.txt", "woman, woman")
    picture(reg / "1_woman" / "w2.png", (32, 32), seed=501)
    picture(reg / "loose.png", (32, 32), seed=502)
    shutil.copyfile(root / "2_HighRes" / "h00.png", reg / "1_woman" / "copy.png")
    code, out = run_json(capsys, root, "--reg", reg, "--resolution", "16")
    assert code == 1
    found = {(p["code"], p["path"]) for p in out["problems"]}
    assert found == {("duplicate-tag", "reg/1_woman/w1.txt"), ("missing-caption", "reg/1_woman/w2.png"),
                     ("missing-caption", "reg/1_woman/copy.png"), ("stray-image", "reg/loose.png"),
                     ("duplicate-image", "reg/1_woman/copy.png")}
    # Regularization images are not training images: the summary is the dataset's alone.
    assert out["images"] == 30 and [c["folder"] for c in out["concepts"]] == ["1_LowRes", "2_HighRes"]
    assert out["steps_per_epoch"] == 50


def test_empty_reg_folder_is_fine(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    (tmp_path / "reg").mkdir()
    code, out = run_json(capsys, root, "--reg", tmp_path / "reg", "--resolution", "0")
    assert code == 0 and out["problems"] == []
    (tmp_path / "reg" / "notes").mkdir()
    code, out = run_json(capsys, root, "--reg", tmp_path / "reg", "--resolution", "0")
    assert {(p["code"], p["path"]) for p in out["problems"]} == {("bad-folder-name", "reg/notes"),
                                                                ("no-concepts", "reg")}


def test_missing_reg_folder_exit_2(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    assert main(["validate", str(root), "--reg", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_human_output(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    picture(root / "stray.png", seed=999)
    code = main(["validate", str(root), "--resolution", "16", "--batch-size", "2", "--epochs", "10"])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("stray.png: error: ") and lines[0].endswith("[stray-image]")
    table = "\n".join(lines)
    for word in ("concept", "repeats", "images", "weighted", "share"):
        assert word in lines[2]
    high = next(line for line in lines if line.startswith("2_HighRes")).split()
    assert high == ["2_HighRes", "2", "20", "20", "40", "80.0%"]
    low = next(line for line in lines if line.startswith("1_LowRes")).split()
    assert low == ["1_LowRes", "1", "10", "10", "10", "20.0%"]
    assert "25 per epoch" in table and "250 total" in table
    assert "not ready to train: 1 error, 0 warnings" in table


def test_human_output_clean(tmp_path: Path, capsys):
    root = guide_dataset(tmp_path / "ds")
    assert main(["validate", str(root), "--resolution", "0", "--deep"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("concept")
    assert out.rstrip().endswith("ok: 0 errors, 0 warnings")


def test_cli_end_to_end(tmp_path: Path, run_cli):
    root = guide_dataset(tmp_path / "ds")
    result = run_cli("validate", root, "--json", "--deep", "--resolution", "16")
    assert result.code == 0, result.err
    out = json.loads(result.out)
    assert out["ok"] and [c["share"] for c in out["concepts"]] == [0.2, 0.8]
    (root / "2_HighRes" / "h03.png").write_bytes(b"")
    result = run_cli("validate", root)
    assert result.code == 1 and "2_HighRes/h03.png: error:" in result.out and "[corrupt-image]" in result.out
    assert "Traceback" not in result.err
    assert run_cli("validate", tmp_path / "missing").code == 2
    result = run_cli("validate", "--help")
    assert result.code == 0
    for flag in ("--reg", "--resolution", "--max-token-length", "--epochs", "--batch-size", "--deep", "--json"):
        assert flag in result.out


@pytest.mark.skipif(os.geteuid() != 0 or not hasattr(os, "setuid"), reason="needs root to drop to nobody")
def test_unreadable_permissions_as_another_user(run_cli):
    """As root, permissions bind nobody: run the CLI as user 65534 on a dataset it may partly read."""
    base = Path(tempfile.mkdtemp(prefix="lorakit-perm-"))
    try:
        base.chmod(0o755)
        root = base / "ds"
        for i in range(2):
            picture(root / "2_char" / f"img{i}.png", seed=i)
            caption(root / "2_char" / f"img{i}.txt", "x")
        picture(root / "3_locked" / "a.png", seed=5)
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        (root / "2_char" / "img0.png").chmod(0)
        (root / "2_char" / "img1.txt").chmod(0)
        (root / "3_locked").chmod(0)
        try:
            proc = subprocess.run([sys.executable, "-m", "tui", "validate", str(root), "--json", "--resolution",
                                   "0"], capture_output=True, text=True, user=65534, cwd=str(base),
                                  env={**os.environ, "HOME": str(base)})
        except PermissionError:
            pytest.skip("the interpreter is not usable by another user here")
        if proc.returncode not in (0, 1) and "Permission denied" in proc.stderr:
            pytest.skip("the interpreter is not readable by another user here")
        out = json.loads(proc.stdout)
        assert proc.returncode == 1
        assert {p["path"] for p in out["problems"] if p["code"] == "unreadable"} == {
            "2_char/img0.png", "2_char/img1.txt", "3_locked"}
    finally:
        (base / "ds" / "3_locked").chmod(0o755)
        shutil.rmtree(base, ignore_errors=True)
