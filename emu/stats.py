"""Overflow accounting returned by conversions (NUMERICS.md section 4: never silent)."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["QuantStats"]


class QuantStats(NamedTuple):
    """What one conversion did to its inputs (an immutable named tuple: a
    conversion makes one, and a training step makes thousands).

    Attributes:
        size: number of values converted.
        overflow: results that left the finite range (clamped, wrapped, sent to
            inf or NaN) and +-inf inputs that did not stay infinite.
        underflow: nonzero finite inputs that became zero.
        nan: NaN inputs.

    >>> QuantStats(size=4, overflow=1, underflow=0, nan=0).overflow_rate
    0.25
    """

    size: int
    overflow: int
    underflow: int
    nan: int

    @property
    def overflow_rate(self) -> float:
        """overflow / size (0 for an empty conversion)."""
        return self.overflow / self.size if self.size else 0.0

    @property
    def underflow_rate(self) -> float:
        """underflow / size (0 for an empty conversion)."""
        return self.underflow / self.size if self.size else 0.0

    def __add__(self, other: QuantStats) -> QuantStats:  # type: ignore[override]
        """The counts of both conversions (not tuple concatenation)."""
        return QuantStats(
            self.size + other.size,
            self.overflow + other.overflow,
            self.underflow + other.underflow,
            self.nan + other.nan,
        )
