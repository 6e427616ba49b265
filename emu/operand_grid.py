"""How an operand's values map to integer codes and exponent spans: the grid of the codes that carry an
operand into a fixed or exact accumulator (`int_grid`, `max_code`), the fixed format of those codes
(`fixed_view`) and the powers of two between which every nonzero value lies (`exponent_span`). `emu.MAC`
checks its limits with them and the integer datapath forms its codes by them. Imports `emu.formats`.
"""

from __future__ import annotations

import math

from .formats import BinaryFormat, FixedFormat, FloatFormat, Format, Pow2Format, TernaryFormat

__all__ = ["exponent_span", "fixed_view", "int_grid", "max_code"]


def int_grid(f: Format) -> tuple[int, int]:
    """(FL, WL) of the integer codes that carry an operand into a fixed or exact accumulator: the value
    is code * 2^-FL with a signed code of WL bits.

    >>> int_grid(FixedFormat(4, 12)), int_grid(FloatFormat(4, 3))  # fp<4,3>: 2^-9 .. 240, codes of 18 bits
    ((12, 16), (9, 18))
    """
    if isinstance(f, FixedFormat):
        return f.frac_bits, f.bits
    if isinstance(f, Pow2Format):
        return -f.emin, f.emax - f.emin + 2
    if isinstance(f, FloatFormat):
        return f.man_bits - f.emin, f.emax + 2 + f.man_bits - f.emin
    return 0, 2  # binary, ternary


def max_code(f: Format) -> int:
    """Largest |code| of an operand in the integer path (`int_grid`): 1 for binary and ternary operands.

    >>> max_code(FixedFormat(4, 4)), max_code(FloatFormat(4, 3))  # |-8| * 2^4; 240 * 2^9
    (128, 122880)
    """
    binary = isinstance(f, (BinaryFormat, TernaryFormat))
    return 1 if binary else int(math.ldexp(max(f.max, -f.min), int_grid(f)[0]))


def exponent_span(f: Format) -> tuple[int, int]:
    """(lo, hi): every nonzero value of an operand is a multiple of 2^lo below 2^hi in magnitude, so every
    product of two operands is a multiple of 2^(lo_a + lo_w) below 2^(hi_a + hi_w).

    >>> exponent_span(FloatFormat(8, 23)), exponent_span(FixedFormat(4, 12))  # fp32: 2^-149 .. below 2^128
    ((-149, 128), (-12, 4))
    """
    if isinstance(f, FloatFormat):
        return f.emin - f.man_bits, f.emax + 1
    if isinstance(f, Pow2Format):
        return f.emin, f.emax + 1
    if isinstance(f, FixedFormat):
        return -f.frac_bits, f.int_bits
    return 0, 1  # binary, ternary


def fixed_view(f: Format) -> FixedFormat | None:
    """The fixed format of an operand's integer codes (None for floats).

    >>> str(fixed_view(Pow2Format(-8, 0))), fixed_view(FloatFormat(4, 3)) is None  # +-2^e = code * 2^-8
    ('fx<2,8>', True)
    """
    if isinstance(f, FixedFormat):
        return f
    if isinstance(f, Pow2Format):
        # value +-2^e = code * 2^emin with code = 2^(e - emin): signed fixed <n+1, -emin>
        return FixedFormat(f.emax + 2 if f.signed else f.emax + 1, -f.emin, signed=f.signed)
    if isinstance(f, (BinaryFormat, TernaryFormat)):
        return FixedFormat(2, 0)
    return None
