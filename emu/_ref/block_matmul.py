"""Slow exact reference of the block-scaled multiply-accumulate (docs/blockscaled.md), output by output.

Both operands are encoded with `emu._ref.block_encode.ref_block_encode`; each
block's dot product of element values is exact, multiplied by the two block
scales and added to the accumulator: exactly (``acc=None``), rounded once per
addition to a float accumulator, or floored onto a fixed accumulator's grid
and saturated or wrapped. NVFP4's tensor scales multiply the final sum. Every
rounding is a call of `emu._ref.rounding` (through
`emu._ref.block_codes.float_value` for float formats).

Imports: the standard library, numpy, ``emu.formats``, ``emu.registry``
(accumulator names) and the other references.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from ..formats import FixedFormat, FloatFormat
from ..registry import get_format
from .block_codes import E4M3, FP64, e8m0, float_value, fp32_from_bits, kind_of, mode_name, values
from .block_encode import int_scale_values, ref_block_encode
from .rounding import pow2, round_fraction

__all__ = ["ref_block_matmul"]


def _frac_values(f: Any, x: np.ndarray, role: str) -> tuple[list[list[Any]], list[list[Any]], Fraction, int]:
    """(element values [row][k], scale values [row][block] (None: NaN), global scale, block size), exact."""
    kind = kind_of(f)
    kax = 1 if role == "a" else 0
    if kind == "int":
        gran = str(f.granularity)
        chan = 0 if role == "a" else 1
        sc, codes = ref_block_encode(x, f, chan if gran == "channel" else kax)
        c = np.asarray(codes, np.int64)
        q = np.where(c >= (1 << (f.bits - 1)), c - (1 << f.bits), c)
        sv, zp = int_scale_values(sc, f)
        K = x.shape[kax]
        if role == "b":
            q = q.T
        vals, scl = [], []
        for r in range(q.shape[0]):
            if gran == "tensor":
                vals.append([Fraction(int(v) - int(zp)) for v in q[r]])
                scl.append([sv[()]])
            elif gran == "channel":
                vals.append([Fraction(int(v) - int(zp[r])) for v in q[r]])
                scl.append([sv[r]])
            else:
                zr = zp[r] if role == "a" else zp[:, r]
                sr = sv[r] if role == "a" else sv[:, r]
                G = f.group_size
                vals.append([Fraction(int(q[r, k]) - int(zr[k // G])) for k in range(K)])
                scl.append(list(sr))
        B = f.group_size if gran == "group" else K
        return vals, scl, Fraction(1), B
    sc, codes = ref_block_encode(x, f, kax)
    table = values(f.element)
    c = np.asarray(codes, np.int64)
    if kind == "mx":
        s = np.asarray(sc, np.int64)
        g = Fraction(1)
    else:
        s = np.asarray(sc.block, np.int64)
        g = fp32_from_bits(int(np.asarray(sc.tensor)))
        e4 = values(E4M3)
    if role == "b":
        c, s = c.T, s.T
    vals = [[Fraction(table[v]) for v in row] for row in c]
    if kind == "mx":
        scl = [[e8m0(int(v)) for v in row] for row in s]
    else:
        scl = [[None if math.isnan(e4[v]) else Fraction(e4[v]) for v in row] for row in s]
    return vals, scl, g, f.block_size


def ref_block_matmul(a: Any, b: Any, fmt_a: Any, fmt_b: Any, acc: Any = "fp32",
                     acc_rounding: Any = "nearest_even", acc_overflow: Any = None,
                     return_stats: bool = False) -> Any:
    """The block MAC of docs/blockscaled.md, exactly, output by output.

    With ``return_stats`` also the number of accumulator overflow events (float: a rounding beyond the
    format's range; fixed: a sum outside the word before it saturates or wraps).
    """
    mode = mode_name(acc_rounding)
    ovf = None if acc_overflow is None else mode_name(acc_overflow)
    A = np.asarray(a, np.float64)
    Bm = np.asarray(b, np.float64)
    M, K = A.shape
    N = Bm.shape[1]
    va, sa, ga, Ba = _frac_values(fmt_a, A, "a")
    vb, sb, gb, Bb = _frac_values(fmt_b, Bm, "b")
    nbk = max(len(sa[0]) if sa else 1, len(sb[0]) if sb else 1)
    Bk = Ba if len(sa[0]) == nbk and nbk > 1 else (Bb if nbk > 1 else max(K, 1))
    nv = kind_of(fmt_a) == "nvfp4"
    fa = None if acc is None or acc == "exact" else (get_format(acc) if isinstance(acc, str) else acc)
    out = np.zeros((M, N))
    events = [0]
    for i in range(M):
        for j in range(N):
            accv: Any = Fraction(0)
            accf = 0.0
            nan = False
            for kb in range(nbk):
                s1 = sa[i][kb if len(sa[i]) > 1 else 0]
                s2 = sb[j][kb if len(sb[j]) > 1 else 0]
                if s1 is None or s2 is None:
                    nan = True
                    continue
                P = sum((va[i][k] * vb[j][k] for k in range(kb * Bk, min((kb + 1) * Bk, K))), Fraction(0))
                term = P * s1 * s2
                if fa is None:
                    accv += term * (ga * gb if nv else 1)
                elif isinstance(fa, FloatFormat):
                    accf = _float_add(accf, term, fa, mode, ovf, events)
                else:
                    accv = _fixed_add(accv, term, fa, ovf or "saturate", events)
            if nan or (fa is not None and isinstance(fa, FloatFormat) and math.isnan(accf)):
                out[i, j] = math.nan
            elif fa is None:
                out[i, j] = float_value(accv, FP64)[0]
            elif isinstance(fa, FloatFormat):
                if nv and math.isfinite(accf):
                    accf = _float_add(0.0, Fraction(accf) * ga * gb, fa, mode, ovf, events)
                elif nv:
                    accf = accf * float(ga * gb)
                out[i, j] = accf
            else:
                out[i, j] = float_value(accv * pow2(-fa.frac_bits), FP64)[0]
    return (out, events[0]) if return_stats else out


def _float_add(accf: float, term: Fraction, fa: FloatFormat, mode: str, overflow: str | None,
               events: list[int]) -> float:
    ovf = overflow or ("inf" if fa.has_inf else "saturate")
    if math.isnan(accf):
        return accf
    if math.isinf(accf):
        if ovf == "saturate":
            return -fa.max if accf < 0 else fa.max
        return accf
    s = Fraction(accf) + term
    if s == 0:
        both_pos = accf == 0 and math.copysign(1.0, accf) > 0 and term == 0
        return -0.0 if (mode == "floor" and not both_pos and fa.has_negative_zero) else 0.0
    v, o = float_value(s, fa, mode, ovf)
    events[0] += o
    return v


def _fixed_add(A: Fraction, term: Fraction, fa: FixedFormat, ovf: str, events: list[int]) -> Fraction:
    """A is the integer code (as Fraction); term floored onto the grid, then wrap/saturate."""
    S = int(A) + round_fraction(term * pow2(fa.frac_bits), "floor")
    if fa.qmin <= S <= fa.qmax:
        return Fraction(S)
    events[0] += 1
    if ovf == "saturate":
        return Fraction(fa.qmax if S > fa.qmax else fa.qmin)
    w = S % (1 << fa.bits)
    return Fraction(w - (1 << fa.bits) if w > fa.qmax else w)


