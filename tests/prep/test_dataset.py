from collections import Counter
from pathlib import Path

import pytest

from prep.captions import parse_caption, read_caption_text, underscores_to_spaces
from prep.dataset import Dataset, parse_concept_folder_name
from prep.errors import DatasetNotFound


@pytest.mark.parametrize(
    "name, expected",
    [
        ("10_shiina mayuri", (10, "shiina mayuri")),
        ("2_High_Res", (2, "High_Res")),
        ("photo", None),
        ("0_x", None),
        ("x_photo", None),
        ("3_", None),
        ("3_   ", None),
    ],
)
def test_concept_folder_names(name, expected):
    assert parse_concept_folder_name(name) == expected


def test_parse_caption_trims_and_drops_empty():
    assert parse_caption("\ufeff 1girl ,  long   hair,,  , smile \n") == ["1girl", "long hair", "smile"]


def test_caption_bom_tolerated(tmp_path: Path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"\xef\xbb\xbfa, b")
    assert read_caption_text(p) == "a, b"


def test_kaomoji_keep_underscores():
    assert underscores_to_spaces("^_^") == "^_^"
    assert underscores_to_spaces("long_hair") == "long hair"


def test_load_items_and_effective_caption(small_dataset: Path):
    ds = Dataset.load(small_dataset)
    assert [c.folder_name for c in ds.concepts] == ["1_LowRes", "2_HighRes"]
    assert len(ds) == 6
    by_name = {item.image.name: item for item in ds}
    uncaptioned = by_name["b.webp"]
    assert not uncaptioned.has_caption
    assert uncaptioned.effective_tags() == ["LowRes"]
    assert by_name["img1.png"].repeats == 2
    assert by_name["img1.png"].tags == ["highres", "1girl", "tag1"]
    counts = Counter(tag for item in ds.items for tag in set(item.read_tags()))
    assert counts["1girl"] == 5 and counts["highres"] == 4


def test_load_custom_caption_extension(tmp_path: Path, make_image, make_caption):
    make_image(tmp_path / "1_x" / "a.png")
    make_caption(tmp_path / "1_x" / "a.caption", "foo, bar")
    ds = Dataset.load(tmp_path, caption_extension="caption")
    assert ds.items[0].tags == ["foo", "bar"]


def test_load_missing_folder(tmp_path: Path):
    with pytest.raises(DatasetNotFound):
        Dataset.load(tmp_path / "nope")


def test_bare_folder(tmp_path: Path, make_image):
    make_image(tmp_path / "a.png")
    make_image(tmp_path / "sub" / "b.jpg")
    assert [i.image.name for i in Dataset.load(tmp_path, allow_bare=True)] == ["a.png"]
    ds = Dataset.load(tmp_path, allow_bare=True, recursive=True)
    assert ds.bare and [i.image.name for i in ds] == ["a.png", "b.jpg"]


def test_symlink_loop_does_not_recurse_forever(tmp_path: Path, make_image):
    make_image(tmp_path / "a.png")
    (tmp_path / "loop").symlink_to(tmp_path)
    ds = Dataset.load(tmp_path, allow_bare=True, recursive=True)
    assert [i.image.name for i in ds] == ["a.png"]
