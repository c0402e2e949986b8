"""Label files of the non-WD14 families (see tagger.families) read into the one `Labels` record.

Category names map to the Danbooru/WD numbers the rest of the tagger uses (0 general, 1 artist,
3 copyright, 4 character, 5 meta, 9 rating); others (quality, model, year) get 10 and are never written.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from prep.captions import clean_tag
from tagger.errors import TaggerError
from tagger.labels import CATEGORY_CHARACTER, CATEGORY_GENERAL, CATEGORY_RATING, Labels

OTHER = 10
CATEGORY_NUMBERS = {"general": CATEGORY_GENERAL, "artist": 1, "copyright": 3, "character": CATEGORY_CHARACTER,
                    "meta": 5, "rating": CATEGORY_RATING}


def labels_from(entries: dict[int, tuple[str, int]], source: str) -> Labels:
    """Labels from {output index: (name, category)}; every index 0..n-1 must be there."""
    if not entries:
        raise TaggerError(f"{source}: no labels in the file")
    count = max(entries) + 1
    missing = [i for i in range(count) if i not in entries]
    if missing or min(entries) < 0:
        raise TaggerError(f"{source}: label indices are not 0..{count - 1} (index {missing[0] if missing else -1} "
                          "missing); the file belongs to another model or is damaged")
    names = [clean_tag(entries[i][0]) or f"label_{i}" for i in range(count)]
    cats = np.asarray([entries[i][1] for i in range(count)], dtype=np.int64)
    return Labels(names=names, categories=cats, rating=np.flatnonzero(cats == CATEGORY_RATING),
                  general=np.flatnonzero(cats == CATEGORY_GENERAL),
                  character=np.flatnonzero(cats == CATEGORY_CHARACTER))


def _category(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return CATEGORY_NUMBERS.get(str(value).strip().lower(), OTHER)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8-sig"))
    except OSError as exc:
        raise TaggerError(f"{path}: cannot read the label file ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TaggerError(f"{path}: not a JSON label file ({exc})") from None


def _index(key: Any, source: str) -> int:
    try:
        return int(key)
    except (TypeError, ValueError):
        raise TaggerError(f"{source}: label index {key!r} is not a number") from None


def _from_idx_maps(idx_to_tag: Any, tag_to_category: Any, source: str) -> Labels:
    if not isinstance(idx_to_tag, dict) or not isinstance(tag_to_category, dict):
        raise TaggerError(f"{source}: idx_to_tag and tag_to_category must be objects")
    entries = {_index(k, source): (str(v), _category(tag_to_category.get(v, "general")))
               for k, v in idx_to_tag.items()}
    return labels_from(entries, source)


def read_tag_mapping(path: Path) -> Labels:
    """cl_tagger's `tag_mapping.json`: {"<i>": {"tag", "category"}} or {"idx_to_tag", "tag_to_category"}."""
    data = _load_json(path)
    source = str(path)
    if isinstance(data, dict) and "idx_to_tag" in data:
        return _from_idx_maps(data["idx_to_tag"], data.get("tag_to_category", {}), source)
    if not isinstance(data, dict):
        raise TaggerError(f"{source}: expected an object of index -> {{tag, category}}")
    entries = {}
    for key, value in data.items():
        if not isinstance(value, dict) or "tag" not in value:
            raise TaggerError(f"{source}: entry {key!r} has no tag; expected {{\"tag\": ..., \"category\": ...}}")
        entries[_index(key, source)] = (str(value["tag"]), _category(value.get("category", "general")))
    return labels_from(entries, source)


def read_pixai_tags(path: Path) -> Labels:
    """PixAI's `tags_v0.9_13k.json`: tag_map {tag: index}, general first (tag_split.gen_tag_count)."""
    data = _load_json(path)
    source = str(path)
    try:
        tag_map = data["tag_map"]
        general_count = int(data["tag_split"]["gen_tag_count"])
    except (KeyError, TypeError, ValueError):
        raise TaggerError(f"{source}: expected tag_map and tag_split.gen_tag_count (PixAI tagger labels)") from None
    entries = {}
    for name, index in tag_map.items():
        i = _index(index, source)
        entries[i] = (str(name), CATEGORY_GENERAL if i < general_count else CATEGORY_CHARACTER)
    return labels_from(entries, source)


def read_camie_metadata(path: Path) -> tuple[Labels, int | None]:
    """Camie's metadata JSON: the labels and model_info.img_size (None when absent)."""
    data = _load_json(path)
    source = str(path)
    if not isinstance(data, dict):
        raise TaggerError(f"{source}: expected a metadata object")
    info = data.get("dataset_info", data)
    mapping = info.get("tag_mapping", info) if isinstance(info, dict) else {}
    if not isinstance(mapping, dict) or "idx_to_tag" not in mapping:
        raise TaggerError(f"{source}: no dataset_info.tag_mapping.idx_to_tag (Camie tagger metadata)")
    labels = _from_idx_maps(mapping["idx_to_tag"], mapping.get("tag_to_category", {}), source)
    size = (data.get("model_info") or {}).get("img_size")
    return labels, size if isinstance(size, int) and size > 0 else None


def read_thresholds_csv(path: Path) -> dict[int, float]:
    """`thresholds.csv` (category,name,threshold) of an ONNX export: {category: threshold}."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return {}
    out: dict[int, float] = {}
    for row in csv.DictReader(io.StringIO(text)):
        try:
            out[int(row["category"])] = float(row["threshold"])
        except (KeyError, TypeError, ValueError):
            continue
    return out


def read_model_labels(family: str, path: Path) -> tuple[Labels, int | None]:
    """The labels of a model of `family` (tagger.families) and the input side its metadata names, if any."""
    from tagger.families import CAMIE, CL_TAGGER, PIXAI
    from tagger.labels import read_labels

    if family == CL_TAGGER:
        return read_tag_mapping(path), None
    if family == CAMIE:
        return read_camie_metadata(path)
    if family == PIXAI and Path(path).suffix.lower() == ".json":
        return read_pixai_tags(path), None
    return read_labels(path), None
