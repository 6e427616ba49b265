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
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit, prange

from ._mac_kernels import add_float, add_float_exact_ne, add_float_params
from ._rounding import float_params, fround, fround_ne, fround_ne_add, fround_ne_add_applies, pow2
from .instruction import AddendEntry
from .modes import Rounding

if TYPE_CHECKING:
    from .formats import FloatFormat

#: the alignment exponent of a zero or non-finite operand: no sum of two reaches a real exponent
NO_TERM = -(1 << 30)

#: `run_fused` runs the columns in tiles of this many: a tile of W and its exponents (K x 128 x 12 bytes,
#: 768 KB for K = 512) stays in a core's L2 cache while every row passes over it (512^3 H100 fp16 -> fp32
#: on 2 threads, median of 12 alternating runs: 43.2 ms untiled, 39.5 ms in tiles of 128)
COLUMN_TILE = 128


@njit(cache=True)
def align_exp(x, emin):
    """The alignment exponent of a finite nonzero x: floor(log2 |x|), at least ``emin``."""
    return max(math.frexp(x)[1] - 1, emin)


@njit(parallel=True, cache=True)
def align_exps(x, emin, out):
    """`align_exp` of every element of a 2-D array, `NO_TERM` for zeros and non-finite values."""
    for i in prange(x.shape[0]):
        for k in range(x.shape[1]):
            v = x[i, k]
            out[i, k] = align_exp(v, emin) if v != 0.0 and np.isfinite(v) else NO_TERM


@njit(cache=True)
def cut_term(t, floor_cut):
    """t (an exact float64 in units of u) cut to an integer: floor, or toward zero."""
    return np.floor(t) if floor_cut else np.trunc(t)


@njit(cache=True)
def rare_step(arow, wcol, k0, k1, c, prm, limit=0.0):
    """A step that has nothing to align: a NaN or infinite term makes it the IEEE sum of its terms,
    rounded as any value (inf, or NaN for inf - inf); otherwise every term is zero and the result is
    -0 only when the addend and every product are -0. Returns (value, overflowed). ``limit`` > 0: a
    finite product of that magnitude or more is an infinity of its sign in the sum (`emu.MAC`'s
    ``product_inf``)."""
    s = c
    special = not np.isfinite(c)
    neg_zero = c == 0.0 and math.copysign(1.0, c) < 0.0
    for k in range(k0, k1):
        p = arow[k] * wcol[k]
        if limit > 0.0 and abs(p) >= limit and np.isfinite(p):
            p = math.copysign(np.inf, p)
        s += p
        special |= not np.isfinite(p)
        neg_zero = neg_zero and p == 0.0 and math.copysign(1.0, p) < 0.0
    if special:
        return fround(s, prm)
    return (-0.0 if neg_zero else 0.0), False


#: how `_finish_step` rounds: `fround_ne` for every value (nearest even), for normal results only (the other
#: modes but to odd: `fround_ne` leaves out only their correction of subnormal results), `fround`, or
#: `fround_ne_add` (nearest even into a format it covers)
ROUND_NE, ROUND_NE_NORMALS, ROUND_FULL, ROUND_NE_ADD = 0, 1, 2, 3


def round_kind(mode: Rounding, acc: FloatFormat) -> int:
    """The rounding of `_finish_step` for an accumulator rounding ``mode`` into ``acc``."""
    if mode == Rounding.NEAREST_EVEN:
        return ROUND_NE_ADD if fround_ne_add_applies(acc) else ROUND_NE
    return ROUND_FULL if mode == Rounding.TO_ODD else ROUND_NE_NORMALS


@njit(cache=True)
def _step_value(total, E, F):
    """The cut sum of a step (``total`` units of 2^(E - F)) as a float64 value (exact)."""
    return total * pow2(E - F)


@njit(cache=True, inline="never")
def _finish_step(total, E, finite, c, cnt, F, prm, kind, min_normal):
    """The steps of a row's columns that met a nonzero finite term and no non-finite one: c[j] = the cut
    sum rounded into the accumulator (+0 for a zero sum), overflows counted. Under ROUND_NE_NORMALS a
    result below ``min_normal`` (the accumulator's 2^emin), zero included, is left too. Returns whether
    some column is left (`_fused_row` finishes those). Selects only, and a function of its own: inlined
    into the row loop, the rounding's loop ran 4x slower (measured on the H100 fp16 -> fp32 unit)."""
    left = False
    for j in range(total.size):
        ok = finite[j] & (E[j] >= NO_TERM // 2)
        x = _step_value(total[j], E[j] if ok else F, F)
        if kind == ROUND_FULL:
            v, o = fround(x, prm)
        elif kind == ROUND_NE_ADD:
            v, o = fround_ne_add(x, prm)
        else:
            v, o = fround_ne(x, prm)
        done = ok & ((kind != ROUND_NE_NORMALS) | (np.abs(x) >= min_normal))
        c[j] = (0.0 if total[j] == 0.0 else v) if done else c[j]
        cnt[j] += o & done
        left |= not done
    return left


@njit(cache=True)
def _fused_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor, kind, late_k, aprm,
               late_ne):
    """Row i: every column's steps side by side, so the inner loops run along a row of W. A column whose
    step meets no nonzero finite term, or a non-finite one, takes `rare_step`. Exponents are int32 (EA, EW
    and E: twice the lanes of int64), an addend's from its bits: the accumulator's values are float64
    normals or, below 2^-1022, float64 subnormals whose field gives -1023 < ``ec_min``. ``late_k`` > 0:
    instructions of late_k products (K a multiple of it) whose addend enters last: each starts its steps
    from +0 and adds the accumulator after them (`add_float`, ``aprm``; ``late_ne``: the sum of two
    accumulator values is exact in float64 and rounds to nearest even by one addition, `add_float_exact_ne`,
    a loop that vectorises)."""
    K = A.shape[1]
    N = W.shape[1]
    r = min(np.int64(i), init.shape[0] - 1)
    c = init[r].copy()
    pend = np.zeros(N, np.float64)
    E = np.empty(N, np.int32)
    total = np.empty(N, np.float64)
    inv_u = np.empty(N, np.float64)
    finite = np.empty(N, np.bool_)
    cnt = np.zeros(N, np.int32)
    min_normal = np.uint64(prm.min_normal).view(np.float64)
    for k0 in range(0, K, n):
        k1 = min(K, k0 + n)
        if late_k > 0 and k0 % late_k == 0:  # an instruction starts: its steps run from +0
            for j in range(N):
                pend[j] = c[j]
                c[j] = 0.0
        for j in range(N):
            cj = c[j]
            finite[j] = np.isfinite(cj)
            ec = max(np.int64((np.float64(cj).view(np.uint64) >> 52) & 0x7FF) - 1023, ec_min)
            E[j] = ec if cj != 0.0 and finite[j] else NO_TERM
        k4 = k0 + (k1 - k0) // 4 * 4  # four terms per pass (a max and an exact sum: any order)
        for k in range(k0, k4, 4):
            e0, e1, e2, e3 = EA[i, k], EA[i, k + 1], EA[i, k + 2], EA[i, k + 3]
            w0, w1, w2, w3 = EW[k], EW[k + 1], EW[k + 2], EW[k + 3]
            for j in range(N):  # each sum >= 2 NO_TERM = -2^31: an int32
                E[j] = max(E[j], max(max(np.int32(e0 + w0[j]), np.int32(e1 + w1[j])),
                                     max(np.int32(e2 + w2[j]), np.int32(e3 + w3[j]))))
        for k in range(k4, k1):
            ea = EA[i, k]
            for j in range(N):
                E[j] = max(E[j], np.int32(ea + EW[k, j]))
        for j in range(N):
            live = E[j] >= NO_TERM // 2
            if live:
                E[j] = max(E[j], e_floor)
            inv_u[j] = pow2(F - E[j]) if live else 0.0
            total[j] = cut_term(c[j] * inv_u[j], floor_cut) if live and finite[j] else 0.0
        for k in range(k0, k4, 4):
            a0, a1, a2, a3 = A[i, k], A[i, k + 1], A[i, k + 2], A[i, k + 3]
            w0, w1, w2, w3 = W[k], W[k + 1], W[k + 2], W[k + 3]
            if floor_cut:  # one loop per cut, so that neither tests it
                for j in range(N):
                    iu = inv_u[j]
                    total[j] += ((np.floor(a0 * w0[j] * iu) + np.floor(a1 * w1[j] * iu))
                                 + (np.floor(a2 * w2[j] * iu) + np.floor(a3 * w3[j] * iu)))
            else:
                for j in range(N):
                    iu = inv_u[j]
                    total[j] += ((np.trunc(a0 * w0[j] * iu) + np.trunc(a1 * w1[j] * iu))
                                 + (np.trunc(a2 * w2[j] * iu) + np.trunc(a3 * w3[j] * iu)))
        for k in range(k4, k1):
            a = A[i, k]
            for j in range(N):
                total[j] += cut_term(a * W[k, j] * inv_u[j], floor_cut)
        for j in range(N):  # a non-finite product, or 0 x inf, left total[j] inf or NaN (each cut term of
            finite[j] &= np.isfinite(total[j])  # a finite product is below 2^(F + 3): their sum is finite)
        if _finish_step(total, E, finite, c, cnt, F, prm, kind, min_normal):
            for j in range(N):
                if not (finite[j] and E[j] >= NO_TERM // 2):
                    v, o = rare_step(A[i], W[:, j], k0, k1, c[j], prm)
                elif kind == ROUND_NE_NORMALS and np.abs(_step_value(total[j], E[j], F)) < min_normal:
                    v, o = fround(_step_value(total[j], E[j], F), prm) if total[j] != 0.0 else (0.0, False)
                else:
                    continue
                c[j] = v
                cnt[j] += o
        if late_k > 0 and k1 % late_k == 0 and late_ne:  # the instruction ends: its addend enters
            for j in range(N):
                v, o = add_float_exact_ne(pend[j], c[j], aprm)
                c[j] = v
                cnt[j] += o
        elif late_k > 0 and k1 % late_k == 0:
            for j in range(N):
                v, o = add_float(pend[j], c[j], aprm)
                c[j] = v
                cnt[j] += o
    out[i] = c
    acnt[i] = cnt


@njit(parallel=True, cache=True)
def fused_rows(A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor, kind, late_k, aprm,
               late_ne):
    """out[i, j]: the steps of n products of row i of A and column j of W in natural K order from
    init[i or 0, j]; acnt[i, j] the steps whose rounding overflowed. EA, EW: `align_exps` of A and W;
    ``prm``: `fround` parameters of the accumulator (a `FroundParams`); ``e_floor``: the lowest exponent
    a step aligns to (`NO_TERM`: none); ``kind``: `round_kind` of the accumulator rounding; ``late_k``,
    ``aprm``, ``late_ne``: an instruction's addend entering last (`_fused_row`). Rows run in parallel."""
    for i in prange(A.shape[0]):
        _fused_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor, kind, late_k,
                   aprm, late_ne)


@njit(cache=True)
def fused_rows_serial(A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor, kind, late_k,
                      aprm, late_ne):
    """`fused_rows` without threads."""
    for i in range(A.shape[0]):
        _fused_row(i, A, W, EA, EW, init, out, acnt, n, ec_min, F, floor_cut, prm, e_floor, kind, late_k,
                   aprm, late_ne)


def step_floor(mac: Any) -> int:
    """The ``e_floor`` argument of `fused_rows` for a fused MAC: its ``align_min_exp``, else `NO_TERM`."""
    return NO_TERM if mac.align_min_exp is None else int(mac.align_min_exp)


def aligned_operands(a: np.ndarray, w: np.ndarray, mac: Any) -> tuple[np.ndarray, ...]:
    """(A, W, EA, EW): the operands as C-ordered float64 and their alignment exponents (`align_exps`, int32:
    NO_TERM + NO_TERM is -2^31, still an int32)."""
    A = np.ascontiguousarray(a, np.float64)
    W = np.ascontiguousarray(w, np.float64)
    EA = np.empty(A.shape, np.int32)
    EW = np.empty(W.shape, np.int32)
    align_exps(A, mac.act.emin, EA)
    align_exps(W, mac.weight.emin, EW)
    return A, W, EA, EW


def run_fused(a: np.ndarray, w: np.ndarray, init: np.ndarray, mac: Any) -> tuple[np.ndarray, np.ndarray]:
    """Every field of a fused MAC passed to the kernels: a (M, K) and w (K, N) float64 operands already in
    their formats, init (1, N) or (M, N) start values in the accumulator's. Returns the accumulator values
    (M, N) and the count of steps (and late additions) whose rounding overflowed (M, N); rows run in threads
    for large products. With an ``instruction`` (`emu.instruction`), the operands are padded and reordered
    (`Instruction.arrange`), and an addend that enters last is added after each instruction's steps
    (`_fused_row`'s ``late_k``)."""
    ins = mac.instruction
    late_k = 0
    if ins is not None:
        a, w = ins.arrange(a, w)
        late_k = ins.k if ins.addend is AddendEntry.LAST else 0
    M, K = a.shape
    N = w.shape[1]
    out = np.empty((M, N), np.float64)
    acnt = np.zeros((M, N), np.int32)
    A, W, EA, EW = aligned_operands(a, w, mac)
    init = np.ascontiguousarray(init, np.float64)
    acc, mode, ovf = mac.acc, int(mac.acc_rounding), int(mac.acc_overflow)
    late_ne = (mac.acc_rounding == Rounding.NEAREST_EVEN and fround_ne_add_applies(acc)
               and acc.emax + 2 - (acc.emin - acc.man_bits) <= 53)  # every sum of two values is exact
    fields = (mac.order.n, acc.emin, mac.align_bits, mac.align_rounding == Rounding.FLOOR,
              float_params(acc, mode, ovf), step_floor(mac), round_kind(mac.acc_rounding, acc), late_k,
              add_float_params(acc, mode, ovf), late_ne)
    for j0 in range(0, N, COLUMN_TILE):  # a tile's W and EW stay in the core's L2 cache for every row
        j1 = min(N, j0 + COLUMN_TILE)
        kernel = fused_rows if M > 1 and M * K * (j1 - j0) >= 1 << 18 else fused_rows_serial
        if j1 - j0 == N:
            kernel(A, W, EA, EW, init, out, acnt, *fields)
            break
        o, cnt = np.empty((M, j1 - j0), np.float64), np.zeros((M, j1 - j0), np.int32)
        kernel(A, np.ascontiguousarray(W[:, j0:j1]), EA, np.ascontiguousarray(EW[:, j0:j1]),
               np.ascontiguousarray(init[:, j0:j1]), o, cnt, *fields)
        out[:, j0:j1] = o
        acnt[:, j0:j1] = cnt
    return out, acnt
