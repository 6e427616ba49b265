"""The datapath's contract in the corners: NaN, stochastic roundings and their seeds, overflow of the
start value, per-output ternary weights, the addend C, and what is not a real number.

Each defect test states the case that a previous version answered silently wrong.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import emu
from emu import MAC
from emu._ref.mac import Streams, mac_dot_ref
from emu.convert import seed_key
from emu.datapath.seeds import RoleSeeds

# --- NaN in formats without NaN (NUMERICS.md section 5) -------------------------------------------


@pytest.mark.parametrize(("mac", "where"), [
    (MAC(act="e5m2", weight="e5m2", acc="e5m2", output="fx<8,8>"), "output=fx<8,8>"),
    (MAC(act="e5m2", weight="e5m2", acc="e5m2", output="fx<8,8>", output_overflow="error"), "output=fx<8,8>"),
    (MAC(act="e5m2", weight="e5m2", acc="fp<4,6,none>"), r"acc=fp<4,6,none>"),
    (MAC(act="e5m2", weight="e5m2", acc="e5m2", output="fp<4,3,none>"), r"output=fp<4,3,none>"),
])
def test_a_nan_into_a_format_without_nan_is_an_error(mac: MAC, where: str) -> None:
    # was [[0.]] with every count at 0
    with pytest.raises(ValueError, match=f"NaN .*reached {where}, which has no NaN"):
        emu.matmul([[np.nan, 1.0]], [[1.0], [1.0]], mac)


def test_inf_minus_inf_into_an_output_without_nan_is_an_error() -> None:
    # operands saturate on input; the products 60000 x 4 overflow fp16 to +-inf, and inf - inf is NaN
    a, w = [[60000.0, 60000.0]], [[4.0], [-4.0]]
    assert np.isnan(emu.matmul(a, w, MAC(act="fp16", weight="fp16", acc="fp16")))
    with pytest.raises(ValueError, match=r"reached output=fx<8,8>"):
        emu.matmul(a, w, MAC(act="fp16", weight="fp16", acc="fp16", output="fx<8,8>"))


def test_a_nan_product_into_a_product_format_without_nan_is_an_error() -> None:
    mac = MAC(act="e5m2", weight="e5m2", acc="fp32", product="fp<4,3,none>")
    with pytest.raises(ValueError, match=r"product at k=0 is NaN .* product=fp<4,3,none> has no NaN"):
        emu.matmul([[np.nan, 1.0]], [[1.0], [1.0]], mac)  # was [[nan]]
    with pytest.raises(ValueError, match=r"product at k=1 is NaN"):
        emu.matmul([[1.0, 1.0]], [[1.0], [np.nan]], mac)


def test_a_nan_stays_nan_where_every_format_has_nan() -> None:
    y = emu.matmul([[np.nan, 1.0]], [[1.0], [1.0]], MAC(act="e5m2", weight="e5m2", acc="e5m2"))
    assert np.isnan(y[0, 0])


# --- stochastic product rounding ------------------------------------------------------------------

SR_PRODUCT = MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<8,8>", product="fx<4,4>",
                 product_rounding="stochastic")


def test_a_stochastic_product_rounds_both_ways_with_the_right_mean() -> None:
    # 0.6875 x 0.5 = 0.34375 lies halfway between 0.3125 and 0.375 of fx<4,4>: was 0.3125 every time
    ys = np.array([emu.matmul([[0.6875]], [[0.5]], SR_PRODUCT, seed=s)[0, 0] for s in range(400)])
    assert set(ys.tolist()) == {0.3125, 0.375}
    share_up = np.mean(ys == 0.375)
    assert abs(share_up - 0.5) < 4 * np.sqrt(0.25 / 400)  # four standard deviations


def test_a_stochastic_float_product_is_unbiased_and_not_toward_zero() -> None:
    mac = MAC(act="fp16", weight="fp16", acc="fp32", product="e4m3", product_rounding="stochastic")
    x = 1.0 + 2.0**-5  # x * x = 1 + 2^-4 + 2^-10: between 1.0 and 1.125 of e4m3, 0.508 of the way
    ys = np.array([emu.matmul([[x]], [[x]], mac, seed=s)[0, 0] for s in range(600)])
    assert set(ys.tolist()) == {1.0, 1.125}
    exact = x * x
    assert abs(ys.mean() - exact) < 4 * 0.0625 / np.sqrt(600)
    tz = emu.matmul([[x]], [[x]], MAC(act="fp16", weight="fp16", acc="fp32", product="e4m3",
                                      product_rounding="toward_zero"))
    assert tz[0, 0] == 1.0


@pytest.mark.parametrize("mac", [
    SR_PRODUCT,
    MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<6,6>", product="fx<3,5>", product_rounding="stochastic",
        acc_overflow="wrap", order="lanes(3)"),
    MAC(act="fp16", weight="bf16", acc="fp32", product="e4m3", product_rounding="stochastic"),
    MAC(act="e4m3", weight="e4m3", acc="fp16", product="fp<5,3>", product_rounding="stochastic",
        order="pairwise"),
])
def test_stochastic_products_match_the_reference_stream(mac: MAC) -> None:
    """Product (i, j, k) takes element (i N + j) K + k of the product role's stream."""
    rng = np.random.default_rng(5)
    M, K, N = 3, 7, 4
    a = emu.quantize(rng.uniform(-1.5, 1.5, (M, K)), mac.act)
    w = emu.quantize(rng.uniform(-1.5, 1.5, (K, N)), mac.weight)
    y = emu.matmul(a, w, mac, seed=123)
    key = seed_key(123, "matmul")
    pkey = RoleSeeds.of(mac, None, 0, key).product_key
    for i in range(M):
        for j in range(N):
            ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac,
                              streams=Streams(product=(pkey, (i * N + j) * K)))
            assert float(ref.value) == y[i, j], (i, j)


# --- seeds: every stochastic rounding of a datapath is reproducible ---------------------------------

STOCHASTIC_MACS = [
    MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<8,8>", input_rounding="stochastic"),
    MAC(act="fx<4,8>", weight="fx<4,8>", acc="fx<10,14>", output="fx<4,4>", output_rounding="stochastic"),
    MAC(act="e4m3", weight="e4m3", acc="fp32", input_rounding="stochastic"),
    MAC(act="fx<4,4>", weight="binary<stochastic>", acc="fx<8,8>"),
    SR_PRODUCT,
]


@pytest.mark.parametrize("mac", STOCHASTIC_MACS, ids=str)
def test_the_same_seed_gives_the_same_bits_and_another_seed_other_bits(mac: MAC) -> None:
    rng = np.random.default_rng(1)
    a, w = rng.uniform(-1, 1, (6, 40)), rng.uniform(-1, 1, (40, 5))
    y1 = emu.matmul(a, w, mac, seed=7)
    assert np.array_equal(y1, emu.matmul(a, w, mac, seed=7))
    assert np.array_equal(y1, emu.matmul(a, w, mac, seed=np.random.SeedSequence(7)))
    assert not np.array_equal(y1, emu.matmul(a, w, mac, seed=8))
    # layout: Fortran-ordered operands are the same logical arrays
    assert np.array_equal(y1, emu.matmul(np.asfortranarray(a), np.asfortranarray(w), mac, seed=7))
    # dot and conv2d take the seed too
    d = emu.dot(a[0], w[:, 0], mac, seed=3)
    assert d == emu.dot(a[0], w[:, 0], mac, seed=3)


def test_the_seed_fixes_the_bits_for_any_thread_count() -> None:
    mac = MAC(act="fx<4,6>", weight="fx<4,6>", acc="fx<10,10>", product="fx<6,6>",
              product_rounding="stochastic", input_rounding="stochastic", output="fx<6,4>",
              output_rounding="stochastic")
    rng = np.random.default_rng(2)
    a, w = rng.uniform(-1, 1, (64, 128)), rng.uniform(-1, 1, (128, 64))  # 2^19 MACs: the threaded kernel
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = emu.matmul(a, w, mac, seed=11)
        numba.set_num_threads(max(2, before))
        many = emu.matmul(a, w, mac, seed=11)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, many)
    # rows computed alone draw what they draw inside the whole product (indices are global)
    assert np.array_equal(one[5:6], emu.matmul(a, w, mac, seed=11)[5:6])


def test_conv2d_converts_each_input_element_once() -> None:
    """Under stochastic input rounding a pixel shared by several patches has one value in all of them."""
    mac = MAC(act="fx<2,2>", weight="fx<4,4>", acc="fx<10,10>", input_rounding="stochastic")
    x = np.full((1, 1, 5, 5), 0.1)  # 0.1 / 0.25 = 0.4: each pixel rounds to 0 or 0.25
    w = np.ones((1, 1, 3, 3))
    y = emu.conv2d(x, w, mac, seed=4)
    xq = emu.quantize(x, "fx<2,2>", "stochastic", seed=RoleSeeds.of(
        mac, None, 0, seed_key(4, "matmul")).act)
    expect = emu.conv2d(xq, w, MAC(act="fx<2,2>", weight="fx<4,4>", acc="fx<10,10>"))
    assert np.array_equal(y, expect)
    assert np.array_equal(y, emu.conv2d(x, w, mac, seed=4))


def test_a_bad_seed_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^matmul: seed=-1 outside the allowed range \[0, inf\)$"):
        emu.matmul([[0.3]], [[1.0]], STOCHASTIC_MACS[0], seed=-1)


# --- overflow of an unfused product into a float accumulator -----------------------------------------


def test_acc_overflow_error_raises_when_a_product_overflows_into_the_accumulator() -> None:
    mac = MAC(act="fp16", weight="fp16", acc="fp16", acc_overflow="error")
    with pytest.raises(OverflowError, match=r"1 product\(s\) overflow acc=fp16"):
        emu.matmul([[60000.0, -1.0]], [[4.0], [1.0]], mac)  # was [[65504.]]


# --- ternary weights scaled per output ------------------------------------------------------------


def test_ternary_channel_weights_are_thresholded_per_output() -> None:
    mac = MAC(act="fx<4,4>", weight="ternary<scale=channel>", acc="fx<8,8>")
    w = np.array([[1.0, 1.0], [0.25, 0.25]])
    y = emu.matmul([[1.0, 1.0]], w, mac)  # was [[2., 2.]] (thresholds per input row)
    per_output = emu.quantize(w.T, "ternary<scale=channel>").T  # TWN per output column
    assert np.array_equal(y, np.array([[1.0, 1.0]]) @ per_output)
    assert np.array_equal(y, [[1.0, 1.0]])


def test_conv2d_ternary_channel_weights_are_per_output_channel() -> None:
    rng = np.random.default_rng(3)
    x, w = rng.uniform(-1, 1, (1, 2, 4, 4)), rng.uniform(-1, 1, (3, 2, 2, 2))
    mac = MAC(act="fx<4,8>", weight="ternary<scale=channel>", acc="exact")
    wq = emu.quantize(w.reshape(3, -1), "ternary<scale=channel>")  # TWN per output channel
    cols, oh, ow = emu.im2col(emu.quantize(x, "fx<4,8>"), 2, 2, (1, 1), (0, 0))
    exact = (cols @ wq.T).reshape(1, oh, ow, 3).transpose(0, 3, 1, 2)
    assert np.allclose(emu.conv2d(x, w, mac), exact, rtol=0, atol=1e-12)


# --- the start value: saturated and counted ---------------------------------------------------------


def test_a_float_bias_saturates_and_is_counted() -> None:
    y, st = emu.matmul([[1.0]], [[1.0]], MAC(act="fp16", weight="fp16", acc="fp16"), bias=1e6,
                       return_stats=True)
    assert y[0, 0] == 65504.0  # was inf
    assert st.input_overflow == 1  # was 0


def test_a_fixed_bias_that_saturates_is_counted() -> None:
    mac = MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<8,8>")
    y, st = emu.matmul([[0.0]], [[1.0]], mac, bias=1e6, return_stats=True)
    assert y[0, 0] == 127.99609375
    assert st.input_overflow == 1  # was 0
    _, st = emu.matmul([[0.0]], [[1.0]], mac, bias=100.0, return_stats=True)
    assert st.input_overflow == 0


# --- the addend C -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mac", [
    MAC(act="int8", weight="int8", acc="fx<16,0>", acc_overflow="saturate"),
    MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<8,8>", acc_overflow="wrap", order="pairwise"),
    MAC(act="e4m3", weight="e4m3", acc="fp32"),
    MAC(act="e4m3", weight="e4m3", acc="fp16", order="lanes(2)"),
    MAC(act="fp16", weight="fp16", acc="fp32", fused=True),
    MAC(act="fx<4,4>", weight="fx<4,4>", acc="exact", output="fx<8,4>"),
], ids=str)
def test_the_addend_starts_each_accumulator(mac: MAC) -> None:
    rng = np.random.default_rng(9)
    M, K, N = 5, 9, 3
    a = rng.uniform(-4, 4, (M, K)).round(1)
    w = rng.uniform(-1, 1, (K, N)).round(2)
    c = rng.uniform(-50, 50, (M, N))
    y = emu.matmul(a, w, mac, c=c)
    for i in range(M):
        for j in range(N):
            ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac, float(c[i, j]))
            assert float(ref.value) == y[i, j], (i, j)
    # an addend constant down the rows is the bias
    assert np.array_equal(emu.matmul(a, w, mac, c=c[0]), emu.matmul(a, w, mac, bias=c[0]))
    # the fast binary32 kernels and the general ones agree
    assert np.array_equal(y, emu.matmul(a, w, mac, c=c, sequential=True))


def test_the_addend_broadcasts_over_batches_and_vectors() -> None:
    mac = MAC(act="int8", weight="int8", acc="fx<32,0>", acc_overflow="wrap")
    rng = np.random.default_rng(4)
    a, w = rng.integers(-5, 5, (2, 3, 4)).astype(float), rng.integers(-5, 5, (2, 4, 2)).astype(float)
    c = rng.integers(-9, 9, (2, 1, 2)).astype(float)
    assert np.array_equal(emu.matmul(a, w, mac, c=c), a @ w + c)
    assert np.array_equal(emu.matmul(a[0, 0], w[0], mac, c=[1.0, 2.0]), a[0, 0] @ w[0] + [1.0, 2.0])
    assert emu.dot(a[0, 0], w[0, :, 0], mac, c=5.0) == a[0, 0] @ w[0, :, 0] + 5.0


def test_conv2d_takes_an_addend_of_the_output_shape() -> None:
    mac = MAC(act="int8", weight="int8", acc="fx<32,0>")
    rng = np.random.default_rng(6)
    x, w = rng.integers(-3, 3, (2, 1, 4, 4)).astype(float), rng.integers(-3, 3, (2, 1, 3, 3)).astype(float)
    plain = emu.conv2d(x, w, mac)
    c = rng.integers(-9, 9, plain.shape).astype(float)
    assert np.array_equal(emu.conv2d(x, w, mac, c=c), plain + c)
    per_channel = np.array([10.0, -20.0]).reshape(2, 1, 1)
    assert np.array_equal(emu.conv2d(x, w, mac, c=per_channel), plain + per_channel)


@pytest.mark.parametrize("mac", [
    MAC(act="fx<4,8>", weight="fx<4,8>", acc="fx<16,16>", input_rounding="stochastic"),
    MAC(act="e4m3", weight="e5m2", acc="fp32", input_rounding="stochastic"),
], ids=str)
def test_stochastic_addends_draw_by_their_index_whatever_their_layout(mac: MAC) -> None:
    """An addend's start values draw their random bits by their index in the array as passed ((1, N) for
    a row, (M, N) for a full array: docs/semantics.md), so an (M, N) broadcast view and its copy give the
    same bits (the view was read as one row: 34 of 100 outputs differed), and a row passed as (N,) or
    (1, N) the same bits too; conv2d alike, its per-channel addend a row."""
    rng = np.random.default_rng(0)
    a, w, b = rng.standard_normal((50, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2) / 3
    view = np.broadcast_to(b, (50, 2))
    full = emu.matmul(a, w, mac, c=np.array(view), seed=0)
    assert np.array_equal(emu.matmul(a, w, mac, c=view, seed=0), full)
    assert np.array_equal(emu.matmul(a, w, mac, c=np.asfortranarray(view), seed=0), full)
    row = emu.matmul(a, w, mac, c=b, seed=0)
    assert np.array_equal(emu.matmul(a, w, mac, c=b[None], seed=0), row)
    assert np.array_equal(emu.matmul(a, w, mac, bias=b, seed=0), row)
    x, wc = rng.standard_normal((4, 4, 6, 6)), rng.standard_normal((8, 4, 3, 3))
    cc = rng.standard_normal((8, 1, 1))
    cview = np.broadcast_to(cc, (4, 8, 4, 4))
    want = emu.conv2d(x, wc, mac, c=np.array(cview), seed=1)
    assert np.array_equal(emu.conv2d(x, wc, mac, c=cview, seed=1), want)
    per_channel = emu.conv2d(x, wc, mac, c=cc, seed=1)
    assert np.array_equal(per_channel, emu.conv2d(x, wc, mac, bias=cc[:, 0, 0], seed=1))


def test_bad_addends_are_refused() -> None:
    mac = MAC(act="int8", weight="int8", acc="fx<32,0>")
    with pytest.raises(ValueError, match=r"give bias= .* or c= .*, not both"):
        emu.matmul([[1.0]], [[1.0]], mac, bias=1.0, c=1.0)
    with pytest.raises(ValueError,
                       match=r"c has shape \(3,\); it must broadcast to the output's shape \(2, 2\)"):
        emu.matmul(np.ones((2, 2)), np.ones((2, 2)), mac, c=np.ones(3))
    with pytest.raises(TypeError, match=r"matmul: c has dtype complex"):
        emu.matmul([[1.0]], [[1.0]], mac, c=[[1j]])
    with pytest.raises(ValueError, match=r"conv2d: c has shape \(5,\)"):
        emu.conv2d(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), mac, c=np.ones(5))


# --- what is not a real number ----------------------------------------------------------------------


@pytest.mark.parametrize(("bias", "what"), [(np.array([1 + 1j]), "complex"), (np.array([True]), "bool"),
                                            (["1"], "str"), (np.array([object()]), "object")])
def test_a_bias_that_is_not_real_is_refused(bias: object, what: str) -> None:
    with pytest.raises(TypeError, match=f"matmul: bias has dtype {what}; expected real numbers"):
        emu.matmul([[1.0]], [[1.0]], "int8 x int8 -> int32", bias=bias)


@pytest.mark.parametrize(("x", "what"), [([0.5, None], "object"), (np.array([1 + 1j]), "complex"),
                                         (["1.5"], "str"), ([True], "bool")])
def test_mask_float32_refuses_what_is_not_real(x: object, what: str) -> None:
    with pytest.raises(TypeError, match=f"mask_float32: x has dtype {what}"):
        emu.mask_float32(x, 7)


def test_error_summary_refuses_complex_values() -> None:
    with pytest.raises(TypeError, match=r"error_summary: x has dtype complex"):
        emu.error_summary([1 + 1j], [1])
    with pytest.raises(TypeError, match=r"relative_error: q has dtype str"):
        emu.relative_error([1.0], ["1"])


# --- one datapath type: block-scaled operands in emu.MAC ------------------------------------------------

MX8 = MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32")


def test_a_block_scaled_mac_runs_through_matmul_dot_and_conv2d() -> None:
    rng = np.random.default_rng(21)
    a, w = rng.normal(size=(3, 64)), rng.normal(size=(64, 2))
    qa, qw = emu.block_quantize(a, "mxfp8_e4m3", axis=1), emu.block_quantize(w, "mxfp8_e4m3", axis=0)
    y, st = emu.matmul(a, w, MX8, return_stats=True)
    assert np.allclose(y, qa @ qw, rtol=1e-6, atol=1e-6)  # one fp32 rounding per block of 32
    assert st.path == "block"
    assert emu.dot(a[0], w[:, 0], MX8) == y[0, 0]
    x, k = rng.normal(size=(1, 2, 6, 6)), rng.normal(size=(3, 2, 4, 4))  # K = 32: one block per output
    cols, oh, ow = emu.im2col(x, 4, 4, (1, 1), (0, 0))
    want = emu.matmul(cols, k.reshape(3, -1).T, MX8).reshape(1, oh, ow, 3).transpose(0, 3, 1, 2)
    assert np.array_equal(emu.conv2d(x, k, MX8), want)


def test_a_block_scaled_mac_takes_an_addend_and_an_output_format() -> None:
    rng = np.random.default_rng(22)
    a, w = rng.normal(size=(3, 64)), rng.normal(size=(64, 2))
    c = rng.normal(size=(3, 2)) * 100
    exact = MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="exact")
    base = emu.matmul(a, w, exact)
    assert np.allclose(emu.matmul(a, w, exact, c=c), base + c, rtol=0, atol=1e-9)
    fixed = MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fx<16,8>")
    y0 = emu.matmul(a, w, fixed)
    yc = emu.matmul(a, w, fixed, c=np.round(c))  # integers: exact on the accumulator grid, added exactly
    assert np.array_equal(yc, y0 + np.round(c))
    out = MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32", output="fx<4,4>")
    yo, st = emu.matmul(a, w, out, return_stats=True)
    assert np.array_equal(yo, emu.quantize(emu.matmul(a, w, MX8), "fx<4,4>"))
    assert st.output_overflow == int(np.count_nonzero(np.abs(emu.matmul(a, w, MX8)) > 8 - 1 / 32))
    with pytest.raises(ValueError, match=r"nvfp4 operands take no bias= or c="):
        emu.matmul(a, w, emu.mac_preset("nvfp4"), c=c)


def test_a_nan_block_gives_nan_where_the_accumulator_has_nan_and_an_error_where_not() -> None:
    a = np.ones((1, 64))
    a[0, 40] = np.nan
    w = np.ones((64, 1))
    y, st = emu.matmul(a, w, MX8, return_stats=True)
    assert np.isnan(y[0, 0])
    assert st.nan_blocks == 1
    with pytest.raises(ValueError, match=r"reached acc=fx<16,8>, which has no NaN"):
        emu.matmul(a, w, MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fx<16,8>"))  # was NaN


@pytest.mark.parametrize(("field", "value"), [("product", "fp16"), ("fused", True), ("order", "pairwise"),
                                              ("input_rounding", "floor"), ("input_overflow", "error"),
                                              ("align_rounding", "nearest_even")])
def test_a_block_scaled_mac_refuses_steps_its_engine_does_not_have(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"MAC: {field}=.* does not apply to block-scaled operands"):
        MAC(act="mxfp4", weight="mxfp4", acc="fp32", **{field: value})


def test_block_scaled_operands_come_in_pairs_of_one_family() -> None:
    with pytest.raises(ValueError, match=r"block-scaled operands come in pairs"):
        MAC(act="mxfp4", weight="e4m3", acc="fp32")
    with pytest.raises(ValueError, match=r"different families"):
        MAC(act="mxfp4", weight="int8_channel", acc="fp32")
    with pytest.raises(ValueError, match=r"act='int8x' is neither an emu format .* nor a block-scaled"):
        MAC(act="int8x", weight="int8", acc="fp32")


@pytest.mark.parametrize("mac", [
    MAC(act="e4m3", weight="e4m3", acc="fp16"),
    MAC(act="bf16", weight="bf16", acc="bf16", acc_rounding="floor"),
    MAC(act="fp16", weight="fp16", acc="fp<6,9>", fused=True, order="pairwise"),
    MAC(act="fp16", weight="fp16", acc="fp32", product="e5m2", product_rounding="toward_zero"),
    MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<6,8>", order="lanes(4)"),
    MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<8,8>", product="fx<3,3>", product_rounding="ceil",
        acc_overflow="wrap"),
], ids=str)
def test_the_threaded_row_kernel_runs_every_datapath(mac: MAC) -> None:
    """A product of 2^19 MACs runs the threaded kernels; blocks of 4 rows (2^15 MACs each) run the serial
    ones: the same bits."""
    rng = np.random.default_rng(8)
    a, w = rng.uniform(-2, 2, (64, 128)), rng.uniform(-0.5, 0.5, (128, 64))
    y = emu.matmul(a, w, mac, sequential=True)
    parts = np.vstack([emu.matmul(a[i:i + 4], w, mac, sequential=True) for i in range(0, 64, 4)])
    assert np.array_equal(y, parts, equal_nan=True)


@pytest.mark.parametrize(("fields", "match"), [
    (dict(act="int8", weight="int8", acc="fx<16,0>", acc_rounding="ceil"),
     r"MAC: acc_rounding=ceil does not apply here \(a fixed or exact accumulator's additions are exact\);"
     r" allowed: nearest_even"),
    (dict(act="fx<4,4>", weight="fx<4,4>", acc="exact", acc_rounding="floor"), r"acc_rounding=floor"),
    (dict(act="e4m3", weight="e4m3", acc="fp32", align_rounding="nearest_even"),
     r"align_rounding=nearest_even does not apply here .*; allowed: floor"),
    (dict(act="fx<4,4>", weight="fx<4,4>", acc="exact", align_rounding="ceil"), r"align_rounding=ceil"),
    (dict(act="int8", weight="int8", acc="fx<16,0>", product_rounding="floor"),
     r"product_rounding=floor does not apply here \(without a product format the products are not rounded\)"),
    (dict(act="e4m3", weight="e4m3", acc="fp32", product_rounding="toward_zero"), r"product_rounding"),
    (dict(act="int8", weight="int8", acc="fx<16,0>", output_rounding="stochastic"),
     r"output_rounding=stochastic does not apply here \(without an output format"),
    (dict(act="e4m3", weight="e4m3", acc="fp16", output_rounding="ceil"), r"output_rounding=ceil"),
    # a step that never drops a bit: products of 8 fraction bits into an accumulator or product keeping 8
    (dict(act="fx<4,4>", weight="fx<4,4>", acc="fx<12,8>", align_rounding="ceil"),
     r"^MAC: align_rounding=ceil does not apply here \(acc=fx<12,8> keeps all 8 fraction bits of the"
     r" products\); allowed: floor$"),
    (dict(act="int8", weight="int8", acc="fx<16,4>", align_rounding="nearest_even"), r"align_rounding"),
    (dict(act="fx<4,4>", weight="fx<4,4>", acc="fx<12,8>", product="fx<8,8>", product_rounding="stochastic"),
     r"^MAC: product_rounding=stochastic does not apply here \(product=fx<8,8> keeps all 8 fraction bits"),
])
def test_a_rounding_for_a_missing_step_is_refused(fields: dict, match: str) -> None:
    """Each rounding field names a step (a product format, an output format, a float addition, a product's
    alignment into a fixed accumulator or a fused step); set for a datapath without that step it would
    change nothing, so it is refused at construction rather than ignored."""
    with pytest.raises(ValueError, match=match):
        emu.MAC(**fields)
    # the steps exist and drop bits: 8 fraction bits of products into 6, and into a product of 4
    emu.MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<12,6>", align_rounding="nearest_even")
    emu.MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<16,4>", product="fx<8,4>", product_rounding="floor",
            output="int8", output_rounding="ceil")
    emu.MAC(act="e4m3", weight="e4m3", acc="fp16", acc_rounding="toward_zero")


@pytest.mark.parametrize("flag", ["return_stats", "return_codes", "sequential"])
def test_datapath_flags_must_be_bools(flag: str) -> None:
    """A truthy "False" switched a flag on (stats or codes returned, the sequential kernel forced)."""
    a, w, mac = np.ones((2, 4)), np.ones((4, 3)), "int8 x int8 -> int32"
    with pytest.raises(TypeError, match=rf"^matmul: {flag}='False' must be True or False$"):
        emu.matmul(a, w, mac, **{flag: "False"})
    with pytest.raises(TypeError, match=rf"^dot: {flag}=1 must be True or False$"):
        emu.dot(np.ones(4), np.ones(4), mac, **{flag: 1})
    with pytest.raises(TypeError, match=rf"^conv2d: {flag}=None must be True or False$"):
        emu.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), mac, **{flag: None})
    assert emu.matmul(a, w, mac, **{flag: np.False_}).tolist() == emu.matmul(a, w, mac).tolist()


@pytest.mark.parametrize(("kw", "match"), [
    ({"stride": (2**70, 1)}, r"stride=\(1180591620717411303424, 1\) outside the allowed range \[1,"
                             r" 2147483647\]$"),
    ({"padding": 2**70}, r"padding=1180591620717411303424 outside the allowed range \[0, 2147483647\]$"),
    ({"stride": 0}, r"stride=0 outside the allowed range \[1, 2147483647\]$"),
    ({"padding": (0, -1)}, r"padding=\(0, -1\) outside the allowed range \[0, 2147483647\]$"),
    ({"padding": 2**30}, r"stride=1 and padding=1073741824 give \d+ x 9 patch entries, beyond numpy's largest"
                         r" array$"),
])
def test_conv2d_refuses_absurd_strides_and_paddings_by_name(kw: dict, match: str) -> None:
    """stride=2**70 was a raw OverflowError, padding=2**70 numpy's "Maximum allowed dimension exceeded"."""
    with pytest.raises(ValueError, match=rf"^conv2d: {match}"):
        emu.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), "int8 x int8 -> int32", **kw)
