"""Operands that arrive already encoded: the codes of one format, which a datapath takes as they are.

A user who holds integer or float codes (the int8 tensors of a quantised
model, the e4m3 bytes of an accelerator's memory, a previous layer's output
codes) passes them to `matmul`, `dot` or `conv2d` as an `Encoded` operand
instead of real values. The format travels with the codes, so the datapath
checks it: an `Encoded` act must be in the MAC's ``act`` format and an
`Encoded` weight in its ``weight`` format, else the call raises ValueError
naming the operand and both formats. No conversion then changes the
operand's finite values: they are already on the format's grid and in its
range, so nothing is rounded and no input overflow is counted for them,
under every rounding mode; the stochastic input rounding made once before a
product (docs/semantics.md) is skipped for it. An infinity code (e5m2,
binary16 and the other IEEE-like formats have them) is not finite: it meets
``input_overflow`` as a decoded infinity would, saturated to the format's
largest finite value of its sign and counted as an input overflow, or
OverflowError under ``"error"``. A NaN code stays NaN and is not counted.
The products, the accumulator, the other roles' random streams (each role
draws from a key of its own) and every count are those of the same call on
the decoded values; a user who encoded
the operands counted their conversion's overflows then (`emu.encode` with
``return_stats``).

Worked example: fx<4,4> codes 0x18 and 0xF0 are 1.5 and -1.0 (two's
complement 0xF0 = -16, times 2^-4); through an fx<4,4> x fx<4,4> -> fx<8,8>
MAC with weights [2, 3] the dot product is 1.5 * 2 - 1 * 3 = 0.

Fixed, float and power-of-two formats are taken. Block formats carry scales
besides their codes (`emu.block_encode` returns both), and scaled binary and
ternary formats a data scale, so both are refused at construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checks import inexact_int
from .convert import decode_codes, encode
from .formats import FixedFormat, FloatFormat, Format, Pow2Format
from .inputs import flat_index
from .registry import get_format

__all__ = ["Encoded", "plain_operand"]


@dataclass(frozen=True, eq=False)
class Encoded:
    """Codes (bit patterns, as `emu.encode` returns them) of one format, and their float64 values.

    Both arrays are read-only copies made at construction; a code outside
    [0, 2^bits) or unused by the format raises ValueError there, and so does a
    code of a fixed format wider than 53 bits whose integer float64 cannot
    hold exactly (beyond 2^53 and off float64's grid); codes that are not
    integers raise TypeError.

    >>> e = Encoded(np.array([0x18, 0xF0]), "fx<4,4>")
    >>> e, e.values.tolist()
    (Encoded(fx<4,4>, shape (2,)), [1.5, -1.0])
    >>> Encoded.of([0.3, 500.0], "e4m3").values.tolist()  # rounded and saturated as `emu.encode` does
    [0.3125, 448.0]
    """

    codes: np.ndarray
    fmt: Format
    values: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fmt = get_format(self.fmt) if isinstance(self.fmt, str) else self.fmt
        if not isinstance(fmt, (FixedFormat, FloatFormat, Pow2Format)):
            raise ValueError(f"Encoded: fmt={fmt} must be a fixed, float or power-of-two format (block"
                             " formats carry scales: use emu.block_encode; scaled binary and ternary"
                             " formats a data scale)")
        codes = np.array(self.codes, copy=True)
        values = decode_codes(codes, fmt, None, "Encoded")  # refuses non-integer, out-of-range, unused codes
        if isinstance(fmt, FixedFormat) and fmt.bits > 53:  # the datapaths read the float64 values
            q = codes.astype(np.int64).reshape(-1)
            if fmt.signed:
                q = np.where(q >= 1 << (fmt.bits - 1), q - (1 << fmt.bits), q)
            bad = inexact_int(q)
            if bad is not None:
                raise ValueError(f"Encoded: the code at index {flat_index(codes.shape, bad)} of {fmt} is the"
                                 f" integer {int(q[bad])}, beyond 2^53, whose value float64 (what a datapath"
                                 " reads) cannot hold exactly; pass codes whose integers float64 holds")
        codes.flags.writeable = False
        values.flags.writeable = False
        object.__setattr__(self, "fmt", fmt)
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "values", values)

    @classmethod
    def of(cls, x: object, fmt: str | Format, rounding: Any = "nearest_even", overflow: Any = None, *,
           seed: object = None) -> Encoded:
        """x encoded in ``fmt`` by `emu.encode` (rounding, overflow and seed as there)."""
        return cls(encode(x, fmt, rounding, overflow, seed=seed), get_format(fmt))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.codes.shape

    def __repr__(self) -> str:
        return f"Encoded({self.fmt}, shape {self.codes.shape})"


def plain_operand(x: object, fmt: object, func: str, name: str, role: str) -> tuple[object, bool]:
    """(x's values, True) for an `Encoded` x in ``fmt``, the MAC's ``role`` format; (x, False) for anything
    else. An `Encoded` x in another format raises ValueError naming ``name`` and both formats.

    >>> plain_operand(Encoded(np.array([16]), "fx<4,4>"), get_format("fx<4,4>"), "matmul", "a", "act")
    (array([1.]), True)
    """
    if type(x) is not Encoded:
        return x, False
    if x.fmt != fmt:
        raise ValueError(f"{func}: {name} is encoded in {x.fmt} but the MAC's {role} format is {fmt};"
                         f" encode it in {fmt} or pass real values")
    return x.values, True
