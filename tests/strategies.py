"""Hypothesis strategies derived from formats (STYLE.md section 9).

- `fixed_formats`, `float_formats`, `pow2_formats`, `binary_formats`,
  `ternary_formats`, `quant_formats` (fixed, float or power of two) and
  `any_formats`: random, always valid format descriptors.
- `reals(fmt)`: float64 inputs: any finite float64 (subnormals, huge and tiny
  values), edge values of float64, and, given a format, values on its grid,
  exact ties between neighbouring values (midpoints that float64 holds
  exactly), one float64 step either side of a tie, its range ends and values
  spread over its range.
- `codes(fmt)`: valid codes of a format (``canonical=True``: only the codes
  encoding can produce, so that ``encode(decode(c)) == c``).

Grid values and ties are computed here from the format's fields with Python
integers and `fractions.Fraction`; nothing is taken from `emu`'s conversion
code, so the strategies stay independent of what they test.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

from hypothesis import strategies as st

from emu import BinaryFormat, FixedFormat, FloatFormat, Format, Pow2Format, TernaryFormat

__all__ = [
    "EDGE_FLOATS",
    "any_formats",
    "binary_formats",
    "codes",
    "exact_ties",
    "exact_value",
    "floor_log2",
    "fixed_formats",
    "float_formats",
    "is_canonical",
    "pow2_formats",
    "quant_formats",
    "reals",
    "ternary_formats",
    "valid_specials",
]

_FMAX = sys.float_info.max
_TINY = math.ldexp(1.0, -1074)
_NORMAL = sys.float_info.min

#: float64 values every conversion must survive.
EDGE_FLOATS = (
    0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 3.0, 1e-300, 1e300, -1e300,
    _TINY, -_TINY, _NORMAL, -_NORMAL, _NORMAL - _TINY, _FMAX, -_FMAX,
    math.ldexp(1.0, 53) + 2.0, math.ldexp(1.0, 62), math.ldexp(1.0, 63), -math.ldexp(1.0, 63),
    math.ldexp(1.0, 64), 1.0 - math.ldexp(1.0, -53), 1.0 + math.ldexp(1.0, -52),
)  # fmt: skip


# --- formats -----------------------------------------------------------------------------------


@st.composite
def fixed_formats(draw: st.DrawFn, min_bits: int = 1, max_bits: int = 62, signed: bool | None = None,
                  min_frac: int = -24, max_frac: int = 90) -> FixedFormat:
    """A FixedFormat with WL in [min_bits, max_bits]; IL and FL may be negative."""
    wl = draw(st.integers(min_bits, max_bits))
    fl = draw(st.integers(min_frac, max_frac))
    sg = draw(st.booleans()) if signed is None else signed
    return FixedFormat(wl - fl, fl, sg)


def valid_specials(exp_bits: int, man_bits: int) -> list[str]:
    """Special-value rules that leave a format with a nonzero finite value.

    ``ieee`` needs E >= 2 (the all-ones exponent is inf/NaN); ``fn`` with
    E = 1 and M = 0 holds only +-0 and NaN, so it is left out too; so is a rule
    for which no bias keeps every value inside float64.
    """
    out = ["none", "fnuz"]
    if exp_bits >= 2:
        out.append("ieee")
    if exp_bits >= 2 or man_bits >= 1:
        out.append("fn")
    # and some bias must keep the values inside float64 (fp<11,52,none> has none)
    return [s for s in out if _bias_range(exp_bits, man_bits, s)[0] <= _bias_range(exp_bits, man_bits, s)[1]]


def _top_field(exp_bits: int, man_bits: int, special: str) -> int:
    top = (1 << exp_bits) - 1
    if special == "ieee" or (special == "fn" and man_bits == 0):
        return top - 1
    return top


def _bias_range(exp_bits: int, man_bits: int, special: str) -> tuple[int, int]:
    """Biases that keep every value inside float64 (largest exponent <= 1023, step >= 2^-1074)."""
    return _top_field(exp_bits, man_bits, special) - 1023, 1075 - man_bits


@st.composite
def float_formats(draw: st.DrawFn, min_exp_bits: int = 1, max_exp_bits: int = 11, max_man_bits: int = 52,
                  max_bits: int = 64, specials: tuple[str, ...] | None = None,
                  subnormals: bool | None = None, bias: bool = True) -> FloatFormat:
    """A FloatFormat: any E, M within ``max_bits``, any special rule valid for E, sometimes a custom bias."""
    top_e = min(max_exp_bits, max_bits - 1)
    # any E, with the widths of real formats (2, 4, 5, 8, 11) drawn more often
    usual = [v for v in (2, 4, 5, 8, 11) if min_exp_bits <= v <= top_e] or [top_e]
    e = draw(st.one_of(st.integers(min_exp_bits, top_e), st.sampled_from(usual)))
    m = draw(st.integers(0, min(max_man_bits, max_bits - 1 - e)))
    allowed = [s for s in valid_specials(e, m) if specials is None or s in specials]
    if not allowed:
        e = max(e, 2)
        allowed = [s for s in valid_specials(e, m) if specials is None or s in specials]
    # every valid rule, IEEE-style (the default) as often as all others together
    rules = st.sampled_from(sorted(allowed))
    special = draw(st.one_of(rules, st.just("ieee")) if "ieee" in allowed else rules)
    sub = draw(st.booleans()) if subnormals is None else subnormals
    b = None
    lo, hi = _bias_range(e, m, special)
    default = (1 << (e - 1)) if special == "fnuz" else (1 << (e - 1)) - 1
    # E = 11 with a finite all-ones exponent (none, fn) needs a larger bias than the default
    if not lo <= default <= hi or (bias and draw(st.integers(0, 3)) == 0):
        if lo <= default + 12:
            near = st.integers(max(lo, default - 12), min(hi, default + 12))
        else:
            near = st.just(lo)
        b = draw(st.one_of(near, st.integers(lo, hi), st.sampled_from([lo, hi])))
    return FloatFormat(e, m, bias=b, subnormals=sub, special=special)


@st.composite
def pow2_formats(draw: st.DrawFn, signed: bool | None = None) -> Pow2Format:
    """A Pow2Format with exponents anywhere in float64's range (usually a short span)."""
    lo = draw(st.integers(-1074, 1023))
    span = draw(st.one_of(st.integers(0, 20), st.integers(0, 1023 - lo)))
    hi = min(1023, lo + span)
    sg = draw(st.booleans()) if signed is None else signed
    return Pow2Format(lo, hi, sg)


def binary_formats() -> st.SearchStrategy[BinaryFormat]:
    """Every BinaryFormat variant."""
    scales = st.sampled_from([None, "tensor", "channel"])
    return st.builds(BinaryFormat, stochastic=st.booleans(), scale=scales)


@st.composite
def ternary_formats(draw: st.DrawFn) -> TernaryFormat:
    """A TernaryFormat: twn, ttq (with a random threshold and scale) or the stochastic method."""
    method = draw(st.sampled_from(["twn", "ttq", "stochastic"]))
    if method == "stochastic":
        return TernaryFormat("stochastic")
    threshold = draw(st.one_of(st.none(), st.floats(1e-6, 10.0), st.sampled_from([0.3, 0.5, 1.0])))
    scales = ["tensor", "channel"] + ([None] if method == "twn" else [])
    return TernaryFormat(method, threshold=threshold, scale=draw(st.sampled_from(scales)))


def quant_formats(max_fixed_bits: int = 62) -> st.SearchStrategy[Format]:
    """A format with rounding and overflow modes: fixed point, float or power of two."""
    return st.one_of(fixed_formats(max_bits=max_fixed_bits), float_formats(), pow2_formats())


def any_formats() -> st.SearchStrategy[Format]:
    """A format of any family."""
    return st.one_of(fixed_formats(), float_formats(), pow2_formats(), binary_formats(), ternary_formats())


# --- exact values of codes ---------------------------------------------------------------------


def _code_count(fmt: Format) -> int:
    return 1 << fmt.bits


def exact_value(fmt: Format, code: int) -> Fraction | float:
    """The exact value of a code of a fixed, float or power-of-two format.

    Returns a Fraction for finite values and a float (+-inf or NaN) otherwise;
    -0 is returned as the float -0.0. Computed from the fields alone.
    """
    if isinstance(fmt, FixedFormat):
        q = code - (1 << fmt.bits) if fmt.signed and code >> (fmt.bits - 1) else code
        return Fraction(q) * Fraction(2) ** -fmt.frac_bits
    if isinstance(fmt, Pow2Format):
        neg = fmt.signed and bool(code >> fmt.k_bits)
        k = code & ((1 << fmt.k_bits) - 1)
        if k > fmt.n_exponents or (neg and k == 0):
            raise ValueError(f"exact_value: code {code} is not a code of {fmt}")
        v = Fraction(0) if k == 0 else Fraction(2) ** (fmt.emin + k - 1)
        return -v if neg else v
    if isinstance(fmt, FloatFormat):
        e, m, b = fmt.exp_bits, fmt.man_bits, fmt.bias
        assert b is not None
        neg = bool(code >> (e + m))
        field = (code >> m) & ((1 << e) - 1)
        frac = code & ((1 << m) - 1)
        top = (1 << e) - 1
        if fmt.special == "fnuz" and code == 1 << (e + m):
            return math.nan
        if fmt.special == "ieee" and field == top:
            return (-math.inf if neg else math.inf) if frac == 0 else math.nan
        if fmt.special == "fn" and field == top and frac == (1 << m) - 1:
            return math.nan
        if field == 0:
            mag = Fraction(frac) * Fraction(2) ** (1 - b - m) if fmt.subnormals else Fraction(0)
        else:
            mag = Fraction((1 << m) + frac) * Fraction(2) ** (field - b - m)
        if mag == 0:
            return -0.0 if neg else Fraction(0)
        return -mag if neg else mag
    raise TypeError(f"exact_value: no exact values for {fmt!r}")


def is_canonical(fmt: Format, code: int) -> bool:
    """Whether encoding can produce ``code``: no extra NaN codes, no denormals-are-zero codes."""
    if isinstance(fmt, FloatFormat):
        e, m = fmt.exp_bits, fmt.man_bits
        field = (code >> m) & ((1 << e) - 1)
        frac = code & ((1 << m) - 1)
        v = exact_value(fmt, code)
        if isinstance(v, float) and math.isnan(v):
            if fmt.special == "fnuz":
                return True
            expo = ((1 << e) - 1) << m
            canon = expo | ((1 << m) - 1) if fmt.special == "fn" else expo | (1 << (m - 1))
            return code == canon
        if not fmt.subnormals and field == 0 and frac != 0:
            return False
        return True
    if isinstance(fmt, Pow2Format):
        try:
            exact_value(fmt, code)
        except ValueError:
            return False
        return True
    if isinstance(fmt, TernaryFormat):
        return code != 2
    return True


def codes(fmt: Format, canonical: bool = False) -> st.SearchStrategy[int]:
    """Valid codes of ``fmt`` as Python ints (``canonical=True``: only codes encoding produces)."""
    if isinstance(fmt, Pow2Format):
        ks = st.integers(0, fmt.n_exponents)
        if not fmt.signed:
            return ks
        return st.tuples(st.booleans(), ks).filter(lambda t: t[1] or not t[0]).map(
            lambda t: (int(t[0]) << fmt.k_bits) | t[1])
    if isinstance(fmt, TernaryFormat):
        return st.sampled_from([0, 1, 3])
    if isinstance(fmt, BinaryFormat):
        return st.sampled_from([0, 1])
    n = _code_count(fmt)
    edges = sorted(c for c in {0, 1, n // 2, n // 2 + 1, n - 1, n // 2 - 1, n // 2 - 2} if 0 <= c < n)
    base = st.one_of(st.integers(0, n - 1), st.sampled_from(edges))
    if isinstance(fmt, FloatFormat):
        m = fmt.man_bits
        special = [(f << m) for f in (1, 2, (1 << fmt.exp_bits) - 1)] + [(1 << m) - 1]
        base = st.one_of(base, st.sampled_from(sorted({c % n for c in special})), st.integers(0, n - 1))
        if canonical:
            return base.map(lambda c: c if is_canonical(fmt, c) else 0 if c < n // 2 else n // 2)
    return base


# --- real inputs -------------------------------------------------------------------------------


def _to_float(v: Fraction) -> float:
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _exact_float(v: Fraction) -> float | None:
    f = _to_float(v)
    return f if math.isfinite(f) and Fraction(f) == v else None


def _finite_codes(fmt: Format) -> st.SearchStrategy[Fraction]:
    return codes(fmt).map(lambda c: exact_value(fmt, c)).filter(
        lambda v: isinstance(v, Fraction) or (isinstance(v, float) and v == 0.0)).map(Fraction)


def floor_log2(a: Fraction) -> int:
    """floor(log2(a)) for a Fraction a > 0, exactly."""
    e = a.numerator.bit_length() - a.denominator.bit_length()
    return e if Fraction(2) ** e <= a else e - 1


def _float_next(fmt: FloatFormat, mag: Fraction) -> Fraction:
    """The next larger magnitude on the grid of ``fmt`` after ``mag`` >= 0 (unbounded exponent)."""
    emin = 1 - fmt.bias  # type: ignore[operator]
    if mag < Fraction(2) ** emin:
        step = Fraction(2) ** (emin - fmt.man_bits) if fmt.subnormals else Fraction(2) ** emin
        if not fmt.subnormals:
            return Fraction(2) ** emin
        return mag + step
    return mag + Fraction(2) ** (floor_log2(mag) - fmt.man_bits)


def _pairs(fmt: Format) -> st.SearchStrategy[tuple[Fraction, Fraction]]:
    """Two neighbouring grid values lo < hi (including the one past the largest value)."""
    if isinstance(fmt, FixedFormat):
        eps = Fraction(2) ** -fmt.frac_bits
        return st.integers(fmt.qmin - 3, fmt.qmax + 3).map(lambda q: (q * eps, (q + 1) * eps))
    if isinstance(fmt, FloatFormat):
        return _finite_codes(fmt).map(abs).map(lambda a: (a, _float_next(fmt, a)))
    if isinstance(fmt, Pow2Format):
        def pair(k: int) -> tuple[Fraction, Fraction]:
            if k < fmt.emin:
                return Fraction(0), Fraction(2) ** fmt.emin
            return Fraction(2) ** k, Fraction(2) ** (k + 1)
        return st.integers(fmt.emin - 1, fmt.emax).map(pair)
    raise TypeError(f"_pairs: {fmt!r}")


def _signed(draw: st.DrawFn, fmt: Format, v: float) -> float:
    signed = getattr(fmt, "signed", True)
    return -v if draw(st.booleans()) and (signed or draw(st.integers(0, 3)) == 0) else v


@st.composite
def _grid_reals(draw: st.DrawFn, fmt: Format) -> float:
    """A value of the format's grid, a tie, one float64 step off a tie, a range end, or inside a cell."""
    kind = draw(st.sampled_from(["grid", "tie", "near_tie", "inside", "end", "spread"]))
    if kind == "end":
        top = max(abs(fmt.max), abs(fmt.min))
        lo = fmt.smallest_subnormal
        v = draw(st.sampled_from([fmt.max, fmt.min, top * 1.5, top * 2.0, lo, lo / 2, lo * 0.75, lo * 1.5,
                                  fmt.smallest_normal]))
        return _signed(draw, fmt, v)
    if kind == "spread":
        top = max(abs(fmt.max), abs(fmt.min), fmt.smallest_subnormal)
        u = draw(st.floats(-1.25, 1.25))
        return _signed(draw, fmt, _to_float(Fraction(u) * Fraction(top)))
    lo, hi = draw(_pairs(fmt))
    if kind == "grid":
        v = _to_float(lo)
    elif kind == "inside":
        num = draw(st.integers(1, 1023))
        v = _to_float(lo + (hi - lo) * Fraction(num, 1024))
    else:
        mid = (lo + hi) / 2
        v = _to_float(mid)
        if kind == "near_tie" and math.isfinite(v):
            v = math.nextafter(v, draw(st.sampled_from([math.inf, -math.inf])))
    return _signed(draw, fmt, v)


def reals(fmt: Format | None = None, allow_infinity: bool = False, allow_nan: bool = False,
          max_magnitude: float | None = None) -> st.SearchStrategy[float]:
    """float64 inputs: any finite float64, float64 edge values, and (given a format) its grid and ties.

    ``max_magnitude`` limits |x| (inclusive); infinities and NaN only when asked.
    """
    parts: list[st.SearchStrategy[float]] = [
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(EDGE_FLOATS),
        st.builds(math.ldexp, st.floats(-1.0, 1.0, exclude_min=True, exclude_max=True),
                  st.integers(-1074, 1024)),
    ]
    if fmt is not None and isinstance(fmt, (FixedFormat, FloatFormat, Pow2Format)):
        g = _grid_reals(fmt)
        parts += [g, g, g]  # the format's own values and ties dominate
    s = st.one_of(*parts)
    if max_magnitude is not None:
        bound = max_magnitude
        s = s.map(lambda v: v if abs(v) <= bound else math.copysign(bound, v) * (abs(v) % 1.0 or 1.0))
        s = s.filter(lambda v: abs(v) <= bound)
    extras: list[st.SearchStrategy[float]] = []
    if allow_infinity:
        extras.append(st.sampled_from([math.inf, -math.inf]))
    if allow_nan:
        extras.append(st.just(math.nan))
    if extras:
        s = st.one_of(s, *extras)
    return s


def exact_ties(fmt: Format) -> st.SearchStrategy[float]:
    """Exact midpoints between neighbouring values of ``fmt`` (those float64 holds exactly)."""
    def mid(p: tuple[Fraction, Fraction]) -> float | None:
        return _exact_float((p[0] + p[1]) / 2)

    if isinstance(fmt, Pow2Format):  # the only tie: 2^(emin-1), between 0 and 2^emin
        tie = math.ldexp(1.0, fmt.emin - 1)
        return st.sampled_from([tie, -tie] if fmt.signed else [tie]).filter(lambda v: v != 0.0)
    return _pairs(fmt).map(mid).filter(lambda v: v is not None)  # type: ignore[return-value]
