"""The MAC kernels against the slow literal reference `emu._ref.mac`, bit for bit.

Seeded random datapaths over every operand family, fixed (wrap, saturate),
exact and float accumulators, product formats, alignment modes, all four
orders, biases, output conversions and scaled binary weights, with operands
drawn to overflow often (8- and 12-bit accumulators among them). Values (with
the sign of zero), codes and the product, accumulator and output overflow
counts per output channel must all agree. A few hand-computed cases pin the
reference itself.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu
from emu import MAC, get_format
from emu._ref.mac import mac_dot_ref

FIXED_OPERANDS = ["int8", "fx<1,7>", "fx<2,6>", "ufx<0,8>", "fx<4,4>", "fx<3,5>", "pow2<-6,1>", "binary",
                  "e4m3", "ufx<2,2>"]
FLOAT_OPERANDS = ["e4m3", "e5m2", "fp16", "bf16", "fp<4,3,none>", "fx<2,6>", "e4m3fnuz"]
ORDERS = ["sequential", "pairwise", "lanes(2)", "lanes(5)", "blocks(3)", "blocks(8)"]
MODES = ["nearest_even", "floor", "nearest_away", "toward_zero", "ceil", "nearest_up", "nearest_down"]


def _fixed_mac(rng: np.random.Generator) -> MAC:
    act, weight = (FIXED_OPERANDS[i] for i in rng.integers(len(FIXED_OPERANDS), size=2))
    kw: dict = dict(act=act, weight=weight, order=ORDERS[rng.integers(len(ORDERS))])
    if rng.random() < 0.15:
        kw["acc"] = "exact"
        if rng.random() < 0.5:
            kw["output"] = ["fx<4,8>", "e4m3", "fp16", "fx<8,0>"][rng.integers(4)]
    else:
        wl = int(rng.choice([8, 12, 16, 20, 32]))
        fl = int(rng.integers(0, wl - 1))
        kw["acc"] = f"{'u' if rng.random() < 0.1 else ''}fx<{wl - fl},{fl}>"
        kw["acc_overflow"] = ["wrap", "saturate"][rng.integers(2)]
        kw["align_rounding"] = MODES[rng.integers(len(MODES))]
        if rng.random() < 0.3:
            kw["output"] = ["fx<2,6>", "fx<4,4>", "e5m2", "ufx<4,4>"][rng.integers(4)]
            kw["output_rounding"] = MODES[rng.integers(len(MODES))]
    if rng.random() < 0.25:
        pw = int(rng.integers(4, 14))
        pf = int(rng.integers(0, pw))
        kw["product"] = f"fx<{pw - pf},{pf}>"
        kw["product_rounding"] = MODES[rng.integers(len(MODES))]
        kw["product_overflow"] = ["wrap", "saturate"][rng.integers(2)]
    return MAC(**kw)


def _float_mac(rng: np.random.Generator) -> MAC:
    act, weight = (FLOAT_OPERANDS[i] for i in rng.integers(len(FLOAT_OPERANDS), size=2))
    acc = ["fp16", "bf16", "fp32", "e5m2", "fp<6,9>", "fp<5,4,ftz>", "e4m3fnuz"][rng.integers(7)]
    kw: dict = dict(act=act, weight=weight, acc=acc, order=ORDERS[rng.integers(len(ORDERS))],
                    acc_rounding=MODES[rng.integers(len(MODES))])
    f = emu.format(acc)
    kw["acc_overflow"] = ["saturate", "inf" if f.has_inf else "saturate"][rng.integers(2)]
    r = rng.random()
    if r < 0.3:
        kw["fused"] = True
    elif r < 0.5:
        kw["product"] = ["fp16", "bf16", "e5m2", "fp32"][rng.integers(4)]
        kw["product_rounding"] = MODES[rng.integers(len(MODES))]
    if rng.random() < 0.3:
        kw["output"] = ["e4m3", "fp16", "fx<4,8>"][rng.integers(3)]
    return MAC(**kw)


def _draw(fmt: emu.Format, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    top = max(abs(fmt.max), abs(fmt.min), 1.0)
    x = rng.uniform(-1.0, 1.0, shape) * top
    if rng.random() < 0.4:  # extremes, to overflow accumulators
        x = np.where(rng.random(shape) < 0.5, fmt.max, fmt.min) * rng.choice([1.0, 0.5], shape)
    if rng.random() < 0.2:
        x = x * 2.0 ** rng.integers(-12, 0, shape)  # small values: alignment and underflow
    return x


def _bitwise_equal(a: float, b: object) -> bool:
    b = float(b)  # type: ignore[arg-type]
    if np.isnan(a) or np.isnan(b):
        return bool(np.isnan(a) and np.isnan(b))
    return a == b and np.signbit(a) == np.signbit(b)


def _compare(mac: MAC, a: np.ndarray, w: np.ndarray, bias: np.ndarray | None, seqonly: bool = False) -> None:
    m, _ = a.shape
    n = w.shape[1]
    try:
        refs = {(i, j): mac_dot_ref(list(a[i]), list(w[:, j]), mac, None if bias is None else float(bias[j]))
                for i in range(m) for j in range(n)}
    except ValueError as e:  # a NaN reached a format without NaN: the datapath must refuse it too
        pytest.ExceptionInfo.from_exception(e).match("NaN")
        with pytest.raises(ValueError, match="NaN"):
            emu.matmul(a, w, mac, bias, sequential=seqonly)
        return
    y, codes, st = emu.matmul(a, w, mac, bias, return_codes=True, return_stats=True, sequential=seqonly)
    p_cnt = np.zeros(n, int)
    a_cnt = np.zeros(n, int)
    o_cnt = np.zeros(n, int)
    for i in range(m):
        for j in range(n):
            ref = refs[i, j]
            assert _bitwise_equal(y[i, j], ref.value), (str(mac), i, j, y[i, j], ref.value)
            assert int(codes[i, j]) == ref.code, (str(mac), i, j, int(codes[i, j]), ref.code)
            p_cnt[j] += ref.product_overflows
            a_cnt[j] += ref.acc_overflows
            o_cnt[j] += ref.output_overflow
    assert np.array_equal(st.product_per_channel, p_cnt), (str(mac), st.product_per_channel, p_cnt)
    assert np.array_equal(st.acc_per_channel, a_cnt), (str(mac), st.acc_per_channel, a_cnt)
    assert np.array_equal(st.output_per_channel, o_cnt), (str(mac), st.output_per_channel, o_cnt)


@pytest.mark.parametrize("seed", range(12))
def test_fixed_and_exact_datapaths_match_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    done = 0
    while done < 10:
        try:
            mac = _fixed_mac(rng)
        except ValueError:
            continue
        m, k, n = int(rng.integers(1, 4)), int(rng.integers(0, 20)), int(rng.integers(1, 4))
        a, w = _draw(mac.act, (m, k), rng), _draw(mac.weight, (k, n), rng)
        bias = rng.uniform(-3, 3, n) if rng.random() < 0.5 else None
        try:
            _compare(mac, a, w, bias)
        except ValueError as e:
            if "bits" in str(e):  # a datapath too wide to emulate is refused, by name
                continue
            raise
        _compare(mac, a, w, bias, seqonly=True)
        done += 1


@pytest.mark.parametrize("kw", [
    # products shifted down by 64 bits and more into the accumulator (int64 shifts stop at 63)
    dict(act="fx<1,30>", weight="fx<1,30>", acc="fx<54,-4>"),
    dict(act="fx<1,30>", weight="fx<1,30>", acc="fx<40,-10>", order="pairwise"),
    dict(act="ufx<0,31>", weight="ufx<0,31>", acc="fx<50,-8>"),
    dict(act="fx<1,30>", weight="fx<1,30>", acc="fx<54,-4>", product="fx<60,-4>"),
    # accumulators wider than float64's 53 bits, their start values saturating (every product bit kept: no
    # alignment rounding, whose mode a MAC then refuses)
    dict(act="int8", weight="int8", acc="fx<56,0>", output="fx<62,0>"),
    dict(act="binary", weight="binary", acc="fx<3,52>", output="fx<8,8>"),
    dict(act="int8", weight="int8", acc="fx<60,0>", output="fp32"),
])
@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_wide_shifts_and_wide_accumulators_match_the_reference(kw: dict, overflow: str) -> None:
    rng = np.random.default_rng(len(str(kw)))
    rounds = "product" in kw or get_format(kw["acc"]).frac_bits < 0
    for mode in MODES if rounds else [None]:
        field = "product_rounding" if "product" in kw else "align_rounding"
        extra = {} if mode is None else {field: mode}
        mac = MAC(**kw, acc_overflow=overflow, **extra)
        a, w = _draw(mac.act, (4, 3), rng), _draw(mac.weight, (3, 2), rng)
        for bias in (None, np.array([1e30, -1e30]), rng.uniform(-3, 3, 2)):
            _compare(mac, a, w, bias)
            _compare(mac, a, w, bias, seqonly=True)


@pytest.mark.parametrize("seed", range(12))
def test_float_datapaths_match_the_reference(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    done = 0
    while done < 10:
        try:
            mac = _float_mac(rng)
        except ValueError:
            continue
        m, k, n = int(rng.integers(1, 4)), int(rng.integers(0, 20)), int(rng.integers(1, 4))
        a, w = _draw(mac.act, (m, k), rng), _draw(mac.weight, (k, n), rng)
        bias = rng.uniform(-3, 3, n) if rng.random() < 0.5 else None
        _compare(mac, a, w, bias)
        done += 1


@st.composite
def _mac_and_operands(draw: st.DrawFn) -> tuple[MAC, np.ndarray, np.ndarray, np.ndarray | None]:
    """A fixed or float datapath and operands on (or off) its operand grids."""
    if draw(st.booleans()):
        wl = draw(st.integers(4, 24))
        kw: dict = dict(act=draw(st.sampled_from(FIXED_OPERANDS)),
                        weight=draw(st.sampled_from(FIXED_OPERANDS)),
                        acc=f"fx<{wl - (fl := draw(st.integers(0, wl - 1)))},{fl}>",
                        acc_overflow=draw(st.sampled_from(["wrap", "saturate"])),
                        align_rounding=draw(st.sampled_from(MODES)))
    else:
        kw = dict(act=draw(st.sampled_from(FLOAT_OPERANDS)), weight=draw(st.sampled_from(FLOAT_OPERANDS)),
                  acc=draw(st.sampled_from(["fp16", "bf16", "e5m2", "fp<5,4,ftz>"])),
                  acc_rounding=draw(st.sampled_from(MODES)), fused=draw(st.booleans()))
    kw["order"] = draw(st.sampled_from(ORDERS))
    try:
        mac = MAC(**kw)
    except ValueError:
        mac = MAC(act="int8", weight="int8", acc="fx<12,0>", order=kw["order"])
    m, k, n = draw(st.integers(1, 2)), draw(st.integers(0, 12)), draw(st.integers(1, 2))
    real = st.floats(-300.0, 300.0, allow_nan=False)
    a = np.array(draw(st.lists(real, min_size=m * k, max_size=m * k)), float).reshape(m, k)
    w = np.array(draw(st.lists(real, min_size=k * n, max_size=k * n)), float).reshape(k, n)
    bias = np.array(draw(st.lists(st.floats(-8, 8), min_size=n, max_size=n))) if draw(st.booleans()) else None
    return mac, a, w, bias


@settings(max_examples=150)
@given(_mac_and_operands())
def test_hypothesis_datapaths_match_the_reference(case: tuple) -> None:
    mac, a, w, bias = case
    try:
        _compare(mac, a, w, bias)
    except ValueError as e:
        if "bits" not in str(e):
            raise


def test_native_binary32_kernel_with_overflows_matches_the_reference() -> None:
    # bf16 x bf16 -> fp32 in sequential order runs binary32 arithmetic directly; products of
    # 1e30-sized operands overflow to inf, inf - inf gives NaN, and both are counted as the reference does
    rng = np.random.default_rng(7)
    mac = MAC(act="bf16", weight="bf16", acc="fp32")
    for _ in range(6):
        a = rng.standard_normal((3, 9)) * np.where(rng.random((3, 9)) < 0.2, 1e30, 1.0)
        w = rng.standard_normal((9, 4)) * np.where(rng.random((9, 4)) < 0.2, 1e30, 1.0)
        _compare(mac, a, w, rng.standard_normal(4))
        _compare(mac, a, w, None)
        _compare(mac, rng.standard_normal((20, 9)), w[:, :3], None)  # few columns: chains run down them
    a, w = np.full((2, 40), 1.5e38), np.full((40, 2), 1.0)  # sums overflow without any product overflowing
    _compare(mac, a, w, None)
    assert emu.matmul(a, w, mac, return_stats=True)[1].acc_overflow == 4


@pytest.mark.parametrize("order", ["blocks(3)", "blocks(8)", "lanes(4)", "pairwise", "tree(4)"])
def test_binary32_accumulator_adds_each_group_with_one_rounding(order: str) -> None:
    """Under every order the native binary32 settings (fp32, nearest even, overflow to inf) run, a group's
    sum enters the accumulator with one rounding: a block's exact sum is not cast to binary32 first. In
    the hand case the second block's exact sum 256 + 2^-16 + 2^-18 cancels -256 exactly (casting it first
    gave 2^-15); random cancelling data against the reference."""
    mac = MAC(act="e4m3", weight="e4m3", acc="fp32", order=order)
    a, w = [-16.0, 0, 0, 16.0, 2.0**-8, 2.0**-9], [16.0, 0, 0, 16.0, 2.0**-8, 2.0**-9]
    if order == "blocks(3)":
        assert emu.dot(a, w, mac) == 2.0**-16 + 2.0**-18
    rng = np.random.default_rng(11)
    for _ in range(4):
        x = rng.standard_normal((4, 24)) * np.exp2(rng.integers(-8, 8, (4, 24)))
        y = rng.standard_normal((24, 3))
        y[12:] = -y[:12] * np.exp2(rng.integers(-2, 3, (12, 3)))  # cancellation across blocks
        _compare(mac, x, y, rng.standard_normal(3))


def test_reference_hand_cases() -> None:
    # int8 x int8 into a signed 8-bit accumulator: 100 + 100 saturates at 127, then -100 -> 27
    mac = MAC(act="int8", weight="int8", acc="fx<8,0>", acc_overflow="saturate")
    r = mac_dot_ref([10, 10, -10], [10, 10, 10], mac)
    assert r.value == 27
    assert r.acc_overflows == 1
    r = mac_dot_ref([10, 10, -10], [10, 10, 10],
                    MAC(act="int8", weight="int8", acc="fx<8,0>", acc_overflow="wrap"))
    assert r.value == 100
    assert r.acc_overflows == 2
    # alignment: fx<1,7> x fx<1,7> products have 14 fraction bits; a fx<4,8> accumulator floors them
    mac = MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<4,8>")
    r = mac_dot_ref([0.5078125], [0.5078125], mac)  # (65/128)^2 = 4225/16384 -> floor to 66/256
    assert r.value == Fraction(66, 256)
    # pairwise: the bias enters last
    mac = MAC(act="int8", weight="int8", acc="fx<8,0>", order="pairwise")
    assert mac_dot_ref([100, 100], [1, 1], mac, bias=-100).value == 27  # (100+100 -> 127) - 100
    mac = MAC(act="int8", weight="int8", acc="fx<8,0>")
    assert mac_dot_ref([100, 100], [1, 1], mac, bias=-100).value == 100
    # fp16: 2048 + 1 is lost, an FMA keeps a product's low bits
    mac = MAC(act="fp16", weight="fp16", acc="fp16")
    assert mac_dot_ref([2048, 1], [1, 1], mac).value == 2048
    x = 1 + 2.0**-10
    assert mac_dot_ref([x], [x], MAC(act="fp16", weight="fp16", acc="fp16", fused=True),
                       bias=-(1 + 2.0**-9)).value == Fraction(1, 2**20)
    # an exact zero sum is +0, but -0 under rounding toward -inf (IEEE 754), in kernel and reference alike
    for mode, neg in (("nearest_even", False), ("floor", True), ("ceil", False)):
        mac = MAC(act="fp16", weight="fp16", acc="fp16", acc_rounding=mode)
        y = emu.matmul([[1.0, -1.0]], [[1.0], [1.0]], mac)
        assert y[0, 0] == 0, mode
        assert bool(np.signbit(y[0, 0])) == neg, mode
        _compare(mac, np.array([[1.0, -1.0], [0.0, 0.0], [-0.0, -0.0]]), np.array([[1.0], [1.0]]), None)
    # exact accumulation, then one rounding into the output format
    mac = emu.mac_preset("fx<2,14> x fx<2,14> -> exact -> fx<2,14>")
    r = mac_dot_ref([1.5, 1.5], [1.0, -0.75], mac)
    assert r.value == Fraction(3, 8)
    assert not r.output_overflow
    # binary x binary: 2 popcount(xnor) - K
    a, w = [1, -1, 1, 1], [1, 1, -1, 1]
    assert mac_dot_ref(a, w, emu.mac_preset("binary x binary -> popcount")).value == 0


@pytest.mark.parametrize("mac", [MAC(act="int8", weight="int8", acc="fx<16,0>", output="int8"),
                                 MAC(act="fx<4,4>", weight="fx<4,4>", acc="exact"), "int8 x int8 -> int32",
                                 "e4m3 x e4m3 -> fp32", "fp16 x fp16 -> fp32"])
def test_empty_sizes_give_empty_results(mac: object) -> None:
    """No output column, no row, no term, no output channel, no image: empty results of the right shapes,
    zero counts per output channel (K = 0: every output is its start value)."""
    for (m, k, n) in ((3, 4, 0), (0, 4, 2), (0, 0, 0), (2, 0, 3)):
        y, st = emu.matmul(np.ones((m, k)), np.ones((k, n)), mac, return_stats=True)
        assert y.shape == (m, n)
        assert st.acc_per_channel.shape == (n,)
        assert st.acc_overflow == 0
        if k == 0:
            assert np.array_equal(y, np.zeros((m, n)))
    for x_shape, w_shape, out in (((1, 2, 4, 4), (0, 2, 3, 3), (1, 0, 2, 2)), ((0, 2, 4, 4), (3, 2, 3, 3),
                                                                             (0, 3, 2, 2))):
        y, st = emu.conv2d(np.ones(x_shape), np.ones(w_shape), mac, return_stats=True)
        assert y.shape == out
        assert st.acc_per_channel.shape == (out[1],)
