"""Slow exact references of the binary and ternary formats (NUMERICS.md section 8).

One value at a time, as docs/semantics.md ("Binary and ternary") states the
rules. Float64 arithmetic appears only where the contract itself defines a
quantity in float64: the stochastic probabilities, the threshold products and
comparisons. Data scales are exact means (``Fraction``) rounded once to float64
by `emu._ref.rounding.round_float`.

>>> from emu.formats import TernaryFormat
>>> binary_ref(-0.0, stochastic=False), binary_ref(-0.5, stochastic=False)
(1, -1)
>>> data_scale_ref([0.5, -1.0, 0.25, 0.0], TernaryFormat("twn"))
TernaryScale(delta=0.30624999999999997, pos=0.75, neg=0.75)
>>> ternary_ref(-0.4, TernaryFormat("twn"), TernaryScale(0.30625, 0.75, 0.75))
-0.75

Imports: the standard library, ``emu.formats``, the rounding and the stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ..formats import BinaryFormat, FloatFormat, TernaryFormat
from .rounding import round_float
from .stream import uniform53

__all__ = ["TernaryScale", "binary_ref", "data_scale_ref", "ternary_ref"]

_FP64 = FloatFormat(11, 52)


def _check_not_nan(x: float, func: str) -> float:
    if isinstance(x, bool):
        raise TypeError(f"{func}: x={x!r}: bool is not a number here")
    x = float(x)
    if math.isnan(x):
        raise ValueError(f"{func}: NaN has no binary or ternary value")
    return x


def binary_ref(x: float, stochastic: bool, key: int = 0, index: int = 0) -> int:
    """Binarise one value: +1 or -1 (NUMERICS.md section 8, docs/semantics.md).

    Deterministic: +1 if ``x >= 0`` (so -0.0 gives +1) else -1. Stochastic
    (BinaryConnect), in float64 as the contract defines it: ``p = min(max((x +
    1.0) * 0.5, 0.0), 1.0)``, ``u = (w0 >> 11) * 2^-53``; +1 iff ``u < p``.

    Args:
        x: the value (a float64).
        stochastic: BinaryConnect's stochastic rule instead of the sign.
        key: 64-bit key of the random stream.
        index: element index in the random stream.

    Returns:
        +1 or -1 (multiply by the scale for a scaled format).

    Raises:
        ValueError: x is NaN.
    """
    x = _check_not_nan(x, "binary_ref")
    if not stochastic:
        return 1 if x >= 0 else -1
    p = min(max((x + 1.0) * 0.5, 0.0), 1.0)
    return 1 if uniform53(key, index) < p else -1


@dataclass(frozen=True)
class TernaryScale:
    """Threshold and scales of a ternary format for one tensor (or channel).

    Attributes:
        delta: the threshold; |x| must exceed it to become nonzero.
        pos: the value of a +1 code (alpha for TWN, Wp for TTQ, 1.0 unscaled).
        neg: the magnitude of a -1 code (alpha for TWN, Wn for TTQ, 1.0 unscaled).
    """

    delta: float
    pos: float
    neg: float


def _mean(values: list[float]) -> float:
    """Exact mean of float64 values, rounded once to nearest float64 (0.0 if empty).

    An infinite element makes the mean that infinity (all callers pass values of
    one sign).
    """
    if not values:
        return 0.0
    infs = [v for v in values if math.isinf(v)]
    if infs:
        return infs[0]
    total = sum((Fraction(v) for v in values), Fraction(0))
    return float(round_float(total / len(values), _FP64))  # nearest even; exact in float64


def data_scale_ref(xs: list[float], fmt: BinaryFormat | TernaryFormat) -> float | TernaryScale | None:
    """The data-dependent scale of one tensor (or one channel's slice).

    Every mean is computed exactly with ``Fraction`` and rounded once to the
    nearest float64 (ties to even); products with the threshold are one float64
    multiplication; comparisons are exact float64 comparisons.

    - ``BinaryFormat`` (BWN / XNOR-Net): alpha = mean |x|; None when the format
      is unscaled.
    - ``TernaryFormat("twn")``: ``delta = threshold * mean|x|`` (float64
      product), ``alpha`` = mean |x| over ``|x| > delta`` (0.0 when no element
      is above delta); ``TernaryScale(delta, alpha, alpha)``, or
      ``TernaryScale(delta, 1.0, 1.0)`` when ``scale=None``.
    - ``TernaryFormat("ttq")``: ``delta = threshold * max|x|``; ``Wp`` = mean of
      x over ``x > delta``, ``Wn`` = mean of |x| over ``x < -delta`` (0.0 when
      empty); ``TernaryScale(delta, Wp, Wn)``. (A caller-given ``scale=(wp,
      wn)`` replaces Wp and Wn but not delta.)
    - ``TernaryFormat("stochastic")``: None (no scale).

    Args:
        xs: the values of the tensor (or of one index of axis 0 for
            ``scale="channel"``), float64.
        fmt: a BinaryFormat or TernaryFormat.

    Returns:
        A float, a :class:`TernaryScale`, or None.

    Raises:
        ValueError: an element is NaN.
    """
    xs = [_check_not_nan(v, "data_scale_ref") for v in xs]
    absx = [abs(v) for v in xs]
    if isinstance(fmt, BinaryFormat):
        return _mean(absx) if fmt.scale is not None else None
    if not isinstance(fmt, TernaryFormat):
        raise TypeError(f"data_scale_ref: fmt={fmt!r} must be a BinaryFormat or TernaryFormat")
    if fmt.method == "stochastic":
        return None
    threshold = float(fmt.threshold)  # type: ignore[arg-type]
    if fmt.method == "twn":
        delta = threshold * _mean(absx)
        if fmt.scale is None:
            return TernaryScale(delta, 1.0, 1.0)
        alpha = _mean([a for a in absx if a > delta])
        return TernaryScale(delta, alpha, alpha)
    delta = threshold * (max(absx) if absx else 0.0)
    wp = _mean([v for v in xs if v > delta])
    wn = _mean([-v for v in xs if v < -delta])
    return TernaryScale(delta, wp, wn)


def ternary_ref(
    x: float, fmt: TernaryFormat, scale: TernaryScale | None, *, key: int = 0, index: int = 0
) -> float:
    """Ternarise one value given its tensor's (or channel's) threshold and scales.

    - twn / ttq: ``+scale.pos`` if ``x > scale.delta``, ``-scale.neg`` if
      ``x < -scale.delta``, else 0.0 (comparisons in float64).
    - stochastic (ternary connect): ``c = min(max(x, -1.0), 1.0)``, ``u = (w0 >>
      11) * 2^-53``; ``sign(c)`` iff ``u < |c|``, else 0.0. ``scale`` is
      ignored.

    Args:
        x: the value (float64).
        fmt: a TernaryFormat.
        scale: from :func:`data_scale_ref` (or built by the caller); unused for
            the stochastic method.
        key: 64-bit key of the random stream (stochastic only).
        index: element index in the random stream (stochastic only).

    Returns:
        The value, a float64: one of ``-neg``, ``0.0``, ``+pos`` (or -1.0, 0.0,
        1.0 for the stochastic method).

    Raises:
        ValueError: x is NaN; ``scale`` missing for twn / ttq.
    """
    x = _check_not_nan(x, "ternary_ref")
    if fmt.method == "stochastic":
        c = min(max(x, -1.0), 1.0)
        if uniform53(key, index) < abs(c):
            return 1.0 if c > 0 else -1.0
        return 0.0
    if scale is None:
        raise ValueError(f"ternary_ref: {fmt} needs a TernaryScale (see data_scale_ref)")
    if x > scale.delta:
        return float(scale.pos)
    if x < -scale.delta:
        return -float(scale.neg)
    return 0.0
