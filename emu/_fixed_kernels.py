"""The narrow fixed-point accumulator in 32-bit and 16-bit lanes, blocked for the caches.

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
block's accumulators stay in the L1 cache, and each accumulator is loaded
and stored once per four additions. The order of the additions of
each output is unchanged (k = 0, 1, ..., K-1), so the results, codes and
overflow counts are the int64 kernel's, bit for bit (the tests compare them).

`mac_fixed16` runs accumulators of at most 16 bits in 16-bit lanes (twice as
many per vector again). An accumulator of b bits is held shifted up by
u = 16 - b, so that its range is the top of the int16 range: code q is held
as q * 2^u. Every held value is a multiple of 2^u, so a sum leaves the b-bit
range exactly when it leaves the int16 range; the saturating add of int16
(one instruction, ``vpaddsw`` on x86) then gives 32767 or -32768, and
clearing the low u bits gives hi * 2^u or lo * 2^u, the saturated code. The
wrapping add of int16 is the b-bit wrap. An addition overflowed exactly when
the saturating and the wrapping sums differ. Example, b = 12 (u = 4): hi =
2047 is held as 32752; adding a term 3 (held as 48) saturates to 32767,
cleared to 32752 (2047 again), while the wrapping sum is -32736 (the code
-2046): the two differ, so the addition is counted.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["COLS", "ROWS", "fits_int16", "fits_int32", "held_weights", "mac_fixed16", "mac_fixed16_serial",
           "mac_fixed32", "mac_fixed32_serial"]

#: rows of a block and columns of a tile (4 x 512 int32 accumulators: 8 KB, in L1 with their counts)
ROWS, COLS = 4, 512
#: the same for 16-bit lanes (16 x 512 int16 accumulators: 16 KB), and the additions per int16 count
#: (a multiple of 4 below 2^15)
ROWS16, CHUNK16 = 16, 32764


def fits_int32(acc_bits: int, term_max: int) -> bool:
    """Whether an accumulator of ``acc_bits`` bits and aligned products up to ``term_max`` in magnitude
    run in int32 lanes: |acc + t| and |acc + t - lo| stay below 2^31."""
    return acc_bits <= 30 and term_max < 1 << 29


def fits_int16(acc_bits: int, prod_max: int, sl: int = 0, sr: int = 0) -> bool:
    """Whether a signed accumulator of ``acc_bits`` bits and products up to ``prod_max`` in magnitude,
    shifted up by ``sl`` or floored by ``sr`` bits, run in 16-bit lanes: the shifted product and the held
    term (shifted up by 16 - acc_bits) stay below 2^15 in magnitude."""
    shifted = prod_max << sl
    term = -(-shifted >> sr)  # the largest magnitude of floor(p / 2^sr) for |p| <= shifted
    return 2 <= acc_bits <= 16 and shifted < 1 << 15 and term << (16 - acc_bits) < 1 << 15


@njit(cache=True, inline="always")
def _fit32(x, t, lo, hi, mask, wrap):
    """(x + t wrapped ((s - lo) & mask) + lo or saturated to [lo, hi]; 1 if that changed it, else 0)."""
    s = np.int32(x + t)
    r = np.int32(np.int32((s - lo) & mask) + lo) if wrap else min(max(s, lo), hi)
    return r, np.int32(r != s)


@njit(cache=True, inline="always")
def _step(acc, c, a, wrow, mul, div, floor, lo, hi, mask, wrap):
    """acc[j] = fit(acc[j] + term) for every j, counting the steps that left the range. The term is
    a wrow[j] 2^sl (``mul`` = 2^sl) or, with ``floor``, floor(a wrow[j] / 2^sr), the high part of the
    product by ``div`` = 2^(30 - sr) (a multiply: a shift by a variable count, which numba makes 64-bit,
    would stop the vectorisation). One loop per case."""
    if floor:
        for j in range(acc.size):
            t = np.int32((np.int64(np.int32(a * wrow[j])) * np.int64(div)) >> 30)
            r, o = _fit32(acc[j], t, lo, hi, mask, wrap)
            c[j] += o
            acc[j] = r
    elif wrap:
        for j in range(acc.size):
            r, o = _fit32(acc[j], np.int32(np.int32(a * wrow[j]) * mul), lo, hi, mask, True)
            c[j] += o
            acc[j] = r
    else:
        for j in range(acc.size):
            r, o = _fit32(acc[j], np.int32(np.int32(a * wrow[j]) * mul), lo, hi, mask, False)
            c[j] += o
            acc[j] = r


@njit(cache=True, inline="always")
def _term32(a, wj, mul, div, floor):
    """`_step`'s term: a wj 2^sl, or with ``floor`` floor(a wj / 2^sr)."""
    if floor:
        return np.int32((np.int64(np.int32(a * wj)) * np.int64(div)) >> 30)
    return np.int32(np.int32(a * wj) * mul)


@njit(cache=True, inline="always")
def _loop4(acc, c, a0, a1, a2, a3, w0, w1, w2, w3, mul, div, floor, lo, hi, mask, wrap):
    """`_step4`'s loop; its callers pass the flags as constants, so each case compiles to a loop of its
    own."""
    for j in range(acc.size):
        r0, o0 = _fit32(acc[j], _term32(a0, w0[j], mul, div, floor), lo, hi, mask, wrap)
        r1, o1 = _fit32(r0, _term32(a1, w1[j], mul, div, floor), lo, hi, mask, wrap)
        r2, o2 = _fit32(r1, _term32(a2, w2[j], mul, div, floor), lo, hi, mask, wrap)
        r3, o3 = _fit32(r2, _term32(a3, w3[j], mul, div, floor), lo, hi, mask, wrap)
        c[j] += o0 + o1 + o2 + o3
        acc[j] = r3


@njit(cache=True, inline="always")
def _step4(acc, c, a0, a1, a2, a3, w0, w1, w2, w3, mul, div, floor, lo, hi, mask, wrap):
    """Four `_step` calls in order (k to k + 3) with each acc[j] and c[j] loaded and stored once, one loop
    per case as there."""
    if floor:
        _loop4(acc, c, a0, a1, a2, a3, w0, w1, w2, w3, mul, div, True, lo, hi, mask, wrap)
    elif wrap:
        _loop4(acc, c, a0, a1, a2, a3, w0, w1, w2, w3, mul, div, False, lo, hi, mask, True)
    else:
        _loop4(acc, c, a0, a1, a2, a3, w0, w1, w2, w3, mul, div, False, lo, hi, mask, False)


@njit(cache=True)
def _block(A, W, init, out, cnt, i0, mul, div, floor, lo, hi, mask, wrap):
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
        k4 = K - K % 4
        for k in range(0, k4, 4):  # four additions per load and store of the accumulators
            w0, w1 = W[k, j0:j0 + jn], W[k + 1, j0:j0 + jn]
            w2, w3 = W[k + 2, j0:j0 + jn], W[k + 3, j0:j0 + jn]
            for r in range(rows):
                ar = A[i0 + r]
                _step4(acc[r, :jn], c[r, :jn], ar[k], ar[k + 1], ar[k + 2], ar[k + 3], w0, w1, w2, w3, mul,
                       div, floor, lo, hi, mask, wrap)
        for k in range(k4, K):
            wrow = W[k, j0:j0 + jn]
            for r in range(rows):
                _step(acc[r, :jn], c[r, :jn], A[i0 + r, k], wrow, mul, div, floor, lo, hi, mask, wrap)
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
    mul, div = np.int32(1 << sl), np.int32(1 << (30 - min(sr, 30)))  # |p| < 2^29: floor(p / 2^30) = p >> sr
    lo32, hi32, mask32 = np.int32(lo), np.int32(hi), np.int32(mask)
    for b in prange((A.shape[0] + ROWS - 1) // ROWS):
        _block(A, W, init, out, cnt, b * ROWS, mul, div, sr > 0, lo32, hi32, mask32, wrap)


@njit(cache=True)
def mac_fixed32_serial(A, W, init, out, cnt, sl, sr, lo, hi, mask, wrap):
    """`mac_fixed32` without threads (for products too small to repay a thread launch)."""
    mul, div = np.int32(1 << sl), np.int32(1 << (30 - min(sr, 30)))
    lo32, hi32, mask32 = np.int32(lo), np.int32(hi), np.int32(mask)
    for b in range((A.shape[0] + ROWS - 1) // ROWS):
        _block(A, W, init, out, cnt, b * ROWS, mul, div, sr > 0, lo32, hi32, mask32, wrap)


@njit(cache=True, inline="always")
def _sat16(a, t, keep):
    """(a + t saturated, its low bits cleared by ``keep``; 1 if the addition overflowed, else 0)."""
    w = np.int16(a + t)
    s = np.int16(min(max(np.int32(a) + np.int32(t), -32768), 32767))
    return np.int16(s & keep), np.int16(s != w)


@njit(cache=True, inline="always")
def _wrap16(a, t):
    """(a + t wrapped; 1 if the addition overflowed, else 0)."""
    w = np.int16(a + t)
    s = np.int16(min(max(np.int32(a) + np.int32(t), -32768), 32767))
    return w, np.int16(s != w)


@njit(cache=True, inline="always")
def _fit16(a, t, keep, wrap):
    """`_wrap16` or `_sat16`."""
    if wrap:
        return _wrap16(a, t)
    return _sat16(a, t, keep)


@njit(cache=True, inline="always")
def _floored(a, wj, m, u):
    """floor(a wj / 2^sr) 2^up held in int16, with m = 2^(16 - sr) and u = 2^up: the floor is the high half
    of the product by m (a multiply, where a shift by a variable count would stop the vectorisation)."""
    return np.int16(np.int16((np.int32(np.int16(a * wj)) * m) >> 16) * u)


@njit(cache=True, inline="always")
def _step16(acc, c, a0, a1, a2, a3, w0, w1, w2, w3, m, u, keep, floor, wrap):
    """Four additions in order, acc[j] = fit(acc[j] + term_q) for q = 0..3, for every j, in held int16
    codes, counting overflows in c: each acc[j] and c[j] is loaded and stored once per four additions. The
    term is a_q w_q[j] (the weights come shifted up already) or, with ``floor``, `_floored`. The common
    cases have loops of their own (a flag tested inside the loop costs about a fifth of the speed)."""
    if floor:
        for j in range(acc.size):
            s0, o0 = _fit16(acc[j], _floored(a0, w0[j], m, u), keep, wrap)
            s1, o1 = _fit16(s0, _floored(a1, w1[j], m, u), keep, wrap)
            s2, o2 = _fit16(s1, _floored(a2, w2[j], m, u), keep, wrap)
            s3, o3 = _fit16(s2, _floored(a3, w3[j], m, u), keep, wrap)
            c[j] += np.int16(o0 + o1 + o2 + o3)
            acc[j] = s3
    elif wrap:
        for j in range(acc.size):
            s0, o0 = _wrap16(acc[j], np.int16(a0 * w0[j]))
            s1, o1 = _wrap16(s0, np.int16(a1 * w1[j]))
            s2, o2 = _wrap16(s1, np.int16(a2 * w2[j]))
            s3, o3 = _wrap16(s2, np.int16(a3 * w3[j]))
            c[j] += np.int16(o0 + o1 + o2 + o3)
            acc[j] = s3
    else:
        for j in range(acc.size):
            s0, o0 = _sat16(acc[j], np.int16(a0 * w0[j]), keep)
            s1, o1 = _sat16(s0, np.int16(a1 * w1[j]), keep)
            s2, o2 = _sat16(s1, np.int16(a2 * w2[j]), keep)
            s3, o3 = _sat16(s2, np.int16(a3 * w3[j]), keep)
            c[j] += np.int16(o0 + o1 + o2 + o3)
            acc[j] = s3


@njit(cache=True)
def _tile16(A, W, init, out, cnt, i0, j0, sr, up, wrap, tr):
    """Rows i0 .. i0 + ROWS16 - 1 and columns j0 .. j0 + COLS - 1 (fewer at the ends) of `mac_fixed16`,
    four additions per pass (a last pass of fewer adds zeros, which change nothing), in chunks of at most
    CHUNK16 additions so that the int16 counts cannot wrap; with ``tr`` out and cnt take the transpose."""
    M, K = A.shape
    N = W.shape[1]
    rows = min(ROWS16, M - i0)
    jn = min(COLS, N - j0)
    last = init.shape[0] - 1
    keep = np.int16(-(1 << up))
    floor = sr > 0
    m = np.int32(1 << (16 - min(sr, 15)))
    u = np.int16(1 << up)
    zero = np.int16(0)
    acc = np.empty((ROWS16, COLS), np.int16)
    c = np.empty((ROWS16, COLS), np.int16)
    c32 = np.zeros((ROWS16, COLS), np.int32)
    for r in range(rows):
        row = init[min(i0 + r, last)]
        for j in range(jn):
            acc[r, j] = np.int16(row[j0 + j] << up)
    for k0 in range(0, K, CHUNK16):
        k1 = min(K, k0 + CHUNK16)
        c[:rows, :jn] = 0
        for k in range(k0, k1, 4):
            w0 = W[k, j0:j0 + jn]
            w1 = W[min(k + 1, k1 - 1), j0:j0 + jn]
            w2 = W[min(k + 2, k1 - 1), j0:j0 + jn]
            w3 = W[min(k + 3, k1 - 1), j0:j0 + jn]
            for r in range(rows):
                ar = A[i0 + r]
                _step16(acc[r, :jn], c[r, :jn], ar[k], ar[k + 1] if k + 1 < k1 else zero,
                        ar[k + 2] if k + 2 < k1 else zero, ar[k + 3] if k + 3 < k1 else zero,
                        w0, w1, w2, w3, m, u, keep, floor, wrap)
        for r in range(rows):
            for j in range(jn):
                c32[r, j] += c[r, j]
    for r in range(rows):
        for j in range(jn):
            if tr:
                out[j0 + j, i0 + r] = acc[r, j] >> up
                cnt[j0 + j, i0 + r] = c32[r, j]
            else:
                out[i0 + r, j0 + j] = acc[r, j] >> up
                cnt[i0 + r, j0 + j] = c32[r, j]


@njit(parallel=True, cache=True)
def mac_fixed16(A, W, init, out, cnt, sr, acc_bits, wrap, tr=False):
    """`mac_fixed32` for a signed accumulator of ``acc_bits`` <= 16 bits in 16-bit lanes: A and init hold
    int16 codes, W int16 codes shifted up by sl + 16 - acc_bits when ``sr`` = 0 (`held_weights`) and plain
    codes when the products are floored by ``sr`` > 0 bits; the caller checks `fits_int16`. With ``tr``
    out and cnt have the transposed shape (W's columns, A's rows): operands given as A = w^T and W = a^T
    give the product a w (a convolution's few output channels as A's rows, its many positions as W's
    columns). ``out`` receives the accumulator codes as int64 or, exactly, as float64 (a caller that wants
    values scales them in place: no second array). Tiles of ROWS16 rows and COLS columns run in parallel."""
    nt = (W.shape[1] + COLS - 1) // COLS
    for b in prange(((A.shape[0] + ROWS16 - 1) // ROWS16) * nt):
        _tile16(A, W, init, out, cnt, (b // nt) * ROWS16, (b % nt) * COLS, sr, 16 - acc_bits, wrap, tr)


@njit(cache=True)
def mac_fixed16_serial(A, W, init, out, cnt, sr, acc_bits, wrap, tr=False):
    """`mac_fixed16` without threads."""
    nt = (W.shape[1] + COLS - 1) // COLS
    for b in range(((A.shape[0] + ROWS16 - 1) // ROWS16) * nt):
        _tile16(A, W, init, out, cnt, (b // nt) * ROWS16, (b % nt) * COLS, sr, 16 - acc_bits, wrap, tr)


def held_weights(w: np.ndarray, sl: int, sr: int, acc_bits: int) -> np.ndarray:
    """The int16 weights `mac_fixed16` takes: codes times 2^(sl + 16 - acc_bits) when ``sr`` = 0 (so a
    product is already the held term), else the codes. With codes that `fits_int16` and an activation
    code of magnitude >= 1, |w| 2^s <= the largest held term < 2^15; with every activation code 0 a shifted
    weight may wrap, and every product is 0 all the same."""
    up = 0 if sr else sl + 16 - acc_bits
    if up == 0:
        return np.ascontiguousarray(w, np.int16)
    held = w * float(1 << up) if w.dtype.kind == "f" else w.astype(np.int64) << up
    return np.ascontiguousarray(held, np.int16)

