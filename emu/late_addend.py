"""The settings of a fused step that adds its addend after the products (AMD CDNA3 matrix cores).

A ``fused(n)`` step of NVIDIA tensor cores aligns the addend c with the n products at once. The CDNA3
units (Khattak, Mikaitis: models/tools/Generic_BFMA_TC.m ``late_partial_sum``; MMA-Sim
``amd_fused_dot_add``) align the products among themselves first and add c in a second, two-term
alignment. `LateAddend` holds that second alignment; `ProductGroups` says whether the products form one
group or two (odd and even positions, the CDNA3 fp8 units' ``odd_even_grouping``). Both are `MAC` fields
(``late_addend=``, ``product_groups=``); docs/datapaths.md draws the bits. Imports `emu.checks` and
`emu.modes` only.

One step with ``LateAddend(addend_bits=Fc, sum_bits=Fs, rounding=R, zero_exp=Z, drop_shift=D)``:

1. the products are aligned and cut as in any fused step (``align_bits`` F, ``align_rounding``): their
   sum S has exponent E_p, the largest product exponent (no product: no E_p);
2. with two groups, each group is aligned and cut on its own (E_0, E_1), then both sums are cut with R
   to F fraction bits below E_p = max(E_0, E_1) and added;
3. c's exponent is E_c = max(floor(log2 |c|), emin of the accumulator), or Z for c = 0 (None: a zero
   addend takes no part); E = max(E_p, E_c);
4. S is cut with R to Fs fraction bits below E, c to Fc fraction bits below E (or dropped, when D is
   set and E - E_c > D); the two are added exactly and rounded once into the accumulator.

>>> late = LateAddend(addend_bits=24, sum_bits=31, zero_exp=-126)
>>> str(late)
'late C (24/31 bits, floor, zero at 2^-126)'
>>> str(ProductGroups.parse("odd_even"))
'odd_even'
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from .checks import check_int
from .modes import Rounding, parse_rounding

__all__ = ["LateAddend", "ProductGroups"]

#: the widest cut of step 4: both terms, in units of 2^(E - max(Fc, Fs)), stay below 2^53 in float64
MAX_LATE_BITS = 38


class ProductGroups(Enum):
    """How a fused step groups its products before they meet the addend: ``all`` (one alignment of every
    product) or ``odd_even`` (positions 0, 2, 4, ... and 1, 3, 5, ... of the step aligned apart, then
    joined by a two-term alignment)."""

    ALL = "all"
    ODD_EVEN = "odd_even"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def parse(cls, value: object) -> ProductGroups:
        """A member from itself or its name."""
        if isinstance(value, ProductGroups):
            return value
        for m in cls:
            if value == m.value:
                return m
        raise ValueError(f"MAC: product_groups={value!r} is not one of all, odd_even")


@dataclass(frozen=True)
class LateAddend:
    """The two-term alignment that adds a fused step's addend after its products (module docstring).

    Args:
        addend_bits: Fc, the fraction bits the addend keeps below the larger exponent E, in [1, 38].
        sum_bits: Fs, the fraction bits the product sum keeps below E, in [1, 38].
        rounding: how both cuts (and the join of two product groups) drop bits: floor (round down,
            the model files' ``armode = 'rd'``) or toward_zero.
        zero_exp: the exponent a zero addend aligns at (the model files' ``c_min_exp_limit``: -126), or
            None: a zero addend takes no part in E.
        drop_shift: None, or D: an addend more than D binades below E contributes 0 (MMA-Sim's fp8 rule,
            D = 25); without it a negative addend far below E still cuts (floor) to -2^(E - Fc).
    """

    addend_bits: int = 24
    sum_bits: int = 31
    rounding: Any = Rounding.FLOOR
    zero_exp: int | None = None
    drop_shift: int | None = None

    def __post_init__(self) -> None:
        for name in ("addend_bits", "sum_bits"):
            object.__setattr__(self, name, check_int(getattr(self, name), "LateAddend", name, 1,
                                                     MAX_LATE_BITS))
        mode = parse_rounding(self.rounding, "LateAddend", "rounding")
        if mode not in (Rounding.FLOOR, Rounding.TOWARD_ZERO):
            raise ValueError(f"LateAddend: rounding={mode} is not allowed; allowed: floor, toward_zero")
        object.__setattr__(self, "rounding", mode)
        if self.zero_exp is not None:
            object.__setattr__(self, "zero_exp", check_int(self.zero_exp, "LateAddend", "zero_exp", -1000,
                                                           1000))
        if self.drop_shift is not None:
            object.__setattr__(self, "drop_shift", check_int(self.drop_shift, "LateAddend", "drop_shift", 0,
                                                             1000))

    def __str__(self) -> str:
        s = f"late C ({self.addend_bits}/{self.sum_bits} bits, {self.rounding}"
        if self.zero_exp is not None:
            s += f", zero at 2^{self.zero_exp}"
        if self.drop_shift is not None:
            s += f", dropped {self.drop_shift} below"
        return s + ")"
