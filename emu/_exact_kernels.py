"""numba kernels of the exact step (``order="exact(n)"``): n exact products and the accumulator summed
exactly and rounded once (AMD CDNA1 matrix cores); `round_sum`, the correctly rounded sum of a few
float64 values that `emu._tree_kernels` uses for every addition of its trees; and `wide_rows`, the
wide exact accumulator (``acc="exact"`` beyond 62-bit integer products, `emu.datapath.wide`): a whole
dot product's start value and K products in one expansion, rounded to odd at 53 bits (`grow`, `odd_top`).

The exact sum of m float64 values is held as an expansion (Shewchuk's grow-expansion: two-sums leave
non-overlapping partials whose sum is exact), then read from the top: the partials are added from the
largest until an addition is inexact, which leaves hi (the sum rounded to float64 or one of its
neighbours) and the sign of the exact remainder. Rounding hi to odd on that remainder (hi, if its last
bit is odd, else its float64 neighbour toward the remainder) keeps 53 bits and the sign of what was
dropped, so one `fround` into any format with at most 51 significant bits (`MAC` checks 50 fraction
bits) and any deterministic mode gives the correctly rounded exact sum. The exact twins are
`emu._ref.steps` and (`wide_rows`) `emu._ref.mac`.

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
def grow(e, count, x):
    """Shewchuk's grow-expansion: the float64 x added exactly to the expansion e[0 .. count-1]
    (non-overlapping partials of increasing magnitude, whose sum is exact) by two-sums, zero partials
    dropped; returns the new count (at most count + 1; e must have room for it)."""
    i = 0
    for q in range(count):
        y = e[q]
        s = x + y
        bb = s - x
        err = (x - (s - bb)) + (y - bb)  # the two-sum's error
        x = s
        if err != 0.0:
            e[i] = err
            i += 1
    e[i] = x
    return i + 1


@njit(cache=True)
def odd_top(e, count):
    """The exact sum of the expansion e[0 .. count-1] (count >= 1) rounded to odd at float64's 53 bits:
    the partials are added from the largest until an addition is inexact, and hi is rounded to odd on the
    sign of what is left (the exact sum itself when float64 holds it). A zero sum comes back as a zero
    whose sign the caller decides."""
    hi = e[count - 1]
    lo = 0.0
    q = count - 2
    while q >= 0 and lo == 0.0:
        y = e[q]
        s = hi + y
        bb = s - hi
        lo = (hi - (s - bb)) + (y - bb)
        hi = s
        q -= 1
    return hi if lo == 0.0 else _to_odd(hi, lo)


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
    for t in range(m):  # the expansion grows in place: its count never passes t + 1
        count = grow(vals, count, vals[t])
    hi = odd_top(vals, count)
    if hi == 0.0 and floor and not all_pos_zero:
        hi = -0.0
    return fround(hi, prm)


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


#: the most partials an expansion of float64 values holds: non-overlapping partials each own a bit position
#: of float64's 2^-1074 .. 2^1024
MAX_PARTS = 2100


@njit(cache=True)
def _wide_row(i, A, Wt, init, out, floor):
    """Row i of `wide_rows`."""
    K = A.shape[1]
    r = min(np.int64(i), init.shape[0] - 1)
    e = np.empty(min(K + 1, MAX_PARTS), np.float64)
    for j in range(Wt.shape[0]):
        c = init[r, j]
        e[0] = c
        count = 1
        neg0 = c == 0.0 and np.signbit(c)  # every term so far -0 / +0
        pos0 = c == 0.0 and not np.signbit(c)
        nan = pinf = ninf = False
        for k in range(K):
            p = A[i, k] * Wt[j, k]  # exact: `MAC` checked the formats
            if p == 0.0:
                neg0 &= np.signbit(p)
                pos0 &= not np.signbit(p)
                continue  # adds nothing
            neg0 = pos0 = False
            if np.isfinite(p):
                count = grow(e, count, p)
            elif p > 0.0:
                pinf = True
            elif p < 0.0:
                ninf = True
            else:
                nan = True
        if nan or (pinf and ninf):
            v = np.nan
        elif pinf:
            v = np.inf
        elif ninf:
            v = -np.inf
        else:
            v = odd_top(e, count)
            if v == 0.0:  # an exact zero: IEEE 754's sign of a zero sum
                v = -0.0 if neg0 or (floor and not pos0) else 0.0
        out[i, j] = v


@njit(parallel=True, cache=True)
def wide_rows(A, Wt, init, out, floor):
    """out[i, j]: init[i or 0, j] + sum_k A[i, k] Wt[j, k], summed exactly (an expansion per output) and
    rounded to odd at 53 bits (`odd_top`); non-finite products by IEEE 754 (a NaN product, or infinities
    of both signs: NaN; else the infinity), an exact zero sum signed as `round_sum` signs it (``floor``:
    the output rounds toward minus infinity). The finite init and products must leave every partial sum
    below 2^1023 (no two-sum overflows). Rows run in parallel; each output's bits are its own."""
    for i in prange(A.shape[0]):
        _wide_row(i, A, Wt, init, out, floor)


@njit(cache=True)
def wide_rows_serial(A, Wt, init, out, floor):
    """`wide_rows` without threads."""
    for i in range(A.shape[0]):
        _wide_row(i, A, Wt, init, out, floor)
