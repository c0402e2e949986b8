"""Grouping near-identical 64-bit hashes without comparing all pairs in Python.

Multi-index hashing: split each hash into four 16-bit blocks. Two hashes within T bits agree to
within T // 4 bits on at least one block (pigeonhole), so for each block and each flip mask of at
most T // 4 bits, candidate pairs come from a 65,536-bucket table lookup, all in numpy, and only
candidates are checked with a popcount. When the threshold makes that more work than comparing
everything, a blocked, vectorised all-pairs pass is used instead.

What it buys (benchmarks/machinery.py, both passes interleaved in one run, 2 cores, loaded: load
average 4.0; dedupe's default threshold 8, 10% near copies): 5,000 hashes 15 ms against 113 ms for
the all-pairs pass (7.4x), 20,000 hashes 88 ms against 1.32 s (15x); at 1,000 hashes the two are
even (16 ms / 15 ms) and at 100 the all-pairs pass wins (0.1 ms / 6 ms), and the cost model
below picks the all-pairs pass for both. benchmarks/curation.py: 100,000 hashes grouped in 1.36 s.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np

_PAIR_CHUNK = 4_000_000  # candidate pairs materialised at once (bounds memory on skewed data)
_DENSE_ROWS = 1 << 18  # elements per row block of the all-pairs pass (stays in cache)


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
    if cost < _NS_PER_DENSE_PAIR * n * n / 2:
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


# Rough costs in nanoseconds, measured on a laptop-class CPU; only their ratios matter.
_NS_PER_MASK = 60_000.0
_NS_PER_PROBE_CACHED = 3.0  # bucket table small enough for the CPU cache (<= 2**16 entries)
_NS_PER_PROBE_MISS = 20.0
_NS_PER_CANDIDATE = 15.0
_NS_PER_DENSE_PAIR = 3.0


def _mih_cost(n: int, threshold: int, blocks: int) -> float:
    """Estimated nanoseconds of multi-index hashing with this many blocks."""
    radius = threshold // blocks
    cost = 0.0
    for bits in _block_bits(blocks):
        masks = sum(comb(bits, r) for r in range(radius + 1))
        probe = _NS_PER_PROBE_CACHED if bits <= 16 else _NS_PER_PROBE_MISS
        # each mask probes every row; a random bucket holds n / 2**bits rows (half the pairs are skipped)
        cost += masks * (_NS_PER_MASK + n * probe + _NS_PER_CANDIDATE * n * n / 2**bits / 2)
    return cost


def _best_blocks(n: int, threshold: int) -> tuple[int, float]:
    options = [(_mih_cost(n, threshold, m), m) for m in range(3, 9)]
    cost, blocks = min(options)
    return blocks, cost


def _pairs_multi_index(values: np.ndarray, threshold: int, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    radius = threshold // blocks
    shift = 0
    for bits in _block_bits(blocks):
        keys = ((values >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
        shift += bits
        # Rows in key order: a bucket is a run of positions, and probes walk the table in order.
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        sorted_values = values[order]
        counts = np.bincount(sorted_keys, minlength=1 << bits).astype(np.int64)
        starts = np.cumsum(counts) - counts
        positions = np.arange(len(keys), dtype=np.int64)
        for mask in _flip_masks(bits, radius):
            if mask == 0:
                rows, probe = positions, sorted_keys
            else:
                # a pair of distinct keys is met from both ends; take it from the smaller key only
                probe = sorted_keys ^ mask
                rows = np.flatnonzero(probe > sorted_keys)
                probe = probe[rows]
            hits = counts[probe]
            live = np.flatnonzero(hits)
            if len(live) == 0:
                continue
            rows, hits, first = rows[live], hits[live], starts[probe[live]]
            for lo, hi in _chunks_by_total(hits):
                p, q = _expand(rows[lo:hi], hits[lo:hi], first[lo:hi])
                if mask == 0:
                    keep = p < q
                    p, q = p[keep], q[keep]
                close = popcount64(sorted_values[p] ^ sorted_values[q]) <= threshold
                if close.any():
                    i, j = order[p[close]], order[q[close]]
                    found_i.append(np.minimum(i, j))
                    found_j.append(np.maximum(i, j))
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


def _expand(rows: np.ndarray, hits: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row paired with each position of its probed bucket (a run starting at `first`)."""
    total = int(hits.sum())
    p = np.repeat(rows, hits)
    q = np.arange(total, dtype=np.int64) + np.repeat(first - (np.cumsum(hits) - hits), hits)
    return p, q


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
