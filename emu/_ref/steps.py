"""Exact twins of the exact step (``order="exact(n)"``, AMD CDNA1) and the pairwise step
(``order="tree(n)"``, AMD CDNA2), in Fractions: every sum exact, every rounding `quantize_ref`. One output
runs its steps of n products in natural K order, each step's result the next step's addend.
Imports nothing under test but the reference rounding.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from ..modes import Rounding
from .fused import steps_ref
from .scalar import quantize_ref


def _into_acc(x: Fraction | float, mac: Any) -> tuple[float, bool]:
    """x rounded into the accumulator."""
    r = quantize_ref(x, mac.acc, mac.acc_rounding, mac.acc_overflow)
    return float(r.value), r.overflow


def _zero_sum(terms: list[float], mac: Any) -> float:
    """The sign of an exact zero sum (IEEE 754): -0 when every term is -0, or, under floor, unless every
    term is +0."""
    neg = [math.copysign(1.0, t) < 0 for t in terms]
    all_pos_zero = not any(neg) and all(t == 0 for t in terms)
    return -0.0 if all(neg) or (mac.acc_rounding == Rounding.FLOOR and not all_pos_zero) else 0.0


def _product(x: float, y: float) -> float:
    """x y exactly (the products of the MAC's formats fit float64), a zero with its IEEE sign."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return x * y
    p = Fraction(x) * Fraction(y)
    return float(p) if p != 0 else x * y


def exact_sum_ref(terms: list[float], mac: Any) -> tuple[float, bool]:
    """The exact sum of float terms rounded once into the accumulator (IEEE sums for non-finite terms)."""
    if not all(math.isfinite(t) for t in terms):
        return _into_acc(sum(terms), mac)
    s = sum((Fraction(t) for t in terms), Fraction(0))
    return _into_acc(s, mac) if s != 0 else _into_acc(_zero_sum(terms, mac), mac)


def exact_dot_ref(a: list[float], w: list[float], c: float, mac: Any) -> tuple[float, int]:
    """``order="exact(n)"``: each step c + n exact products summed exactly and rounded once; returns the
    accumulator and the number of steps whose rounding overflowed."""
    def step(ap: list[float], wp: list[float], acc: float, m: Any) -> tuple[float, bool]:
        return exact_sum_ref([acc, *(_product(x, y) for x, y in zip(ap, wp, strict=True))], m)
    return steps_ref(a, w, c, mac, step)


def tree_dot_ref(a: list[float], w: list[float], c: float, mac: Any) -> tuple[float, int, int]:
    """``order="tree(n)"``: each step rounds its n products into the product format, sums them by a
    balanced binary tree of rounded two-term additions (a short step padded with +0), and adds the tree
    to c with one more rounding. Returns the accumulator and the product and addition overflow counts."""
    n = mac.order.n
    pf = mac.product if mac.product is not None else mac.acc
    pr = mac.product_rounding if mac.product is not None else mac.acc_rounding
    po = mac.product_overflow if mac.product is not None else mac.acc_overflow
    pcount = acount = 0

    def add(x: float, y: float) -> float:
        nonlocal acount
        v, o = exact_sum_ref([x, y], mac)
        acount += o
        return v

    def tree(ps: list[float]) -> float:
        if len(ps) == 1:
            return ps[0]
        return add(tree(ps[:len(ps) // 2]), tree(ps[len(ps) // 2:]))

    for k0 in range(0, len(a), n):
        ps = []
        for x, y in zip(a[k0:k0 + n], w[k0:k0 + n], strict=True):
            p = Fraction(x) * Fraction(y) if math.isfinite(x) and math.isfinite(y) else x * y
            r = quantize_ref(p if p != 0 else x * y, pf, pr, po)  # a zero keeps its IEEE sign
            pcount += r.overflow
            ps.append(float(r.value))
        ps += [0.0] * (n - len(ps))
        c = add(c, tree(ps))
    return c, pcount, acount
