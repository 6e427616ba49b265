"""The compiled kernels of `nets.mlpstep.MLPStep`: one call runs a unit's (a Linear layer and the ReLU
after it) forward, one its backward with the optimiser's plain update (`unit_forward`, `unit_backward`).

A unit's conversions are rows of tables (`IN` .. `UBO`: kind, integer and packed arguments of a
converter's fast kernel, its key, its counts) and its products run in float64 (exact, for fixed-point
operands) or through datapaths (`FWD`, `BWD`, `GRAD`: binary32 ones by `emu.datapath.mac_fp32_kernel`,
fixed-point ones by `emu.datapath.mac_fixed_kernel`).
`nets.mlpstep` plans the tables and checks what the kernels may run. Imports numpy, numba, `emu` and
`nets.quant`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from emu.datapath import mac_fixed_kernel, mac_fp32_kernel
from emu.update import convert_kind, update_kernel

from .quant import all_inside

__all__ = ["ACT", "B", "BWD", "E", "FIXED", "FP32", "FWD", "GB", "GRAD", "GW", "IN", "PRE", "RE",
           "ROWS", "UBI", "UBO", "UWI", "UWO", "W", "group_sums", "unit_backward", "unit_forward"]

#: a unit's conversions (rows of its tables), each in its pass's order: forward (the network's input,
#: weights, biases, preacts, the ReLU's activations), backward (the incoming errors, the ReLU's errors, the
#: weight and bias gradients), and the optimiser's update (the update term and the new value, of W and of b)
IN, W, B, PRE, ACT, E, RE, GW, GB, UWI, UWO, UBI, UBO = range(13)
ROWS = 13
#: a unit's products through a datapath: forward, backward (the error to the unit below), weight gradient
FWD, BWD, GRAD = range(3)
#: the kinds of a datapath's product (0: none, the product in float64): binary32, fixed point
FP32, FIXED = 1, 2


@njit(cache=True, nogil=True)
def _convert(x, out, i, r, tabs):
    """out = x converted by conversion r of unit i (flat arrays); its counts into stats[i, r, :3]."""
    kinds, ints, packed, nans, keys, stats = tabs
    o, u, n = convert_kind(kinds[i, r], x, out, ints[i, r], packed[i, r], nans[i, r], keys[i, r])
    stats[i, r, 0] = o
    stats[i, r, 1] = u
    stats[i, r, 2] = n


@njit(cache=True, nogil=True)
def _check(x, lo, hi, mask, stats, i, r):
    """The clipped rule's range check of a layer output (flat), as `Layer.q` makes it: where a value is
    outside [lo, hi] (NaN included; `nets.quant.all_inside`), mask marks the values inside and stats[i, r, 3]
    counts the others."""
    if not all_inside(x, lo, hi):
        inside = 0
        for k in range(x.size):
            mask[k] = (x[k] <= hi) & (x[k] >= lo)
            inside += mask[k]
        stats[i, r, 3] = x.size - inside


#: the products (m k n MACs) OpenBLAS runs on one thread, and those that `_rows_dot` splits into such
_ONE_THREAD, _SPLIT = 1 << 18, 1 << 22


@njit(cache=True, nogil=True)
def _rows_dot(a, b, out):
    """out = a @ b by numba's (BLAS) product, a C-ordered: a product of ``_SPLIT`` MACs or more in one
    call, a smaller one in blocks of rows of fewer than ``_ONE_THREAD`` MACs each, which OpenBLAS runs on
    one thread. Numba's BLAS is not numpy's (it has its own pool of threads): for a product this small,
    waking a second pool costs more than its threads gain, and its threads, spinning after the product,
    slow the numpy work that follows (the digits MLP's epoch under fx<4,12>, right after a numpy one,
    with its evaluation batches of 270 x 64 x 100 MACs: 9.6-10.7 ms in one call, 7.4-7.5 ms in blocks).
    Exact products (fixed-point operands) have the same values in any blocks."""
    m, k = a.shape
    n = b.shape[1]
    if m * k * n >= _SPLIT or m * k * n < _ONE_THREAD:
        np.dot(a, b, out)
        return
    rows = max(1, (_ONE_THREAD - 1) // (k * n))
    for r0 in range(0, m, rows):
        np.dot(a[r0:r0 + rows], b, out[r0:r0 + rows])


@njit(cache=True, nogil=True)
def _mac(i, p, a, a_t, w, w_t, start, cols, out, macs):
    """out = product p (`FWD`, `BWD`, `GRAD`) of unit i through its datapath, from the start values
    ``start``; macs = (packed conversions, NaN values, kept, kinds, fixed floats, fixed ints, overflows),
    by unit and product (and operand). Kind `FP32` runs `emu.datapath.mac_fp32_kernel` (a kept operand's
    values are its conversion's already, and pass as they are); kind `FIXED` runs
    `emu.datapath.mac_fixed_kernel` (the arguments of `emu.datapath.fixed_kernel_args` in the fixed tables)
    and puts its additions that overflowed in overflows[i, p]. Returns whether the kernel met a NaN or made
    a value that is not finite (its values are then not `emu.matmul`'s: an infinity, which a kept operand
    passes, the datapath's conversion saturates)."""
    packed, nans, kept, kinds, ff, fi, overflows = macs
    if kinds[i, p] == FIXED:
        f, k = ff[i, p], fi[i, p]
        c = mac_fixed_kernel(a, a_t, w, w_t, start, (f[0], f[1], f[2], k[0]), (f[3], f[4], f[5], k[1]),
                             (f[6], f[7], f[8], k[2]), k[3], k[4], k[5], k[6], k[7], k[8] != 0, f[9], k[9],
                             out, np.empty(out.shape, np.int32))
        overflows[i, p] = c[2]
        return c[1] != 0
    pa, pw, ps = packed[i, p, 0], packed[i, p, 1], packed[i, p, 2]
    c = mac_fp32_kernel(a, a_t, w, w_t, start, pa[:0] if kept[i, p, 0] else pa, nans[i, p, 0],
                        pw[:0] if kept[i, p, 1] else pw, nans[i, p, 1], ps[:0] if kept[i, p, 2] else ps,
                        nans[i, p, 2], cols[p], out)
    return (c[1] != 0) | (c[2] != 0) | (c[3] != 0) | (c[4] != 0)


@njit(cache=True, nogil=True)
def unit_forward(i, x, w, b, kept_w, kept_b, q, r, a, relu, kept_a, wq_t, tabs, clips, lo, hi, macs, cols,
                 xq, wq, bq, y, pmask, amask):
    """Unit i forward (see `nets.mlpstep`): x (n, n_in) the input, converted into xq where xq is not
    empty (the first unit); w (n_in, n_out) the stored weights, converted into wq unless ``kept_w``: with
    ``wq_t`` (a conversion that draws) their transpose (n_out, n_in: the order `Layer.q` converts them in,
    which the random bits follow), else w's layout; b converted into bq unless ``kept_b``;
    y = x W + b, in float64 or, where ``macs`` has entries, through the datapath (`_mac`, ``cols`` its
    layouts); q its conversion; with ``relu``, r = max(q, 0) and a its conversion unless ``kept_a``;
    pmask and amask the range checks' masks (flat). ``tabs`` = (kinds, ints, packed, nans, keys, stats):
    row r of unit i's kinds, ints, packed, nans (a converter's `emu.convert.FastSpec` args), clips, lo,
    hi and keys is its conversion r, and stats[i, r] gets its (overflow, underflow, NaN, outside) counts.
    Returns the NaNs the conversions met and whether the datapath met a value it does not run (`_mac`)."""
    stats = tabs[5]
    h = x
    if xq.size:
        _convert(x.reshape(-1), xq.reshape(-1), i, IN, tabs)
        h = xq
    bb = b
    if not kept_b:
        _convert(b, bq, i, B, tabs)
        bb = bq
    wk, wt = w, False
    if not kept_w:
        wk, wt = wq, wq_t
        if wq_t:
            _convert(np.ascontiguousarray(w.T).reshape(-1), wq.reshape(-1), i, W, tabs)
        else:
            _convert(w.reshape(-1), wq.reshape(-1), i, W, tabs)
    bad = False
    if macs[3].size:
        bad = _mac(i, FWD, h, False, wk, wt, bb, cols, y, macs)
    else:
        if wt:
            _rows_dot(h, wk.T, y)
        else:
            _rows_dot(h, wk, y)
        for k in range(y.shape[0]):
            for j in range(y.shape[1]):
                y[k, j] = y[k, j] + bb[j]
    yf = y.reshape(-1)
    if clips[i, PRE]:
        _check(yf, lo[i, PRE], hi[i, PRE], pmask, stats, i, PRE)
    _convert(yf, q.reshape(-1), i, PRE, tabs)
    if relu:
        qf = q.reshape(-1)
        rf = r.reshape(-1)
        for k in range(qf.size):
            v = qf[k]
            rf[k] = v if (v > 0.0) | (v != v) else 0.0  # np.maximum(v, 0.0): NaN kept, -0 made +0
        if clips[i, ACT]:
            _check(rf, lo[i, ACT], hi[i, ACT], amask, stats, i, ACT)
        if not kept_a:
            _convert(rf, a.reshape(-1), i, ACT, tabs)
    return stats[i, IN, 2] + stats[i, W, 2] + stats[i, B, 2] + stats[i, PRE, 2] + stats[i, ACT, 2], bad


@njit(cache=True, nogil=True)
def _update(i, w, g, rate, rows, tabs, out):
    """out = Q_master(w + Q_update(rate g)) by conversions rows = (inner, outer) of unit i; stats gets their
    counts, with the updates attempted in the inner row's fourth column and those zeroed in the outer's."""
    kinds, ints, packed, nans, keys, stats = tabs
    ri, ro = rows
    c = update_kernel(w.reshape(-1), g.reshape(-1), rate, kinds[i, ri], ints[i, ri], packed[i, ri],
                      nans[i, ri], keys[i, ri], kinds[i, ro], ints[i, ro], packed[i, ro], nans[i, ro],
                      keys[i, ro], out.reshape(-1))
    for k in range(3):
        stats[i, ri, k] = c[k]
        stats[i, ro, k] = c[3 + k]
    stats[i, ri, 3] = c[6]
    stats[i, ro, 3] = c[7]


@njit(cache=True, nogil=True)
def unit_backward(i, g, w, w_t, amask, pmask, gw, gb, rates, wp, bp, new_w, new_b, relu, q, h, tabs, macs,
                  cols, zeros_out, zeros_in, e, u, v, dy, dw, db, eraw):
    """Unit i backward (see `nets.mlpstep`): g (n, n_out) the gradient at the unit's output,
    converted into e; with ``relu``, u = (q > 0) (e amask) and v its conversion; dy = v pmask (a mask of
    size 0: none; bools multiply as 1.0 and 0.0, as numpy's); dw = h^T dy and db its column sums,
    converted into gw and gb; where eraw is not empty, eraw = dy W^T, W the weights the forward multiplied:
    w (n_in, n_out), or its transpose (n_out, n_in) with ``w_t``; the products in float64 or, where
    ``macs`` has entries, through the datapaths from the zero start values zeros_out (n_out) and zeros_in
    (n_in); where ``rates`` is not empty, new_w and new_b the stored wp and bp updated by `_update` with
    rates[0] and rates[1]. Tables and the values returned as in `unit_forward`."""
    stats = tabs[5]
    _convert(g.reshape(-1), e.reshape(-1), i, E, tabs)
    ef = e.reshape(-1)
    vf = ef
    if relu:
        qf = q.reshape(-1)
        uf = u.reshape(-1)
        for k in range(uf.size):
            t = ef[k] * (1.0 if amask[k] else 0.0) if amask.size else ef[k]
            uf[k] = (1.0 if qf[k] > 0.0 else 0.0) * t
        _convert(uf, v.reshape(-1), i, RE, tabs)
        vf = v.reshape(-1)
    df = dy.reshape(-1)
    for k in range(df.size):
        df[k] = vf[k] * (1.0 if pmask[k] else 0.0) if pmask.size else vf[k]
    bad = False
    if macs[3].size:
        bad = _mac(i, GRAD, h, True, dy, False, zeros_out, cols, dw, macs)
    else:
        np.dot(h.T, dy, dw)
    for j in range(dy.shape[1]):
        s = 0.0
        for k in range(dy.shape[0]):
            s += dy[k, j]
        db[j] = s
    _convert(dw.reshape(-1), gw.reshape(-1), i, GW, tabs)
    _convert(db, gb, i, GB, tabs)
    if eraw.size:
        if macs[3].size:
            bad |= _mac(i, BWD, dy, False, w, not w_t, zeros_in, cols, eraw, macs)
        elif w_t:
            np.dot(dy, w, eraw)
        else:
            np.dot(dy, w.T, eraw)
    if rates.size:
        _update(i, wp, gw, rates[0], (UWI, UWO), tabs, new_w)
        _update(i, bp, gb, rates[1], (UBI, UBO), tabs, new_b)
    nans = 0
    for r in range(E, ROWS):
        nans += stats[i, r, 2]
    return nans, bad


@njit(cache=True, nogil=True)
def group_sums(role_of, extra_of, stats, out):
    """out[k] = the sum of the rows of stats (flat: (rows, 4) counts) whose role_of or extra_of is k (-1:
    none), one pass (a small integer matrix product costs numpy several times as much)."""
    out[:] = 0
    s = stats.reshape(-1, 4)
    for row in range(s.shape[0]):
        k = role_of[row]
        e = extra_of[row]
        for c in range(4):
            if k >= 0:
                out[k, c] += s[row, c]
            if e >= 0:
                out[e, c] += s[row, c]
