"""The rounding core: every rounding rule of emu's numba kernels, in one module.

- The random stream of stochastic rounding (`mix64`, `first_word`; docs/semantics.md
  "Stochastic rounding and its random bits").
- `round_mag`: an unsigned 64-bit magnitude shifted right by s bits, rounded to an
  integer under every mode of `emu.modes.Rounding` (stochastic included), exactly:
  the remainder's top 64 bits plus a sticky flag decide; integer conversions,
  power-of-two conversions and the datapaths' stochastic products call it.
- `fround` / `fround_ne`: a float64 rounded to a float format's grid in a
  deterministic mode with the format's overflow rule (`float_overflow`), by bit
  operations on the float64 (`float_params` packs a format and modes for it); the
  float conversions and the float datapaths call it. `fround_ne_add`: nearest even
  by one float64 addition at the grid's scale, for the formats it covers
  (`fround_ne_add_applies`, `fround_ne_add_covers`): the float accumulators, the
  fused steps and the fast float conversions.
- `rint_even`, `rint_side`, `rint_mode`, `div_rne`, `round_grid_ne`: a
  float64 rounded to an integer or to a float grid where the value is held in a float64
  (the fixed conversions' fast path, the block encoders, the block accumulator's result).

Worked example: ``round_mag(U64(0b1011), 2, False, NE, ...)`` is 0b10 + 1 = 3
(2.75 rounds up). Imports numpy, numba and the modes' integer values.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ._nans import nan_keep_mask
from .modes import Overflow, Rounding

U64 = np.uint64
_ONE = U64(1)
_ZERO = U64(0)
_HALF = U64(1 << 63)
_ALL = U64(0xFFFFFFFFFFFFFFFF)
_GAMMA = U64(0x9E3779B97F4A7C15)
_M1 = U64(0xBF58476D1CE4E5B9)
_M2 = U64(0x94D049BB133111EB)
_FRAC_MASK = U64((1 << 52) - 1)
_HIDDEN = U64(1 << 52)
#: floor(sqrt(2) * 2^63): the geometric midpoint of a binade, as a 64-bit significand.
_SQRT2_Q63 = U64(0xB504F333F9DE6484)

_NE = int(Rounding.NEAREST_EVEN)
_NA = int(Rounding.NEAREST_AWAY)
_NU = int(Rounding.NEAREST_UP)
_ND = int(Rounding.NEAREST_DOWN)
_FLOOR = int(Rounding.FLOOR)
_TZ = int(Rounding.TOWARD_ZERO)
_CEIL = int(Rounding.CEIL)
_SR = int(Rounding.STOCHASTIC)
_TO = int(Rounding.TO_ODD)

_SAT = int(Overflow.SATURATE)
_WRAP = int(Overflow.WRAP)
_ERR = int(Overflow.ERROR)
_INF = int(Overflow.INF)
_NAN = int(Overflow.NAN)


@njit(cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """splitmix64's finaliser (a bijection of 64-bit words)."""
    z = (z ^ (z >> U64(30))) * _M1
    z = (z ^ (z >> U64(27))) * _M2
    return z ^ (z >> U64(31))


@njit(cache=True)
def first_word(key: np.uint64, index: np.int64) -> np.uint64:
    """w0 of element ``index``: mix64(key + (index + 1) * G)."""
    return mix64(key + (U64(index) + _ONE) * _GAMMA)


@njit(cache=True)
def bitlen(x: np.uint64) -> np.int64:
    """Number of significant bits of x (0 for 0)."""
    if x == _ZERO:
        return 0
    est = np.int64(math.frexp(np.float64(x))[1])  # float(x) = m * 2^est, m in [0.5, 1)
    if est > 64:
        est = 64
    if (x >> U64(est - 1)) == _ZERO:
        est -= 1
    return est


@njit(cache=True)
def _chunk(mag: np.uint64, s: np.int64, j: np.int64) -> tuple[np.uint64, bool]:
    """Word j (0 = first) of the binary fraction (mag mod 2^s) / 2^s, and whether
    no nonzero bits of the fraction lie below that word."""
    k = 64 * (j + 1) - s  # the word is floor(mag * 2^k) mod 2^64
    if k >= 64:
        return _ZERO, True
    if k >= 0:
        return mag << U64(k), True
    if k <= -64:
        return _ZERO, mag == _ZERO
    return mag >> U64(-k), (mag << U64(64 + k)) == _ZERO


@njit(cache=True)
def _sr_less(first: np.uint64, sticky: bool, mag: np.uint64, s: np.int64, negated: bool,
             key: np.uint64, index: np.int64, rbits: np.int64) -> bool:
    """Whether the element's uniform U = 0.w0 w1 ... is below the fraction f.

    ``first`` is floor(f * 2^64), ``sticky`` whether f has bits below it. f is
    frac_m = (mag mod 2^s) / 2^s, or 1 - frac_m when ``negated``. With
    ``rbits`` = r in 1..64 only r bits are compared: floor(f 2^r) > w0 >> (64-r).
    """
    w = first_word(key, index)
    if rbits > 0:
        sh = U64(64 - rbits)
        return (first >> sh) > (w >> sh)
    if w != first:
        return w < first
    if not sticky:
        return False
    j = 1
    while True:
        w = mix64(w + _GAMMA)
        c, ends = _chunk(mag, s, j)
        if negated:
            c = ~c + (_ONE if ends else _ZERO)
        if w != c:
            return w < c
        if ends:
            return False
        j += 1


@njit(cache=True)
def round_mag(mag: np.uint64, s: np.int64, neg: bool, mode: np.int64, signed_sr: bool,
              key: np.uint64, index: np.int64, rbits: np.int64,
              odd_flip: np.uint64) -> tuple[np.uint64, bool]:
    """Round mag / 2^s to an integer magnitude; return it and a "too big" flag.

    Directed and tie rules act on the signed value (-1)^neg * mag / 2^s.
    Stochastic rounding acts on the signed value's fraction when ``signed_sr``
    (two's complement fixed point) and on the magnitude's otherwise. Ties to
    even and to odd pick by the parity of the lower candidate's code, q ^
    ``odd_flip``: ``odd_flip`` is 0 (the integer q's own parity: the even
    significand) except where the code's last bit is a float's exponent field
    (M = 0: for to_odd, and for ties to even in P3109 formats,
    `FloatFormat.ties_by_code`) or a power of two's. When the
    exact result needs more than 64 bits the flag is set and the low 64 bits
    are returned (enough for wrapping).
    """
    if mag == _ZERO:
        return _ZERO, False
    if s <= 0:
        k = -s
        if k >= 64:
            return _ZERO, True
        if k > 0 and (mag >> U64(64 - k)) != _ZERO:
            return mag << U64(k), True
        return mag << U64(k), False
    sticky = False
    if s < 64:
        q = mag >> U64(s)
        first = mag << U64(64 - s)
    elif s == 64:
        q = _ZERO
        first = mag
    else:
        q = _ZERO
        d = s - 64
        if d < 64:
            first = mag >> U64(d)
            sticky = (mag << U64(64 - d)) != _ZERO
        else:
            first = _ZERO
            sticky = True
    if first == _ZERO and not sticky:
        return q, False
    if mode == _NE:
        up = first > _HALF or (first == _HALF and (sticky or ((q & _ONE) ^ odd_flip) == _ONE))
    elif mode == _NA:
        up = first >= _HALF
    elif mode == _NU:
        up = first > _HALF or (first == _HALF and (sticky or not neg))
    elif mode == _ND:
        up = first > _HALF or (first == _HALF and (sticky or neg))
    elif mode == _FLOOR:
        up = neg
    elif mode == _CEIL:
        up = not neg
    elif mode == _TZ:
        up = False
    elif mode == _TO:
        up = ((q & _ONE) ^ odd_flip) == _ZERO
    elif signed_sr and neg:
        # P(toward +inf) = 1 - frac_m: toward +inf is the smaller magnitude.
        first_s = ~first + (_ZERO if sticky else _ONE)
        up = not _sr_less(first_s, sticky, mag, s, True, key, index, rbits)
    else:
        up = _sr_less(first, sticky, mag, s, False, key, index, rbits)
    return q + (_ONE if up else _ZERO), False


@njit(cache=True)
def float_overflow(neg: bool, mode: np.int64, ovf: np.int64) -> np.int64:
    """Result class of an overflowing magnitude: 0 = max finite, 1 = inf, 2 = NaN."""
    if ovf == _NAN:
        return 2
    if ovf != _INF:
        return 0
    if mode == _TZ or mode == _TO or (mode == _FLOOR and not neg) or (mode == _CEIL and neg):
        return 0
    return 1


_SIGN = U64(1 << 63)
_ABS = U64((1 << 63) - 1)
_TINY = np.float64(5e-324)  # the smallest positive float64
_EXP_ALL = U64(0x7FF0000000000000)
_QNAN = U64(0x7FF8000000000000)
_TWO52 = 4503599627370496.0


@njit(cache=True)
def _mag_mode(mode: np.int64, neg: bool) -> np.int64:
    """The magnitude rule of a signed mode: 0 trunc, 1 up, 2 ties up, 3 ties down, 4 ties even, 5 to odd."""
    if mode == _NE:
        return 4
    if mode == _NA:
        return 2
    if mode == _NU:
        return 3 if neg else 2
    if mode == _ND:
        return 2 if neg else 3
    if mode == _FLOOR:
        return 1 if neg else 0
    if mode == _CEIL:
        return 0 if neg else 1
    if mode == _TO:
        return 5
    return 0


@njit(cache=True)
def _fround(x, prm, ne):
    """`fround`; ``ne``, a constant in each caller: the mode is nearest even for both signs."""
    # by field name: ``prm`` is a `FroundParams` or a record that extends its fields
    shift, low, parity_flip = prm.shift, prm.low, prm.parity_flip
    b = np.float64(x).view(np.uint64)
    a = b & _ABS
    sign = b & _SIGN
    neg = sign != _ZERO
    inc = (prm.inc_neg if neg else prm.inc_pos) + (
        (((a >> shift) & _ONE) ^ parity_flip) & (prm.even_neg if neg else prm.even_pos))
    r = (a + inc) & ~low
    av = np.abs(x) * prm.up_scale  # below 2^M where it is used
    n = rint_even(av)
    if not ne:  # selects only, no branch on the element: loops over this vectorise
        # a format with emin > M scales down (up_scale < 1): an input below 2^(emin - M - 1074) vanishes;
        # any positive amount below half a step rounds as it does in every mode (n = 0, d > 0)
        av = av if (av != 0.0) | (a == _ZERO) else _TINY
        mm = prm.mm_neg if neg else prm.mm_pos
        d = av - n  # exact, in [-1/2, 1/2]
        odd = mm == 5
        up = ((mm == 1) & (d > 0.0)) | ((mm == 2) & (d == 0.5))
        down = (((mm == 0) | odd) & (d < 0.0)) | ((mm == 3) & (d == -0.5))
        n += (1.0 if up else 0.0) - (1.0 if down else 0.0)  # float selects: AVX2 converts no int64
        # to odd: the truncation, moved up one code when inexact and even
        even = (((r >> shift) & _ONE) ^ parity_flip) == _ZERO
        r += (_ONE << shift) if odd & ((a & low) != _ZERO) & even else _ZERO
        half = n * 0.5  # n is an integer below 2^53: n is even when n / 2 is an integer
        n += 1.0 if odd & (av != n) & (half == np.floor(half)) else 0.0
    rs = np.float64(n * prm.down_scale).view(np.uint64)
    rs = rs if prm.subnormals else _ZERO
    r = rs if a < prm.min_normal else r
    special = a >= _EXP_ALL
    isnan = a > _EXP_ALL
    over = ((r > prm.max_bits) & ~special) | (special & ~isnan & ~prm.keep_inf)
    r = (prm.ovr_neg if neg else prm.ovr_pos) if over else r
    r = a if special & (isnan | prm.keep_inf) else r
    drop_sign = ((r == _ZERO) & ~prm.nzero) | (r == _QNAN) | isnan
    return np.uint64(r | (_ZERO if drop_sign else sign)).view(np.float64), over


@njit(cache=True)
def conversion_nan(b, prm):
    """The float64 bits of a conversion's NaN result (`nan_keep_mask` through ``prm.nan_keep``) for an
    input with bits b: a NaN input's kept bits, the quiet bit set where no fraction bit is kept; a value
    that overflowed to NaN, the quiet NaN with its sign where NaN codes have one. `fround` itself gives a
    NaN result without sign (the arithmetic's NaN); the conversions set these afterwards, in a pass over
    their NaN results only (NaN is rare: the loops over every element keep their operations)."""
    keep = prm.nan_keep
    rn = (b & keep) if (b & _ABS) > _EXP_ALL else ((b & _SIGN & keep) | _QNAN)
    return np.uint64((rn | _QNAN) if (rn & _ABS) == _EXP_ALL else rn).view(np.float64)


@njit(cache=True)
def fround(x, prm):
    """Round a float64 to a float format in a deterministic mode; return (value, overflowed).

    ``prm`` comes from `float_params`. Normal results: the mode's increment is
    added to the bits and the dropped bits cleared; results below 2^emin: the
    magnitude in units of 2^(emin - M) is rounded to an integer by the
    hardware's nearest-even addition of 2^52 (no fastmath anywhere), and the
    mode moves that integer by one where the exact remainder asks for it. NaN
    stays NaN; inf stays inf where the format keeps it.
    """
    return _fround(x, prm, False)


@njit(cache=True)
def fround_ne(x, prm):
    """`fround` for nearest even (``prm`` of that mode): the integer from the 2^52 addition is the result."""
    return _fround(x, prm, True)


_U52 = U64(52)


@njit(cache=True)
def fround_ne_add(x, prm):
    """`fround_ne` by one float64 addition at the grid's scale, for the formats `fround_ne_add_applies`
    accepts (``prm`` of nearest even): the same bits and overflow flag, in about half the operations.

    A magnitude |x| in the binade [2^E, 2^(E+1)) of a format with M fraction bits lies on a grid of step
    2^(E-M). With C = 2^(E+52-M), whose float64 step is that grid step, |x| + C stays in C's binade
    (|x| < 2^(E+1) <= C), so float64's own nearest-even addition rounds |x| to the grid, and subtracting C
    is exact. E is clamped to [emin, emax]: below 2^emin the grid is the subnormals' (the same C, so a
    subnormal rounds up into the smallest normal as it should); above the format's range the rounded value
    still exceeds the largest one (the addition is monotone), so it overflows by the format's rule. NaN
    and inf pass through the addition unchanged and are then treated as `fround` treats them. Selects
    and bit operations only: loops over it vectorise.

    Worked example, bf16 (M = 7): x = 1.505859375 is 192.75 steps of 2^-7; C = 2^45 (float64 step 2^-7),
    x + C rounds to C + 193 * 2^-7, and the result is 193 * 2^-7 = 1.5078125.
    """
    b = np.float64(x).view(np.uint64)
    sign = b & _SIGN
    ax = np.abs(x)
    fmax = np.uint64(prm.max_bits).view(np.float64)
    fmin = np.uint64(prm.min_normal).view(np.float64)
    t = min(max(ax, fmin), fmax)  # a NaN gives either bound: its C is irrelevant
    c = np.uint64((np.float64(t).view(np.uint64) & _EXP_ALL) + (prm.shift << _U52)).view(np.float64)
    rf = (ax + c) - c
    rf = rf if prm.subnormals | (ax >= fmin) else 0.0  # a format without subnormals flushes
    isnan = ax != ax
    over = (rf > fmax) & ~((ax == np.inf) & prm.keep_inf)
    r = np.float64(rf).view(np.uint64)
    r = (prm.ovr_neg if sign != _ZERO else prm.ovr_pos) if over else r
    r = (b & _ABS) if isnan else r
    drop_sign = ((r == _ZERO) & ~prm.nzero) | (r == _QNAN) | isnan
    return np.uint64(r | (_ZERO if drop_sign else sign)).view(np.float64), over


@njit(cache=True)
def fround_ne_add_covers(prm):
    """`fround_ne_add_applies` read from a format's `fround` parameters, for kernels that receive only
    those: 1 <= M <= 49 (52 - M in [3, 51]), 2^(E+52-M) a float64 normal for E = emin and E = emax,
    the exponent fields of 2^emin and of the largest value, and 2^emin no larger than the largest value
    (a format whose values are all subnormal, fp<1,M>, rounds by `fround`)."""
    shift = np.int64(prm.shift)
    return (3 <= shift <= 51 and np.int64(prm.min_normal >> _U52) + shift >= 1
            and np.int64(prm.max_bits >> _U52) + shift <= 2046 and prm.min_normal <= prm.max_bits)


def fround_ne_add_applies(fmt) -> bool:
    """Whether `fround_ne_add` rounds ``fmt`` (a signed FloatFormat): at least one fraction bit (formats
    without one round by `fround`), at most 49 (|x| + C stays in C's binade), and constants
    C = 2^(E+52-M) that are normal float64s for every E in [emin, emax]."""
    m = fmt.man_bits
    return (1 <= m <= 49 and fmt.emin + 52 - m >= -1022 and fmt.emax + 52 - m <= 1023
            and fmt.has_normals)  # without normals (fp<1,M>) its clamp would pick a wrong C


@njit(cache=True)
def _is_ne(prm):
    """Whether ``prm`` rounds to nearest even for both signs."""
    return prm.mm_pos == 4 and prm.mm_neg == 4


class FroundParams(NamedTuple):
    """The parameters of `fround` for a float format and a mode pair, as a named record (numba passes it
    as a struct): the float64 bit layout of the format's grid, the mode's increments, and the overflow
    results by sign."""

    shift: np.uint64  # 52 - M: float64 fraction bits below the format's last one
    low: np.uint64  # mask of those bits
    min_normal: np.uint64  # float64 bits of 2^emin
    up_scale: float  # 2^(M - emin): magnitudes below 2^emin in units of the subnormal step
    down_scale: float  # 2^(emin - M)
    inc_pos: np.uint64  # the increment added to the bits before clearing the low ones, x >= 0
    inc_neg: np.uint64  # the same for x < 0
    even_pos: np.uint64  # 1 where ties go to even (the kept bit decides), x >= 0
    even_neg: np.uint64
    mm_pos: np.int64  # the magnitude rule by sign (0 truncate, 1 up, 2 ties up, 3 ties down, 4 ties even,
    # 5 to odd)
    mm_neg: np.int64
    max_bits: np.uint64  # float64 bits of the largest finite value
    ovr_pos: np.uint64  # float64 bits of the result of a positive overflow
    ovr_neg: np.uint64
    subnormals: bool
    nzero: bool  # the format has -0
    keep_inf: bool  # an infinite input stays infinite
    parity_flip: np.uint64  # M = 0: the code's last bit is the exponent field's, of the other parity
    nan_keep: np.uint64  # the bits of a NaN input the result keeps (`nan_keep_mask`)


@functools.lru_cache(maxsize=256)
def float_params(fmt, mode: int, ovf: int, conversion: bool = False) -> FroundParams:
    """The parameters of `fround` for a FloatFormat (52 - M >= 2, normals inside float64's), with the NaN
    bits `conversion_nan` keeps for a ``conversion`` or for arithmetic (`nan_keep_mask`).

    Signed formats only: `fround` keeps the sign of its input, and the datapaths that round through it
    (float accumulators, products, operands rounded straight to binary32) have no rule for negative values
    in an unsigned format, so those refuse one here (convert unsigned formats with `emu.quantize`).
    """
    if not fmt.signed:
        raise ValueError(f"{fmt} has signed=False; this float arithmetic (accumulator, product, operand"
                         " rounding) takes signed float formats only (signed=True)")
    m = fmt.man_bits
    shift = 52 - m
    low = (1 << shift) - 1
    half = 1 << (shift - 1)
    mm_pos, mm_neg = _mag_mode(mode, False), _mag_mode(mode, True)

    sig_ties = m == 0 and not fmt.ties_by_code  # nearest even: a tie's significand 3/2 rounds up to 2

    def inc(mm: int) -> int:
        return [0, low, half, half - 1, half if sig_ties else half - 1, 0][mm]

    def ovr(cls: int) -> int:
        max_bits = int(np.float64(fmt.max).view(np.uint64))
        return [max_bits, int(_EXP_ALL), int(_QNAN)][cls]

    keep_inf = fmt.has_inf and ovf in (_INF, _NAN)
    return FroundParams(
        U64(shift), U64(low), U64((fmt.emin + 1023) << 52), np.ldexp(1.0, m - fmt.emin),
        np.ldexp(1.0, fmt.emin - m), U64(inc(mm_pos)), U64(inc(mm_neg)), U64(mm_pos == 4 and not sig_ties),
        U64(mm_neg == 4 and not sig_ties),
        np.int64(mm_pos), np.int64(mm_neg), np.float64(fmt.max).view(np.uint64),
        U64(ovr(float_overflow(False, mode, ovf))), U64(ovr(float_overflow(True, mode, ovf))),
        bool(fmt.subnormals), bool(fmt.has_negative_zero), bool(keep_inf),
        # code parity without fraction bits (to odd; P3109's ties): the kept bit is float64's exponent
        # LSB; the format's field e + B has the same parity as float64's e + 1023 only when B is odd
        U64(1 if m == 0 and (fmt.bias + 1023) % 2 else 0), U64(nan_keep_mask(fmt, conversion)),
    )




@njit(cache=True)
def nudged(x, d, half_mask):
    """x, or x moved one float64 step toward the sign of d where that makes `fround` round the exact
    value x + delta (delta a real of d's sign, smaller than half a float64 step of x) as it should.

    Between two neighbouring points h1 < h2 of a float format's half-grid (its values and the midpoints
    between them) x and x + delta round alike in every deterministic mode; only where x is such a point
    and d != 0 do they part, and then the float64 one step from x toward d lies strictly between x and
    the next point (formats of at most 50 fraction bits) and rounds as x + delta. ``half_mask`` (from
    `half_grid_mask`) holds the float64 fraction bits below the format's half-step: x is on the half-grid
    of its binade when they are zero (exactly so for the format's normals; below its smallest normal the
    test is also true at a few other values, whose move is harmless: they stay strictly between the same
    two points). x = 0 is returned as it is (callers pass d = 0 with it). Bit operations and selects
    only, so loops over it vectorise.

    >>> float(nudged(1.0, -1e-30, half_grid_mask(2)))  # 1.0 is an e.g. fp<5,2> value: step down
    0.9999999999999999
    >>> float(nudged(1.0 + 2.0 ** -40, -1e-30, half_grid_mask(2)))  # not on the half-grid: unchanged
    1.0000000000009095
    """
    b = np.float64(x).view(np.uint64)
    a = b & _ABS
    away = ((np.float64(d).view(np.uint64) ^ b) & _SIGN) == _ZERO
    move = (d != 0.0) & ((a & half_mask) == _ZERO) & (a < _EXP_ALL) & (a != _ZERO)
    step = (_ONE if away else _ALL) if move else _ZERO
    return np.uint64(b + step).view(np.float64)


def half_grid_mask(man_bits: int) -> np.uint64:
    """The float64 fraction bits below the half-step of a format with ``man_bits`` fraction bits (<= 50)."""
    return U64((1 << (52 - man_bits - 1)) - 1)


@njit(cache=True)
def round_shift(p: np.int64, s: np.int64, mode: np.int64) -> np.int64:
    """Round the integer p / 2^s (s >= 1) to an integer with a deterministic mode."""
    if s >= 63:  # |p| < 2^62: the value lies in (-1/2, 1/2)
        if mode == _FLOOR:
            return np.int64(-1) if p < 0 else np.int64(0)
        if mode == _CEIL:
            return np.int64(1) if p > 0 else np.int64(0)
        if mode == _TO:
            return np.int64(1) if p > 0 else np.int64(-1) if p < 0 else np.int64(0)
        return np.int64(0)
    q = p >> s
    r = p - (q << s)
    half = np.int64(1) << (s - 1)
    if mode == _NE:
        up = (r > half) | ((r == half) & ((q & 1) == 1))
    elif mode == _NA:
        up = (r > half) | ((r == half) & (q >= 0))
    elif mode == _NU:
        up = r >= half
    elif mode == _ND:
        up = r > half
    elif mode == _FLOOR:
        up = False
    elif mode == _CEIL:
        up = r != 0
    elif mode == _TO:
        up = (r != 0) & ((q & 1) == 0)
    else:  # toward zero
        up = (r != 0) & (q < 0)
    return q + np.int64(1) if up else q


@njit(cache=True)
def fround_sr(x, prm, emin, man_bits, key, idx):
    """Round a float64 to a float format stochastically (on the magnitude's dropped significand bits, with
    the random words of element ``idx`` of the key's stream, as `quantize` does), then apply the format's
    overflow rule: ``prm`` are `fround`'s parameters of nearest even with the overflow mode, which leave
    every value on the format's grid unchanged and overflow exactly where a rounded magnitude passes the
    largest finite value. Returns (value, overflowed)."""
    if x == 0.0 or not np.isfinite(x):
        return fround(x, prm)
    b = np.float64(x).view(np.uint64)
    neg = (b >> U64(63)) != _ZERO
    field = np.int64((b >> U64(52)) & U64(0x7FF))
    frac = b & U64((1 << 52) - 1)
    mag = frac if field == 0 else frac | U64(1 << 52)
    e2 = np.int64(-1074) if field == 0 else field - 1075  # |x| = mag * 2^e2
    top = e2 + 63
    while (mag >> U64(top - e2)) == _ZERO:  # floor(log2 |x|)
        top -= 1
    point = max(top, emin) - man_bits  # the rounding point's exponent
    s = point - e2
    if s <= 0:
        return fround(x, prm)
    q, _ = round_mag(mag, s, neg, _SR, False, U64(key), idx, 0, _ZERO)
    r = np.ldexp(np.float64(q), point)
    return fround(-r if neg else r, prm)


# --- a float64 rounded to an integer ----------------------------------------------------------------


@njit(cache=True)
def rint_even(t):
    """0 <= t < 2^52 rounded to the nearest integer, ties to even: the hardware's nearest-even addition of
    2^52 (exact; nothing here is compiled with fastmath).

    >>> float(rint_even(2.5)), float(rint_even(3.5)), float(rint_even(2.25))
    (2.0, 4.0, 2.0)
    """
    return (t + _TWO52) - _TWO52


@njit(cache=True, inline="always")
def pow2(k):
    """2.0^k for -1022 <= k <= 1023, from its bits, inlined where it is called (no call, so loops over it
    vectorise).

    >>> float(pow2(-3)), float(pow2(10))
    (0.125, 1024.0)
    """
    return np.uint64((k + 1023) << 52).view(np.float64)


@njit(cache=True)
def rint_side(t, dirn):
    """0 <= t < 2^53, the float64 nearest to an exact value, rounded to the nearest integer, ties to even;
    ``dirn`` (-1, 0, +1) says on which side of t the exact value lies, which decides where t is a
    midpoint (t + 1/2 is exact there).

    >>> float(rint_side(2.5, 0)), float(rint_side(2.5, 1)), float(rint_side(3.5, -1))
    (2.0, 3.0, 3.0)
    """
    f = math.floor(t)
    d = t - f
    up = d > 0.5 or (d == 0.5 and (dirn > 0 or (dirn == 0 and (np.int64(f) & 1) == 1)))
    return f + 1.0 if up else f


@njit(cache=True)
def rint_mode(t, mode):
    """A float64 t rounded to an integer (a float64) in a deterministic mode.

    r = rint(t) and e = t - r are exact for every float64 t (|e| <= 1/2; for |t| < 1 by Sterbenz's
    lemma), so each mode is r moved by the sign of e, and a tie (|e| = 1/2) chooses between r and r + 2e.

    >>> [float(rint_mode(-2.5, int(m))) for m in (Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY,
    ...                                            Rounding.FLOOR, Rounding.TOWARD_ZERO)]
    [-2.0, -3.0, -3.0, -2.0]
    """
    r = np.rint(t)
    e = t - r
    if mode == _NE:
        return r
    if mode <= _ND:
        other = r + 2.0 * e
        tie = (e == 0.5) | (e == -0.5)
        if mode == _NA:
            pick = abs(other) > abs(r)
        elif mode == _NU:
            pick = other > r
        else:
            pick = other < r
        return other if tie & pick else r
    down = r - 1.0 if e < 0.0 else r
    up = r + 1.0 if e > 0.0 else r
    if mode == _FLOOR:
        return down
    if mode == _CEIL:
        return up
    if mode == _TO:
        return down if np.fmod(down, 2.0) != 0.0 else up
    return down if t > 0.0 else up


@njit(cache=True)
def div_rne(x, s):
    """round_even(x / s) of the exact quotient (x, s float64, s > 0, |x / s| < 2^52), as a float64: the
    float64 quotient t decides except at a midpoint f + 1/2, where the exact product (f + 1/2) s tells
    on which side x lies (exact for f < 2^17 and s of at most 31 significant bits, the scaled-integer
    encoders' case).

    >>> float(div_rne(5.0, 2.0)), float(div_rne(7.0, 2.0)), float(div_rne(-7.0, 2.0))
    (2.0, 4.0, -4.0)
    """
    a = abs(x)
    t = a / s
    f = math.floor(t)
    dirn = 0
    if t - f == 0.5:
        p = (f + 0.5) * s
        dirn = 1 if a > p else (-1 if a < p else 0)
    r = rint_side(t, dirn)
    return -r if x < 0 else r


@njit(cache=True)
def on_midpoint(a, M, emin):
    """Whether a > 0 lies exactly halfway between two neighbours of the grid of a float format with M
    fraction bits and smallest normal exponent emin (no range limit)."""
    if a == 0.0:
        return False
    m, ex = math.frexp(a)
    qe = max(ex - 1, emin) - M
    t = math.ldexp(a, -qe)
    return t - math.floor(t) == 0.5


@njit(cache=True)
def round_grid_ne(a, dirn, M, emin, maxval):
    """A magnitude a >= 0 (finite, the float64 nearest to an exact value on side ``dirn`` of it, as in
    `rint_side`) rounded to the grid of a float format (M fraction bits, smallest normal exponent emin,
    largest value maxval; any exponent range), ties to the even significand, saturating; returns
    (value, saturated). For formats whose grid `fround` cannot hold (normals beyond float64's).

    >>> round_grid_ne(2.5, 0, 1, -6, 448.0), round_grid_ne(1000.0, 0, 3, -6, 448.0)
    ((2.0, False), (448.0, True))
    """
    if a == 0.0:
        return 0.0, False
    m, ex = math.frexp(a)
    e = ex - 1
    qe = max(e, emin) - M
    t = math.ldexp(a, -qe)
    if t >= 9007199254740992.0:  # far beyond the format: saturate
        return maxval, True
    v = math.ldexp(rint_side(t, dirn), qe)
    if v > maxval:
        return maxval, True
    return v, False
