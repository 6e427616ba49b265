"""Exact twin of the late-addend fused step (``order="fused(n)"`` with ``late_addend``: AMD CDNA3), in
Python integers and Fractions, literally as `emu.late_addend` states it: product groups aligned and cut,
joined at the larger exponent, then the two-term alignment of the product sum and the addend, one
rounding into the accumulator (`quantize_ref`). Imports nothing under test but the reference rounding
and `emu._ref.fused`'s alignment exponent.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from ..modes import Rounding
from .fused import align_exp_of, cut_term, steps_ref
from .scalar import quantize_ref


def _group(ps: list[tuple[Fraction, int]], mac: Any) -> tuple[int, Fraction] | None:
    """(E, S): the products' largest exponent (at least ``align_min_exp``) and their sum, each cut to a
    multiple of 2^(E - align_bits); None for a group without a nonzero product."""
    if not ps:
        return None
    E = max(e for _, e in ps)
    if mac.align_min_exp is not None:
        E = max(E, mac.align_min_exp)
    unit = Fraction(2) ** (E - mac.align_bits)
    floor_cut = mac.align_rounding == Rounding.FLOOR
    return E, sum(cut_term(p / unit, floor_cut) for p, _ in ps) * unit


def late_step_ref(a: list[float], w: list[float], c: float, mac: Any) -> tuple[float, bool]:
    """One step: c + sum a_k w_k (finite or not; operands in their formats, c in the accumulator's);
    returns the accumulator value and whether its rounding overflowed."""
    acc, late = mac.acc, mac.late_addend
    limit = Fraction(2) ** (acc.emax + 1) if mac.product_inf else None
    ieee, over = [], False  # the products as IEEE values; a finite one beyond the limit is an infinity
    for x, y in zip(a, w, strict=True):
        p = x * y
        if limit is not None and math.isfinite(p) and abs(Fraction(x) * Fraction(y)) >= limit:
            p, over = math.copysign(math.inf, p), True
        ieee.append(p)
    if over or not all(math.isfinite(x) for x in (*a, *w, c)):
        s = c + sum(ieee)  # IEEE specials: inf, or NaN
        r = quantize_ref(s, acc, mac.acc_rounding, mac.acc_overflow)
        return float(r.value), r.overflow or over
    prods = [Fraction(x) * Fraction(y) for x, y in zip(a, w, strict=True)]
    terms = [(p, align_exp_of(Fraction(x), mac.act) + align_exp_of(Fraction(y), mac.weight))
             for p, x, y in zip(prods, a, w, strict=True)]
    if str(mac.product_groups) == "odd_even":
        groups = [[t for t in terms[g::2] if t[0] != 0] for g in (0, 1)]
    else:
        groups = [[t for t in terms if t[0] != 0]]
    sums = [s for s in (_group(g, mac) for g in groups) if s is not None]
    late_floor = late.rounding == Rounding.FLOOR
    if sums:
        ep = max(e for e, _ in sums)
        unit = Fraction(2) ** (ep - mac.align_bits)
        s_p = sum(cut_term(s / unit, late_floor) for _, s in sums) * unit if len(sums) > 1 else sums[0][1]
    elif c == 0:  # every term is zero: -0 only when the addend and every product are -0
        negative = math.copysign(1.0, c) < 0 and all(math.copysign(1.0, x * y) < 0 for x, y in zip(a, w,
                                                                                               strict=True))
        return (-0.0 if negative else 0.0), False
    ec = align_exp_of(Fraction(c), acc) if c != 0 else late.zero_exp
    E = max(x for x in ((ep if sums else None), ec) if x is not None)
    total = Fraction(0)
    if sums:
        u = Fraction(2) ** (E - late.sum_bits)
        total += cut_term(s_p / u, late_floor) * u
    if c != 0 and not (late.drop_shift is not None and E - ec > late.drop_shift):
        u = Fraction(2) ** (E - late.addend_bits)
        total += cut_term(Fraction(c) / u, late_floor) * u
    if total == 0:
        return 0.0, False
    r = quantize_ref(total, acc, mac.acc_rounding, mac.acc_overflow)
    return float(r.value), r.overflow


def late_dot_ref(a: list[float], w: list[float], c: float, mac: Any) -> tuple[float, int]:
    """`steps_ref` of `late_step_ref`: the accumulator after every step of one output (a, w already in
    their formats, c in the accumulator's) and the number of steps whose rounding overflowed."""
    return steps_ref(a, w, c, mac, late_step_ref)
