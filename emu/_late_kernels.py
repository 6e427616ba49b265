"""numba kernels of the fused step that adds its addend late (``order="fused(n)"`` with ``late_addend``):
the AMD CDNA3 matrix cores.

One step of an output (`emu.late_addend` states the rule; its exact twin is `emu._ref.late`):

1. with ``product_inf``, a finite product of magnitude 2^(emax + 1) of the accumulator or more is an
   infinity of its sign before any sum, and the step counts as overflowed (so ``acc_overflow`` acts on
   it: inf, the largest value under saturate, an error under error); a NaN or infinite operand, addend or
   such product makes the step the IEEE sum of its terms (`rare_step`: +inf and -inf give NaN);
2. every product group is aligned to its largest product exponent and cut to F = ``align_bits`` fraction
   bits (``align_rounding``); two groups (odd and even positions) are joined at the larger exponent E_p,
   each cut with the late rounding to F bits below it;
3. the product sum S and the addend c meet at E = max(E_p, E_c): S is cut to Fs, c to Fc fraction bits
   below E (``LateAddend``); their exact sum is rounded once into the accumulator and is the next c.

Every value is an integer below 2^53 in units of a power of two: the products keep at most 53 bits
(`MAC` checks), a group sum of n <= 1024 cut terms is below 2^(F + 12), and step 3 sums two integers
below 2^(max(Fc, Fs) + 13) with Fc, Fs <= 38.

Worked example (F = 24, Fc = 24, Fs = 31, floor, nearest even; fp16 operands (1 + 2^-8) 2^-12 and 2^-12,
whose product is 2^-24 + 2^-32): with C = 1, E = 0 and the product sum floors to 2^-24 on the grid
2^-31; 1 + 2^-24 is a binary32 tie and rounds to 1. Negated, C = -1 and the product -(2^-24 + 2^-32)
floors to -(2^-24 + 2^-31); -(1 + 2^-24 + 2^-31) rounds to -(1 + 2^-23): the floor makes the unit
sign-asymmetric.

>>> import emu
>>> float(emu.matmul([[2.0**-12 + 2.0**-20]], [[2.0**-12]], "MI300 fp16 -> fp32", c=[[1.0]])[0, 0])
1.0
>>> y = emu.matmul([[-(2.0**-12 + 2.0**-20)]], [[2.0**-12]], "MI300 fp16 -> fp32", c=[[-1.0]])
>>> float(y[0, 0]) == -(1 + 2.0**-23)
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

from ._fused_kernels import NO_TERM, align_exp, aligned_operands, cut_term, rare_step
from ._rounding import float_params, fround, pow2
from .late_addend import ProductGroups
from .modes import Rounding


@njit(cache=True)
def _group(arow, wcol, ea, ew, k0, k1, step, F, floor_cut, e_floor):
    """(E, S) of the products k0, k0 + step, ... < k1: E their largest exponent (raised to ``e_floor``),
    `NO_TERM` when all are zero; S their sum cut to multiples of 2^(E - F), in units of 2^(E - F)."""
    E = NO_TERM
    for k in range(k0, k1, step):
        if arow[k] != 0.0 and wcol[k] != 0.0:
            E = max(E, ea[k] + ew[k])
    if E == NO_TERM:
        return NO_TERM, 0.0
    E = max(E, e_floor)
    inv = pow2(F - E)
    s = 0.0
    for k in range(k0, k1, step):
        s += cut_term(arow[k] * wcol[k] * inv, floor_cut)
    return E, s


@njit(cache=True)
def _rescaled_cut(x, k, floor_cut):
    """x 2^k (x an integer-valued float64 below 2^53, k >= -2100) cut to an integer: a shift below 2^-1000
    leaves a magnitude below 1, which floor takes to -1 when negative and truncation to 0."""
    if k < -1000:
        return -1.0 if floor_cut and x < 0.0 else 0.0
    return cut_term(x * pow2(k), floor_cut)


@njit(cache=True)
def late_step(arow, wcol, ea, ew, k0, k1, c, ec_min, F, floor_cut, e_floor, odd_even, fc, fs, late_floor,
              zero_exp, drop, limit, prm):
    """One step from the addend c (module docstring); returns (value, overflowed). ``zero_exp``,
    ``drop``: `NO_TERM` and -1 when unset; ``limit``: 0.0 without ``product_inf``."""
    special = not np.isfinite(c)
    over = False  # a finite product at or beyond ``limit``: an infinity, and an overflow of the step
    for k in range(k0, k1):
        special |= not (np.isfinite(arow[k]) and np.isfinite(wcol[k]))
        p = arow[k] * wcol[k]
        over |= limit > 0.0 and abs(p) >= limit and np.isfinite(p)
    if special or over:
        v, o = rare_step(arow, wcol, k0, k1, c, prm, limit)
        return v, o or over
    if odd_even:
        e0, s0 = _group(arow, wcol, ea, ew, k0, k1, 2, F, floor_cut, e_floor)
        e1, s1 = _group(arow, wcol, ea, ew, k0 + 1, k1, 2, F, floor_cut, e_floor)
        ep = max(e0, e1)
        sp = 0.0
        if e0 != NO_TERM:
            sp += _rescaled_cut(s0, e0 - ep, late_floor)
        if e1 != NO_TERM:
            sp += _rescaled_cut(s1, e1 - ep, late_floor)
    else:
        ep, sp = _group(arow, wcol, ea, ew, k0, k1, 1, F, floor_cut, e_floor)
    if ep == NO_TERM and c == 0.0:
        return rare_step(arow, wcol, k0, k1, c, prm)  # every term is zero: the sign rule of zeros
    ec = align_exp(c, ec_min) if c != 0.0 else zero_exp
    E = max(ep, ec)
    b = max(fc, fs)
    total = 0.0
    if ep != NO_TERM:
        total += _rescaled_cut(sp, ep - F - E + fs, late_floor) * pow2(b - fs)
    if c != 0.0 and not (drop >= 0 and E - ec > drop):
        total += cut_term(c * pow2(fc - E), late_floor) * pow2(b - fc)
    if total == 0.0:
        return 0.0, False
    return fround(total * pow2(E - b), prm)


@njit(cache=True)
def _late_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, e_floor, odd_even, fc, fs,
              late_floor, zero_exp, drop, limit, prm):
    """Row i of `late_rows`."""
    K = A.shape[1]
    r = min(np.int64(i), init.shape[0] - 1)
    for j in range(W.shape[1]):
        c = init[r, j]
        cnt = 0
        wcol = np.ascontiguousarray(W[:, j])
        ew = np.ascontiguousarray(EW[:, j])
        for k0 in range(0, K, n):
            c, o = late_step(A[i], wcol, EA[i], ew, k0, min(K, k0 + n), c, ec_min, F, floor_cut, e_floor,
                             odd_even, fc, fs, late_floor, zero_exp, drop, limit, prm)
            cnt += o
        out[i, j] = c
        acnt[i, j] = cnt


@njit(parallel=True, cache=True)
def late_rows(A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, e_floor, odd_even, fc, fs, late_floor,
              zero_exp, drop, limit, prm):
    """out[i, j]: the late-addend steps of n products of row i of A and column j of W in natural K order
    from init[i or 0, j]; acnt[i, j] the steps whose rounding overflowed. Rows run in parallel."""
    for i in prange(A.shape[0]):
        _late_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, e_floor, odd_even, fc, fs,
                  late_floor, zero_exp, drop, limit, prm)


@njit(cache=True)
def late_rows_serial(A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, e_floor, odd_even, fc, fs,
                     late_floor, zero_exp, drop, limit, prm):
    """`late_rows` without threads."""
    for i in range(A.shape[0]):
        _late_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, e_floor, odd_even, fc, fs,
                  late_floor, zero_exp, drop, limit, prm)


def run_late(a: np.ndarray, w: np.ndarray, init: np.ndarray, mac: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every field of a late-addend fused MAC passed to the kernels: a (M, K) and w (K, N) float64
    operands in their formats, init (1, N) or (M, N) start values in the accumulator's. Returns the
    accumulator values (M, N) and the count of steps whose rounding overflowed (M, N)."""
    M, K = a.shape
    N = w.shape[1]
    out = np.empty((M, N), np.float64)
    acnt = np.zeros((M, N), np.int32)
    A, W, EA, EW = aligned_operands(a, w, mac)
    late = mac.late_addend
    kernel = late_rows if M > 1 and M * K * N >= 1 << 18 else late_rows_serial
    kernel(A, W, EA, EW, np.ascontiguousarray(init, np.float64), out, acnt, mac.order.n, mac.acc.emin,
           mac.align_bits, mac.align_rounding == Rounding.FLOOR,
           NO_TERM if mac.align_min_exp is None else int(mac.align_min_exp),
           mac.product_groups == ProductGroups.ODD_EVEN, late.addend_bits, late.sum_bits,
           late.rounding == Rounding.FLOOR, NO_TERM if late.zero_exp is None else late.zero_exp,
           -1 if late.drop_shift is None else late.drop_shift,
           math.ldexp(1.0, mac.acc.emax + 1) if mac.product_inf else 0.0,
           float_params(mac.acc, int(mac.acc_rounding), int(mac.acc_overflow)))
    return out, acnt
