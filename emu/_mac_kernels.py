"""Numba kernels of the multiply-accumulate datapath (NUMERICS.md section 6).

One generic row kernel, `mac_rows`, runs every accumulation order; two small
jitted functions, chosen by type tags (so numba compiles and caches one
specialisation per pair, with no branch left in the inner loop), do the
arithmetic: ``term(a, w, prm) -> (t, product_overflowed)`` forms one aligned
product and ``add(x, y, prm) -> (r, acc_overflowed)`` is one accumulator
addition. The integer path (fixed and exact accumulators) works on integer
codes; the float path on float64 values that hold the formats' values exactly,
adding with an exact two-sum and a single correct rounding into the
accumulator format (branch-free, so that it vectorises; nearest even has its
own twins of the float functions, which round by one float64 addition,
`fround_ne_add`, for the formats it covers).
Loops run over rows in parallel and over output columns innermost, so each
output's additions stay in order while the columns vectorise. `emu._ref.mac`
is the slow literal reference they are tested against. No fastmath; kernels
never raise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange
from numba.extending import overload

from ._rounding import (
    _ABS,
    _ALL,
    _EXP_ALL,
    _FLOOR,
    _ONE,
    _SIGN,
    _SR,
    _ZERO,
    U64,
    FroundParams,
    float_params,
    fround,
    fround_ne_add,
    fround_sr,
    round_mag,
    round_shift,
)

SEQUENTIAL, LANES, PAIRWISE, BLOCKS = 0, 1, 2, 3
ORDER_CODES = {"sequential": SEQUENTIAL, "lanes": LANES, "pairwise": PAIRWISE, "blocks": BLOCKS}



# --- integer path ---------------------------------------------------------------------------------


@njit(cache=True)
def _fit(p: np.int64, lo: np.int64, hi: np.int64, mask: np.int64, wrap: bool) -> np.int64:
    """p wrapped into [lo, hi] (two's complement, mod 2^W) or clamped to it."""
    if wrap:
        return ((p - lo) & mask) + lo
    return min(max(p, lo), hi)


@njit(cache=True)
def term_int(a, w, prm, idx):
    """Exact product of two codes, optionally rounded into the product format,
    then aligned to the accumulator's step. ``prm`` = (prod_on, sp, pmode, plo,
    phi, pmask, pwrap, sa, amode)."""
    prod_on, sp, pmode, plo, phi, pmask, pwrap, sa, amode = prm
    p = a * w
    if not prod_on:
        return _align(p, sa, amode), False
    if sp > 0:
        p = round_shift(p, sp, pmode)
    elif sp < 0:
        p = p << -sp
    return _fit_and_align(p, plo, phi, pmask, pwrap, sa, amode)


@njit(cache=True)
def _align(p, sa, amode):
    """p brought to the accumulator's step: sa bits dropped with ``amode`` (sa > 0) or added (sa < 0)."""
    if sa > 0:
        return round_shift(p, sa, amode)
    if sa < 0:
        return p << -sa
    return p


@njit(cache=True)
def _fit_and_align(p, plo, phi, pmask, pwrap, sa, amode):
    """A product rounded into the product format, then fitted to its range (wrap or saturate: the
    second value says it overflowed) and aligned to the accumulator's step."""
    f = _fit(p, plo, phi, pmask, pwrap)
    return _align(f, sa, amode), f != p


@njit(cache=True)
def term_int_sr(a, w, prm, idx):
    """Exact product of two codes rounded stochastically into the product format, then aligned to the
    accumulator's step. ``prm`` = (sp >= 1, plo, phi, pmask, pwrap, sa, amode, key as int64); product
    ``idx`` takes the random words of element ``idx`` of the key's stream (docs/semantics.md), and the
    rounding acts on the signed value's fraction, as `quantize` does for fixed point."""
    sp, plo, phi, pmask, pwrap, sa, amode, key = prm
    p = a * w
    neg = p < 0
    q, _ = round_mag(U64(-p if neg else p), sp, neg, _SR, True, U64(key), idx, 0, _ZERO)
    return _fit_and_align(-np.int64(q) if neg else np.int64(q), plo, phi, pmask, pwrap, sa, amode)


@njit(cache=True)
def term_mul(a, w, prm, idx):
    """Exact product, already on the accumulator's step."""
    return a * w, False


@njit(cache=True)
def term_mul_shl(a, w, prm, idx):
    """Exact product moved up to the accumulator's step (``prm.bits`` bits, a `ShiftParams`)."""
    return (a * w) << prm.bits, False


@njit(cache=True)
def term_mul_floor(a, w, prm, idx):
    """Exact product with its ``prm.bits`` low bits dropped (floor alignment)."""
    return (a * w) >> prm.bits, False


@njit(cache=True)
def term_mul_round(a, w, prm, idx):
    """Exact product rounded to the accumulator's step (prm = (bits, mode))."""
    return round_shift(a * w, prm.bits, prm.mode), False


@njit(cache=True)
def add_fixed(x, y, prm):
    """One fixed accumulator addition: wrap (mod 2^W) or saturate; ``prm`` = (lo, hi, mask, wrap)."""
    lo, hi, mask, wrap = prm
    s = x + y
    r = _fit(s, lo, hi, mask, wrap)
    return r, r != s


@njit(cache=True)
def add_exact(x, y, prm):
    """One exact addition (the caller proved the int64 range suffices)."""
    return x + y, False


# --- float path -----------------------------------------------------------------------------------


@njit(cache=True)
def term_float_round(a, w, prm, idx):
    """Exact float64 product rounded into the product format (prm: `fround` parameters)."""
    return fround(a * w, prm)


@njit(cache=True)
def term_float_round_ne(a, w, prm, idx):
    """`term_float_round` for nearest even (``prm`` of that mode) into a format `fround_ne_add` rounds."""
    return fround_ne_add(a * w, prm)


@njit(cache=True)
def term_float_sr(a, w, prm, idx):
    """Exact float64 product rounded stochastically into the product format (`fround_sr`); ``prm`` a
    `StochasticFloatParams`."""
    return fround_sr(a * w, prm, prm.emin, prm.man_bits, prm.key, idx)


@njit(cache=True)
def _nudged_sum(x, y, half_mask):
    """(s, s2): the float64 sum s = x + y and a float64 value s2 that rounds into the
    accumulator format in every deterministic mode as the exact sum x + y does
    (``half_mask``: the float64 fraction bits below the format's half-step).

    Two-sum gives s + e = x + y exactly, |e| at most half a float64 step of s. Between
    two neighbouring points h1 < h2 of the format's half-grid (its values and the
    midpoints between them: multiples of float64 steps), s and the exact sum round
    alike; only where s is such a point, and e != 0, do they part. Then s moves one
    float64 step toward e (+-1 on its bits: +1, away from zero, where e has the sign of
    s), which lands strictly between s and the next point (the format has at most 50
    fraction bits), and rounds as the exact sum. The test of s is that its fraction
    bits below the half-step of its binade are zero: exact for the format's normals,
    and below its smallest normal true for every point of the coarser subnormal
    half-grid and a few other values, whose move is harmless (it stays strictly
    between the same two points, its low bit being set). Only bit operations and
    selects: the loops over output columns vectorise. (An infinite operand or
    inf - inf leaves e NaN: s itself is converted like any value.)"""
    s = x + y
    bb = s - x
    e = (x - (s - bb)) + (y - bb)
    b = np.float64(s).view(np.uint64)
    a = b & _ABS
    away = ((np.float64(e).view(np.uint64) ^ b) & _SIGN) == _ZERO
    step = (_ONE if away else _ALL) if (e != 0.0) & ((a & half_mask) == _ZERO) & (a < _EXP_ALL) else _ZERO
    return s, np.uint64(b + step).view(np.float64)


@njit(cache=True)
def add_float(x, y, prm):
    """One float accumulator addition, rounded once from the exact sum (`_nudged_sum`,
    then `fround`); ``prm`` an `AddFloatParams` (`add_float_params`)."""
    s, s2 = _nudged_sum(x, y, prm.half_mask)
    r, o = fround(s2, prm)
    return _signed_zero(x, y, s, r, prm.floor_mode, prm.nzero), o


@njit(cache=True)
def add_float_ne(x, y, prm):
    """`add_float` for nearest even (``prm`` of that mode) into a format `fround_ne_add` rounds: float64's
    own zero sums are right under nearest even, so `_signed_zero` has nothing to do."""
    return fround_ne_add(_nudged_sum(x, y, prm.half_mask)[1], prm)


@njit(cache=True)
def _signed_zero(x, y, s, r, floor_mode, nzero):
    """r, or -0 where IEEE 754 gives the exact zero sum s = x + y that sign
    but float64's round-to-nearest addition did not: under rounding toward
    -inf every exact zero sum is -0 unless both operands are +0. (Elsewhere
    float64's own zero is right: +0, or -0 for two -0 operands, and `fround`
    turns -0 into +0 in formats without -0.) Bit tests only: this runs in
    every addition of the vectorised loops."""
    both_pos = (np.float64(x).view(np.uint64) | np.float64(y).view(np.uint64)) == _ZERO
    return -0.0 if floor_mode & nzero & (s == 0.0) & ~both_pos else r


@njit(cache=True)
def add_float_exact(x, y, prm):
    """One float addition when every sum of two operands is exact in float64
    (the format's span is at most 53 bits): round the float64 sum once.
    ``prm`` an `AddFloatParams` (its half-mask unused)."""
    s = x + y
    r, o = fround(s, prm)
    r = _signed_zero(x, y, s, r, prm.floor_mode, prm.nzero)
    return r, o | (~np.isfinite(s) & np.isfinite(x) & np.isfinite(y))


@njit(cache=True)
def add_float_exact_ne(x, y, prm):
    """`add_float_exact` for nearest even (``prm`` of that mode) into a format `fround_ne_add` rounds (no
    `_signed_zero`, as in `add_float_ne`)."""
    s = x + y
    r, o = fround_ne_add(s, prm)
    return r, o | (~np.isfinite(s) & np.isfinite(x) & np.isfinite(y))


@njit(cache=True)
def term_fp32(a, w, prm, idx):
    """Product rounded to binary32, nearest even (the native conversion)."""
    p = np.float32(a * w)
    return np.float64(p), np.isinf(p) & np.isfinite(a * w)


@njit(cache=True)
def add_fp32(x, y, prm):
    """One binary32 addition, nearest even (the native instruction)."""
    s = np.float32(x) + np.float32(y)
    return np.float64(s), np.isinf(s) & np.isfinite(x) & np.isfinite(y)


def is_ne(fprm: FroundParams) -> bool:
    """Whether `fround` parameters (`float_params`) round to nearest even for both signs."""
    return int(fprm.mm_pos) == 4 and int(fprm.mm_neg) == 4


class IntTermParams(NamedTuple):
    """The parameters of `term_int`: the product format (when ``prod_on``: the shift ``sp`` into it, its
    rounding mode, range, mask and wrap) and the alignment into the accumulator (shift ``sa``, mode)."""

    prod_on: bool
    sp: int
    pmode: int
    plo: int
    phi: int
    pmask: int
    pwrap: bool
    sa: int
    amode: int


class StochasticIntParams(NamedTuple):
    """The parameters of `term_int_sr`: `IntTermParams` without ``prod_on`` and ``pmode``, and the
    product stream's key (as int64)."""

    sp: int
    plo: int
    phi: int
    pmask: int
    pwrap: bool
    sa: int
    amode: int
    key: int


class ShiftParams(NamedTuple):
    """The parameters of the plain product terms: the alignment shift and its rounding mode."""

    bits: int
    mode: int


class FixedAddParams(NamedTuple):
    """The parameters of `add_fixed`: the accumulator's code range, its word mask, and whether it wraps."""

    lo: int
    hi: int
    mask: int
    wrap: bool


def _extends_fround(name: str, doc: str, *extra: tuple[str, type]) -> type:
    """A flat record type with `FroundParams`' fields followed by ``extra``: `fround` reads its fields by
    name, so it takes the record as it is. (Flat, not nested: the threaded row kernel's argument wrapper
    refuses a record that holds another record.)"""
    record = NamedTuple(name, [*FroundParams.__annotations__.items(), *extra])
    record.__doc__ = doc
    return record


AddFloatParams = _extends_fround(
    "AddFloatParams",
    """The parameters of the float additions: `fround`'s for the accumulator and its modes, then the mask
    of the float64 fraction bits below the format's half-step (`add_float`'s nudge), and whether the mode
    is floor (the sign of an exact zero sum).""",
    ("half_mask", np.uint64), ("floor_mode", bool))

StochasticFloatParams = _extends_fround(
    "StochasticFloatParams",
    """The parameters of `term_float_sr`: `fround`'s of nearest even with the overflow mode, then the
    product format's emin and fraction bits, and the product stream's key (as int64).""",
    ("emin", int), ("man_bits", int), ("key", int))


def add_float_params(fmt, mode: int, ovf: int) -> AddFloatParams:
    """The `AddFloatParams` of an accumulator format and its modes."""
    return AddFloatParams(*float_params(fmt, mode, ovf), U64((1 << (51 - fmt.man_bits)) - 1), mode == _FLOOR)


# --- dispatch by type tags ------------------------------------------------------------------------
# The term and add functions are chosen by the *type* of a tag argument: a tuple
# of n zeros selects function n - 1. Numba compiles and caches one
# specialisation of `mac_rows` per pair of tags, with a direct (inlinable) call
# in the inner loop. (Passing the functions themselves would defeat numba's
# cache; literal integer arguments slow the parallel loop down.)

#: Term functions by code (`tag(code)` as `mac_rows` argument ``tk``).
TERMS = (term_mul, term_mul_shl, term_mul_floor, term_mul_round, term_int, term_float_round, term_fp32,
         term_int_sr, term_float_sr, term_float_round_ne)
#: Addition functions by code (`tag(code)` as `mac_rows` argument ``ak``).
ADDS = (add_fixed, add_exact, add_float, add_float_exact, add_fp32, add_float_ne, add_float_exact_ne)
TERM_CODES = {f: i for i, f in enumerate(TERMS)}
ADD_CODES = {f: i for i, f in enumerate(ADDS)}


def tag(code: int) -> tuple[int, ...]:
    """The type tag that selects function ``code``: a tuple of code + 1 zeros."""
    return (0,) * (code + 1)


def _term(tk, a, w, prm, idx):
    """The term function the tag selects (plain Python; jitted code uses the overload below)."""
    return TERMS[len(tk) - 1](a, w, prm, idx)


def _add(ak, x, y, prm):
    """The addition function the tag selects (plain Python; jitted code uses the overload below)."""
    return ADDS[len(ak) - 1](x, y, prm)


@overload(_term)
def _term_ol(tk, a, w, prm, idx):
    f = TERMS[tk.count - 1]

    def impl(tk, a, w, prm, idx):
        return f(a, w, prm, idx)

    return impl


@overload(_add)
def _add_ol(ak, x, y, prm):
    f = ADDS[ak.count - 1]

    def impl(ak, x, y, prm):
        return f(x, y, prm)

    return impl


# --- the generic row kernel -----------------------------------------------------------------------


@njit(cache=True)
def _add_into(left, right, count, ak, aprm):
    """left[j] = left[j] (+) right[j] for every column, counting overflows into ``count``."""
    for j in range(left.size):
        r, ao = _add(ak, left[j], right[j], aprm)
        left[j] = r
        count[j] += ao


@njit(cache=True)
def _mac_row(i, A, W, init, out, pcnt, acnt, tk, tprm, ak, aprm, kind, n):
    """Row i of `mac_rows` (every output column of that row, in the given order)."""
    K = A.shape[1]
    N = W.shape[1]
    row0 = np.int64(i) * N  # product (i, j, k) is element (i N + j) K + k of the random stream
    bias = init[min(np.int64(i), init.shape[0] - 1)]
    pc = np.zeros(N, np.int32)
    ac = np.zeros(N, np.int32)
    if kind == SEQUENTIAL:
        acc = bias.copy()
        for k in range(K):
            a = A[i, k]
            for j in range(N):
                t, po = _term(tk, a, W[k, j], tprm, (row0 + j) * K + k)
                r, ao = _add(ak, acc[j], t, aprm)
                acc[j] = r
                pc[j] += po
                ac[j] += ao
    elif kind == LANES:
        lanes = np.zeros((n, N), bias.dtype)
        lanes[0] = bias
        for k in range(K):
            a = A[i, k]
            lane = lanes[k % n]
            for j in range(N):
                t, po = _term(tk, a, W[k, j], tprm, (row0 + j) * K + k)
                r, ao = _add(ak, lane[j], t, aprm)
                lane[j] = r
                pc[j] += po
                ac[j] += ao
        acc = lanes[0].copy()
        for lane_index in range(1, n):
            _add_into(acc, lanes[lane_index], ac, ak, aprm)
    elif kind == BLOCKS:
        acc = bias.copy()
        blk = np.zeros(N, bias.dtype)
        for k0 in range(0, K, n):
            blk[:] = -0.0  # the identity of IEEE addition (a block of -0 terms sums to -0); 0 in integers
            for k in range(k0, min(K, k0 + n)):
                a = A[i, k]
                for j in range(N):
                    t, po = _term(tk, a, W[k, j], tprm, (row0 + j) * K + k)
                    blk[j] += t
                    pc[j] += po
            _add_into(acc, blk, ac, ak, aprm)
    else:  # PAIRWISE: a binary counter of subtrees equals the level-by-level tree
        stack = np.zeros((66, N), bias.dtype)
        size = np.zeros(66, np.int64)
        top = 0
        for k in range(K):
            a = A[i, k]
            row = stack[top]
            for j in range(N):
                t, po = _term(tk, a, W[k, j], tprm, (row0 + j) * K + k)
                row[j] = t
                pc[j] += po
            size[top] = 1
            top += 1
            while top >= 2 and size[top - 1] == size[top - 2]:
                _add_into(stack[top - 2], stack[top - 1], ac, ak, aprm)
                size[top - 2] *= 2
                top -= 1
        while top >= 2:
            _add_into(stack[top - 2], stack[top - 1], ac, ak, aprm)
            size[top - 2] += size[top - 1]
            top -= 1
        acc = bias.copy()
        if top == 1:
            _add_into(acc, stack[0], ac, ak, aprm)
    out[i] = acc
    pcnt[i] = pc
    acnt[i] = ac


@njit(parallel=True, cache=True)
def mac_rows(A, W, init, out, pcnt, acnt, tk, tprm, ak, aprm, kind, n):
    """out[i, j] = the accumulation of term(A[i, k], W[k, j]) over k in the given order.

    ``init`` (1, N) or (M, N) is the accumulator's start (in its format); ``pcnt`` and
    ``acnt`` (M, N) receive the product and accumulator overflow counts.
    ``kind``/``n``: SEQUENTIAL, LANES (n lanes), PAIRWISE, BLOCKS (n terms);
    ``tk``/``ak``: tags of the term and add functions (`tag` of `TERM_CODES`, `ADD_CODES`).
    Rows run in parallel.
    """
    for i in prange(A.shape[0]):
        _mac_row(i, A, W, init, out, pcnt, acnt, tk, tprm, ak, aprm, kind, n)


@njit(cache=True)
def mac_rows_serial(A, W, init, out, pcnt, acnt, tk, tprm, ak, aprm, kind, n):
    """`mac_rows` without threads (for small products, where a parallel launch costs more)."""
    for i in range(A.shape[0]):
        _mac_row(i, A, W, init, out, pcnt, acnt, tk, tprm, ak, aprm, kind, n)


@njit(cache=True, inline="always")
def _exact_acc(s, shift, init):
    """The accumulator code of an exact integer sum ``s`` (float32 or float64, an integer) aligned by
    ``shift`` from the start code ``init``."""
    return (np.int64(s) << shift) + init


@njit(cache=True)
def exact_sums_out(s, shift, init_q, step, mask, vals, codes, want_codes):
    """Accumulator values (and codes) of exact integer sums ``s`` (float32 or
    float64 BLAS output, integers) that provably fit the accumulator:
    acc = (s << shift) + init_q[i or 0, j] (``init_q`` (1, N) or (M, N));
    vals = acc * step; codes = acc & mask. On the calling thread: a pass this
    light gained nothing from threads on fresh sums (measured: 65,536 x 16
    took 1.04 ms on two threads row by row and 0.35 ms on one; 65,536 x 128
    7.3 ms on one and 8.4 ms in chunks of rows on two)."""
    last = init_q.shape[0] - 1
    for i in range(s.shape[0]):
        r = min(np.int64(i), last)
        for j in range(s.shape[1]):
            acc = _exact_acc(s[i, j], shift, init_q[r, j])
            vals[i, j] = acc * step
            if want_codes:
                codes[i, j] = np.uint64(acc) & mask


@njit(nogil=True, cache=True)
def exact_sums_maps(s, shift, init_q, row0, step, mask, vals, codes, want_codes, stride_img, stride_row, ow):
    """`exact_sums_out` of a convolution's block of images, on the calling thread without the GIL: ``s``
    (C_out, ...) holds the exact sums of B images, the sum of image b, output position (r, q) in column
    b stride_img + r stride_row + q (patches of the outputs alone: stride_img = OH*OW, stride_row = OW;
    sums over zero-padded planes: the planes' sizes, the other columns unread), written to ``vals``
    (B, C_out, OH*OW) (and ``codes``) in the images' NCHW order; the start value of image b, position p is
    init_q[0 or row0 + b OH OW + p, channel] (``init_q`` (1, C_out) or one row per output position of the
    whole batch, from its row ``row0``).

    Values alone from one start per channel, for an accumulator of at most 53 bits (the inference case),
    go in float64: (s 2^shift + start) step makes the same value as the integer code, every term an
    integer below 2^52 (no rounding before the step, which rounds as acc * step does), in a loop that
    vectorises (the integer conversions of the general loop do not: 2.2 ns an output on ResNet-20)."""
    P = vals.shape[2]
    per_row = init_q.shape[0] > 1
    if not per_row and not want_codes and mask < np.uint64(1) << np.uint64(53):
        up = 2.0**shift
        for b in range(vals.shape[0]):
            for c in range(vals.shape[1]):
                start = np.float64(init_q[0, c])
                for r in range(P // ow):
                    src = s[c, b * stride_img + r * stride_row:b * stride_img + r * stride_row + ow]
                    dst = vals[b, c, r * ow:(r + 1) * ow]
                    for q in range(ow):
                        dst[q] = (np.float64(src[q]) * up + start) * step
        return
    for b in range(vals.shape[0]):
        for c in range(vals.shape[1]):
            for r in range(P // ow):
                col = b * stride_img + r * stride_row
                for q in range(ow):
                    p = r * ow + q
                    acc = _exact_acc(s[c, col + q], shift, init_q[row0 + b * P + p if per_row else 0, c])
                    vals[b, c, p] = acc * step
                    if want_codes:
                        codes[b, c, p] = np.uint64(acc) & mask
