"""Exact twin of the multi-term fused datapath (``order="fused(n)"``), in Python integers and Fractions.

One output: the steps of n products in natural K order, each step literally as docs/semantics.md
"Multi-term fused steps" describes it: exact products, the largest alignment exponent E, every term
cut to a multiple of 2^(E - F) (E raised to ``align_min_exp`` when the MAC has one), an exact integer
sum, one rounding into the accumulator format (`quantize_ref`), which is the next step's addend. With
an instruction (`emu.instruction`), its padding, order and late addend written out with Python lists.
Imports nothing that is under test but the reference rounding.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from ..formats import FloatFormat
from ..modes import Rounding
from .rounding import floor_log2
from .scalar import quantize_ref


def align_exp_of(v: Fraction, fmt: FloatFormat) -> int:
    """floor(log2 |v|), at least the format's emin (a subnormal aligns at emin)."""
    return max(floor_log2(abs(v)), fmt.emin)


def cut_term(t: Fraction, floor_cut: bool) -> int:
    """t cut to an integer: floor, or toward zero."""
    q = t.numerator // t.denominator
    if not floor_cut and q < 0 and q != t:
        q += 1
    return q


def fused_step_ref(a: list[float], w: list[float], c: float, mac: Any) -> tuple[float, bool]:
    """One step: c + sum a_k w_k (finite float operands in their formats, c in the accumulator's); returns
    the accumulator value and whether its rounding overflowed."""
    acc = mac.acc
    if not all(math.isfinite(x) for x in (*a, *w, c)):
        s = c + sum(x * y for x, y in zip(a, w, strict=True))  # IEEE specials: inf, or NaN
        r = quantize_ref(s, acc, mac.acc_rounding, mac.acc_overflow)
        return float(r.value), r.overflow
    terms: list[tuple[Fraction, int]] = []
    for x, y in zip(a, w, strict=True):
        p = Fraction(x) * Fraction(y)
        if p != 0:
            terms.append((p, align_exp_of(Fraction(x), mac.act) + align_exp_of(Fraction(y), mac.weight)))
    if c != 0:
        terms.append((Fraction(c), align_exp_of(Fraction(c), acc)))
    if not terms:
        negative = math.copysign(1.0, c) < 0 and all(math.copysign(1.0, x * y) < 0 for x, y in zip(a, w,
                                                                                               strict=True))
        return (-0.0 if negative else 0.0), False
    E = max(e for _, e in terms)
    if mac.align_min_exp is not None:
        E = max(E, mac.align_min_exp)  # the step aligns no lower than 2^align_min_exp
    unit = Fraction(2) ** (E - mac.align_bits)
    floor_cut = mac.align_rounding == Rounding.FLOOR
    total = sum(cut_term(v / unit, floor_cut) for v, _ in terms)
    if total == 0:
        return 0.0, False
    r = quantize_ref(total * unit, acc, mac.acc_rounding, mac.acc_overflow)
    return float(r.value), r.overflow


def steps_ref(a: list[float], w: list[float], c: float, mac: Any, step: Any) -> tuple[float, int]:
    """The accumulator after every step of n = ``mac.order.n`` products of one output in natural K order
    (a, w already in their formats, c in the accumulator's), each ``step(a_part, w_part, c, mac)`` ->
    (next c, overflowed); and the number of steps whose rounding overflowed."""
    n = mac.order.n
    overflows = 0
    for k0 in range(0, len(a), n):
        c, o = step(a[k0:k0 + n], w[k0:k0 + n], c, mac)
        overflows += o
    return c, overflows


def late_add_ref(c: float, s: float, mac: Any) -> tuple[float, bool]:
    """c + s exactly, rounded once into the accumulator (`quantize_ref`): an instruction's addend entering
    last. IEEE 754 sums for inf and NaN; an exact zero sum is -0 when both terms are -0, or, under
    floor, unless both are +0 (the format may hold no -0): an IEEE addition, where the steps' own rule
    (`emu._ref.steps.exact_sum_ref`, docs/semantics.md) gives +0 under floor too."""
    if not (math.isfinite(c) and math.isfinite(s)):
        v: Fraction | float = c + s
    else:
        v = Fraction(c) + Fraction(s)
        if v == 0:
            neg_c, neg_s = math.copysign(1.0, c) < 0, math.copysign(1.0, s) < 0
            down = mac.acc_rounding == Rounding.FLOOR  # toward -inf: -0 unless both are +0
            v = -0.0 if (neg_c and neg_s) or (down and (neg_c or neg_s)) else 0.0
    r = quantize_ref(v, mac.acc, mac.acc_rounding, mac.acc_overflow)
    return float(r.value), r.overflow


def fused_dot_ref(a: list[float], w: list[float], c: float, mac: Any) -> tuple[float, int]:
    """`steps_ref` of `fused_step_ref`; with an ``instruction`` (`emu.instruction`), K padded with 0 x 0
    to a multiple of its k, each instruction's products taken in its order, and an addend that enters
    last added after its steps (`late_add_ref`). Returns the accumulator and the overflow count."""
    ins = mac.instruction
    if ins is None:
        return steps_ref(a, w, c, mac, fused_step_ref)
    pad = -len(a) % ins.k
    a, w = [*a, *[0.0] * pad], [*w, *[0.0] * pad]
    overflows = 0
    for k0 in range(0, len(a), ins.k):
        ap = [a[k0 + i] for i in ins.positions()]
        wp = [w[k0 + i] for i in ins.positions()]
        if ins.addend.name == "FIRST":  # by name: the twin does not import emu.instruction (code under test)
            c, o = steps_ref(ap, wp, c, mac, fused_step_ref)
        else:
            s, o = steps_ref(ap, wp, 0.0, mac, fused_step_ref)
            c, late_o = late_add_ref(c, s, mac)
            o += late_o
        overflows += o
    return c, overflows
