"""numba kernels of the multi-term fused datapath (``order="fused(n)"``): a matrix unit's steps.

One step of an output adds the accumulator c and n products a_k w_k at once:

1. every product is exact; its alignment exponent is e(a_k) + e(w_k), and c's is e(c), where e(x) is
   floor(log2 |x|) of a normal value and the format's emin for a subnormal (the exponent field's value);
2. E is the largest alignment exponent of the nonzero terms, raised to ``e_floor`` when it is lower
   (``align_min_exp``; `NO_TERM` when the MAC has none); each term is cut to a multiple of
   u = 2^(E - F) (F = ``align_bits``): toward zero (truncation) or floor;
3. the cut terms are summed exactly, the sum is rounded once into the accumulator format
   (``acc_rounding``, ``acc_overflow``), and that value is the next step's c.

Worked example (fp16 products, F = 3, truncation): c = 0, terms 1.0 x 1.0 and 2^-4 x 1.0: E = 0, u = 2^-3,
the second term is cut to 0 and the step gives 1.0, where an exact sum would give 1.0625. With
``e_floor`` = 2 the same step aligns to E = 2, u = 2^-1, and gives 1.0 as well; terms 2^-2 x 1.0 and
2^-3 x 1.0 alone would give 0 (E = 2 > -2, both cut below u) where without the floor they sum to 0.375.

Every value is held in float64 exactly: products need at most 53 significand bits (`MAC` checks), a cut
term is an integer below 2^(F + 3) in units of u, and n + 1 <= 1025 of them with F <= 40 stay below
2^53. NaN and infinite operands give the IEEE sum of the step's terms, rounded as any value. The exact
reference twin is `emu._ref.fused`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

from ._rounding import float_params, fround
from .modes import Rounding

#: the alignment exponent of a zero or non-finite operand: no sum of two reaches a real exponent
NO_TERM = -(1 << 30)


@njit(cache=True)
def align_exp(x, emin):
    """The alignment exponent of a finite nonzero x: floor(log2 |x|), at least ``emin``."""
    return max(math.frexp(x)[1] - 1, emin)


@njit(cache=True)
def align_exps(x, emin, out):
    """`align_exp` of every element of a 2-D array, `NO_TERM` for zeros and non-finite values."""
    for i in range(x.shape[0]):
        for k in range(x.shape[1]):
            v = x[i, k]
            out[i, k] = align_exp(v, emin) if v != 0.0 and np.isfinite(v) else NO_TERM


@njit(cache=True)
def cut_term(t, floor_cut):
    """t (an exact float64 in units of u) cut to an integer: floor, or toward zero."""
    return np.floor(t) if floor_cut else np.trunc(t)


@njit(cache=True)
def rare_step(arow, wcol, k0, k1, c, prm):
    """A step that has nothing to align: a NaN or infinite term makes it the IEEE sum of its terms,
    rounded as any value (inf, or NaN for inf - inf); otherwise every term is zero and the result is
    -0 only when the addend and every product are -0. Returns (value, overflowed)."""
    s = c
    special = not np.isfinite(c)
    neg_zero = c == 0.0 and math.copysign(1.0, c) < 0.0
    for k in range(k0, k1):
        p = arow[k] * wcol[k]
        s += p
        special |= not np.isfinite(p)
        neg_zero = neg_zero and p == 0.0 and math.copysign(1.0, p) < 0.0
    if special:
        return fround(s, prm)
    return (-0.0 if neg_zero else 0.0), False


@njit(cache=True)
def pow2(k):
    """2.0^k for -1022 <= k <= 1023, from its bits (no call, so loops over it vectorise)."""
    return np.uint64((k + 1023) << 52).view(np.float64)


@njit(cache=True)
def _fused_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor):
    """Row i: every column's steps side by side, so the inner loops run along a row of W. A column whose
    step meets no nonzero finite term, or a non-finite one, takes `rare_step`."""
    K = A.shape[1]
    N = W.shape[1]
    r = min(np.int64(i), init.shape[0] - 1)
    c = init[r].copy()
    E = np.empty(N, np.int64)
    total = np.empty(N, np.float64)
    inv_u = np.empty(N, np.float64)
    finite = np.empty(N, np.bool_)
    cnt = np.zeros(N, np.int32)
    for k0 in range(0, K, n):
        k1 = min(K, k0 + n)
        for j in range(N):
            cj = c[j]
            finite[j] = np.isfinite(cj)
            E[j] = align_exp(cj, ec_min) if cj != 0.0 and finite[j] else NO_TERM
        for k in range(k0, k1):
            ea = EA[i, k]
            for j in range(N):
                E[j] = max(E[j], ea + EW[k, j])
        for j in range(N):
            live = E[j] >= NO_TERM // 2
            if live:
                E[j] = max(E[j], e_floor)
            inv_u[j] = pow2(F - E[j]) if live else 0.0
            total[j] = cut_term(c[j] * inv_u[j], floor_cut) if live and finite[j] else 0.0
        for k in range(k0, k1):
            a = A[i, k]
            for j in range(N):
                p = a * W[k, j]
                finite[j] &= np.isfinite(p)
                total[j] += cut_term(p * inv_u[j], floor_cut)
        for j in range(N):
            if finite[j] and E[j] >= NO_TERM // 2:
                if total[j] == 0.0:
                    c[j] = 0.0
                else:
                    v, o = fround(total[j] * pow2(E[j] - F), prm)
                    c[j] = v
                    cnt[j] += o
            else:
                v, o = rare_step(A[i], W[:, j], k0, k1, c[j], prm)
                c[j] = v
                cnt[j] += o
    out[i] = c
    acnt[i] = cnt


@njit(parallel=True, cache=True)
def fused_rows(A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor=NO_TERM):
    """out[i, j]: the steps of n products of row i of A and column j of W in natural K order from
    init[i or 0, j]; acnt[i, j] the steps whose rounding overflowed. EA, EW: `align_exps` of A and W;
    ``prm``: `fround` parameters of the accumulator (a `FroundParams`); ``e_floor``: the lowest exponent
    a step aligns to (`NO_TERM`: none). Rows run in parallel."""
    for i in prange(A.shape[0]):
        _fused_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor)


@njit(cache=True)
def fused_rows_serial(A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor=NO_TERM):
    """`fused_rows` without threads."""
    for i in range(A.shape[0]):
        _fused_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor)


def step_floor(mac: Any) -> int:
    """The ``e_floor`` argument of `fused_rows` for a fused MAC: its ``align_min_exp``, else `NO_TERM`."""
    return NO_TERM if mac.align_min_exp is None else int(mac.align_min_exp)


def aligned_operands(a: np.ndarray, w: np.ndarray, mac: Any) -> tuple[np.ndarray, ...]:
    """(A, W, EA, EW): the operands as C-ordered float64 and their alignment exponents (`align_exps`)."""
    A = np.ascontiguousarray(a, np.float64)
    W = np.ascontiguousarray(w, np.float64)
    EA = np.empty(A.shape, np.int64)
    EW = np.empty(W.shape, np.int64)
    align_exps(A, mac.act.emin, EA)
    align_exps(W, mac.weight.emin, EW)
    return A, W, EA, EW


def run_fused(a: np.ndarray, w: np.ndarray, init: np.ndarray, mac: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every field of a fused MAC passed to the kernels: a (M, K) and w (K, N) float64 operands already in
    their formats, init (1, N) or (M, N) start values in the accumulator's. Returns the accumulator values
    (M, N) and the count of steps whose rounding overflowed (M, N); rows run in threads for large products.
    """
    M, K = a.shape
    N = w.shape[1]
    out = np.empty((M, N), np.float64)
    acnt = np.zeros((M, N), np.int32)
    kernel = fused_rows if M > 1 and M * K * N >= 1 << 18 else fused_rows_serial
    A, W, EA, EW = aligned_operands(a, w, mac)
    kernel(A, W, EA, EW, np.ascontiguousarray(init, np.float64), out, acnt, mac.order.n, mac.acc.emin,
           mac.align_bits, mac.align_rounding == Rounding.FLOOR, float_params(mac.acc, int(mac.acc_rounding),
                                                                     int(mac.acc_overflow)), step_floor(mac))
    return out, acnt
