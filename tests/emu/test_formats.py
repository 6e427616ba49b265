"""Format descriptors and the registry: construction, identity, derived values, names.

- Construction and validation: every bad parameter of every family raises
  ValueError (bad value) or TypeError (bad type) with a message naming the
  parameter and what is allowed.
- Formats are frozen values: assignment raises, equal formats compare and hash
  equal, defaults (bias=None, threshold=None, scale="auto") resolve to the
  value they stand for.
- Derived properties against hand-computed exact dyadic values (fp8 formats,
  fixed point with negative IL or FL, powers of two, ``ulp``), against
  ``numpy.finfo`` / ``ml_dtypes.finfo``, and against the exact values of every
  code of small random formats.
- The registry: ``get_format(str(f)) == f`` over ``emu.ALL_FORMATS`` and
  hundreds of random formats, canonical names, aliases, unknown names
  (``UnknownFormatError``, both KeyError and ValueError, listing close names)
  and malformed parametric names (ValueError).
"""

from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu
from emu import (
    BinaryFormat,
    FixedFormat,
    FloatFormat,
    Pow2Format,
    TernaryFormat,
    UnknownFormatError,
    get_format,
)
from tests.strategies import any_formats, exact_value, fixed_formats, float_formats, pow2_formats

P = math.ldexp  # P(1, -6) == 2**-6, written as an exact dyadic


# --- construction and validation ---------------------------------------------------------------

BAD = [
    # (call, exception, substrings the message must hold)
    (lambda: FixedFormat(40, 30), ValueError, ["bits", "70", "[1, 62]"]),
    (lambda: FixedFormat(0, 0), ValueError, ["bits", "[1, 62]"]),
    (lambda: FixedFormat(31, 32), ValueError, ["bits", "63", "[1, 62]"]),
    (lambda: FixedFormat(-5, 3), ValueError, ["bits", "[1, 62]"]),
    (lambda: FixedFormat(2000, -1990), ValueError, ["int_bits", "2000"]),
    (lambda: FixedFormat(2.0, 14), TypeError, ["int_bits", "int"]),
    (lambda: FixedFormat(2, "14"), TypeError, ["frac_bits", "int"]),
    (lambda: FixedFormat(True, 14), TypeError, ["int_bits", "int"]),
    (lambda: FixedFormat(2, 14, signed="yes"), TypeError, ["signed", "bool"]),
    (lambda: FloatFormat(12, 3), ValueError, ["exp_bits", "12", "[1, 11]"]),
    (lambda: FloatFormat(0, 3), ValueError, ["exp_bits", "[1, 11]"]),
    (lambda: FloatFormat(4, 53), ValueError, ["man_bits", "53", "[0, 52]"]),
    (lambda: FloatFormat(4, -1), ValueError, ["man_bits", "[0, 52]"]),
    (lambda: FloatFormat(4.0, 3), TypeError, ["exp_bits", "int"]),
    (lambda: FloatFormat(4, 3.0), TypeError, ["man_bits", "int"]),
    (lambda: FloatFormat(1, 3, subnormals=False), ValueError, ["exp_bits=1", "ieee", "no finite nonzero"]),
    (lambda: FloatFormat(1, 0, special="ieee"), ValueError, ["exp_bits=1", "ieee", "no finite nonzero"]),
    (lambda: FloatFormat(4, 3, special="xyz"), ValueError, ["special", "ieee", "fn", "fnuz", "none"]),
    (lambda: FloatFormat(4, 3, special="IEEE"), ValueError, ["special", "ieee", "fn", "fnuz", "none"]),
    (lambda: FloatFormat(4, 3, special=None), ValueError, ["special", "ieee", "fn", "fnuz", "none"]),
    (lambda: FloatFormat(4, 3, bias=5000), ValueError, ["bias", "[-2000, 2000]"]),
    (lambda: FloatFormat(4, 3, bias=2000), ValueError, ["bias", "bias <= 1072"]),
    (lambda: FloatFormat(11, 52, bias=1000), ValueError, ["bias", "bias >= 1023"]),
    (lambda: FloatFormat(11, 3, special="none"), ValueError, ["bias", "bias >= 1024"]),
    (lambda: FloatFormat(4, 3, bias=3.5), TypeError, ["bias", "int"]),
    (lambda: FloatFormat(4, 3, bias=True), TypeError, ["bias", "int"]),
    (lambda: FloatFormat(4, 3, subnormals=1), TypeError, ["subnormals", "bool"]),
    (lambda: Pow2Format(3, 1), ValueError, ["emax=1", "emin=3"]),
    (lambda: Pow2Format(-2000, 0), ValueError, ["emin", "[-1074, 1023]"]),
    (lambda: Pow2Format(0, 1024), ValueError, ["emax", "[-1074, 1023]"]),
    (lambda: Pow2Format(0.5, 1), TypeError, ["emin", "int"]),
    (lambda: Pow2Format(0, 1, signed=1), TypeError, ["signed", "bool"]),
    (lambda: TernaryFormat("foo"), ValueError, ["method", "twn", "ttq", "stochastic"]),
    (lambda: TernaryFormat(threshold=-1.0), ValueError, ["threshold", "> 0"]),
    (lambda: TernaryFormat(threshold=0), ValueError, ["threshold", "> 0"]),
    (lambda: TernaryFormat(threshold=math.nan), ValueError, ["threshold", "finite"]),
    (lambda: TernaryFormat(threshold=math.inf), ValueError, ["threshold", "finite"]),
    (lambda: TernaryFormat("ttq", threshold=-0.5), ValueError, ["threshold", "> 0"]),
    (lambda: TernaryFormat(threshold="0.7"), TypeError, ["threshold", "number"]),
    (lambda: TernaryFormat(threshold=True), TypeError, ["threshold", "number"]),
    (lambda: TernaryFormat("stochastic", threshold=0.5), ValueError, ["threshold", "stochastic"]),
    (lambda: TernaryFormat("stochastic", scale="tensor"), ValueError, ["scale", "None"]),
    (lambda: TernaryFormat("ttq", scale=None), ValueError, ["scale", "tensor", "channel"]),
    (lambda: TernaryFormat(scale="layer"), ValueError, ["scale", "tensor", "channel"]),
    (lambda: BinaryFormat(scale="foo"), ValueError, ["scale", "tensor", "channel"]),
    (lambda: BinaryFormat(scale="auto"), ValueError, ["scale", "tensor", "channel"]),
    (lambda: BinaryFormat(stochastic="yes"), TypeError, ["stochastic", "bool"]),
]


@pytest.mark.parametrize(("make", "exc", "words"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_parameters_raise_with_a_message_naming_the_parameter(make, exc, words) -> None:
    with pytest.raises(exc, match=re.escape(words[0])) as info:
        make()
    msg = str(info.value)
    missing = [w for w in words if w not in msg]
    assert not missing, f"message {msg!r} lacks {missing}"
    if exc is ValueError:
        assert not isinstance(info.value, TypeError)


def test_fn_without_a_finite_nonzero_value_is_rejected() -> None:
    # fp<1,0,fn>: the exponent field 1 is all NaN (fn with M = 0), the field 0 holds only +-0. Like
    # FloatFormat(1, 0) (ieee: the field 1 is inf) and FloatFormat(1, m, subnormals=False) the format has
    # no number besides zero and is refused.
    with pytest.raises(ValueError, match="exp_bits"):
        FloatFormat(1, 0, special="fn")


# --- frozen values -----------------------------------------------------------------------------

ONE_OF_EACH = [
    FixedFormat(2, 14), FixedFormat(0, 8, signed=False), FloatFormat(4, 3, special="fn"), FloatFormat(6, 7),
    Pow2Format(-8, 0), BinaryFormat(), BinaryFormat(stochastic=True, scale="channel"), TernaryFormat(),
    TernaryFormat("ttq"), TernaryFormat("stochastic"),
]  # fmt: skip


@pytest.mark.parametrize("fmt", ONE_OF_EACH, ids=str)
def test_fields_cannot_be_assigned(fmt: emu.Format) -> None:
    field = dataclasses.fields(fmt)[0].name
    before = getattr(fmt, field)
    with pytest.raises(dataclasses.FrozenInstanceError, match=f"cannot assign to field '{field}'"):
        setattr(fmt, field, before)
    assert getattr(fmt, field) == before


@pytest.mark.parametrize("fmt", [FixedFormat(2, 14), FloatFormat(4, 3), Pow2Format(-8, 0), BinaryFormat(),
                                 TernaryFormat()], ids=str)
def test_new_attributes_cannot_be_added(fmt: emu.Format) -> None:
    # a frozen, slotted object refuses new attributes with AttributeError (not an internal TypeError)
    with pytest.raises(AttributeError, match="colour"):
        fmt.colour = "red"  # type: ignore[attr-defined]


def test_equal_formats_compare_and_hash_equal() -> None:
    assert FloatFormat(4, 3, special="fn") == get_format("e4m3")
    assert hash(FloatFormat(4, 3, special="fn")) == hash(get_format("e4m3"))
    assert FloatFormat(4, 3, bias=None) == FloatFormat(4, 3, bias=7)
    assert FloatFormat(4, 3).bias == 7
    assert FloatFormat(4, 3, special="fnuz").bias == 8
    fnuz = FloatFormat(4, 3, special="fnuz")
    assert fnuz == FloatFormat(4, 3, bias=8, special="fnuz") == get_format("e4m3fnuz")
    assert FloatFormat(5, 2, special="fnuz").bias == 16
    assert FloatFormat(8, 23) == get_format("fp32") == get_format("float32")
    assert FixedFormat(np.int64(2), np.int32(14)) == FixedFormat(2, 14)
    assert hash(FixedFormat(np.int64(2), np.int32(14))) == hash(FixedFormat(2, 14))
    assert type(FixedFormat(np.int64(2), 14).int_bits) is int
    assert FixedFormat(2, 14, signed=np.bool_(True)) == FixedFormat(2, 14)
    assert FixedFormat(2, 14) != FixedFormat(2, 14, signed=False)
    assert FixedFormat(2, 14) != FixedFormat(3, 13)
    assert FloatFormat(4, 3) != FloatFormat(4, 3, special="fn")
    assert FloatFormat(4, 3) != FloatFormat(4, 3, subnormals=False)
    assert TernaryFormat() == TernaryFormat(threshold=0.7) == TernaryFormat(scale="tensor")
    assert TernaryFormat("ttq") == TernaryFormat("ttq", threshold=0.05, scale="tensor")
    assert TernaryFormat("stochastic").scale is None
    assert BinaryFormat() == BinaryFormat(stochastic=False, scale=None)
    assert len(set(emu.ALL_FORMATS)) == len({str(f) for f in emu.ALL_FORMATS})
    assert {FixedFormat(2, 14): "a"}[get_format("fx<2,14>")] == "a"


# --- derived properties ------------------------------------------------------------------------


def test_e4m3() -> None:
    f = get_format("e4m3")
    assert (f.exp_bits, f.man_bits, f.bias, f.special, f.bits, f.n_codes) == (4, 3, 7, "fn", 8, 256)
    assert f.max == 448.0 == P(0b1110, 5)
    assert f.min == -448.0
    assert f.smallest_normal == P(1, -6)
    assert f.smallest_subnormal == P(1, -9)
    assert f.eps == P(1, -3)
    assert (f.emin, f.emax) == (-6, 8)
    assert (f.has_inf, f.has_nan, f.has_negative_zero) == (False, True, True)
    assert f.default_overflow == emu.Overflow.SATURATE
    assert set(f.overflow_modes) == {emu.Overflow.SATURATE, emu.Overflow.ERROR, emu.Overflow.NAN}


def test_e5m2() -> None:
    f = get_format("e5m2")
    assert (f.bias, f.special, f.bits, f.n_codes) == (15, "ieee", 8, 256)
    assert f.max == 57344.0 == P(0b111, 13)
    assert f.smallest_normal == P(1, -14)
    assert f.smallest_subnormal == P(1, -16)
    assert (f.has_inf, f.has_nan, f.has_negative_zero) == (True, True, True)
    assert f.default_overflow == emu.Overflow.INF
    assert set(f.overflow_modes) == set(emu.Overflow) - {emu.Overflow.WRAP}


def test_fnuz_formats() -> None:
    f = get_format("e4m3fnuz")
    assert (f.bias, f.max, f.smallest_normal, f.smallest_subnormal) == (8, 240.0, P(1, -7), P(1, -10))
    assert (f.has_inf, f.has_nan, f.has_negative_zero) == (False, True, False)
    g = get_format("e5m2fnuz")
    assert (g.bias, g.max, g.smallest_normal, g.smallest_subnormal) == (16, 57344.0, P(1, -15), P(1, -17))
    assert (g.has_inf, g.has_nan, g.has_negative_zero) == (False, True, False)


def test_fp4_fp6_and_custom_floats() -> None:
    assert (get_format("e2m1").max, get_format("e2m1").smallest_subnormal) == (6.0, 0.5)
    assert (get_format("e2m3").max, get_format("e2m3").smallest_subnormal) == (7.5, P(1, -3))
    assert (get_format("e3m2").max, get_format("e3m2").smallest_subnormal) == (28.0, P(1, -4))
    for name in ("e2m1", "e2m3", "e3m2"):
        f = get_format(name)
        assert (f.has_inf, f.has_nan) == (False, False)
        assert set(f.overflow_modes) == {emu.Overflow.SATURATE, emu.Overflow.ERROR}
    h = FloatFormat(6, 7, special="none")  # Hill et al. 2016
    assert (h.bias, h.max) == (31, P(0xFF, 32 - 7))
    assert (h.smallest_normal, h.smallest_subnormal) == (P(1, -30), P(1, -37))
    ftz = FloatFormat(4, 3, subnormals=False)
    assert ftz.smallest_subnormal == ftz.smallest_normal == P(1, -6)
    # fp<3,0> (ieee, bias 3): finite fields 1..6, max 2^(6-3) = 8; with M = 0 the all-ones field is inf only
    assert FloatFormat(3, 0).max == 8.0
    assert (FloatFormat(3, 0).has_nan, FloatFormat(3, 0).has_inf) == (False, True)
    # fp<4,0,fn>: the all-ones exponent is NaN, so the max is 2^(14-7)
    assert FloatFormat(4, 0, special="fn").max == 128.0


@pytest.mark.parametrize(("name", "dtype"), [
    ("fp16", np.float16), ("fp32", np.float32), ("fp64", np.float64), ("bf16", ml_dtypes.bfloat16),
    ("e4m3", ml_dtypes.float8_e4m3fn), ("e5m2", ml_dtypes.float8_e5m2),
    ("e4m3fnuz", ml_dtypes.float8_e4m3fnuz), ("e5m2fnuz", ml_dtypes.float8_e5m2fnuz),
    ("fp<4,3>", ml_dtypes.float8_e4m3), ("fp<3,4>", ml_dtypes.float8_e3m4),
    ("fp<4,3,fnuz,bias=11>", ml_dtypes.float8_e4m3b11fnuz),
    ("e2m1", ml_dtypes.float4_e2m1fn), ("e2m3", ml_dtypes.float6_e2m3fn), ("e3m2", ml_dtypes.float6_e3m2fn),
], ids=str)  # fmt: skip
def test_float_ranges_match_finfo(name: str, dtype: type) -> None:
    f = get_format(name)
    fi = ml_dtypes.finfo(dtype) if dtype not in (np.float16, np.float32, np.float64) else np.finfo(dtype)
    assert f.max == float(fi.max)
    assert f.min == float(fi.min)
    assert f.smallest_normal == float(fi.smallest_normal)
    assert f.smallest_subnormal == float(fi.smallest_subnormal)
    assert f.eps == float(fi.eps)
    assert f.bits == fi.bits
    assert (f.exp_bits, f.man_bits) == (fi.nexp, fi.nmant)


def test_fixed_ranges() -> None:
    f = get_format("fx<2,14>")
    assert (f.bits, f.eps, f.min, f.max) == (16, P(1, -14), -2.0, 2.0 - P(1, -14))
    assert (f.qmin, f.qmax, f.n_codes) == (-(2**15), 2**15 - 1, 2**16)
    u = get_format("ufx<0,8>")
    assert (u.bits, u.eps, u.min, u.max) == (8, P(1, -8), 0.0, 1 - P(1, -8))
    assert (u.qmin, u.qmax, u.n_codes) == (0, 255, 256)
    n = get_format("fx<-2,10>")
    assert (n.bits, n.eps, n.min, n.max) == (8, P(1, -10), -P(1, -3), P(1, -3) - P(1, -10))
    w = get_format("fx<10,-2>")
    assert (w.bits, w.eps, w.min, w.max) == (8, 4.0, -512.0, 508.0)
    assert (w.smallest_normal, w.smallest_subnormal) == (4.0, 4.0)
    one = get_format("fx<1,0>")
    assert (one.min, one.max, one.qmin, one.qmax) == (-1.0, 0.0, -1, 0)
    big = get_format("ufx<62,0>")
    assert (big.qmin, big.qmax, big.n_codes) == (0, 2**62 - 1, 2**62)
    assert set(f.overflow_modes) == {emu.Overflow.SATURATE, emu.Overflow.WRAP, emu.Overflow.ERROR}
    assert f.default_overflow == emu.Overflow.SATURATE


def test_pow2_ranges() -> None:
    f = get_format("pow2<-8,0>")
    assert (f.n_codes, f.bits, f.k_bits, f.n_exponents) == (19, 5, 4, 9)
    assert (f.max, f.min, f.smallest_normal, f.smallest_subnormal) == (1.0, -1.0, P(1, -8), P(1, -8))
    u = get_format("upow2<-4,3>")
    assert (u.n_codes, u.bits, u.max, u.min) == (9, 4, 8.0, 0.0)
    one = get_format("pow2<-2,-2>")
    assert (one.n_codes, one.bits, one.max, one.min) == (3, 2, 0.25, -0.25)
    assert set(f.overflow_modes) == {emu.Overflow.SATURATE, emu.Overflow.ERROR}


def test_binary_and_ternary_descriptors() -> None:
    b, t = BinaryFormat(), TernaryFormat()
    assert (b.bits, b.n_codes, b.max, b.min) == (1, 2, 1.0, -1.0)
    assert (t.bits, t.n_codes, t.max, t.min, t.threshold) == (2, 3, 1.0, -1.0, 0.7)
    assert TernaryFormat("ttq").threshold == 0.05
    assert (b.has_data_scale, BinaryFormat(scale="tensor").has_data_scale) == (False, True)
    assert (t.has_data_scale, TernaryFormat(scale=None).has_data_scale) == (True, False)
    assert TernaryFormat("stochastic").has_data_scale is False


ULP_CASES = [
    ("e4m3", [0.0, P(1, -9), P(1, -7), P(1, -6), 1.0, 1.5, 2.0, -3.0, 448.0],
     [P(1, -9), P(1, -9), P(1, -9), P(1, -9), P(1, -3), P(1, -3), P(1, -2), P(1, -2), 32.0]),
    ("fp<4,3,ftz>", [0.0, P(1, -7), P(1, -6), 1.0], [P(1, -6), P(1, -6), P(1, -9), P(1, -3)]),
    ("fp16", [0.0, P(1, -24), P(1, -14), 1.0, 65504.0], [P(1, -24), P(1, -24), P(1, -24), P(1, -10), 32.0]),
    ("fx<2,14>", [0.0, -2.0, 1.5, 1e9], [P(1, -14)] * 4),
    ("fx<10,-2>", [0.0, 100.0], [4.0, 4.0]),
    ("pow2<-8,0>", [0.0, P(1, -10), P(1, -8), 0.75, -0.75, 1.0],
     [P(1, -8), P(1, -8), P(1, -8), 0.5, 0.5, 1.0]),
    ("binary", [0.0, 3.0], [2.0, 2.0]),
    ("ternary", [0.0, 3.0], [1.0, 1.0]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "x", "want"), ULP_CASES, ids=[c[0] for c in ULP_CASES])
def test_ulp_hand_computed(name: str, x: list[float], want: list[float]) -> None:
    got = get_format(name).ulp(np.array(x))
    assert got.shape == (len(x),)
    np.testing.assert_array_equal(got, np.array(want))


def test_ulp_shape_and_non_finite() -> None:
    f = get_format("e5m2")
    assert f.ulp(1.0).shape == ()
    assert f.ulp(np.ones((2, 3))).shape == (2, 3)
    assert np.isnan(f.ulp([math.inf, -math.inf, math.nan])).all()


@pytest.mark.parametrize(("name", "dtype"), [("fp16", np.float16), ("fp32", np.float32)], ids=str)
def test_ulp_matches_numpy_spacing(name: str, dtype: type) -> None:
    f = get_format(name)
    rng = np.random.default_rng(7)
    nbits = 16 if dtype is np.float16 else 32
    pat = rng.integers(0, 2 ** (nbits - 1), 100_000, dtype=np.uint64).astype(f"u{nbits // 8}")
    x = pat.view(dtype)
    x = x[np.isfinite(x) & (x < np.finfo(dtype).max)]
    np.testing.assert_array_equal(f.ulp(x.astype(np.float64)), np.spacing(x).astype(np.float64))


def _finite_values(fmt: emu.Format) -> list[Fraction]:
    out = []
    for c in range(1 << fmt.bits):
        try:
            v = exact_value(fmt, c)
        except ValueError:  # unused power-of-two code
            continue
        if isinstance(v, Fraction) or v == 0.0:
            out.append(Fraction(v))
    return out


@settings(max_examples=200)
@given(st.one_of(float_formats(max_bits=10), fixed_formats(max_bits=10, min_frac=-12, max_frac=20),
                 pow2_formats().filter(lambda f: f.n_exponents < 200)))
def test_descriptors_agree_with_the_values_of_the_codes(fmt: emu.Format) -> None:
    vals = _finite_values(fmt)
    pos = [v for v in vals if v > 0]
    assert Fraction(fmt.max) == max(vals)
    assert Fraction(fmt.min) == min(vals)
    if pos:  # fx<1,0> ({-1, 0}) alone has no positive value; its docstring says so
        assert Fraction(fmt.smallest_subnormal) == min(pos)
    if isinstance(fmt, FloatFormat):
        assert fmt.smallest_normal == math.ldexp(1.0, 1 - fmt.bias)
        n_nan = sum(1 for c in range(fmt.n_codes) if (v := exact_value(fmt, c)) != v)
        assert n_nan > 0 if fmt.has_nan else n_nan == 0
        n_inf = sum(1 for c in range(fmt.n_codes) if exact_value(fmt, c) in (math.inf, -math.inf))
        assert n_inf == (2 if fmt.has_inf else 0)
    if isinstance(fmt, Pow2Format):
        assert fmt.n_codes == len(vals)
    else:
        assert fmt.n_codes == 1 << fmt.bits


# --- the registry ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", emu.ALL_FORMATS, ids=str)
def test_names_round_trip_over_all_formats(fmt: emu.Format) -> None:
    assert get_format(str(fmt)) == fmt
    assert str(get_format(str(fmt))) == str(fmt)
    assert fmt.name == str(fmt)
    assert get_format(fmt) is fmt
    assert emu.format(str(fmt)) == fmt


@settings(max_examples=400)
@given(any_formats())
def test_names_round_trip_over_random_formats(fmt: emu.Format) -> None:
    back = get_format(str(fmt))
    assert back == fmt
    assert hash(back) == hash(fmt)
    assert str(back) == str(fmt)


CANONICAL = [
    (FloatFormat(6, 7, special="none"), "fp<6,7,none>"),
    (FloatFormat(6, 7), "fp<6,7>"),
    (FloatFormat(4, 3), "fp<4,3>"),
    (FloatFormat(4, 3, special="fn"), "e4m3"),
    (FloatFormat(5, 2), "e5m2"),
    (FloatFormat(4, 3, special="fnuz", bias=8), "e4m3fnuz"),
    (FloatFormat(5, 2, special="fnuz"), "e5m2fnuz"),
    (FloatFormat(4, 3, special="fnuz", bias=7), "fp<4,3,fnuz,bias=7>"),
    (FloatFormat(4, 3, special="fn", subnormals=False), "fp<4,3,fn,ftz>"),
    (FloatFormat(5, 2, special="fn", bias=11), "fp<5,2,fn,bias=11>"),
    (FloatFormat(5, 10, bias=-3, subnormals=False), "fp<5,10,bias=-3,ftz>"),
    (FloatFormat(2, 1, special="none"), "e2m1"),
    (FloatFormat(5, 10), "fp16"),
    (FloatFormat(8, 7), "bf16"),
    (FloatFormat(8, 10), "tf32"),
    (FloatFormat(8, 23), "fp32"),
    (FloatFormat(11, 52), "fp64"),
    (FloatFormat(5, 2, special="p3109"), "p3109<8,3>"),
    (FloatFormat(4, 3, special="p3109_finite"), "p3109<8,4,finite>"),
    (FloatFormat(6, 2, special="p3109", signed=False), "p3109<8,3,unsigned>"),
    (FloatFormat(1, 7, special="p3109_finite", signed=False), "p3109<8,8,unsigned,finite>"),
    (FloatFormat(8, 0, special="fn", signed=False, zero=False), "e8m0"),
    (FloatFormat(4, 3, special="fn", signed=False), "fp<4,3,fn,unsigned>"),
    (FloatFormat(5, 2, special="p3109", bias=3), "fp<5,2,p3109,bias=3>"),
    (FixedFormat(2, 14), "fx<2,14>"),
    (FixedFormat(0, 8, signed=False), "ufx<0,8>"),
    (FixedFormat(-2, 10), "fx<-2,10>"),
    (FixedFormat(10, -2), "fx<10,-2>"),
    (Pow2Format(-8, 0), "pow2<-8,0>"),
    (Pow2Format(-4, 3, signed=False), "upow2<-4,3>"),
    (BinaryFormat(), "binary"),
    (BinaryFormat(stochastic=True), "binary<stochastic>"),
    (BinaryFormat(stochastic=True, scale="channel"), "binary<stochastic,scale=channel>"),
    (TernaryFormat(), "ternary"),
    (TernaryFormat(scale=None), "ternary<scale=none>"),
    (TernaryFormat(threshold=0.5, scale="channel"), "ternary<threshold=0.5,scale=channel>"),
    (TernaryFormat("ttq"), "ttq"),
    (TernaryFormat("stochastic"), "ternary<stochastic>"),
]


@pytest.mark.parametrize(("fmt", "name"), CANONICAL, ids=[n for _, n in CANONICAL])
def test_canonical_names(fmt: emu.Format, name: str) -> None:
    assert str(fmt) == name
    assert get_format(name) == fmt


ALIASES = [
    ("e4m3fn", "e4m3"), ("float8_e4m3fn", "e4m3"), ("float8_e5m2", "e5m2"), ("float8_e4m3fnuz", "e4m3fnuz"),
    ("float8_e5m2fnuz", "e5m2fnuz"), ("bfloat16", "bf16"), ("float16", "fp16"), ("half", "fp16"),
    ("float32", "fp32"), ("single", "fp32"), ("float64", "fp64"), ("double", "fp64"),
    ("int8", "fx<8,0>"), ("uint8", "ufx<8,0>"), ("int1", "fx<1,0>"), ("uint62", "ufx<62,0>"),
    ("int16", "fx<16,0>"), ("E4M3", "e4m3"), (" e4m3 ", "e4m3"), ("fx< 2 , 14 >", "fx<2,14>"),
    ("fx<+2,14>", "fx<2,14>"), ("fp<4,3,fn>", "e4m3"), ("fp<5,2,ieee>", "e5m2"),
    ("fp<4,3,fnuz,bias=8>", "e4m3fnuz"),
    ("fp<6,7,none,bias=31>", "fp<6,7,none>"), ("ternary<threshold=0.7,scale=tensor>", "ternary"),
    ("ternary<scale=tensor>", "ternary"), ("binary<scale=none>", "binary"), ("ttq<threshold=0.05>", "ttq"),
    ("float8_e8m0fnu", "e8m0"), ("e8m0fnu", "e8m0"), ("fp<8,0,fn,unsigned,nozero>", "e8m0"),
    ("p3109<8,3,signed,extended>", "p3109<8,3>"), ("fp<5,2,p3109>", "p3109<8,3>"),
    ("fp<5,3,p3109_finite,unsigned>", "p3109<8,4,unsigned,finite>"),
]  # fmt: skip


@pytest.mark.parametrize(("alias", "name"), ALIASES, ids=[a for a, _ in ALIASES])
def test_aliases(alias: str, name: str) -> None:
    assert get_format(alias) == get_format(name)
    assert str(get_format(alias)) == name


@pytest.mark.parametrize(("name", "close"), [
    ("e4m4", "e4m3"), ("e5m3", "e5m2"), ("bfloat", "bfloat16"), ("fp8", "fp16"), ("e4m3fnz", "e4m3fnuz"),
    ("fx<2>", "fx<"), ("ufx<a,b>", "ufx<"), ("fx<2,14", "fx<"),
], ids=str)  # fmt: skip
def test_unknown_names_are_key_and_value_errors_listing_close_names(name: str, close: str) -> None:
    with pytest.raises(UnknownFormatError, match="is not a known format; closest known") as info:
        get_format(name)
    err = info.value
    assert isinstance(err, KeyError)
    assert isinstance(err, ValueError)
    assert name in str(err)
    assert close in str(err)
    with pytest.raises(KeyError, match="not a known format"):
        get_format(name)
    with pytest.raises(ValueError, match="not a known format"):
        get_format(name)


@pytest.mark.parametrize(("name", "word"), [
    ("fx<40,30>", "bits"), ("int0", "bits"), ("int63", "bits"), ("uint63", "bits"),
    ("fp<12,3>", "exp_bits"), ("fp<4,53>", "man_bits"), ("fp<1,0>", "exp_bits"),
    ("fp<4,3,xyz>", "xyz"), ("fp<4,3,bias=x>", "bias"), ("fp<4,3,bias=3000>", "bias"),
    ("pow2<3,1>", "emax"), ("upow2<0,2000>", "emax"), ("binary<foo>", "foo"),
    ("binary<threshold=0.5>", "threshold"),
    ("ternary<threshold=abc>", "threshold"), ("ternary<threshold=-1>", "threshold"),
    ("ternary<stochastic,threshold=0.5>", "stochastic"), ("ternary<stochastic,scale=tensor>", "stochastic"),
    ("ttq<scale=none>", "scale"), ("ternary<scale=layer>", "scale"),
    # contradictory options are malformed, not "the last one wins"
    ("fp<4,3,fn,fnuz>", "fnuz"), ("fp<4,3,ieee,none>", "none"), ("fp<4,3,bias=7,bias=8>", "bias"),
    ("p3109<8,3,unsigned,signed>", "signedness"), ("fp<4,3,p3109,fn>", "special"),
    ("p3109<8,9,unsigned>", "P=9"), ("p3109<8,7,bias=3>", "bias=3"), ("fp<4,3,fnuz,unsigned>", "unsigned"),
    ("fp<4,3,nozero,unsigned>", "zero=False"), ("p3109<16,3>", "exp_bits"),
], ids=str)  # fmt: skip
def test_malformed_parametric_names_raise_value_error(name: str, word: str) -> None:
    with pytest.raises(ValueError, match=re.escape(word)):
        get_format(name)


def test_get_format_rejects_non_strings() -> None:
    for bad in (3, None, 2.5, b"e4m3", ("fx", 2, 14)):
        with pytest.raises(TypeError, match="name"):
            get_format(bad)  # type: ignore[arg-type]


def test_registry_lists() -> None:
    assert all(f.bits <= 16 for f in emu.SMALL_FORMATS)
    assert all(f in emu.ALL_FORMATS for f in emu.SMALL_FORMATS)
    kinds = {f.kind for f in emu.ALL_FORMATS}
    assert kinds == {"fixed", "float", "pow2", "binary", "ternary"}


@pytest.mark.parametrize("m", [1, 2, 3, 7])
def test_fp1_ieee_holds_only_subnormals_below_inf_and_nan(m: int) -> None:
    """fp<1,M> (NUMERICS section 5: E from 1): bias 0, the field 0 holds the subnormals k 2^(1-M), the
    field 1 inf (f = 0) and NaN; its largest finite value is the subnormal (2^M - 1) 2^(1-M), and half a
    step above it (a tie with the even 2^M) rounds to nearest even into inf, as IEEE overflow does."""
    f = emu.format(f"fp<1,{m}>")
    step = 2.0 ** (1 - m)
    assert (f.bias, f.max, f.smallest_subnormal, f.bits) == (0, (2**m - 1) * step, step, m + 2)
    assert not f.has_normals
    assert emu.format("e4m3").has_normals
    assert emu.format("e8m0").has_normals  # no zero: its field 0 is normal
    codes = np.arange(2 ** (m + 2))
    values = emu.decode(codes, f)
    want = [k * step for k in range(2**m)] + [np.inf] + [np.nan] * (2**m - 1)
    assert np.array_equal(values[: 2 ** (m + 1)], np.array(want), equal_nan=True)
    assert np.array_equal(values[2 ** (m + 1):], -np.array(want), equal_nan=True)
    assert emu.quantize(f.max + step / 2, f).tolist() == np.inf  # the tie goes to the even 2^M: inf
    assert emu.quantize(f.max + step / 4, f).tolist() == f.max
    assert emu.quantize(5.0, f, overflow="saturate").tolist() == f.max
    with pytest.raises(ValueError, match=r"^MAC: float accumulator fp<1,2> must have normal numbers"):
        emu.MAC(act="fp<1,2>", weight="fp<1,2>", acc="fp<1,2>")
