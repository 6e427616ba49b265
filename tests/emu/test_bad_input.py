"""What the conversion API accepts and refuses, and what it does with non-finite input.

- `quantize`, `encode`, `bits` and `decode` refuse complex, object, str, bool
  and longdouble input with TypeError; they accept Python scalars and ints,
  every numpy integer type (values beyond 2^53 exactly), float16/32/64,
  ml_dtypes floats, non-contiguous and 0-d arrays, and keep the input's shape.
- NaN and +-inf under every overflow mode of every family, as
  docs/semantics.md states (fixed, float with each special rule, powers of two,
  binary, ternary), with `nan=0`.
- ``overflow="error"`` raises OverflowError naming the count and the first
  index; an overflow mode a format does not allow, a bad `random_bits` and a bad
  `nan` raise ValueError/TypeError naming what is allowed.
- `decode` refuses float codes, codes outside [0, 2^bits) and unused codes.
- `return_stats` counts overflow, underflow and NaN on hand-made examples of
  each family.
"""

from __future__ import annotations

import math
import re

import ml_dtypes
import numpy as np
import pytest

import emu
from emu import QuantStats, Rounding, bits, decode, encode, get_format, quantize

ROUNDINGS = [str(r) for r in Rounding]
FUNCS = {"quantize": quantize, "encode": encode, "bits": bits}
FAMILY_FORMATS = [get_format(n) for n in (
    "fx<4,4>", "ufx<4,4>", "fx<-2,10>", "fx<62,0>", "e4m3", "e5m2", "e4m3fnuz", "e3m2", "fp16", "fp<4,3,ftz>",
    "pow2<-8,0>", "upow2<-4,3>", "binary", "binary<stochastic>", "binary<scale=tensor>",
    "ternary<scale=none>", "ternary", "ttq", "ternary<stochastic>",
)]  # fmt: skip
QUANT_FORMATS = [f for f in FAMILY_FORMATS if f.kind in ("fixed", "float", "pow2")]


def same(a: object, b: object) -> bool:
    """Bit-identical float64 arrays (NaN equal to NaN, -0 distinct from +0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.array_equal(a.view(np.uint64), b.view(np.uint64))
                                       or np.array_equal(a, b, equal_nan=True)
                                       and np.array_equal(np.signbit(a), np.signbit(b)))


def f64_code(v: float) -> int:
    return int(np.float64(v).view(np.uint64))


# --- refused input types -----------------------------------------------------------------------

BAD_X = {
    "complex_array": np.array([1.0 + 2.0j, 0.5]),
    "complex_scalar": 1.0 + 0.0j,
    "object_array": np.array([1.0, 2.0], dtype=object),
    "str": "1.5",
    "str_array": np.array(["1.5", "2"]),
    "bytes_array": np.array([b"1"]),
    "bool": True,
    "bool_array": np.array([True, False]),
    "numpy_bool": np.bool_(False),
    "longdouble": np.array([1.5], dtype=np.longdouble),
}
if np.dtype(np.longdouble).itemsize <= 8:  # pragma: no cover - platforms where longdouble is float64
    del BAD_X["longdouble"]


@pytest.mark.parametrize("func", FUNCS, ids=str)
@pytest.mark.parametrize("fmt", FAMILY_FORMATS, ids=str)
@pytest.mark.parametrize("kind", BAD_X, ids=str)
def test_non_real_input_raises_type_error(func: str, fmt: emu.Format, kind: str) -> None:
    with pytest.raises(TypeError, match=rf"^{func}: x has dtype "):
        FUNCS[func](BAD_X[kind], fmt)


def test_bits_errors_name_bits() -> None:
    # STYLE.md section 7: "<func>: <param>=<value> <why>"; the user called bits, not encode
    with pytest.raises(TypeError, match=r"^bits: "):
        bits(np.array([1 + 1j]), "e4m3")
    with pytest.raises(ValueError, match=r"^bits: "):
        bits(math.nan, "fx<4,4>")


#: (encode's arguments after x, x, the error) for bad input of every kind encode refuses
BAD_ENCODE = {
    "rounding name": (("fx<4,4>", "round"), [0.5], ValueError),
    "rounding of binary": (("binary", "stochastic"), [0.5], ValueError),
    "overflow name": (("fx<4,4>", "nearest_even", "clip"), [0.5], ValueError),
    "overflow of ternary": (("ternary", "nearest_even", "wrap"), [0.5], ValueError),
    "overflow not allowed": (("e4m3", "nearest_even", "inf"), [0.5], ValueError),
    "overflow error": (("fx<4,4>", "nearest_even", "error"), [100.0], OverflowError),
    "inf under wrap": (("fx<4,4>", "nearest_even", "wrap"), [math.inf], ValueError),
    "NaN into fixed": (("fx<4,4>",), [math.nan], ValueError),
    "NaN into binary": (("binary",), [math.nan], ValueError),
    "nan= value": (("fx<4,4>",), [0.5], ValueError, {"nan": 1}),
    "nan= of ternary": (("ternary",), [0.5], ValueError, {"nan": 0}),
    "inf into a data scale": (("binary<scale=tensor>",), [math.inf], ValueError),
    "scale of fixed": (("fx<4,4>",), [0.5], ValueError, {"scale": 1.0}),
    "scale of unscaled": (("binary",), [0.5], ValueError, {"scale": 1.0}),
    "scale value": (("binary<scale=tensor>",), [0.5], ValueError, {"scale": -1.0}),
    "scale type": (("binary<scale=tensor>",), [0.5], TypeError, {"scale": "a"}),
    "scale count": (("binary<scale=channel>",), [[0.5], [1.0]], ValueError, {"scale": [1.0]}),
    "ttq scale pair": (("ttq",), [0.5], ValueError, {"scale": 1.0}),
    "binary channel of 0-d": (("binary<scale=channel>",), 0.5, ValueError),
    "ternary channel of 0-d": (("ternary<scale=channel>",), 0.5, ValueError),
    "ttq channel of 0-d": (("ttq<scale=channel>",), 0.5, ValueError),
    "seed value": (("fx<4,4>", "stochastic"), [0.5], ValueError, {"seed": -1}),
    "seed type": (("binary<stochastic>",), [0.5], TypeError, {"seed": 2.5}),
    "random_bits range": (("fx<4,4>", "stochastic"), [0.5], ValueError, {"random_bits": 0}),
    "random_bits of nearest": (("fx<4,4>",), [0.5], ValueError, {"random_bits": 8}),
    "random_bits of binary": (("binary",), [0.5], ValueError, {"random_bits": 8}),
    "x complex": (("e4m3",), [1j], TypeError),
    "x beyond float64 into ternary": (("ternary",), np.array([2**53 + 1]), ValueError),
}


@pytest.mark.parametrize("case", BAD_ENCODE, ids=str)
def test_encode_errors_name_encode(case: str) -> None:
    """Every refusal of encode names encode (a data scale of a 0-d x named quantize), and so does every
    refusal of bits name bits."""
    args, x, error, *kw = BAD_ENCODE[case]
    with pytest.raises(error, match=r"^encode: "):
        encode(x, *args, **(kw[0] if kw else {}))
    with pytest.raises(error, match=r"^bits: "):
        bits(x, *args, **(kw[0] if kw else {}))


@pytest.mark.parametrize(("codes", "fmt", "kw", "error"), [
    (np.array([1.5]), "fx<4,4>", {}, TypeError),
    (np.array([256]), "fx<4,4>", {}, ValueError),
    (np.array([26]), "pow2<-8,0>", {}, ValueError),
    (np.array([2]), "ternary<scale=none>", {}, ValueError),
    (np.array([1]), "binary<scale=tensor>", {}, ValueError),
    (np.array([1]), "binary", {"scale": 1.0}, ValueError),
    (np.array([1]), "binary<scale=tensor>", {"scale": -1.0}, ValueError),
    (np.array([1]), "ttq", {"scale": 1.0}, ValueError),
], ids=["float codes", "code range", "pow2 unused code", "ternary unused code", "no scale",
        "scale of unscaled", "scale value", "ttq scale pair"])
def test_decode_errors_name_decode_and_encoded_names_encoded(codes: np.ndarray, fmt: str, kw: dict,
                                                              error: type) -> None:
    """decode's refusals name decode; an `emu.Encoded` built from codes it refuses names Encoded (its
    code checks named decode, which the caller did not call)."""
    with pytest.raises(error, match=r"^decode: "):
        decode(codes, fmt, **kw)
    if not kw and get_format(fmt).kind in ("fixed", "float", "pow2"):
        with pytest.raises(error, match=r"^Encoded: "):
            emu.Encoded(codes, fmt)


@pytest.mark.parametrize("fmt", FAMILY_FORMATS, ids=str)
@pytest.mark.parametrize("codes", [
    np.array([1.0]), np.array([1], np.float32), np.array([1 + 0j]), np.array([1], dtype=object),
    np.array(["1"]), np.array([True]), np.array([1], np.longdouble), 1.0,
], ids=["float64", "float32", "complex", "object", "str", "bool", "longdouble", "py_float"])  # fmt: skip
def test_decode_refuses_non_integer_codes(fmt: emu.Format, codes: object) -> None:
    kw = {"scale": 1.0} if fmt.has_data_scale else {}
    with pytest.raises(TypeError, match="dtype"):
        decode(codes, fmt, **kw)


# --- accepted input types ----------------------------------------------------------------------

GOOD_X = [0.0, 0.25, -1.5, 3.0, 100.0, -0.0078125, 5.0]


@pytest.mark.parametrize("fmt", QUANT_FORMATS, ids=str)
@pytest.mark.parametrize("dtype", [np.float16, np.float32, ml_dtypes.bfloat16, np.int8, np.int16, np.int32,
                                   np.int64, np.uint8, np.uint16, np.uint32, np.uint64], ids=str)
def test_every_real_dtype_converts_like_float64(fmt: emu.Format, dtype: type) -> None:
    x = np.array(GOOD_X, dtype=np.float64)
    if np.dtype(dtype).kind in "iu":
        x = np.abs(x) if np.dtype(dtype).kind == "u" else x
        x = np.trunc(x) + 0.0
    typed = x.astype(dtype)
    x = typed.astype(np.float64)  # the same real values, exactly
    assert same(quantize(typed, fmt), quantize(x, fmt))
    np.testing.assert_array_equal(encode(typed, fmt), encode(x, fmt))
    np.testing.assert_array_equal(bits(typed, fmt), bits(x, fmt))


#: ml_dtypes' floats (float64 holds each of their values) and narrow integers (int64 holds them), as names
#: (every one in the ml_dtypes the test extras require)
ML_FLOATS = ["bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
             "float8_e4m3b11fnuz", "float8_e4m3", "float8_e3m4", "float8_e5m3fnu", "float8_e8m0fnu",
             "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn"]
ML_INTS = ["int1", "uint1", "int2", "uint2", "int4", "uint4"]


@pytest.mark.parametrize("name", ML_FLOATS + ML_INTS, ids=str)
def test_ml_dtypes_floats_and_narrow_integers_convert_as_their_values(name: str) -> None:
    """An array of an ml_dtypes float or narrow integer converts as its float64 or int64 values, through
    the bit kernels and through the float64 paths (binary, ternary, block formats) alike."""
    dt = np.dtype(getattr(ml_dtypes, name))
    if name in ML_INTS:
        info = ml_dtypes.iinfo(dt)
        typed = np.arange(int(info.min), int(info.max) + 1).astype(dt)
        exact = typed.astype(np.int64)
    else:
        x = np.array([*GOOD_X, 0.1, -2.75, 1e-3, 7.5, 240.0])
        exact = x.astype(dt).astype(np.float64)
        typed = x[np.isfinite(exact)].astype(dt)  # (x outside the format's range or sign: NaN or inf)
        exact = typed.astype(np.float64)
    assert exact.size >= 2
    for fmt in ("fx<4,4>", "e4m3", "pow2<-8,0>", "binary<scale=tensor>", "ternary"):
        assert same(quantize(typed, fmt), quantize(exact, fmt)), fmt
        got, want = encode(typed, fmt), encode(exact, fmt)  # codes, or (codes, scale) for a data scale
        for g, w in zip(*((v if isinstance(v, tuple) else (v,)) for v in (got, want)), strict=True):
            np.testing.assert_array_equal(g, w)
    assert same(emu.block_quantize(typed, "mxfp8_e4m3"), emu.block_quantize(exact, "mxfp8_e4m3"))


@pytest.mark.parametrize("fmt", FAMILY_FORMATS, ids=str)
def test_shapes_scalars_and_layouts(fmt: emu.Format) -> None:
    base = np.linspace(-2.0, 2.0, 24).reshape(4, 6)
    for x in (base, base[:, ::2], base.T, base[::-1, 1::3], np.asfortranarray(base)):
        assert not x.flags.c_contiguous or x is base
        q = quantize(x, fmt, seed=3)
        assert q.shape == x.shape
        assert same(q, quantize(np.ascontiguousarray(x), fmt, seed=3))
        c = encode(x, fmt, seed=3)
        c = c[0] if isinstance(c, tuple) else c
        assert c.shape == x.shape
        assert bits(x, fmt, seed=3).shape == x.shape
    for scalar in (1.5, -3, np.float32(0.25), np.int64(2), np.array(0.75)):
        q = quantize(scalar, fmt, seed=1)
        assert isinstance(q, np.ndarray)
        assert q.shape == ()
        assert same(q, quantize([scalar], fmt, seed=1)[0])
        c = encode(scalar, fmt, seed=1)
        code = c[0] if isinstance(c, tuple) else c  # (codes, scale) for a data scale
        assert isinstance(code, np.ndarray)
        assert code.shape == ()
        assert isinstance(bits(scalar, fmt, seed=1), str)
    nested = [[0.5, 1.0], [-1.0, 2.0]]
    assert quantize(nested, fmt).shape == (2, 2)
    assert quantize(np.zeros((0, 3)), fmt).shape == (0, 3)


@pytest.mark.parametrize("fmt", [f for f in FAMILY_FORMATS if not f.has_data_scale], ids=str)
def test_decode_keeps_shape_and_returns_arrays(fmt: emu.Format) -> None:
    c = encode(np.array([[0.5, 1.0], [-1.0, 2.0]]), fmt, seed=0)
    v = decode(c, fmt)
    assert isinstance(v, np.ndarray)
    assert v.shape == (2, 2)
    v0 = decode(c[0, 0], fmt)
    assert isinstance(v0, np.ndarray), f"decode of a scalar code gave {type(v0).__name__}"
    assert v0.shape == ()
    assert decode(np.asfortranarray(c)[:, ::-1], fmt).shape == (2, 2)
    assert decode(int(c[0, 1]), fmt).shape == ()


def test_integers_beyond_2_to_53_are_exact() -> None:
    assert int(encode(2**60 + 1, "fx<62,0>")) == 2**60 + 1
    assert quantize(2**60 + 1, "fx<62,0>") == float(2**60 + 1)  # the value, rounded once to float64
    x = np.array([2**60 + 1, -(2**60) - 1, 2**61 - 1, -(2**61), 2**53 + 1], np.int64)
    want = [2**60 + 1, 2**62 - 2**60 - 1, 2**61 - 1, 2**61, 2**53 + 1]
    assert [int(c) for c in encode(x, "fx<62,0>")] == want
    # a half-step tie that only exists in the integer: (2^60 + 3) / 2 = 2^59 + 1.5
    assert int(encode(2**60 + 3, "fx<62,-1>")) == 2**59 + 2
    assert int(encode(2**60 + 3, "fx<62,-1>", "nearest_down")) == 2**59 + 1
    assert int(encode(2**60 + 1, "fx<62,-1>", "nearest_away")) == 2**59 + 1
    assert int(encode(2**60 + 1, "fx<62,-1>", "floor")) == 2**59
    assert int(encode(-(2**60) - 3, "fx<62,-1>")) == 2**61 - 2**59 - 2
    # into floats: 2^53 + 1 is not a float64; ceil must see the + 1
    assert int(encode(2**53 + 1, "fp64", "ceil")) == f64_code(2**53 + 2)
    assert int(encode(2**53 + 1, "fp64", "floor")) == f64_code(2**53)
    assert int(encode(2**53 + 1, "fp64", "nearest_up")) == f64_code(2**53 + 2)
    assert int(encode(2**53 + 1, "fp64")) == f64_code(2**53)
    assert int(encode(2**24 + 1, "fp32", "ceil")) == int(np.float32(2**24 + 2).view(np.uint32))
    assert int(encode(np.uint64(2**64 - 1), "fp32")) == int(np.float32(2.0**64).view(np.uint32))
    assert int(encode(np.uint64(2**64 - 1), "fp64", "toward_zero")) == f64_code(2.0**64 - 2.0**11)
    assert quantize(np.uint64(2**63 + 2**62), "pow2<0,100>") == 2.0**64  # above the geometric midpoint 2^63.5


def test_uint64_above_2_to_63_into_ufx62() -> None:
    x = np.array([2**63 + 5, 2**64 - 1, 2**62 - 1, 2**62, 2**53 + 1], np.uint64)
    c, st = encode(x, "ufx<62,0>", overflow="wrap", return_stats=True)
    assert [int(v) for v in c] == [5, 2**62 - 1, 2**62 - 1, 0, 2**53 + 1]
    assert (st.overflow, st.underflow, st.nan) == (3, 0, 0)
    c, st = encode(x, "ufx<62,0>", return_stats=True)
    assert [int(v) for v in c] == [2**62 - 1, 2**62 - 1, 2**62 - 1, 2**62 - 1, 2**53 + 1]
    assert st.overflow == 3
    with pytest.raises(OverflowError, match=r"3 of 5"):
        encode(x, "ufx<62,0>", overflow="error")
    # wrap into a signed word: 2^64 - 1 is -1 modulo 2^62
    assert int(encode(np.uint64(2**64 - 1), "fx<62,0>", overflow="wrap")) == 2**62 - 1
    assert quantize(np.uint64(2**64 - 1), "fx<62,0>", overflow="wrap") == -1.0


# --- NaN and infinities ------------------------------------------------------------------------

NAN_HINT = re.compile(r"nan=0")


@pytest.mark.parametrize("rounding", ROUNDINGS, ids=str)
@pytest.mark.parametrize("fmt", [f for f in QUANT_FORMATS if not getattr(f, "has_nan", False)], ids=str)
def test_nan_into_a_format_without_nan(fmt: emu.Format, rounding: str) -> None:
    for ovf in fmt.overflow_modes:
        for func in (quantize, encode):
            with pytest.raises(ValueError, match=NAN_HINT) as info:
                func(np.array([fmt.max / 2, math.nan, 0.0]), fmt, rounding, ovf, seed=0)
            assert "(1,)" in str(info.value)
        x = [fmt.max / 2, math.nan, -math.nan]
        q, st = quantize(x, fmt, rounding, ovf, seed=0, nan=0, return_stats=True)
        assert same(q[1:], [0.0, 0.0])
        assert st.nan == 2
        assert [int(c) for c in encode([math.nan, -math.nan], fmt, rounding, ovf, seed=0, nan=0)] == [0, 0]


@pytest.mark.parametrize("rounding", ROUNDINGS, ids=str)
@pytest.mark.parametrize("fmt", [f for f in QUANT_FORMATS if getattr(f, "has_nan", False)], ids=str)
def test_nan_into_a_format_with_nan(fmt: emu.FloatFormat, rounding: str) -> None:
    canonical = {"ieee": ((1 << fmt.exp_bits) - 1) << fmt.man_bits | 1 << (fmt.man_bits - 1),
                 "fn": (1 << (fmt.bits - 1)) - 1, "fnuz": 1 << (fmt.bits - 1)}[fmt.special]
    negative = canonical | (1 << (fmt.bits - 1))  # ieee and fn: the quiet NaN of the input's sign
    for ovf in fmt.overflow_modes:
        q, st = quantize([math.nan, -math.nan], fmt, rounding, ovf, seed=0, return_stats=True)
        assert np.isnan(q).all()
        assert list(np.signbit(q)) == [False, fmt.special != "fnuz"]
        assert st == QuantStats(2, 0, 0, 2)
        codes = encode([math.nan, -math.nan], fmt, rounding, ovf, seed=0)
        assert [int(c) for c in codes] == [canonical, negative]


def _inf_expectation(fmt: emu.Format, ovf: emu.Overflow, sign: int) -> tuple[str, float | None]:
    """What docs/semantics.md says +-inf becomes: ('value', v), ('overflow', v) or an exception name."""
    if ovf == emu.Overflow.ERROR:
        return "OverflowError", None
    if isinstance(fmt, emu.FixedFormat):
        if ovf == emu.Overflow.WRAP:
            return "ValueError", None
        return "overflow", fmt.max if sign > 0 else fmt.min
    if isinstance(fmt, emu.FloatFormat):
        if fmt.has_inf and ovf in (emu.Overflow.INF, emu.Overflow.NAN):
            return "value", sign * math.inf
        if ovf == emu.Overflow.NAN:  # the quiet NaN of inf's sign where NaN codes have one (ieee, fn)
            return "overflow", math.copysign(math.nan, sign if fmt.has_negative_zero else 1)
        return "overflow", fmt.max if sign > 0 else fmt.min
    return "overflow", fmt.max if sign > 0 else fmt.min  # powers of two


@pytest.mark.parametrize("rounding", ROUNDINGS, ids=str)
@pytest.mark.parametrize("fmt", QUANT_FORMATS, ids=str)
def test_infinities_under_every_overflow_mode(fmt: emu.Format, rounding: str) -> None:
    for ovf in fmt.overflow_modes:
        for sign in (1, -1):
            x = np.array([fmt.max / 2, sign * math.inf])  # an in-range value, then the infinity
            what, v = _inf_expectation(fmt, ovf, sign)
            if what in ("OverflowError", "ValueError"):
                exc = OverflowError if what == "OverflowError" else ValueError
                hint = r"1 of 2 value\(s\) overflow" if exc is OverflowError else r"x holds \+-inf"
                for func in (quantize, encode):
                    with pytest.raises(exc, match=hint) as info:
                        func(x, fmt, rounding, ovf, seed=0)
                    assert "(1,)" in str(info.value), str(info.value)
                continue
            q, st = quantize(x, fmt, rounding, ovf, seed=0, return_stats=True)
            assert same(q[1], v), (ovf, sign, q)
            assert st.overflow == (1 if what == "overflow" else 0), (ovf, sign, st)
            c, st2 = encode(x, fmt, rounding, ovf, seed=0, return_stats=True)
            assert st2 == st
            assert same(decode(c, fmt)[1], v)


def test_infinities_in_fixed_point_follow_the_table() -> None:
    x = np.array([math.inf, -math.inf])
    assert same(quantize(x, "fx<4,4>"), [7.9375, -8.0])
    assert same(quantize(x, "ufx<4,4>"), [15.9375, 0.0])
    with pytest.raises(ValueError, match="wrap"):
        quantize(x, "fx<4,4>", overflow="wrap")
    with pytest.raises(OverflowError, match=r"2 of 2 .*index \(0,\)"):
        quantize(x, "fx<4,4>", overflow="error")


def test_infinities_in_floats_follow_the_table() -> None:
    x = np.array([math.inf, -math.inf])
    assert same(quantize(x, "e5m2"), x)  # default overflow=inf
    assert same(quantize(x, "e5m2", overflow="nan"), x)
    assert same(quantize(x, "e5m2", overflow="saturate"), [57344.0, -57344.0])
    assert same(quantize(x, "e4m3"), [448.0, -448.0])  # no inf: saturate by default
    assert np.isnan(quantize(x, "e4m3", overflow="nan")).all()
    assert same(quantize(x, "e3m2"), [28.0, -28.0])
    assert same(quantize(x, "fp16", "toward_zero"), x)
    with pytest.raises(OverflowError, match=r"2 of 2 value\(s\) overflow e5m2"):
        quantize(x, "e5m2", overflow="error")


@pytest.mark.parametrize("fmt", ["binary", "binary<stochastic>", "binary<scale=tensor>", "ternary",
                                 "ternary<scale=none>", "ttq", "ternary<stochastic>"], ids=str)
def test_binary_and_ternary_refuse_nan(fmt: str) -> None:
    with pytest.raises(ValueError, match="NaN") as info:
        quantize(np.array([0.5, -0.5, math.nan]), fmt, seed=0)
    assert "(2,)" in str(info.value)
    with pytest.raises(ValueError, match="NaN"):
        encode(np.array([math.nan]), fmt, seed=0)
    with pytest.raises(ValueError, match="nan"):
        quantize(np.array([0.5]), fmt, seed=0, nan=0)


@pytest.mark.parametrize("fmt", ["binary<scale=tensor>", "binary<scale=channel>", "ternary",
                                 "ternary<scale=none>", "ttq"], ids=str)
def test_data_scaled_binary_and_ternary_refuse_infinities(fmt: str) -> None:
    # the mean |x| (or max |x|) of a tensor with an infinity is infinite: every threshold and scale with it
    with pytest.raises(ValueError, match=r"x holds -inf \(first at index \(1, 0\)\); .* an infinity leaves"):
        quantize(np.array([[0.5, 1.0], [-math.inf, 2.0]]), fmt)


@pytest.mark.parametrize("fmt", ["binary<scale=tensor>", "ternary", "ttq", "binary<stochastic>"], ids=str)
def test_binary_and_ternary_refuse_integers_float64_cannot_hold(fmt: str) -> None:
    x = np.array([1, -(2**53) - 1], np.int64)  # the mean and the thresholds are computed in float64
    with pytest.raises(ValueError, match=r"x holds integers that float64 cannot hold exactly \(first at index"
                                         r" \(1,\): -9007199254740993\)"):
        quantize(x, fmt, seed=0)
    assert same(quantize(np.array([2**53, -3], np.int64), "binary"), [1.0, -1.0])  # 2^53 is a float64


@pytest.mark.parametrize(("fmt", "scale", "match"), [
    ("binary<scale=tensor>", -1.0, r"scale holds -1.0; a scale is a finite number >= 0"),
    ("binary<scale=tensor>", math.nan, r"scale holds nan; a scale"),
    ("ternary", math.inf, r"scale holds inf; a scale"),
    ("binary<scale=tensor>", [1.0, 2.0], r"scale holds 2 values; .* takes one per tensor"),
    ("binary<scale=channel>", [1.0, 2.0, 3.0], r"scale holds 3 values; .* one per index of axis 0 \(2\)"),
    ("ttq", (1.0, -2.0), r"scale\[1\] holds -2.0; a scale"),
    ("ttq", 1.0, r"must be a pair \(wp, wn\)"),
])
def test_caller_scales_are_checked(fmt: str, scale: object, match: str) -> None:
    x = np.array([[0.5, -1.0], [2.0, -0.25]])
    with pytest.raises(ValueError, match=match):
        quantize(x, fmt, scale=scale)
    codes, _ = encode(x, fmt)
    with pytest.raises(ValueError, match=match):
        decode(codes, fmt, scale=scale)


def test_caller_scales_shape_like_the_data_scale() -> None:
    x = np.array([[0.5, -1.0], [2.0, -0.25]])
    assert same(quantize(x, "binary<scale=channel>", scale=[1.0, 3.0]), [[1.0, -1.0], [3.0, -3.0]])
    assert same(quantize(x, "binary<scale=channel>", scale=[[1.0], [3.0]]), [[1.0, -1.0], [3.0, -3.0]])
    with pytest.raises(TypeError, match=r"scale='a' must be real numbers"):
        quantize(x, "binary<scale=tensor>", scale="a")


def test_binary_signs_of_zero_and_infinity() -> None:
    assert same(quantize([math.inf, -math.inf, 0.0, -0.0, -1e-300], "binary"), [1.0, -1.0, 1.0, 1.0, -1.0])
    assert [int(c) for c in encode([math.inf, -math.inf, 0.0, -0.0], "binary")] == [1, 0, 1, 1]


# --- overflow="error" --------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "x", "rounding", "count", "index", "first"), [
    ("fx<4,4>", [1.0, 2.0, 100.0, 200.0], "nearest_even", "2 of 4", "(2,)", "100"),
    ("fx<4,4>", [[0.0, 1.0], [9.0, -9.0]], "nearest_even", "2 of 4", "(1, 0)", "9.0"),
    ("fx<4,4>", [7.96875, -8.09375, 7.9], "nearest_even", "2 of 3", "(0,)", "7.96875"),  # ties past the ends
    ("fx<4,4>", [7.96875, -8.09375, 7.9], "nearest_down", "1 of 3", "(1,)", "-8.09375"),
    ("fx<4,4>", [7.96875, -8.03125, 7.9], "nearest_up", "1 of 3", "(0,)", "7.96875"),  # -128.5 -> -128
    ("ufx<4,4>", [1.0, -0.03125, -1.0], "nearest_even", "1 of 3", "(2,)", "-1.0"),  # -1/32 rounds to 0
    ("e4m3", [1.0, 464.0, 465.0, -1000.0], "nearest_even", "2 of 4", "(2,)", "465.0"),  # 464 is a tie -> 448
    ("e5m2", [[1.0, 61440.0], [-61440.0, 2.0]], "nearest_even", "2 of 4", "(0, 1)", "61440.0"),
    ("pow2<-8,0>", [0.5, 1.4, 1.5, -3.0], "nearest_even", "2 of 4", "(2,)", "1.5"),  # 1.5 > sqrt(2)
    ("upow2<-4,3>", [1.0, -0.5], "nearest_even", "1 of 2", "(1,)", "-0.5"),
], ids=lambda v: str(v))  # fmt: skip
def test_overflow_error_names_count_and_first_index(fmt, x, rounding, count, index, first) -> None:
    for func in (quantize, encode, bits):
        with pytest.raises(OverflowError, match=r"value\(s\) overflow") as info:
            func(np.array(x), fmt, rounding, "error")
        msg = str(info.value)
        assert count in msg, msg
        assert f"index {index}" in msg, msg
        assert first in msg, msg
        assert str(get_format(fmt)) in msg, msg


# --- bad modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "bad", "allowed"), [
    ("fx<4,4>", "inf", ["saturate", "wrap", "error"]),
    ("fx<4,4>", "nan", ["saturate", "wrap", "error"]),
    ("e4m3", "inf", ["saturate", "error", "nan"]),
    ("e4m3", "wrap", ["saturate", "error", "nan"]),
    ("e5m2", "wrap", ["saturate", "error", "inf", "nan"]),
    ("e3m2", "nan", ["saturate", "error"]),
    ("e3m2", "inf", ["saturate", "error"]),
    ("fp<3,0>", "nan", ["saturate", "error", "inf"]),
    ("pow2<-8,0>", "wrap", ["saturate", "error"]),
    ("pow2<-8,0>", "inf", ["saturate", "error"]),
], ids=str)  # fmt: skip
def test_overflow_mode_not_allowed_lists_the_allowed_ones(fmt: str, bad: str, allowed: list[str]) -> None:
    for func in (quantize, encode, bits):
        with pytest.raises(ValueError, match="is not allowed for") as info:
            func([1.0], fmt, overflow=bad)
        msg = str(info.value)
        assert f"overflow={bad}" in msg
        assert fmt in msg
        listed = msg.split("allowed:")[-1]
        assert sorted(re.findall(r"[a-z]+", listed)) == sorted(allowed), msg


@pytest.mark.parametrize("fmt", ["binary", "ternary", "ternary<stochastic>"], ids=str)
def test_binary_and_ternary_refuse_modes(fmt: str) -> None:
    for ovf in ("wrap", "error", "inf", "nan"):
        with pytest.raises(ValueError, match="overflow"):
            quantize([0.5], fmt, overflow=ovf, seed=0)
    for rnd in ("floor", "stochastic", "nearest_away"):
        with pytest.raises(ValueError, match="rounding"):
            quantize([0.5], fmt, rnd, seed=0)
    with pytest.raises(ValueError, match="random_bits"):
        quantize([0.5], fmt, seed=0, random_bits=4)
    assert quantize([0.5], fmt, overflow="saturate", seed=0).shape == (1,)


def test_unknown_mode_names_list_every_mode() -> None:
    with pytest.raises(ValueError, match="overflow='clip' is not one of") as info:
        quantize([1.0], "fx<4,4>", overflow="clip")
    assert all(m in str(info.value) for m in ("saturate", "wrap", "error", "inf", "nan"))
    with pytest.raises(ValueError, match="rounding='round' is not one of") as info:
        quantize([1.0], "fx<4,4>", rounding="round")
    assert all(r in str(info.value) for r in ROUNDINGS)


@pytest.mark.parametrize("fmt", [str(f) for f in QUANT_FORMATS], ids=str)
def test_random_bits_validation(fmt: str) -> None:
    for rnd in [r for r in ROUNDINGS if r != "stochastic"]:
        with pytest.raises(ValueError, match="random_bits=8.*stochastic"):
            quantize([0.3], fmt, rnd, random_bits=8)
    for r in (0, 65, -1, 1000):
        with pytest.raises(ValueError, match=r"random_bits.*\[1, 64\]"):
            quantize([0.3], fmt, "stochastic", seed=0, random_bits=r)
        with pytest.raises(ValueError, match=r"random_bits.*\[1, 64\]"):
            encode([0.3], fmt, "stochastic", seed=0, random_bits=r)
    for r in (2.0, True, "8"):
        with pytest.raises(TypeError, match="random_bits"):
            quantize([0.3], fmt, "stochastic", seed=0, random_bits=r)
    for r in (1, 64, np.int64(13)):
        assert quantize([0.3], fmt, "stochastic", seed=0, random_bits=r).shape == (1,)


def test_bad_nan_and_seed_arguments() -> None:
    for bad in (1, math.nan, "0", True):
        with pytest.raises(ValueError, match="nan="):
            quantize([1.0], "fx<4,4>", nan=bad)
    with pytest.raises(ValueError, match="seed"):
        quantize([0.3], "fx<4,4>", "stochastic", seed=-1)
    with pytest.raises(TypeError, match="seed"):
        quantize([0.3], "fx<4,4>", "stochastic", seed=1.5)


# --- decode ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [f for f in FAMILY_FORMATS if not f.has_data_scale], ids=str)
def test_decode_refuses_codes_out_of_range(fmt: emu.Format) -> None:
    n = 1 << fmt.bits
    for bad in ([n], [0, n + 5], [-1], np.array([0, -3], np.int64)):
        with pytest.raises(ValueError, match=rf"outside \[0, {n - 1}\]"):
            decode(np.array(bad), fmt)
    if n <= 2**62:
        with pytest.raises(ValueError, match="outside"):
            decode(np.array([2**63], np.uint64), fmt)


@pytest.mark.parametrize(("fmt", "bad"), [
    ("pow2<-8,0>", [10, 15, 16, 26, 31]),  # K > 9, and 0b1_0000 (negative zero)
    ("upow2<-4,3>", [9, 15]),
    ("pow2<-2,-2>", [2]),  # the negative-zero code 0b10
    ("ternary<scale=none>", [2]),
    ("ternary<stochastic>", [2]),
], ids=str)  # fmt: skip
def test_decode_refuses_unused_codes(fmt: str, bad: list[int]) -> None:
    for c in bad:
        with pytest.raises(ValueError, match=rf"code {c}\b"):
            decode(np.array([0, c], np.uint8), fmt)


def test_decode_of_scaled_formats_needs_the_scale() -> None:
    with pytest.raises(ValueError, match="scale"):
        decode(np.array([1, 0], np.uint8), "binary<scale=tensor>")
    with pytest.raises(ValueError, match="scale"):
        decode(np.array([1, 0], np.uint8), "binary", scale=2.0)
    assert same(decode(np.array([1, 0], np.uint8), "binary<scale=tensor>", scale=0.5), [0.5, -0.5])


# --- stats -------------------------------------------------------------------------------------

STATS_CASES = [
    # fmt, x, kwargs, values, QuantStats
    ("fx<4,4>", [0.01, -0.01, 0.0, 3.0, 100.0, -100.0, math.nan], {"nan": 0},
     [0.0, 0.0, 0.0, 3.0, 7.9375, -8.0, 0.0], QuantStats(7, 2, 2, 1)),
    ("fx<4,4>", [7.96875, -8.09375, 17.0, 0.03], {"overflow": "wrap"},
     [-8.0, 7.875, 1.0, 0.0], QuantStats(4, 3, 1, 0)),
    ("ufx<4,4>", [-0.01, -1.0, 20.0, 0.5, math.inf], {},
     [0.0, 0.0, 15.9375, 0.5, 15.9375], QuantStats(5, 3, 1, 0)),
    ("e4m3", [2.0**-11, -(2.0**-11), 0.0, 1.0, 500.0, -1000.0, math.nan, math.inf, 464.0], {},
     [0.0, -0.0, 0.0, 1.0, 448.0, -448.0, math.nan, 448.0, 448.0], QuantStats(9, 3, 2, 1)),
    ("e4m3", [1.0, 300.0, 465.0], {"overflow": "nan"}, [1.0, 288.0, math.nan], QuantStats(3, 1, 0, 0)),
    ("e5m2", [1e6, -1e6, math.inf, math.nan, 2.0**-18, 2.0**-17 * 3], {},
     [math.inf, -math.inf, math.inf, math.nan, 0.0, 2.0**-15], QuantStats(6, 2, 1, 1)),
    ("e5m2", [1e6, -1e6], {"rounding": "toward_zero"}, [57344.0, -57344.0], QuantStats(2, 2, 0, 0)),
    ("fp<4,3,ftz>", [2.0**-7, -(2.0**-7), 2.0**-6, 0.0], {"rounding": "ceil"},
     [0.0, -0.0, 2.0**-6, 0.0], QuantStats(4, 0, 2, 0)),
    ("e4m3fnuz", [-(2.0**-12), 241.0, 250.0, -1e9], {}, [0.0, 240.0, 240.0, -240.0], QuantStats(4, 2, 1, 0)),
    ("pow2<-8,0>", [2.0**-10, 2.0**-9, 3.0, -3.0, 0.5, 0.0, -(2.0**-9) * 1.5], {},
     [0.0, 0.0, 1.0, -1.0, 0.5, 0.0, -(2.0**-8)], QuantStats(7, 2, 2, 0)),
    ("upow2<-4,3>", [-1.0, 100.0, 1.0, math.nan], {"nan": 0}, [0.0, 8.0, 1.0, 0.0], QuantStats(4, 2, 0, 1)),
    ("binary", [0.5, -2.0, 0.0, -0.0], {}, [1.0, -1.0, 1.0, 1.0], QuantStats(4, 0, 0, 0)),
    ("ternary<scale=none>", [1.0, -0.25, 0.0, 4.0, -2.0, 0.5], {},
     [1.0, 0.0, 0.0, 1.0, -1.0, 0.0], QuantStats(6, 0, 2, 0)),
    ("ternary", [1.0, -0.25, 0.0, 4.0, -2.0, 0.5], {},
     [7 / 3, 0.0, 0.0, 7 / 3, -7 / 3, 0.0], QuantStats(6, 0, 2, 0)),
]  # fmt: skip


@pytest.mark.parametrize(("fmt", "x", "kw", "want", "stats"), STATS_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(STATS_CASES)])
def test_return_stats_hand_made(fmt: str, x: list[float], kw: dict, want: list[float],
                                stats: QuantStats) -> None:
    q, st = quantize(np.array(x), fmt, return_stats=True, **kw)
    assert same(q, want), q
    assert st == stats
    c, st2 = encode(np.array(x), fmt, return_stats=True, **kw)
    assert st2 == stats
    if not get_format(fmt).has_data_scale:
        assert same(decode(c, fmt), want)
    assert quantize(np.array(x), fmt, **kw).shape == q.shape  # without stats: the array alone


def test_stats_rates_and_sum() -> None:
    _, st = quantize(np.array([100.0, 0.001, 1.0, -100.0]), "fx<4,4>", return_stats=True)
    assert (st.overflow_rate, st.underflow_rate) == (0.5, 0.25)
    assert st + st == QuantStats(8, 4, 2, 0)
    _, empty = quantize(np.array([]), "fx<4,4>", return_stats=True)
    assert empty == QuantStats(0, 0, 0, 0)
    assert empty.overflow_rate == 0.0


# --- integer arguments: one rule (emu.checks.check_int) ---------------------------------------------


@pytest.mark.parametrize(("call", "name", "good"), [
    (lambda v: emu.FixedFormat(v, 4), "FixedFormat: int_bits", 4),
    (lambda v: emu.FloatFormat(v, 3), "FloatFormat: exp_bits", 4),
    (lambda v: emu.Order("lanes", v), "Order: n", 8),
    (lambda v: emu.lossless_acc("fx<2,6>", v), "lossless_acc: n_terms", 16),
    (lambda v: emu.admissible_widths(32, v), "admissible_widths: K", 64),
    (lambda v: emu.block_encode(np.zeros((2, 32)), "mxfp8_e4m3", axis=v), "block_encode: axis", 1),
    (lambda v: quantize([0.3], "fx<4,4>", "stochastic", seed=0, random_bits=v), "quantize: random_bits", 8),
])
def test_integer_arguments_refuse_bools_and_take_numpy_integers(call, name: str, good: int) -> None:
    for bad in (True, np.bool_(False), 2.0, "2"):
        with pytest.raises(TypeError, match=rf"^{re.escape(name)}={re.escape(repr(bad))} must be an int$"):
            call(bad)
    assert repr(call(np.int64(good))) == repr(call(good))


def test_integer_range_errors_name_the_parameter_and_the_range() -> None:
    with pytest.raises(ValueError, match=r"^Order: n=0 outside the allowed range \[1, 1048576\]$"):
        emu.Order("lanes", 0)
    assert type(emu.Order("lanes", np.int64(4)).n) is int
    with pytest.raises(ValueError, match=r"^lossless_acc: n_terms=0 outside the allowed range \[1, inf\)$"):
        emu.lossless_acc("fx<2,6>", 0)
    with pytest.raises(ValueError, match=r"^quantize: seed=-1 outside the allowed range \[0, inf\)$"):
        quantize([0.3], "fx<4,4>", "stochastic", seed=-1)
    with pytest.raises(TypeError, match=r"^quantize: seed=True must be an int >= 0, a SeedSequence,"
                                        r" a Generator or None$"):
        quantize([0.3], "fx<4,4>", "stochastic", seed=True)


@pytest.mark.parametrize("fmt", ["binary<scale=channel>", "ternary<scale=channel>"])
def test_decode_refuses_channel_scales_for_a_0d_array_as_encode_does(fmt: str) -> None:
    """decode is encode's inverse: a 0-d array has no channel axis (it gave shape (1,))."""
    with pytest.raises(ValueError, match=r"^decode: scale='channel' needs an array with a channel axis"):
        emu.decode(np.array(1, np.uint8), fmt, scale=[2.0])
    assert emu.decode(np.array(1, np.uint8), "binary<scale=tensor>", scale=2.0).shape == ()


@pytest.mark.parametrize("fmt", ["e4m3", "fx<4,4>", "pow2<-8,0>"])
def test_decode_refuses_a_scale_for_a_format_without_one_as_encode_does(fmt: str) -> None:
    """decode took any scale= of a fixed, float or power-of-two format and ignored it."""
    with pytest.raises(ValueError, match=r"^decode: scale= applies to scaled binary/ternary formats, not"):
        decode([1, 2], fmt, scale="junk")
    with pytest.raises(ValueError, match=r"^encode: scale= applies to scaled binary/ternary formats, not"):
        encode([1.0], fmt, scale=1.0)


@pytest.mark.parametrize("flag", ["False", 0, 1, None, 0.5])
def test_return_stats_must_be_a_bool(flag: object) -> None:
    """A truthy "False" switched the stats on; every flag is refused unless True or False."""
    pat = rf"^{{}}: return_stats={re.escape(repr(flag))} must be True or False$"
    with pytest.raises(TypeError, match=pat.format("quantize")):
        quantize([1.0], "e4m3", return_stats=flag)
    with pytest.raises(TypeError, match=pat.format("encode")):
        encode([1.0], "e4m3", return_stats=flag)
    with pytest.raises(TypeError, match=pat.format("quantize")):
        emu.Converter("e4m3")(np.ones(2), return_stats=flag)
    assert isinstance(quantize([1.0], "e4m3", return_stats=np.True_), tuple)


def test_format_refusals_name_the_caller_and_its_parameter() -> None:
    """quantize(x, "fx<2,>") said "get_format: name='fx<2,>' ...", a function and parameter the caller never
    named; the explanation is kept."""
    for call, who in [(lambda f: quantize([1.0], f), "quantize"), (lambda f: encode([1.0], f), "encode"),
                      (lambda f: decode([1], f), "decode"), (lambda f: emu.Converter(f), "Converter"),
                      (lambda f: bits(1.0, f), "bits")]:
        with pytest.raises(emu.UnknownFormatError, match=rf"^{who}: fmt='fx<2,>' is not a known format;"
                                                         r" closest known: .* Grammar: fx<IL,FL>"):
            call("fx<2,>")
        with pytest.raises(ValueError, match=rf"^{who}: fmt='p3109<8,9>' has P=9; a signed P3109 format"):
            call("p3109<8,9>")
        with pytest.raises(TypeError, match=rf"^{who}: fmt=5 must be a format name \(str\) or a format$"):
            call(5)
    with pytest.raises(ValueError, match=r"^quantize: fmt='fx<100,100>': FixedFormat: bits=int_bits\+"):
        quantize([1.0], "fx<100,100>")
