"""NaN in conversions, pinned bit for bit: ieee formats keep the NaN's sign and the top M bits of its
payload (a zero payload becomes the quiet NaN 1 << (M - 1)) and decode them back to the top of float64's
fraction; fn formats keep the sign (overflow='nan' too) and decode to +-0x7FF8...; fnuz, P3109 and
unsigned fn formats have one NaN, decoded as 0x7FF8.... Every rounding mode, the slow reference, numpy's
float16, ml_dtypes and arrays of every size agree, and decode then encode is the identity on every code
of every float format of 16 bits or fewer."""

from __future__ import annotations

import numpy as np
import pytest
from ml_dtypes import bfloat16, float8_e4m3fn, float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz

import emu
from emu import FloatFormat, Rounding
from emu._ref.scalar import decode_ref, quantize_ref

QNAN = 0x7FF8000000000000
FRAC52 = (1 << 52) - 1
F = emu.format

IEEE = [F("fp16"), F("bf16"), F("e5m2"), F("tf32"), F("fp32"), F("fp64"), F("fp<8,30>"), F("fp<6,7>"),
        FloatFormat(4, 3, special="ieee"), FloatFormat(2, 1), F("fp<1,4>"),
        FloatFormat(5, 10, signed=False), FloatFormat(4, 3, signed=False)]
FN = [F("e4m3"), F("fp<5,2,fn,bias=11>"), F("fp<4,0,fn>"), FloatFormat(5, 10, special="fn")]
SINGLE = [F("e4m3fnuz"), F("e5m2fnuz"), F("fp<3,3,fnuz,bias=1>"), F("p3109<8,3>"), F("p3109<8,4,finite>"),
          F("p3109<8,1,unsigned>"), F("e8m0"), F("fp<4,3,fn,unsigned>")]
NAN_FORMATS = IEEE + FN + SINGLE
SMALL_FLOATS = [f for f in emu.ALL_FORMATS if isinstance(f, FloatFormat) and f.bits <= 16] + [
    FloatFormat(4, 3, special="ieee"), FloatFormat(2, 1), FloatFormat(5, 10, signed=False),
    FloatFormat(4, 3, signed=False), FloatFormat(5, 10, special="fn"), FloatFormat(3, 4, special="fnuz")]
MAIN = [F("fp16"), F("bf16"), F("e5m2"), F("e4m3"), F("e4m3fnuz")]
ROUNDINGS = list(Rounding)

_FIXED_PAYLOADS = [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0xFFF0000000000001,
                   0x7FF4000000000000, 0xFFF4000000000000, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF,
                   0x7FF5555555555555, 0xFFFAAAAAAAAAAAAA, 0x7FF0000000000400, 0xFFF0040000000000,
                   0x7FFC000000000001, 0xFFF8000000000001]


def _random_nan_bits(n: int, seed: int, low: int = 1) -> list[int]:
    """n float64 NaN patterns of random sign with payloads in [low, 2^52)."""
    rng = np.random.default_rng(seed)
    frac = rng.integers(low, 1 << 52, n, dtype=np.uint64)
    sign = rng.integers(0, 2, n, dtype=np.uint64) << np.uint64(63)
    return [int(b) for b in sign | np.uint64(0x7FF << 52) | frac]


PAYLOADS = _FIXED_PAYLOADS + _random_nan_bits(24, 20240611)


def nans(bits: list[int]) -> np.ndarray:
    return np.array(bits, np.uint64).view(np.float64)


def bits_of(v: object) -> np.ndarray:
    return np.asarray(v, np.float64).view(np.uint64)


def sign_bit(fmt: FloatFormat) -> int:
    return 1 << (fmt.exp_bits + fmt.man_bits)


def want_code(fmt: FloatFormat, b: int) -> int:
    """The code of the float64 NaN with bits b."""
    neg = bool(b >> 63) and fmt.signed
    if fmt.special == "ieee":
        m = fmt.man_bits
        f = (b & FRAC52) >> (52 - m) or 1 << (m - 1)
        return (((1 << fmt.exp_bits) - 1) << m) | f | (sign_bit(fmt) if neg else 0)
    if fmt.special == "fn" and fmt.signed:
        return fmt.nan_code | (sign_bit(fmt) if neg else 0)
    return fmt.nan_code


def want_bits(fmt: FloatFormat, code: int) -> int:
    """The float64 bits decode gives for the NaN code."""
    s = (code >> (fmt.exp_bits + fmt.man_bits)) & 1 if fmt.signed else 0
    if fmt.special == "ieee":
        m = fmt.man_bits
        return (s << 63) | (0x7FF << 52) | ((code & ((1 << m) - 1)) << (52 - m))
    if fmt.special == "fn" and fmt.signed:
        return (s << 63) | QNAN
    return QNAN


def want_codes(fmt: FloatFormat, bits: list[int]) -> np.ndarray:
    return np.array([want_code(fmt, b) for b in bits], np.uint64)


def want_value_bits(fmt: FloatFormat, bits: list[int]) -> np.ndarray:
    return np.array([want_bits(fmt, want_code(fmt, b)) for b in bits], np.uint64)


def nan_codes(fmt: FloatFormat) -> list[int]:
    """Every NaN code of fmt (for M > 12 a sample of fractions)."""
    signs = [0, sign_bit(fmt)] if fmt.signed else [0]
    if fmt.special == "ieee":
        m = fmt.man_bits
        if m <= 12:
            fs = list(range(1, 1 << m))
        else:
            rnd = np.random.default_rng(m).integers(1, 1 << m, 16, dtype=np.uint64)
            fs = [1, 2, 1 << (m - 1), (1 << m) - 1, *(int(f) for f in rnd)]
        return [s | (((1 << fmt.exp_bits) - 1) << m) | f for s in signs for f in fs]
    if fmt.special == "fn" and fmt.signed:
        return [s | fmt.nan_code for s in signs]
    return [fmt.nan_code]


@pytest.mark.parametrize("fmt", NAN_FORMATS, ids=str)
def test_encode_nan_payloads(fmt: FloatFormat) -> None:
    got = emu.encode(nans(PAYLOADS), fmt).astype(np.uint64)
    np.testing.assert_array_equal(got, want_codes(fmt, PAYLOADS))


@pytest.mark.parametrize("fmt", NAN_FORMATS, ids=str)
def test_quantize_gives_the_decoded_nan(fmt: FloatFormat) -> None:
    got = bits_of(emu.quantize(nans(PAYLOADS), fmt))
    np.testing.assert_array_equal(got, want_value_bits(fmt, PAYLOADS))


@pytest.mark.parametrize("fmt", NAN_FORMATS, ids=str)
def test_decode_nan_codes(fmt: FloatFormat) -> None:
    codes = nan_codes(fmt)
    got = bits_of(emu.decode(np.array(codes, np.uint64), fmt))
    np.testing.assert_array_equal(got, np.array([want_bits(fmt, c) for c in codes], np.uint64))


@pytest.mark.parametrize("fmt", SMALL_FLOATS, ids=str)
def test_decode_then_encode_is_the_identity(fmt: FloatFormat) -> None:
    codes = np.arange(1 << fmt.bits, dtype=np.uint64)
    if not fmt.subnormals and fmt.man_bits:  # denormals-are-zero codes decode to a zero: not NaN's concern
        field = (codes >> np.uint64(fmt.man_bits)) & np.uint64((1 << fmt.exp_bits) - 1)
        codes = codes[~((field == 0) & ((codes & np.uint64((1 << fmt.man_bits) - 1)) != 0))]
    back = emu.encode(emu.decode(codes, fmt), fmt).astype(np.uint64)
    bad = np.flatnonzero(back != codes)
    assert bad.size == 0, f"{bad.size} codes move, e.g. {[(hex(codes[i]), hex(back[i])) for i in bad[:6]]}"


@pytest.mark.parametrize("fmt", MAIN + [F("p3109<8,3>"), FloatFormat(4, 3, special="ieee")], ids=str)
@pytest.mark.parametrize("rounding", ROUNDINGS, ids=str)
def test_every_rounding_gives_the_same_nan(fmt: FloatFormat, rounding: Rounding) -> None:
    codes = emu.encode(nans(PAYLOADS), fmt, rounding=rounding, seed=7).astype(np.uint64)
    np.testing.assert_array_equal(codes, want_codes(fmt, PAYLOADS))
    vals = emu.quantize(nans(PAYLOADS), fmt, rounding=rounding, seed=7)
    np.testing.assert_array_equal(bits_of(vals), want_value_bits(fmt, PAYLOADS))


def _float16_inputs() -> np.ndarray:
    """NaNs whose top 10 fraction bits are nonzero, and -np.nan, np.nan."""
    return np.concatenate([nans(_random_nan_bits(64, 11, low=1 << 42)), [np.nan, -np.nan]])


def test_encode_fp16_matches_numpy() -> None:
    x = _float16_inputs()
    np.testing.assert_array_equal(emu.encode(x, "fp16"), x.astype(np.float16).view(np.uint16))


def test_quantize_fp16_matches_numpy() -> None:
    x = _float16_inputs()
    np.testing.assert_array_equal(bits_of(emu.quantize(x, "fp16")), bits_of(x.astype(np.float16)))


def test_decode_fp16_matches_numpy() -> None:
    h = _float16_inputs().astype(np.float16)
    np.testing.assert_array_equal(bits_of(emu.decode(h.view(np.uint16), "fp16")), bits_of(h))


_NAN2 = [np.nan, -np.nan]
_INF2 = [np.inf, -np.inf]
_BIG2 = [1e9, -1e9]
ML_CASES = [  # (format, ml_dtypes type, overflow, inputs): ml_dtypes rounds to nearest even
    ("e4m3", float8_e4m3fn, "nan", _NAN2 + _INF2 + _BIG2),
    ("e5m2", float8_e5m2, "nan", _NAN2 + _INF2),
    ("e5m2", float8_e5m2, "inf", _NAN2 + _INF2 + _BIG2),  # ml_dtypes sends 1e9 to inf, not to NaN
    ("bf16", bfloat16, "inf", _NAN2),
    ("e4m3fnuz", float8_e4m3fnuz, "nan", _NAN2 + _INF2 + _BIG2),
    ("e5m2fnuz", float8_e5m2fnuz, "nan", _NAN2 + _INF2 + _BIG2),
]


@pytest.mark.parametrize(("name", "dtype", "overflow", "inputs"), ML_CASES,
                         ids=[f"{c[0]}-{c[2]}-{len(c[3])}" for c in ML_CASES])
def test_encode_matches_ml_dtypes(name: str, dtype: type, overflow: str, inputs: list[float]) -> None:
    x = np.array(inputs)
    want = x.astype(dtype).view(np.uint8 if np.dtype(dtype).itemsize == 1 else np.uint16)
    np.testing.assert_array_equal(emu.encode(x, name, overflow=overflow), want)


@pytest.mark.parametrize("name", ["e4m3fnuz", "e5m2fnuz"])
def test_fnuz_any_nan_is_0x80(name: str) -> None:
    np.testing.assert_array_equal(emu.encode(nans(PAYLOADS), name), np.full(len(PAYLOADS), 0x80, np.uint8))


def test_fn_overflow_nan_keeps_the_sign() -> None:
    x = np.array([1e9, -1e9, 465.0, -465.0, np.inf, -np.inf])
    np.testing.assert_array_equal(emu.encode(x, "e4m3", overflow="nan"), [0x7F, 0xFF, 0x7F, 0xFF, 0x7F, 0xFF])
    want = np.array([0, 1, 0, 1, 0, 1], np.uint64) << np.uint64(63) | np.uint64(QNAN)
    np.testing.assert_array_equal(bits_of(emu.quantize(x, "e4m3", overflow="nan")), want)


REF_ROUNDINGS = ["nearest_even", "toward_zero", "stochastic"]


def _ref_codes(fmt: FloatFormat, rounding: str) -> np.ndarray:
    return np.array([quantize_ref(float(x), fmt, rounding, None, key=5, index=i).code
                     for i, x in enumerate(nans(PAYLOADS))], np.uint64)


@pytest.mark.parametrize("fmt", MAIN, ids=str)
@pytest.mark.parametrize("rounding", REF_ROUNDINGS)
def test_reference_agrees_with_encode(fmt: FloatFormat, rounding: str) -> None:
    fast = emu.encode(nans(PAYLOADS), fmt, rounding=rounding, seed=5).astype(np.uint64)
    np.testing.assert_array_equal(_ref_codes(fmt, rounding), fast)


@pytest.mark.parametrize("fmt", MAIN, ids=str)
@pytest.mark.parametrize("rounding", REF_ROUNDINGS)
def test_reference_nan_codes(fmt: FloatFormat, rounding: str) -> None:
    np.testing.assert_array_equal(_ref_codes(fmt, rounding), want_codes(fmt, PAYLOADS))


@pytest.mark.parametrize("fmt", MAIN, ids=str)
def test_reference_decode_of_nan_codes(fmt: FloatFormat) -> None:
    codes = nan_codes(fmt)
    got = np.array([np.float64(decode_ref(c, fmt)).view(np.uint64) for c in codes], np.uint64)
    np.testing.assert_array_equal(got, np.array([want_bits(fmt, c) for c in codes], np.uint64))


def _mixed(n: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """x of n elements (finite, +-0, +-inf, NaNs with random payloads), the NaN mask, the NaNs' bits."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
    kind = rng.integers(0, 6, n)
    kind[0] = 0
    x[kind == 1] = np.where(rng.integers(0, 2, n) == 0, 0.0, -0.0)[kind == 1]
    x[kind == 2] = np.where(rng.integers(0, 2, n) == 0, np.inf, -np.inf)[kind == 2]
    is_nan = kind == 0
    nan_bits = _random_nan_bits(int(is_nan.sum()), n + 1)
    x[is_nan] = nans(nan_bits)
    return x, is_nan, nan_bits


def _convert(func: str, x: np.ndarray, fmt: FloatFormat, rounding: str) -> np.ndarray:
    if func == "encode":
        return emu.encode(x, fmt, rounding=rounding, seed=3).astype(np.uint64)
    return bits_of(emu.quantize(x, fmt, rounding=rounding, seed=3))


MIXED = [F("fp16"), F("bf16"), F("e4m3"), F("e4m3fnuz")]


@pytest.mark.parametrize("fmt", MIXED, ids=str)
@pytest.mark.parametrize("n", [1, 100, 100_000])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic"])
@pytest.mark.parametrize("func", ["encode", "quantize"])
def test_mixed_array_nan_positions(fmt: FloatFormat, n: int, rounding: str, func: str) -> None:
    x, is_nan, nan_bits = _mixed(n)
    want = want_codes(fmt, nan_bits) if func == "encode" else want_value_bits(fmt, nan_bits)
    np.testing.assert_array_equal(_convert(func, x, fmt, rounding)[is_nan], want)


@pytest.mark.parametrize("fmt", MIXED, ids=str)
@pytest.mark.parametrize("n", [1, 100, 100_000])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic"])
@pytest.mark.parametrize("func", ["encode", "quantize"])
def test_mixed_array_other_positions(fmt: FloatFormat, n: int, rounding: str, func: str) -> None:
    x, is_nan, _ = _mixed(n)
    base = _convert(func, np.where(is_nan, 0.0, x), fmt, rounding)
    np.testing.assert_array_equal(_convert(func, x, fmt, rounding)[~is_nan], base[~is_nan])


@pytest.mark.parametrize("fmt", MIXED, ids=str)
def test_converter_gives_the_conversions_nans(fmt: FloatFormat) -> None:
    x, is_nan, nan_bits = _mixed(1000)
    got = emu.Converter(fmt)(x)
    np.testing.assert_array_equal(bits_of(got)[is_nan], want_value_bits(fmt, nan_bits))


@pytest.mark.parametrize("acc", ["fp16", "fp32"])
def test_arithmetic_nans_are_the_positive_quiet_nan(acc: str) -> None:
    """A NaN a datapath makes has no sign or payload: inf + (-inf) from fp16 products that overflow, and a
    negative NaN operand, both give 0x7FF8... (a conversion of -NaN would keep the sign)."""
    mac = emu.MAC(act="fp16", weight="fp16", acc=acc, product="fp16")
    products = emu.matmul(np.array([[60000.0, -60000.0]]), np.array([[2.0], [2.0]]), mac)
    operand = emu.matmul(np.array([[-np.nan, 1.0]]), np.array([[1.0], [1.0]]), mac)
    assert int(bits_of(products)[0, 0]) == QNAN
    assert int(bits_of(operand)[0, 0]) == QNAN


@pytest.mark.parametrize("order", ["sequential", "pairwise", "lanes(4)"])
@pytest.mark.parametrize("output", ["fp16", "e4m3", "bf16"])
def test_a_datapaths_nan_reaches_its_output_without_sign(order: str, output: str) -> None:
    """A negative NaN operand, and inf - inf in a binary32 accumulator (x86 makes that NaN negative), come
    out of every order as the positive quiet NaN with the output format's canonical code."""
    out = emu.format(output)
    mac = emu.MAC(act="bf16", weight="bf16", acc="fp32", order=order, output=out)
    big = float(emu.format("bf16").max)
    cases = ((np.array([[-np.nan, 1.0]]), np.ones((2, 1))),
             (np.array([[big, big]]), np.array([[big], [-big]])))
    for a, w in cases:
        v, c = emu.matmul(a, w, mac, return_codes=True)
        assert int(bits_of(v)[0, 0]) == QNAN
        assert int(c[0, 0]) == out.nan_code


@pytest.mark.parametrize("order", ["sequential", "pairwise", "lanes(4)", "blocks(2)", "tree(2)"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 70), (300, 2)])
def test_a_binary32_accumulators_nan_is_its_output_without_sign(order: str, shape: tuple[int, int]) -> None:
    """Without an output format the accumulators are the outputs: inf - inf in binary32 (x86 makes that
    NaN negative) comes out as the positive quiet NaN, code 0x7FC00000, whatever the order and the
    layout the binary32 kernels choose (chains along rows or columns), and from a convolution too."""
    mac = emu.MAC(act="bf16", weight="bf16", acc="fp32", order=order)
    big = float(emu.format("bf16").max)
    m, n = shape
    a = np.full((m, 4), big)
    w = np.tile(np.array([[big], [-big], [1.0], [1.0]]), (1, n))
    v, c = emu.matmul(a, w, mac, return_codes=True)
    assert (bits_of(emu.matmul(a, w, mac)) == QNAN).all()
    assert (bits_of(v) == QNAN).all()
    assert (c == 0x7FC00000).all()
    y = emu.conv2d(np.full((1, 4, 3, 3), big), w[:, :1].reshape(1, 4, 1, 1), mac)
    assert (bits_of(y) == QNAN).all()
