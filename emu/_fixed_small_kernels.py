"""A small fixed-point product in one kernel call, conversions included.

`mac_fixed_from_reals` computes what the general integer path computes
(`emu.datapath.integer`: the operand conversions, the accumulator's start
value from the bias, `emu._mac_kernels.mac_rows` in the sequential order
with exact products aligned by a shift, an accumulator that wraps or
saturates after every addition) for a product too small to repay threads,
without the passes between: reals are rounded to codes as they are read
(``rint_mode`` of x 2^FL, saturated to the format's codes, as
`emu._fast_kernels.fixed_fast` rounds), each output's additions run in the
order k = 0, 1, ..., K-1 on the lanes the caller picks (`lanes`): int32 lanes
holding the accumulator shifted up by the floor's sr bits, when every held
value stays below 2^31 (eight to a 256-bit vector); float64 lanes holding the
plain integers exactly, when every term is below 2^52 and the accumulator
narrower than 52 bits (four to a vector); int64 lanes otherwise. With few
output columns, fewer than the rows and than 64, the chains run down the
columns, vectorised over the rows. The accumulator's values are written as
float64. The results and every count are the general path's, bit for bit
(the tests compare them with the exact reference).

Worked example: fx<2,2> x fx<2,2> -> fx<2,2> saturating, a = [1.3, 1.7],
w = [1.5, 1.75]: the codes are round(1.3 * 4) = 5, 7 and 6, 7; the products
30 and 49 (step 2^-4) lose their two low bits on the floor alignment: 7 and 12
(step 2^-2); the accumulator goes 0 -> 7 -> 19, saturates at 7 (1.75), one
counted overflow. In int32 lanes the same chain is held 4 times larger (sr =
2): the products 30 and 49 lose their low two bits (28 and 48), the
accumulator goes 0 -> 28 -> 76 and saturates at 28 (7 held), the same code.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ._rounding import rint_mode

__all__ = ["BLOCK_ROWS", "LANES_F64", "LANES_INT32", "LANES_INT64", "codes_into", "codes_rows", "lanes",
           "mac_fixed_from_reals"]

#: rows of out per parallel block of `codes_rows`
BLOCK_ROWS = 16
#: the output columns of one pass of `_rows` (their accumulators and counts: 12 KB in float64, in L1)
TILE = 1024
#: the lanes of `mac_fixed_from_reals`' chains (`lanes`)
LANES_INT64, LANES_F64, LANES_INT32 = 0, 1, 2


def lanes(prod_max: int, sl: int, sr: int, lo: int, hi: int) -> int:
    """The narrowest lanes that hold every value of the chains exactly, for products up to ``prod_max`` in
    magnitude, shifted up by ``sl`` or floored by ``sr`` bits, into an accumulator of codes [lo, hi]:

    - `LANES_INT32` when the accumulator held 2^sr times larger stays in int32: |a w 2^sl| < 2^31 and
      (hi - lo) 2^sr + |a w 2^sl| + 2^sr < 2^31 (so s = acc + t and, for the wrap, s - lo fit);
    - `LANES_F64` when every term and every sum is an integer below 2^52;
    - `LANES_INT64` otherwise.

    >>> lanes(1 << 30, 0, 12, -(1 << 15), (1 << 15) - 1)  # fx<4,12> x fx<4,12> -> fx<4,12>
    2
    >>> lanes(1 << 30, 0, 12, -(1 << 19), (1 << 19) - 1), lanes(1 << 60, 0, 0, -(1 << 40), 1 << 40)
    (1, 0)
    """
    term = prod_max << sl
    if term < 1 << 31 and ((hi - lo) << sr) + term + (1 << sr) < 1 << 31:
        return LANES_INT32
    if term < 1 << 52 and hi - lo < 1 << 52:
        return LANES_F64
    return LANES_INT64


@njit(cache=True)
def codes_into(x, transposed, scale, lo, hi, mode, out, mul=1):
    """out (R, C) = the codes of x (R, C), or of x.T when ``transposed`` (x is then (C, R), C-ordered):
    rint_mode(x 2^FL) saturated to [lo, hi], times ``mul`` (a power of two: `emu._fixed_kernels.mac_fixed16`
    takes weights held shifted up), in out's type (an integer type or float64; the caller knows they fit).
    Returns (overflow count, NaN seen); a NaN's code is 0. A transposed x is read 64 rows at a time into a
    small buffer in its own order (the loop that vectorises), then moved across.

    >>> out = np.empty((1, 3), np.int16)
    >>> codes_into(np.array([[0.3, -9.0, 1.5]]), False, 4.0, -8.0, 7.0, 0, out, 2)
    (1, False)
    >>> out.tolist()
    [[2, -16, 12]]
    """
    if not transposed:
        return _codes_same(x, scale, lo, hi, mode, out, mul)
    R, C = out.shape  # 64 rows of x at a time: their codes in x's order (vectorised), then moved across
    tmp = np.empty((min(C, 64), R), out.dtype)
    ovf = 0
    nan = False
    for c0 in range(0, C, 64):
        cn = min(64, C - c0)
        o, n = _codes_same(x[c0:c0 + cn], scale, lo, hi, mode, tmp[:cn], mul)
        ovf += o
        nan |= n
        for r in range(R):
            for c in range(cn):
                out[r, c0 + c] = tmp[c, r]
    return ovf, nan


@njit(cache=True)
def _codes_same(x, scale, lo, hi, mode, out, mul):
    """`codes_into` of x in its own shape, without a branch on NaN: on contiguous rows the loops
    vectorise, nearest even (the common mode) in a loop of its own."""
    R, C = out.shape
    ovf = 0
    nan = 0
    fmul = np.float64(mul)
    for r in range(R):
        row = x[r]
        if mode == 0:
            for c in range(C):
                ovf, nan = _one_code(out, r, c, row[c], np.rint(row[c] * scale), lo, hi, fmul, ovf, nan)
        else:
            for c in range(C):
                ovf, nan = _one_code(out, r, c, row[c], rint_mode(row[c] * scale, mode), lo, hi, fmul,
                                      ovf, nan)
    return ovf, nan > 0


@njit(cache=True)
def _one_code(out, r, c, xi, q, lo, hi, fmul, ovf, nan):
    """out[r, c] = q clamped to [lo, hi], times ``fmul`` (0 for a NaN xi), without a branch; the running
    (overflow, NaN) counts."""
    isnan = xi != xi
    qc = min(max(q, lo), hi)
    out[r, c] = 0.0 if isnan else qc * fmul  # cast to out's type on the store
    return ovf + ((qc != q) & ~isnan), nan + isnan


@njit(parallel=True, cache=True)
def codes_rows(x, transposed, scale, lo, hi, mode, out, mul, stats):
    """`codes_into` over blocks of `BLOCK_ROWS` rows of out in parallel: stats[b] = (overflows, NaNs seen)
    of block b. The codes do not depend on the blocks."""
    R = out.shape[0]
    for b in prange(stats.shape[0]):
        r0 = b * BLOCK_ROWS
        r1 = min(R, r0 + BLOCK_ROWS)
        if transposed:
            ovf, nan = codes_into(x[:, r0:r1], True, scale, lo, hi, mode, out[r0:r1], mul)
        else:
            ovf, nan = codes_into(x[r0:r1], False, scale, lo, hi, mode, out[r0:r1], mul)
        stats[b, 0] = ovf
        stats[b, 1] = nan


@njit(cache=True)
def mac_fixed_from_reals(a, a_t, w, w_t, b, a_prm, w_prm, b_prm, sl, sr, lo, hi, mask, wrap, step, lane, out,
                         cnt):
    """out[i, j] = step * the accumulator after acc = fit(acc + ((A[i, k] W[k, j]) << sl) >> sr), k = 0..K-1,
    from acc = B[j]; A, W and B are the codes of a, w and b.

    a (M, K) or, with ``a_t``, a.T given C-ordered; w (K, N) or, with ``w_t``, w.T; b (N,) reals. Each
    ``*_prm`` is (2^FL, lowest code, highest code, rounding mode) of the conversion to that operand's
    format (for b: the accumulator's). fit wraps (keeps the low bits, ((s - lo) & mask) + lo) or saturates
    (clamps to [lo, hi]); ``cnt[i, j]`` counts the additions that did. ``lane`` (`lanes`) says which lanes
    hold the chains. Returns (conversions that overflowed, a NaN was met, additions that overflowed); after
    a NaN ``out`` is not written.
    """
    M = out.shape[0]
    N = out.shape[1]
    K = a.shape[0] if a_t else a.shape[1]
    cols = M > N and N < 64  # few output columns: the chains run down them (`_rows` transposed)
    a_shape = (K, M) if cols else (M, K)
    if lane == LANES_INT32:  # the accumulator held 2^sr times larger: the floor clears the term's low bits
        A32, W32, B32 = np.empty(a_shape, np.int32), np.empty((K, N), np.int32), np.empty((1, N), np.int32)
        ovf, nan = _convert(a, a_t != cols, w, w_t, b, a_prm, w_prm, b_prm, A32, W32, B32, 1 << sr)
        prm32 = (np.int32(1 << sl), np.int32(-(1 << sr)), np.int32(lo << sr), np.int32(hi << sr),
                 np.int32(((mask + 1) << sr) - 1))
        return ovf, nan, 0 if nan else _both(A32, W32, B32, prm32, wrap, step * 2.0**-sr, out, cnt, cols)
    if lane == LANES_F64:  # every term and sum an integer float64 holds exactly
        Af, Wf, Bf = np.empty(a_shape), np.empty((K, N)), np.empty((1, N))
        ovf, nan = _convert(a, a_t != cols, w, w_t, b, a_prm, w_prm, b_prm, Af, Wf, Bf, 1)
        prm = (2.0**sl, 2.0**-sr, float(lo), float(hi), float(mask) + 1.0)
        return ovf, nan, 0 if nan else _both(Af, Wf, Bf, prm, wrap, step, out, cnt, cols)
    A, W, B = np.empty(a_shape, np.int64), np.empty((K, N), np.int64), np.empty((1, N), np.int64)
    ovf, nan = _convert(a, a_t != cols, w, w_t, b, a_prm, w_prm, b_prm, A, W, B, 1)
    prm64 = (np.int64(sl), np.int64(sr), np.int64(lo), np.int64(hi), np.int64(mask))
    return ovf, nan, 0 if nan else _both(A, W, B, prm64, wrap, step, out, cnt, cols)


@njit(cache=True)
def _both(A, W, B, prm, wrap, step, out, cnt, cols):
    """`_rows` on the problem (A read as (M, K)) or, with ``cols``, on its transpose (A read as (K, M))."""
    if cols:
        return _rows(W.T, A, B.T, prm, wrap, step, out.T, cnt.T)
    return _rows(A, W, B, prm, wrap, step, out, cnt)


@njit(cache=True)
def _convert(a, a_flip, w, w_t, b, a_prm, w_prm, b_prm, A, W, B, b_mul):
    """The codes of a, w and b into A, W and B (`codes_into`; a read through its transpose when
    ``a_flip``; b's codes times ``b_mul``); (overflows, a NaN was met)."""
    oa, na = codes_into(a, a_flip, a_prm[0], a_prm[1], a_prm[2], np.int64(a_prm[3]), A)
    ow, nw = codes_into(w, w_t, w_prm[0], w_prm[1], w_prm[2], np.int64(w_prm[3]), W)
    ob, nb = codes_into(b.reshape(1, B.shape[1]), False, b_prm[0], b_prm[1], b_prm[2], np.int64(b_prm[3]), B,
                        b_mul)
    return oa + ow + ob, na or nw or nb


def _pass_f64(acc, c, ai, w, prm, wrap):
    """`_pass` on float64 codes: ``prm`` (2^sl, 2^-sr, lo, hi, 2^b); a term floor(a w 2^sl 2^-sr) (one of
    the powers is 1), a wrap s - floor((s - lo) / 2^b) 2^b. AVX2 has no vector int64 multiply, min, max or
    arithmetic shift; float64 has all four, so these loops vectorise."""
    up, down, lo, hi, span = prm
    if wrap:
        for j in range(acc.size):
            s = acc[j] + np.floor(ai * w[j] * up * down)
            r = s - np.floor((s - lo) / span) * span
            c[j] += np.int32(r != s)
            acc[j] = r
    else:
        for j in range(acc.size):
            s = acc[j] + np.floor(ai * w[j] * up * down)
            r = min(max(s, lo), hi)
            c[j] += np.int32(r != s)
            acc[j] = r


def _pass_int(acc, c, ai, w, prm, wrap):
    """`_pass` on int64 codes: ``prm`` (sl, sr, lo, hi, 2^b - 1); a term (a w) << sl >> sr, a wrap
    ((s - lo) & mask) + lo."""
    sl, sr, lo, hi, mask = prm
    if wrap:
        for j in range(acc.size):
            s = acc[j] + ((ai * w[j]) << sl >> sr)
            r = ((s - lo) & mask) + lo
            c[j] += np.int32(r != s)
            acc[j] = r
    else:
        for j in range(acc.size):
            s = acc[j] + ((ai * w[j]) << sl >> sr)
            r = min(max(s, lo), hi)
            c[j] += np.int32(r != s)
            acc[j] = r


def _pass_i32(acc, c, ai, w, prm, wrap):
    """`_pass` on int32 codes, the accumulator held 2^sr times larger: ``prm`` (2^sl, -2^sr, lo 2^sr,
    hi 2^sr, 2^(b + sr) - 1); a term a w 2^sl with its low sr bits cleared (& -2^sr: the floor to the held
    grid), a wrap ((s - lo) & mask) + lo. Every held value is a multiple of 2^sr, so the clamp and the
    wrap give the held codes of the plain ones. The multiply and the AND are 32-bit (a shift by a variable
    count would be made 64-bit), so the loops vectorise eight lanes to a 256-bit register."""
    mul, keep, lo, hi, mask = prm
    if wrap:
        for j in range(acc.size):
            s = np.int32(acc[j] + np.int32(np.int32(np.int32(ai * w[j]) * mul) & keep))
            r = np.int32(np.int32((s - lo) & mask) + lo)
            c[j] += np.int32(r != s)
            acc[j] = r
    else:
        for j in range(acc.size):
            s = np.int32(acc[j] + np.int32(np.int32(np.int32(ai * w[j]) * mul) & keep))
            r = min(max(s, lo), hi)
            c[j] += np.int32(r != s)
            acc[j] = r


@njit(cache=True, inline="always")
def _pass4_i32(acc, c, a0, a1, a2, a3, w0, w1, w2, w3, prm, wrap):
    """Four passes of `_pass_i32` in order (k, k + 1, k + 2, k + 3) with each acc[j] and c[j] loaded and
    stored once: the same additions, in registers between them."""
    mul, keep, lo, hi, mask = prm
    if wrap:
        for j in range(acc.size):
            s0 = np.int32(acc[j] + np.int32(np.int32(np.int32(a0 * w0[j]) * mul) & keep))
            r0 = np.int32(np.int32((s0 - lo) & mask) + lo)
            s1 = np.int32(r0 + np.int32(np.int32(np.int32(a1 * w1[j]) * mul) & keep))
            r1 = np.int32(np.int32((s1 - lo) & mask) + lo)
            s2 = np.int32(r1 + np.int32(np.int32(np.int32(a2 * w2[j]) * mul) & keep))
            r2 = np.int32(np.int32((s2 - lo) & mask) + lo)
            s3 = np.int32(r2 + np.int32(np.int32(np.int32(a3 * w3[j]) * mul) & keep))
            r3 = np.int32(np.int32((s3 - lo) & mask) + lo)
            c[j] += np.int32(r0 != s0) + np.int32(r1 != s1) + np.int32(r2 != s2) + np.int32(r3 != s3)
            acc[j] = r3
    else:
        for j in range(acc.size):
            s0 = np.int32(acc[j] + np.int32(np.int32(np.int32(a0 * w0[j]) * mul) & keep))
            r0 = min(max(s0, lo), hi)
            s1 = np.int32(r0 + np.int32(np.int32(np.int32(a1 * w1[j]) * mul) & keep))
            r1 = min(max(s1, lo), hi)
            s2 = np.int32(r1 + np.int32(np.int32(np.int32(a2 * w2[j]) * mul) & keep))
            r2 = min(max(s2, lo), hi)
            s3 = np.int32(r2 + np.int32(np.int32(np.int32(a3 * w3[j]) * mul) & keep))
            r3 = min(max(s3, lo), hi)
            c[j] += np.int32(r0 != s0) + np.int32(r1 != s1) + np.int32(r2 != s2) + np.int32(r3 != s3)
            acc[j] = r3


def _chain(acc, c, ai, W, j0, jn, prm, wrap):
    """Every k of one row: `_pass` for k = 0, 1, ..., K - 1 with ai = A[i] and the columns j0 .. j0 + jn - 1
    of W; held int32 codes four k at a time (`_pass4_i32`; a loop of four ran slower on float64 codes).
    Jitted code takes the overload below, chosen by acc's type."""
    for k in range(ai.size):
        _pass(acc, c, ai[k], W[k, j0:j0 + jn], prm, wrap)


@overload(_chain, inline="always")
def _chain_ol(acc, c, ai, W, j0, jn, prm, wrap):
    if not (isinstance(acc.dtype, types.Integer) and acc.dtype.bitwidth == 32):
        return _chain

    def by_four(acc, c, ai, W, j0, jn, prm, wrap):
        k4 = ai.size - ai.size % 4
        for k in range(0, k4, 4):  # four additions per load and store of the accumulators
            _pass4_i32(acc, c, ai[k], ai[k + 1], ai[k + 2], ai[k + 3], W[k, j0:j0 + jn], W[k + 1, j0:j0 + jn],
                       W[k + 2, j0:j0 + jn], W[k + 3, j0:j0 + jn], prm, wrap)
        for k in range(k4, ai.size):
            _pass(acc, c, ai[k], W[k, j0:j0 + jn], prm, wrap)

    return by_four


def _pass(acc, c, ai, w, prm, wrap):
    """One k of every output column: acc[j] = fit(acc[j] + term(ai, w[j])), c[j] counting the additions that
    wrapped or saturated, on float64 codes (`_pass_f64`), int64 codes (`_pass_int`) or held int32 codes
    (`_pass_i32`), the same integers each way. Plain Python runs it as written; jitted code takes the
    overload below, chosen by acc's type."""
    kind = acc.dtype
    run = _pass_f64 if kind.kind == "f" else _pass_i32 if kind.itemsize == 4 else _pass_int
    run(acc, c, ai, w, prm, wrap)


@overload(_pass, inline="always")
def _pass_ol(acc, c, ai, w, prm, wrap):
    if isinstance(acc.dtype, types.Float):
        return _pass_f64
    return _pass_i32 if acc.dtype.bitwidth == 32 else _pass_int


@njit(cache=True)
def _rows(A, W, B, prm, wrap, step, out, cnt):
    """The accumulation of `mac_fixed_from_reals` on codes A, W, B (all float64, int64 or held int32:
    `_pass`; ``step`` then includes the holding's 2^-sr):
    out[i, j] = step * the chain from B[0, j] (B (1, N)), or from B[i, 0] (B (M, 1)), adding term(A[i, k],
    W[k, j]) for k in order, vectorised over j, in tiles of `TILE` columns; returns the additions that
    overflowed. A term is symmetric in its two codes, so the transposed problem (W.T, A.T, B.T into out.T)
    makes the same additions with the chains down the columns of out."""
    N = W.shape[1]
    acc_tile = np.empty(min(N, TILE), A.dtype)
    c_tile = np.empty(min(N, TILE), np.int32)
    total = 0
    per_row = B.shape[0] > 1
    for j0 in range(0, N, TILE):  # the accumulators of a tile of columns stay in the L1 cache
        jn = min(TILE, N - j0)
        acc = acc_tile[:jn]
        c = c_tile[:jn]
        for i in range(A.shape[0]):
            if per_row:
                acc[:] = B[i, 0]
            else:
                acc[:] = B[0, j0:j0 + jn]
            c[:] = 0
            _chain(acc, c, A[i], W, j0, jn, prm, wrap)
            for j in range(jn):
                out[i, j0 + j] = acc[j] * step
                cnt[i, j0 + j] = c[j]
                total += c[j]
    return total
