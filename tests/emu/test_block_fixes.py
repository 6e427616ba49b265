"""Regression tests of the block-scaled API: fixed accumulators, requantization input, modes as enums,
scaled-integer names and the independence of the exact reference."""

from __future__ import annotations

import ast
import os
import pathlib
import zlib

import numpy as np
import pytest

import emu
from emu._ref import block as ref
from emu.block import (
    BlockKind,
    MXFormat,
    ScaledIntFormat,
    ScaleGranularity,
    ScaleKind,
    ScaleOverflow,
    ScaleRule,
    block_encode,
    block_format,
    block_matmul,
    multiply_by_quantized_multiplier,
    requantize,
)


def _seed(text: str) -> int:
    return zlib.crc32(text.encode()) + int(os.environ.get("BLOCK_TEST_SEED", "0"))


def same_bits(x: object, y: object) -> bool:
    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def fast_and_ref(a: np.ndarray, b: np.ndarray, fa: str, fb: str, acc: str, ovf: str) -> tuple:
    y, st = block_matmul(a, b, fa, fb, acc, acc_rounding="floor", acc_overflow=ovf, return_stats=True)
    r, events = ref.ref_block_matmul(a, b, block_format(fa), block_format(fb), acc, "floor", ovf,
                                     return_stats=True)
    return y, st.acc_overflow, r, events


# --- 1. fixed accumulators: exact floor of every term, overflow of huge terms counted ----------------


def test_tiny_negative_term_floors_to_minus_one() -> None:
    for acc in ("fx<32,0>", "fx<16,8>", "fx<62,0>"):
        y = block_matmul([[-2.0 ** -54]], [[1.0]], "mxfp8_e4m3", "mxfp8_e4m3", acc)
        eps = emu.format(acc).eps
        assert y.tolist() == [[-eps]], acc
        assert same_bits(y, ref.ref_block_matmul([[-2.0 ** -54]], [[1.0]], block_format("mxfp8_e4m3"),
                                                 block_format("mxfp8_e4m3"), acc))
    # a tiny positive term floors to 0, an exact term stays
    ones = [[1.0], [1.0]]
    assert block_matmul([[2.0 ** -54, 3.0]], ones, "bfp<e4m3,1>", "bfp<e4m3,1>", "fx<32,0>")[0, 0] == 3.0
    assert block_matmul([[-2.0 ** -54, 3.0]], ones, "bfp<e4m3,1>", "bfp<e4m3,1>", "fx<32,0>")[0, 0] == 2.0


@pytest.mark.parametrize("acc", ["fx<32,0>", "fx<62,0>", "fx<16,8>", "fx<40,-8>", "fx<-20,50>"])
@pytest.mark.parametrize("ovf", ["wrap", "saturate"])
def test_fixed_accumulator_matches_reference_with_tiny_and_huge_terms(acc: str, ovf: str) -> None:
    """Seeded random block matmuls whose block terms span 2^-90 .. 2^100 accumulator units, both signs."""
    rng = np.random.default_rng(_seed(acc + ovf))
    eps_log = emu.format(acc).frac_bits
    pairs = (("mxfp8_e4m3", "mxfp8_e4m3"), ("bfp<e4m3,1>", "bfp<e5m2,1>"), ("mxfp8_e5m2", "mxfp8_e5m2"))
    for fa, fb in pairs:
        for _ in range(4):
            K = int(rng.integers(1, 80))
            a = rng.normal(size=(5, K)) * np.ldexp(1.0, rng.integers(-90, 100, size=(5, K)) - eps_log)
            b = rng.normal(size=(K, 3))
            b[:, 1] = -b[:, 0]
            a[0] = -np.abs(a[0]) * 2.0 ** -60  # only tiny negative terms
            y, n, r, events = fast_and_ref(a, b, fa, fb, acc, ovf)
            assert same_bits(y, r), (fa, fb, K)
            assert n == events, (fa, fb, K)


@pytest.mark.parametrize("term", [2.0 ** 62, 2.0 ** 64, -2.0 ** 64, 2.0 ** 64 + 2.0 ** 61, 2.0 ** 100,
                                  -(2.0 ** 63), 2.0 ** 117, 2.0 ** 300])
def test_huge_terms_are_counted_as_overflow(term: float) -> None:
    a, b = np.array([[term]]), np.array([[1.0]])
    for ovf in ("wrap", "saturate"):
        y, n, r, events = fast_and_ref(a, b, "bfp<e4m3,1>", "bfp<e4m3,1>", "fx<32,0>", ovf)
        assert n == 1
        assert events == 1
        assert same_bits(y, r)
    # a huge term wraps modulo 2^32 onto what was there
    y = block_matmul([[5.0, term]], [[1.0], [1.0]], "bfp<e4m3,1>", "bfp<e4m3,1>", "fx<32,0>",
                     acc_overflow="wrap")
    want = (5 + int(emu.block_quantize([term], "bfp<e4m3,1>")[0])) % (1 << 32)
    assert y[0, 0] == (want - (1 << 32) if want >= 1 << 31 else want)


def test_term_of_exactly_two_to_62_units_can_land_in_range() -> None:
    """A 62-bit word holding its minimum plus a term just below 2^62 units lands on its maximum."""
    fa, fb = "bfp<fp<6,1,none>,2>", "bfp<int2,2>"  # a wide pair: the block sum is a double-double
    a = np.array([[-2.0 ** 61, 0.0, 2.0 ** 62, -0.5]])
    b = np.ones((4, 1))
    for ovf in ("wrap", "saturate"):
        y, n, r, events = fast_and_ref(a, b, fa, fb, "fx<62,0>", ovf)
        assert (n, events) == (0, 0)
        assert y[0, 0] == float(2 ** 61 - 1)
        assert same_bits(y, r)


# --- 2. requantization input --------------------------------------------------------------------


@pytest.mark.parametrize(("call", "exc", "match"), [
    (lambda: multiply_by_quantized_multiplier([1.5], 1 << 30, 0), TypeError,
     "x has dtype float64; expected integers"),
    (lambda: multiply_by_quantized_multiplier([1 << 31], 1 << 30, 0), ValueError,
     r"x holds values outside the allowed range \[-2147483648, 2147483647\]"),
    (lambda: multiply_by_quantized_multiplier([-(1 << 31) - 1], 1 << 30, 0), ValueError,
     r"x holds values outside"),
    (lambda: multiply_by_quantized_multiplier([1], 1.5, 0), TypeError, "m0 has dtype float64"),
    (lambda: multiply_by_quantized_multiplier([1], 1 << 30, 0.0), TypeError, "shift has dtype float64"),
    (lambda: multiply_by_quantized_multiplier([1], 1 << 30, -32), ValueError,
     r"shift holds values outside the allowed range \[-31, 31\]"),
    (lambda: requantize(np.array([[3.7]]), 1 << 30, 0), TypeError, "requantize: acc has dtype float64"),
    (lambda: requantize(np.array([[1 << 32]]), 1 << 30, 0), ValueError,
     r"requantize: acc holds values outside the allowed range \[-2147483648, 2147483647\]"),
    (lambda: requantize(np.array([[True]]), 1 << 30, 0), TypeError, "acc has dtype bool"),
    (lambda: requantize(np.array([[1]]), np.array([2.0 ** 30]), 0), TypeError, "m0 has dtype float64"),
    (lambda: requantize(np.array([[1]]), 1 << 30, 0, zero_point=1 << 31), ValueError,
     r"zero_point=2147483648 outside the allowed range"),
])
def test_requantization_refuses_floats_and_values_beyond_int32(call: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        call()  # type: ignore[operator]


def test_requantization_accepts_int32_extremes() -> None:
    x = np.array([-(1 << 31), (1 << 31) - 1], np.int64)
    got = multiply_by_quantized_multiplier(x, 1 << 30, 0)
    assert got.tolist() == [ref.ref_mbqm(int(v), 1 << 30, 0) for v in x]
    assert requantize(x.reshape(1, 2), 1 << 30, -24).tolist() == [[-64, 64]]


def test_doubling_high_multiply_sends_ties_up() -> None:
    """x * 0.5 (M0 = 2^30, shift 0): positive ties go away from zero, negative ties toward zero."""
    assert multiply_by_quantized_multiplier([1, -1, 3, -3], 1 << 30, 0).tolist() == [1, 0, 2, -1]
    assert [ref.ref_mbqm(v, 1 << 30, 0) for v in (1, -1, 3, -3)] == [1, 0, 2, -1]


# --- 3. modes and kinds are enums, parsed at construction -----------------------------------------------


def test_block_mac_takes_rounding_enum_for_a_fixed_accumulator() -> None:
    m = emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fx<32,0>", acc_rounding=emu.Rounding.NEAREST_EVEN)
    assert m == emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fx<32,0>", acc_rounding="nearest_even")
    assert m.acc_rounding is emu.Rounding.NEAREST_EVEN
    m2 = emu.MAC(act="mxfp4", weight="mxfp4", acc="fx<16,8>", acc_rounding="FLOOR", acc_overflow="wrap")
    assert (m2.acc_rounding, m2.acc_overflow) == (emu.Rounding.FLOOR, emu.Overflow.WRAP)
    a = np.array([[1.25, -3.0, 0.5]])
    w = np.array([[1.0], [2.0], [-0.75]])
    assert emu.matmul(a, w, m).tolist() == block_matmul(a, w, "mxfp8_e4m3", "mxfp8_e4m3", "fx<32,0>",
                                                   acc_rounding=emu.Rounding.FLOOR).tolist()
    with pytest.raises(ValueError,
                       match=r"MAC: acc_rounding=ceil is not one of \(floor, nearest_even\)"):
        emu.MAC(act="mxfp4", weight="mxfp4", acc="fx<16,8>", acc_rounding=emu.Rounding.CEIL)
    with pytest.raises(ValueError, match="MAC: acc_rounding='up' is not one of"):
        emu.MAC(act="mxfp4", weight="mxfp4", acc="fp32", acc_rounding="up")


def test_block_kinds_rules_granularities_and_scales_are_enums() -> None:
    el = emu.format("e4m3")
    f = MXFormat(el, 16, " CEIL")
    assert f.rule is ScaleRule.CEIL
    assert f == MXFormat(el, 16, ScaleRule.CEIL)
    assert f.kind is BlockKind.MX
    assert block_format("nvfp4").kind is BlockKind.NVFP4
    g = ScaledIntFormat(4, False, "group", 8, "bf16")
    assert (g.kind, g.granularity, g.scale) == (BlockKind.INT, ScaleGranularity.GROUP, ScaleKind.BF16)
    assert g == block_format("int4_asym_g8_bf16")
    names = [str(ScaleRule.OCP), str(ScaleGranularity.CHANNEL), str(ScaleKind.FIXMUL)]
    assert names == ["ocp", "channel", "fixmul"]
    x = np.array([1e300, 1.0])
    with pytest.raises(OverflowError, match=r"above 2\^127"):
        block_encode(x, "mxfp4", scale_overflow=ScaleOverflow.ERROR)
    s, _ = block_encode(x, "mxfp4", scale_overflow=ScaleOverflow.CLAMP)
    assert s.tolist() == [254]
    with pytest.raises(ValueError, match=r"scale_overflow='raise' is not one of clamp, error$"):
        block_encode(x, "mxfp4", scale_overflow="raise")
    with pytest.raises(ValueError, match=r"rule=3 is not one of ocp \(alias floor\), ceil, even, rceil$"):
        MXFormat(el, 16, 3)  # type: ignore[arg-type]
    assert MXFormat(el, 16, "Floor") == MXFormat(el, 16)
    assert MXFormat(el, 16, "floor").rule is ScaleRule.OCP


# --- 4. scaled-integer names carry their granularity -----------------------------------------------


@pytest.mark.parametrize(("name", "want"), [
    ("int8", "int8_tensor"), ("INT4", "int4_tensor"), ("int8_asym", "int8_asym_tensor"),
    ("int8_fixmul", "int8_tensor_fixmul"), ("int6_asym_bf16", "int6_asym_tensor_bf16"),
])
def test_bare_scaled_integer_names_are_refused(name: str, want: str) -> None:
    with pytest.raises(ValueError, match=f"names no granularity .*write '{want}'"):
        block_format(name)
    assert block_format(want).granularity is ScaleGranularity.TENSOR
    assert str(block_format(want)) == want


def test_int8_means_one_thing() -> None:
    assert emu.format("int8") == emu.FixedFormat(8, 0)
    assert block_format("bfp<int8,16>").element == emu.FixedFormat(8, 0)
    assert str(ScaledIntFormat(8)) == "int8_tensor"
    for name in ("mxfp8", "mxfp4", "nvfp4", "int8_requant"):
        assert emu.mac_preset(name).block_scaled


# --- 5. the exact reference stands on its own ---------------------------------------------------------


def test_reference_imports_no_code_under_test() -> None:
    pkg = pathlib.Path(ref.__file__).parent  # emu/_ref: the block references are block*.py and requant.py
    siblings = {"." + p.stem for p in pkg.glob("*.py")}
    for path in [*pkg.glob("block*.py"), pkg / "requant.py"]:
        mods = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                mods |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                mods.add("." * node.level + (node.module or ""))
        assert mods <= {"__future__", "math", "struct", "dataclasses", "fractions", "typing", "numpy",
                        "..formats", "..registry"} | siblings, (path.name, mods)
    with pytest.raises(TypeError, match="must be a block format object"):
        ref.ref_block_encode([1.0], "mxfp4")


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "e2m1", "e2m3", "e3m2", "fp<3,0,none>", "e4m3fnuz",
                                  "fp<4,3,ftz>", "fx<2,6>", "int8", "fp<5,2,fn>"])
def test_reference_element_decoding_equals_emu_decode(name: str) -> None:
    el = emu.format(name)
    codes = np.arange(1 << el.bits)
    want = emu.decode(codes, el)
    got = np.array([ref.elem_value(int(c), el) for c in codes])
    assert same_bits(np.where(np.isnan(want), 0.0, want), np.where(np.isnan(got), 0.0, got))
    assert np.array_equal(np.isnan(want), np.isnan(got))


# --- 7. the package emu.block: one concept per module ------------------------------------------------


def test_block_package_modules_are_small_and_share_no_private_names() -> None:
    root = pathlib.Path(emu.__file__).parent
    mods = sorted((root / "block").glob("*.py"))
    want = {"__init__", "formats", "kernels", "convert", "mac_kernels", "mac", "requant"}
    assert {p.stem for p in mods} >= want
    for path in mods:
        text = path.read_text()
        assert text.count("\n") < 700, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path.name, node.module, private)


def test_a_saturating_start_value_starts_at_the_largest_code_of_a_wide_fixed_accumulator() -> None:
    # fx<54,0>: the largest code 2^53 - 1 is no float64; the start is that code, so adding -1 gives
    # 2^53 - 2 (a float64), not 2^53 - 1 rounded up to 2^53 first
    m = emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fx<54,0>", acc_overflow="saturate")
    v, st = emu.matmul(np.array([[-1.0]]), np.ones((1, 1)), m, bias=[1e30], return_stats=True)
    assert int(v[0, 0]) == 2**53 - 2
    assert (st.input_overflow, st.acc_overflow) == (1, 0)


NVFP4_X = np.array([1.0, -2.0, 3.0, 0.5])


@pytest.mark.parametrize(("tensor", "error", "match"), [
    pytest.param(np.uint64(2**32 + 0x3B000000), ValueError, r"tensor scale codes outside \[0, 4294967295\]",
                 id="beyond 32 bits"),
    pytest.param(2**32, ValueError, r"tensor scale codes outside \[0, 4294967295\]", id="python int"),
    pytest.param(1.5, TypeError, r"tensor scale codes have dtype float64; expected integer codes",
                 id="float"),
    pytest.param(np.array([1, 2], np.uint32), ValueError, r"the tensor scale has shape \(2,\); one fp32 code",
                 id="two codes"),
])
def test_nvfp4_decode_checks_the_tensor_scale(tensor: object, error: type, match: str) -> None:
    """NVFP4's fp32 tensor scale is one 32-bit code: a wider, float or array one is refused, naming it (it was
    cut to its low 32 bits, or a float read as a bit pattern)."""
    s, c = block_encode(NVFP4_X, "nvfp4")
    with pytest.raises(error, match=rf"^block_decode: {match}"):
        emu.block_decode(emu.NVFP4Scales(tensor, s.block), c, "nvfp4")
    with pytest.raises(TypeError, match="^block_decode: nvfp4 scales must be the NVFP4Scales"):
        emu.block_decode(s.block, c, "nvfp4")
    assert emu.block_decode(emu.NVFP4Scales(int(s.tensor), s.block), c, "nvfp4").tolist() == \
        emu.block_decode(s, c, "nvfp4").tolist()


@pytest.mark.parametrize("fmt", ["nvfp4", "int8_tensor"])
def test_scale_overflow_error_is_refused_outside_mx(fmt: str) -> None:
    """scale_overflow is MX's (an E8M0 scale beyond 127); other formats raise on their own scale overflows, so
    'error' for them is refused instead of accepted and ignored."""
    with pytest.raises(ValueError, match=rf"^block_encode: scale_overflow=error applies to MX formats .*;"
                                         rf" {fmt}'s scales raise OverflowError where they overflow"):
        block_encode(NVFP4_X, fmt, scale_overflow="error")
    assert block_encode(NVFP4_X, "mxfp4", scale_overflow="error")[1].tolist() == \
        block_encode(NVFP4_X, "mxfp4")[1].tolist()


def test_block_quantize_returns_the_stats_when_asked() -> None:
    """block_quantize passes return_stats to block_encode and returns its stats beside the values (they were
    dropped)."""
    x = [1.0, -0.3, 5.0, 7.5]
    vals, st = emu.block_quantize(x, "mxfp4", return_stats=True)
    assert vals.tolist() == emu.block_quantize(x, "mxfp4").tolist() == [1.0, -0.5, 4.0, 6.0]
    assert st == block_encode(x, "mxfp4", return_stats=True)[2]
    assert st.saturated == 1  # 7.5 above 6 x 2^0


@pytest.mark.parametrize("bad", ["a", "b"])
def test_block_matmul_names_the_operand_it_refuses(bad: str) -> None:
    ops = {"a": np.ones((1, 32)), "b": np.ones((32, 1))}
    ops[bad] = ops[bad].astype(bool)
    with pytest.raises(TypeError, match=rf"^block_matmul: {bad} has dtype bool; expected real numbers \(fl"):
        block_matmul(ops["a"], ops["b"], "mxfp4", "mxfp4")


@pytest.mark.parametrize("preset", ["nvfp4", "int8_requant"])
def test_a_convolutions_tensor_scale_is_that_of_x_not_of_its_patches(preset: str) -> None:
    """A tensor-wide scale (NVFP4's fp32 scale, a per-tensor integer) spans the operand as passed: conv2d's
    x, including values no output reads (a 1x1 stride-2 convolution skips every other pixel). The patches
    with one more row that holds x's largest value (the tensor range, not a product any output keeps)
    give the same outputs through matmul."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 16, 4, 4)), rng.standard_normal((2, 16, 1, 1))
    x[0, 0, 1, 1] = 1000.0  # read by no output
    mac = emu.mac_preset(preset)
    got = emu.conv2d(x, w, mac, stride=2)
    patches = x[:, :, ::2, ::2].transpose(0, 2, 3, 1).reshape(4, 16)
    extra = np.zeros((1, 16))
    extra[0, 0] = 1000.0
    want = emu.matmul(np.vstack([patches, extra]), w.reshape(2, 16).T, mac)[:4]
    np.testing.assert_array_equal(got.transpose(0, 2, 3, 1).reshape(4, 2), want)
    assert not np.array_equal(got, emu.conv2d(np.where(x == 1000.0, 0.0, x), w, mac, stride=2))


def test_block_flags_must_be_bools() -> None:
    """A truthy "False" returned the stats of block_encode, block_quantize and block_matmul."""
    x = np.ones((2, 32))
    with pytest.raises(TypeError, match=r"^block_encode: return_stats='False' must be True or False$"):
        block_encode(x, "mxfp4", return_stats="False")
    with pytest.raises(TypeError, match=r"^block_quantize: return_stats=1 must be True or False$"):
        emu.block_quantize(x, "mxfp4", return_stats=1)
    with pytest.raises(TypeError, match=r"^block_matmul: return_stats='no' must be True or False$"):
        block_matmul(x, x.T, "mxfp4", "mxfp4", return_stats="no")
    assert len(block_encode(x, "mxfp4", return_stats=np.True_)) == 3


INT_X = np.random.default_rng(0).normal(size=(2, 64))


@pytest.mark.parametrize(("scale", "error", "match"), [
    pytest.param(np.array(1.0, np.float32), TypeError,
                 r"IntScales.scale has dtype float32; expected integer codes \(fp32 bit patterns\)$",
                 id="float"),
    pytest.param(np.array(np.nan), TypeError, r"IntScales.scale has dtype float64; expected integer codes",
                 id="nan"),
    pytest.param("abc", TypeError, r"IntScales.scale has dtype <U3; expected integer codes", id="str"),
    pytest.param(np.array(0x7FC00000, np.uint32), ValueError,
                 r"IntScales.scale holds fp32 codes of NaN or inf$", id="nan code"),
    pytest.param(np.array(2**32), ValueError, r"IntScales.scale holds values outside \[0, 4294967295\]",
                 id="wide code"),
    pytest.param(np.zeros(5, np.uint32), ValueError, r"IntScales.scale has shape \(5,\); int8_tensor codes of"
                 r" shape \(2, 64\) have one scale: shape \(\)$", id="shape"),
])
def test_int_decode_checks_the_scales_it_is_given(scale: object, error: type, match: str) -> None:
    """A user-built IntScales was trusted: float scales read as fp32 bit patterns (1.0 gave 1e-43 values), NaN
    gave zeros, a str or a wrong shape raw numpy errors."""
    s, c = block_encode(INT_X, "int8_tensor")
    with pytest.raises(error, match=rf"^block_decode: {match}"):
        emu.block_decode(emu.IntScales(scale=scale), c, "int8_tensor")
    assert emu.block_decode(emu.IntScales(scale=int(s.scale)), c, "int8_tensor").tolist() == \
        emu.block_decode(s, c, "int8_tensor").tolist()


def test_int_decode_names_the_axis_and_the_fields_a_format_has() -> None:
    """Channel scales decoded along the other axis were a raw broadcast error, tensor scales decoded as
    channel ones took one scale for every channel; a zero point or shift the format has none of was
    ignored, a missing zero point taken as 0."""
    s, c = block_encode(INT_X, "int8_channel")
    with pytest.raises(ValueError, match=r"^block_decode: IntScales.scale has shape \(64,\); int8_channel"
                                         r" codes of shape \(2, 64\) have one scale per index along axis 0:"
                                         r" shape \(2,\)$"):
        emu.block_decode(s, c, "int8_channel", axis=0)
    st, ct = block_encode(INT_X, "int8_tensor")
    with pytest.raises(ValueError, match=r"^block_decode: IntScales.scale has shape \(\); int8_channel codes"
                                         r" of shape \(2, 64\) have one scale per index along axis 1"):
        emu.block_decode(st, ct, "int8_channel")
    with pytest.raises(ValueError, match=r"^block_decode: IntScales.zero_point given, but int8_tensor is"
                                         r" symmetric and has none$"):
        emu.block_decode(emu.IntScales(st.scale, np.array(0)), ct, "int8_tensor")
    sa, ca = block_encode(INT_X, "int4_asym_g16_bf16")
    with pytest.raises(ValueError, match=r"^block_decode: IntScales.zero_point is None, but"
                                         r" int4_asym_g16_bf16 is asymmetric and needs one$"):
        emu.block_decode(emu.IntScales(sa.scale), ca, "int4_asym_g16_bf16")
    with pytest.raises(ValueError, match=r"^block_decode: IntScales.zero_point holds values outside"
                                         r" \[-8, 7\]"):
        emu.block_decode(emu.IntScales(sa.scale, sa.zero_point + 100), ca, "int4_asym_g16_bf16")
    with pytest.raises(ValueError, match=r"^block_decode: IntScales.shift given, but int4_asym_g16_bf16 has"
                                         r" bf16 scales, without a shift$"):
        emu.block_decode(emu.IntScales(sa.scale, sa.zero_point, sa.zero_point), ca, "int4_asym_g16_bf16")
    sf, cf = block_encode(INT_X, "int8_tensor_fixmul")
    with pytest.raises(ValueError, match=r"^block_decode: IntScales.shift is None, but int8_tensor_fixmul"
                                         r" needs one \(fixmul scales\)$"):
        emu.block_decode(emu.IntScales(sf.scale), cf, "int8_tensor_fixmul")
    for fmt in ("int8_channel", "int4_asym_g16_bf16", "int8_tensor_fixmul", "int8_g32_pow2"):
        for axis in (0, 1):
            s, c = block_encode(INT_X, fmt, axis=axis)
            assert np.abs(emu.block_decode(s, c, fmt, axis=axis) - INT_X).max() < 0.2


def test_block_refusals_name_the_caller_and_its_parameters() -> None:
    """block_encode and its kin said "block_format: name=..."; block_matmul said "matmul: a and w ..." of a
    0-d b and "MAC: act=..." of its formats, names the caller never used."""
    x = np.ones((2, 32))
    with pytest.raises(ValueError, match=r"^block_encode: fmt='mxfp8' is not a block-scaled format\. "):
        block_encode(x, "mxfp8")
    with pytest.raises(ValueError, match=r"^block_quantize: fmt='mxfp4,bogus': rule='bogus' is not one of"):
        emu.block_quantize(x, "mxfp4,bogus")
    with pytest.raises(ValueError, match=r"^block_decode: fmt='bfp<e9m9,4>': get_format: name='e9m9' is"):
        emu.block_decode(np.zeros(1, np.uint8), np.zeros(4, np.uint8), "bfp<e9m9,4>")
    with pytest.raises(ValueError, match=r"^int_matmul_requant: fmt_a='int8' names no granularity"):
        emu.int_matmul_requant(x, x.T, 0.1, fmt_a="int8")
    with pytest.raises(ValueError, match=r"^block_matmul: a and b must have at least one dimension; got"
                                         r" shapes \(2, 32\) and \(\)$"):
        block_matmul(x, np.float64(0.5), "mxfp4", "mxfp4")
    with pytest.raises(ValueError, match=r"^block_matmul: a has K=32 \(shape \(2, 32\)\) but b has K=2"):
        block_matmul(x, x, "mxfp4", "mxfp4")
    with pytest.raises(ValueError, match=r"^block_matmul: fmt_a='mxfp8' is not a block-scaled format"):
        block_matmul(x, x.T, "mxfp8", "mxfp4")
    with pytest.raises(ValueError, match=r"^block_matmul: fmt_b='e4m3' is not a block-scaled format"):
        block_matmul(x, x.T, "mxfp4", "e4m3")
    with pytest.raises(ValueError, match=r"^block_matmul: fmt_a=mxfp4 and fmt_b=nvfp4 are of different"
                                         r" families"):
        block_matmul(x, x.T, "mxfp4", "nvfp4")
    with pytest.raises(ValueError, match=r"^block_matmul: acc_rounding='bogus' is not one of nearest_even"):
        block_matmul(x, x.T, "mxfp4", "mxfp4", acc_rounding="bogus")
