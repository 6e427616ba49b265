"""Rounding and overflow vocabularies shared by every part of the project.

This module holds the two enums of NUMERICS.md sections 3 and 4 and the
functions that turn a user's string (``"nearest_even"``) into a member once, at
the API boundary. Everything inside the packages passes enum members; kernels
receive them as plain integers (``IntEnum``). It imports nothing from the
project.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Overflow", "Rounding", "parse_overflow", "parse_rounding"]


class Rounding(IntEnum):
    """How a real value t between two neighbouring codes picks one of them.

    The rules are stated on t (``x / eps`` for fixed point, the significand for
    floats). ``t = 2.5``: nearest_even gives 2, nearest_away 3, nearest_up 3,
    nearest_down 2, floor 2, toward_zero 2, ceil 3, stochastic 3 with
    probability 0.5, to_odd 3 (and t = 3.5: to_odd 3).
    """

    #: nearest integer, ties to the even neighbour (IEEE 754 default)
    NEAREST_EVEN = 0
    #: nearest integer, ties away from zero
    NEAREST_AWAY = 1
    #: nearest integer, ties toward +inf: floor(t + 1/2), "add half, drop bits"
    NEAREST_UP = 2
    #: nearest integer, ties toward -inf (the tie rule of Gupta et al. 2015)
    NEAREST_DOWN = 3
    #: toward -inf: dropping the low bits of a two's complement word
    FLOOR = 4
    #: toward 0: masking the low mantissa bits of a sign-magnitude float
    TOWARD_ZERO = 5
    #: toward +inf
    CEIL = 6
    #: floor(t) + 1 with probability t - floor(t), else floor(t); E[R(t)] = t
    STOCHASTIC = 7
    #: t itself when it is a code, else the neighbour whose code is odd (von Neumann's jamming). A value
    #: rounded to odd with at least two more fraction bits than a narrower format, then to nearest in that
    #: format, is the value rounded to nearest once (Boldo and Melquiond 2008): conversion chains without
    #: double rounding. Beyond a float format's largest finite value it gives that value (as toward_zero).
    #: Fixed, float and power-of-two formats (the odd code K); not binary, ternary or block-scaled elements.
    TO_ODD = 8

    @property
    def is_nearest(self) -> bool:
        """True for the four round-to-nearest modes."""
        return self <= Rounding.NEAREST_DOWN

    def __str__(self) -> str:
        return self.name.lower()


class Overflow(IntEnum):
    """What happens to a rounded result outside a format's finite range."""

    #: clamp to the largest finite value of the result's sign
    SATURATE = 0
    #: keep the low WL bits, two's complement (fixed point only)
    WRAP = 1
    #: raise OverflowError naming how many values overflowed and the first one
    ERROR = 2
    #: IEEE 754: nearest modes give +-inf, directed modes toward zero give max
    INF = 3
    #: NaN (the OCP non-saturating conversion for formats without inf)
    NAN = 4

    def __str__(self) -> str:
        return self.name.lower()


def _parse(enum: type[IntEnum], value: object, param: str, func: str) -> IntEnum:
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum[value.strip().upper()]
        except KeyError:
            pass
    allowed = ", ".join(m.name.lower() for m in enum)
    raise ValueError(f"{func}: {param}={value!r} is not one of {allowed}")


def parse_rounding(value: object, func: str = "emu", param: str = "rounding") -> Rounding:
    """Return the `Rounding` member for a member or its lowercase name.

    Example: ``parse_rounding("floor") is Rounding.FLOOR``.

    Raises:
        ValueError: the name is not a rounding mode; the message lists them.
    """
    return _parse(Rounding, value, param, func)  # type: ignore[return-value]


def parse_overflow(value: object, func: str = "emu", param: str = "overflow") -> Overflow:
    """Return the `Overflow` member for a member or its lowercase name.

    Raises:
        ValueError: the name is not an overflow mode; the message lists them.
    """
    return _parse(Overflow, value, param, func)  # type: ignore[return-value]
