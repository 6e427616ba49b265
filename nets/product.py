"""A layer's product a @ w (`mac_product`): through an emu datapath, or in float64, by numpy's BLAS in
training and by `row_product` in evaluation, whose rows do not depend on each other (a row's outputs have
the same bits for any batch size). Imports numpy, numba and `emu`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

import emu
from emu.threads import LANE_THREAD_MACS, share

if TYPE_CHECKING:
    from .layers import Context

__all__ = ["mac_product", "row_product"]


@njit(nogil=True, cache=True)
def _row_product_kernel(a: np.ndarray, w: np.ndarray, out: np.ndarray, lo: int, hi: int) -> None:
    """out[i] = a[i] @ w for rows lo <= i < hi: each product rounded, then added from k = 0 up (no fused
    multiply-add: numba contracts nothing without fastmath), so a row's bits depend on that row and w only.
    Rows go four at a time, each row of w read once for the four, and four k at a time: one statement
    ((((o + p0) + p1) + p2) + p3) makes the same four roundings in the same order with one load and one
    store of o (the same operations on each row: which rows share a pass changes no bit; about 2.3x the
    speed of one k at a time on (270, 64) @ (64, 100))."""
    kk, n = w.shape
    if kk == 0:
        for i in range(lo, hi):
            for j in range(n):
                out[i, j] = 0.0
        return
    k4 = 1 + (kk - 1) // 4 * 4  # k = 1 .. k4 - 1 four at a time, then one at a time
    i = lo
    while i + 4 <= hi:
        o0, o1, o2, o3 = out[i], out[i + 1], out[i + 2], out[i + 3]
        r0, r1, r2, r3 = a[i], a[i + 1], a[i + 2], a[i + 3]
        wk = w[0]
        for j in range(n):
            o0[j] = r0[0] * wk[j]
            o1[j] = r1[0] * wk[j]
            o2[j] = r2[0] * wk[j]
            o3[j] = r3[0] * wk[j]
        for k in range(1, k4, 4):
            wa, wb, wc, wd = w[k], w[k + 1], w[k + 2], w[k + 3]
            p0, q0, s0, t0 = r0[k], r0[k + 1], r0[k + 2], r0[k + 3]
            p1, q1, s1, t1 = r1[k], r1[k + 1], r1[k + 2], r1[k + 3]
            p2, q2, s2, t2 = r2[k], r2[k + 1], r2[k + 2], r2[k + 3]
            p3, q3, s3, t3 = r3[k], r3[k + 1], r3[k + 2], r3[k + 3]
            for j in range(n):
                x, y, z, v = wa[j], wb[j], wc[j], wd[j]
                o0[j] = (((o0[j] + p0 * x) + q0 * y) + s0 * z) + t0 * v
                o1[j] = (((o1[j] + p1 * x) + q1 * y) + s1 * z) + t1 * v
                o2[j] = (((o2[j] + p2 * x) + q2 * y) + s2 * z) + t2 * v
                o3[j] = (((o3[j] + p3 * x) + q3 * y) + s3 * z) + t3 * v
        for k in range(k4, kk):
            wk = w[k]
            for j in range(n):
                o0[j] += r0[k] * wk[j]
                o1[j] += r1[k] * wk[j]
                o2[j] += r2[k] * wk[j]
                o3[j] += r3[k] * wk[j]
        i += 4
    for r in range(i, hi):
        o = out[r]
        for j in range(n):
            o[j] = a[r, 0] * w[0, j]
        for k in range(1, kk):
            ak = a[r, k]
            for j in range(n):
                o[j] += ak * w[k, j]


def _row_product_2d(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, np.float64)
    w = np.ascontiguousarray(w, np.float64)
    m = a.shape[0]
    out = np.empty((m, w.shape[1]))
    if m > 1 and m * a.shape[1] * w.shape[1] >= LANE_THREAD_MACS:
        def work(t: int, threads: int) -> None:  # contiguous runs of rows: which thread runs a row is moot
            _row_product_kernel(a, w, out, m * t // threads, m * (t + 1) // threads)
        share(work)
    else:
        _row_product_kernel(a, w, out, 0, m)
    return out


def row_product(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """a @ w in float64 (np.matmul's shapes and broadcasting), every output entry the sum of its K products
    in k order, each product and each sum rounded to nearest even: a row's bits depend on that row of a
    and on w only, never on the other rows, their number or the thread count (numpy's BLAS product can
    round a row differently with the rows around it). Evaluation's float64 products (`mac_product` under
    `nets.layers.Context`'s ``row_independent``), so that `nets.evaluate` and `nets.models.Model.predict`
    give every row the same bits for any ``batch_size``.

    >>> row_product(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0], [6.0]])).tolist()
    [[17.0], [39.0]]
    >>> float(row_product(np.array([0.1, 0.2, 0.3]), np.ones(3))) == (0.1 + 0.2) + 0.3
    True
    """
    a, w = np.asarray(a, np.float64), np.asarray(w, np.float64)
    if a.ndim == 0 or w.ndim == 0 or a.shape[-1] != w.shape[-2 if w.ndim > 1 else 0]:
        raise ValueError(f"row_product: operands of shapes {a.shape} and {w.shape} do not multiply")
    if a.ndim == 1:
        return row_product(a[None], w)[..., 0, :] if w.ndim > 1 else row_product(a[None], w[:, None])[0, 0]
    if w.ndim == 1:
        return row_product(a, w[:, None])[..., 0]
    k, n = w.shape[-2:]
    if w.ndim == 2:
        return _row_product_2d(a.reshape(math.prod(a.shape[:-1]), k), w).reshape(*a.shape[:-1], n)
    lead = np.broadcast_shapes(a.shape[:-2], w.shape[:-2])
    m = a.shape[-2]
    ab = np.broadcast_to(a, lead + (m, k)).reshape(math.prod(lead), m, k)
    wb = np.broadcast_to(w, lead + (k, n)).reshape(math.prod(lead), k, n)
    out = np.empty((ab.shape[0], m, n))
    for t in range(ab.shape[0]):
        out[t] = _row_product_2d(ab[t], wb[t])
    return out.reshape(lead + (m, n))


def mac_product(a: np.ndarray, w: np.ndarray, mac: emu.MAC | None, bias: np.ndarray | None = None,
                ctx: Context | None = None, where: str = "") -> np.ndarray:
    """a @ w (+ bias) through a datapath (its MACs and overflows counted in ``ctx`` under ``where``), or in
    float64 when ``mac`` is None: `row_product` under a context whose ``row_independent`` is set
    (evaluation), numpy's BLAS product otherwise. Leading (batch) dimensions broadcast as in np.matmul.

    A MAC of block-scaled operands encodes a and w with blocks along K and
    accumulates the block sums bit-exactly; its bias is added afterwards and
    rounded once into the accumulator's format. Other MACs start each
    accumulator at the bias.

    >>> mac = emu.mac_preset("int8 x int8 -> int32")
    >>> mac_product(np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]]), mac)
    array([[11.]])
    """
    if mac is None:
        y = row_product(a, w) if ctx is not None and ctx.row_independent else a @ w
        return y + bias if bias is not None else y
    mac, seed = (mac, None) if ctx is None else ctx.quant.datapath(mac)  # the run's random stream
    if mac.block_scaled:
        y, st = emu.matmul(a, w, mac, return_stats=True, seed=seed)
        if bias is not None:
            y = y + bias
            if not mac.exact_acc:
                y = emu.quantize(y, mac.acc, mac.acc_rounding)
    else:
        y, st = emu.matmul(a, w, mac, bias, return_stats=True, seed=seed)
    if ctx is not None:
        ctx.count_mac(where, int(y.size) * int(a.shape[-1]), st)
    return y
