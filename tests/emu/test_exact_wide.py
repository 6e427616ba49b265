"""The wide exact accumulator (``acc="exact"`` where integer products need more than 62 bits: fp16 x fp16,
bf16 x bf16, e5m2 x e5m2, fp32 x fp32) against the exact reference `emu._ref.mac.mac_dot_ref`, bit for bit:
every e5m2 x e5m2 code pair as a single product, seeded random dot products of K = 1 .. 300 over the
formats' whole ranges in every deterministic output rounding and overflow mode, hypothesis cases, signed
zeros, non-finite operands, the thread count, the calls (`dot`, `matmul`, `conv2d`) and the refusals."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu
from emu import MAC, get_format
from emu import _exact_kernels as XK
from emu._ref.mac import mac_dot_ref

#: (operand format, output format): the pairs the 62-bit integer path refused
CASES = [("fp16", "fp32"), ("bf16", "fp32"), ("bf16", "bf16"), ("fp32", "fp32"), ("e5m2", "fp16")]
MODES = [str(m) for m in emu.Rounding if m != emu.Rounding.STOCHASTIC]
ORDERS = ["sequential", "pairwise", "lanes(3)", "blocks(5)"]


def _overflows(fmt: str) -> list[str]:
    """The output overflow modes that do not raise."""
    return [str(o) for o in get_format(fmt).overflow_modes if o != emu.Overflow.ERROR]


def _same(x: float, y: float) -> bool:
    """Equal values with the sign of zero, or both NaN."""
    return (math.isnan(x) and math.isnan(y)) or (x == y and math.copysign(1, x) == math.copysign(1, y))


def _values(fmt: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """n values of ``fmt`` across its range: any code (subnormals and the largest values among them), values
    near 1, the smallest subnormals, zeros of both signs and +-max."""
    f = get_format(fmt)
    full = emu.decode(rng.integers(0, 1 << f.bits, n, dtype=np.uint64), f)
    full = np.where(np.isfinite(full), full, f.max)
    band = emu.quantize(rng.standard_normal(n) * 2.0 ** rng.integers(-4, 5, n), f)
    tiny = rng.choice([-1.0, 1.0], n) * f.smallest_subnormal * rng.integers(1, 8, n)
    special = rng.choice([0.0, -0.0, f.max, -f.max, 1.0], n)
    pick = rng.integers(0, 4, n)
    return np.choose(pick, [full, band, tiny, special])


def _check_against_ref(a: np.ndarray, w: np.ndarray, m: MAC, bias: np.ndarray | None) -> None:
    """matmul(a, w, m, bias) equals the reference per output: value (with the zero's sign), code and the
    output overflow count per channel."""
    y, codes, stats = emu.matmul(a, w, m, bias, return_codes=True, return_stats=True)
    assert stats.path == "exact-wide"
    assert stats.acc_overflow == stats.product_overflow == 0
    ovf = np.zeros(w.shape[1], np.int64)
    for i in range(a.shape[0]):
        for j in range(w.shape[1]):
            r = mac_dot_ref(list(a[i]), list(w[:, j]), m, None if bias is None else float(bias[j]))
            assert int(codes[i, j]) == r.code, (i, j, y[i, j], r.value)
            assert _same(float(y[i, j]), float(r.value)), (i, j)
            ovf[j] += r.output_overflow
    assert stats.output_per_channel.tolist() == ovf.tolist()


# --- every e5m2 code pair as one product ----------------------------------------------------------------


@pytest.mark.parametrize("out", ["e4m3", "fp16"])
@pytest.mark.parametrize("bias", [None, -0.0, 0.3, -1000.0])
def test_every_e5m2_code_pair_as_a_single_product(out: str, bias: float | None) -> None:
    """All 256 x 256 code pairs (infinities saturate, NaNs propagate) as K = 1 dot products. The reference
    of a pair depends only on its product, so it runs once per distinct product (about 2000)."""
    vals = emu.decode(np.arange(256, dtype=np.uint64), "e5m2")
    m = MAC(act="e5m2", weight="e5m2", acc="exact", output=out)
    b = None if bias is None else np.full(256, bias)
    y, codes, stats = emu.matmul(vals[:, None], vals[None, :], m, b, return_codes=True, return_stats=True)
    assert stats.input_overflow == 4  # +-inf in a and in w, saturated to +-57344
    q = emu.quantize(vals, "e5m2", overflow="saturate")  # the operands the datapath multiplies
    memo: dict[bytes, tuple[int, float, bool]] = {}
    ovf = np.zeros(256, np.int64)
    for i in range(256):
        for j in range(256):
            p = float(q[i]) * float(q[j])
            key = b"nan" if math.isnan(p) else np.float64(p).tobytes()
            if key not in memo:
                r = mac_dot_ref([float(vals[i])], [float(vals[j])], m, bias)
                memo[key] = (r.code, float(r.value), r.output_overflow)
            code, value, flag = memo[key]
            assert int(codes[i, j]) == code, (i, j)
            assert _same(float(y[i, j]), value), (i, j)
            ovf[j] += flag
    assert stats.output_per_channel.tolist() == ovf.tolist()


# --- seeded random dot products ------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "out"), CASES)
def test_random_dots_equal_the_exact_reference_in_every_mode(fmt: str, out: str) -> None:
    rng = np.random.default_rng(100 + CASES.index((fmt, out)))
    for mode, overflow, _ in itertools.product(MODES, _overflows(out), range(2)):
        K = int(rng.choice([1, 2, 7, int(rng.integers(1, 301))]))
        a, w = _values(fmt, rng, 2 * K).reshape(2, K), _values(fmt, rng, K * 2).reshape(K, 2)
        if rng.random() < 0.3 and K % 2 == 0:  # the second half negates the first: an exact zero sum
            a[:, K // 2:], w[K // 2:] = -a[:, :K // 2], w[:K // 2]
        bias = None if rng.random() < 0.3 else _values(fmt, rng, 2) * 2.0 ** rng.integers(-30, 30)
        m = MAC(act=fmt, weight=fmt, acc="exact", output=out, output_rounding=mode, output_overflow=overflow,
                order=ORDERS[rng.integers(len(ORDERS))])
        _check_against_ref(a, w, m, bias)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_hypothesis_dots_equal_the_exact_reference(data: st.DataObject) -> None:
    fmt, out = data.draw(st.sampled_from(CASES))
    f = get_format(fmt)
    K = data.draw(st.integers(1, 300))
    codes = data.draw(st.lists(st.integers(0, (1 << f.bits) - 1), min_size=2 * K, max_size=2 * K))
    v = emu.decode(np.array(codes, np.uint64), f)
    # infinities saturate (counted), NaNs propagate (every output here has NaN)
    bias = data.draw(st.one_of(st.none(), st.floats(-1e30, 1e30)))
    m = MAC(act=fmt, weight=fmt, acc="exact", output=out, output_rounding=data.draw(st.sampled_from(MODES)),
            output_overflow=data.draw(st.sampled_from(_overflows(out))))
    _check_against_ref(v[:K][None, :], v[K:][:, None], m, None if bias is None else np.array([bias]))


@pytest.mark.parametrize(("act", "weight", "out"), [
    ("fx<8,4>", "fp32", "fp32"), ("pow2<-40,10>", "bf16", "fp16"), ("ufx<2,10>", "bf16", "e4m3")])
def test_fixed_and_pow2_operands_with_floats_take_the_wide_path(act: str, weight: str, out: str) -> None:
    rng = np.random.default_rng(len(act) + len(out))
    a = rng.standard_normal((3, 50)) * 2.0 ** rng.integers(-12, 4, (3, 50))
    w = _values(weight, rng, 50 * 2).reshape(50, 2)
    m = MAC(act=act, weight=weight, acc="exact", output=out, output_rounding="toward_zero")
    assert m.wide_exact
    _check_against_ref(a, w, m, rng.standard_normal(2))


# --- exactness, orders, zeros, non-finite values ------------------------------------------------------


def test_the_sum_is_exact_where_float_sums_lose_it() -> None:
    """A large value, many tiny ones and its negation: float64 and float32 sums lose the tiny ones."""
    a = np.array([2.0**100] + [2.0**-100] * 200 + [-(2.0**100)])
    w = np.ones(a.size)
    m = MAC(act="fp32", weight="fp32", acc="exact", output="fp32")
    assert float(emu.dot(a, w, m)) == 200 * 2.0**-100
    assert float(np.cumsum(a * w)[-1]) == 0.0  # float64, one addition at a time
    assert float(emu.dot(a, w, "bf16 x bf16 -> fp32")) == 0.0
    # fp16: 2^15 x 2^15 + 1 - 2^15 x 2^15 is 1 exactly; a float32 accumulator gives 0
    x, y = [2.0**15, 1.0, -(2.0**15)], [2.0**15, 1.0, 2.0**15]
    assert float(emu.dot(x, y, MAC(act="fp16", weight="fp16", acc="exact", output="fp32"))) == 1.0
    assert float(emu.dot(x, y, "fp16 x fp16 -> fp32")) == 0.0
    # just above a binary32 tie: 1 + 2^-24 + 2^-60 rounds up; the float64 sum (a tie) rounds to even
    t = [1.0, 2.0**-24, 2.0**-60]
    assert float(emu.dot(t, [1.0] * 3, m)) == 1 + 2.0**-23
    assert float(emu.quantize(sum(t), "fp32")) == 1.0


def test_every_order_gives_the_same_bits() -> None:
    rng = np.random.default_rng(5)
    a, w = _values("bf16", rng, 6 * 200).reshape(6, 200), _values("bf16", rng, 200 * 5).reshape(200, 5)
    outs = [emu.matmul(a, w, MAC(act="bf16", weight="bf16", acc="exact", output="bf16", order=o),
                       return_codes=True)[1] for o in ORDERS]
    for codes in outs[1:]:
        assert np.array_equal(codes, outs[0])


@pytest.mark.parametrize(("bias", "a", "w", "mode", "out", "want"), [
    (-0.0, [-0.0, 0.0], [1.0, -1.0], "nearest_even", "fp32", -0.0),  # every term -0
    (None, [-0.0, 0.0], [1.0, -1.0], "nearest_even", "fp32", 0.0),  # the start value +0 is a term
    (None, [3.0, -3.0], [1.0, 1.0], "nearest_even", "fp32", 0.0),  # x + (-x) = +0
    (None, [3.0, -3.0], [1.0, 1.0], "floor", "fp32", -0.0),  # under floor: -0
    (0.0, [0.0], [1.0], "floor", "fp32", 0.0),  # every term +0: +0 even under floor
    (-0.0, [-0.0], [1.0], "nearest_even", "e4m3fnuz", 0.0),  # no -0 in the format
    (2.0, [1.0, -3.0], [1.0, 1.0], "ceil", "fp16", 0.0),
])
def test_exact_zero_sums_take_ieee_signs(bias: float | None, a: list, w: list, mode: str, out: str,
                                         want: float) -> None:
    m = MAC(act="fp16", weight="fp16", acc="exact", output=out, output_rounding=mode)
    got = float(emu.dot(a, w, m, bias))
    assert _same(got, want)
    assert _same(float(mac_dot_ref(a, w, m, bias).value), want)


def test_nan_operands_give_nan_or_are_refused_by_an_output_without_nan() -> None:
    a, w = np.array([[np.nan, 1.0], [1.0, 2.0]]), np.array([[1.0, 2.0], [3.0, 4.0]])
    m = MAC(act="fp16", weight="fp16", acc="exact", output="e4m3")
    y, codes = emu.matmul(a, w, m, return_codes=True)
    assert np.isnan(y[0]).all()
    assert y[1].tolist() == [7.0, 10.0]
    assert int(codes[0, 0]) == int(emu.encode(np.nan, "e4m3"))
    m = MAC(act="fp16", weight="fp16", acc="exact", output="fp<6,7,none>")
    with pytest.raises(ValueError, match=r"^matmul: a NaN .* reached output=fp<6,7,none>, which has no NaN;"
                                         r" first in output \(0, 0\)$"):
        emu.matmul(a, w, m)


def test_infinite_inputs_saturate_and_are_counted() -> None:
    m = MAC(act="bf16", weight="bf16", acc="exact", output="fp32")
    _check_against_ref(np.array([[np.inf, 1.0, -np.inf]]), np.array([[1.0], [2.0], [0.5]]), m, None)
    assert emu.matmul(np.array([[np.inf, 1.0]]), np.ones((2, 1)), m, return_stats=True)[1].input_overflow == 1


@pytest.mark.parametrize(("a", "w", "want"), [
    ([np.inf, 1.0], [1.0, -5.0], np.inf),
    ([np.inf, 1.0], [-1.0, 5.0], -np.inf),
    ([np.inf, np.inf], [1.0, -1.0], np.nan),  # infinities of both signs
    ([np.inf, 1.0], [0.0, 1.0], np.nan),  # inf x 0
    ([np.nan, 1.0], [1.0, 1.0], np.nan),
])
def test_the_kernel_sums_non_finite_products_as_ieee_754(a: list, w: list, want: float) -> None:
    """Operands enter the datapath finite (an infinite input saturates), so the kernel's IEEE rules are
    shown on the kernel itself."""
    out = np.empty((1, 1))
    XK.wide_rows_serial(np.array([a]), np.array([w]), np.zeros((1, 1)), out, False)
    assert _same(float(out[0, 0]), want)


def test_the_threaded_kernel_gives_the_serial_kernels_bits() -> None:
    rng = np.random.default_rng(9)
    a, w = _values("fp16", rng, 64 * 256).reshape(64, 256), _values("fp16", rng, 256 * 32).reshape(32, 256)
    init = rng.standard_normal((1, 32))
    one, many = np.empty((64, 32)), np.empty((64, 32))
    XK.wide_rows_serial(a, w, init, one, False)
    XK.wide_rows(a, w, init, many, False)
    assert np.array_equal(one.view(np.uint64), many.view(np.uint64))
    m = MAC(act="fp16", weight="fp16", acc="exact", output="fp32")  # 2^19 MACs: the threaded kernel
    y = emu.matmul(a, w.T, m, init[0])
    assert np.array_equal(y, emu.quantize(one, "fp32"))


# --- the calls -----------------------------------------------------------------------------------------


def test_dot_matmul_conv2d_with_bias_addend_and_stats() -> None:
    rng = np.random.default_rng(3)
    m = MAC(act="e5m2", weight="e5m2", acc="exact", output="fp16", output_overflow="saturate")
    a, w = _values("e5m2", rng, 40), _values("e5m2", rng, 40)
    y, stats = emu.dot(a, w, m, 0.25, return_stats=True)
    r = mac_dot_ref(list(a), list(w), m, 0.25)
    assert _same(float(y), float(r.value))
    assert stats.output_overflow == int(r.output_overflow)
    A, W = _values("e5m2", rng, 3 * 40).reshape(3, 40), _values("e5m2", rng, 40 * 2).reshape(40, 2)
    c = rng.standard_normal((3, 2))
    yc = emu.matmul(A, W, m, c=c)
    for i in range(3):
        for j in range(2):
            assert _same(float(yc[i, j]), float(mac_dot_ref(list(A[i]), list(W[:, j]), m, c[i, j]).value))
    x, k = rng.standard_normal((2, 3, 6, 6)) * 8, rng.standard_normal((4, 3, 3, 3))
    bias = rng.standard_normal(4)
    yconv, cstats = emu.conv2d(x, k, m, 1, 1, bias, return_stats=True)
    cols = emu.im2col(x, 3, 3, (1, 1), (1, 1))[0]
    ymat, mstats = emu.matmul(cols, k.reshape(4, -1).T, m, bias, return_stats=True)
    assert np.array_equal(yconv.transpose(0, 2, 3, 1).reshape(-1, 4), ymat)
    assert cstats.input_overflow == mstats.input_overflow
    assert cstats.path == "exact-wide"
    kv = k.reshape(4, -1)
    ref = mac_dot_ref(list(cols[7]), list(kv[2]), m, float(bias[2]))
    assert _same(float(ymat[7, 2]), float(ref.value))


def test_output_overflow_is_counted_or_raises() -> None:
    a, w = np.full((2, 3), 1e4), np.full((3, 2), 1e4)
    for overflow, want in (("inf", np.inf), ("saturate", 65504.0)):
        m = MAC(act="fp32", weight="fp32", acc="exact", output="fp16", output_overflow=overflow)
        y, stats = emu.matmul(a, w, m, return_stats=True)
        assert (y == want).all()
        assert stats.output_overflow == 4
        assert stats.output_per_channel.tolist() == [2, 2]
    m = MAC(act="fp32", weight="fp32", acc="exact", output="fp16", output_overflow="error")
    with pytest.raises(OverflowError, match=r"^matmul \(output\): 4 of 4 value\(s\) overflow fp16"):
        emu.matmul(a, w, m)


def test_the_integer_exact_path_keeps_its_pairs() -> None:
    """e4m3 x e5m2 products fit 62 bits as codes: the integer exact path still runs them (a bias rounded
    onto the products' grid, no output format needed)."""
    m = MAC(act="e4m3", weight="e5m2", acc="exact")
    assert not m.wide_exact
    assert MAC(act="fp16", weight="fp16", acc="exact", output="fp32").wide_exact
    y, stats = emu.matmul(np.array([[1.5, 2.0]]), np.array([[3.0], [0.25]]), m, return_stats=True)
    assert y.tolist() == [[5.0]]
    assert stats.path != "exact-wide"


# --- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(act="fp16", weight="fp16"), r"^MAC: output=None with acc=exact and fp16 x fp16 .*give output=, e.g."
                                      r" fp32$"),
    (dict(act="bf16", weight="bf16", output="fx<8,8>"),
     r"^MAC: output=fx<8,8> with acc=exact and bf16 x bf16 .*allowed: a signed float format with normals"),
    (dict(act="fp16", weight="fp16", output=emu.FloatFormat(4, 3, signed=False)),
     r"^MAC: output=fp<4,3,unsigned> with acc=exact and fp16 x fp16 .*allowed: a signed float format"),
    (dict(act="fp32", weight="fp32", output="fp64"),
     r"^MAC: output=fp64 with acc=exact .*at most 50 fraction bits"),
    (dict(act="fp16", weight="fp16", output="fp32", output_rounding="stochastic"),
     r"^MAC: output_rounding=stochastic with acc=exact and fp16 x fp16 .*allowed: a deterministic mode$"),
    (dict(act="binary", weight="bf16", output="fp32"), r"^MAC: act=binary with acc=exact and binary x bf16"
                                                       r" .*allowed operand kinds: float, fixed, pow2$"),
    (dict(act="fp32", weight="fp<11,10>", output="fp32"),
     r"^MAC: acc=exact and fp32 x fp<11,10> .*span 2\^-1181 to 2\^1152; allowed: at most 53 bits within"),
    (dict(act="fp32", weight="fx<31,0>", output="fp32"), r"^MAC: acc=exact and fp32 x fx<31,0> .*need 55"
                                                         r" significand bits"),
    (dict(act="fp16", weight="fp16", output="fp32", product="fx<8,8>"),
     r"^MAC: the integer product of fp16 .*an exact one without product= also sums float64-exact products"),
    # the integer exact path: a grid no fixed format holds was accepted, then every call failed naming
    # FixedFormat's frac_bits
    (dict(act="fx<-985,1000>", weight="fx<2,14>", output="fp32"),
     r"^MAC: acc=exact sums the products of fx<-985,1000> and fx<2,14> on a grid of 2\^-1014; allowed:"
     r" 2\^-1000 to 2\^938"),
    (dict(act="fx<-990,1000>", weight="fp16", output="fp32"), r"on a grid of 2\^-1024; allowed"),
])
def test_what_the_wide_path_cannot_do_is_refused_when_built(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MAC(acc="exact", **kwargs)


def test_start_values_the_register_cannot_hold_are_refused_at_the_call() -> None:
    m = MAC(act="fp32", weight="fp32", acc="exact", output="fp32")
    with pytest.raises(ValueError, match=r"^matmul: acc=exact with fp32 x fp32 holds finite sums, but 1 start"
                                         r" value\(s\) \(bias or c\) are not finite"):
        emu.dot([1.0], [1.0], m, np.inf)
    with pytest.raises(ValueError, match=r"^matmul: acc=exact with fp32 x fp32 sums exactly in float64"
                                         r" expansions below 2\^1022, but 1 products below 2\^256"):
        emu.dot([1.0], [1.0], m, 1e308)
    assert float(emu.dot([1.0], [1.0], m, 1e300)) == math.inf  # held exactly; fp32 overflows to inf
