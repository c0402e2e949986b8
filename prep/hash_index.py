"""Grouping near-identical 64-bit hashes without comparing all pairs in Python.

Multi-index hashing: split each hash into four 16-bit blocks. Two hashes within T bits agree to
within T // 4 bits on at least one block (pigeonhole), so for each block and each flip mask of at
most T // 4 bits, candidate pairs come from a 65,536-bucket table lookup, all in numpy, and only
candidates are checked with a popcount. When the threshold makes that more work than comparing
everything, a blocked, vectorised all-pairs pass is used instead.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

_PAIR_CHUNK = 4_000_000  # candidate pairs materialised at once (bounds memory on skewed data)
_DENSE_ROWS = 8_000_000  # elements per row block of the all-pairs pass


def popcount64(values: np.ndarray) -> np.ndarray:
    """Set bits of each uint64."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    as_bytes = values.astype(np.uint64).view(np.uint8).reshape(*values.shape, 8)
    return table[as_bytes].sum(axis=-1, dtype=np.uint8)


def as_uint64(hashes) -> np.ndarray:
    """Python ints (0..2**64-1) or an integer array as a uint64 array."""
    if isinstance(hashes, np.ndarray):
        return hashes.astype(np.uint64, copy=False)
    return np.fromiter((int(h) for h in hashes), dtype=np.uint64, count=len(hashes))


def _flip_masks(bits: int, radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for chosen in combinations(range(bits), r):
            masks.append(sum(1 << b for b in chosen))
    return np.array(masks, dtype=np.int64)


def hamming_pairs(values: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i < j) of hashes differing in at most `threshold` bits (each pair once)."""
    values = as_uint64(values)
    n = len(values)
    if n < 2 or threshold < 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if threshold >= 64:
        i, j = np.triu_indices(n, 1)
        return i.astype(np.int64), j.astype(np.int64)
    blocks, cost = _best_blocks(n, threshold)
    if cost < 4.0 * n * n / 2:
        i, j = _pairs_multi_index(values, threshold, blocks)
    else:
        i, j = _pairs_dense(values, threshold)
    if len(i) == 0:
        return i, j
    keys = np.unique(i * n + j)
    return keys // n, keys % n


def _block_bits(blocks: int) -> list[int]:
    base, extra = divmod(64, blocks)
    return [base + 1 if b < extra else base for b in range(blocks)]


def _mih_cost(n: int, threshold: int, blocks: int) -> float:
    """Estimated work (in row-probe units) of multi-index hashing with this many blocks."""
    radius = threshold // blocks
    cost = 0.0
    for bits in _block_bits(blocks):
        masks = sum(comb(bits, r) for r in range(radius + 1))
        # a probe scans every row; each candidate pair costs several array passes more
        cost += masks * (n * (1.0 + bits / 16) + 8.0 * n * n / 2**bits)
    return cost


def _best_blocks(n: int, threshold: int) -> tuple[int, float]:
    options = [(_mih_cost(n, threshold, m), m) for m in range(3, 9)]
    cost, blocks = min(options)
    return blocks, cost


def _pairs_multi_index(values: np.ndarray, threshold: int, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    radius = threshold // blocks
    rows = np.arange(n, dtype=np.int64)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    shift = 0
    for bits in _block_bits(blocks):
        keys = ((values >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
        shift += bits
        order = np.argsort(keys, kind="stable")
        counts = np.bincount(keys, minlength=1 << bits)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        for mask in _flip_masks(bits, radius):
            probe = keys ^ mask
            hits = counts[probe]
            live = np.flatnonzero(hits)
            if len(live) == 0:
                continue
            hits = hits[live]
            for lo, hi in _chunks_by_total(hits):
                sel = live[lo:hi]
                i, j = _expand(rows[sel], hits[lo:hi], starts[probe[sel]], order)
                keep = i < j
                i, j = i[keep], j[keep]
                close = popcount64(values[i] ^ values[j]) <= threshold
                if close.any():
                    found_i.append(i[close])
                    found_j.append(j[close])
    if not found_i:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(found_i), np.concatenate(found_j)


def _chunks_by_total(hits: np.ndarray):
    """Row ranges whose candidate counts sum to about _PAIR_CHUNK each."""
    total = np.cumsum(hits)
    if total[-1] <= _PAIR_CHUNK:
        yield 0, len(hits)
        return
    lo = 0
    while lo < len(hits):
        base = total[lo - 1] if lo else 0
        hi = int(np.searchsorted(total, base + _PAIR_CHUNK, side="right"))
        hi = max(hi, lo + 1)
        yield lo, hi
        lo = hi


def _expand(rows: np.ndarray, hits: np.ndarray, starts: np.ndarray, order: np.ndarray):
    """Each row paired with each member of its probed bucket."""
    total = int(hits.sum())
    i = np.repeat(rows, hits)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(hits) - hits, hits)
    j = order[np.repeat(starts, hits) + offsets]
    return i, j


def _pairs_dense(values: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    step = max(1, _DENSE_ROWS // max(n, 1))
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        block = values[lo:hi, None] ^ values[None, lo:]
        close = popcount64(block) <= threshold
        r, c = np.nonzero(close)
        i = r + lo
        j = c + lo
        keep = i < j
        found_i.append(i[keep].astype(np.int64))
        found_j.append(j[keep].astype(np.int64))
    return np.concatenate(found_i), np.concatenate(found_j)


def connected_components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """A component label per node, for an undirected graph given as edge lists."""
    if len(i) == 0:
        return np.arange(n, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components as scipy_components

    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = scipy_components(graph, directed=False)
    return labels.astype(np.int64)


def group_hashes(hashes, threshold: int) -> np.ndarray:
    """A component label per hash: same label when linked by a chain of <= threshold-bit steps."""
    values = as_uint64(hashes)
    if len(values) == 0:
        return np.empty(0, np.int64)
    unique, inverse = np.unique(values, return_inverse=True)
    i, j = hamming_pairs(unique, threshold)
    labels = connected_components(len(unique), i, j)
    return labels[inverse.reshape(-1)]
