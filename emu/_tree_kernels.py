"""numba kernels of the pairwise step (``order="tree(n)"``): the AMD CDNA2 matrix cores.

One step of an output adds n products to the accumulator c:

1. every product a_k w_k is rounded into the product format (``product``, or the accumulator's);
2. the n rounded products are summed by a balanced binary tree (n a power of two: neighbours first,
   ((p_0 + p_1) + (p_2 + p_3)) for n = 4), every addition rounded into the accumulator format; a short
   last step is padded with +0 products (GEMM.m pads K to a multiple of n);
3. c + tree, rounded once more into the accumulator, is the next c.

Every addition is the exact sum rounded once (`emu._exact_kernels.round_sum`); an exact zero sum takes
IEEE 754's sign: -0 when both terms are -0, or under ``acc_rounding="floor"`` unless both are +0. A
flush-to-zero accumulator or product format (``fp<8,23,ftz>``) flushes every result below its smallest
normal to a zero of its sign, as the CDNA2 units do. The exact twin is
`emu._ref.steps`.

Worked example (binary32, n = 4): products 1, 2^-24, 2^-24, 0 and c = 0: 1 + 2^-24 rounds to 1 (a tie, to
even), 2^-24 + 0 = 2^-24, and 1 + 2^-24 rounds to 1 again, where the exact sum 1 + 2^-23 is a binary32
value.

>>> import emu
>>> a, w = [[1.0, 2.0**-12, 2.0**-12, 0.0]], [[1.0], [2.0**-12], [2.0**-12], [0.0]]
>>> float(emu.matmul(a, w, "MI250 fp16 -> fp32")[0, 0])
1.0
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit, prange

from ._exact_kernels import round_sum
from ._rounding import float_params, fround
from .modes import Rounding


@njit(cache=True)
def add2(x, y, pair, prm, floor):
    """x + y rounded once by ``prm`` (IEEE sums for non-finite terms; ``floor``: ``prm`` rounds toward
    minus infinity); ``pair`` a scratch array of 2."""
    if not (np.isfinite(x) and np.isfinite(y)):
        return fround(x + y, prm)
    pair[0] = x
    pair[1] = y
    return round_sum(pair, 2, prm, floor)


@njit(cache=True)
def _tree_row(i, A, W, init, out, pcnt, acnt, n, pprm, aprm, floor):
    """Row i of `tree_rows`."""
    K = A.shape[1]
    r = min(np.int64(i), init.shape[0] - 1)
    buf = np.empty(n, np.float64)
    pair = np.empty(2, np.float64)
    for j in range(W.shape[1]):
        c = init[r, j]
        pc = 0
        ac = 0
        for k0 in range(0, K, n):
            for t in range(n):
                if k0 + t < K:
                    v, o = fround(A[i, k0 + t] * W[k0 + t, j], pprm)
                    pc += o
                    buf[t] = v
                else:
                    buf[t] = 0.0
            width = n
            while width > 1:
                width //= 2
                for t in range(width):
                    v, o = add2(buf[2 * t], buf[2 * t + 1], pair, aprm, floor)
                    ac += o
                    buf[t] = v
            c, o = add2(c, buf[0], pair, aprm, floor)
            ac += o
        out[i, j] = c
        pcnt[i, j] = pc
        acnt[i, j] = ac


@njit(parallel=True, cache=True)
def tree_rows(A, W, init, out, pcnt, acnt, n, pprm, aprm, floor):
    """out[i, j]: the pairwise steps of n products of row i of A and column j of W in natural K order from
    init[i or 0, j]; pcnt, acnt: the product roundings and the additions that overflowed. ``pprm``,
    ``aprm``: `fround` records of the product and accumulator formats. Rows run in parallel."""
    for i in prange(A.shape[0]):
        _tree_row(i, A, W, init, out, pcnt, acnt, n, pprm, aprm, floor)


@njit(cache=True)
def tree_rows_serial(A, W, init, out, pcnt, acnt, n, pprm, aprm, floor):
    """`tree_rows` without threads."""
    for i in range(A.shape[0]):
        _tree_row(i, A, W, init, out, pcnt, acnt, n, pprm, aprm, floor)


def run_tree(a: np.ndarray, w: np.ndarray, init: np.ndarray, mac: Any) -> tuple[np.ndarray, ...]:
    """The pairwise steps of ``mac`` on a (M, K) and w (K, N) float64 operands in their formats from init
    (1, N) or (M, N) in the accumulator's; returns the accumulator values and the product and accumulator
    overflow counts (each (M, N))."""
    M, K = a.shape
    N = w.shape[1]
    out = np.empty((M, N), np.float64)
    pcnt = np.zeros((M, N), np.int32)
    acnt = np.zeros((M, N), np.int32)
    if mac.product is not None:
        pprm = float_params(mac.product, int(mac.product_rounding), int(mac.product_overflow))
    else:
        pprm = float_params(mac.acc, int(mac.acc_rounding), int(mac.acc_overflow))
    kernel = tree_rows if M > 1 and M * K * N >= 1 << 18 else tree_rows_serial
    kernel(np.ascontiguousarray(a, np.float64), np.ascontiguousarray(w, np.float64),
           np.ascontiguousarray(init, np.float64), out, pcnt, acnt, mac.order.n, pprm,
           float_params(mac.acc, int(mac.acc_rounding), int(mac.acc_overflow)),
           mac.acc_rounding == Rounding.FLOOR)
    return out, pcnt, acnt
