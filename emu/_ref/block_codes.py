"""Element and scale codes of the block-scaled references: decoded from their fields, exactly.

Shared by the block references (`emu._ref.block`): the fp32 / bf16 bit
patterns, E8M0 and E4M3 scales, element codes of float and fixed element
formats (decoded from their fields, never by code under test), and the
conversion of an exact rational to a float format's value with its overflow
rule (the rounding itself is `emu._ref.rounding.round_float`).

>>> elem_value(0b0111, FloatFormat(2, 1, special="none")), elem_value(0x7E, FloatFormat(4, 3, special="fn"))
(6.0, 448.0)
>>> e2m1 = FloatFormat(2, 1, special="none")
>>> float_value(Fraction(1, 3), e2m1), float_value(Fraction(-7), e2m1, "nearest_even", "saturate")
((0.5, False), (-6.0, True))

Imports: the standard library, ``emu.formats`` and the rounding.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from typing import Any

from ..formats import FixedFormat, FloatFormat, Format
from .rounding import pow2, round_float, round_fraction

__all__ = [
    "BF16",
    "E4M3",
    "FP32",
    "FP64",
    "code_table",
    "e8m0",
    "elem_code",
    "elem_value",
    "float_value",
    "fp32",
    "fp32_bits",
    "fp32_from_bits",
    "int_scale_value",
    "is_neg",
    "kind_of",
    "mode_name",
    "to_elem_code",
    "values",
]

FP32 = FloatFormat(8, 23)
BF16 = FloatFormat(8, 7)
FP64 = FloatFormat(11, 52)
E4M3 = FloatFormat(4, 3, special="fn")


def mode_name(mode: Any) -> str:
    """A rounding or overflow mode (an enum member or its name) as its lowercase name."""
    return str(getattr(mode, "name", mode)).lower()


def kind_of(fmt: Any) -> str:
    """The kind (``mx``, ``nvfp4``, ``int``) of a block format object."""
    if isinstance(fmt, str) or not hasattr(fmt, "kind"):
        raise TypeError(f"_ref.block: fmt={fmt!r} must be a block format object (emu.block_format(name))")
    return str(fmt.kind)


def float_value(x: Fraction, fmt: FloatFormat, mode: Any = "nearest_even",
                overflow: Any = "saturate", *, key: int = 0, index: int = 0,
                random_bits: int | None = None) -> tuple[float, bool]:
    """x rounded to the float format, with its overflow rule: (value as float, overflowed?). x = 0 gives +0.

    Stochastic rounding draws the words of element ``index`` of the stream under ``key``
    (`emu._ref.rounding.round_float`), with ``random_bits`` as there.

    Beyond the largest finite value: ``saturate`` gives +-max, ``nan`` NaN, ``inf`` +-inf for the nearest
    modes, floor of a negative and ceil of a positive value, +-max otherwise. Without subnormals (``ftz``)
    an x below the smallest normal in magnitude is a zero before any rounding. A zero result keeps x's
    sign where the format has a negative zero.
    """
    mode, overflow = mode_name(mode), mode_name(overflow)
    if x == 0:
        return 0.0, False
    neg = x < 0
    if fmt.zero and not fmt.subnormals and abs(x) < pow2(fmt.emin):
        v = Fraction(0)
    else:
        v = round_float(x, fmt, mode, key=key, index=index, random_bits=random_bits)
    if abs(v) > Fraction(fmt.max):
        if overflow == "saturate":
            return (-fmt.max if neg else fmt.max), True
        if overflow == "nan":
            return math.nan, True
        to_inf = mode.startswith("nearest") or (mode == "floor" and neg) or (mode == "ceil" and not neg)
        r = math.inf if to_inf else fmt.max
        return (-r if neg else r), True
    if v == 0:
        return (-0.0 if neg and fmt.has_negative_zero else 0.0), False
    return float(v), False


def fp32(x: Fraction) -> Fraction:
    """x rounded to fp32 (nearest even), exactly: one IEEE single-precision operation.

    Raises:
        OverflowError: the result overflows fp32.
    """
    v, _ = float_value(x, FP32, overflow="inf")
    if math.isinf(v):
        raise OverflowError("fp32 overflow")
    return Fraction(v)


def fp32_bits(v: Fraction) -> int:
    """The fp32 bit pattern of v (an fp32 value)."""
    return int.from_bytes(struct.pack(">f", float(v)), "big")


def fp32_from_bits(b: int) -> Fraction:
    """The exact value of an fp32 bit pattern."""
    return Fraction(struct.unpack(">f", int(b).to_bytes(4, "big"))[0])


def elem_value(code: int, el: Format) -> float:
    """The value of one code of a float or fixed element format, decoded from its fields (NaN as nan)."""
    code = int(code)
    if isinstance(el, FixedFormat):
        q = code - (1 << el.bits) if el.signed and code >= 1 << (el.bits - 1) else code
        return float(Fraction(q) * pow2(-el.frac_bits))
    assert isinstance(el, FloatFormat)
    E, M = el.exp_bits, el.man_bits
    s = code >> (E + M)
    e = (code >> M) & ((1 << E) - 1)
    f = code & ((1 << M) - 1)
    top = (1 << E) - 1
    if el.special == "ieee" and e == top:
        return math.nan if f else (-math.inf if s else math.inf)
    if el.special == "fn" and e == top and f == (1 << M) - 1:
        return math.nan
    if el.special == "fnuz" and s == 1 and e == 0 and f == 0:
        return math.nan
    if e == 0:
        mag = Fraction(f) * pow2(el.emin - M) if el.subnormals else Fraction(0)
    else:
        mag = Fraction((1 << M) + f) * pow2(e - el.bias - M)
    if mag == 0:
        return -0.0 if s and el.has_negative_zero else 0.0
    return float(-mag if s else mag)


def values(el: Format) -> list[float]:
    """The value of every code of an element format, by code."""
    return [elem_value(c, el) for c in range(1 << el.bits)]


def code_table(el: Format) -> dict[tuple[float, bool], int]:
    """(value, sign bit) -> the canonical code, for every non-NaN code of an element format."""
    table: dict[tuple[float, bool], int] = {}
    for c, v in enumerate(values(el)):
        if math.isnan(v):
            continue
        if isinstance(el, FixedFormat) and c == (1 << (el.bits - 1)):
            continue  # the asymmetric two's complement minimum is never produced
        table.setdefault((v, math.copysign(1.0, v) < 0), c)
    return table


def elem_code(v: float, neg_in: bool, el: Format, table: dict) -> int:
    """The code of an element value; a zero takes the input's sign where the format has -0."""
    if v == 0.0:
        neg = neg_in and isinstance(el, FloatFormat) and el.has_negative_zero
        return table[(-0.0 if neg else 0.0, neg)]
    return table[(v, v < 0)]


def is_neg(v: float) -> bool:
    """Whether v has its sign bit set (-0.0 included)."""
    return v < 0 or (v == 0 and math.copysign(1.0, v) < 0)


def to_elem_code(q: Fraction, neg_in: bool, el: Format, table: dict, mode: Any = "nearest_even", *,
                 key: int = 0, index: int = 0, random_bits: int | None = None) -> tuple[int, bool]:
    """Code of q rounded to the element format (saturating), and whether it saturated.

    Float elements round with `float_value` (stochastic rounding on the magnitude), fixed elements
    round q / 2^-frac_bits as a signed quantity (`round_fraction`) and clamp to +-qmax; ``key``,
    ``index`` and ``random_bits`` feed stochastic rounding.
    """
    if isinstance(el, FloatFormat):
        v, sat = float_value(q, el, mode, "saturate", key=key, index=index, random_bits=random_bits)
    else:
        k = round_fraction(q / pow2(-el.frac_bits), mode, key=key, index=index, random_bits=random_bits)
        sat = abs(k) > el.qmax
        k = max(-el.qmax, min(el.qmax, k))
        v = float(Fraction(k) * pow2(-el.frac_bits))
    return elem_code(v, neg_in, el, table), sat


def int_scale_value(code: int, shift: int, kind: str) -> Fraction:
    """The exact value of one stored integer-format scale."""
    if kind == "fp32":
        return fp32_from_bits(code)
    if kind == "bf16":
        return fp32_from_bits(code << 16)
    if kind == "pow2":
        return pow2(code - 127)
    return Fraction(code) * pow2(shift - 31)


def e8m0(code: int) -> Fraction | None:
    """The value of an E8M0 scale code (None: the NaN code 255)."""
    return None if code == 255 else pow2(code - 127)
