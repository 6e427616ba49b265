"""The binary32 datapath kernels: float32 multiply and add in sequential order, as the hardware does.

An fp32 accumulator rounding to nearest even over float operands that binary32
holds runs as native float32 chains: `mac_rows_fp32_plain` / `mac_cols_fp32_plain`
(no counts; a chain that overflows stays non-finite, so finite outputs prove no
overflow) and their counting twins `mac_rows_fp32` / `mac_cols_fp32`, rerun only
when an output is not finite. `mac_fp32_from_reals` converts the operands to
binary32 and runs a whole small product in one call. Each output's additions
keep their order (k = 0, 1, ...); independent chains vectorise. Tested bit for
bit against the general kernels of `emu._mac_kernels` and the exact reference.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._fast_kernels import float_fast_2d


@njit(cache=True)
def _fp32_row(i, A, W, init, out, pcnt, acnt):
    """Row i of `mac_rows_fp32`."""
    N = W.shape[1]
    acc = init[min(np.int64(i), init.shape[0] - 1)].copy()
    pc = np.zeros(N, np.int32)
    ac = np.zeros(N, np.int32)
    for k in range(A.shape[1]):
        a = A[i, k]
        for j in range(N):
            w = W[k, j]
            p = a * w
            s = acc[j] + p
            pc[j] += np.isinf(p) & ~np.isinf(a) & ~np.isinf(w)
            ac[j] += np.isinf(s) & ~np.isinf(acc[j]) & ~np.isinf(p)
            acc[j] = s
    for j in range(N):
        out[i, j] = acc[j]
        pcnt[i, j] = pc[j]
        acnt[i, j] = ac[j]


@njit(parallel=True, cache=True)
def mac_rows_fp32(A, W, init, out, pcnt, acnt):
    """`mac_rows` for `term_fp32`/`add_fp32` in sequential order, on float32
    operands: binary32 multiply and add, nearest even, as the hardware does.
    The product of two binary32 values rounded once equals `term_fp32`'s
    float64 product rounded to binary32, so the results are the same; the
    columns of a row form independent chains, which vectorise."""
    for i in prange(A.shape[0]):
        _fp32_row(i, A, W, init, out, pcnt, acnt)


@njit(cache=True)
def mac_rows_fp32_serial(A, W, init, out, pcnt, acnt):
    """`mac_rows_fp32` without threads."""
    for i in range(A.shape[0]):
        _fp32_row(i, A, W, init, out, pcnt, acnt)


@njit(cache=True)
def _chains_fp32_pair(acc, acc2, s, s2, v):
    """acc[x] = acc[x] + s[k] * v[k, x] and acc2[x] = acc2[x] + s2[k] * v[k, x] for k = 0, 1, ... in this
    order, every product and sum rounded to binary32: independent sequential chains, one per x and set,
    that vectorise over x. Eight steps of each chain per pass over the accumulators (the parenthesised
    sums keep their order: one load and store of each accumulator per eight steps, where a one-step loop
    is bound by those loads and stores, 2x faster), and each row of v, loaded once, serves both sets
    (1.3x)."""
    K = v.shape[0]
    K8 = K - K % 8
    for k in range(0, K8, 8):
        a0, a1, a2, a3 = s[k], s[k + 1], s[k + 2], s[k + 3]
        a4, a5, a6, a7 = s[k + 4], s[k + 5], s[k + 6], s[k + 7]
        b0, b1, b2, b3 = s2[k], s2[k + 1], s2[k + 2], s2[k + 3]
        b4, b5, b6, b7 = s2[k + 4], s2[k + 5], s2[k + 6], s2[k + 7]
        v0, v1, v2, v3 = v[k], v[k + 1], v[k + 2], v[k + 3]
        v4, v5, v6, v7 = v[k + 4], v[k + 5], v[k + 6], v[k + 7]
        for x in range(acc.size):
            w0, w1, w2, w3, w4, w5, w6, w7 = v0[x], v1[x], v2[x], v3[x], v4[x], v5[x], v6[x], v7[x]
            acc[x] = ((((((((acc[x] + a0 * w0) + a1 * w1) + a2 * w2) + a3 * w3) + a4 * w4) + a5 * w5)
                       + a6 * w6) + a7 * w7)
            acc2[x] = ((((((((acc2[x] + b0 * w0) + b1 * w1) + b2 * w2) + b3 * w3) + b4 * w4) + b5 * w5)
                        + b6 * w6) + b7 * w7)
    for k in range(K8, K):
        sk = s[k]
        sk2 = s2[k]
        vk = v[k]
        for x in range(acc.size):
            acc[x] += sk * vk[x]
            acc2[x] += sk2 * vk[x]


@njit(cache=True)
def _put(acc, out, r):
    """out[r] = acc; returns the count of values that are not finite."""
    bad = 0
    for x in range(acc.size):
        out[r, x] = acc[x]
        bad += np.int64(not np.isfinite(acc[x]))
    return bad


@njit(cache=True)
def _chain_pair(S, s_t, V, init, out, r, acc, acc2):
    """Rows r and r + 1 of `_chain_rows` (a last row r alone runs as both chain sets); returns the count
    of outputs that are not finite."""
    r2 = min(r + 1, out.shape[0] - 1)
    last = init.shape[0] - 1
    acc[:] = init[min(r, last)]
    acc2[:] = init[min(r2, last)]
    _chains_fp32_pair(acc, acc2, S[:, r] if s_t else S[r], S[:, r2] if s_t else S[r2], V)
    return _put(acc, out, r) + (_put(acc2, out, r2) if r2 != r else 0)


@njit(cache=True)
def _chain_rows(S, s_t, V, init, out):
    """out[r, x] = the binary32 chain init[r] + S[r, 0] V[0, x] + S[r, 1] V[1, x] + ... in this order (S
    given as its transpose when ``s_t``; init[r] is a scalar or a row, and a single row of ``init`` starts
    every chain), two rows at a time; returns the count of outputs that are not finite."""
    acc = np.empty(out.shape[1], np.float32)
    acc2 = np.empty(out.shape[1], np.float32)
    bad = 0
    for r in range(0, out.shape[0], 2):
        bad += _chain_pair(S, s_t, V, init, out, r, acc, acc2)
    return bad


@njit(parallel=True, cache=True)
def mac_rows_fp32_plain(A, W, init, out):
    """`mac_rows_fp32` without the overflow counts (`_chain_rows`, pairs of
    rows over the threads; ``init`` (1, N) or (M, N)); returns the count of
    outputs that are not finite (0: nothing overflowed, since an inf or NaN,
    once in a chain, stays in it; otherwise rerun the counting kernel)."""
    bad = 0
    for p in prange((A.shape[0] + 1) // 2):
        acc = np.empty(W.shape[1], np.float32)
        acc2 = np.empty(W.shape[1], np.float32)
        bad += _chain_pair(A, False, W, init, out, 2 * p, acc, acc2)
    return bad


@njit(cache=True)
def mac_rows_fp32_plain_serial(A, W, init, out):
    """`mac_rows_fp32_plain` without threads."""
    return _chain_rows(A, False, W, init, out)


@njit(cache=True)
def mac_cols_fp32_plain(AT, W, init, out):
    """`mac_cols_fp32` without the overflow counts: out.T = W.T AT, the chains
    down the columns of out (``init``: (N,), one start per column, or (N, M),
    the transposed addend); returns the count of outputs that are not finite
    (as `mac_rows_fp32_plain`)."""
    return _chain_rows(W, True, AT, init, out.T)


@njit(cache=True)
def _transposed(x):
    """A C-ordered copy of x.T. Up to 2^18 elements (the array fits the cache) column by column of x, each
    written as one row of the copy; larger ones by 32x32 tiles. Measured against writing row by row of x:
    512 x 144 16 us against 184, 2048 x 54 46 against 298; tiles at 50,176 x 25 788 us against 3,589 column
    by column, at 1,024 x 576 485 against 756."""
    R, C = x.shape
    out = np.empty((C, R), x.dtype)
    if R * C <= 1 << 18:
        for c in range(C):
            for r in range(R):
                out[c, r] = x[r, c]
        return out
    for r0 in range(0, R, 32):
        r1 = min(r0 + 32, R)
        for c0 in range(0, C, 32):
            for c in range(c0, min(c0 + 32, C)):
                for r in range(r0, r1):
                    out[c, r] = x[r, c]
    return out


@njit(cache=True, nogil=True)
def _operand32(x, packed, nan_value):
    """(x in binary32, overflows, NaNs): x (2-D, C-ordered) rounded by the conversion ``packed``
    (`float_fast_2d`), or, where ``packed`` is empty, x's values as they are (the caller knows them
    binary32 values that the conversion would leave: no overflow; a NaN is counted, as the conversion of
    a format with NaN counts it)."""
    out = np.empty(x.shape, np.float32)
    if packed.size:
        ovf, nan = float_fast_2d(x, out, packed, nan_value)
        return out, ovf, nan
    xf = x.reshape(-1)
    of = out.reshape(-1)
    nan = 0
    for k in range(xf.size):
        v = xf[k]
        of[k] = v
        nan += v != v
    return out, 0, nan


@njit(cache=True)
def mac_fp32_from_reals(a, a_t, w, w_t, bias, pa, na, pw, nw, pb, nb, cols, out):
    """A whole small binary32 product in one call: the float64 operands are
    rounded to the act, weight and accumulator formats straight into binary32
    (`float_fast_2d` with each conversion's packed parameters and NaN value),
    then `mac_cols_fp32_plain` (``cols``) or `mac_rows_fp32_plain` runs into
    ``out`` (M, N). ``a`` is (M, K), or its transpose (K, M) when ``a_t``;
    ``w`` is (K, N), or (N, K) when ``w_t``; both C-ordered; ``bias`` (N,).
    Only a layout the chains need is copied. Returns (input overflows of a,
    w and the bias, NaN inputs of a, of w, of the bias, outputs that are not finite).
    An operand whose packed parameters are empty is taken as it is (`_operand32`)."""
    a32, ia, nan_a = _operand32(a, pa, na)
    w32, iw, nan_w = _operand32(w, pw, nw)
    b32, ib, nan_b = _operand32(bias.reshape(1, bias.size), pb, nb)
    if cols:  # out.T = w.T a.T: chains down the columns of out, over the rows of a.T
        bad = _chain_rows(w32, not w_t, a32 if a_t else _transposed(a32), b32[0], out.T)
    else:
        bad = _chain_rows(a32, a_t, _transposed(w32) if w_t else w32, b32, out)
    return ia + iw + ib, nan_a, nan_w, nan_b, bad


@njit(cache=True)
def mac_cols_fp32(AT, W, init_t, out, pcnt, acnt):
    """`mac_rows_fp32` for few output columns (fewer than rows and than 64):
    the rows of one column form the independent chains instead (AT = A
    transposed, contiguous (K, M); ``init_t`` (N, 1) or (N, M), the start
    transposed), so such products vectorise too. Same results."""
    K, M = AT.shape
    one = init_t.shape[1] == 1
    for j in range(W.shape[1]):
        acc = np.empty(M, AT.dtype)
        for i in range(M):
            acc[i] = init_t[j, 0 if one else i]
        pc = np.zeros(M, np.int32)
        ac = np.zeros(M, np.int32)
        for k in range(K):
            w = W[k, j]
            row = AT[k]
            for i in range(M):
                a = row[i]
                p = a * w
                s = acc[i] + p
                pc[i] += np.isinf(p) & ~np.isinf(a) & ~np.isinf(w)
                ac[i] += np.isinf(s) & ~np.isinf(acc[i]) & ~np.isinf(p)
                acc[i] = s
        for i in range(M):
            out[i, j] = acc[i]
            pcnt[i, j] = pc[i]
            acnt[i, j] = ac[i]
