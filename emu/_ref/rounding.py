"""The one exact rounding of the references: a rational to an integer, a float grid, a power of two.

Every reference that rounds calls this module; no other reference module
implements a rounding rule (tests/emu/test_ref_structure.py pins it). The rules
are NUMERICS.md section 3 and docs/semantics.md:

- :func:`round_fraction` rounds a signed rational t to an integer under every
  mode of `emu.modes.Rounding` (fixed point: t = x / eps as a two's complement
  quantity). Stochastic rounding draws from the counter-based stream
  (docs/semantics.md, "Stochastic rounding and its random bits").
- :func:`round_magnitude` rounds a magnitude (sign-magnitude significands): the
  deterministic modes act on the signed value, stochastic on the magnitude.
- :func:`round_float` rounds a rational to the grid of a float format
  (``man_bits`` fraction bits, subnormal spacing ``2^(emin - man_bits)`` below
  ``2^emin``, no upper bound: overflow and flush-to-zero are the caller's).
- :func:`round_pow2` rounds a rational to ``{0} U {+-2^k : k >= emin}``.

Values are Python ints and ``fractions.Fraction``; nothing is rounded in
float64.

>>> from emu.formats import FloatFormat
>>> round_fraction(Fraction(5, 2), Rounding.NEAREST_EVEN), round_fraction(Fraction(-5, 2), "nearest_up")
(2, -2)
>>> round_fraction(Fraction(-5, 2), "toward_zero"), round_fraction(Fraction(-5, 2), "floor")
(-2, -3)
>>> round_magnitude(Fraction(5, 2), "floor", negative=True)
3
>>> round_float(Fraction(1, 3), FloatFormat(5, 2))
Fraction(5, 16)
>>> round_float(Fraction(-1, 3), FloatFormat(5, 2), "ceil")
Fraction(-5, 16)
>>> round_pow2(Fraction(3, 2), -4), round_pow2(Fraction(1, 32), -4, "nearest_away")
(Fraction(2, 1), Fraction(1, 16))

Imports: the standard library, ``emu.formats``, ``emu.modes`` and the stream.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

from ..formats import FloatFormat
from ..modes import Rounding, parse_rounding
from . import stream
from .stream import GOLDEN, MASK64, mix64

__all__ = [
    "NEAREST",
    "check_random_bits",
    "floor_log2",
    "pow2",
    "round_float",
    "round_fraction",
    "round_magnitude",
    "round_pow2",
]

#: The round-to-nearest modes (they differ only in their tie rule).
NEAREST = (Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY, Rounding.NEAREST_UP, Rounding.NEAREST_DOWN)
_HALF = Fraction(1, 2)


# --------------------------------------------------------------------------------------------
# Exact binary exponents
# --------------------------------------------------------------------------------------------


def pow2(k: int) -> Fraction:
    """2^k exactly."""
    return Fraction(1 << k) if k >= 0 else Fraction(1, 1 << -k)


def floor_log2(a: Fraction) -> int:
    """floor(log2 a) for a rational a > 0, exactly.

    >>> floor_log2(Fraction(3, 8)), floor_log2(Fraction(1, 4)), floor_log2(Fraction(7))
    (-2, -2, 2)
    """
    a = Fraction(a)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if a < pow2(e):
        e -= 1
    return e


# --------------------------------------------------------------------------------------------
# Stochastic decision
# --------------------------------------------------------------------------------------------


def check_random_bits(rounding: Rounding, random_bits: int | None) -> None:
    """Validate ``random_bits``: an int in 1..64, and only with stochastic rounding (None passes).

    Raises:
        TypeError: not an int (bool included).
        ValueError: with a non-stochastic mode, or outside 1..64.
    """
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

    Word ``w0`` is read as ``stream.random_word`` (one place to stand in for the stream).

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
        u = stream.random_word(key, index, 0) >> (64 - r)
        return big_f > u
    j = 0
    w = stream.random_word(key, index, 0)
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
# Rationals to integers
# --------------------------------------------------------------------------------------------


def _round_signed(t: Fraction, rounding: Rounding, key: int, index: int, random_bits: int | None) -> int:
    lo = math.floor(t)
    frac = t - lo
    if frac == 0:
        return lo
    if rounding in NEAREST:
        if frac < _HALF:
            return lo
        if frac > _HALF:
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
    if rounding == Rounding.TO_ODD:
        return lo if lo % 2 else lo + 1
    if rounding == Rounding.STOCHASTIC:
        return lo + 1 if _stochastic_up(frac, key, index, random_bits) else lo
    raise ValueError(f"round_fraction: unknown rounding {rounding!r}")  # pragma: no cover


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
      t >= 0, ceil for t < 0; to_odd: t when it is an integer, else the odd one
      of lo and lo + 1.
    - stochastic: lo if frac = 0, else lo + 1 when the random stream says "up"
      for frac (see ``random_bits``), so P(up) = frac (or floor(frac * 2^r) /
      2^r with ``random_bits=r``).

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
    check_random_bits(rounding, random_bits)
    return _round_signed(Fraction(t), rounding, key, index, random_bits)


def _round_mag(m: Fraction, rounding: Rounding, negative: bool, key: int, index: int,
               random_bits: int | None) -> int:
    if rounding == Rounding.STOCHASTIC:
        return _round_signed(m, rounding, key, index, random_bits)  # on the magnitude itself
    return abs(_round_signed(-m if negative else m, rounding, key, index, random_bits))


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
    check_random_bits(rounding, random_bits)
    m = Fraction(m)
    if m < 0:
        raise ValueError(f"round_magnitude: m={m} must be >= 0")
    return _round_mag(m, rounding, bool(negative), key, index, random_bits)


# --------------------------------------------------------------------------------------------
# Rationals to a float grid and to powers of two
# --------------------------------------------------------------------------------------------


def round_float(
    x: Fraction,
    fmt: FloatFormat,
    rounding: Rounding = Rounding.NEAREST_EVEN,
    *,
    key: int = 0,
    index: int = 0,
    random_bits: int | None = None,
) -> Fraction:
    """Round a signed rational to the grid of a float format, exactly.

    With ``e = floor(log2 |x|)`` the rounding point is ``2^(max(e, emin) - M)``
    (M = ``fmt.man_bits``): the magnitude's significand is rounded with
    :func:`round_magnitude` (directed modes act on the signed value, stochastic
    on the magnitude) and a carry into the next binade is simply the next grid
    point. Without fraction bits (M = 0) a nearest_even tie of a normal value
    has the significand 3/2, which goes to the even integer 2 (the larger
    power of two, as ml_dtypes' E8M0 rounds), except in P3109 formats
    (`FloatFormat.ties_by_code`, gfloat's rule), where it goes to the even
    code, the power of two whose exponent field ``e + bias`` is even; to_odd
    picks the odd code. The grid has no upper end and always has the subnormal
    spacing below ``2^emin``: overflow, infinities and flush-to-zero of a
    format without subnormals are the caller's rules (and so are the sign of
    an unsigned format and the missing zero of E8M0, whose emin is -B).

    Args:
        x: the value (anything ``Fraction`` accepts exactly).
        fmt: the float format (``man_bits``, ``emin``, ``bias`` are read).
        rounding: the mode (member or name).
        key, index, random_bits: the random stream (stochastic only).

    Returns:
        The rounded value as a ``Fraction`` (0 when it rounds to zero: the sign
        of a zero is the caller's).
    """
    rounding = parse_rounding(rounding, "round_float")
    check_random_bits(rounding, random_bits)
    x = Fraction(x)
    if x == 0:
        return Fraction(0)
    neg = x < 0
    a = -x if neg else x
    e = floor_log2(a)
    point = max(e, fmt.emin) - fmt.man_bits
    scaled = a / pow2(point)
    if rounding == Rounding.NEAREST_EVEN and fmt.ties_by_code and e >= fmt.emin and scaled == Fraction(3, 2):
        q = 1 if (e + fmt.bias) % 2 == 0 else 2  # the even code: the exponent field's parity
    elif rounding == Rounding.TO_ODD and fmt.man_bits == 0 and e >= fmt.emin and scaled != 1:
        q = 1 if (e + fmt.bias) % 2 else 2  # the odd code: the exponent field's parity
    else:
        q = _round_mag(scaled, rounding, neg, key, index, random_bits)
    mag = q * pow2(point)
    return -mag if neg else mag


def round_pow2(
    x: Fraction,
    emin: int,
    rounding: Rounding = Rounding.NEAREST_EVEN,
    *,
    key: int = 0,
    index: int = 0,
    random_bits: int | None = None,
) -> Fraction:
    """Round a signed rational to ``{0} U {+-2^k : k >= emin}`` (docs/semantics.md, "Power of two").

    Magnitudes in ``[2^k, 2^(k+1))`` (k >= emin) round between the two powers;
    the nearest modes split at the geometric midpoint ``2^(k+1/2)``, decided
    exactly by ``|x|^2`` against ``2^(2k+1)`` (never a tie); magnitudes below
    ``2^emin`` round between 0 and ``2^emin`` at the arithmetic midpoint with
    the ordinary tie rules. Directed modes act on the signed value; stochastic
    picks the upper neighbour with probability ``(|x| - lo) / (hi - lo)``;
    to_odd picks the neighbour whose code K (2^k: K = k - emin + 1; 0: K = 0)
    is odd. No upper bound (overflow and unsigned formats are the caller's).

    Returns:
        0 or ``+-2^k`` as a ``Fraction``.
    """
    rounding = parse_rounding(rounding, "round_pow2")
    check_random_bits(rounding, random_bits)
    x = Fraction(x)
    if x == 0:
        return Fraction(0)
    neg = x < 0
    a = -x if neg else x
    e = floor_log2(a)
    k = max(e, emin)
    m = a / pow2(k)  # in (0, 1) below 2^emin, in [1, 2) above
    if rounding in NEAREST and e >= emin:
        q = 1 if m * m < 2 else 2  # m < sqrt(2), never equal for a rational m
    elif rounding == Rounding.TO_ODD and e >= emin and m != 1:
        q = 1 if (k - emin) % 2 == 0 else 2  # the odd code: 2^k has the code K = k - emin + 1
    else:
        q = _round_mag(m, rounding, neg, key, index, random_bits)
    mag = q * pow2(k)
    return -mag if neg else mag
