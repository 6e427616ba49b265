"""Properties of conversion that hold for every format and value (Hypothesis).

Over random fixed, float and power-of-two formats (tests/strategies.py) and
values near their grids, ties and ends:

- monotone: quantize is non-decreasing in x for every deterministic mode;
- idempotent: quantize(quantize(x)) == quantize(x) in every mode, stochastic too;
- a value of the format is returned unchanged in every mode, and
  encode(decode(c)) == c for every canonical code;
- exact ties follow each nearest mode's tie rule (nearest_even: the even code);
- sign symmetry for nearest_even, nearest_away and toward_zero (and stochastic
  rounding of floats, which acts on the magnitude); floor(-x) == -ceil(x);
- saturate never leaves [min, max];
- fixed point equals exact integer arithmetic: wrap is congruent to the exactly
  rounded integer modulo 2^bits, saturate clamps it, error raises exactly when
  it is out of range, and the overflow count says so;
- stochastic rounding always returns one of the two neighbours of x; the same
  seed gives the same result, with one numba thread or two;
- quantize, encode + decode and bits agree;
- error metrics on hand-made arrays; `mask_float32` equals toward_zero rounding
  to fp<8,M> for every M on a million float32 bit patterns and edge cases;
- hand-made cases for two corners the random formats reach only rarely: zeros
  and subnormals of formats whose smallest step is a float64 subnormal
  (fp<11,M>), and M = 0 ties under an even bias (fnuz).

The expected values are computed here with Python integers and Fractions.
"""

from __future__ import annotations

import math
from fractions import Fraction

import ml_dtypes
import numba
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import emu
from emu import FixedFormat, FloatFormat, Overflow, Pow2Format, Rounding, decode, encode, quantize
from tests.strategies import (
    codes,
    exact_ties,
    fixed_formats,
    float_formats,
    floor_log2,
    pow2_formats,
    quant_formats,
    reals,
)

DETERMINISTIC = [str(r) for r in Rounding if r != Rounding.STOCHASTIC]
ALL_ROUNDINGS = [str(r) for r in Rounding]
EXAMPLES = settings(max_examples=200)


def same(a: object, b: object) -> bool:
    """Equal float64 arrays, NaN equal to NaN and the sign of zero compared."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sa, sb = np.signbit(a) | np.isnan(a), np.signbit(b) | np.isnan(b)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True) and np.array_equal(sa, sb))


def has_signed_zero(fmt: emu.Format) -> bool:
    return isinstance(fmt, FloatFormat) and fmt.has_negative_zero


def round_fraction(t: Fraction, mode: str) -> int:
    """t rounded to an integer with a deterministic mode of NUMERICS.md section 3."""
    lo = math.floor(t)
    if lo == t:
        return lo
    hi = lo + 1
    if mode == "floor":
        return lo
    if mode == "ceil":
        return hi
    if mode == "toward_zero":
        return lo if t > 0 else hi
    if mode == "to_odd":
        return lo if lo % 2 else hi
    d = t - lo
    if d != Fraction(1, 2):
        return lo if d < Fraction(1, 2) else hi
    return {"nearest_even": lo if lo % 2 == 0 else hi, "nearest_away": hi if t > 0 else lo,
            "nearest_up": hi, "nearest_down": lo}[mode]


def float_neighbours(fmt: FloatFormat, x: float) -> set[float]:
    """The values of ``fmt`` just below and above |x| (x finite, |x| <= max), with x's sign."""
    a = abs(Fraction(x))
    s = -1 if math.copysign(1.0, x) < 0 else 1
    if a == 0:
        return {x}
    emin = 1 - fmt.bias  # type: ignore[operator]
    if not fmt.subnormals and a < Fraction(2) ** emin:
        return {0.0}
    step = Fraction(2) ** (max(floor_log2(a), emin) - fmt.man_bits)
    lo, hi = math.floor(a / step) * step, math.ceil(a / step) * step
    return {float(s * lo), float(s * hi)}


def pow2_neighbours(fmt: Pow2Format, x: float) -> set[float]:
    """The powers of two (or 0) just below and above |x| (|x| <= max), with x's sign."""
    a = abs(Fraction(x))
    s = -1 if x < 0 else 1
    if a == 0:
        return {0.0}
    if a < Fraction(2) ** fmt.emin:
        return {0.0, s * math.ldexp(1.0, fmt.emin)}
    k = floor_log2(a)
    return {s * math.ldexp(1.0, k), s * math.ldexp(1.0, k + 1)} if a != Fraction(2) ** k else {float(x)}


def allowed_overflows(fmt: emu.Format, *, error: bool = False, wrap: bool = True) -> list[str]:
    skip = ({Overflow.ERROR} if not error else set()) | ({Overflow.WRAP} if not wrap else set())
    return [str(m) for m in fmt.overflow_modes if m not in skip]


def values_exact(fmt: emu.Format) -> bool:
    """Every value of the format is a float64 (WL <= 53 for fixed point)."""
    return not isinstance(fmt, FixedFormat) or fmt.bits <= 53


@st.composite
def format_and_values(draw: st.DrawFn, formats: st.SearchStrategy | None = None, n: int = 12,
                      allow_infinity: bool = False,
                      within_range: bool = False) -> tuple[emu.Format, np.ndarray]:
    """A format and 1..n values for it (``within_range``: clipped to [min, max])."""
    fmt = draw(formats if formats is not None else quant_formats())
    bound = max(fmt.max, -fmt.min) if within_range else None
    xs = draw(st.lists(reals(fmt, allow_infinity=allow_infinity, max_magnitude=bound),
                       min_size=1, max_size=n))
    x = np.array(xs, dtype=np.float64)
    if within_range:
        x = np.clip(x, fmt.min, fmt.max)
        if not getattr(fmt, "signed", True):
            x = x + 0.0  # no -0 for unsigned formats
    return fmt, x


# --- monotone, idempotent, fixed points --------------------------------------------------------


@EXAMPLES
@given(format_and_values(n=16, allow_infinity=True))
def test_quantize_is_monotone(case: tuple[emu.Format, np.ndarray]) -> None:
    fmt, x = case
    x = np.sort(x)
    for mode in DETERMINISTIC:
        for ovf in allowed_overflows(fmt, wrap=False):
            if ovf == "nan":
                continue  # NaN is unordered
            q = quantize(x, fmt, mode, ovf)
            bad = np.flatnonzero(q[1:] < q[:-1])
            if bad.size:
                i = bad[0]
                pairs = f"x={x[i]!r}->{q[i]!r}, x={x[i + 1]!r}->{q[i + 1]!r}"
                raise AssertionError(f"{fmt} {mode} {ovf}: {pairs}")


@EXAMPLES
@given(format_and_values(allow_infinity=True), st.integers(0, 2**32))
def test_quantize_is_idempotent(case: tuple[emu.Format, np.ndarray], seed: int) -> None:
    fmt, x = case
    for mode in ALL_ROUNDINGS:
        for ovf in allowed_overflows(fmt, error=True):
            if ovf == "wrap" and not values_exact(fmt):
                continue  # the float64 value of a code near 2^(WL-1) may round past the top and wrap
            try:
                q = quantize(x, fmt, mode, ovf, seed=seed)
            except (OverflowError, ValueError):
                assert ovf in ("error", "wrap")  # overflow / +-inf under wrap
                continue
            again = quantize(q, fmt, mode, ovf, seed=seed + 1)
            assert same(again, q), f"{fmt} {mode} {ovf}: {x} -> {q} -> {again}"


@st.composite
def format_and_codes(draw: st.DrawFn) -> tuple[emu.Format, list[int]]:
    fmt = draw(st.one_of(fixed_formats(max_bits=53), float_formats(), pow2_formats()))
    return fmt, draw(st.lists(codes(fmt, canonical=True), min_size=1, max_size=12))


@EXAMPLES
@given(format_and_codes(), st.integers(0, 2**32))
def test_values_of_the_format_are_unchanged_in_every_mode(case: tuple[emu.Format, list[int]],
                                                          seed: int) -> None:
    fmt, cs = case
    c = np.array(cs, dtype=np.uint64)
    v = decode(c, fmt)
    assert [int(k) for k in encode(v, fmt)] == cs, f"{fmt}: encode(decode(c)) != c for {cs} (values {v})"
    inf = np.isinf(v)
    for mode in ALL_ROUNDINGS:
        for ovf in allowed_overflows(fmt, error=True):
            keep = inf & (ovf not in ("inf", "nan"))  # +-inf outside inf/nan overflows, as documented
            q, st_ = quantize(v[~keep], fmt, mode, ovf, seed=seed, return_stats=True)
            assert same(q, v[~keep]), f"{fmt} {mode} {ovf}: {v[~keep]} -> {q}"
            assert st_.overflow == 0
            assert st_.underflow == 0
            back = encode(v[~keep], fmt, mode, ovf, seed=seed)
            assert [int(k) for k in back] == [k for k, d in zip(cs, keep, strict=True) if not d]


TINY_STEP_FORMATS = [FloatFormat(11, m) for m in (2, 10, 23, 50)] + [
    FloatFormat(11, 30, subnormals=False), FloatFormat(8, 30, bias=1000),
    FloatFormat(1, 46, special="fn", bias=979),
    FloatFormat(11, 1), FloatFormat(11, 52),  # controls: smallest steps 2^-1023 and 2^-1074
]


@pytest.mark.parametrize("fmt", TINY_STEP_FORMATS, ids=str)
def test_zeros_and_subnormals_when_the_smallest_step_is_a_float64_subnormal(fmt: FloatFormat) -> None:
    # Formats whose subnormal step 2^(emin-M) lies among float64's subnormals (fp<11,M> has float64's
    # exponent range): zeros, the smallest normals and the subnormal grid come back unchanged in every
    # deterministic mode; 2^-1074 rounds to 0 or one step by the mode (or flushes to zero without
    # subnormals). Codes: +0 is 0 and -0 is the sign bit alone.
    emin = fmt.emin
    step = math.ldexp(1.0, emin - fmt.man_bits) if fmt.subnormals else 0.0
    grid = [0.0, -0.0, math.ldexp(1.0, emin), -math.ldexp(1.0, emin)]
    if emin + 1 <= fmt.emax:  # a second binade exists (fp<1,M,fn> has a single one)
        grid.append(math.ldexp(1.0, emin + 1))
    if fmt.subnormals and fmt.man_bits >= 2:
        grid += [math.ldexp(1.0, emin - 1), -math.ldexp(1.0, emin - 1), step, -3 * step]
    grid = np.array(grid)
    tiny = math.ldexp(1.0, -1074)
    for mode in DETERMINISTIC:
        q = quantize(grid, fmt, mode)
        assert same(q, grid), f"{fmt} {mode}: {grid} -> {q}"
        assert [int(c) for c in encode(grid[:2], fmt, mode)] == [0, 1 << (fmt.bits - 1)]
        up = quantize(np.array([tiny, -tiny]), fmt, mode)
        if not fmt.subnormals:
            want = [0.0, -0.0]
        elif step == tiny:  # fp<11,52>: 2^-1074 is on the grid
            want = [tiny, -tiny]
        elif step < 2 * tiny:  # tiny is exactly half a step (fp<11,51> would be) or more: not covered here
            raise AssertionError("pick formats with a step of at least 2^-1072")
        else:
            want = {"floor": [0.0, -step], "ceil": [step, -0.0],
                    "to_odd": [step, -step]}.get(mode, [0.0, -0.0])
        assert same(up, want), f"{fmt} {mode}: +-2^-1074 -> {up}, want {want}"


@EXAMPLES
@given(st.data())
def test_exact_ties_follow_the_tie_rule(data: st.DataObject) -> None:
    fmt = data.draw(st.one_of(fixed_formats(max_bits=53), float_formats(), pow2_formats()))
    top = max(fmt.max, -fmt.min)
    ties = data.draw(st.lists(exact_ties(fmt), max_size=6))
    signs = data.draw(st.lists(st.booleans(), min_size=len(ties), max_size=len(ties)))
    signed = getattr(fmt, "signed", True)
    x = np.array([-t if (neg and signed) else t for t, neg in zip(ties, signs, strict=True)], np.float64)
    x = x[(x < fmt.max) & (x > fmt.min)]
    if isinstance(fmt, FloatFormat) and not fmt.subnormals:
        x = x[np.abs(x) >= fmt.smallest_normal]  # below 2^emin: flushed before any rounding
    if x.size == 0:
        return
    assert np.all(np.abs(x) < top)
    for xi in x.tolist():
        if isinstance(fmt, FixedFormat):
            eps = Fraction(2) ** -fmt.frac_bits
            nb = {float(math.floor(Fraction(xi) / eps) * eps), float(math.ceil(Fraction(xi) / eps) * eps)}
        elif isinstance(fmt, FloatFormat):
            nb = float_neighbours(fmt, xi)
        else:
            nb = pow2_neighbours(fmt, xi)
        assert len(nb) == 2, (fmt, xi, nb)
        lo, hi = min(nb), max(nb)
        assert Fraction(xi) - Fraction(lo) == Fraction(hi) - Fraction(xi)  # an exact tie
        want = {"nearest_up": hi, "nearest_down": lo, "nearest_away": hi if xi > 0 else lo}
        for mode, v in want.items():
            q = float(quantize(xi, fmt, mode))
            assert q == v, f"{fmt} {mode}: tie x={xi!r} between {lo!r} and {hi!r} -> {q!r}"
        c = int(encode(xi, fmt, "nearest_even"))
        assert float(decode(c, fmt)) in nb, f"{fmt} nearest_even: tie x={xi!r} -> code {c}"
        if isinstance(fmt, FloatFormat) and fmt.man_bits == 0 and not fmt.ties_by_code and lo * hi != 0:
            # the significand 3/2 goes to 2: the larger magnitude
            assert float(decode(c, fmt)) == (hi if xi > 0 else lo), f"{fmt} nearest_even: tie x={xi!r}"
        else:
            assert c % 2 == 0, f"{fmt} nearest_even: tie x={xi!r} -> code {c}"


M0_TIES = [  # name, x in units of the smallest normal s (field 1), the expected codes (= exponent fields)
    ("fp<3,0>", [1.5, 3.0, 6.0], [2, 3, 4]),
    ("fp<3,0,bias=4>", [1.5, 3.0, 6.0], [2, 3, 4]),
    ("fp<3,0,fnuz>", [1.5, 3.0, 6.0], [2, 3, 4]),
    ("fp<4,0,fnuz>", [1.5, 3.0, 6.0], [2, 3, 4]),
    ("fp<3,0,none,bias=2>", [1.5, 3.0, 6.0], [2, 3, 4]),
    ("p3109<6,1>", [1.5, 3.0, 6.0], [2, 2, 4]),  # P3109: the even code (gfloat)
    ("p3109<7,1,finite>", [1.5, 3.0, 6.0], [2, 2, 4]),
]


@pytest.mark.parametrize(("name", "units", "want_codes"), M0_TIES, ids=[c[0] for c in M0_TIES])
def test_m0_ties_go_to_the_even_significand_or_the_even_p3109_code(name: str, units: list[float],
                                                                   want_codes: list[int]) -> None:
    # docs/semantics.md: with M = 0 a nearest_even tie's significand 3/2 goes to 2 (the next exponent
    # field), whatever the bias; P3109 formats go to the even exponent field.
    fmt = emu.format(name)
    s = fmt.smallest_normal
    x = np.array(units) * s
    want = decode(np.array(want_codes, np.uint64), fmt)
    q = quantize(x, fmt)
    assert same(q, want), f"{fmt}: {x / s} s -> {q / s} s, want {want / s} s"
    assert [int(c) for c in encode(x, fmt)] == want_codes
    assert [int(c) for c in encode(x, fmt, overflow="error")] == want_codes
    assert same(quantize(-x, fmt), -want)


def test_m0_nearest_even_matches_ml_dtypes_e8m0() -> None:
    """E8M0 (no sign, no zero, M = 0) under nearest even against ml_dtypes' float8_e8m0fnu on every
    power of two, the ties between them and their float32 neighbours."""
    e = np.arange(-127, 128)
    p = np.ldexp(1.0, e)
    x = np.concatenate([p, 1.5 * p, np.nextafter((1.5 * p).astype(np.float32), np.float32(0)),
                        np.nextafter((1.5 * p).astype(np.float32), np.float32(np.inf))]).astype(np.float32)
    x = x[np.isfinite(x) & (x <= 2.0**127)]
    want = x.astype(ml_dtypes.float8_e8m0fnu).astype(np.float64)
    got = quantize(x.astype(np.float64), "e8m0")
    assert same(got, want), np.flatnonzero(~np.equal(got, want))[:5]


# --- symmetry and bounds -----------------------------------------------------------------------

SIGNED_FORMATS = st.one_of(float_formats(), pow2_formats(signed=True))


@EXAMPLES
@given(st.one_of(format_and_values(SIGNED_FORMATS, allow_infinity=True),
                 # fixed point: [-max, max] stays inside the asymmetric two's complement range
                 format_and_values(fixed_formats(signed=True), within_range=True)), st.integers(0, 2**32))
def test_sign_symmetry(case: tuple[emu.Format, np.ndarray], seed: int) -> None:
    fmt, x = case
    if isinstance(fmt, FixedFormat):
        x = np.clip(x, -fmt.max, fmt.max)
    signed_zero = has_signed_zero(fmt)

    def check(a: np.ndarray, b: np.ndarray, what: str) -> None:
        ok = np.array_equal(a, b, equal_nan=True)
        if signed_zero:
            ok = ok and np.array_equal(np.signbit(a[~np.isnan(a)]), np.signbit(b[~np.isnan(b)]))
        assert ok, f"{fmt} {what}: x={x} {a} != {b}"

    modes = ["nearest_even", "nearest_away", "toward_zero"]
    if isinstance(fmt, FloatFormat):
        modes.append("stochastic")  # float stochastic rounding acts on the magnitude
    for ovf in allowed_overflows(fmt, wrap=False):
        for mode in modes:
            neg = quantize(-x, fmt, mode, ovf, seed=seed)
            check(neg, -quantize(x, fmt, mode, ovf, seed=seed), f"{mode} {ovf}")
        check(quantize(-x, fmt, "floor", ovf), -quantize(x, fmt, "ceil", ovf), f"floor/ceil {ovf}")
        check(quantize(-x, fmt, "ceil", ovf), -quantize(x, fmt, "floor", ovf), f"ceil/floor {ovf}")


@EXAMPLES
@given(format_and_values(allow_infinity=True), st.integers(0, 2**32),
       st.sampled_from([None, 1, 3, 17, 64]))
def test_saturate_stays_in_range(case: tuple[emu.Format, np.ndarray], seed: int, rbits: int | None) -> None:
    fmt, x = case
    for mode in ALL_ROUNDINGS:
        q, st_ = quantize(x, fmt, mode, "saturate", seed=seed, return_stats=True,
                          random_bits=rbits if mode == "stochastic" else None)
        assert np.all((q >= fmt.min) & (q <= fmt.max)), f"{fmt} {mode}: {x} -> {q}"
        assert st_.overflow >= int(np.count_nonzero(np.isinf(x)))


# --- fixed point against exact integers --------------------------------------------------------


@EXAMPLES
@given(format_and_values(fixed_formats()), st.integers(0, 2**32), st.sampled_from([None, 1, 7, 52, 64]))
def test_fixed_point_equals_exact_integer_arithmetic(case: tuple[FixedFormat, np.ndarray], seed: int,
                                                     rbits: int | None) -> None:
    fmt, x = case
    scale = Fraction(2) ** fmt.frac_bits
    ts = [Fraction(v) * scale for v in x.tolist()]
    m = 1 << fmt.bits
    for mode in ALL_ROUNDINGS:
        kw = {"seed": seed, "random_bits": rbits if mode == "stochastic" else None}
        if mode == "stochastic":
            want = [(math.floor(t), math.ceil(t)) for t in ts]
        else:
            want = [(round_fraction(t, mode),) * 2 for t in ts]
        out = [any(not fmt.qmin <= q <= fmt.qmax for q in w) for w in want]
        sure_out = [all(not fmt.qmin <= q <= fmt.qmax for q in w) for w in want]

        c, st_ = encode(x, fmt, mode, "wrap", return_stats=True, **kw)
        got = [int(k) for k in c]
        for xi, g, w in zip(x, got, want, strict=True):
            assert 0 <= g < m
            assert any((g - q) % m == 0 for q in w), f"{fmt} {mode} wrap: x={xi!r} code {g}, exact {w}"
        assert sum(sure_out) <= st_.overflow <= sum(out)

        c, st_ = encode(x, fmt, mode, "saturate", return_stats=True, **kw)
        for xi, g, w in zip(x, c, want, strict=True):
            q = int(g) - m if fmt.signed and int(g) >> (fmt.bits - 1) else int(g)
            clamped = {min(max(v, fmt.qmin), fmt.qmax) for v in w}
            assert q in clamped, f"{fmt} {mode} saturate: x={xi!r} code {g}"
        assert sum(sure_out) <= st_.overflow <= sum(out)

        if mode != "stochastic":
            if any(out):
                with pytest.raises(OverflowError, match=rf"{sum(out)} of {x.size}"):
                    encode(x, fmt, mode, "error")
            else:
                encode(x, fmt, mode, "error")


# --- stochastic rounding -----------------------------------------------------------------------


@EXAMPLES
@given(format_and_values(within_range=True, n=20), st.integers(0, 2**64 - 1),
       st.sampled_from([None, 1, 2, 8, 53, 64]))
def test_stochastic_gives_one_of_the_two_neighbours(case: tuple[emu.Format, np.ndarray], seed: int,
                                                    rbits: int | None) -> None:
    fmt, x = case
    if isinstance(fmt, FixedFormat):
        assume(values_exact(fmt))
        eps = Fraction(2) ** -fmt.frac_bits
        nb = [{float(math.floor(Fraction(v) / eps) * eps), float(math.ceil(Fraction(v) / eps) * eps)}
              for v in x.tolist()]
    elif isinstance(fmt, FloatFormat):
        nb = [float_neighbours(fmt, v) for v in x.tolist()]
    else:
        nb = [pow2_neighbours(fmt, v) for v in x.tolist()]
    for ovf in ("saturate", "error"):
        q = quantize(x, fmt, "stochastic", ovf, seed=seed, random_bits=rbits)
        for xi, qi, n in zip(x, q, nb, strict=True):
            assert qi in n, f"{fmt} {ovf} rbits={rbits}: x={xi!r} -> {qi!r}, neighbours {n}"


SEED_CASES = [(emu.format(n), r) for n in (
    "fx<8,8>", "ufx<4,4>", "fx<-2,10>", "fx<10,-2>", "fx<40,20>", "e4m3", "e5m2", "bf16", "fp<5,10,ftz>",
    "fp<8,30>", "pow2<-8,0>", "upow2<-4,3>") for r in (None, 5)] + [
    (emu.format(n), None) for n in ("binary<stochastic>", "ternary<stochastic>")]  # fmt: skip


@pytest.mark.parametrize(("fmt", "rbits"), SEED_CASES, ids=[f"{f}-rbits={r}" for f, r in SEED_CASES])
def test_same_seed_same_result_on_one_or_two_threads(fmt: emu.Format, rbits: int | None) -> None:
    rng = np.random.default_rng(2024)
    top = min(max(fmt.max, -fmt.min), 1e30)
    x = rng.uniform(-1.1, 1.1, 200_000) * top  # several chunks of the parallel kernels
    x[::7] = rng.uniform(-1.0, 1.0, x[::7].size) * getattr(fmt, "smallest_normal", 1.0) * 4
    kw = {} if fmt.kind in ("binary", "ternary") else {"rounding": "stochastic", "random_bits": rbits}
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        a, sa = quantize(x, fmt, seed=123, return_stats=True, **kw)
        ca = encode(x, fmt, seed=123, **kw)
        numba.set_num_threads(1)
        b, sb = quantize(x, fmt, seed=123, return_stats=True, **kw)
        cb = encode(x, fmt, seed=123, **kw)
    finally:
        numba.set_num_threads(before)
    assert same(a, b)
    assert sa == sb
    np.testing.assert_array_equal(ca, cb)
    assert same(decode(ca, fmt), a)  # the general (code) path and the values path draw the same bits
    assert same(quantize(x, fmt, seed=np.random.SeedSequence(123), **kw), a)
    g1 = quantize(x, fmt, seed=np.random.default_rng(5), **kw)
    g2 = quantize(x, fmt, seed=np.random.default_rng(5), **kw)
    assert same(g1, g2)
    other = quantize(x, fmt, seed=124, **kw)
    assert not same(other, a)
    # a small input (serial kernels) draws the same bits as the same elements of a large one (parallel)
    assert same(quantize(x[:3000], fmt, seed=123, **kw), a[:3000])
    if fmt.kind not in ("binary", "ternary"):
        det = quantize(x, fmt, "nearest_even")
        assert same(quantize(x[:3000], fmt, "nearest_even"), det[:3000])
        np.testing.assert_array_equal(encode(x[:3000], fmt, seed=123, **kw), ca[:3000])
    # the stream is indexed by the C-order flat index: a reshaped input gives the reshaped result
    assert same(quantize(x.reshape(400, 500), fmt, seed=123, **kw).reshape(-1), a)
    assert same(quantize(x.reshape(500, 400).T, fmt, seed=123, **kw),
                quantize(np.ascontiguousarray(x.reshape(500, 400).T), fmt, seed=123, **kw))


def test_without_a_seed_results_differ() -> None:
    x = np.full(10_000, 0.5 + 2**-10)
    a = quantize(x, "fx<4,0>", "stochastic")
    b = quantize(x, "fx<4,0>", "stochastic")
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert not same(a, b)


# --- the API views agree -----------------------------------------------------------------------


def _strip(s: str) -> str:
    """A bits() string without grouping and without the implied bits shown in parentheses."""
    out, depth = [], 0
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch != "|" and depth == 0:
            out.append(ch)
    return "".join(out)


@EXAMPLES
@given(format_and_values(allow_infinity=True), st.sampled_from(ALL_ROUNDINGS), st.integers(0, 2**32))
def test_quantize_encode_decode_and_bits_agree(case: tuple[emu.Format, np.ndarray], mode: str,
                                               seed: int) -> None:
    fmt, x = case
    for ovf in allowed_overflows(fmt):
        if ovf == "wrap" and np.isinf(x).any():
            x = x[np.isfinite(x)]
        q, sq = quantize(x, fmt, mode, ovf, seed=seed, return_stats=True)
        c, sc = encode(x, fmt, mode, ovf, seed=seed, return_stats=True)
        assert sq == sc
        assert c.dtype == {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}[
            min(w for w in (8, 16, 32, 64) if w >= fmt.bits)]
        assert same(decode(c, fmt), q), f"{fmt} {mode} {ovf}: x={x} q={q} decode={decode(c, fmt)}"
        b = emu.bits(x, fmt, mode, ovf, seed=seed)
        assert b.shape == x.shape
        for s, k in zip(b.tolist(), c.tolist(), strict=True):
            assert _strip(s) == format(int(k), f"0{fmt.bits}b"), (s, k)
            if isinstance(fmt, FloatFormat):
                assert [len(p) for p in s.split("|")] == [1, fmt.exp_bits, fmt.man_bits]
            elif isinstance(fmt, FixedFormat) and fmt.int_bits >= 0 and fmt.frac_bits >= 0:
                assert [len(p) for p in s.split("|")] == [fmt.int_bits, fmt.frac_bits]


def test_bits_show_the_implied_bits() -> None:
    assert emu.bits(-1.5, "e4m3") == "1|0111|100"
    assert emu.bits(0.75, "fx<2,6>") == "00|110000"
    assert emu.bits(6.0, "fx<4,-1>") == "011(0)|"
    assert emu.bits(-(2.0**-10), "fx<-2,10>") == "|(11)11111111"
    assert emu.bits(2.0**-10, "fx<-2,10>") == "|(00)00000001"
    assert emu.bits(2.0**-10, "ufx<-2,10>") == "|(00)00000001"
    assert emu.bits(-0.5, "pow2<-8,0>") == "1|1000"
    assert emu.bits(0.5, "upow2<-4,3>") == "0100"
    assert list(emu.bits([1.0, -3.0], "binary")) == ["1", "0"]
    assert list(emu.bits([1.0, -3.0, 0.0], "ternary<scale=none>")) == ["01", "11", "00"]


@settings(max_examples=100)
@given(st.lists(st.floats(-4, 4), min_size=1, max_size=20), st.sampled_from(
    ["binary", "binary<stochastic>", "binary<scale=tensor>", "binary<scale=channel>", "ternary",
     "ternary<scale=none>", "ternary<scale=channel>", "ttq", "ternary<stochastic>"]), st.integers(0, 2**32))
def test_binary_and_ternary_views_agree(xs: list[float], name: str, seed: int) -> None:
    fmt = emu.format(name)
    x = np.array(xs)
    if fmt.has_data_scale and getattr(fmt, "scale", None) == "channel":
        x = np.stack([x, -x[::-1] * 0.5])
    q = quantize(x, fmt, seed=seed)
    enc = encode(x, fmt, seed=seed)
    c, sc = enc if fmt.has_data_scale else (enc, None)
    assert same(decode(c, fmt, scale=sc) if fmt.has_data_scale else decode(c, fmt), q)
    assert c.dtype == np.uint8
    assert set(np.unique(c)) <= ({0, 1} if fmt.kind == "binary" else {0, 1, 3})


# --- error metrics -----------------------------------------------------------------------------


def test_absolute_and_relative_error() -> None:
    np.testing.assert_array_equal(emu.absolute_error([1.0, -2.0, 0.5], [1.25, -2.0, 0.0]), [0.25, 0.0, 0.5])
    r = emu.relative_error([2.0, 0.0, 0.0, -4.0, 0.0], [2.5, 0.0, 1.0, -3.0, -1.0])
    np.testing.assert_array_equal(r, [0.25, 0.0, math.inf, -0.25, -math.inf])
    assert emu.relative_error(4.0, 5.0).shape == ()
    assert emu.absolute_error(np.ones((2, 3)), np.zeros((2, 3))).shape == (2, 3)


def test_error_summary_shares() -> None:
    x = [1.0, 2.0, 4.0, 8.0, 16.0, 0.0, 0.0, -4.0]
    q = [1.03125, 2.25, 5.0, 16.0, 48.0, 0.0, 1.0, -5.0]  # |rel|: 1/32, 1/8, 1/4, 1, 2, 0, inf, 1/4
    s = emu.error_summary(x, q)
    assert s.n == 8
    assert s.share_above == {0.04: 0.75, 0.15: 0.625, 1.0: 0.25}  # 100 % itself is not above 100 %
    assert (s.max_abs, s.mean_abs) == (32.0, 43.28125 / 8)
    assert s.max_rel == math.inf
    assert s.mean_rel == math.inf
    assert s.median_rel == 0.25

    s = emu.error_summary([1.0, 2.0, 4.0, 8.0], [1.0625, 2.25, 5.0, 8.0])  # 1/16, 1/8, 1/4, 0
    assert s.share_above == {0.04: 0.75, 0.15: 0.25, 1.0: 0.0}
    assert (s.max_rel, s.mean_rel, s.median_rel) == (0.25, 0.4375 / 4, 0.09375)
    assert (s.max_abs, s.mean_abs) == (1.0, 1.3125 / 4)

    # exactly at a threshold is not above it
    s = emu.error_summary([4.0, 4.0], [5.0, 4.5], thresholds=(0.125, 0.25))
    assert s.share_above == {0.125: 0.5, 0.25: 0.0}

    e = emu.error_summary([], [])
    assert e.n == 0
    assert e.share_above == {0.04: 0.0, 0.15: 0.0, 1.0: 0.0}


def test_error_summary_on_a_real_conversion() -> None:
    x = np.array([1.0, 1.1, 3.3, 100.0, 1e-4])
    q = quantize(x, "fx<4,2>")  # 1.0, 1.0, 3.25, 7.75 (saturated), 0.0
    s = emu.error_summary(x, q)
    assert s.share_above == {0.04: 0.6, 0.15: 0.4, 1.0: 0.0}


def test_error_summary_counts_zero_over_zero_as_exact() -> None:
    # ErrorSummary's docstring: a zero that stays zero counts as relative error 0 (exact),
    # a zero that becomes nonzero as inf.
    s = emu.error_summary([0.0, 1.0], [0.0, 1.5])
    assert (s.max_rel, s.mean_rel, s.median_rel) == (0.5, 0.25, 0.25)
    assert emu.error_summary([0.0], [1.0]).max_rel == np.inf


# --- the bit-mask method -----------------------------------------------------------------------


def _float32_patterns(n: int) -> np.ndarray:
    """n random float32 bit patterns that are not NaN (finite and inf), after the edge cases."""
    rng = np.random.default_rng(11)
    pat = rng.integers(0, 2**32, n + n // 4, dtype=np.uint64).astype(np.uint32)
    pat[: n // 8] &= np.uint32(0x807FFFFF)  # a share of subnormals and zeros
    pat[n // 8: n // 4] |= np.uint32(0x7F000000)  # and of huge values and infinities
    x = pat.view(np.float32)
    edges = np.array([0, 1, 2, 0x7FFFFF, 0x800000, 0x800001, 0x7F7FFFFF, 0x7F800000, 0x3F800000, 0x3FFFFFFF,
                      0x3F7FFFFF, 0x00400000, 0x33800000, 0x4B7FFFFF], dtype=np.uint32)
    edges = np.concatenate([edges, edges | np.uint32(0x80000000)]).view(np.float32)
    return np.concatenate([edges, x[~np.isnan(x)][:n]])


def test_mask_float32_is_toward_zero_rounding() -> None:
    x = _float32_patterns(1_000_000)
    assert x.size > 1_000_000
    assert not np.isnan(x).any()
    assert np.isinf(x).any()
    assert (np.abs(x) < np.finfo(np.float32).smallest_normal).sum() > 100_000
    for m in range(24):
        masked = emu.mask_float32(x, m)
        assert masked.dtype == np.float32
        want = quantize(x, FloatFormat(8, m), "toward_zero")
        got = masked.astype(np.float64)
        bad = np.flatnonzero(got.view(np.uint64) != want.view(np.uint64))
        assert bad.size == 0, f"M={m}: x={x[bad[0]]!r} mask {got[bad[0]]!r} quantize {want[bad[0]]!r}"
    np.testing.assert_array_equal(emu.mask_float32(x, 23), x)


def test_mask_float32_arguments() -> None:
    assert emu.mask_float32([1.9999999, -3.3], 2).tolist() == [1.75, -3.0]
    for bad in (-1, 24):
        with pytest.raises(ValueError, match=r"man_bits.*\[0, 23\]"):
            emu.mask_float32([1.0], bad)
    with pytest.raises(TypeError, match="man_bits"):
        emu.mask_float32([1.0], 2.0)
