"""Slow exact reference for number-format conversion (one scalar at a time).

This module is the executable form of NUMERICS.md sections 1-5 and 8 and of
docs/semantics.md. It exists so that the fast kernels can be tested against it
bit for bit; it is deliberately simple and slow. Every value is held exactly as
a Python ``int`` or ``fractions.Fraction``; float64 arithmetic appears only where
the contract itself defines a quantity in float64 (the stochastic binary and
ternary probabilities, and the data scales, which are exact means rounded once
to float64). No numpy rounding function is used.

Imports: the standard library (``dataclasses``, ``fractions``, ``math``,
``numbers``) and ``emu.formats`` / ``emu.modes`` only.

Conventions shared by every function here:

- A value is a ``Fraction`` when it is finite and nonzero, and a Python float
  for zero (``0.0`` or ``-0.0``), infinities and NaN.
- A code is the unsigned bit pattern of the word (an ``int`` in
  ``[0, 2**fmt.bits)``).
- The random stream is the counter-based one of docs/semantics.md: element
  ``index`` under ``key`` sees the 64-bit words ``w0, w1, ...`` of
  :func:`random_word`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction

from .formats import BinaryFormat, FixedFormat, FloatFormat, Pow2Format, TernaryFormat
from .modes import Overflow, Rounding, parse_overflow, parse_rounding

__all__ = [
    "GOLDEN",
    "RefResult",
    "TernaryScale",
    "binary_ref",
    "data_scale_ref",
    "decode_ref",
    "encode_ref",
    "mix64",
    "quantize_ref",
    "random_word",
    "round_fraction",
    "round_magnitude",
    "ternary_ref",
]

MASK64 = (1 << 64) - 1
#: The splitmix64 increment (2^64 / golden ratio, odd).
GOLDEN = 0x9E3779B97F4A7C15

_NEAREST = (Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY, Rounding.NEAREST_UP, Rounding.NEAREST_DOWN)


# --------------------------------------------------------------------------------------------
# Random stream
# --------------------------------------------------------------------------------------------


def mix64(z: int) -> int:
    """splitmix64's finaliser on a 64-bit word.

    ``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
    z ^= z >> 31``, every step modulo 2^64. The argument is first reduced modulo
    2^64.

    Args:
        z: any integer (taken modulo 2^64).

    Returns:
        The mixed word, in ``[0, 2**64)``.
    """
    z &= MASK64
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & MASK64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return z


def random_word(key: int, index: int, j: int) -> int:
    """Word ``w_j`` of the random stream of element ``index`` under ``key``.

    ``w_0 = mix64(key + (index + 1) * G)`` and ``w_j = mix64(w_{j-1} + G)``, all
    modulo 2^64, with ``G = 0x9E3779B97F4A7C15`` (docs/semantics.md).

    Args:
        key: the 64-bit key derived from the seed (taken modulo 2^64).
        index: the C-order flat index of the element (>= 0).
        j: which word (>= 0).

    Returns:
        The word, in ``[0, 2**64)``.

    Raises:
        ValueError: ``index`` or ``j`` is negative.
    """
    if index < 0 or j < 0:
        raise ValueError(f"random_word: index={index} and j={j} must be >= 0")
    w = mix64(key + (index + 1) * GOLDEN)
    for _ in range(j):
        w = mix64(w + GOLDEN)
    return w


def _check_random_bits(rounding: Rounding, random_bits: int | None) -> None:
    if random_bits is None:
        return
    if isinstance(random_bits, bool) or not isinstance(random_bits, numbers.Integral):
        raise TypeError(f"random_bits={random_bits!r} must be an int")
    if rounding != Rounding.STOCHASTIC:
        raise ValueError(f"random_bits={random_bits} is only meaningful with rounding=stochastic")
    if not 1 <= int(random_bits) <= 64:
        raise ValueError(f"random_bits={random_bits} outside the allowed range [1, 64]")


def _stochastic_up(f: Fraction, key: int, index: int, random_bits: int | None) -> bool:
    """Decide whether a fraction f in [0, 1) rounds up, from the random stream.

    - ``f == 0``: never (the value is exact).
    - ``random_bits=r``: ``F = floor(f * 2^r)``, ``u = w0 >> (64 - r)``; up iff
      ``F > u``.
    - default: with ``U = 0.w0 w1 w2 ...`` (binary), up iff ``U < f``, decided
      64 bits at a time: ``chunk_j = floor(f * 2^(64(j+1))) mod 2^64``; if
      ``w_j < chunk_j`` up, if ``w_j > chunk_j`` down, if equal and f has no bits
      below chunk j then ``U >= f`` and the answer is down, else look at j + 1.
    """
    if not 0 <= f < 1:
        raise AssertionError(f"fraction {f} outside [0, 1)")  # pragma: no cover
    if f == 0:
        return False
    if random_bits is not None:
        r = int(random_bits)
        big_f = math.floor(f * (1 << r))
        u = random_word(key, index, 0) >> (64 - r)
        return big_f > u
    j = 0
    w = random_word(key, index, 0)
    while True:
        scaled = f * (1 << (64 * (j + 1)))
        chunk = math.floor(scaled) & MASK64
        if w < chunk:
            return True
        if w > chunk:
            return False
        if scaled.denominator == 1:  # f has no bits below this chunk: U >= f
            return False
        j += 1
        w = mix64(w + GOLDEN)


# --------------------------------------------------------------------------------------------
# Rounding of rationals to integers
# --------------------------------------------------------------------------------------------


def round_fraction(
    t: Fraction,
    rounding: Rounding,
    *,
    key: int = 0,
    index: int = 0,
    random_bits: int | None = None,
) -> int:
    """Round a signed rational t to an integer (NUMERICS.md section 3).

    With ``lo = floor(t)`` and ``frac = t - lo``:

    - nearest_even / nearest_away / nearest_up / nearest_down: the nearer of lo
      and lo + 1; a tie (frac = 1/2) goes to the even one / the one farther from
      zero / lo + 1 (toward +inf) / lo (toward -inf).
    - floor: lo; ceil: lo + 1 unless t is an integer; toward_zero: floor for
      t >= 0, ceil for t < 0.
    - stochastic: lo if frac = 0, else lo + 1 when the random stream says "up"
      for frac (see ``random_bits`` and the module docstring), so P(up) = frac
      (or floor(frac * 2^r) / 2^r with ``random_bits=r``).

    This is the rule for fixed point, where t = x / eps is rounded as a signed
    two's complement quantity.

    Args:
        t: the value to round (int, Fraction, or anything ``Fraction`` accepts
            exactly).
        rounding: the mode (a ``Rounding`` member or its name).
        key: 64-bit key of the random stream (stochastic only).
        index: element index in the random stream (stochastic only).
        random_bits: r in 1..64 random bits (stochastic only); None for the
            exact probability.

    Returns:
        The rounded integer.

    Raises:
        ValueError: ``random_bits`` with a non-stochastic mode or outside 1..64.
    """
    rounding = parse_rounding(rounding, "round_fraction")
    _check_random_bits(rounding, random_bits)
    t = Fraction(t)
    lo = math.floor(t)
    frac = t - lo
    if frac == 0:
        return lo
    half = Fraction(1, 2)
    if rounding in _NEAREST:
        if frac < half:
            return lo
        if frac > half:
            return lo + 1
        if rounding == Rounding.NEAREST_EVEN:
            return lo if lo % 2 == 0 else lo + 1
        if rounding == Rounding.NEAREST_AWAY:
            return lo + 1 if t > 0 else lo
        if rounding == Rounding.NEAREST_UP:
            return lo + 1
        return lo  # NEAREST_DOWN
    if rounding == Rounding.FLOOR:
        return lo
    if rounding == Rounding.CEIL:
        return lo + 1
    if rounding == Rounding.TOWARD_ZERO:
        return lo if t > 0 else lo + 1
    if rounding == Rounding.STOCHASTIC:
        return lo + 1 if _stochastic_up(frac, key, index, random_bits) else lo
    raise ValueError(f"round_fraction: unknown rounding {rounding!r}")  # pragma: no cover


def round_magnitude(
    m: Fraction,
    rounding: Rounding,
    negative: bool,
    *,
    key: int = 0,
    index: int = 0,
    random_bits: int | None = None,
) -> int:
    """Round a magnitude m >= 0 to an integer magnitude (sign-magnitude rounding).

    The deterministic modes are interpreted on the signed value ``v = -m`` when
    ``negative`` else ``m`` and the magnitude of the result is returned:
    ``round_magnitude(m, R, neg) == abs(round_fraction(-m if neg else m, R))``.
    So floor of a negative value rounds its magnitude up, ceil rounds it down,
    toward_zero always rounds the magnitude down, nearest_away breaks ties to
    the larger magnitude, nearest_up (ties toward +inf) breaks a negative
    value's tie toward the smaller magnitude, nearest_down toward the larger.

    Stochastic rounding acts on the magnitude itself (the dropped bits of a
    sign-magnitude significand): ``floor(m) + 1`` when the random stream says
    "up" for ``frac(m)``, else ``floor(m)``; P(magnitude up) = frac(m) (or
    floor(frac(m) * 2^r) / 2^r with ``random_bits=r``), whatever the sign.

    Args:
        m: the magnitude, a non-negative rational.
        rounding: the mode.
        negative: whether the value being rounded is -m.
        key: 64-bit key of the random stream (stochastic only).
        index: element index in the random stream (stochastic only).
        random_bits: r in 1..64 (stochastic only).

    Returns:
        The rounded magnitude (>= 0).

    Raises:
        ValueError: m < 0; ``random_bits`` misused.
    """
    rounding = parse_rounding(rounding, "round_magnitude")
    _check_random_bits(rounding, random_bits)
    m = Fraction(m)
    if m < 0:
        raise ValueError(f"round_magnitude: m={m} must be >= 0")
    if rounding == Rounding.STOCHASTIC:
        lo = math.floor(m)
        return lo + 1 if _stochastic_up(m - lo, key, index, random_bits) else lo
    return abs(round_fraction(-m if negative else m, rounding))


# --------------------------------------------------------------------------------------------
# Exact helpers
# --------------------------------------------------------------------------------------------


def _pow2(k: int) -> Fraction:
    """2^k exactly."""
    return Fraction(1 << k) if k >= 0 else Fraction(1, 1 << -k)


def _floor_log2(a: Fraction) -> int:
    """floor(log2 a) for a rational a > 0, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < _pow2(e):
        e -= 1
    return e


def _exact_log2(a: Fraction) -> int:
    """k with a == 2^k (ValueError if a is not a power of two)."""
    k = _floor_log2(a)
    if a != _pow2(k):
        raise ValueError(f"{a} is not a power of two")
    return k


@dataclass(frozen=True)
class _Input:
    """A scalar split into kind ('nan', 'inf', 'finite'), sign and exact magnitude."""

    kind: str
    negative: bool
    mag: Fraction


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
            return _Input("nan", math.copysign(1.0, f) < 0, Fraction(0))
        neg = math.copysign(1.0, f) < 0
        if math.isinf(f):
            return _Input("inf", neg, Fraction(0))
        return _Input("finite", neg, abs(Fraction(f)))
    raise TypeError(f"x={x!r} of type {type(x).__name__} is not a real number")


def _zero(negative: bool) -> float:
    return -0.0 if negative else 0.0


@dataclass(frozen=True)
class RefResult:
    """The outcome of converting one scalar.

    Attributes:
        code: unsigned bit pattern of the result (the canonical NaN code for a
            NaN result).
        value: the exact result: a ``Fraction`` when finite and nonzero, else a
            float (``0.0``, ``-0.0``, ``inf``, ``-inf``, ``nan``).
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
    _check_random_bits(rounding, random_bits)
    return rounding, overflow


# --------------------------------------------------------------------------------------------
# Fixed point
# --------------------------------------------------------------------------------------------


def _fixed_result(fmt: FixedFormat, q: int, inp: _Input, overflow: bool, nan: bool = False) -> RefResult:
    wl = fmt.bits
    code = q % (1 << wl)
    value: Fraction | float = 0.0 if q == 0 else Fraction(q) * _pow2(-fmt.frac_bits)
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
    t = (-inp.mag if inp.negative else inp.mag) * _pow2(fmt.frac_bits)
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
    """Canonical NaN: ieee 0|1..1|10..0, fn 0|1..1|1..1, fnuz 1|0..0|0..0."""
    e, m = fmt.exp_bits, fmt.man_bits
    if fmt.special == "ieee":
        return (((1 << e) - 1) << m) | (1 << (m - 1))
    if fmt.special == "fn":
        return (1 << (e + m)) - 1
    if fmt.special == "fnuz":
        return 1 << (e + m)
    raise ValueError(f"{fmt} has no NaN")  # pragma: no cover


def _float_max(fmt: FloatFormat) -> Fraction:
    return fmt.max_significand * _pow2(fmt.emax - fmt.man_bits)


def _float_zero(fmt: FloatFormat, negative: bool, inp: _Input, overflow: bool = False) -> RefResult:
    neg = negative and fmt.has_negative_zero
    code = (1 << (fmt.exp_bits + fmt.man_bits)) if neg else 0
    underflow = inp.kind == "finite" and inp.mag != 0
    return RefResult(code, _zero(neg), overflow, underflow, False)


def _float_encode_mag(fmt: FloatFormat, mag: Fraction) -> int:
    """Code (without sign) of a representable finite magnitude > 0."""
    m, emin = fmt.man_bits, fmt.emin
    if mag < _pow2(emin):
        f = mag / _pow2(emin - m)
        if f.denominator != 1 or not fmt.subnormals:
            raise ValueError(f"{mag} is not representable in {fmt}")
        return int(f)
    e = _floor_log2(mag)
    sig = mag / _pow2(e - m)
    if sig.denominator != 1:
        raise ValueError(f"{mag} is not representable in {fmt}")
    field = e + fmt.bias
    if field < 1 or mag > _float_max(fmt):
        raise ValueError(f"{mag} is not representable in {fmt}")
    return (field << m) | (int(sig) - (1 << m))


def _float_finite(fmt: FloatFormat, negative: bool, mag: Fraction, overflow: bool) -> RefResult:
    sign = (1 << (fmt.exp_bits + fmt.man_bits)) if negative else 0
    code = sign | _float_encode_mag(fmt, mag)
    return RefResult(code, -mag if negative else mag, overflow, False, False)


def _float_inf(fmt: FloatFormat, negative: bool, overflow: bool) -> RefResult:
    sign = (1 << (fmt.exp_bits + fmt.man_bits)) if negative else 0
    code = sign | (((1 << fmt.exp_bits) - 1) << fmt.man_bits)
    return RefResult(code, -math.inf if negative else math.inf, overflow, False, False)


def _float_nan(fmt: FloatFormat, overflow: bool, nan: bool) -> RefResult:
    return RefResult(_float_nan_code(fmt), math.nan, overflow, False, nan)


def _float_overflowed(fmt: FloatFormat, negative: bool, rounding: Rounding, overflow: Overflow) -> RefResult:
    """The result for a rounded magnitude above max (or an inf input that does not stay inf)."""
    if overflow == Overflow.NAN:
        return _float_nan(fmt, True, False)
    if overflow == Overflow.INF:
        if rounding == Rounding.TOWARD_ZERO:
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


def _quantize_float(fmt, inp, rounding, overflow, key, index, random_bits, nan_zero) -> RefResult:
    if inp.kind == "nan":
        if fmt.has_nan:
            return _float_nan(fmt, False, True)
        if nan_zero:
            return RefResult(0, 0.0, False, False, True)
        raise ValueError(f"quantize_ref: NaN into {fmt}, which has no NaN (pass nan_zero=True for 0)")
    neg = inp.negative
    if inp.kind == "inf":
        if fmt.has_inf and overflow in (Overflow.INF, Overflow.NAN):
            return _float_inf(fmt, neg, False)
        if overflow == Overflow.NAN:
            return _float_nan(fmt, True, False)
        return _float_finite(fmt, neg, _float_max(fmt), True)  # SATURATE, ERROR
    a = inp.mag
    if a == 0:
        return _float_zero(fmt, neg, inp)
    m_bits, emin = fmt.man_bits, fmt.emin
    if not fmt.subnormals and a < _pow2(emin):
        return _float_zero(fmt, neg, inp)  # flush to zero before rounding
    e = _floor_log2(a)
    point = max(e, emin) - m_bits  # the rounding point is 2^point
    scaled = a / _pow2(point)
    if rounding == Rounding.NEAREST_EVEN and m_bits == 0 and e >= emin and scaled == Fraction(3, 2):
        # without fraction bits the code's last bit is the exponent field's:
        # the tie goes to the even code, 2^e if its field e + B is even
        q = 1 if (e + fmt.bias) % 2 == 0 else 2
    else:
        q = round_magnitude(scaled, rounding, neg, key=key, index=index, random_bits=random_bits)
    if q == 0:
        return _float_zero(fmt, neg, inp)
    mag = q * _pow2(point)  # renormalisation is implicit: mag is re-encoded from scratch
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
    top = _pow2(fmt.emax)
    if inp.kind == "inf":
        if neg and not fmt.signed:
            return _pow2_result(fmt, False, Fraction(0), inp, True)
        return _pow2_result(fmt, neg, top, inp, True)
    a = inp.mag
    if a == 0:
        return _pow2_result(fmt, False, Fraction(0), inp, False)
    e = _floor_log2(a)
    k = max(e, fmt.emin)
    m = a / _pow2(k)  # in (0, 1) below 2^emin, in [1, 2) above
    if rounding in _NEAREST and e >= fmt.emin:
        # geometric midpoint 2^(k+1/2): m < sqrt(2) <=> m^2 < 2 (never equal for rational m)
        q = 1 if m * m < 2 else 2
    else:
        # the zero interval (arithmetic midpoint, tie rules), directed modes, stochastic
        q = round_magnitude(m, rounding, neg, key=key, index=index, random_bits=random_bits)
    mag = q * _pow2(k)
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
    magnitude is rounded with :func:`round_magnitude` at the rounding point
    ``2^(max(e, emin) - M)`` and re-encoded (a carry into the next binade moves
    the exponent up). A rounded magnitude above ``max_significand *
    2^(emax - M)`` overflows: ``inf`` gives +-inf for the nearest modes and
    stochastic, +max / -inf for floor, +inf / -max for ceil, +-max for
    toward_zero; ``saturate`` and ``error`` give +-max; ``nan`` gives the
    canonical NaN. +-inf in stays +-inf when the format has inf and the mode is
    ``inf`` or ``nan``, else overflows as above. A zero result has x's sign
    (always +0 in fnuz). NaN in gives the canonical NaN code (ieee
    ``0|1..1|10..0``, fn ``0|1..1|1..1``, fnuz ``1|0..0|0..0``).

    Power of two: magnitudes in ``[2^k, 2^(k+1))`` (k >= emin) round between the
    two powers; the nearest modes split at ``2^(k+1/2)``, decided exactly by
    ``|x|^2`` against ``2^(2k+1)``; magnitudes below ``2^emin`` round between 0
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
            always give their canonical NaN.

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
    5; field 0 is subnormal, or, without subnormals, a zero of the code's sign
    (denormals-are-zero; +0 in fnuz); inf/NaN codes per ``special``. Pow2:
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
        return 0.0 if q == 0 else Fraction(q) * _pow2(-fmt.frac_bits)
    if isinstance(fmt, FloatFormat):
        e_bits, m_bits = fmt.exp_bits, fmt.man_bits
        negative = bool(code >> (e_bits + m_bits))
        field = (code >> m_bits) & ((1 << e_bits) - 1)
        frac = code & ((1 << m_bits) - 1)
        all_e, all_m = (1 << e_bits) - 1, (1 << m_bits) - 1
        if fmt.special == "ieee" and field == all_e:
            if frac == 0:
                return -math.inf if negative else math.inf
            return math.nan
        if fmt.special == "fn" and field == all_e and frac == all_m:
            return math.nan
        if fmt.special == "fnuz" and code == 1 << (e_bits + m_bits):
            return math.nan
        if field == 0:
            if frac == 0 or not fmt.subnormals:
                return _zero(negative and fmt.has_negative_zero)
            mag = frac * _pow2(fmt.emin - m_bits)
        else:
            mag = ((1 << m_bits) + frac) * _pow2(field - fmt.bias - m_bits)
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
        mag = _pow2(fmt.emin + k - 1)
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

    NaN encodes to the canonical NaN code, +-inf to the inf codes (ieee), -0.0
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


# --------------------------------------------------------------------------------------------
# Binary and ternary
# --------------------------------------------------------------------------------------------


def _uniform53(key: int, index: int) -> float:
    """u = (w0 >> 11) * 2^-53, an exact float64 in [0, 1)."""
    return math.ldexp(float(random_word(int(key) & MASK64, index, 0) >> 11), -53)


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
    return 1 if _uniform53(key, index) < p else -1


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
    return float(total / len(values))  # Fraction -> float is correctly rounded (nearest even)


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
        if _uniform53(key, index) < abs(c):
            return 1.0 if c > 0 else -1.0
        return 0.0
    if scale is None:
        raise ValueError(f"ternary_ref: {fmt} needs a TernaryScale (see data_scale_ref)")
    if x > scale.delta:
        return float(scale.pos)
    if x < -scale.delta:
        return -float(scale.neg)
    return 0.0
