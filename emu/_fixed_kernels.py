"""The narrow fixed-point accumulator in 32-bit lanes, blocked for the caches.

`mac_fixed32` computes what `emu._mac_kernels.mac_rows` computes for the
sequential order with exact products aligned by a shift (``term_mul``,
``term_mul_shl``, ``term_mul_floor``) into a fixed accumulator that wraps or
saturates after every addition (``add_fixed``), when every value of the
chain fits a 32-bit integer: the accumulator has at most 30 bits and every
aligned product is below 2^29 in magnitude (the caller checks). Then
s = acc + t cannot overflow int32, and neither can s - lo for the wrap, so
each step is the int64 kernel's step on narrower lanes: twice as many per
vector. Rows go in blocks of `ROWS` and columns in tiles of `COLS`: each row
of a weight tile, loaded once, serves every row of the block, and the
block's accumulators stay in the L1 cache. The order of the additions of
each output is unchanged (k = 0, 1, ..., K-1), so the results, codes and
overflow counts are the int64 kernel's, bit for bit (the tests compare them).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["COLS", "ROWS", "fits_int32", "mac_fixed32", "mac_fixed32_serial"]

#: rows of a block and columns of a tile (4 x 512 int32 accumulators: 8 KB, in L1 with their counts)
ROWS, COLS = 4, 512


def fits_int32(acc_bits: int, term_max: int) -> bool:
    """Whether an accumulator of ``acc_bits`` bits and aligned products up to ``term_max`` in magnitude
    run in int32 lanes: |acc + t| and |acc + t - lo| stay below 2^31."""
    return acc_bits <= 30 and term_max < 1 << 29


@njit(cache=True, inline="always")
def _step(acc, c, a, wrow, sl, sr, lo, hi, mask, wrap):
    """acc[j] = fit(acc[j] + ((a * wrow[j]) << sl) >> sr), counting the steps that left the range."""
    if wrap:
        for j in range(acc.size):
            s = np.int32(acc[j] + np.int32(np.int32(a * wrow[j]) << sl >> sr))
            r = np.int32(np.int32((s - lo) & mask) + lo)
            c[j] += np.int32(r != s)
            acc[j] = r
    else:
        for j in range(acc.size):
            s = np.int32(acc[j] + np.int32(np.int32(a * wrow[j]) << sl >> sr))
            r = min(max(s, lo), hi)
            c[j] += np.int32(r != s)
            acc[j] = r


@njit(cache=True)
def _block(A, W, init, out, cnt, i0, sl, sr, lo, hi, mask, wrap):
    """Rows i0 .. i0 + ROWS - 1 (fewer at the end) of `mac_fixed32`, tile by tile of columns."""
    M, K = A.shape
    N = W.shape[1]
    rows = min(ROWS, M - i0)
    last = init.shape[0] - 1
    acc = np.empty((ROWS, COLS), np.int32)
    c = np.empty((ROWS, COLS), np.int32)
    for j0 in range(0, N, COLS):
        jn = min(COLS, N - j0)
        for r in range(rows):
            row = init[min(i0 + r, last)]
            for j in range(jn):
                acc[r, j] = row[j0 + j]
                c[r, j] = 0
        for k in range(K):
            wrow = W[k, j0:j0 + jn]
            for r in range(rows):
                _step(acc[r, :jn], c[r, :jn], A[i0 + r, k], wrow, sl, sr, lo, hi, mask, wrap)
        for r in range(rows):
            for j in range(jn):
                out[i0 + r, j0 + j] = acc[r, j]
                cnt[i0 + r, j0 + j] = c[r, j]


@njit(parallel=True, cache=True)
def mac_fixed32(A, W, init, out, cnt, sl, sr, lo, hi, mask, wrap):
    """out[i, j] = the accumulator after acc = fit(acc + ((A[i, k] W[k, j]) << sl) >> sr) for k = 0..K-1,
    from acc = init[i] (``init`` (1, N) or (M, N)); ``cnt[i, j]`` counts the additions that wrapped
    (``wrap``: keep the low bits, ((s - lo) & mask) + lo) or saturated (clamp to [lo, hi]). A (M, K), W
    (K, N) and init hold int32 codes; out and cnt are (M, N) int64 and int32. Blocks of rows run in
    parallel."""
    sl32, sr32, lo32, hi32, mask32 = np.int32(sl), np.int32(sr), np.int32(lo), np.int32(hi), np.int32(mask)
    for b in prange((A.shape[0] + ROWS - 1) // ROWS):
        _block(A, W, init, out, cnt, b * ROWS, sl32, sr32, lo32, hi32, mask32, wrap)


@njit(cache=True)
def mac_fixed32_serial(A, W, init, out, cnt, sl, sr, lo, hi, mask, wrap):
    """`mac_fixed32` without threads (for products too small to repay a thread launch)."""
    sl32, sr32, lo32, hi32, mask32 = np.int32(sl), np.int32(sr), np.int32(lo), np.int32(hi), np.int32(mask)
    for b in range((A.shape[0] + ROWS - 1) // ROWS):
        _block(A, W, init, out, cnt, b * ROWS, sl32, sr32, lo32, hi32, mask32, wrap)
