"""Near-duplicate grouping on real generated pictures, the trash/undo round trip, and the cache."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from prep.dedupe import DedupeOptions, apply_dedupe, find_duplicates
from prep.events import Finished
from tui.cli import main

PALETTE = [(200, 40, 40), (40, 160, 60), (30, 60, 200), (240, 220, 60), (20, 20, 20)]


def picture(seed: int, size: tuple[int, int] = (256, 192)) -> Image.Image:
    """A structured picture: random rectangles and ellipses in one shared five-colour palette."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, PALETTE[rng.randrange(5)])
    draw = ImageDraw.Draw(image)
    scale = size[0] / 256
    for _ in range(14):
        x0, y0 = rng.randrange(size[0]), rng.randrange(size[1])
        x1, y1 = x0 + int(rng.randrange(20, 120) * scale), y0 + int(rng.randrange(20, 120) * scale)
        shape = draw.rectangle if rng.randrange(2) else draw.ellipse
        shape((x0, y0, x1, y1), fill=PALETTE[rng.randrange(5)])
    return image


def run(root: Path, options: DedupeOptions | None = None):
    report = None
    for event in find_duplicates(root, options or DedupeOptions()):
        if isinstance(event, Finished):
            report = event.summary
    return report


def snapshot(root: Path) -> dict[str, bytes]:
    """Every user file under root (the .lorakit folder left out), by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".lorakit" not in p.relative_to(root).parts}


@pytest.fixture
def copies_dataset(tmp_path: Path) -> Path:
    """One picture with resized, JPEG q60 and lightly cropped copies, plus six distinct pictures."""
    root = tmp_path / "ds"
    folder = root / "5_thing"
    folder.mkdir(parents=True)
    original = picture(0)
    original.save(folder / "a_original.png")
    original.resize((128, 96), Image.Resampling.LANCZOS).save(folder / "b_small.png")
    original.save(folder / "c_q60.jpg", quality=60)
    w, h = original.size
    original.crop((6, 5, w - 6, h - 5)).save(folder / "d_crop.png")
    for seed in range(1, 7):
        picture(seed).save(folder / f"other{seed}.png")
    for name in ("a_original", "b_small", "d_crop", "other1"):
        (folder / f"{name}.txt").write_text(f"{name}, tag", encoding="utf-8")
    return root


def test_copies_grouped_and_distinct_pictures_kept_apart(copies_dataset: Path):
    report = run(copies_dataset)
    assert report.images == 10
    assert len(report.groups) == 1
    group = report.groups[0]
    members = {group.keep, *group.drop}
    assert members == {f"5_thing/{n}" for n in ("a_original.png", "b_small.png", "c_q60.jpg", "d_crop.png")}
    assert 0 < group.score <= 8
    # largest: the full-size ones tie on pixels; the bigger file wins
    full = ["5_thing/a_original.png", "5_thing/c_q60.jpg"]
    assert group.keep == max(full, key=lambda rel: (copies_dataset / rel).stat().st_size)


def test_threshold_zero_splits_and_keep_first(copies_dataset: Path):
    report = run(copies_dataset, DedupeOptions(keep="first"))
    assert report.groups[0].keep == "5_thing/a_original.png"
    assert report.groups[0].drop == ["5_thing/b_small.png", "5_thing/c_q60.jpg", "5_thing/d_crop.png"]
    strict = run(copies_dataset, DedupeOptions(threshold=0))
    assert all(len(g.drop) < 3 for g in strict.groups)


def test_keep_largest_prefers_pixels_then_size_then_name(tmp_path: Path):
    folder = tmp_path / "ds" / "1_x"
    folder.mkdir(parents=True)
    base = picture(3)
    base.resize((128, 96)).save(folder / "a.png")
    base.save(folder / "z_big.png")
    report = run(tmp_path / "ds")
    assert report.groups[0].keep == "1_x/z_big.png"
    # same pixels and same bytes: the name decides
    (folder / "z_big.png").unlink()
    base.save(folder / "m.png")
    base.save(folder / "b.png")
    assert run(tmp_path / "ds").groups[0].keep == "1_x/b.png"


def test_cli_json_apply_then_undo_is_byte_identical(copies_dataset: Path, capsys):
    before = snapshot(copies_dataset)
    assert main(["dedupe", str(copies_dataset), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["images"] == 10 and len(listed["groups"]) == 1
    assert set(listed["groups"][0]) == {"keep", "drop", "score"}
    assert snapshot(copies_dataset) == before  # without --apply nothing changes

    assert main(["dedupe", str(copies_dataset), "--apply", "--json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    group = applied["groups"][0]
    trash = copies_dataset / ".lorakit" / "trash" / applied["operation"]
    for rel in group["drop"]:
        assert not (copies_dataset / rel).exists()
        assert (trash / rel).read_bytes() == before[rel]
        caption = Path(rel).with_suffix(".txt").as_posix()
        if caption in before:
            assert (trash / caption).read_bytes() == before[caption]
    assert (copies_dataset / group["keep"]).exists()

    assert main(["history", str(copies_dataset), "--json"]) == 0
    ops = json.loads(capsys.readouterr().out)["operations"]
    assert len(ops) == 1 and ops[0]["command"].startswith("dedupe")
    assert main(["undo", str(copies_dataset)]) == 0
    assert snapshot(copies_dataset) == before


def test_human_output_and_errors(copies_dataset: Path, tmp_path: Path, capsys):
    assert main(["dedupe", str(copies_dataset)]) == 0
    out = capsys.readouterr().out
    assert "keep 5_thing/" in out and "drop 5_thing/" in out and "--apply" in out
    assert main(["dedupe", str(tmp_path / "missing")]) == 2
    assert main(["dedupe", str(copies_dataset), "--threshold", "70"]) == 1
    assert "0..64" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["dedupe", str(copies_dataset), "--keep", "smallest"])
    assert usage.value.code == 2


def test_corrupt_image_is_warned_and_left_out(copies_dataset: Path, capsys):
    (copies_dataset / "5_thing" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    assert main(["dedupe", str(copies_dataset), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"] == 11
    assert "broken.png" in captured.err


def test_kept_caption_survives_when_a_same_stem_copy_is_dropped(tmp_path: Path):
    folder = tmp_path / "ds" / "1_x"
    folder.mkdir(parents=True)
    picture(4).save(folder / "a.png")
    picture(4).resize((100, 75)).save(folder / "a.jpg", quality=90)
    (folder / "a.txt").write_text("shared", encoding="utf-8")
    report = run(tmp_path / "ds")
    assert report.groups[0].keep == "1_x/a.png"
    for _ in apply_dedupe(report):
        pass
    assert (folder / "a.txt").read_text(encoding="utf-8") == "shared"
    assert not (folder / "a.jpg").exists()


def test_hash_cache_is_used_and_keyed_by_content(copies_dataset: Path):
    run(copies_dataset)
    cache_file = copies_dataset / ".lorakit" / "cache" / "phash-v1.json"
    cache = json.loads(cache_file.read_text())
    assert len(cache) == 10
    # Poison one entry: a cached hash far from the rest splits that image off, proving the cache is read.
    from prep.phash import content_digest

    digest = content_digest((copies_dataset / "5_thing" / "b_small.png").read_bytes())
    cache[digest][0] ^= (1 << 64) - 1
    cache_file.write_text(json.dumps(cache))
    report = run(copies_dataset)
    assert "5_thing/b_small.png" not in {report.groups[0].keep, *report.groups[0].drop}
    # New content, new key: the re-encoded file is hashed afresh and rejoins its group.
    picture(0).resize((128, 96)).save(copies_dataset / "5_thing" / "b_small.png", compress_level=1)
    report = run(copies_dataset)
    assert "5_thing/b_small.png" in {report.groups[0].keep, *report.groups[0].drop}


def test_bare_folder_is_searched_recursively(tmp_path: Path):
    root = tmp_path / "raw"
    (root / "sub").mkdir(parents=True)
    picture(7).save(root / "one.png")
    picture(7).save(root / "sub" / "two.jpg", quality=70)
    picture(8).save(root / "three.png")
    report = run(root)
    assert report.images == 3
    assert [sorted([g.keep, *g.drop]) for g in report.groups] == [["one.png", "sub/two.jpg"]]


def test_process_pool_gives_the_same_groups(tmp_path: Path):
    folder = tmp_path / "ds" / "1_x"
    folder.mkdir(parents=True)
    for seed in range(30):
        image = picture(seed, (96, 72))
        image.save(folder / f"p{seed:02d}.png")
        image.save(folder / f"p{seed:02d}_copy.jpg", quality=60)
    pooled = run(tmp_path / "ds", DedupeOptions(workers=2))
    (tmp_path / "ds" / ".lorakit" / "cache" / "phash-v1.json").unlink()
    single = run(tmp_path / "ds", DedupeOptions(workers=1))
    assert len(pooled.groups) == 30
    assert [g.to_dict() for g in pooled.groups] == [g.to_dict() for g in single.groups]


def test_non_utf8_file_names_apply_and_undo(tmp_path: Path, capsys):
    import os

    root = tmp_path / "ds"
    folder = root / "1_x"
    folder.mkdir(parents=True)
    picture(5).save(folder / "a.png")
    odd = os.fsencode(str(folder)) + b"/b\xff.png"
    try:
        with open(odd, "wb") as fh:
            picture(5).save(fh, format="PNG", compress_level=1)
    except OSError:
        pytest.skip("this file system rejects names that are not UTF-8")
    with open(odd[:-4] + b".txt", "wb") as fh:
        fh.write(b"caption")
    before = snapshot(root)
    assert main(["dedupe", str(root), "--apply", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["groups"][0]["drop"][0].endswith("\\xff.png") or out["groups"][0]["keep"].endswith("\\xff.png")
    assert len(list(folder.glob("*.png"))) == 1
    assert main(["undo", str(root)]) == 0
    assert snapshot(root) == before


def test_workspace_table_sets_defaults_and_flags_override(copies_dataset: Path, capsys):
    workspace = copies_dataset.parent / "lorakit.toml"
    workspace.write_text('[dedupe]\nkeep = "first"\n', encoding="utf-8")
    assert main(["dedupe", str(copies_dataset), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"][0]["keep"] == "5_thing/a_original.png"
    assert main(["dedupe", str(copies_dataset), "--json", "--keep", "largest"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"][0]["keep"] != "5_thing/a_original.png" or (
        (copies_dataset / "5_thing/a_original.png").stat().st_size
        > (copies_dataset / "5_thing/c_q60.jpg").stat().st_size)
    workspace.write_text("[dedupe]\nthreshhold = 3\n", encoding="utf-8")
    assert main(["dedupe", str(copies_dataset)]) == 1
    assert "threshold" in capsys.readouterr().err
