"""The hash index against a plain all-pairs check, on both of its strategies."""

from __future__ import annotations

import numpy as np
import pytest

from prep.hash_index import (
    _pairs_dense,
    _pairs_multi_index,
    connected_components,
    group_hashes,
    hamming_pairs,
    popcount64,
)


def planted(seed: int = 1, n: int = 300, copies: int = 150, max_flips: int = 20) -> np.ndarray:
    """Random 64-bit hashes plus copies of some with a few bits flipped."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    values = [int(v) for v in base]
    for v in base[:copies]:
        x = int(v)
        for bit in rng.choice(64, size=int(rng.integers(0, max_flips)), replace=False):
            x ^= 1 << int(bit)
        values.append(x)
    values += [values[0], values[1]]  # exact repeats too
    return np.array(values, dtype=np.uint64)


def brute(values: np.ndarray, threshold: int) -> set[tuple[int, int]]:
    ints = [int(v) for v in values]
    return {(i, j) for i in range(len(ints)) for j in range(i + 1, len(ints))
            if (ints[i] ^ ints[j]).bit_count() <= threshold}


def as_set(pairs) -> set[tuple[int, int]]:
    i, j = pairs
    return set(zip(i.tolist(), j.tolist(), strict=True))


@pytest.mark.parametrize("threshold", [0, 3, 8, 12, 20])
def test_both_strategies_match_all_pairs(threshold: int):
    values = planted()
    expected = brute(values, threshold)
    assert expected  # the planted copies give pairs to find
    assert as_set(hamming_pairs(values, threshold)) == expected
    assert as_set(_pairs_dense(values, threshold)) == expected
    for blocks in (3, 4, 5, 8):
        if threshold // blocks > 3:
            continue  # correct too, but many flip masks: slow for a unit test
        assert as_set(_pairs_multi_index(values, threshold, blocks)) == expected


def test_popcount():
    values = np.array([0, 1, 2**64 - 1, 0x0F0F], dtype=np.uint64)
    assert popcount64(values).tolist() == [0, 1, 64, 8]


def test_groups_are_connected_components():
    a = 0
    b = a ^ 0b1111  # 4 bits from a
    c = b ^ (0b1111 << 8)  # 4 from b, 8 from a
    d = c ^ (0xFF << 40)  # 8 more: linked at threshold 8 but not 4
    far = (1 << 64) - 1
    labels = group_hashes([a, b, c, d, far, a], 4).tolist()
    assert labels[0] == labels[1] == labels[2] == labels[5]
    assert len({labels[0], labels[3], labels[4]}) == 3
    labels = group_hashes([a, b, c, d, far], 8).tolist()
    assert len(set(labels[:4])) == 1 and labels[4] != labels[0]
    assert group_hashes([], 8).tolist() == []


def test_skewed_buckets_are_chunked(monkeypatch):
    # Hashes sharing most blocks make huge buckets; candidates are materialised in bounded chunks.
    from prep import hash_index

    monkeypatch.setattr(hash_index, "_PAIR_CHUNK", 1000)
    rng = np.random.default_rng(2)
    values = np.unique(rng.integers(0, 2**16, size=1500, dtype=np.uint64) << np.uint64(48))
    i, j = hamming_pairs(values, 2)
    assert as_set((i, j)) == brute(values, 2)


def test_connected_components_without_edges():
    assert connected_components(3, np.empty(0, np.int64), np.empty(0, np.int64)).tolist() == [0, 1, 2]


@pytest.mark.parametrize("block", [None, 1, 7, 1000])
def test_cosine_pairs_match_all_pairs_in_any_block_size(block):
    from prep.clip_embed import cosine_pairs

    rng = np.random.default_rng(0)
    unit = rng.normal(size=(300, 8)).astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    unit[10] = unit[3]
    unit[20] = 0  # an unreadable image's zero row links to nothing
    sims = unit @ unit.T
    expected = {(i, j) for i in range(300) for j in range(i + 1, 300)
                if sims[i, j] >= 0.95 and 20 not in (i, j)}
    assert (3, 10) in expected
    assert as_set(cosine_pairs(unit, 0.95, block=block)) == expected
