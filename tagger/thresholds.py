"""Which labels an image gets: fixed thresholds or MCut per category, a tag kept when p > threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tagger.labels import Labels

CHARACTER_MCUT_FLOOR = 0.15


def mcut_threshold(probs: np.ndarray) -> float:
    """Maximum Cut Thresholding (Largeron et al. 2012): the midpoint of the largest gap between sorted probs."""
    if probs.size < 2:
        return float(probs[0]) if probs.size else 1.0
    ordered = np.sort(probs.astype(np.float64))[::-1]
    gaps = ordered[:-1] - ordered[1:]
    t = int(np.argmax(gaps))
    return float((ordered[t] + ordered[t + 1]) / 2)


@dataclass(frozen=True)
class Thresholds:
    general: float
    character: float
    general_mcut: bool = False
    character_mcut: bool = False


@dataclass(frozen=True)
class Prediction:
    """One image's labels above threshold, each list by confidence descending (raw Danbooru names)."""

    rating: str
    rating_p: float
    characters: list[tuple[str, float]]
    general: list[tuple[str, float]]


def _above(probs: np.ndarray, columns: np.ndarray, labels: Labels, threshold: float) -> list[tuple[str, float]]:
    if columns.size == 0:
        return []
    values = probs[columns]
    # Compared at the model's float32 precision: a probability printed equal to the threshold is not kept.
    keep = np.flatnonzero(values > np.float32(threshold))
    # Stable sort, so equal confidences keep the CSV order (which is by post count).
    order = keep[np.argsort(-values[keep], kind="stable")]
    return [(labels.names[columns[i]], float(values[i])) for i in order]


def predict(probs: np.ndarray, labels: Labels, thresholds: Thresholds) -> Prediction:
    """Split one image's output row into rating, characters and general tags."""
    probs = np.asarray(probs, dtype=np.float32)
    if labels.rating.size:
        best = labels.rating[int(np.argmax(probs[labels.rating]))]
        rating, rating_p = labels.names[best], float(probs[best])
    else:
        rating, rating_p = "", 0.0
    general_t = thresholds.general
    if thresholds.general_mcut and labels.general.size:
        general_t = mcut_threshold(probs[labels.general])
    character_t = thresholds.character
    if thresholds.character_mcut and labels.character.size:
        character_t = max(CHARACTER_MCUT_FLOOR, mcut_threshold(probs[labels.character]))
    return Prediction(
        rating=rating,
        rating_p=rating_p,
        characters=_above(probs, labels.character, labels, character_t),
        general=_above(probs, labels.general, labels, general_t),
    )
