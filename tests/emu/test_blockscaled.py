"""Block-scaled formats: fast kernels against the exact reference, ml_dtypes, the spec's rules."""

from __future__ import annotations

import dataclasses
import math
import os
import zlib

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu
from emu._ref import block as ref
from emu.block import (
    MX_FORMATS,
    IntScales,
    MXFormat,
    NVFP4Format,
    NVFP4Scales,
    ScaledIntFormat,
    block_decode,
    block_encode,
    block_format,
    block_matmul,
    block_quantize,
    int_matmul_requant,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
)

ML = {
    "mxfp8_e4m3": ml_dtypes.float8_e4m3fn,
    "mxfp8_e5m2": ml_dtypes.float8_e5m2,
    "mxfp6_e2m3": ml_dtypes.float6_e2m3fn,
    "mxfp6_e3m2": ml_dtypes.float6_e3m2fn,
    "mxfp4": ml_dtypes.float4_e2m1fn,
}
ENCODE_FORMATS = [
    *MX_FORMATS, "bfp<int4,8,ceil>", "bfp<e4m3,5,ceil>", "bfp<int8,16>", "bfp<e2m1,7>", "nvfp4", "nvfp4<8>",
    "int8_tensor", "int8_channel", "int4_g5", "int8_asym_tensor", "int4_asym_g3_bf16", "int8_tensor_pow2",
    "int8_tensor_fixmul",
    "int6_channel_fixmul", "int2_g4", "int16_asym_channel_bf16", "bfp<fp<3,0,none>,4>", "bfp<e5m2,3,ceil>",
    "bfp<e2m1,7,even>", "bfp<int4,8,rceil>", "bfp<fp<3,2,ftz>,32>", "bfp<fp<4,3,ftz>,8,ceil>",
    # float elements one by one (the widest exponent) and in the loop of selects (`mx_fast_elements`)
    "bfp<fp<11,3>,8>", "bfp<fp<10,2>,8>",
]


def _seed(text: str) -> int:
    """A stable seed per case (BLOCK_TEST_SEED shifts every case for a wider search)."""
    return zlib.crc32(text.encode()) + int(os.environ.get("BLOCK_TEST_SEED", "0"))


def same_bits(x: object, y: object) -> bool:
    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.uint64), b.view(np.uint64))


def same_scales(s: object, r: object) -> bool:
    if isinstance(s, NVFP4Scales):
        return np.array_equal(s.tensor, r.tensor) and np.array_equal(s.block, r.block)
    if isinstance(s, IntScales):
        def eq(a: object, b: object) -> bool:
            if a is None or b is None:
                return a is None and b is None
            return np.array_equal(np.asarray(a, np.int64), np.asarray(b, np.int64))
        return eq(s.scale, r.scale) and eq(s.zero_point, r.zero_point) and eq(s.shift, r.shift)
    return np.array_equal(np.asarray(s), np.asarray(r)) and np.shape(s) == np.shape(r)


def wide_data(rng: np.random.Generator, shape: tuple[int, ...], spread: float = 3.0) -> np.ndarray:
    x = rng.normal(size=shape) * np.exp(rng.normal(size=shape) * spread)
    step = max(1, x.size // 5)
    x.flat[::step] = np.round(x.flat[::step] * 4) / 4  # some grid values, ties
    return x


# --- formats, names -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*ENCODE_FORMATS, "int4_asym_g128_bf16", "int8_channel_pow2"])
def test_names_round_trip(name: str) -> None:
    f = block_format(name)
    assert block_format(str(f)) == f
    assert block_format(f) is f
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
        f.bits = 3  # type: ignore[misc,union-attr]


def test_mx_definitions_follow_the_spec() -> None:
    want = {"mxfp8_e4m3": (448.0, 8), "mxfp8_e5m2": (57344.0, 8), "mxfp6_e2m3": (7.5, 6),
            "mxfp6_e3m2": (28.0, 6), "mxfp4": (6.0, 4), "mxint8": (127 / 64, 8)}
    for name, (mx, bits) in want.items():
        f = block_format(name)
        assert isinstance(f, MXFormat)
        assert f.block_size == 32
        assert f.rule == "ocp"
        assert (f.element.max, f.element.bits) == (mx, bits)
    assert str(MXFormat(emu.format("e4m3"), 16)) == "bfp<e4m3,16>"
    assert str(NVFP4Format()) == "nvfp4"
    assert NVFP4Format().bits_per_element == 4.5
    assert str(ScaledIntFormat(4, False, "group", 128, "bf16")) == "int4_asym_g128_bf16"


@pytest.mark.parametrize(("call", "match"), [
    (lambda: MXFormat(emu.format("e4m3"), 0), r"block_size=0 outside the allowed range \[1, 16777216\]"),
    (lambda: MXFormat(emu.format("fp32")), "allowed element widths are 2..16"),
    (lambda: MXFormat(emu.format("e4m3"), 32, "round"), "rule='round' is not one of ocp"),
    (lambda: NVFP4Format(-1), "block_size=-1 outside"),
    (lambda: ScaledIntFormat(17), r"bits=17 outside the allowed range \[2, 16\]"),
    (lambda: ScaledIntFormat(8, granularity="group"), "needs group_size"),
    (lambda: ScaledIntFormat(8, granularity="row"), "granularity='row' is not one of"),
    (lambda: ScaledIntFormat(8, scale="fp16"), "scale='fp16' is not one of"),
    (lambda: block_format("mxfp9"), "not a block-scaled format"),
    (lambda: block_format("int8_g0"), r"group_size=0 outside the allowed range"),
    (lambda: block_encode(np.zeros((2, 3)), "mxfp4", axis=2), r"axis=2 outside the allowed range \[-2, 1\]"),
    (lambda: block_encode(np.zeros(3), "mxfp4", axis=-2), r"axis=-2 outside the allowed range \[-1, 0\]"),
    (lambda: block_encode([1.0, np.nan], "int8_tensor"), "NaN or \\+-inf"),
    (lambda: block_encode([1e300, -1e300], "int8_tensor"), "exceeds the fp32 range"),
    (lambda: block_encode([1e300], "nvfp4"), "exceeds the fp32 range"),
    (lambda: block_encode([1e300], "mxfp4", scale_overflow="error"), "above 2\\^127"),
    (lambda: block_encode([1.0], "mxfp4", scale_overflow="wrap"), "scale_overflow='wrap' is not one of"),
    (lambda: block_encode([True], "mxfp4"), "dtype bool"),
    (lambda: block_decode(np.zeros(3, np.uint8), np.zeros(40, np.uint8), "mxfp4"), "need \\(2,\\)"),
    (lambda: block_decode(np.zeros(1, np.uint8), np.array([16]), "mxfp4"), r"outside \[0, 15\]"),
    (lambda: block_matmul(np.ones((2, 3)), np.ones((4, 2)), "mxfp4", "mxfp4"),
     r"^block_matmul: a has K=3 \(shape \(2, 3\)\) but b has K=4 \(shape \(4, 2\)\)$"),
    (lambda: block_matmul(np.ones((2, 3)), np.ones((3, 2)), "mxfp4", "int8_tensor"), "different families"),
    (lambda: block_matmul(np.ones((2, 3)), np.ones((3, 2)), "mxfp4", "mxfp4", "fp64"),
     r"man_bits=52; allowed"),
    (lambda: block_matmul(np.ones((2, 40)), np.ones((40, 2)), "mxfp4", "bfp<e2m1,16>"),
     "block sizes along K"),
    (lambda: block_matmul(np.ones((2, 3)), np.ones((3, 2)), "int8_tensor_fixmul", "int8_tensor"),
     "fixmul"),
    (lambda: block_matmul(np.ones((2, 3)), np.ones((3, 2)), "nvfp4", "nvfp4", "fx<16,16>"),
     "float accumulator"),
    (lambda: block_matmul(np.ones((2, 3)), np.ones((3, 2)), "mxfp4", "mxfp4", "fx<16,16>",
                          acc_overflow="error"), "not one of \\(saturate, wrap\\)"),
    (lambda: block_matmul(np.ones((2, 3)), np.ones((3, 2)), "mxfp4", "mxfp4",
                          acc_rounding="stochastic"), "stochastic"),
    (lambda: requantize(np.ones((2, 2), np.int32), 1 << 31, 0),
     r"m0 holds values outside the allowed range \[0, 2147483647\]"),
    (lambda: requantize(np.ones((2, 2), np.int32), 1 << 30, 40),
     r"shift holds values outside the allowed range \[-31, 31\]"),
])
def test_bad_input_is_named(call: object, match: str) -> None:
    with pytest.raises((ValueError, TypeError, OverflowError), match=match):
        call()  # type: ignore[operator]


# --- exhaustive element codes and ml_dtypes -----------------------------------------------------


def _canonical(el: emu.Format) -> tuple[np.ndarray, np.ndarray]:
    codes = np.arange(1 << el.bits)
    vals = emu.decode(codes, el)
    keep = np.isfinite(vals)
    if isinstance(el, emu.FixedFormat):
        keep &= codes != (1 << (el.bits - 1))
    return codes[keep], vals[keep]


@pytest.mark.parametrize("name", list(MX_FORMATS))
def test_every_element_code_round_trips(name: str) -> None:
    f = block_format(name)
    codes, vals = _canonical(f.element)
    g = MXFormat(f.element, len(vals))  # one block holding every value: amax = max, X = 0
    s, c = g.encode(vals)
    assert s.item() == 127
    assert np.array_equal(c, codes)
    assert same_bits(g.decode(s, c), vals)
    # and scaled by any power of two inside the E8M0 range
    for X in (-120, -7, 0, 5, 110):
        s, c = g.encode(np.ldexp(vals, X))
        assert s.item() == 127 + X
        assert np.array_equal(c, codes)


@pytest.mark.parametrize("name", list(ML))
def test_element_rounding_matches_ml_dtypes_exhaustively(name: str) -> None:
    f = block_format(name)
    el = f.element
    _, vals = _canonical(el)
    # float32 probes: ml_dtypes converts float64 through float32 (a double rounding next to midpoints)
    pos = np.unique(vals[vals >= 0]).astype(np.float32)
    mids = (pos[1:] + pos[:-1]) / 2
    z = np.float32(0)
    probes = np.concatenate([mids, np.nextafter(mids, z), np.nextafter(mids, np.float32(np.inf)), pos,
                             np.nextafter(pos, z)[1:], np.nextafter(pos, np.float32(np.inf))[:-1]])
    probes = np.concatenate([probes, -probes, np.array([0.0, -0.0, el.max, -el.max], np.float32)])
    # pin the block scale to 2^0 with the max in every block; ml_dtypes rounds the same values directly
    B = 2
    x = np.stack([probes.astype(np.float64), np.full(probes.shape, el.max)], axis=1).reshape(-1)
    s, c = MXFormat(el, B).encode(x)
    assert np.all(s == 127)
    got = c.reshape(-1, 2)[:, 0]
    want = probes.astype(ML[name]).view(np.uint8)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("name", list(ML))
def test_random_elements_match_ml_dtypes(name: str) -> None:
    rng = np.random.default_rng(7)
    el = block_format(name).element
    v = (rng.uniform(-el.max, el.max, 20000) * np.exp2(-rng.integers(0, 12, 20000))).astype(np.float32)
    x = np.stack([v, np.full(v.shape, el.max)], axis=1).reshape(-1)
    s, c = MXFormat(el, 2).encode(x)
    assert np.all(s == 127)
    assert np.array_equal(c.reshape(-1, 2)[:, 0], v.astype(ML[name]).view(np.uint8))
    # float64 inputs against the exact single rounding of emu.quantize (ml_dtypes rounds twice)
    w = rng.uniform(-el.max, el.max, 20000)
    s, c = MXFormat(el, 2).encode(np.stack([w, np.full(w.shape, el.max)], axis=1).reshape(-1))
    assert same_bits(emu.decode(c.reshape(-1, 2)[:, 0], el), emu.quantize(w, el, overflow="saturate"))


def test_e8m0_scale_matches_ml_dtypes() -> None:
    codes = np.arange(256, dtype=np.uint8)
    want = codes.view(ml_dtypes.float8_e8m0fnu).astype(np.float64)
    got = block_decode(codes, np.full(256, 2, np.uint8), MXFormat(emu.format("e2m1"), 1))  # element 2 = 1.0
    assert same_bits(got, want)


def test_mxint8_elements() -> None:
    f = block_format("mxint8")
    s, c = f.encode([1.0, 0.5, -1.0, 1.99, -1.99, 2 ** -7, 3 * 2 ** -7])
    assert s.item() == 127  # amax 1.99: floor(log2) = 0 = emax
    assert c.tolist() == [64, 32, 192, 127, 129, 0, 2]  # 1.99*64 = 127.4 -> 127; ties 0.5 -> 0, 1.5 -> 2
    assert block_decode(np.uint8(127), np.uint8(128), f).tolist() == -2.0  # decodes, never produced


# --- spec behaviour --------------------------------------------------------------------------------


def test_ocp_rule_saturates_and_ceil_rule_does_not() -> None:
    x = np.array([500.0, 1.0, -3.0, 0.001])
    s, c = block_encode(x, "mxfp8_e4m3")
    assert s.item() == 127 + 0  # floor(log2 500) - 8 = 0
    assert block_decode(s, c, "mxfp8_e4m3").tolist()[0] == 448.0
    s2, c2, st2 = block_encode(x, "bfp<e4m3,32,ceil>", return_stats=True)
    assert s2.item() == 128
    assert st2.saturated == 0
    v = block_decode(s2, c2, "bfp<e4m3,32,ceil>")
    assert v[0] == 512.0
    s3, _, st3 = block_encode(x, "mxfp8_e4m3,rceil", return_stats=True)  # 500 / 448 -> 2^1
    assert (s3.item(), st3.saturated) == (128, 0)


def test_nan_inf_zero_and_clamped_blocks() -> None:
    x = np.array([np.nan, 1.0, 0.0, -0.0, np.inf, 2.0, 1e300, 1e-300])
    s, c, stats = block_encode(x, "bfp<e4m3,2>", return_stats=True)
    assert s.tolist() == [255, 0, 255, 127 + 127]
    assert stats.nan_blocks == 2
    assert stats.clamped_scales == 1
    assert stats.saturated == 1
    v = block_decode(s, c, "bfp<e4m3,2>")
    assert np.isnan(v[[0, 1, 4, 5]]).all()
    assert same_bits(v[2:4], [0.0, -0.0])
    assert v[6] == 448 * 2.0 ** 127
    assert v[7] == 0.0
    assert c.tolist()[:2] == [0, 0]
    # tiny blocks clamp at 2^-127 and lose the bits below the element grid
    t = block_quantize([2.0 ** -140, 2.0 ** -136], "bfp<e4m3,2>")
    assert t.tolist() == [0.0, 2.0 ** -136]
    sn, cn = block_encode([1.0, np.nan, 2.0], "nvfp4<2>")
    assert sn.block.tolist() == [0x7F, sn.block[1]]
    assert np.isnan(block_decode(sn, cn, "nvfp4<2>")[:2]).all()


def test_partial_blocks_axis_and_zero_d() -> None:
    rng = np.random.default_rng(3)
    x = wide_data(rng, (5, 7, 3))
    for ax in range(3):
        s, c = block_encode(x, "bfp<e2m1,3>", axis=ax)
        nb = -(-x.shape[ax] // 3)
        assert c.shape == x.shape
        assert s.shape == tuple(nb if d == ax else n for d, n in enumerate(x.shape))
        # each block equals the same block quantized alone
        xm = np.moveaxis(x, ax, -1)
        q = np.moveaxis(block_decode(s, c, "bfp<e2m1,3>", axis=ax), ax, -1)
        assert same_bits(q[..., 3:6], block_quantize(xm[..., 3:6], "bfp<e2m1,3>"))
        assert same_bits(q[..., 6:], block_quantize(xm[..., 6:], "bfp<e2m1,3>"))
    s0, c0 = block_encode(3.0, "mxfp4")
    assert s0.shape == ()
    assert c0.shape == ()
    assert block_decode(s0, c0, "mxfp4") == 3.0
    se, ce = block_encode(np.zeros((2, 0)), "mxfp4")
    assert se.shape == (2, 0)
    assert ce.shape == (2, 0)


def test_doc_examples() -> None:
    s, c = block_encode([1.0, -0.3, 5.0, 7.5], "mxfp4")
    assert int(s[0]) == 127
    assert c.tolist() == [0b0010, 0b1001, 0b0110, 0b0111]
    g = np.float32(6.0) / np.float32(2688)
    sc, c = block_encode([0.0, 1.0, -3.0, 6.0], "nvfp4")
    assert sc.tensor.view(np.float32) == g
    assert sc.block.tolist() == [0x7E]
    assert c.tolist() == [0, 2, 13, 7]
    want = [0.0, 448 * float(g), -3 * 448 * float(g), 6 * 448 * float(g)]
    assert block_quantize([0.0, 1.0, -3.0, 6.0], "nvfp4").tolist() == want


def test_nvfp4_recipe_by_hand() -> None:
    x = np.array([0.1, -2.0, 7.0, 100.0, 3.3, 0.0, -0.0, 5e-3] * 4)
    sc, c = block_encode(x, "nvfp4")
    g = np.float32(np.float32(100.0) / np.float32(2688.0))
    assert sc.tensor.view(np.float32) == g
    for b in range(2):
        blk = x[16 * b:16 * (b + 1)]
        s32 = np.float32(np.float32(np.float32(np.abs(blk).max()) / np.float32(6)) / g)
        s = emu.quantize(float(s32), "e4m3", overflow="saturate")
        assert emu.decode(sc.block[b], "e4m3") == s
        want = emu.quantize(blk / (float(s) * float(g)), "e2m1")
        assert same_bits(block_decode(sc, c, "nvfp4")[16 * b:16 * (b + 1)], want * float(s) * float(g))


def test_scaled_int_details() -> None:
    x = np.array([[0.5, -1.0, 0.25], [4.0, 1.0, -2.0]])
    sc, c = block_encode(x, "int8_channel", axis=0)
    assert sc.scale.shape == (2,)
    assert sc.scale.view(np.float32).tolist() == [np.float32(1.0) / 127,
                                                                              np.float32(4.0) / 127]
    assert block_decode(sc, c, "int8_channel", axis=0)[1, 0] == pytest.approx(4.0, rel=1e-7)
    sc, c = block_encode(x, "int8_tensor_fixmul")
    m0, sh = int(sc.scale), int(sc.shift)
    assert 1 << 30 <= m0 < 1 << 31
    assert m0 * 2.0 ** (sh - 31) == np.float32(4.0) / np.float32(127)
    sc, c = block_encode(x, "int8_tensor_pow2")
    assert int(sc.scale) == 127 - 4  # 4/127 rounds up to 2^-4... 1/32 < 4/127 < 1/16
    sa, ca = block_encode([-1.0, 3.0], "int8_asym_tensor")
    assert int(sa.zero_point) == -128 + 64
    assert block_decode(sa, ca, "int8_asym_tensor").tolist() == pytest.approx(
        [-1.0, 3.0], abs=4 / 255)
    z = block_encode(np.zeros(4), "int8_tensor")[0]
    assert z.scale.view(np.float32) == 1.0


# --- fast against the exact reference -------------------------------------------------------------


@pytest.mark.parametrize("name", ENCODE_FORMATS)
def test_encode_decode_match_reference(name: str) -> None:
    rng = np.random.default_rng(_seed(name))
    for shape in ((3, 37), (2, 3, 5)):
        x = wide_data(rng, shape)
        x.flat[1] = -0.0
        for ax in range(len(shape)):
            s, c = block_encode(x, name, ax)
            rs, rc = ref.ref_block_encode(x, block_format(name), ax)
            assert np.array_equal(c, rc), (name, ax)
            assert same_scales(s, rs), (name, ax)
            assert same_bits(block_decode(s, c, name, ax), ref.ref_block_decode(s, c, block_format(name), ax))


@pytest.mark.parametrize("scale_exp", [-120, -60, -3, 0, 7, 60, 120])
def test_nvfp4_elements_at_every_midpoint(scale_exp: int) -> None:
    """The NVFP4 element rounding compares |x| with the E2M1 midpoints times the block's divisor d = s g:
    elements at each midpoint (ties: 0.25, 1.25, 2.5, 5 go down, 0.75, 1.75, 3.5 up) and one float64 step
    either side encode as the exact reference does, for tensors across the fp32 range (random data
    rarely meets a tie); a block's largest quotient stays below 6.4 (its E4M3 scale rounds by less than
    1/16), so nothing saturates."""
    rng = np.random.default_rng(scale_exp + 200)
    points = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0])
    for amax_factor in (6.0, 5.5, 6.4):
        amax = math.ldexp(rng.uniform(1, 2), scale_exp) * amax_factor / 6
        g = np.float32(np.float32(amax) / np.float32(2688.0))
        s32 = np.float32(np.float32(np.float32(amax) / np.float32(6.0)) / g)
        d = float(emu.quantize(float(s32), "e4m3", overflow="saturate")) * float(g)
        for t in (points * d, np.nextafter(points * d, np.inf), np.nextafter(points * d, 0.0)):
            x = np.concatenate([[amax], t, -t, rng.permutation(np.concatenate([t, -t]))[:15], [-amax]])
            sc, c, st_ = block_encode(x, "nvfp4", return_stats=True)
            rs, rc = ref.ref_block_encode(x, block_format("nvfp4"))
            assert np.array_equal(c, rc), (scale_exp, amax_factor)
            assert same_scales(sc, rs)
            assert st_.saturated == 0


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e2m3", "mxfp6_e3m2", "mxfp4",
                                  "bfp<fp<3,2,ftz>,32>", "bfp<e2m1,7,even>"])
def test_mx_float_elements_at_every_code_midpoint_and_edge(name: str) -> None:
    """The MX float elements' loop of selects against the exact reference: every element value, every
    midpoint between neighbours and a float64 step either side, values up to the top binade's end (the
    saturation edge), below half the smallest step, -0 and subnormal float64 inputs beside normal ones,
    under shared exponents from -127 to 127 (each block's first element fixes it)."""
    f = block_format(name)
    el = f.element
    vals = np.unique(np.abs(emu.decode(np.arange(1 << el.bits), el)))
    vals = vals[np.isfinite(vals)]
    mids = (vals[:-1] + vals[1:]) / 2
    top = 2.0 ** (math.frexp(el.max)[1])  # the end of the top binade: the same shared exponent below it
    edge = np.array([el.max, (el.max + top) / 2, np.nextafter(top, 0.0), vals[1] / 2, vals[1] / 4])
    pts = np.concatenate([vals, mids, edge])
    pts = np.concatenate([pts, np.nextafter(pts, np.inf), np.nextafter(pts, 0.0)])
    pts = np.concatenate([pts, -pts, [-0.0]])
    B = f.block_size
    rng = np.random.default_rng(_seed(name))
    for X in (-127, -120, -1, 0, 3, 120, 127):
        blocks = []
        for i in range(0, len(pts), B - 1):
            chunk = rng.permutation(pts[i:i + B - 1] * 2.0 ** X)
            blocks.append(np.concatenate([[el.max * 2.0 ** X], chunk, np.zeros(B - 1 - len(chunk))]))
        x = np.concatenate(blocks)
        if X == -120:
            x[1::7] = 5e-324 * rng.integers(1, 1000, len(x[1::7]))  # subnormal float64 inputs in many blocks
        sc, c, st_ = block_encode(x, f, return_stats=True)
        rs, rc = ref.ref_block_encode(x, f)
        assert np.array_equal(c, rc), (name, X)
        assert same_scales(sc, rs), (name, X)
        # saturated: the quotient |x| / 2^X rounds (nearest even, the element's M fraction bits, no top)
        # above the largest element
        shared = np.repeat(np.asarray(rs, np.int64).reshape(-1) - 127, B)[:len(x)]
        rounded = emu.quantize(np.abs(x) / 2.0 ** shared, f"fp<8,{el.man_bits}>")
        assert st_.saturated == int(np.count_nonzero(rounded > el.max)), (name, X)
        assert st_.saturated > 0 or f.rule != "ocp"  # the OCP scale leaves the top binade's end above max


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxint8", "nvfp4"])
def test_block_kernels_on_threads_and_on_one_give_the_same_codes(name: str) -> None:
    """From `BLOCK_THREAD_ELEMENTS` elements the encoder and the decoder share blocks among threads; below
    it one thread runs them: a tensor above the threshold gives the codes, scales, counts and values of
    its two halves converted on one thread each (NVFP4's halves given the whole tensor's range)."""
    from emu.block.kernels import BLOCK_THREAD_ELEMENTS

    rng = np.random.default_rng(_seed(name))
    x = wide_data(rng, (BLOCK_THREAD_ELEMENTS // 256 + 64, 256), 2.0)
    x[3, 5] = np.nan  # a NaN block in the first half
    assert x.size >= BLOCK_THREAD_ELEMENTS > x.size // 2
    rng_ = (float(np.nanmin(x)), float(np.nanmax(x))) if name == "nvfp4" else None
    kw = {"tensor_range": rng_} if rng_ else {}
    s, c, st_ = block_encode(x, name, return_stats=True, **kw)
    half = x.shape[0] // 2
    parts = [block_encode(p, name, return_stats=True, **kw) for p in (x[:half], x[half:])]
    assert np.array_equal(c, np.concatenate([p[1] for p in parts]))
    blocks = (lambda sc: sc.block) if name == "nvfp4" else (lambda sc: sc)
    assert np.array_equal(blocks(s), np.concatenate([blocks(p[0]) for p in parts]))
    assert st_.saturated == sum(p[2].saturated for p in parts)
    assert st_.nan_blocks == 1
    v = block_decode(s, c, name)
    assert same_bits(v, np.concatenate([block_decode(p[0], p[1], name) for p in parts]))


@pytest.mark.parametrize("name", ["mxfp8_e4m3", "mxint8", "nvfp4"])
def test_stochastic_block_kernels_on_threads_and_on_one_draw_alike(name: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The stochastic encoders too: a tensor above `BLOCK_THREAD_ELEMENTS` gives the same codes, scales and
    counts on numba's threads as on the calling thread (each element's random bits come from its index)."""
    from emu.block import sr_kernels

    rng = np.random.default_rng(_seed(name) + 1)
    x = wide_data(rng, (sr_kernels.BLOCK_THREAD_ELEMENTS // 256 + 8, 256), 2.0)
    threads = block_encode(x, name, rounding="stochastic", seed=5, return_stats=True)
    monkeypatch.setattr(sr_kernels, "BLOCK_THREAD_ELEMENTS", x.size + 1)
    one = block_encode(x, name, rounding="stochastic", seed=5, return_stats=True)
    assert np.array_equal(threads[1], one[1])
    assert same_scales(threads[0], one[0])
    assert threads[2] == one[2]


def test_e2m1_magnitude_is_the_e2m1_conversion() -> None:
    """The NVFP4 element's division-free rounding against emu's own E2M1 conversion (nearest even,
    saturating: overflow from 7, the tie between 6 and 8) at every midpoint, a step either side, and
    beyond the range."""
    from emu.block.kernels import e2m1_magnitude

    q = np.array([0.0, 5e-324, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, 6.5, 7.0, 7.5, 8.0, 1e300])
    for v in np.concatenate([q, np.nextafter(q, np.inf), np.nextafter(q, 0.0)]):
        want, st_ = emu.quantize(v, "e2m1", overflow="saturate", return_stats=True)
        code, sat = e2m1_magnitude(float(v), 1.0)
        assert (int(emu.encode(float(want), "e2m1")), bool(sat)) == (int(code), st_.overflow == 1), v
    assert e2m1_magnitude(3.0, 0.0) == (0, False)


@pytest.mark.parametrize("name", ENCODE_FORMATS)
def test_block_quantize_is_decode_of_encode(name: str) -> None:
    """block_quantize decodes its encoder's codes without block_decode's checks of a caller's codes: the
    same bits as block_decode(block_encode(x)), for every axis, a 0-d x, nearest even and stochastic."""
    rng = np.random.default_rng(_seed(name) + 2)
    f = block_format(name)
    stochastic = not isinstance(f, ScaledIntFormat)
    per_channel = isinstance(f, ScaledIntFormat) and f.granularity == "channel"
    for shape in ((3, 37), (2, 3, 5)) if per_channel else ((), (3, 37), (2, 3, 5)):
        x = wide_data(rng, shape) if shape else np.float64(rng.normal())
        for ax in range(max(len(shape), 1)):
            for kw in ({}, {"rounding": "stochastic", "seed": 7}) if stochastic else ({},):
                s, c = block_encode(x, name, ax, **kw)
                assert same_bits(block_quantize(x, name, ax, **kw), block_decode(s, c, name, ax)), (shape, ax)


@settings(max_examples=60)
@given(st.sampled_from(ENCODE_FORMATS), st.integers(0, 2 ** 32 - 1), st.integers(1, 40), st.floats(0, 12))
def test_encode_matches_reference_hypothesis(name: str, seed: int, n: int, spread: float) -> None:
    rng = np.random.default_rng(seed)
    x = wide_data(rng, (2, n), spread)
    s, c = block_encode(x, name)
    rs, rc = ref.ref_block_encode(x, block_format(name))
    assert np.array_equal(c, rc)
    assert same_scales(s, rs)
    q = block_quantize(x, name)
    assert same_bits(block_quantize(q, name), q) or not isinstance(block_format(name), MXFormat)


MAC_CASES = [
    ("mxfp8_e4m3", "mxfp8_e4m3"), ("mxfp8_e5m2", "mxfp8_e5m2"), ("mxfp8_e4m3", "mxfp8_e5m2"),
    ("mxfp4", "mxfp4"),
    ("mxint8", "mxint8"), ("mxfp6_e2m3", "mxfp6_e3m2"), ("nvfp4", "nvfp4"), ("int8_tensor", "int8_channel"),
    ("int8_g16", "int4_asym_g16"), ("int8_channel", "int8_g16"),
    ("int8_asym_tensor_bf16", "int8_tensor_pow2"),
    ("bfp<int8,8,ceil>", "bfp<e4m3,8>"), ("bfp<fp<4,3,ftz>,8>", "bfp<fp<3,2,ftz>,8>"),
]
ACC_CASES = [
    ("fp32", "nearest_even", None), ("bf16", "nearest_even", None), ("fp16", "toward_zero", None),
    ("fp16", "floor", "saturate"), ("e4m3", "nearest_away", None), ("fp<5,2>", "ceil", "inf"),
    ("fp<4,3,fnuz>", "nearest_down", None), ("fp<5,3>", "nearest_up", "nan"), (None, "nearest_even", None),
    ("fx<8,8>", "floor", "wrap"), ("fx<6,10>", "floor", "saturate"), ("fp<5,4,ftz>", "nearest_even", None),
]


@pytest.mark.parametrize(("fa", "fb"), MAC_CASES)
def test_block_matmul_matches_reference(fa: str, fb: str) -> None:
    rng = np.random.default_rng(_seed(fa + fb))
    for acc, mode, ovf in ACC_CASES:
        if fa == "nvfp4" and acc is not None and acc.startswith("fx"):
            continue
        for trial in range(3):
            K = int(rng.integers(1, 70))
            a = wide_data(rng, (3, K), 2) * math.exp(rng.normal() * 6)
            b = wide_data(rng, (K, 2), 2)
            if trial == 2:
                a, b = np.round(a), np.round(b * 4) / 4  # exact grids: ties and cancellation
                b[:, 1] = -b[:, 0]
            y = block_matmul(a, b, fa, fb, acc, acc_rounding=mode, acc_overflow=ovf)
            r = ref.ref_block_matmul(a, b, block_format(fa), block_format(fb), acc, mode, ovf)
            assert same_bits(y, r), (fa, fb, acc, mode, ovf, K)


@settings(max_examples=40)
@given(st.sampled_from(MAC_CASES), st.sampled_from(ACC_CASES), st.integers(0, 2 ** 32 - 1),
       st.integers(1, 50))
def test_block_matmul_hypothesis(fmts: tuple[str, str], accc: tuple, seed: int, K: int) -> None:
    fa, fb = fmts
    acc, mode, ovf = accc
    if fa == "nvfp4" and acc is not None and acc.startswith("fx"):
        return
    rng = np.random.default_rng(seed)
    a = wide_data(rng, (2, K), 3)
    b = wide_data(rng, (K, 2), 3)
    y = block_matmul(a, b, fa, fb, acc, acc_rounding=mode, acc_overflow=ovf)
    assert same_bits(y, ref.ref_block_matmul(a, b, block_format(fa), block_format(fb), acc, mode, ovf))


def test_block_matmul_special_cases() -> None:
    a = np.array([[1.0, np.nan, 2.0, 3.0], [1e30, 1e30, 1.0, 1.0]])
    b = np.ones((4, 1))
    y, st_ = block_matmul(a, b, "bfp<e4m3,2>", "bfp<e4m3,2>", "fp16", return_stats=True)
    assert np.isnan(y[0, 0])
    assert y[1, 0] == np.inf
    assert st_.acc_overflow == 1
    assert st_.nan_blocks == 1
    y = block_matmul(a[1:], b, "bfp<e4m3,2>", "bfp<e4m3,2>", "fp16", acc_overflow="saturate")
    assert y[0, 0] == 65504.0
    # exact cancellation: +0 (nearest), -0 (floor)
    a2, b2 = np.array([[1.0, 1.0]]), np.array([[1.0], [-1.0]])
    assert same_bits(block_matmul(a2, b2, "bfp<e4m3,1>", "bfp<e4m3,1>"), [[0.0]])
    assert same_bits(block_matmul(a2, b2, "bfp<e4m3,1>", "bfp<e4m3,1>", acc_rounding="floor"), [[-0.0]])
    # the accumulator rounds after every block: 2^24 + 1 + 1 in fp32 stays 2^24, exactly 2^24 + 2
    # with acc=None
    a3, b3 = np.array([[2.0 ** 24, 1.0, 1.0]]), np.ones((3, 1))
    assert block_matmul(a3, b3, "bfp<e4m3,1>", "bfp<e4m3,1>")[0, 0] == 2.0 ** 24
    assert block_matmul(a3, b3, "bfp<e4m3,1>", "bfp<e4m3,1>", None)[0, 0] == 2.0 ** 24 + 2
    assert emu.dot([1.0, 2.0], [3.0, 4.0], emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32")) == 11.0
    assert block_matmul(np.ones((2, 0)), np.ones((0, 3)), "mxfp4", "mxfp4").shape == (2, 3)


def test_block_matmul_equals_quantize_then_exact_product() -> None:
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(8, 96)), rng.normal(size=(96, 5))
    for name in ("mxfp8_e4m3", "mxfp4", "nvfp4", "int8_g32"):
        qa, qb = block_quantize(a, name, axis=1), block_quantize(b, name, axis=0)
        y = block_matmul(a, b, name, name, None)
        assert np.allclose(y, qa @ qb, rtol=1e-12, atol=1e-12)


BLOCK_MAC_PRESETS = ("mxfp8", "mxfp4", "nvfp4", "int8_requant")


@pytest.mark.parametrize("name", BLOCK_MAC_PRESETS)
def test_every_preset_builds_and_runs(name: str) -> None:
    rng = np.random.default_rng(_seed(name))
    a, b = rng.normal(size=(4, 64)), rng.normal(size=(64, 3))
    p = emu.MAC_PRESETS[name]
    m = emu.mac_preset(name)
    fa, fb = block_format(p["act"]), block_format(p["weight"])
    assert (m.act, m.weight, m.acc) == (fa, fb, emu.format(p["acc"]))
    y = block_matmul(a, b, p["act"], p["weight"], p["acc"])
    assert same_bits(emu.matmul(a, b, m), y)
    assert same_bits(y, ref.ref_block_matmul(a, b, fa, fb, p["acc"]))
    assert np.allclose(y, a @ b, rtol=0.5, atol=2.0)


def test_int8_requant_preset_runs_the_integer_path() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(4, 64)), rng.normal(size=(64, 3))
    p = emu.MAC_PRESETS["int8_requant"]
    q, v = int_matmul_requant(a, b, out_scale=0.1, fmt_a=p["act"], fmt_b=p["weight"])
    assert q.min() >= -128
    assert q.max() <= 127
    assert np.allclose(v, np.clip(a @ b, -12.8, 12.7), atol=0.35)


# --- requantization -------------------------------------------------------------------------------


def test_quantize_multiplier_and_mbqm_match_reference() -> None:
    rng = np.random.default_rng(9)
    reals = [0.5, 0.1, 1.0, 2.0 ** -20, 0.9999999999, 3.5, 1 - 2.0 ** -40, *np.exp(rng.normal(size=200) * 3)]
    for r in reals:
        assert quantize_multiplier(r) == ref.ref_quantize_multiplier(r)
    m0 = rng.integers(1 << 30, 1 << 31, 300)
    sh = rng.integers(-31, 8, 300)
    x = rng.integers(-(1 << 31), 1 << 31, 300)
    x[:4] = [-(1 << 31), (1 << 31) - 1, 0, -1]
    got = multiply_by_quantized_multiplier(x, m0, sh)
    assert got.tolist() == [ref.ref_mbqm(int(a), int(m), int(s)) for a, m, s in zip(x, m0, sh, strict=True)]
    assert ref.ref_mbqm(-(1 << 31), -(1 << 31), 0) == (1 << 31) - 1


def test_int_requant_matches_reference() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(5, 40)), rng.normal(size=(40, 6)) * np.arange(1, 7)
    q, v, acc = int_matmul_requant(a, b, out_scale=0.05, out_zero_point=3, return_acc=True)
    sa, ca = ref.ref_block_encode(a, block_format("int8_tensor"), -1)
    sb, cb = ref.ref_block_encode(b, block_format("int8_channel"), 1)
    qa = np.where(ca >= 128, ca - 256, ca)
    qb = np.where(cb >= 128, cb - 256, cb)
    assert np.array_equal(acc, qa @ qb)
    s_a = float(np.asarray(sa.scale, np.uint32).view(np.float32))
    s_b = np.asarray(sb.scale, np.uint32).view(np.float32).astype(np.float64)
    for j in range(6):
        m0, sh = ref.ref_quantize_multiplier(s_a * float(s_b[j]) / 0.05)
        for i in range(5):
            want = max(-128, min(127, 3 + ref.ref_mbqm(int(acc[i, j]), m0, sh)))
            assert q[i, j] == want
    assert np.array_equal(v, (q - 3) * 0.05)


def test_exports() -> None:
    for name in ("block_format", "block_encode", "block_decode", "block_quantize", "block_matmul",
                 "MXFormat", "NVFP4Format", "ScaledIntFormat", "int_matmul_requant",
                 "requantize"):
        assert hasattr(emu, name), name


def test_block_mac_value() -> None:
    m = emu.MAC(act="mxfp4", weight="mxfp4", acc="fp32")
    assert str(m) == "mxfp4 x mxfp4 -> fp32"
    assert m == emu.mac_preset("mxfp4")
    assert m.block_scaled
    rng = np.random.default_rng(3)
    a, w = rng.normal(size=(4, 64)), rng.normal(size=(64, 3))
    assert np.array_equal(emu.matmul(a, w, m), emu.block_matmul(a, w, "mxfp4", "mxfp4", "fp32"))
    with pytest.raises(ValueError, match="different families"):
        emu.MAC(act="mxfp4", weight="nvfp4", acc="fp32")
    with pytest.raises(ValueError, match=r"mac_preset: name='int4' is not a preset"):
        emu.mac_preset("int4")


@pytest.mark.parametrize("scale", [1.0, 2.0 ** -120, 2.0 ** 100, 2.0 ** -140])
def test_fp32_accumulation_over_many_blocks_matches_reference(scale: float) -> None:
    """Many blocks into an fp32 accumulator (the float32-cast fast path and its fallbacks: inexact
    two-sums, subnormal and huge sums) against the exact reference."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=(4, 256)) * np.exp(rng.normal(size=(4, 256)) * 3) * scale
    b = rng.normal(size=(256, 3)) * np.exp(rng.normal(size=(256, 3)) * 3)
    for fa, fb in (("mxfp8_e4m3", "mxfp8_e4m3"), ("mxfp4", "mxfp4"), ("mxint8", "mxint8")):
        y = block_matmul(a, b, fa, fb, "fp32")
        want = ref.ref_block_matmul(a, b, block_format(fa), block_format(fb), "fp32", "nearest_even", None)
        assert same_bits(y, want), (fa, scale)


def test_flush_to_zero_elements_and_integer_inputs() -> None:
    """An element format without subnormals takes a quotient below its smallest normal to a zero of its
    sign before any rounding (NUMERICS.md section 5), as emu.quantize does, under both roundings and in a
    product; integer inputs that float64 holds exactly (2^60, anything below 2^53) are taken as they are,
    and one it cannot hold is refused, not rounded twice."""
    assert same_bits(block_quantize([14.0, -0.24], "bfp<fp<3,2,ftz>,32>"), [14.0, -0.0])
    assert same_bits(emu.quantize([14.0, -0.24], "fp<3,2,ftz>"), [14.0, -0.0])
    assert same_bits(block_quantize([240.0, 0.0155], "bfp<fp<4,3,ftz>,32>"), [240.0, 0.0])
    assert block_encode([14.0, 0.1], "bfp<fp<3,2,ftz>,32>")[1].tolist() == [27, 0]  # canonical zero code
    for seed in range(20):  # no random draw lifts it to the smallest normal
        q = block_quantize([14.0, -0.24], "bfp<fp<3,2,ftz>,32>", rounding="stochastic", seed=seed)
        assert same_bits(q[1], -0.0)
    mac = emu.MAC(act="bfp<fp<3,2,ftz>,32>", weight="bfp<fp<3,2,ftz>,32>", acc="exact")
    assert same_bits(emu.matmul(np.array([[14.0, -0.24]]), np.array([[0.0], [1.0]]), mac), [[0.0]])
    exact = np.array([2**60, -(2**53) - 2, 7], np.int64)
    as_float = exact.astype(np.float64)
    assert same_bits(block_quantize(exact, "mxfp8_e4m3"), block_quantize(as_float, "mxfp8_e4m3"))
    e4 = "mxfp8_e4m3"
    for call in (lambda: block_encode(np.array([[1, 2**60 + 2**56 + 1]]), e4),
                 lambda: block_quantize(np.array([2**63 - 1], np.int64), "mxint8"),
                 lambda: block_matmul(np.array([[2**53 + 1]]), np.ones((1, 1)), e4, e4)):
        with pytest.raises(ValueError, match=r"[xa] holds integers that float64 cannot hold exactly"
                                             r" \(first at index \(\d,( \d)?\): \d+\)"):
            call()


@pytest.mark.parametrize("mac", [emu.mac_preset("nvfp4"),
                                 emu.MAC(act="int8_tensor", weight="int8_tensor", acc="fp32")], ids=str)
def test_a_tensor_scale_spans_the_operand_as_passed(mac: emu.MAC) -> None:
    """docs/blockscaled.md: a tensor-wide scale is that of the operand as passed to emu.matmul, whether its
    leading dimensions are rows of one product (a 2-D w) or batch parts (a batched w): stacking copies of
    w changes nothing. Each part is then the 2-D product of its a[b] encoded with the whole a's range."""
    a = np.stack([np.full((1, 16), 1.0), np.full((1, 16), 1000.0)])
    a[0, 0, 1] = 0.3
    w = np.ones((16, 1))
    whole = emu.matmul(a, w, mac)
    np.testing.assert_array_equal(whole.reshape(-1), emu.matmul(a.reshape(2, 16), w, mac).reshape(-1))
    parts = emu.matmul(a, np.stack([w, w]), mac)
    np.testing.assert_array_equal(parts, whole)
    assert parts[0, 0, 0] != emu.matmul(a[0], w, mac)[0, 0]  # a[0] alone keeps its small values
    # the same on the weights' side: a batched w takes one scale over all its parts
    wb = np.stack([np.full((16, 1), 1.0), np.full((16, 1), 1000.0)])
    wb[0, 1, 0] = 0.3
    x = np.ones((1, 16))
    both = emu.matmul(x, wb, mac)
    np.testing.assert_array_equal(both.reshape(-1), emu.matmul(x, wb.transpose(1, 0, 2).reshape(16, 2),
                                                               mac).reshape(-1))


def test_block_encode_takes_a_tensor_range_for_a_part_of_a_larger_tensor() -> None:
    """NVFP4's fp32 scale and a per-tensor integer scale come from tensor_range when given; it must hold
    x's finite values and applies only to those formats."""
    x = np.array([0.5, -0.25, 1.0, 0.125] * 4)
    big = np.concatenate([x, [-6.0 * 448]])  # a tensor that holds x and a larger value
    s_part, c_part = block_encode(x, "nvfp4", tensor_range=(float(big.min()), float(big.max())))
    s_big, c_big = block_encode(big, "nvfp4")
    assert int(s_part.tensor) == int(s_big.tensor)
    np.testing.assert_array_equal(c_part, c_big[:16])
    assert int(block_encode(x, "nvfp4")[0].tensor) != int(s_big.tensor)
    si, ci = block_encode(x, "int8_tensor", tensor_range=(-2.0, 2.0))
    np.testing.assert_array_equal(ci, block_encode(np.concatenate([x, [-2.0, 2.0]]), "int8_tensor")[1][:16])
    with pytest.raises(ValueError, match=r"tensor_range=\(0.0, 0.5\) must hold x's finite values, which span"
                                         r" \[-0.25, 1.0\]"):
        block_encode(x, "nvfp4", tensor_range=(0.0, 0.5))
    with pytest.raises(ValueError, match=r"tensor_range=\(1.0, -1.0\) must be \(lo, hi\), finite, lo <= hi"):
        block_encode(x, "nvfp4", tensor_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="tensor_range applies to a format with one scale per tensor"):
        block_encode(x, "mxfp8_e4m3", tensor_range=(-1.0, 1.0))
