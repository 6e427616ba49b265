"""Slow exact references of the scalar conversions: quantize, decode, encode (fixed, float, pow2).

The executable form of NUMERICS.md sections 1-5 and of docs/semantics.md, one
scalar at a time, so that the fast kernels can be tested against it bit for bit;
it is deliberately simple and slow. Every value is held exactly as a Python
``int`` or ``fractions.Fraction``; every rounding is a call of
`emu._ref.rounding`. No numpy rounding function is used.

Conventions shared by every function here:

- A value is a ``Fraction`` when it is finite and nonzero, and a Python float
  for zero (``0.0`` or ``-0.0``), infinities and NaN.
- A code is the unsigned bit pattern of the word (an ``int`` in
  ``[0, 2**fmt.bits)``).
- Stochastic rounding draws from the counter-based stream of
  `emu._ref.stream`: element ``index`` under ``key``.

>>> from emu.formats import FixedFormat, FloatFormat
>>> quantize_ref(0.1, FixedFormat(1, 7)).code, quantize_ref(0.1, FixedFormat(1, 7)).value
(13, Fraction(13, 128))
>>> r = quantize_ref(1e6, FloatFormat(4, 3, special="fn"))
>>> (r.code, r.value, r.overflow)
(126, Fraction(448, 1), True)
>>> decode_ref(encode_ref(-1.5, FloatFormat(5, 2)), FloatFormat(5, 2))
Fraction(-3, 2)

Imports: the standard library, ``emu.formats``, ``emu.modes`` and the rounding.
"""

from __future__ import annotations

import math
import numbers
import struct
from dataclasses import dataclass
from fractions import Fraction

from ..formats import FixedFormat, FloatFormat, Pow2Format
from ..modes import Overflow, Rounding, parse_overflow, parse_rounding
from .rounding import check_random_bits, floor_log2, pow2, round_float, round_fraction, round_pow2
from .stream import MASK64

__all__ = ["RefResult", "decode_ref", "encode_ref", "quantize_ref"]


# --------------------------------------------------------------------------------------------
# Exact helpers
# --------------------------------------------------------------------------------------------


def _exact_log2(a: Fraction) -> int:
    """k with a == 2^k (ValueError if a is not a power of two)."""
    k = floor_log2(a)
    if a != pow2(k):
        raise ValueError(f"{a} is not a power of two")
    return k


@dataclass(frozen=True)
class _Input:
    """A scalar split into kind ('nan', 'inf', 'finite'), sign and exact magnitude (a NaN: its 52
    float64 fraction bits in ``payload``)."""

    kind: str
    negative: bool
    mag: Fraction
    payload: int = 0


def _parse_input(x: object) -> _Input:
    """Read a Python int / float / Fraction (or numpy scalar) exactly."""
    if isinstance(x, bool):
        raise TypeError(f"x={x!r}: bool is not a number here")
    if isinstance(x, numbers.Integral):
        v = Fraction(int(x))
        return _Input("finite", v < 0, abs(v))
    if isinstance(x, Fraction):
        return _Input("finite", x < 0, abs(x))
    if isinstance(x, numbers.Real):
        f = float(x)  # exact for float16/32/64 scalars
        if math.isnan(f):
            payload = _float64_bits(f) & ((1 << 52) - 1)
            return _Input("nan", math.copysign(1.0, f) < 0, Fraction(0), payload)
        neg = math.copysign(1.0, f) < 0
        if math.isinf(f):
            return _Input("inf", neg, Fraction(0))
        return _Input("finite", neg, abs(Fraction(f)))
    raise TypeError(f"x={x!r} of type {type(x).__name__} is not a real number")


def _float64_bits(f: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", f))[0]


def _float64_of_bits(b: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def _zero(negative: bool) -> float:
    return -0.0 if negative else 0.0


@dataclass(frozen=True)
class RefResult:
    """The outcome of converting one scalar.

    Attributes:
        code: unsigned bit pattern of the result.
        value: the exact result: a ``Fraction`` when finite and nonzero, else a
            float (``0.0``, ``-0.0``, ``inf``, ``-inf``, or the NaN `decode_ref`
            gives the code).
        overflow: the result left the finite range (clamped, wrapped, sent to
            inf or NaN), including +-inf inputs that did not stay infinite.
        underflow: a nonzero finite input rounded to zero (results that
            overflowed, e.g. a negative input clamped to 0 by an unsigned
            format or a wrap that lands on 0, count as overflow only).
        nan: the input was NaN.
    """

    code: int
    value: Fraction | float
    overflow: bool = False
    underflow: bool = False
    nan: bool = False


def _resolve_modes(fmt: object, rounding: object, overflow: object, random_bits: int | None) -> tuple:
    rounding = parse_rounding(rounding, "quantize_ref")
    if overflow is None:
        overflow = fmt.default_overflow  # type: ignore[attr-defined]
    overflow = parse_overflow(overflow, "quantize_ref")
    if overflow not in fmt.overflow_modes:  # type: ignore[attr-defined]
        allowed = ", ".join(str(m) for m in fmt.overflow_modes)  # type: ignore[attr-defined]
        raise ValueError(f"quantize_ref: overflow={overflow} is not allowed for {fmt}; allowed: {allowed}")
    check_random_bits(rounding, random_bits)
    return rounding, overflow


# --------------------------------------------------------------------------------------------
# Fixed point
# --------------------------------------------------------------------------------------------


def _fixed_result(fmt: FixedFormat, q: int, inp: _Input, overflow: bool, nan: bool = False) -> RefResult:
    wl = fmt.bits
    code = q % (1 << wl)
    value: Fraction | float = 0.0 if q == 0 else Fraction(q) * pow2(-fmt.frac_bits)
    underflow = inp.kind == "finite" and inp.mag != 0 and q == 0 and not overflow
    return RefResult(code, value, overflow, underflow, nan)


def _quantize_fixed(fmt, inp, rounding, overflow, key, index, random_bits, nan_zero) -> RefResult:
    if inp.kind == "nan":
        if nan_zero:
            return RefResult(0, 0.0, False, False, True)
        raise ValueError(f"quantize_ref: NaN into {fmt}, which has no NaN (pass nan_zero=True for 0)")
    if inp.kind == "inf":
        if overflow == Overflow.WRAP:
            raise ValueError(f"quantize_ref: {'-' if inp.negative else '+'}inf cannot wrap into {fmt}")
        return _fixed_result(fmt, fmt.qmin if inp.negative else fmt.qmax, inp, True)
    t = (-inp.mag if inp.negative else inp.mag) * pow2(fmt.frac_bits)
    q = round_fraction(t, rounding, key=key, index=index, random_bits=random_bits)
    if fmt.qmin <= q <= fmt.qmax:
        return _fixed_result(fmt, q, inp, False)
    if overflow == Overflow.WRAP:
        wl = fmt.bits
        q = q % (1 << wl)
        if fmt.signed and q >= 1 << (wl - 1):
            q -= 1 << wl
    else:  # SATURATE, ERROR (the caller raises)
        q = min(max(q, fmt.qmin), fmt.qmax)
    return _fixed_result(fmt, q, inp, True)


# --------------------------------------------------------------------------------------------
# Floating point
# --------------------------------------------------------------------------------------------


def _float_nan_code(fmt: FloatFormat) -> int:
    """Canonical NaN: ieee 0|1..1|10..0, fn 0|1..1|1..1, fnuz and signed P3109 1|0..0|0..0; unsigned
    formats (fn, P3109) the all-ones word 1..1|1..1."""
    e, m = fmt.exp_bits, fmt.man_bits
    if fmt.special == "ieee":
        return (((1 << e) - 1) << m) | (1 << (m - 1))
    if fmt.special == "fn" or (fmt.special in ("p3109", "p3109_finite") and not fmt.signed):
        return (1 << (e + m)) - 1
    if fmt.special in ("fnuz", "p3109", "p3109_finite"):
        return 1 << (e + m)
    raise ValueError(f"{fmt} has no NaN")  # pragma: no cover


def _float_inf_code(fmt: FloatFormat) -> int:
    """+inf: ieee 0|1..1|0..0; signed P3109 0|1..1|1..1 (the largest magnitude); unsigned P3109 1..1|1..10
    (below the NaN)."""
    e, m = fmt.exp_bits, fmt.man_bits
    if fmt.special == "ieee":
        return ((1 << e) - 1) << m
    return (1 << (e + m)) - (1 if fmt.signed else 2)


def _sign_bit(fmt: FloatFormat, negative: bool) -> int:
    """The sign bit of a code (unsigned formats never ask for a negative one)."""
    if negative and not fmt.signed:
        raise AssertionError(f"a negative code of unsigned {fmt}")  # pragma: no cover
    return (1 << (fmt.exp_bits + fmt.man_bits)) if negative else 0


def _float_max(fmt: FloatFormat) -> Fraction:
    return fmt.max_significand * pow2(fmt.emax - fmt.man_bits)


def _float_zero(fmt: FloatFormat, negative: bool, inp: _Input, overflow: bool = False) -> RefResult:
    neg = negative and fmt.has_negative_zero
    code = _sign_bit(fmt, neg)
    underflow = inp.kind == "finite" and inp.mag != 0
    return RefResult(code, _zero(neg), overflow, underflow, False)


def _float_encode_mag(fmt: FloatFormat, mag: Fraction) -> int:
    """Code (without sign) of a representable finite magnitude > 0."""
    m, emin = fmt.man_bits, fmt.emin
    if mag < pow2(emin):
        f = mag / pow2(emin - m)
        if f.denominator != 1 or not fmt.subnormals:
            raise ValueError(f"{mag} is not representable in {fmt}")
        return int(f)
    e = floor_log2(mag)
    sig = mag / pow2(e - m)
    if sig.denominator != 1:
        raise ValueError(f"{mag} is not representable in {fmt}")
    field = e + fmt.bias
    if field < (1 if fmt.zero else 0) or mag > _float_max(fmt):
        raise ValueError(f"{mag} is not representable in {fmt}")
    return (field << m) | (int(sig) - (1 << m))


def _float_finite(fmt: FloatFormat, negative: bool, mag: Fraction, overflow: bool,
                  underflow: bool = False) -> RefResult:
    code = _sign_bit(fmt, negative) | _float_encode_mag(fmt, mag)
    return RefResult(code, -mag if negative else mag, overflow, underflow, False)


def _float_inf(fmt: FloatFormat, negative: bool, overflow: bool) -> RefResult:
    code = _sign_bit(fmt, negative) | _float_inf_code(fmt)
    return RefResult(code, -math.inf if negative else math.inf, overflow, False, False)


def _float_nan(fmt: FloatFormat, overflow: bool, nan: bool, negative: bool = False,
               payload: int = 0) -> RefResult:
    """A NaN result: the canonical code, with the top M bits of a NaN input's float64 fraction
    (``payload``) as its fraction where the format is ieee and they are not all zero, and the sign
    bit where ``negative`` and the format's NaN codes have a sign (ieee and fn, signed); its value is
    `decode_ref`'s NaN of that code."""
    code = _float_nan_code(fmt)
    m = fmt.man_bits
    if fmt.special == "ieee" and payload >> (52 - m):
        code = (code >> m << m) | (payload >> (52 - m))
    if negative and fmt.has_negative_zero:
        code |= _sign_bit(fmt, True)
    return RefResult(code, decode_ref(code, fmt), overflow, False, nan)


def _float_overflowed(fmt: FloatFormat, negative: bool, rounding: Rounding, overflow: Overflow) -> RefResult:
    """The result for a rounded magnitude above max (or an inf input that does not stay inf)."""
    if overflow == Overflow.NAN:
        return _float_nan(fmt, True, False, negative)
    if overflow == Overflow.INF:
        if rounding in (Rounding.TOWARD_ZERO, Rounding.TO_ODD):
            to_inf = False
        elif rounding == Rounding.FLOOR:
            to_inf = negative
        elif rounding == Rounding.CEIL:
            to_inf = not negative
        else:  # nearest modes and stochastic
            to_inf = True
        if to_inf:
            return _float_inf(fmt, negative, True)
    return _float_finite(fmt, negative, _float_max(fmt), True)  # SATURATE, ERROR, INF toward max


def _float_smallest(fmt: FloatFormat) -> Fraction | float:
    """The smallest value of an unsigned format: 0, or 2^-B without a zero code."""
    return 0.0 if fmt.zero else pow2(-fmt.bias)


def _float_below(fmt: FloatFormat, overflow: Overflow) -> RefResult:
    """An input below an unsigned format's range: NaN under nan (and inf, where the format has NaN),
    else the smallest value; an overflow either way."""
    if overflow == Overflow.NAN or (overflow == Overflow.INF and fmt.has_nan):
        return _float_nan(fmt, True, False)
    return RefResult(0, _float_smallest(fmt), True, False, False)


def _quantize_unsigned(fmt, inp, rounding, overflow, key, index, random_bits) -> RefResult | None:
    """The result where an unsigned format's own rules decide (None: the signed rules give it)."""
    if inp.kind == "inf":
        return _float_below(fmt, overflow) if inp.negative else None
    a = inp.mag
    if a == 0:
        return None if fmt.zero else _float_below(fmt, overflow)
    if inp.negative:
        if fmt.zero and (a < pow2(fmt.emin) and not fmt.subnormals or round_float(
                -a, fmt, rounding, key=key, index=index, random_bits=random_bits) == 0):
            return _float_zero(fmt, False, inp)  # rounds to a zero magnitude: +0, an underflow
        return _float_below(fmt, overflow)
    if not fmt.zero and a < pow2(fmt.emin):
        return RefResult(0, pow2(fmt.emin), False, True, False)  # no zero below 2^-B: the smallest value
    return None


def _quantize_float(fmt, inp, rounding, overflow, key, index, random_bits, nan_zero) -> RefResult:
    if inp.kind == "nan":
        if fmt.has_nan:
            return _float_nan(fmt, False, True, inp.negative, inp.payload)
        if nan_zero and fmt.zero:
            return RefResult(0, 0.0, False, False, True)
        raise ValueError(f"quantize_ref: NaN into {fmt}, which has no NaN (pass nan_zero=True for 0)")
    if not fmt.signed:
        res = _quantize_unsigned(fmt, inp, rounding, overflow, key, index, random_bits)
        if res is not None:
            return res
    neg = inp.negative
    if inp.kind == "inf":
        if fmt.has_inf and overflow in (Overflow.INF, Overflow.NAN):
            return _float_inf(fmt, neg, False)
        if overflow == Overflow.NAN:
            return _float_nan(fmt, True, False, neg)
        return _float_finite(fmt, neg, _float_max(fmt), True)  # SATURATE, ERROR
    a = inp.mag
    if a == 0:
        return _float_zero(fmt, neg, inp)
    if not fmt.subnormals and a < pow2(fmt.emin):
        return _float_zero(fmt, neg, inp)  # flush to zero before rounding
    mag = abs(round_float(-a if neg else a, fmt, rounding, key=key, index=index, random_bits=random_bits))
    if mag == 0:
        return _float_zero(fmt, neg, inp)
    if mag > _float_max(fmt):
        return _float_overflowed(fmt, neg, rounding, overflow)
    return _float_finite(fmt, neg, mag, False)


# --------------------------------------------------------------------------------------------
# Powers of two
# --------------------------------------------------------------------------------------------


def _pow2_result(fmt: Pow2Format, negative: bool, mag: Fraction, inp: _Input, overflow: bool) -> RefResult:
    underflow = inp.kind == "finite" and inp.mag != 0 and mag == 0 and not overflow
    if mag == 0:
        return RefResult(0, 0.0, overflow, underflow, False)
    k = _exact_log2(mag) - fmt.emin + 1
    if not 1 <= k <= fmt.n_exponents:
        raise AssertionError(f"{mag} outside {fmt}")  # pragma: no cover
    sign = (1 << fmt.k_bits) if negative else 0
    return RefResult(sign | k, -mag if negative else mag, overflow, underflow, False)


def _quantize_pow2(fmt, inp, rounding, overflow, key, index, random_bits, nan_zero) -> RefResult:
    if inp.kind == "nan":
        if nan_zero:
            return RefResult(0, 0.0, False, False, True)
        raise ValueError(f"quantize_ref: NaN into {fmt}, which has no NaN (pass nan_zero=True for 0)")
    neg = inp.negative
    top = pow2(fmt.emax)
    if inp.kind == "inf":
        if neg and not fmt.signed:
            return _pow2_result(fmt, False, Fraction(0), inp, True)
        return _pow2_result(fmt, neg, top, inp, True)
    a = inp.mag
    if a == 0:
        return _pow2_result(fmt, False, Fraction(0), inp, False)
    mag = abs(round_pow2(-a if neg else a, fmt.emin, rounding, key=key, index=index, random_bits=random_bits))
    if mag == 0:
        return _pow2_result(fmt, False, mag, inp, False)
    if neg and not fmt.signed:
        return _pow2_result(fmt, False, Fraction(0), inp, True)
    if mag > top:
        return _pow2_result(fmt, neg, top, inp, True)
    return _pow2_result(fmt, neg, mag, inp, False)


# --------------------------------------------------------------------------------------------
# Public conversion functions
# --------------------------------------------------------------------------------------------


def quantize_ref(
    x: object,
    fmt: FixedFormat | FloatFormat | Pow2Format,
    rounding: Rounding = Rounding.NEAREST_EVEN,
    overflow: Overflow | None = None,
    *,
    key: int = 0,
    index: int = 0,
    random_bits: int | None = None,
    nan_zero: bool = False,
) -> RefResult:
    """Convert one real scalar to a format, exactly as the contract says.

    Fixed point ``fx<IL,FL>``: ``t = x * 2^FL`` exactly, ``q =
    round_fraction(t)`` (the mode on the signed t), then the overflow mode on q:
    saturate and error clamp to ``[qmin, qmax]`` (error only flags; the caller
    raises), wrap keeps ``q mod 2^WL`` (two's complement when signed). Unsigned
    formats round the same way and a negative q is an overflow. +-inf saturates
    with ``overflow=True`` (ValueError under wrap). No negative zero. The code
    is ``q mod 2^WL``.

    Floating point: ``e = floor(log2 |x|)`` exactly; without subnormals, ``|x| <
    2^emin`` becomes a zero of x's sign before any rounding; otherwise the
    value is rounded to the format's grid (`emu._ref.rounding.round_float`: the
    magnitude's significand at the rounding point ``2^(max(e, emin) - M)``)
    and re-encoded (a carry into the next binade moves
    the exponent up). A rounded magnitude above ``max_significand *
    2^(emax - M)`` overflows: ``inf`` gives +-inf for the nearest modes and
    stochastic, +max / -inf for floor, +inf / -max for ceil, +-max for
    toward_zero; ``saturate`` and ``error`` give +-max; ``nan`` gives the
    canonical NaN, with x's sign where NaN codes have one (ieee and fn, signed).
    +-inf in stays +-inf when the format has inf and the mode is
    ``inf`` or ``nan``, else overflows as above. A zero result has x's sign
    (always +0 in fnuz and P3109). NaN in gives the canonical NaN code (ieee
    ``0|1..1|10..0``, fn ``0|1..1|1..1``, fnuz and signed P3109
    ``1|0..0|0..0``, unsigned fn and P3109 ``1..1|1..1``) with x's sign where
    NaN codes have one, and, in ieee formats, the top M bits of x's float64
    fraction as its fraction where they are not all zero (so code -> value ->
    code is the identity; `decode_ref` gives NaN codes those bits); P3109's +-inf
    codes are the largest magnitude of each sign (unsigned: ``1..1|1..10``).
    Unsigned floats: a negative x whose magnitude rounds to 0 gives +0 (an
    underflow); any other negative x, and -inf, is below the range: an
    overflow giving NaN under ``nan`` (and under ``inf`` where the format has
    NaN), else the smallest value (0, or 2^-B without zero). Without zero
    (``zero=False``, E8M0): a zero x is below the range too, and a positive x
    below 2^-B gives 2^-B (an underflow).

    Power of two (`emu._ref.rounding.round_pow2`): magnitudes in ``[2^k,
    2^(k+1))`` (k >= emin) round between the two powers; the nearest modes
    split at ``2^(k+1/2)``, decided exactly by ``|x|^2`` against
    ``2^(2k+1)``; magnitudes below ``2^emin`` round between 0
    and ``2^emin`` with the ordinary tie rules at ``2^(emin-1)``; directed
    modes act on the signed value; stochastic picks the upper neighbour with
    probability ``(|x| - lo) / (hi - lo)``. A result above ``2^emax`` saturates
    (overflow); unsigned formats send negative nonzero results to 0 (overflow).
    +-inf saturates (overflow). Zero is +0.

    Args:
        x: Python int, float (nan, +-inf, -0.0 allowed) or Fraction (numpy
            scalars are read exactly too).
        fmt: a FixedFormat, FloatFormat or Pow2Format.
        rounding: rounding mode (member or name).
        overflow: overflow mode; None means ``fmt.default_overflow``.
        key: 64-bit key of the random stream (stochastic only).
        index: element index in the random stream (stochastic only).
        random_bits: r in 1..64 random bits for stochastic rounding; None for the
            exact probability.
        nan_zero: for formats without NaN, turn a NaN input into code 0
            (value 0.0, ``nan=True``) instead of raising. Formats that have a NaN
            always give a NaN (as above).

    Returns:
        A :class:`RefResult`.

    Raises:
        ValueError: NaN into a format without NaN (unless ``nan_zero``); +-inf
            into a fixed format under wrap; an overflow mode the format does not
            accept; ``random_bits`` with a non-stochastic mode or outside 1..64.
        TypeError: x is not a real number (bool included), or fmt is not one of
            the three families.
    """
    if not isinstance(fmt, (FixedFormat, FloatFormat, Pow2Format)):
        raise TypeError(f"quantize_ref: fmt={fmt!r} must be a FixedFormat, FloatFormat or Pow2Format")
    rounding, overflow = _resolve_modes(fmt, rounding, overflow, random_bits)
    inp = _parse_input(x)
    args = (fmt, inp, rounding, overflow, int(key) & MASK64, int(index), random_bits, bool(nan_zero))
    if isinstance(fmt, FixedFormat):
        return _quantize_fixed(*args)
    if isinstance(fmt, FloatFormat):
        return _quantize_float(*args)
    return _quantize_pow2(*args)


def decode_ref(code: int, fmt: FixedFormat | FloatFormat | Pow2Format) -> Fraction | float:
    """The exact value of a code.

    Fixed: ``q * 2^-FL`` with q the two's complement (or unsigned) reading of
    the word. Float: sign | exponent field | fraction as in NUMERICS.md section
    5 (no sign bit when unsigned); field 0 is subnormal, or, without
    subnormals, a zero of the code's sign (denormals-are-zero; +0 in fnuz and
    P3109), or, without zero, the normal 2^-B; inf/NaN codes per ``special``
    (P3109: NaN ``1|0..0`` signed, ``1..1`` unsigned; +inf the code just
    below, -inf ``1|1..1``, in the extended domain); a NaN code gives a
    float64 NaN with the code's sign (ieee, fn) and, ieee, its fraction at the
    top of float64's (fnuz and P3109: the positive quiet NaN). Pow2:
    ``K = 0`` is zero, ``K = 1..n`` is ``+-2^(emin + K - 1)``.

    Args:
        code: the unsigned bit pattern.
        fmt: a FixedFormat, FloatFormat or Pow2Format.

    Returns:
        A ``Fraction`` for finite nonzero values; ``0.0``, ``-0.0``, ``inf``,
        ``-inf`` or ``nan`` (floats) otherwise.

    Raises:
        ValueError: code outside ``[0, 2**fmt.bits)``, or an unused Pow2Format
            code (sign 1 with K = 0, or K > n).
    """
    if isinstance(code, bool) or not isinstance(code, numbers.Integral):
        raise TypeError(f"decode_ref: code={code!r} must be an int")
    code = int(code)
    if not 0 <= code < (1 << fmt.bits):
        raise ValueError(f"decode_ref: code={code} outside [0, 2^{fmt.bits}) for {fmt}")
    if isinstance(fmt, FixedFormat):
        q = code
        if fmt.signed and q >= 1 << (fmt.bits - 1):
            q -= 1 << fmt.bits
        return 0.0 if q == 0 else Fraction(q) * pow2(-fmt.frac_bits)
    if isinstance(fmt, FloatFormat):
        e_bits, m_bits = fmt.exp_bits, fmt.man_bits
        negative = fmt.signed and bool(code >> (e_bits + m_bits))
        word = code & ((1 << (e_bits + m_bits)) - 1)  # the code without its sign bit
        field = word >> m_bits
        frac = code & ((1 << m_bits) - 1)
        all_e, all_m = (1 << e_bits) - 1, (1 << m_bits) - 1
        sign64 = (1 << 63) if negative and fmt.has_negative_zero else 0  # NaN codes with a sign: ieee, fn
        if fmt.special == "ieee" and field == all_e:
            if frac == 0:
                return -math.inf if negative else math.inf
            return _float64_of_bits(sign64 | (0x7FF << 52) | (frac << (52 - m_bits)))
        if fmt.special == "fn" and field == all_e and frac == all_m:
            return _float64_of_bits(sign64 | 0x7FF8 << 48)
        p3109 = fmt.special in ("p3109", "p3109_finite")
        if (fmt.special == "fnuz" or p3109) and fmt.signed and code == 1 << (e_bits + m_bits):
            return math.nan
        if p3109 and not fmt.signed and word == (1 << (e_bits + m_bits)) - 1:
            return math.nan
        if fmt.special == "p3109" and word == (1 << (e_bits + m_bits)) - (1 if fmt.signed else 2):
            return -math.inf if negative else math.inf
        if field == 0 and fmt.zero:
            if frac == 0 or not fmt.subnormals:
                return _zero(negative and fmt.has_negative_zero)
            mag = frac * pow2(fmt.emin - m_bits)
        else:
            mag = ((1 << m_bits) + frac) * pow2(field - fmt.bias - m_bits)
        return -mag if negative else mag
    if isinstance(fmt, Pow2Format):
        negative = bool(code >> fmt.k_bits) if fmt.signed else False
        k = code & ((1 << fmt.k_bits) - 1)
        if k > fmt.n_exponents:
            raise ValueError(f"decode_ref: code={code} has K={k} > {fmt.n_exponents}, unused in {fmt}")
        if k == 0:
            if negative:
                raise ValueError(f"decode_ref: code={code} (sign 1, K=0) is unused in {fmt}")
            return 0.0
        mag = pow2(fmt.emin + k - 1)
        return -mag if negative else mag
    raise TypeError(f"decode_ref: fmt={fmt!r} must be a FixedFormat, FloatFormat or Pow2Format")


def _same_value(a: Fraction | float, b: Fraction | float, signed_zero: bool) -> bool:
    a_nan = isinstance(a, float) and math.isnan(a)
    b_nan = isinstance(b, float) and math.isnan(b)
    if a_nan or b_nan:
        return a_nan and b_nan
    if a != b:
        return False
    if a == 0 and signed_zero:
        return math.copysign(1.0, float(a)) == math.copysign(1.0, float(b))
    return True


def encode_ref(value: object, fmt: FixedFormat | FloatFormat | Pow2Format) -> int:
    """The code of a value the format represents exactly.

    NaN encodes to a NaN code (`quantize_ref`'s: sign and, ieee, payload kept), +-inf to the inf
    codes (ieee), -0.0
    to the negative zero where the format has one and to code 0 otherwise
    (fixed point, pow2, fnuz).

    Args:
        value: int, float or Fraction.
        fmt: a FixedFormat, FloatFormat or Pow2Format.

    Returns:
        The canonical code (never a denormals-are-zero code of an ftz format).

    Raises:
        ValueError: the value is not exactly representable.
    """
    inp = _parse_input(value)
    overflow = Overflow.INF if isinstance(fmt, FloatFormat) and fmt.has_inf else Overflow.SATURATE
    try:
        res = quantize_ref(value, fmt, Rounding.NEAREST_EVEN, overflow)
    except ValueError:
        raise ValueError(f"encode_ref: {value!r} is not representable in {fmt}") from None
    signed_zero = isinstance(fmt, FloatFormat) and fmt.has_negative_zero
    exact: Fraction | float
    if inp.kind == "finite" and inp.mag == 0:
        exact = _zero(inp.negative)
    elif inp.kind == "finite":
        exact = -inp.mag if inp.negative else inp.mag
    else:
        exact = float(value)  # type: ignore[arg-type]
    if res.overflow or not _same_value(decode_ref(res.code, fmt), exact, signed_zero):
        raise ValueError(f"encode_ref: {value!r} is not representable in {fmt}")
    return res.code


