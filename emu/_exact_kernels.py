"""numba kernels of the exact step (``order="exact(n)"``): n exact products and the accumulator summed
exactly and rounded once (AMD CDNA1 matrix cores), and `round_sum`, the correctly rounded sum of a few
float64 values that `emu._tree_kernels` uses for every addition of its trees.

The exact sum of m float64 values is held as an expansion (Shewchuk's grow-expansion: two-sums leave
non-overlapping partials whose sum is exact), then read from the top: the partials are added from the
largest until an addition is inexact, which leaves hi (the sum rounded to float64 or one of its
neighbours) and the sign of the exact remainder. Rounding hi to odd on that remainder (hi, if its last
bit is odd, else its float64 neighbour toward the remainder) keeps 53 bits and the sign of what was
dropped, so one `fround` into any format with at most 51 significant bits (`MAC` checks 50 fraction
bits) and any deterministic mode gives the correctly rounded exact sum. The exact twin is
`emu._ref.steps`.

Worked example (CDNA1 bf16, ``exact(2)``): c = 1 and products 2^-24, 2^-60: the exact sum
1 + 2^-24 + 2^-60 lies just above the binary32 tie 1 + 2^-24, so nearest even gives 1 + 2^-23, where a
float64 sum (which loses 2^-60) followed by the same rounding would give 1.

>>> import numpy as np, emu
>>> from emu._rounding import float_params
>>> prm = float_params(emu.format("fp32"), 0, 0)  # nearest even, overflow to inf
>>> float(round_sum(np.array([1.0, 2.0**-24, 2.0**-60]), 3, prm, False)[0]) == 1 + 2.0**-23
True
>>> float(round_sum(np.array([1.0, 2.0**-24]), 2, prm, False)[0])  # the tie itself goes to even
1.0
>>> float(round_sum(np.array([1.0, -1.0]), 2, prm, True)[0])  # an exact zero under floor: -0 (IEEE 754)
-0.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from ._fused_kernels import rare_step
from ._rounding import float_params, fround
from .modes import Rounding


@njit(cache=True)
def _to_odd(hi, lo):
    """hi rounded to odd on a nonzero remainder lo (|lo| below hi's last bit unit): hi itself when its
    last bit is odd, else its neighbour on lo's side."""
    bits = np.float64(hi).view(np.uint64)
    if bits & np.uint64(1):
        return hi
    step = np.uint64(1) if (lo > 0.0) == (hi > 0.0) else np.uint64(0xFFFFFFFFFFFFFFFF)  # +1 or -1
    return np.uint64(bits + step).view(np.float64)


@njit(cache=True)
def round_sum(vals, m, prm, floor):
    """The exact sum of the finite vals[0 .. m-1] rounded once by ``prm`` (a `fround` record of a format
    with at most 51 significant bits); returns (value, overflowed). An exact zero sum takes IEEE 754's
    sign of a zero sum: -0 when every value is -0, or, when ``floor`` (``prm`` rounds toward minus
    infinity), unless every value is +0; else +0. ``vals`` is overwritten."""
    all_pos_zero = True
    for t in range(m):
        if vals[t] != 0.0 or np.signbit(vals[t]):
            all_pos_zero = False
    count = 0
    for t in range(m):
        x = vals[t]
        i = 0
        for q in range(count):
            y = vals[q]
            s = x + y
            bb = s - x
            e = (x - (s - bb)) + (y - bb)  # the two-sum's error
            x = s
            if e != 0.0:
                vals[i] = e
                i += 1
        vals[i] = x
        count = i + 1
    hi = vals[count - 1]
    lo = 0.0
    q = count - 2
    while q >= 0 and lo == 0.0:
        y = vals[q]
        s = hi + y
        bb = s - hi
        lo = (hi - (s - bb)) + (y - bb)
        hi = s
        q -= 1
    if hi == 0.0 and floor and not all_pos_zero:
        hi = -0.0
    return fround(hi if lo == 0.0 else _to_odd(hi, lo), prm)


@njit(cache=True)
def _exact_row(i, A, W, init, out, acnt, n, prm, floor):
    """Row i of `exact_rows`."""
    K = A.shape[1]
    r = min(np.int64(i), init.shape[0] - 1)
    buf = np.empty(n + 1, np.float64)
    for j in range(W.shape[1]):
        c = init[r, j]
        cnt = 0
        for k0 in range(0, K, n):
            k1 = min(K, k0 + n)
            finite = np.isfinite(c)
            buf[0] = c
            for k in range(k0, k1):
                p = A[i, k] * W[k, j]
                finite &= np.isfinite(p)
                buf[k - k0 + 1] = p
            if finite:
                res = round_sum(buf, k1 - k0 + 1, prm, floor)
            else:
                res = rare_step(A[i], np.ascontiguousarray(W[:, j]), k0, k1, c, prm)
            c = res[0]
            cnt += res[1]
        out[i, j] = c
        acnt[i, j] = cnt


@njit(parallel=True, cache=True)
def exact_rows(A, W, init, out, acnt, n, prm, floor):
    """out[i, j]: the exact steps of n products of row i of A and column j of W in natural K order from
    init[i or 0, j]; acnt[i, j] the steps whose rounding overflowed. Rows run in parallel."""
    for i in prange(A.shape[0]):
        _exact_row(i, A, W, init, out, acnt, n, prm, floor)


@njit(cache=True)
def exact_rows_serial(A, W, init, out, acnt, n, prm, floor):
    """`exact_rows` without threads."""
    for i in range(A.shape[0]):
        _exact_row(i, A, W, init, out, acnt, n, prm, floor)


def run_exact(a: np.ndarray, w: np.ndarray, init: np.ndarray, mac: Any) -> tuple[np.ndarray, np.ndarray]:
    """The exact steps of ``mac`` on a (M, K) and w (K, N) float64 operands in their formats from init
    (1, N) or (M, N) in the accumulator's; returns the accumulator values (M, N) and the count of steps
    whose rounding overflowed (M, N)."""
    M, K = a.shape
    N = w.shape[1]
    out = np.empty((M, N), np.float64)
    acnt = np.zeros((M, N), np.int32)
    kernel = exact_rows if M > 1 and M * K * N >= 1 << 18 else exact_rows_serial
    kernel(np.ascontiguousarray(a, np.float64), np.ascontiguousarray(w, np.float64),
           np.ascontiguousarray(init, np.float64), out, acnt, mac.order.n,
           float_params(mac.acc, int(mac.acc_rounding), int(mac.acc_overflow)),
           mac.acc_rounding == Rounding.FLOOR)
    return out, acnt
