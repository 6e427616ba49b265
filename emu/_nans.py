"""What a conversion does with NaN, in one place: the float64 bits of a NaN input a rounding keeps
(`nan_keep_mask`, read by `emu._rounding.conversion_nan`), the code a NaN gets (`nan_code_of`) and the
NaN a code decodes to (`nan_value_of`).

The rule (docs/semantics.md, "NaN in"): an ieee format's NaN keeps the sign and the top M bits of the
float64 fraction (its payload; the quiet NaN where those are all zero), an fn format's the sign, fnuz and
P3109 have one NaN; decoding puts a code's sign and fraction back, so code -> value -> code is the
identity on NaN codes too. NaNs that arithmetic makes are the positive quiet NaN.

Worked example (fp16, M = 10): the float64 -NaN 0xFFF8_4000_0000_0000 has fraction bits
0x8_4000_0000_0000, whose top ten are 0b10_0001_0000: code 0xFE10, which decodes to
0xFFF8_4000_0000_0000 again.
"""

from __future__ import annotations

import numpy as np
from numba import njit

U64 = np.uint64
_ZERO = U64(0)
_ONE = U64(1)
_SIGN = U64(1 << 63)
_EXP_ALL = U64(0x7FF0000000000000)
_QNAN = U64(0x7FF8000000000000)
_FRAC_MASK = U64((1 << 52) - 1)


def nan_keep_mask(fmt, conversion: bool) -> int:
    """The float64 bits of a NaN that a rounding to ``fmt`` keeps (`emu._rounding.conversion_nan`, which
    sets the quiet bit where no fraction bit is kept).

    A conversion keeps what the format's NaN codes can hold: an ieee format's NaN keeps the sign and the
    top M fraction bits (its code's fraction, so code -> value -> code is the identity), an fn format's
    the sign (one NaN per sign), fnuz and P3109 nothing (one NaN code). Arithmetic (``conversion`` false:
    the accumulators, products and operand roundings of the datapaths) gives the positive quiet NaN.
    Worked example: fp16 (M = 10) keeps 0xFFFF_FC00_0000_0000, so -NaN with payload 0x1 << 47 keeps it
    (it is the code 0xFC20, fraction 0x20), and 0x7FF0_0000_0000_0001 becomes the quiet NaN 0x7FF8....
    """
    keep = int(_EXP_ALL)
    if not conversion:
        return keep
    if fmt.has_negative_zero:  # the formats whose NaN codes have a sign: signed ieee and fn
        keep |= 1 << 63
    if fmt.special == "ieee":
        keep |= ((1 << 52) - 1) & ~((1 << (52 - fmt.man_bits)) - 1)
    return keep


@njit(cache=True)
def nan_code_of(b, nan_code, mbits, nan_sign, nan_payload):
    """The code a conversion gives a NaN with float64 bits b (`nan_keep_mask`'s rule): the format's
    canonical ``nan_code``, its fraction replaced by b's top M fraction bits where NaN codes keep a payload
    (``nan_payload``, ieee) and those bits are not all zero, and ``nan_sign`` (the code's sign bit, 0 where
    NaN codes have no sign) where b is negative. Worked example: fp16, b = 0xFFF8_4000_0000_0000 gives
    0xFE10 (sign, all-ones exponent, fraction 0b10_0001_0000)."""
    code = U64(nan_code)
    if nan_payload:
        f = (b & _FRAC_MASK) >> U64(52 - mbits)
        code = ((code >> U64(mbits)) << U64(mbits)) | f if f != _ZERO else code
    return code | (nan_sign if (b & _SIGN) != _ZERO else _ZERO)


@njit(cache=True)
def nan_value_of(code, mbits, nan_sign, nan_payload):
    """The float64 value of a NaN code (`nan_code_of`'s inverse on the codes it gives): the code's fraction
    at the top of float64's (``nan_payload``) or the quiet NaN, with the code's sign where NaN codes have
    one (``nan_sign`` set in the code)."""
    frac = U64(code) & ((_ONE << U64(mbits)) - _ONE)
    b = (_EXP_ALL | (frac << U64(52 - mbits))) if nan_payload else _QNAN
    b |= _SIGN if (U64(code) & U64(nan_sign)) != _ZERO else _ZERO
    return np.uint64(b).view(np.float64)


def quiet_nans(a: np.ndarray) -> np.ndarray:
    """``a`` with every NaN the positive quiet NaN, the datapaths' NaN (a itself when it holds none): the
    values a datapath converts (its operands, its final accumulators) carry no NaN sign or payload into
    the conversion rule, which would keep them."""
    nan = np.isnan(a)
    return np.where(nan, np.nan, a) if nan.any() else a
