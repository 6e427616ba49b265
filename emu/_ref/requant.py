"""Slow exact references of integer requantization (TFLite's fixed-point multiplier, docs/blockscaled.md).

A real multiplier is stored as ``(M0, shift)`` with ``M0`` a 31-bit integer
significand, and ``MultiplyByQuantizedMultiplier`` applies it to an int32 with
two roundings, stated here as the exact roundings they are (C's bit tricks
spelled out as `emu._ref.rounding` modes):

- SaturatingRoundingDoublingHighMul: ``a * M0 / 2^31`` rounded to nearest, ties
  toward +inf (the only overflow, ``a = M0 = -2^31``, saturates to
  ``2^31 - 1``);
- RoundingDivideByPOT: ``h / 2^right`` rounded to nearest, ties away from zero.

>>> ref_quantize_multiplier(0.75)
(1610612736, 0)
>>> ref_mbqm(5, *ref_quantize_multiplier(0.5)), ref_mbqm(-5, *ref_quantize_multiplier(0.5))  # ties up
(3, -2)

Imports: the standard library and the rounding.
"""

from __future__ import annotations

from fractions import Fraction

from .rounding import floor_log2, pow2, round_fraction

__all__ = ["ref_mbqm", "ref_quantize_multiplier"]


def ref_quantize_multiplier(real: float) -> tuple[int, int]:
    """(M0, shift) with M0 = round(real / 2^shift * 2^31) (nearest, ties up) in [2^30, 2^31); (0, 0) for
    real = 0 and, as TFLite, where the shift would be below -31 (real < 2^-32 - 2^-64 underflows to 0)."""
    q = Fraction(real)
    if q == 0:
        return 0, 0
    e = floor_log2(q) + 1
    m0 = round_fraction(q / pow2(e) * (1 << 31), "nearest_up")
    if m0 == 1 << 31:
        m0, e = 1 << 30, e + 1
    return (0, 0) if e < -31 else (m0, e)


def ref_mbqm(x: int, m0: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier with Python integers: ``x * 2^max(shift, 0)`` (int32 wrap),
    then the two roundings of the module docstring."""
    left, right = max(shift, 0), max(-shift, 0)
    v = (x << left) % (1 << 32)
    v = v - (1 << 32) if v >= 1 << 31 else v
    if v == m0 == -(1 << 31):
        h = (1 << 31) - 1
    else:
        h = round_fraction(Fraction(v * m0, 1 << 31), "nearest_up")
    return round_fraction(Fraction(h, 1 << right), "nearest_away")
