"""A small fixed-point product in one kernel call, conversions included.

`mac_fixed_from_reals` computes what the general integer path computes
(`emu.datapath.integer`: the operand conversions, the accumulator's start
value from the bias, `emu._mac_kernels.mac_rows` in the sequential order
with exact products aligned by a shift, an accumulator that wraps or
saturates after every addition) for a product too small to repay threads,
without the passes between: reals are rounded to codes as they are read
(``rint_mode`` of x 2^FL, saturated to the format's codes, as
`emu._fast_kernels.fixed_fast` rounds), each output's additions run in the
order k = 0, 1, ..., K-1 on int64 lanes (or on float64 lanes holding the same
integers exactly, when every term is below 2^52 and the accumulator narrower
than 52 bits: those loops vectorise; with few output columns, fewer than
the rows and than 64, the chains run down the columns, vectorised over the
rows), and the accumulator's values are written as float64. The results
and every count are the general path's, bit for bit (the tests compare them
with the exact reference).

Worked example: fx<2,2> x fx<2,2> -> fx<2,2> saturating, a = [1.3, 1.7],
w = [1.5, 1.75]: the codes are round(1.3 * 4) = 5, 7 and 6, 7; the products
30 and 49 (step 2^-4) lose their two low bits on the floor alignment: 7 and 12
(step 2^-2); the accumulator goes 0 -> 7 -> 19, saturates at 7 (1.75), one
counted overflow.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from ._rounding import rint_mode

__all__ = ["BLOCK_ROWS", "codes_into", "codes_rows", "mac_fixed_from_reals"]

#: rows of out per parallel block of `codes_rows`
BLOCK_ROWS = 16


@njit(cache=True)
def codes_into(x, transposed, scale, lo, hi, mode, out, mul=1):
    """out (R, C) = the codes of x (R, C), or of x.T when ``transposed`` (x is then (C, R), C-ordered):
    rint_mode(x 2^FL) saturated to [lo, hi], times ``mul`` (a power of two: `emu._fixed_kernels.mac_fixed16`
    takes weights held shifted up), in out's integer type (the caller knows they fit). Returns (overflow
    count, NaN seen); a NaN's code is 0.

    >>> out = np.empty((1, 3), np.int16)
    >>> codes_into(np.array([[0.3, -9.0, 1.5]]), False, 4.0, -8.0, 7.0, 0, out, 2)
    (1, False)
    >>> out.tolist()
    [[2, -16, 12]]
    """
    R, C = out.shape
    ovf = 0
    nan = False
    for r in range(R):
        for c in range(C):
            xi = x[c, r] if transposed else x[r, c]
            if xi != xi:
                nan = True
                out[r, c] = 0
                continue
            q = rint_mode(xi * scale, mode)
            qc = min(max(q, lo), hi)
            ovf += qc != q
            out[r, c] = np.int64(qc) * mul
    return ovf, nan


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
def mac_fixed_from_reals(a, a_t, w, w_t, b, a_prm, w_prm, b_prm, sl, sr, lo, hi, mask, wrap, step, out, cnt):
    """out[i, j] = step * the accumulator after acc = fit(acc + ((A[i, k] W[k, j]) << sl) >> sr), k = 0..K-1,
    from acc = B[j]; A, W and B are the codes of a, w and b.

    a (M, K) or, with ``a_t``, a.T given C-ordered; w (K, N) or, with ``w_t``, w.T; b (N,) reals. Each
    ``*_prm`` is (2^FL, lowest code, highest code, rounding mode) of the conversion to that operand's
    format (for b: the accumulator's). fit wraps (keeps the low bits, ((s - lo) & mask) + lo) or saturates
    (clamps to [lo, hi]); ``cnt[i, j]`` counts the additions that did. Returns (conversions that
    overflowed, a NaN was met, additions that overflowed); after a NaN ``out`` is not written.
    """
    M = out.shape[0]
    N = out.shape[1]
    K = a.shape[0] if a_t else a.shape[1]
    cols = M > N and N < 64  # few output columns: the chains run down them (`_rows` transposed)
    a_shape = (K, M) if cols else (M, K)
    prod_max = max(-a_prm[1], a_prm[2]) * max(-w_prm[1], w_prm[2]) * 2.0**sl
    if prod_max < 2.0**52 and hi - lo < 2.0**52:  # every term and sum an integer float64 holds exactly
        Af, Wf, Bf = np.empty(a_shape), np.empty((K, N)), np.empty((1, N))
        ovf, nan = _convert(a, a_t != cols, w, w_t, b, a_prm, w_prm, b_prm, Af, Wf, Bf)
        if nan:
            return ovf, True, 0
        prm = (2.0**sl, 2.0**-sr, float(lo), float(hi), float(mask) + 1.0)
        if cols:
            return ovf, False, _rows(Wf.T, Af, Bf.T, prm, wrap, step, out.T, cnt.T)
        return ovf, False, _rows(Af, Wf, Bf, prm, wrap, step, out, cnt)
    A, W, B = np.empty(a_shape, np.int64), np.empty((K, N), np.int64), np.empty((1, N), np.int64)
    ovf, nan = _convert(a, a_t != cols, w, w_t, b, a_prm, w_prm, b_prm, A, W, B)
    if nan:
        return ovf, True, 0
    prm64 = (np.int64(sl), np.int64(sr), np.int64(lo), np.int64(hi), np.int64(mask))
    if cols:
        return ovf, False, _rows(W.T, A, B.T, prm64, wrap, step, out.T, cnt.T)
    return ovf, False, _rows(A, W, B, prm64, wrap, step, out, cnt)


@njit(cache=True)
def _convert(a, a_flip, w, w_t, b, a_prm, w_prm, b_prm, A, W, B):
    """The codes of a, w and b into A, W and B (`codes_into`; a read through its transpose when
    ``a_flip``); (overflows, a NaN was met)."""
    oa, na = codes_into(a, a_flip, a_prm[0], a_prm[1], a_prm[2], np.int64(a_prm[3]), A)
    ow, nw = codes_into(w, w_t, w_prm[0], w_prm[1], w_prm[2], np.int64(w_prm[3]), W)
    ob, nb = codes_into(b.reshape(1, B.shape[1]), False, b_prm[0], b_prm[1], b_prm[2], np.int64(b_prm[3]), B)
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


def _pass(acc, c, ai, w, prm, wrap):
    """One k of every output column: acc[j] = fit(acc[j] + term(ai, w[j])), c[j] counting the additions that
    wrapped or saturated, on float64 codes (`_pass_f64`) or int64 codes (`_pass_int`), the same integers
    either way. Plain Python runs it as written; jitted code takes the overload below, chosen by acc's
    type."""
    (_pass_f64 if acc.dtype.kind == "f" else _pass_int)(acc, c, ai, w, prm, wrap)


@overload(_pass, inline="always")
def _pass_ol(acc, c, ai, w, prm, wrap):
    return _pass_f64 if isinstance(acc.dtype, types.Float) else _pass_int


@njit(cache=True)
def _rows(A, W, B, prm, wrap, step, out, cnt):
    """The accumulation of `mac_fixed_from_reals` on codes A, W, B (all float64 or all int64: `_pass`):
    out[i, j] = step * the chain from B[0, j] (B (1, N)), or from B[i, 0] (B (M, 1)), adding term(A[i, k],
    W[k, j]) for k in order, vectorised over j; returns the additions that overflowed. A term is symmetric
    in its two codes, so the transposed problem (W.T, A.T, B.T into out.T) makes the same additions with
    the chains down the columns of out."""
    acc = np.empty(W.shape[1], A.dtype)
    c = np.empty(W.shape[1], np.int32)
    total = 0
    per_row = B.shape[0] > 1
    for i in range(A.shape[0]):
        if per_row:
            acc[:] = B[i, 0]
        else:
            acc[:] = B[0]
        c[:] = 0
        for k in range(A.shape[1]):
            _pass(acc, c, A[i, k], W[k], prm, wrap)
        for j in range(acc.size):
            out[i, j] = acc[j] * step
            cnt[i, j] = c[j]
            total += c[j]
    return total
