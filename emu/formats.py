"""Number-format descriptors: one frozen dataclass per family.

A format is a finite set of integer codes, each standing for one exact value
(NUMERICS.md section 1). The descriptors here hold a few primary fields,
validated on construction; everything else (range, step, code limits) is a
derived property. The conversion algorithms live elsewhere and take a format as
their first argument. This module imports only the standard library and numpy.

Families (names as ``str(fmt)`` prints them):

=================  ==========================================  ==============
class              layout                                      names
=================  ==========================================  ==============
FixedFormat        ``0bS_IIII.FFFF`` two's complement           fx<2,14>, ufx<0,8>
FloatFormat        ``0bS_EEEE_MMM`` sign-magnitude              e4m3, bf16, fp<6,7>
                   ``0bEEEE_MMM`` unsigned (block scales)      e8m0, p3109<8,3,unsigned>
Pow2Format         ``0bS_KKKK``: K=0 zero, else 2^(emin+K-1)   pow2<-8,0>
BinaryFormat       one bit: 1 = +1, 0 = -1                      binary
TernaryFormat      two bits: 00 = 0, 01 = +1, 11 = -1           ternary, ttq
=================  ==========================================  ==============

Glossary (used everywhere in the project): ``bits`` is the word length WL;
``int_bits`` (IL, counting the sign bit) and ``frac_bits`` (FL) place the radix
point of a fixed format, ``bits = int_bits + frac_bits``; ``exp_bits`` (E),
``man_bits`` (M, stored fraction bits) and ``bias`` (B) describe a float;
``eps`` is the step 2^-FL of a fixed format; ``ulp(x)`` is the spacing of any
format's grid at x.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .checks import check_int
from .modes import Overflow

__all__ = [
    "BinaryFormat",
    "FixedFormat",
    "FloatFormat",
    "Format",
    "Pow2Format",
    "TernaryFormat",
]

#: Float formats with a name of their own: name -> (exp_bits, man_bits, special, signed, zero).
#: Biases are the defaults of their special-value rule.
NAMED_FLOATS: dict[str, tuple[int, int, str, bool, bool]] = {
    "e4m3": (4, 3, "fn", True, True),
    "e5m2": (5, 2, "ieee", True, True),
    "e4m3fnuz": (4, 3, "fnuz", True, True),
    "e5m2fnuz": (5, 2, "fnuz", True, True),
    "e2m1": (2, 1, "none", True, True),
    "e2m3": (2, 3, "none", True, True),
    "e3m2": (3, 2, "none", True, True),
    "e8m0": (8, 0, "fn", False, False),
    "bf16": (8, 7, "ieee", True, True),
    "fp16": (5, 10, "ieee", True, True),
    "tf32": (8, 10, "ieee", True, True),
    "fp32": (8, 23, "ieee", True, True),
    "fp64": (11, 52, "ieee", True, True),
}

SPECIALS = ("ieee", "fn", "fnuz", "none", "p3109", "p3109_finite")
SCALES = (None, "tensor", "channel")


def _check_scale(func: str, scale: object, allowed: tuple[object, ...]) -> None:
    if scale not in allowed:
        raise ValueError(f"{func}: scale={scale!r} is not one of {allowed}")


class Format:
    """Behaviour shared by every format family (a mixin for the dataclasses).

    The families are frozen dataclasses without ``__slots__``: with slots,
    CPython 3.11's frozen dataclasses report adding an attribute as a confusing
    TypeError instead of FrozenInstanceError.
    """

    kind: ClassVar[str] = ""

    @property
    def name(self) -> str:  # pragma: no cover - every family overrides
        raise NotImplementedError

    def __str__(self) -> str:
        return self.name

    @property
    def overflow_modes(self) -> tuple[Overflow, ...]:
        """The overflow modes this format accepts."""
        return (Overflow.SATURATE, Overflow.ERROR)

    @property
    def default_overflow(self) -> Overflow:
        """The overflow mode used when the caller names none."""
        return Overflow.SATURATE

    @property
    def has_data_scale(self) -> bool:
        """True when values carry a scale computed from the data (BWN, TWN, TTQ)."""
        return False


@dataclass(frozen=True)
class FixedFormat(Format):
    """Fixed point <IL, FL>: a WL-bit integer code q standing for q * 2^-FL.

    Layout ``0bS_IIII.FFFF``: a two's complement word of ``bits = int_bits +
    frac_bits`` bits (or an unsigned word), IL counting the sign bit (Gupta et
    al. 2015). Value ``q * eps`` with ``eps = 2^-frac_bits``; signed codes q in
    [-2^(WL-1), 2^(WL-1) - 1], unsigned in [0, 2^WL - 1]. IL or FL may be
    negative: the radix point then lies outside the word. No special values, no
    negative zero. Values are exact in float64 for WL <= 53; wider words keep
    exact codes and round their values to float64.

    >>> FixedFormat(2, 14)
    FixedFormat(int_bits=2, frac_bits=14, signed=True)
    >>> f = FixedFormat(2, 14); (f.name, f.bits, f.max, f.eps)
    ('fx<2,14>', 16, 1.99993896484375, 6.103515625e-05)
    """

    int_bits: int
    frac_bits: int
    signed: bool = True
    kind: ClassVar[str] = "fixed"

    def __post_init__(self) -> None:
        fn = "FixedFormat"
        check_int(self.int_bits, fn, "int_bits", -1000, 1000)
        check_int(self.frac_bits, fn, "frac_bits", -1000, 1000)
        if not isinstance(self.signed, (bool, np.bool_)):
            raise TypeError(f"{fn}: signed={self.signed!r} must be a bool")
        object.__setattr__(self, "int_bits", int(self.int_bits))
        object.__setattr__(self, "frac_bits", int(self.frac_bits))
        object.__setattr__(self, "signed", bool(self.signed))
        wl = self.int_bits + self.frac_bits
        if not 1 <= wl <= 62:
            raise ValueError(
                f"{fn}: bits=int_bits+frac_bits={wl} ({self.int_bits}+{self.frac_bits})"
                " outside the allowed range [1, 62]"
            )

    @property
    def name(self) -> str:
        """``fx<IL,FL>`` (signed) or ``ufx<IL,FL>`` (unsigned)."""
        return f"{'' if self.signed else 'u'}fx<{self.int_bits},{self.frac_bits}>"

    @property
    def bits(self) -> int:
        """Word length WL."""
        return self.int_bits + self.frac_bits

    @property
    def eps(self) -> float:
        """The step 2^-FL between neighbouring values."""
        return math.ldexp(1.0, -self.frac_bits)

    @property
    def qmin(self) -> int:
        """Smallest integer code (as a signed integer)."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        """Largest integer code (as a signed integer)."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max(self) -> float:
        """Largest finite value, qmax * eps."""
        return math.ldexp(float(self.qmax), -self.frac_bits)

    @property
    def min(self) -> float:
        """Most negative finite value, qmin * eps (0 when unsigned)."""
        return math.ldexp(float(self.qmin), -self.frac_bits)

    @property
    def smallest_normal(self) -> float:
        """The step eps: the smallest positive value (fx<1,0> alone has none)."""
        return self.eps

    @property
    def smallest_subnormal(self) -> float:
        """The step eps, as `smallest_normal` (fixed point has no subnormals)."""
        return self.eps

    @property
    def n_codes(self) -> int:
        """Number of codes, 2^WL."""
        return 1 << self.bits

    def ulp(self, x: object) -> np.ndarray:
        """Spacing of the grid at x: eps everywhere."""
        return np.full(np.shape(x), self.eps)

    @property
    def overflow_modes(self) -> tuple[Overflow, ...]:
        """Fixed point saturates, wraps or raises."""
        return (Overflow.SATURATE, Overflow.WRAP, Overflow.ERROR)


@dataclass(frozen=True)
class FloatFormat(Format):
    """Binary floating point: a sign bit (unless unsigned), E exponent bits, M fraction bits.

    Layout ``0bS_EEEE_MMM`` (``0bEEEE_MMM`` with ``signed=False``). Normal (field
    e >= 1): ``(-1)^S * 2^(e-B) * (1 + f/2^M)``; subnormal (e = 0): ``(-1)^S *
    2^(1-B) * f/2^M`` (with ``subnormals=False`` the field e = 0 stands for zero
    only and inputs below the smallest normal flush to zero before rounding).
    Special values by ``special``:

    - ``ieee``: exponent all ones is inf (f = 0) or NaN (f != 0); default bias
      2^(E-1) - 1; overflow default ``inf``.
    - ``fn``: no inf; only exponent and fraction all ones is NaN (OCP E4M3);
      default bias 2^(E-1) - 1.
    - ``fnuz``: no inf, no negative zero; NaN is the code 100...0; default bias
      2^(E-1). Signed formats only.
    - ``none``: every code is finite (FP4/FP6 elements, Hill et al.'s custom
      floats); default bias 2^(E-1) - 1.
    - ``p3109`` (IEEE P3109 binary<K>p<P>, extended domain): default bias
      2^(E-1); signed: no negative zero, NaN is 100...0, +inf is 011...1 and
      -inf 111...1 (the largest magnitude of each sign); unsigned: NaN is
      11...1 and +inf 11...10. ``p3109_finite``: the same without infinities
      (those codes are the largest finite values).

    Unsigned formats (``signed=False``, no sign bit, as block scales use) take
    the nonnegative half of the values. A negative input is below the range:
    one that rounds to a zero magnitude gives +0 (an underflow); any other (and
    -inf) is an overflow, which gives the smallest value (0, or 2^-B without
    zero) under ``saturate`` and ``error`` (which raises) and NaN under ``nan``
    and, where the format has NaN, under ``inf`` (there is no -inf).
    ``zero=False`` (unsigned, M = 0 only; OCP/ml_dtypes E8M0 scales) makes
    the field e = 0 a normal value 2^-B: there
    is no zero and no subnormal; a positive input below 2^-B becomes 2^-B (an
    underflow) and a zero input is below the range like a negative one.

    >>> e4m3 = FloatFormat(4, 3, special="fn")
    >>> (e4m3.name, e4m3.max, e4m3.smallest_normal, e4m3.smallest_subnormal)
    ('e4m3', 448.0, 0.015625, 0.001953125)
    >>> FloatFormat(6, 7).name
    'fp<6,7>'
    >>> p = FloatFormat(5, 2, special="p3109"); (p.name, p.bias, p.max, p.has_inf, p.has_negative_zero)
    ('p3109<8,3>', 16, 49152.0, True, False)
    >>> s = FloatFormat(8, 0, special="fn", signed=False, zero=False); (s.name, s.bits, s.min, s.max)
    ('e8m0', 8, 5.877471754111438e-39, 1.7014118346046923e+38)
    """

    exp_bits: int
    man_bits: int
    bias: int | None = None
    subnormals: bool = True
    special: str = "ieee"
    signed: bool = True
    zero: bool = True
    kind: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        fn = "FloatFormat"
        e = check_int(self.exp_bits, fn, "exp_bits", 1, 11)
        m = check_int(self.man_bits, fn, "man_bits", 0, 52)
        if self.special not in SPECIALS:
            raise ValueError(f"{fn}: special={self.special!r} is not one of {', '.join(SPECIALS)}")
        for flag in ("subnormals", "signed", "zero"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise TypeError(f"{fn}: {flag}={getattr(self, flag)!r} must be a bool")
            object.__setattr__(self, flag, bool(getattr(self, flag)))
        if self.special == "fnuz" and not self.signed:
            raise ValueError(f"{fn}: special='fnuz' puts NaN at the negative-zero code, which an unsigned"
                             " format lacks; use special='fn' or 'p3109' with signed=False")
        if not self.zero:
            if self.signed or m != 0:
                raise ValueError(f"{fn}: zero=False needs signed=False and man_bits=0 (E8M0-style scales);"
                                 f" got signed={self.signed}, man_bits={m}")
            object.__setattr__(self, "subnormals", False)  # no zero, so no subnormal range below 2^-B
        object.__setattr__(self, "exp_bits", e)
        object.__setattr__(self, "man_bits", m)
        b = self.default_bias if self.bias is None else check_int(self.bias, fn, "bias", -2000, 2000)
        object.__setattr__(self, "bias", b)
        subnormal_only = self.subnormals and m > 0  # fp<1,M>: the field 1 is inf/NaN, the values subnormal
        if self._max_code < 0 or (not self.has_normals and not subnormal_only):
            why = "; the subnormals would be its only values, and ftz flushes them" if m else ""
            raise ValueError(
                f"{fn}: exp_bits={e}, man_bits={m} with special={self.special!r} leaves no finite nonzero"
                f" value (only zeros and special values{why}); use more exponent or fraction bits"
            )
        if self.emax > 1023:
            raise ValueError(
                f"{fn}: bias={b} puts the largest exponent at 2^{self.emax}, beyond float64's"
                f" 2^1023; use bias >= {self._top_field - 1023}"
            )
        if self.emin - m < -1074:
            raise ValueError(
                f"{fn}: bias={b} puts the smallest step at 2^{self.emin - m}, below float64's"
                f" 2^-1074; use bias <= {1074 + int(self.zero) - m}"
            )

    @property
    def name(self) -> str:
        """The registry name (``e4m3``, ``bf16``, ``p3109<8,3>``) or ``fp<E,M[,special][,bias=B][,ftz]
        [,unsigned][,nozero]>``."""
        fields = (self.exp_bits, self.man_bits, self.special, self.signed, self.zero)
        plain = self.bias == self.default_bias and (self.subnormals or not self.zero)
        for key, named in NAMED_FLOATS.items():
            if named == fields and plain:
                return key
        if self.special in ("p3109", "p3109_finite") and plain and self.zero:
            opts = ("" if self.signed else ",unsigned") + ("" if self.special == "p3109" else ",finite")
            return f"p3109<{self.bits},{self.man_bits + 1}{opts}>"
        parts = [str(self.exp_bits), str(self.man_bits)]
        if self.special != "ieee":
            parts.append(self.special)
        if self.bias != self.default_bias:
            parts.append(f"bias={self.bias}")
        if not self.subnormals and self.zero:
            parts.append("ftz")
        if not self.signed:
            parts.append("unsigned")
        if not self.zero:
            parts.append("nozero")
        return f"fp<{','.join(parts)}>"

    @property
    def default_bias(self) -> int:
        """The bias the special-value rule implies: 2^(E-1) for fnuz and P3109, else 2^(E-1) - 1."""
        e = self.exp_bits
        return (1 << (e - 1)) if self.special in ("fnuz", "p3109", "p3109_finite") else (1 << (e - 1)) - 1

    @property
    def bits(self) -> int:
        """Word length E + M, plus the sign bit when signed."""
        return int(self.signed) + self.exp_bits + self.man_bits

    @property
    def has_inf(self) -> bool:
        """Whether inf is a code (``ieee``, ``p3109``; unsigned formats have +inf only)."""
        return self.special in ("ieee", "p3109")

    @property
    def has_nan(self) -> bool:
        """Whether some code is NaN (every rule but ``none``; ``ieee`` needs M > 0)."""
        return self.special != "none" and (self.special != "ieee" or self.man_bits > 0)

    @property
    def ties_by_code(self) -> bool:
        """Whether nearest-even ties go to the even code, not the even significand: P3109 formats without
        fraction bits (gfloat's rule). Without them a tie's significand 3/2 goes to 2 (NUMERICS.md, ml_dtypes'
        E8M0), the code's last bit being the exponent field's; with them the two rules agree."""
        return self.man_bits == 0 and self.special in ("p3109", "p3109_finite")

    @property
    def has_negative_zero(self) -> bool:
        """Whether -0 is a code of its own (signed formats but ``fnuz`` and P3109)."""
        return self.signed and self.special in ("ieee", "fn", "none")

    @property
    def nan_code(self) -> int:
        """The canonical NaN code: ieee 0_1..1_10..0, fn 0_1..1_1..1, fnuz and signed P3109 1_0..0,
        unsigned P3109 1..1; ValueError without NaN."""
        if not self.has_nan:
            raise ValueError(f"{self.name} has no NaN")
        w = self.exp_bits + self.man_bits
        if self.special == "ieee":
            return (((1 << self.exp_bits) - 1) << self.man_bits) | (1 << (self.man_bits - 1))
        if self.special == "fn" or not self.signed:
            return (1 << w) - 1
        return 1 << w

    @property
    def inf_code(self) -> int:
        """The code of +inf (ieee 0_1..1_0..0, signed P3109 0_1..1_1..1, unsigned P3109 1..10); -inf sets
        the sign bit; ValueError without inf."""
        if not self.has_inf:
            raise ValueError(f"{self.name} has no inf")
        if self.special == "ieee":
            return ((1 << self.exp_bits) - 1) << self.man_bits
        return self._max_code + 1

    @property
    def _max_code(self) -> int:
        """The code (sign bit clear) of the largest finite value: the codes above it hold inf and NaN."""
        e, m = self.exp_bits, self.man_bits
        if self.special == "ieee":
            return (((1 << e) - 1) << m) - 1
        above = {"fn": 1, "p3109": 1 if self.signed else 2, "p3109_finite": 0 if self.signed else 1}
        return (1 << (e + m)) - 1 - above.get(self.special, 0)

    @property
    def _top_field(self) -> int:
        """The largest exponent field that holds finite values."""
        return self._max_code >> self.man_bits

    @property
    def emin(self) -> int:
        """Exponent of the smallest normal, 1 - B (-B without zero: the field 0 is normal)."""
        return (1 if self.zero else 0) - self.bias  # type: ignore[operator]

    @property
    def emax(self) -> int:
        """The exponent E with max = max_significand 2^(E - M): that of the largest finite value, or emin
        when every finite value is subnormal (``fp<1,M>``: the field 1 holds inf and NaN)."""
        return self._top_field - self.bias if self.has_normals else self.emin  # type: ignore[operator]

    @property
    def max_significand(self) -> int:
        """Integer significand of the largest finite value (the hidden bit included, unless that value
        is subnormal: ``fp<1,M>``'s is 2^M - 1)."""
        m = self.man_bits
        return ((1 << m) if self.has_normals else 0) | (self._max_code & ((1 << m) - 1))

    @property
    def max(self) -> float:
        """Largest finite value."""
        return math.ldexp(float(self.max_significand), self.emax - self.man_bits)

    @property
    def min(self) -> float:
        """Most negative finite value, -max; unsigned: the smallest value (0, or 2^-B without zero)."""
        if self.signed:
            return -self.max
        return 0.0 if self.zero else self.smallest_normal

    @property
    def has_normals(self) -> bool:
        """Whether some finite value is normal: not so in ``fp<1,M>`` (IEEE rule), whose exponent field 1
        holds inf and NaN and whose values are all subnormal (without zero, the field 0 is normal)."""
        return self._top_field >= 1 or not self.zero

    @property
    def smallest_normal(self) -> float:
        """Smallest positive normal, 2^emin (above `max` when the format has none: `has_normals`)."""
        return math.ldexp(1.0, self.emin)

    @property
    def smallest_subnormal(self) -> float:
        """Smallest positive value: 2^(1-B-M), or the smallest normal without subnormals."""
        if self.subnormals and self.man_bits > 0:
            return math.ldexp(1.0, self.emin - self.man_bits)
        return self.smallest_normal

    @property
    def eps(self) -> float:
        """Distance from 1 to the next larger value, 2^-M (numpy.finfo's eps)."""
        return math.ldexp(1.0, -self.man_bits)

    @property
    def n_codes(self) -> int:
        """Number of bit patterns, 2^bits (NaN codes included)."""
        return 1 << self.bits

    def ulp(self, x: object) -> np.ndarray:
        """Spacing of the grid at x: 2^(max(floor(log2|x|), emin) - M).

        Below the smallest normal without subnormals the spacing is the smallest
        normal itself; at 0 it is the smallest positive value; NaN for inf/NaN.
        """
        a = np.abs(np.asarray(x, dtype=np.float64))
        _, k = np.frexp(a)
        ex = np.maximum(k.astype(np.int64) - 1, self.emin)
        step = self.man_bits if self.subnormals else 0
        out = np.ldexp(1.0, np.where(a < self.smallest_normal, self.emin - step, ex - self.man_bits))
        return np.where(np.isfinite(a), out, np.nan)

    @property
    def overflow_modes(self) -> tuple[Overflow, ...]:
        """Saturate and error always; inf where the format has inf, nan where it has NaN."""
        modes = [Overflow.SATURATE, Overflow.ERROR]
        if self.has_inf:
            modes.append(Overflow.INF)
        if self.has_nan:
            modes.append(Overflow.NAN)
        return tuple(modes)

    @property
    def default_overflow(self) -> Overflow:
        """``inf`` for formats with inf (IEEE 754), else ``saturate``."""
        return Overflow.INF if self.has_inf else Overflow.SATURATE


@dataclass(frozen=True)
class Pow2Format(Format):
    """Powers of two with a zero code: values 0 and +-2^e for emin <= e <= emax.

    Layout ``0bS_KKKK``: K = 0 is zero, K = 1..n stands for 2^(emin + K - 1),
    with n = emax - emin + 1 and as many K bits as n needs; S is the sign (absent
    when ``signed=False``). The code with S = 1 and K = 0 is unused. Rounding is
    in the log domain: nearest modes split [2^k, 2^(k+1)] at the geometric
    midpoint 2^(k+1/2) (never a tie), the interval [0, 2^emin] at its arithmetic
    midpoint 2^(emin-1); stochastic rounding picks a neighbour with the linear
    probability that keeps E[q] = x.

    >>> f = Pow2Format(-8, 0); (f.name, f.bits, f.max, f.smallest_normal, f.n_codes)
    ('pow2<-8,0>', 5, 1.0, 0.00390625, 19)
    """

    emin: int
    emax: int
    signed: bool = True
    kind: ClassVar[str] = "pow2"

    def __post_init__(self) -> None:
        fn = "Pow2Format"
        lo = check_int(self.emin, fn, "emin", -1074, 1023)
        hi = check_int(self.emax, fn, "emax", -1074, 1023)
        if hi < lo:
            raise ValueError(f"{fn}: emax={hi} is below emin={lo}")
        if not isinstance(self.signed, (bool, np.bool_)):
            raise TypeError(f"{fn}: signed={self.signed!r} must be a bool")
        object.__setattr__(self, "emin", lo)
        object.__setattr__(self, "emax", hi)
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def name(self) -> str:
        """``pow2<emin,emax>`` or ``upow2<emin,emax>``."""
        return f"{'' if self.signed else 'u'}pow2<{self.emin},{self.emax}>"

    @property
    def n_exponents(self) -> int:
        """Number of exponents, emax - emin + 1."""
        return self.emax - self.emin + 1

    @property
    def k_bits(self) -> int:
        """Bits of the K field (0 .. n_exponents)."""
        return self.n_exponents.bit_length()

    @property
    def bits(self) -> int:
        """Word length: K bits plus the sign bit."""
        return self.k_bits + int(self.signed)

    @property
    def max(self) -> float:
        """Largest value, 2^emax."""
        return math.ldexp(1.0, self.emax)

    @property
    def min(self) -> float:
        """Most negative value, -2^emax (0 when unsigned)."""
        return -self.max if self.signed else 0.0

    @property
    def smallest_normal(self) -> float:
        """Smallest positive value, 2^emin."""
        return math.ldexp(1.0, self.emin)

    @property
    def smallest_subnormal(self) -> float:
        """Smallest positive value, 2^emin (there are no subnormals)."""
        return self.smallest_normal

    @property
    def n_codes(self) -> int:
        """Number of valid codes: 2n + 1 signed, n + 1 unsigned."""
        return (2 if self.signed else 1) * self.n_exponents + 1

    def ulp(self, x: object) -> np.ndarray:
        """Spacing of the grid at x: 2^k for |x| in [2^k, 2^(k+1)), clamped to the range."""
        a = np.abs(np.asarray(x, dtype=np.float64))
        _, k = np.frexp(a)
        ex = np.clip(np.where(a > 0, k.astype(np.int64) - 1, self.emin), self.emin, self.emax)
        return np.where(np.isfinite(a), np.ldexp(1.0, ex), np.nan)


@dataclass(frozen=True)
class BinaryFormat(Format):
    """Binary weights or activations: +1 or -1, optionally times a scale alpha.

    Layout: one bit, 1 = +1 and 0 = -1 (so XNOR of codes multiplies values).
    Deterministic: +1 if w >= 0 else -1. ``stochastic=True`` (BinaryConnect):
    +1 with probability clip((w + 1) / 2, 0, 1). ``scale="tensor"`` multiplies
    by alpha = mean |w| (BWN / XNOR-Net), ``scale="channel"`` by the mean over
    each output channel (axis 0).

    >>> BinaryFormat().name, BinaryFormat(stochastic=True, scale="channel").name
    ('binary', 'binary<stochastic,scale=channel>')
    """

    stochastic: bool = False
    scale: str | None = None
    kind: ClassVar[str] = "binary"

    def __post_init__(self) -> None:
        if not isinstance(self.stochastic, (bool, np.bool_)):
            raise TypeError(f"BinaryFormat: stochastic={self.stochastic!r} must be a bool")
        object.__setattr__(self, "stochastic", bool(self.stochastic))
        _check_scale("BinaryFormat", self.scale, SCALES)

    @property
    def name(self) -> str:
        """``binary`` with options ``stochastic`` and ``scale=tensor|channel``."""
        opts = (["stochastic"] if self.stochastic else []) + (
            [f"scale={self.scale}"] if self.scale else []
        )
        return "binary" + (f"<{','.join(opts)}>" if opts else "")

    bits: ClassVar[int] = 1
    n_codes: ClassVar[int] = 2
    max: ClassVar[float] = 1.0
    min: ClassVar[float] = -1.0
    smallest_normal: ClassVar[float] = 1.0
    smallest_subnormal: ClassVar[float] = 1.0

    def ulp(self, x: object) -> np.ndarray:
        """Spacing of the unscaled grid {-1, +1}: 2."""
        return np.full(np.shape(x), 2.0)

    @property
    def has_data_scale(self) -> bool:
        """True when scaled (the scale comes from the data)."""
        return self.scale is not None


@dataclass(frozen=True)
class TernaryFormat(Format):
    """Ternary values {-a, 0, +b}.

    Layout: two bits, 00 = 0, 01 = +1, 11 = -1 (two's complement; 10 unused).
    Methods:

    - ``twn`` (Li et al. 2016): delta = threshold * mean |w| (threshold 0.7 by
      default); w > delta -> +alpha, w < -delta -> -alpha, else 0, with alpha
      the mean |w| over |w| > delta (per tensor, or per output channel with
      ``scale="channel"``; ``scale=None`` keeps {-1, 0, +1}).
    - ``ttq`` (Zhu et al. 2017): delta = threshold * max |w| (0.05 by default);
      separate scales Wp for positive and Wn for negative values, given by the
      caller (``scale=(wp, wn)`` to ``quantize``) or, when not given, the mean
      of the values above +delta and of |values| below -delta.
    - ``stochastic`` (ternary connect, Lin et al. 2015): w clipped to [-1, 1]
      becomes sign(w) with probability |w|, else 0 (unscaled).

    ``scale="auto"`` (the default) means per tensor for twn and ttq, none for
    the stochastic method.

    >>> TernaryFormat().name, TernaryFormat("ttq").name
    ('ternary', 'ttq')
    """

    method: str = "twn"
    threshold: float | None = None
    scale: str | None = "auto"
    kind: ClassVar[str] = "ternary"

    def __post_init__(self) -> None:
        fn = "TernaryFormat"
        if self.method not in ("twn", "ttq", "stochastic"):
            raise ValueError(f"{fn}: method={self.method!r} is not one of twn, ttq, stochastic")
        if self.scale == "auto":  # per tensor for twn/ttq, none for the stochastic method
            object.__setattr__(self, "scale", None if self.method == "stochastic" else "tensor")
        if self.method == "stochastic":
            if self.threshold is not None:
                raise ValueError(f"{fn}: threshold={self.threshold!r} has no meaning for method='stochastic'")
            if self.scale is not None:
                raise ValueError(f"{fn}: scale={self.scale!r} must be None for method='stochastic'")
            return
        default = 0.7 if self.method == "twn" else 0.05
        t = default if self.threshold is None else self.threshold
        if isinstance(t, bool) or not isinstance(t, (int, float, np.floating, np.integer)):
            raise TypeError(f"{fn}: threshold={t!r} must be a number")
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"{fn}: threshold={t!r} must be a finite number > 0")
        object.__setattr__(self, "threshold", float(t))
        _check_scale(fn, self.scale, SCALES if self.method == "twn" else ("tensor", "channel"))

    @property
    def name(self) -> str:
        """``ternary``, ``ttq`` or ``ternary<stochastic>``, options appended."""
        if self.method == "stochastic":
            return "ternary<stochastic>"
        base = "ternary" if self.method == "twn" else "ttq"
        default = 0.7 if self.method == "twn" else 0.05
        opts = []
        if self.threshold != default:
            opts.append(f"threshold={self.threshold!r}")
        if self.scale != "tensor":
            opts.append(f"scale={self.scale or 'none'}")
        return base + (f"<{','.join(opts)}>" if opts else "")

    bits: ClassVar[int] = 2
    n_codes: ClassVar[int] = 3
    max: ClassVar[float] = 1.0
    min: ClassVar[float] = -1.0
    smallest_normal: ClassVar[float] = 1.0
    smallest_subnormal: ClassVar[float] = 1.0

    def ulp(self, x: object) -> np.ndarray:
        """Spacing of the unscaled grid {-1, 0, +1}: 1."""
        return np.full(np.shape(x), 1.0)

    @property
    def has_data_scale(self) -> bool:
        """True when scaled (the scale comes from the data)."""
        return self.scale is not None
