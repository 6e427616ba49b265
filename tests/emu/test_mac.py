"""The MAC engine: configuration, fast paths against the sequential kernel, orders,
float accumulators against native IEEE arithmetic, conv2d, shapes, bad input and
golden results.

The slow literal reference (`emu._ref.mac`) is compared bit for bit in
`test_mac_ref.py`; here every fast path is held to the sequential kernel, and the
float datapaths to numpy's own float16/float32 arithmetic where they coincide.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import emu
from emu import MAC, Order
from emu.datapath.integer import _exact_int_matmul as exact_int_matmul

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "mac_golden.npz"


# --- configuration ------------------------------------------------------------------------------


def test_mac_is_an_immutable_value_with_a_readable_name() -> None:
    m = MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<2,14>")
    assert str(m) == "fx<1,7> x fx<1,7> -> fx<2,14> (saturate, sequential)"
    # a fused multiply-add chain reads apart from the chain that rounds each product first
    fma, chain = (MAC(act="bf16", weight="bf16", acc="fp32", fused=f) for f in (True, False))
    assert (str(fma), str(chain)) == ("bf16 x bf16 -> fp32 (inf, sequential, fma)",
                                      "bf16 x bf16 -> fp32 (inf, sequential)")
    assert m == MAC(act=emu.format("fx<1,7>"), weight="fx<1,7>", acc="fx<2,14>", order="sequential")
    assert hash(m) == hash(MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<2,14>"))
    with pytest.raises(AttributeError, match="cannot assign to field 'acc'"):
        m.acc = "fx<4,4>"  # type: ignore[misc]
    assert str(m.exact_product) == "fx<2,14>"
    assert Order.parse("lanes(4)") == Order("lanes", 4)
    assert str(Order.parse(" blocks( 32 ) ")) == "blocks(32)"
    for name in emu.MAC_PRESETS:
        assert isinstance(emu.mac_preset(name), MAC)


def test_a_misspelt_field_is_refused_naming_it_and_the_closest_field() -> None:
    """mac_preset overrides, a dict of MAC fields and a dict of a record's fields (an instruction) refuse an
    unknown name with a ValueError (it was Python's TypeError of an unexpected keyword)."""
    with pytest.raises(ValueError, match=r"^mac_preset: aling_bits is not a field of MAC \(closest:"
                                         r" align_bits\); fields: act, weight, acc, "):
        emu.mac_preset("A100 tf32 -> fp32", aling_bits=3)
    with pytest.raises(ValueError, match=r"^matmul: mac: acc_ovrflow is not a field of MAC \(closest:"
                                         r" acc_overflow\)"):
        emu.matmul([[1.0]], [[1.0]], dict(act="fp16", weight="fp16", acc="fp32", acc_ovrflow="inf"))
    with pytest.raises(ValueError, match=r"^MAC: instruction: bogus is not a field of Instruction; fields: k,"
                                         r" k_order, addend$"):
        emu.mac_preset("A100 tf32 -> fp32", instruction=dict(bogus=1))


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(acc="fx<40,30>"), "acc=.*allowed range"),
    (dict(acc="pow2<0,4>"), "acc=pow2<0,4> is a pow2 format"),
    (dict(acc="fx<8,8>", acc_overflow="inf"), "acc_overflow=inf is not allowed"),
    (dict(acc="fp16", acc_overflow="wrap"), "acc_overflow=wrap is not allowed"),
    (dict(acc="fx<8,8>", order="lanes"), "order='lanes'"),
    (dict(acc="fx<8,8>", order="zigzag(3)"), "order="),
    (dict(acc="fx<8,8>", fused=True), "fused=True applies to float accumulators"),
    (dict(acc="fp32", acc_rounding="stochastic"), "acc_rounding='stochastic' is not supported"),
    (dict(acc="exact", acc_overflow="wrap"), "does not apply to an exact accumulator"),
    (dict(acc="fx<8,8>", product_overflow="wrap"), "product_overflow given without a product"),
    (dict(acc="fx<8,8>", output="binary"), "output=binary"),
    (dict(act="fp64", weight="fp64", acc="fp64"), "at most 50 fraction bits|needs 106 bits"),
    # products a float accumulator could not form exactly in float64
    (dict(act="fp<11,10>", weight="fp<11,10>", acc="fp32"), r"span 2\^-2064 to 2\^2048, outside"),
    (dict(act="pow2<-1000,0>", weight="pow2<-1000,0>", acc="fp32"), r"span 2\^-2000 to 2\^2, outside"),
    (dict(act="fx<-900,910>", weight="fx<-900,910>", acc="fp32"), r"span 2\^-1820 to 2\^-1800"),
    (dict(act="fp<5,10,bias=-990>", weight="fp16", acc="fp32", fused=True), r"span 2\^957 to 2\^1037"),
    # a product format the accumulator's kind cannot take: refused when built, not at the first call
    (dict(acc="fp32", product="fx<8,8>"), "product=fx<8,8> with a float accumulator must be a float"),
    (dict(weight="fp16", acc="fp32", product="fp<11,20>"), "product=fp<11,20> .* exponent range inside"),
    (dict(act="e4m3", weight="e4m3", acc="fx<16,8>", product="e4m3"),
     "product=e4m3 with a fixed or exact accumulator must be a fixed format"),
    (dict(act="fp16", weight="fp16", acc="exact", product="fp16"), "product=fp16 with a fixed or exact"),
    # beyond 62-bit integer products an exact accumulator sums float64 products, rounded once into an output
    (dict(act="fp16", weight="fp16", acc="exact"),
     r"^MAC: output=None with acc=exact and fp16 x fp16 .*give output=, e.g. fp32$"),
    (dict(act="fp16", weight="fp16", acc="exact", product="fx<8,8>"),
     r"integer product of fp16 \(41 bits as codes\).*an exact one without product= also sums"),
    (dict(act="fx<1,30>", weight="fx<1,30>", acc="fx<54,-4>", product="fx<60,-4>",
          product_rounding="stochastic"),
     r"product=fx<60,-4> drops 64 fraction bits of the exact product; stochastic product rounding drops at"),
    # alignments the int64 terms cannot hold: decided by the formats, so refused when built, not at the
    # first product
    (dict(act="fx<8,0>", weight="fx<8,0>", acc="fx<8,54>"),
     r"^MAC: aligning the products of fx<8,0> and fx<8,0> into acc=fx<8,54> shifts them left by 54 bits"),
    (dict(act="e4m3", weight="e4m3", acc="fx<2,60>"), r"into acc=fx<2,60> shifts them left by 42 bits"),
    (dict(act="fx<8,0>", weight="fx<8,0>", acc="fx<15,47>"), None),  # 128 x 128 = 2^14, shifted: 2^61
    (dict(act="fx<8,0>", weight="fx<8,0>", acc="fx<14,48>"), r"into acc=fx<14,48> shifts them left by 48"),
    (dict(act="fx<8,0>", weight="fx<8,0>", acc="fx<8,10>", product="fx<8,50>"),
     r"^MAC: aligning the products of fx<8,0> and fx<8,0> to product=fx<8,50> needs more than 62 bits"),
    (dict(act="fx<30,0>", weight="fx<30,2>", acc="fx<62,0>", order="blocks(4)"),
     r"^MAC: order=blocks\(4\) sums 4 aligned products in a block, which needs more than 62 bits"),
    # an output overflow mode without an output conversion would change nothing
    (dict(act="e5m2", weight="e5m2", acc="fp16", output_overflow="saturate"),
     r"^MAC: output_overflow=saturate does not apply here \(without an output format"),
    (dict(acc="fx<16,8>", output_overflow="wrap"), r"^MAC: output_overflow=wrap does not apply here"),
])
def test_bad_configurations_are_refused_by_name(kwargs: dict, match: str) -> None:
    base = dict(act="fx<1,7>", weight="fx<1,7>")
    if match is None:  # the edge that fits: built, and it runs
        m = MAC(**{**base, **kwargs})
        assert emu.matmul(np.array([[3.0]]), np.array([[-5.0]]), m).tolist() == [[-15.0]]
        return
    with pytest.raises(ValueError, match=match):
        MAC(**{**base, **kwargs})


def test_an_exact_accumulator_takes_any_sum_these_operands_keep_within_its_62_bits() -> None:
    # e4m3 x e5m2 products reach 448 * 57344 = 229376 * 3758096384 units of 2^-25 (2^49.6): the formats
    # alone would refuse K = 6000; these operands' sums fit, and are exact
    m = MAC(act="e4m3", weight="e5m2", acc="exact")
    k = 6000
    a = np.full((2, k), 448.0)
    a[1] = 1.0
    w = np.ones((k, 1))
    w[::2] = 57344.0 / 1024
    assert emu.matmul(a, w, m).tolist() == [[448.0 * (3000 * 56.0 + 3000)], [3000 * 56.0 + 3000]]
    # the same K of the largest codes could reach 2^62.2 units: refused before any sum, naming the bound
    w[:] = 57344.0
    message = (r"^matmul: acc=exact holds sums below 2\^62 units of its grid, but 6000 products of these"
               r" operands reach 862017116176384 units each \(63 bits")
    with pytest.raises(ValueError, match=message):
        emu.matmul(a, w, m)
    k = 5000  # fits: 5000 * 2^49.6 < 2^62
    assert emu.matmul(np.full((1, k), 448.0), np.full((k, 1), 57344.0), m).tolist() == [[k * 448.0 * 57344.0]]


@pytest.mark.parametrize("acc", ["fx<16,8>", "exact"])
@pytest.mark.parametrize("sequential", [False, True])
def test_a_nan_operand_into_an_accumulator_without_nan_is_refused_by_name(acc: str, sequential: bool) -> None:
    m = MAC(act="e4m3", weight="e4m3", acc=acc)
    message = rf"reached acc={re.escape(acc)}, which has no NaN; first in output \(1, 0\)"
    with pytest.raises(ValueError, match=message):
        emu.matmul([[1.0, 2.0], [3.0, np.nan]], [[1.0, 0.0], [1.0, 0.0]], m, sequential=sequential)


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(ValueError, match="int8 x int8 -> int32"):
        emu.mac_preset("int4 x int4 -> int9")


# --- fast paths against the sequential kernel ------------------------------------------------------


def _random_config(rng: np.random.Generator) -> MAC:
    fmts = ["int8", "fx<1,7>", "fx<2,6>", "ufx<0,8>", "fx<4,4>", "pow2<-6,0>", "binary",
            "ternary<scale=none>", "e4m3", "fx<3,13>"]
    act = fmts[rng.integers(len(fmts))]
    weight = fmts[rng.integers(len(fmts))]
    wl = int(rng.integers(6, 34))
    fl = int(rng.integers(0, wl))
    acc = "exact" if rng.random() < 0.15 else f"{'u' if rng.random() < 0.1 else ''}fx<{wl - fl},{fl}>"
    order = ["sequential", "pairwise", f"lanes({rng.integers(1, 6)})", f"blocks({rng.integers(1, 9)})"][
        rng.integers(4)]
    kw: dict = dict(act=act, weight=weight, acc=acc, order=order)
    if acc != "exact":
        kw["acc_overflow"] = ["wrap", "saturate"][rng.integers(2)]
        kw["align_rounding"] = ["floor", "nearest_even", "toward_zero", "nearest_away"][rng.integers(4)]
    return MAC(**kw)


def _operands(mac: MAC, rng: np.random.Generator, m: int, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    def draw(f: emu.Format, shape: tuple[int, int]) -> np.ndarray:
        top = max(f.max, 1.0)
        x = rng.uniform(-1.1, 1.1, shape) * top
        if rng.random() < 0.3:
            x = np.where(rng.random(shape) < 0.5, f.max, f.min)  # built to overflow
        return x

    return draw(mac.act, (m, k)), draw(mac.weight, (k, n))


def test_exact_sum_path_equals_the_sequential_kernel() -> None:
    rng = np.random.default_rng(1)
    tried = fast = 0
    while tried < 120:
        try:
            mac = _random_config(rng)
        except ValueError:
            continue
        m, k, n = (int(v) for v in rng.integers(1, 24, 3))
        a, w = _operands(mac, rng, m, k, n)
        bias = rng.uniform(-4, 4, n) if rng.random() < 0.5 else None
        try:
            y1, c1, s1 = emu.matmul(a, w, mac, bias, return_codes=True, return_stats=True)
        except ValueError as e:  # an honest refusal of too-wide configurations
            pytest.ExceptionInfo.from_exception(e).match("bits")
            continue
        y2, c2, s2 = emu.matmul(a, w, mac, bias, return_codes=True, return_stats=True, sequential=True)
        assert np.array_equal(y1, y2), mac
        assert np.array_equal(c1, c2), mac
        assert (s1.acc_overflow, s1.product_overflow) == (s2.acc_overflow, s2.product_overflow), mac
        assert np.array_equal(s1.acc_per_channel, s2.acc_per_channel)
        tried += 1
        fast += s1.path != "sequential"
    assert fast > 30  # the fast path was exercised, not only the fallback


@pytest.mark.parametrize("acc", ["fx<8,0>", "fx<12,0>", "fx<32,0>", "ufx<10,0>"])
def test_wrapping_is_order_independent_and_equals_the_exact_sum_mod_2w(acc: str) -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(-128, 128, (17, 40)).astype(float)
    w = rng.integers(-128, 128, (40, 9)).astype(float)
    f = emu.format(acc)
    exact = (a.astype(np.int64) @ w.astype(np.int64))
    want = (exact - f.qmin) % (1 << f.bits) + f.qmin
    results = []
    for order in ("sequential", "pairwise", "lanes(3)", "lanes(8)", "blocks(5)", "blocks(64)"):
        mac = MAC(act="int8", weight="int8", acc=acc, acc_overflow="wrap", order=order)
        y, st = emu.matmul(a, w, mac, return_stats=True)
        results.append(y)
        assert np.array_equal(y, want.astype(float)), order
    # the limb-split exact sum used by the fast path gives the same residues
    assert np.array_equal((exact_int_matmul(a, w) - f.qmin) % (1 << f.bits) + f.qmin, want)


def test_saturation_depends_on_the_order_as_stated() -> None:
    # terms 100, 100, -100, -100 into a signed 8-bit accumulator (max 127)
    a = np.array([[10.0, 10.0, -10.0, -10.0]])
    w = np.array([[10.0], [10.0], [10.0], [10.0]])
    sat = dict(act="int8", weight="int8", acc="fx<8,0>", acc_overflow="saturate")
    seq = emu.matmul(a, w, MAC(**sat, order="sequential"), sequential=True)
    # 100 -> 127 (clip) -> 27 -> -73
    assert seq[0, 0] == -73
    pair = emu.matmul(a, w, MAC(**sat, order="pairwise"))
    # (100 + 100 -> 127) + (-100 - 100 -> -128) = -1
    assert pair[0, 0] == -1
    lanes = emu.matmul(a, w, MAC(**sat, order="lanes(2)"))
    # lane0: 100 - 100 = 0, lane1: 100 - 100 = 0 -> 0
    assert lanes[0, 0] == 0
    blocks = emu.matmul(a, w, MAC(**sat, order="blocks(2)"))
    # blocks summed exactly: 200 -> 127, then 127 - 200 = -73
    assert blocks[0, 0] == -73
    wrap = emu.matmul(a, w, MAC(act="int8", weight="int8", acc="fx<8,0>", acc_overflow="wrap",
                                order="pairwise"))
    assert wrap[0, 0] == 0


def test_accumulator_overflow_error_names_the_first_output() -> None:
    a = np.array([[10.0, 10.0], [1.0, 1.0]])
    w = np.array([[10.0, 1.0], [10.0, 1.0]])
    mac = MAC(act="int8", weight="int8", acc="fx<8,0>", acc_overflow="error")
    want = (r"1 accumulator addition\(s\) overflow fx<8,0> \(counted as under saturation, the accumulator"
            r" held at its bound\); first in output \(0, 0\)")
    with pytest.raises(OverflowError, match=want):
        emu.matmul(a, w, mac)
    assert np.array_equal(emu.matmul(a[1:], w, mac), [[20.0, 2.0]])


def test_accumulator_overflow_error_counts_as_saturation_does() -> None:
    """100 x 8 into fx<10,0> (max 511): saturation overflows at the 6th, 7th and 8th additions (3), wrapping
    once (800 - 1024 = -224); the error names saturation's count."""
    a, w = np.full((1, 8), 100.0), np.ones((8, 1))
    fmts = dict(act="fx<8,0>", weight="fx<8,0>", acc="fx<10,0>")
    assert emu.matmul(a, w, MAC(**fmts, acc_overflow="saturate"), return_stats=True)[1].acc_overflow == 3
    assert emu.matmul(a, w, MAC(**fmts, acc_overflow="wrap"), return_stats=True)[1].acc_overflow == 1
    with pytest.raises(OverflowError, match=r"matmul: 3 accumulator addition\(s\) overflow fx<10,0> \(co"):
        emu.matmul(a, w, MAC(**fmts, acc_overflow="error"))


@pytest.mark.parametrize("acc", ["fx<4,8>", "fp32"])
def test_output_overflow_error_names_the_output_and_its_value(acc: str) -> None:
    """The output conversion's error names the output (i, j) and the final accumulator's value, not a fixed
    accumulator's integer code at a flat index (4.1953125 is the code 1074 of fx<4,8>)."""
    mac = MAC(act="fx<2,6>", weight="fx<2,6>", acc=acc, output="fx<2,4>", output_overflow="error")
    a = np.array([[0.1, 0.1], [0.2, 0.1], [1.9, 1.9]])
    w = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, 1.9]])
    value = "4.1953125" if acc == "fx<4,8>" else "4.19970703125"
    with pytest.raises(OverflowError, match=rf"1 of 9 value\(s\) overflow fx<2,4> .*;"
                                            rf" first at index \(2, 2\): x=np.float64\({value}\)$"):
        emu.matmul(a, w, mac)


# --- float accumulators ---------------------------------------------------------------------------


def _numpy_sequential(a: np.ndarray, w: np.ndarray, dtype: type, fused: bool = False,
                      bias: np.ndarray | None = None) -> np.ndarray:
    acc = np.zeros((a.shape[0], w.shape[1]), dtype)
    if bias is not None:
        acc += bias.astype(dtype)
    for k in range(a.shape[1]):
        p = a[:, k:k + 1] * w[k:k + 1, :]  # exact in float64
        acc = (acc.astype(np.float64) + p).astype(dtype) if fused else (acc + p.astype(dtype)).astype(dtype)
    return acc.astype(np.float64)


@pytest.mark.parametrize(("act", "acc", "dtype"), [("fp16", "fp16", np.float16), ("e4m3", "fp16", np.float16),
                                                   ("bf16", "fp32", np.float32), ("e5m2", "fp32", np.float32),
                                                   ("fp16", "fp32", np.float32)])
def test_float_accumulation_equals_native_ieee_arithmetic(act: str, acc: str, dtype: type) -> None:
    rng = np.random.default_rng(3)
    a = emu.quantize(rng.standard_normal((13, 70)) * 3, act)
    w = emu.quantize(rng.standard_normal((70, 11)), act)
    want = _numpy_sequential(a, w, dtype)
    assert np.array_equal(emu.matmul(a, w, MAC(act=act, weight=act, acc=acc)), want)
    # the general two-sum kernel gives the same (acc_overflow=saturate leaves the native fp32 path)
    y = emu.matmul(a, w, MAC(act=act, weight=act, acc=acc, acc_overflow="saturate"))
    assert np.array_equal(y, want)


@pytest.mark.parametrize(("m", "k", "n"),
                         [(40, 30, 3), (70, 20, 40), (5, 30, 40), (9, 64, 9), (256, 256, 256)])
def test_binary32_kernels_without_counts_equal_numpy_and_count_nothing(m: int, k: int, n: int) -> None:
    # e4m3 -> fp32 runs binary32 kernels without overflow counts (rows or columns as chains; threads
    # from 2^24 MACs) and reruns the counting kernel only when an output is not finite
    rng = np.random.default_rng(m + n)
    a = emu.quantize(rng.standard_normal((m, k)), "e4m3")
    w = emu.quantize(rng.standard_normal((k, n)), "e4m3")
    bias = emu.quantize(rng.standard_normal(n), "fp32")
    mac = MAC(act="e4m3", weight="e4m3", acc="fp32")
    y, st = emu.matmul(a, w, mac, bias, return_stats=True)
    assert np.array_equal(y, _numpy_sequential(a, w, np.float32, bias=bias))
    assert (st.product_overflow, st.acc_overflow, st.output_overflow) == (0, 0, 0)
    assert st.acc_per_channel.shape == (n,)
    assert not st.acc_per_channel.any()
    # one row whose first products overflow binary32: the counting kernel reruns and counts one
    # product overflow per output of that row; the other rows are unchanged
    a[1, 0], w[0] = 3e38, 4.0
    y2, st = emu.matmul(a, w, MAC(act="fp32", weight="e4m3", acc="fp32"), bias, return_stats=True)
    with np.errstate(over="ignore", invalid="ignore"):
        want = _numpy_sequential(a, w, np.float32, bias=bias)
    assert np.array_equal(y2, want, equal_nan=True)
    assert not np.isfinite(y2[1]).any()
    assert st.product_overflow == n
    assert st.product_per_channel.tolist() == [1] * n


@pytest.mark.parametrize(("m", "k", "n"), [(32, 64, 100), (33, 17, 10), (1, 9, 7), (6, 8, 1), (9000, 20, 3)])
@pytest.mark.parametrize("layouts", ["CC", "CF", "FC", "FF"])
def test_binary32_product_of_reals_in_any_layout_equals_converting_first(m: int, k: int, n: int,
                                                                       layouts: str) -> None:
    # unconverted operands in C or Fortran order: the one-call binary32 kernel rounds them into the
    # operand formats itself; values and input overflow count equal converting with quantize first
    rng = np.random.default_rng(m * k + n)
    a = rng.standard_normal((m, k)) * 300  # beyond e4m3's 448 now and then
    w = rng.standard_normal((k, n))
    a = np.asfortranarray(a) if layouts[0] == "F" else a
    w = np.asfortranarray(w) if layouts[1] == "F" else w
    bias = rng.standard_normal(n)
    y, st = emu.matmul(a, w, MAC(act="e4m3", weight="e5m2", acc="fp32"), bias, return_stats=True)
    qa, sa = emu.quantize(a, "e4m3", overflow="saturate", return_stats=True)
    qw, sw = emu.quantize(w, "e5m2", overflow="saturate", return_stats=True)
    assert np.array_equal(y, _numpy_sequential(qa, qw, np.float32, bias=emu.quantize(bias, "fp32")))
    assert st.input_overflow == sa.overflow + sw.overflow
    assert m * k < 300 or st.input_overflow > 0
    # a NaN into a float format without NaN is refused, as by quantize
    a[0, 0] = np.nan
    y = emu.matmul(a, w, MAC(act="e4m3", weight="e5m2", acc="fp32"))
    assert np.isnan(y[0]).all()
    assert np.isfinite(y[1:]).all()
    with pytest.raises(ValueError, match="NaN"):
        emu.matmul(a, w, MAC(act=emu.FloatFormat(5, 0), weight="e5m2", acc="fp32"))


@pytest.mark.parametrize("mac", ["int8 x int8 -> int32", "e4m3 x e4m3 -> fp32", "fp16 x fp16 -> fp16"])
def test_bias_is_a_scalar_or_one_value_per_output(mac: str) -> None:
    a, w = np.ones((2, 3)), np.ones((3, 2))
    for bias in (2.0, [2.0], np.array([2.0, 2.0])):
        assert emu.matmul(a, w, mac, bias).tolist() == [[5.0, 5.0], [5.0, 5.0]]
    for bias in (np.ones(3), np.ones((1, 2))):
        with pytest.raises(ValueError, match=r"bias has shape \(\d+(, \d+)?,?\); expected \(2,\)"):
            emu.matmul(a, w, mac, bias)


def test_fused_differs_from_a_rounded_product_where_it_should() -> None:
    # x = 1 + 2^-10: x^2 = 1 + 2^-9 + 2^-20 needs 21 bits. Starting from the bias -(1 + 2^-9),
    # an FMA adds the exact product (result 2^-20, an fp16 subnormal); a separate
    # multiplier first rounds x^2 to 1 + 2^-9 (result 0).
    x = 1 + 2.0**-10
    bias = -(1 + 2.0**-9)
    plain = emu.matmul([[x]], [[x]], MAC(act="fp16", weight="fp16", acc="fp16"), bias)
    fused = emu.matmul([[x]], [[x]], MAC(act="fp16", weight="fp16", acc="fp16", fused=True), bias)
    assert fused[0, 0] == 2.0**-20
    assert plain[0, 0] == 0.0


def test_float_accumulator_swamping_and_overflow() -> None:
    # 2048 + 1 + 1 + ... in fp16: every 1 is lost (ulp(2048) = 2)
    a = np.array([[2048.0] + [1.0] * 8])
    w = np.ones((9, 1))
    assert emu.matmul(a, w, "fp16 x fp16 -> fp16")[0, 0] == 2048.0
    assert emu.matmul(a, w, MAC(act="fp16", weight="fp16", acc="fp32"))[0, 0] == 2056.0
    big = np.array([[60000.0, 60000.0]])
    y, st = emu.matmul(big, np.ones((2, 1)), "fp16 x fp16 -> fp16", return_stats=True)
    assert y[0, 0] == np.inf
    assert st.acc_overflow == 1
    y = emu.matmul(big, np.ones((2, 1)), MAC(act="fp16", weight="fp16", acc="fp16", acc_overflow="saturate"))
    assert y[0, 0] == 65504.0


def test_nan_in_float_inputs_propagates_and_is_refused_by_fixed_formats() -> None:
    a = np.array([[1.0, np.nan]])
    w = np.ones((2, 2))
    y = emu.matmul(a, w, "bf16 x bf16 -> fp32")
    assert np.isnan(y).all()
    with pytest.raises(ValueError, match="NaN"):
        emu.matmul(a, w, "int8 x int8 -> int32")


# --- conv2d, shapes, presets ----------------------------------------------------------------------


def test_conv2d_is_the_im2col_matmul_in_c_order() -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(-8, 8, (2, 3, 7, 6)).astype(float)
    k = rng.integers(-8, 8, (4, 3, 3, 2)).astype(float)
    y = emu.conv2d(x, k, "int8 x int8 -> int32", stride=(2, 1), padding=(1, 0))
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 0)))
    oh, ow = (7 + 2 - 3) // 2 + 1, (6 - 2) + 1
    want = np.zeros((2, 4, oh, ow))
    for n_ in range(2):
        for o in range(4):
            for i in range(oh):
                for j in range(ow):
                    want[n_, o, i, j] = np.sum(xp[n_, :, 2 * i:2 * i + 3, j:j + 2] * k[o])
    assert y.shape == (2, 4, oh, ow)
    assert np.array_equal(y, want)
    y2, st = emu.conv2d(x * 20, k * 20, "int8 x int8 -> int16 sat", stride=(2, 1), padding=(1, 0),
                        return_stats=True)
    assert st.acc_per_channel.shape == (4,)
    assert st.acc_overflow == st.acc_per_channel.sum()


def test_matmul_broadcasts_like_numpy_and_handles_vectors_and_empties() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(-5, 5, (2, 3, 4, 6)).astype(float)
    w = rng.integers(-5, 5, (3, 6, 5)).astype(float)
    assert np.array_equal(emu.matmul(a, w, "int8 x int8 -> int32"), a @ w)
    v = rng.integers(-5, 5, 6).astype(float)
    assert np.array_equal(emu.matmul(v, w[0], "int8 x int8 -> int32"), v @ w[0])
    assert emu.dot(v, v, "int8 x int8 -> int32") == v @ v
    assert emu.matmul(np.zeros((0, 6)), w[0], "int8 x int8 -> int32").shape == (0, 5)
    b = np.arange(5.0)
    assert np.array_equal(emu.matmul(np.zeros((2, 0)), np.zeros((0, 5)), "int8 x int8 -> int32", bias=b),
                          np.tile(b, (2, 1)))
    with pytest.raises(ValueError, match="K=6"):
        emu.matmul(a, w[:, :5], "int8 x int8 -> int32")
    with pytest.raises(TypeError, match="dtype"):
        emu.matmul(np.array([["a"]]), w[0], "int8 x int8 -> int32")


def test_binary_popcount_preset_equals_the_integer_dot_product() -> None:
    rng = np.random.default_rng(6)
    a = rng.choice([-1.0, 1.0], (9, 100))
    w = rng.choice([-1.0, 1.0], (100, 7))
    assert np.array_equal(emu.matmul(a, w, "binary x binary -> popcount"), a @ w)


def test_scaled_binary_weights_multiply_the_accumulator_per_output() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(-8, 8, (5, 12)).astype(float)
    w = rng.standard_normal((12, 3))
    mac = MAC(act="int8", weight="binary<scale=channel>", acc="fx<16,0>", output="fp32")
    alpha = np.abs(w).mean(axis=0)
    want = emu.quantize((a @ np.where(w >= 0, 1.0, -1.0)) * alpha, "fp32")
    assert np.allclose(emu.matmul(a, w, mac), want, rtol=2**-23, atol=0)


def test_pow2_weights_are_shifts() -> None:
    a = np.array([[1.5, -2.25, 0.125]])
    w = np.array([[0.5], [0.25], [1.0]])
    y = emu.matmul(a, w, "pow2 weights -> shift-and-add")
    assert y[0, 0] == 1.5 * 0.5 - 2.25 * 0.25 + 0.125


# --- golden results -------------------------------------------------------------------------------

GOLDEN_CONFIGS = {
    "int8_int32": emu.mac_preset("int8 x int8 -> int32"),
    "int8_sat12_pairwise": MAC(act="int8", weight="int8", acc="fx<12,0>", order="pairwise"),
    "fx17_fx214_floor_lanes4": MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<4,10>", order="lanes(4)",
                                   acc_overflow="wrap"),
    "gupta_exact": emu.mac_preset("fx<2,14> x fx<2,14> -> exact -> fx<2,14>"),
    "e4m3_fp16_blocks8": MAC(act="e4m3", weight="e4m3", acc="fp16", order="blocks(8)"),
    "bf16_fp32": emu.mac_preset("bf16 x bf16 -> fp32"),
    "fp16_fp16": emu.mac_preset("fp16 x fp16 -> fp16"),
    "pow2_shift": emu.mac_preset("pow2 weights -> shift-and-add"),
    "product_fx18_nearest": MAC(act="fx<2,8>", weight="fx<2,8>", product="fx<3,8>", acc="fx<8,8>",
                                output="fx<4,4>"),
}


def _golden_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261124)
    return rng.standard_normal((6, 33)) * 2, rng.standard_normal((33, 5)), rng.standard_normal(5)


def test_golden_results(update_golden: bool) -> None:
    a, w, b = _golden_inputs()
    got = {name: emu.matmul(a, w, mac, b) for name, mac in GOLDEN_CONFIGS.items()}
    if update_golden or not GOLDEN.exists():
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        np.savez(GOLDEN, **got)
        if not update_golden:
            pytest.fail(f"{GOLDEN} was missing and has been written; check it in and rerun")
    want = np.load(GOLDEN)
    assert set(want.files) == set(got), "golden configurations changed: rerun with --update-golden on purpose"
    for name, y in got.items():
        diff = np.flatnonzero(~((y == want[name]) | (np.isnan(y) & np.isnan(want[name]))))
        assert diff.size == 0, (
            f"{name}: {diff.size} outputs differ from {GOLDEN.name}, e.g. index {diff[:3]}:"
            f" got {y.reshape(-1)[diff[:3]]}, golden {want[name].reshape(-1)[diff[:3]]}"
        )


@pytest.mark.parametrize("order", ["blocks(1)", "blocks(2)", "sequential"])
@pytest.mark.parametrize("rounding", ["nearest_even", "floor"])
def test_block_sums_keep_negative_zero(order: str, rounding: str) -> None:
    """A block of -0 products sums to -0 (the identity of IEEE addition is -0), so blocks(1), which takes
    sequential's steps, gives sequential's -0; the exact reference agrees."""
    from emu._ref.mac import mac_dot_ref
    m = MAC(act="fp16", weight="fp16", acc="fp16", order=order, acc_rounding=rounding)
    for a, w, c in (([1.0, 2.0], [-0.0, -0.0], -0.0), ([1.0], [-0.0], None)):
        y, codes = emu.matmul([a], np.array(w)[:, None], m, c=None if c is None else [[c]], return_codes=True)
        want_neg = c is not None or rounding == "floor"  # 0 + -0 is -0 only when rounding toward -inf
        assert int(codes[0, 0]) == (0x8000 if want_neg else 0), (a, w, c)
        ref = mac_dot_ref(a, w, m, bias=c)
        assert np.signbit(ref.value) == want_neg


@pytest.mark.parametrize("c", [1.0, np.ones(2), np.ones((0, 2))])
def test_addend_with_no_output_rows(c: object) -> None:
    """An addend with no output rows gives an empty result, as a bias does (it raised IndexError)."""
    m = emu.mac_preset("int8 x int8 -> int32")
    assert emu.matmul(np.zeros((0, 3)), np.ones((3, 2)), m, c=c).shape == (0, 2)
    assert emu.matmul(np.zeros((0, 3)), np.ones((3, 2)), "bf16 x bf16 -> fp32", c=c).shape == (0, 2)
    assert emu.matmul(np.zeros((0, 2, 3)), np.ones((0, 3, 2)), m, c=1.0).shape == (0, 2, 2)
    assert emu.conv2d(np.zeros((0, 1, 4, 4)), np.ones((2, 1, 3, 3)), m, c=1.0).shape == (0, 2, 2, 2)


def test_conv2d_refuses_an_unknown_keyword() -> None:
    m = emu.mac_preset("int8 x int8 -> int32")
    with pytest.raises(TypeError, match="conv2d.*dilation"):
        emu.conv2d(np.ones((1, 1, 4, 4)), np.ones((2, 1, 3, 3)), m, dilation=2)


def test_exact_accumulator_refuses_a_start_value_it_cannot_hold() -> None:
    """A bias or addend outside the exact accumulator's 62-bit register is refused (it was saturated, and
    the 'exact' sum was wrong); one inside it is added exactly."""
    from emu._ref.mac import mac_dot_ref
    m = MAC(act="fx<2,14>", weight="fx<2,14>", acc="exact")
    with pytest.raises(ValueError, match="acc=exact holds sums in fx<34,28>.*start value"):
        emu.matmul([[0.5]], [[0.5]], m, bias=[1e10])
    with pytest.raises(ValueError, match="acc=exact holds sums in fx<34,28>.*start value"):
        emu.matmul([[0.5]], [[0.5]], m, c=[[-2.0**40]])
    with pytest.raises(ValueError, match="acc=exact holds sums in fx<34,28>"):
        mac_dot_ref([0.5], [0.5], m, bias=1e10)
    assert emu.matmul([[0.5]], [[0.5]], m, bias=[1e3])[0, 0] == 1000.25


@pytest.mark.parametrize(("fmt", "x", "w"), [("pow2<-40,-30>", 2.0**-35, 2.0**-36),
                                            ("fx<-30,33>", 3 * 2.0**-33, 2.0**-33)])
def test_exact_accumulator_on_a_grid_finer_than_61_bits(fmt: str, x: float, w: float) -> None:
    """Products with more than 61 fraction bits: the exact register's radix point lies left of its word
    (every call raised, building an illegal grid format)."""
    from emu._ref.mac import mac_dot_ref
    m = MAC(act=fmt, weight=fmt, acc="exact")
    y = emu.matmul([[x, x]], [[w], [w]], m)[0, 0]
    assert y == 2 * x * w
    assert mac_dot_ref([x, x], [w, w], m).value == 2 * x * w


def test_integers_float64_cannot_hold_are_refused_by_name() -> None:
    """A MAC computes from float64 values: an int64 operand, bias or addend beyond 2^53 that float64 would
    round is refused naming it (its low bits were dropped silently); 2^53 + 2 and small ints pass."""
    m = MAC(act="fx<56,0>", weight="fx<6,0>", acc="fx<62,0>")
    with pytest.raises(ValueError, match=r"matmul: a holds integers that float64 cannot hold exactly"):
        emu.matmul(np.array([[2**53 + 1]]), np.array([[1]]), m)
    with pytest.raises(ValueError, match=r"matmul: bias holds integers .* 1152921504606846977"):
        emu.matmul([[1.0]], [[1.0]], m, bias=np.array([2**60 + 1]))
    with pytest.raises(ValueError, match=r"matmul: c holds integers"):
        emu.matmul([[1.0]], [[1.0]], m, c=np.array([[2**60 + 1]]))
    with pytest.raises(ValueError, match=r"conv2d: x holds integers"):
        emu.conv2d(np.full((1, 1, 2, 2), 2**53 + 1), np.ones((1, 1, 1, 1)), m)
    y, codes = emu.matmul(np.array([[2**53 + 2]]), np.array([[1]]), m, return_codes=True)
    assert int(codes[0, 0]) == 2**53 + 2
    assert emu.matmul(np.array([[3]], np.int8), np.array([[2]], np.int64), m)[0, 0] == 6


def test_operand_refusals_name_the_datapath_and_offer_no_keyword_it_lacks() -> None:
    """A NaN operand, bias or addend in a format without NaN, and an operand overflowing under
    input_overflow="error", are refused naming matmul and the operand's role; the message does not
    suggest quantize's nan=0, which matmul does not take."""
    m = MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<8,8>")
    cases = [(lambda: emu.matmul([[np.nan]], [[1.0]], m), r"^matmul \(act\): x holds 1 NaN value\(s\)"),
             (lambda: emu.matmul([[1.0]], [[np.nan]], m), r"^matmul \(weight\): x holds 1 NaN"),
             (lambda: emu.matmul([[1.0]], [[1.0]], m, bias=[np.nan]), r"^matmul \(bias, c\): x holds 1 NaN"),
             (lambda: emu.matmul([[1.0]], [[1.0]], m, c=[[np.nan]]), r"^matmul \(bias, c\): x holds 1 NaN"),
             (lambda: emu.conv2d(np.full((1, 1, 2, 2), np.nan), np.ones((1, 1, 1, 1)), m),
              r"^matmul \(act\): x holds 4 NaN"),
             (lambda: emu.matmul([[np.nan]], [[1.0]], MAC(act="fx<4,4>", weight="fx<4,4>", acc="fp32")),
              r"^matmul \(act\): x holds 1 NaN value\(s\) \(first at index \(0, 0\)\) and fx<4,4> has no"
              r" NaN$")]
    for call, message in cases:
        with pytest.raises(ValueError, match=message) as info:
            call()
        assert "nan=0" not in str(info.value)
    strict = MAC(act="fx<4,4>", weight="fx<4,4>", acc="fx<8,8>", input_overflow="error")
    with pytest.raises(OverflowError, match=r"^matmul \(act\): 1 of 1 value\(s\) overflow fx<4,4>"):
        emu.matmul([[100.0]], [[1.0]], strict)


def test_settings_no_datapath_step_uses_are_refused_when_the_mac_is_built() -> None:
    """TTQ's two scales are no operand scale (every call refused it); binary and ternary operands convert
    as their formats say, so input_rounding and input_overflow have nothing to act on there (they were
    accepted and ignored); an integer stride or padding of conv2d is refused by name."""
    for field in ("act", "weight"):
        with pytest.raises(ValueError, match=rf"^MAC: {field}=ttq: TTQ's two scales"):
            MAC(**{"act": "fx<4,4>", "weight": "fx<4,4>", field: "ttq"}, acc="fx<12,4>")
    with pytest.raises(ValueError, match=r"^MAC: input_rounding=floor does not apply here \(binary and"):
        MAC(act="binary", weight="ternary", acc="fx<16,0>", input_rounding="floor")
    with pytest.raises(ValueError, match=r"^MAC: input_overflow=error does not apply here \(binary and"):
        MAC(act="binary", weight="binary", acc="fx<16,0>", input_overflow="error")
    mixed = MAC(act="fx<4,4>", weight="binary", acc="fx<16,4>", input_rounding="floor")  # rounds the act
    assert emu.matmul([[0.3]], [[1.0]], mixed)[0, 0] == 0.25
    for kw, shown in (({"stride": 1.5}, "stride=1.5"), ({"padding": None}, "padding=None")):
        with pytest.raises(TypeError, match=rf"^conv2d: {shown} must be an int or a pair of ints$"):
            emu.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2)), "int8 x int8 -> int32", **kw)
