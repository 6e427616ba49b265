"""A vectorised oracle from first principles: the neighbours of a point.

For a small format (16 bits or fewer) the representable values are listed and
sorted; any real x lies between two neighbours lo < hi, and NUMERICS.md
section 3 says which one each deterministic mode picks (ties: the one whose
code's last bit is 0 for nearest_even, except in a float format without
fraction bits (and not P3109), whose significand 3/2 at a tie goes to 2: the
larger magnitude; the larger magnitude for nearest_away;
hi for nearest_up, lo for nearest_down; to_odd: the one whose code's last bit
is 1, tie or not). Beyond the largest value the format
would have a "virtual next" value (the next code with an unbounded exponent);
choosing it is an overflow, resolved by the overflow mode. This module builds
test points (every midpoint, one float64 step either side, one step inside
each neighbour) and the expected value and code for each mode, using only the
format's descriptor, `emu.decode` of its codes and Python integers. It shares
no code with the kernels or with `emu._ref`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import emu
from emu import FixedFormat, FloatFormat, Overflow, Pow2Format, Rounding

DETERMINISTIC = [r for r in Rounding if r != Rounding.STOCHASTIC]
SQRT2 = math.sqrt(2.0)  # rounds above sqrt(2): fl(sqrt2) * 2^k is just above the geometric midpoint


@dataclass
class Grid:
    values: np.ndarray  # sorted finite values (one zero)
    codes: np.ndarray  # their codes (the +0 code for zero)
    neg_zero_code: int | None  # code of -0 when the format has it


def canonical_codes(fmt: emu.Format) -> np.ndarray:
    """Every code that encoding can produce from a number (inf and the positive quiet NaN included; the
    NaN codes of other signs and payloads, which NaN inputs give, are pinned in
    tests/emu/test_nan_codes.py)."""
    c = np.arange(1 << fmt.bits, dtype=np.uint64)
    if isinstance(fmt, FloatFormat) and fmt.has_nan:
        nan_code = int(emu.encode(math.nan, fmt))
        c = c[~np.isnan(emu.decode(c, fmt)) | (c == nan_code)]
    if isinstance(fmt, FloatFormat) and not fmt.subnormals and fmt.man_bits:
        field = (c >> np.uint64(fmt.man_bits)) & np.uint64((1 << fmt.exp_bits) - 1)
        frac = c & np.uint64((1 << fmt.man_bits) - 1)
        c = c[~((field == 0) & (frac != 0))]
    if isinstance(fmt, Pow2Format):
        k = c & np.uint64((1 << fmt.k_bits) - 1)
        s = c >> np.uint64(fmt.k_bits)
        c = c[(k <= fmt.n_exponents) & ~((s == 1) & (k == 0))]
    return c


def grid(fmt: emu.Format) -> Grid:
    c = canonical_codes(fmt)
    v = emu.decode(c, fmt)
    keep = np.isfinite(v) & ~((v == 0) & np.signbit(v))
    order = np.argsort(v[keep], kind="stable")
    nz = c[(v == 0) & np.signbit(v)]
    return Grid(v[keep][order], c[keep][order], int(nz[0]) if nz.size else None)


def _virtual_next(fmt: emu.Format) -> float:
    if isinstance(fmt, FixedFormat):
        return (fmt.qmax + 1) * fmt.eps
    if isinstance(fmt, FloatFormat):
        return math.ldexp(fmt.max_significand + 1, fmt.emax - fmt.man_bits)
    return math.ldexp(1.0, fmt.emax + 1)


def _ne_lo_even(fmt: emu.Format, lo: float, hi: float, lo_even: bool) -> bool:
    """Whether nearest_even's tie between lo and hi goes to lo: the code parity ``lo_even``, but in a float
    format without fraction bits (P3109 aside) the even significand: 0, else the larger magnitude."""
    if isinstance(fmt, FloatFormat) and fmt.man_bits == 0 and not fmt.ties_by_code:
        return lo == 0 or (hi != 0 and abs(lo) > abs(hi))
    return lo_even


def _pick(mode: Rounding, x: float, lo: float, hi: float, lo_even: bool, geometric: bool,
          ne_lo_even: bool) -> str:
    """'lo' or 'hi' for x strictly between lo and hi; ``lo_even``: lo's code is even (to_odd's rule),
    ``ne_lo_even``: nearest_even's tie goes to lo (`_ne_lo_even`)."""
    if mode == Rounding.FLOOR:
        return "lo"
    if mode == Rounding.CEIL:
        return "hi"
    if mode == Rounding.TOWARD_ZERO:
        return "lo" if lo >= 0 else "hi"
    if mode == Rounding.TO_ODD:  # neighbouring codes have opposite parities: the odd one
        return "hi" if lo_even else "lo"
    if geometric:  # pow2 between nonzero neighbours: split at sqrt(lo*hi), never a tie
        away = x * x > lo * hi  # nearer the neighbour of larger magnitude
        return ("hi" if away else "lo") if lo > 0 else ("lo" if away else "hi")
    mid = (lo + hi) / 2
    if x < mid:
        return "lo"
    if x > mid:
        return "hi"
    if mode == Rounding.NEAREST_EVEN:
        return "lo" if ne_lo_even else "hi"
    if mode == Rounding.NEAREST_AWAY:
        return "hi" if abs(hi) > abs(lo) else "lo"
    if mode == Rounding.NEAREST_UP:
        return "hi"
    return "lo"


def _between(lo: float, hi: float, geometric: bool) -> list[float]:
    """Points strictly inside (lo, hi): one step inside each end, the split point and its neighbours."""
    if geometric:
        g = math.copysign(SQRT2 * min(abs(lo), abs(hi)), lo)
        split = [math.nextafter(g, -math.inf), g] if lo > 0 else [g, math.nextafter(g, math.inf)]
    else:
        m = (lo + hi) / 2
        split = [math.nextafter(m, lo), m, math.nextafter(m, hi)]
    return [math.nextafter(lo, hi), *split, math.nextafter(hi, lo)]


def _overflow_result(fmt: emu.Format, mode: Rounding, ovf: Overflow, neg: bool,
                     exact_q: int | None) -> tuple[float, int]:
    """Value and code when a result leaves the range (exact_q: the rounded fixed code)."""
    if isinstance(fmt, FixedFormat):
        if ovf == Overflow.WRAP:
            q = exact_q % (1 << fmt.bits)
            if fmt.signed and q >= 1 << (fmt.bits - 1):
                q -= 1 << fmt.bits
            return q * fmt.eps, q % (1 << fmt.bits)
        q = fmt.qmin if neg else fmt.qmax
        return q * fmt.eps, q % (1 << fmt.bits)
    if isinstance(fmt, Pow2Format):
        if neg and not fmt.signed:
            return 0.0, 0
        v = -fmt.max if neg else fmt.max
        return v, int(emu.encode(v, fmt))
    sign = 1 << (fmt.bits - 1)
    expo = ((1 << fmt.exp_bits) - 1) << fmt.man_bits
    if ovf == Overflow.NAN:  # the quiet NaN, of the value's sign where NaN codes have one (ieee, fn)
        keep_sign = neg and isinstance(fmt, FloatFormat) and fmt.has_negative_zero
        return math.nan, int(emu.encode(math.nan, fmt)) | (sign if keep_sign else 0)
    to_max = ovf != Overflow.INF or mode in (Rounding.TOWARD_ZERO, Rounding.TO_ODD) or (
        mode == Rounding.FLOOR and not neg) or (mode == Rounding.CEIL and neg)
    if to_max:
        v = -fmt.max if neg else fmt.max
        return v, int(emu.encode(v, fmt))
    return (-math.inf if neg else math.inf), expo | (sign if neg else 0)


@dataclass
class Cases:
    x: np.ndarray
    value: np.ndarray
    code: np.ndarray
    overflow: np.ndarray  # bool: this point overflows


def cases(fmt: emu.Format, mode: Rounding, ovf: Overflow) -> Cases:
    """Every test point of a small format with its expected value and code."""
    g = grid(fmt)
    vals, codes = g.values.tolist(), [int(c) for c in g.codes]
    pow2 = isinstance(fmt, Pow2Format)
    xs: list[float] = []
    out_v: list[float] = []
    out_c: list[int] = []
    over: list[bool] = []

    def zero(neg: bool) -> tuple[float, int]:
        if neg and g.neg_zero_code is not None:
            return -0.0, g.neg_zero_code
        return 0.0, 0 if not isinstance(fmt, Pow2Format) else 0

    def add(x: float, v: float, c: int, o: bool = False) -> None:
        xs.append(x)
        out_v.append(v)
        out_c.append(c)
        over.append(o)

    ftz = isinstance(fmt, FloatFormat) and not fmt.subnormals
    # exact points
    for v, c in zip(vals, codes, strict=True):
        add(v, v, c)
    if g.neg_zero_code is not None:
        add(-0.0, -0.0, g.neg_zero_code)
    # between neighbours
    for i in range(len(vals) - 1):
        lo, hi = vals[i], vals[i + 1]
        geometric = pow2 and lo != 0 and hi != 0
        for x in _between(lo, hi, geometric):
            if ftz and abs(x) < fmt.smallest_normal:
                add(x, *zero(x < 0))
                continue
            even = codes[i] % 2 == 0
            which = _pick(mode, x, lo, hi, even, geometric, _ne_lo_even(fmt, lo, hi, even))
            v, c = (lo, codes[i]) if which == "lo" else (hi, codes[i + 1])
            if v == 0:
                v, c = zero(x < 0)
            add(x, v, c)
    # beyond the ends: the virtual next value on each side
    nxt = _virtual_next(fmt)
    ends = [(vals[-1], nxt, False)]
    if vals[0] < 0:
        neg_virtual = (fmt.qmin - 1) * fmt.eps if isinstance(fmt, FixedFormat) else -nxt
        ends.append((vals[0], neg_virtual, True))
    elif isinstance(fmt, (FixedFormat, Pow2Format)):  # unsigned: below 0 lies -eps / -2^emin
        ends.append((0.0, -(fmt.eps if isinstance(fmt, FixedFormat) else fmt.smallest_normal), True))
    for edge, virt, neg in ends:
        edge_code = codes[-1] if not neg else codes[0]
        lo, hi = (virt, edge) if neg else (edge, virt)
        geometric = pow2 and lo != 0 and hi != 0
        # the virtual value's code has the other parity than the edge's
        lo_even = (edge_code % 2 == 0) != neg
        for x in [*_between(lo, hi, geometric), 2 * virt]:
            if x == 2 * virt:
                to_virtual = True  # beyond the virtual value every mode overflows
            else:
                which = _pick(mode, x, lo, hi, lo_even, geometric, _ne_lo_even(fmt, lo, hi, lo_even))
                to_virtual = which == ("lo" if neg else "hi")
            if not to_virtual:
                v, c = (edge, edge_code) if edge != 0 else zero(x < 0)
                add(x, v, c)
                continue
            exact_q = _exact_fixed(x, fmt, mode) if isinstance(fmt, FixedFormat) else None
            add(x, *_overflow_result(fmt, mode, ovf, neg, exact_q), True)
    return Cases(np.array(xs), np.array(out_v), np.array(out_c, dtype=np.uint64), np.array(over))


def _exact_fixed(x: float, fmt: FixedFormat, mode: Rounding) -> int:
    """R(x / eps) with Python integers (for wrap points far outside the range)."""
    from fractions import Fraction

    t = Fraction(x) / Fraction(fmt.eps)
    fl = math.floor(t)
    d = t - fl
    if d == 0:
        return fl
    if mode == Rounding.FLOOR:
        return fl
    if mode == Rounding.CEIL:
        return fl + 1
    if mode == Rounding.TOWARD_ZERO:
        return fl if t > 0 else fl + 1
    if mode == Rounding.TO_ODD:
        return fl if fl % 2 else fl + 1
    half = Fraction(1, 2)
    if d != half:
        return fl + (d > half)
    return {
        Rounding.NEAREST_EVEN: fl + (fl % 2),
        Rounding.NEAREST_AWAY: fl + (t > 0),
        Rounding.NEAREST_UP: fl + 1,
        Rounding.NEAREST_DOWN: fl,
    }[mode]
