"""AMD CDNA matrix cores (`emu.amd_units`): the three datapaths (``exact(n)``, ``tree(n)``, ``fused(n)``
with a late addend and odd/even product groups) against their exact twins on seeded inputs with subnormals,
flush-to-zero, cancellation, wide exponent spreads and overflow; hand-computed steps that show what each
unit does differently; the presets against the model files' parameters; and the new MAC fields refused
where no kernel runs them."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import emu
from emu import LateAddend, ProductGroups
from emu import _exact_kernels as XK
from emu import _late_kernels as LK
from emu import _tree_kernels as TK
from emu._ref.late import late_dot_ref
from emu._ref.steps import exact_dot_ref, tree_dot_ref
from emu.amd_units import AMD_UNIT_SOURCES, AMD_UNITS

from .unit_operands import float_operands

CDNA3 = dict(addend_bits=24, sum_bits=31, rounding="floor", zero_exp=-126)


def _same(got: float, want: float) -> bool:
    """Bit-equal as float64 values: equal with the same sign, or both NaN."""
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


def _run(mac: emu.MAC, a: np.ndarray, w: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, ...]:
    """The step kernel of ``mac``: (values, product counts, accumulator counts)."""
    if mac.order.kind == "tree":
        return TK.run_tree(a, w, c, mac)
    if mac.order.kind == "exact":
        out, acnt = XK.run_exact(a, w, c, mac)
    else:
        out, acnt = LK.run_late(a, w, c, mac)
    return out, np.zeros_like(acnt), acnt


def _twin(mac: emu.MAC, a: list[float], w: list[float], c: float) -> tuple[float, int, int]:
    """The exact twin of ``mac``: (value, product overflows, accumulator overflows)."""
    if mac.order.kind == "tree":
        return tree_dot_ref(a, w, c, mac)
    if mac.order.kind == "exact":
        v, o = exact_dot_ref(a, w, c, mac)
    else:
        v, o = late_dot_ref(a, w, c, mac)
    return v, 0, o


def _check(mac: emu.MAC, a: np.ndarray, w: np.ndarray, c: np.ndarray) -> None:
    """Kernel equals twin on every output: value, sign and overflow counts."""
    got, pcnt, acnt = _run(mac, a, w, c)
    for i, j in itertools.product(range(a.shape[0]), range(w.shape[1])):
        want, po, ao = _twin(mac, [float(x) for x in a[i]], [float(x) for x in w[:, j]], float(c[i, j]))
        assert _same(float(got[i, j]), want), (str(mac), i, j, got[i, j], want)
        assert (pcnt[i, j], acnt[i, j]) == (po, ao), (str(mac), i, j)


def _finite(fmt: str) -> list[float]:
    """Every finite value of ``fmt`` once, -0 included."""
    f = emu.format(fmt)
    vals = {float(v) for v in emu.decode(np.arange(1 << f.bits), f) if np.isfinite(v)}
    return sorted(vals) + [-0.0]


# -- the datapaths against their twins on small formats (every code, subnormals, overflow) -------------

SMALL = dict(act="fp<2,1>", weight="fp<2,1>", acc="fp<3,2>", acc_overflow="saturate")


@pytest.mark.parametrize(("n", "bits", "cut", "late", "groups", "inf"), [
    (2, 2, "toward_zero", dict(addend_bits=2, sum_bits=4, zero_exp=-1), "all", False),
    (3, 3, "floor", dict(addend_bits=3, sum_bits=2, rounding="toward_zero"), "all", True),
    (4, 2, "toward_zero", dict(addend_bits=2, sum_bits=5, zero_exp=0, drop_shift=1), "odd_even", False),
    (4, 1, "toward_zero", dict(addend_bits=1, sum_bits=3), "odd_even", True),
])
def test_late_kernel_matches_the_twin_on_small_formats(n: int, bits: int, cut: str, late: dict, groups: str,
                                                       inf: bool) -> None:
    """fp<2,1> operands into fp<3,2>: every product (a, w) with every third addend and -0, then 100 x 3
    seeded outputs of two steps and a short one, for settings that exercise each field."""
    mac = emu.MAC(**SMALL, order=f"fused({n})", align_bits=bits, align_rounding=cut,
                  acc_rounding="nearest_even", late_addend=late, product_groups=groups, product_inf=inf)
    vals, cs = _finite("fp<2,1>"), _finite("fp<3,2>")
    x = np.array(vals)
    for z in [*cs[::3], -0.0]:
        _check(mac, x[:, None], x[None, :], np.full((len(vals), len(vals)), z))
    rng = np.random.default_rng(n * 10 + bits)
    K = 2 * n + 1
    _check(mac, rng.choice(vals, (100, K)), rng.choice(vals, (K, 3)), rng.choice(cs, (100, 3)))


@pytest.mark.parametrize("rounding", ["nearest_even", "toward_zero", "floor", "ceil", "nearest_away"])
def test_exact_and_tree_kernels_match_the_twins_in_every_mode(rounding: str) -> None:
    """The round-to-odd reading of the exact sum is right for every deterministic mode: small formats,
    every product with every fourth addend and -0, then seeded rows."""
    vals, cs = _finite("fp<2,1>"), _finite("fp<3,2>")
    x = np.array(vals)
    rng = np.random.default_rng(len(rounding))
    for order, extra in (("exact(3)", {}), ("tree(2)", dict(product="fp<3,1>", product_rounding=rounding))):
        mac = emu.MAC(**SMALL, order=order, acc_rounding=rounding, **extra)
        for z in [*cs[::4], -0.0]:
            _check(mac, x[:, None], x[None, :], np.full((len(vals), len(vals)), z))
        _check(mac, rng.choice(vals, (60, 7)), rng.choice(vals, (7, 3)), rng.choice(cs, (60, 3)))


@pytest.mark.parametrize("order", ["exact(2)", "tree(2)", "sequential"])
def test_an_exact_zero_sum_takes_ieee_signs_in_every_order(order: str) -> None:
    # x + (-x) is -0 under floor and +0 otherwise; +0 + +0 is +0 and -0 + -0 is -0 in every mode
    a = np.array([[1.0, -1.0], [0.0, 0.0], [-0.0, -0.0]])
    w = np.array([[1.0], [1.0]])
    for rounding, want in (("floor", [-0.0, 0.0, -0.0]), ("nearest_even", [0.0, 0.0, -0.0]),
                           ("ceil", [0.0, 0.0, -0.0])):
        mac = emu.MAC(act="fp16", weight="fp16", acc="fp32", order=order, acc_rounding=rounding)
        got = emu.matmul(a, w, mac, c=np.array([[0.0], [0.0], [-0.0]]))[:, 0]
        assert [math.copysign(1.0, v) for v in got] == [math.copysign(1.0, v) for v in want], rounding
        assert list(got) == want
        if order != "sequential":
            ref = exact_dot_ref if order.startswith("exact") else tree_dot_ref
            for i, c in enumerate((0.0, 0.0, -0.0)):
                assert _same(ref(list(a[i]), [1.0, 1.0], c, mac)[0], want[i]), (rounding, i)


def test_a_short_tree_step_is_padded_with_positive_zero_products() -> None:
    """K not a multiple of n: tree(n) pads its last step with +0 products, terms of its tree, so a lone -0
    product sums to +0 under nearest even (as on units whose kernels pad K with zeros); exact(n) sums only
    the products there are, as sequential does."""
    a, w, c = np.array([[-0.0]]), np.array([[1.0]]), np.array([[-0.0]])
    for order, sign in (("sequential", -1.0), ("exact(2)", -1.0), ("tree(2)", 1.0), ("tree(4)", 1.0)):
        mac = emu.MAC(act="fp16", weight="fp16", acc="fp32", order=order)
        assert math.copysign(1.0, emu.matmul(a, w, mac, c=c)[0, 0]) == sign, order
    full = emu.MAC(act="fp16", weight="fp16", acc="fp32", order="tree(2)")  # K = n: no padding
    assert math.copysign(1.0, emu.matmul(np.array([[-0.0, -0.0]]), np.ones((2, 1)), full, c=c)[0, 0]) == -1.0


@pytest.mark.parametrize("rounding", ["toward_zero", "floor", "ceil"])
def test_exact_and_tree_kernels_keep_wide_spans_in_directed_modes(rounding: str) -> None:
    """bf16 operands over their whole range into binary32 (products and addends up to 2^250 apart), every
    seventh row an addend that nearly cancels the step's first products: directed modes see the sign of
    the smallest term."""
    rng = np.random.default_rng(len(rounding) + 40)
    f = emu.format("bf16")
    e = rng.integers(f.emin - f.man_bits, f.emax + 1, (80, 9)).astype(np.float64)
    a = emu.quantize(rng.choice([-1.0, 1.0], (80, 9)) * rng.uniform(1, 2, (80, 9)) * np.exp2(e), f,
                     rounding="toward_zero")
    w = emu.quantize(rng.choice([-1.0, 1.0], (9, 2)) * rng.uniform(1, 2, (9, 2)), f)
    c = emu.quantize(rng.choice([-1.0, 1.0], (80, 2)) * np.exp2(rng.integers(-149, 127, (80, 2)).astype(
        np.float64)), "fp32")
    near = -(a[::7, :4] @ w[:4])
    c[::7] = emu.quantize(np.where(np.abs(near) < 2.0**127, near, 0.0), "fp32")
    _check(emu.MAC(act="bf16", weight="bf16", acc="fp32", order="exact(4)", acc_rounding=rounding), a, w, c)
    _check(emu.MAC(act="bf16", weight="bf16", acc="fp32", product="fp32", product_rounding=rounding,
                   order="tree(4)", acc_rounding=rounding), a, w, c)


# -- the presets against the twins on inputs across their ranges --------------------------------------

def _inputs(mac: emu.MAC, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded (a, w, c) of 10 rows, K = 2n + 3: random values, then row 0 cancelling pairs, row 1 subnormal
    operands (flushed by CDNA2), row 2 addends near the accumulator's smallest normal, row 3 the largest
    operands (products overflow binary32 for bf16), row 4 one product far above a tiny addend."""
    rng = np.random.default_rng(seed)
    K = 2 * mac.order.n + 3
    a = float_operands(rng, mac.act, (10, K))
    w = float_operands(rng, mac.weight, (K, 3))
    c = emu.quantize(float_operands(rng, mac.acc, (10, 3)), mac.acc)
    a[0, 1::2] = -a[0, 0:K - 1:2]
    w[1::2] = w[0:K - 1:2]
    sub = mac.act.smallest_normal
    a[1] = emu.quantize(rng.uniform(-sub, sub, K), mac.act, rounding="toward_zero")  # flushed: zeros
    c[2] = emu.quantize(mac.acc.smallest_normal * rng.uniform(-4, 4, 3), mac.acc, rounding="toward_zero")
    a[3] = float(mac.act.max)
    a[4] = 0.0
    a[4, 0] = float(mac.act.max)
    c[4] = -mac.acc.smallest_normal
    return a, w, c


FAMILIES = ["MI100 fp16 -> fp32", "MI100 bf16 -> fp32", "MI250 fp16 -> fp32", "MI250 bf16 -> fp32",
            "MI250 bf16_1k -> fp32", "MI300 fp16 -> fp32", "MI300 bf16 -> fp32", "MI300 xf32 -> fp32",
            "MI300 e4m3 -> fp32", "MI300 e5m2 -> fp32"]


@pytest.mark.parametrize("name", FAMILIES)
def test_preset_matches_the_twin(name: str) -> None:
    mac = emu.mac_preset(name)
    _check(mac, *_inputs(mac, seed=sum(map(ord, name))))


@pytest.mark.parametrize("name", ["MI100 fp16 -> fp32", "MI250 bf16_1k -> fp32", "MI300 bf16 -> fp32"])
def test_threaded_kernels_and_matmul_agree(name: str) -> None:
    """A 64 x 64 x 64 product (the threaded kernels) equals the serial kernel, `emu.matmul` gives the same
    values and overflow counts, and 20 outputs equal the twin."""
    mac = emu.mac_preset(name)
    rng = np.random.default_rng(3)
    a = emu.quantize(rng.standard_normal((64, 64)) * np.exp2(rng.integers(-20, 8, (64, 64))), mac.act)
    w = emu.quantize(rng.standard_normal((64, 64)), mac.weight)
    c = emu.quantize(rng.standard_normal((64, 64)) * 2.0**-10, mac.acc)
    got, pcnt, acnt = _run(mac, a, w, c)
    serial, _, _ = _run(mac, a[:1], w, c[:1])
    assert np.isfinite(got).all()
    assert np.array_equal(got[:1], serial)
    mm, st = emu.matmul(a, w, mac, c=c, return_stats=True)
    assert np.array_equal(mm, got)
    assert (st.product_overflow, st.acc_overflow) == (pcnt.sum(), acnt.sum())
    for i, j in zip(rng.integers(0, 64, 20), rng.integers(0, 64, 20), strict=True):
        assert got[i, j] == _twin(mac, list(a[i]), list(w[:, j]), float(c[i, j]))[0], (i, j)


def test_non_finite_operands_follow_the_twins() -> None:
    a = np.array([[np.inf, 1.0, 2.0, 0.0], [np.inf, -np.inf, 0.0, 0.0], [np.nan, 1.0, 1.0, 0.0],
                  [1.0, 2.0, 3.0, 0.0]])
    w = np.ones((4, 1))
    c = np.array([[1.0], [0.0], [0.0], [-np.inf]])
    for name in ("MI100 fp16 -> fp32", "MI250 fp16 -> fp32", "MI300 fp16 -> fp32", "MI300 e4m3 -> fp32"):
        mac = emu.mac_preset(name)
        if mac.act.has_inf:
            _check(mac, a, w, c)
        else:  # fnuz operands hold no infinity: only the addend's
            _check(mac, np.nan_to_num(a, posinf=1.0, neginf=-1.0), w, c)


# -- hand-computed steps: what each unit does differently ---------------------------------------------

def _one(name: str, a: list[float], w: list[float], c: float = 0.0, **over: object) -> float:
    mac = emu.mac_preset(name, **over)
    return float(emu.matmul(np.array([a]), np.array(w)[:, None], mac, c=np.array([[c]]))[0, 0])


def test_cdna1_rounds_the_exact_sum_once_and_cdna2_rounds_every_addition() -> None:
    """Products 1, 2^-24, 2^-24, 0: exact 1 + 2^-23 (MI100); the binary32 tree rounds the tie 1 + 2^-24 to 1
    twice (MI250)."""
    a, w = [1.0, 2.0**-12, 2.0**-12, 0.0], [1.0, 2.0**-12, 2.0**-12, 0.0]
    assert _one("MI100 fp16 -> fp32", a, w) == 1 + 2.0**-23
    assert _one("MI250 fp16 -> fp32", a, w) == 1.0
    # a small third product 2^-28 breaks the tie in the exact sum only: 1 + 2^-24 + 2^-28 rounds up
    a2 = [1.0, 2.0**-12, 2.0**-14, 0.0]
    assert _one("MI100 fp16 -> fp32", a2, a2) == 1 + 2.0**-23
    assert _one("MI250 fp16 -> fp32", a2, a2) == 1.0  # (1 + 2^-24) -> 1, (2^-28 + 0), 1 + 2^-28 -> 1


def test_cdna2_flushes_subnormal_inputs_products_and_addends() -> None:
    assert _one("MI100 fp16 -> fp32", [2.0**-20], [2.0**10]) == 2.0**-10  # fp16 subnormal kept
    assert _one("MI250 fp16 -> fp32", [2.0**-20], [2.0**10]) == 0.0  # flushed at the input
    assert _one("MI100 bf16 -> fp32", [2.0**-70], [2.0**-60]) == 2.0**-130  # binary32 subnormal product
    assert _one("MI250 bf16 -> fp32", [2.0**-70], [2.0**-60]) == 0.0
    assert _one("MI250 bf16 -> fp32", [0.0], [0.0], c=2.0**-130) == 0.0  # C flushed
    # products of 2^128 round to binary32 infinities, and inf - inf is NaN; 2^127 - 2^127 cancels
    assert math.isnan(_one("MI250 bf16 -> fp32", [2.0**64, -(2.0**64)], [2.0**64, 2.0**64]))
    assert _one("MI250 bf16 -> fp32", [2.0**63, -(2.0**63)], [2.0**64, 2.0**64]) == 0.0


def test_cdna3_floor_is_not_truncation() -> None:
    """C = 1 with the product 2^-24 + 2^-32 gives 1; negated, the floor takes the product sum to
    -(2^-24 + 2^-31) and the result is -(1 + 2^-23); truncation toward zero would give -1."""
    a, w = [2.0**-12 + 2.0**-20], [2.0**-12]
    assert _one("MI300 fp16 -> fp32", a, w, c=1.0) == 1.0
    assert _one("MI300 fp16 -> fp32", [-a[0]], w, c=-1.0) == -(1 + 2.0**-23)
    trunc = dict(addend_bits=24, sum_bits=31, rounding="toward_zero", zero_exp=-126)
    assert _one("MI300 fp16 -> fp32", [-a[0]], w, c=-1.0, late_addend=trunc) == -1.0


def test_cdna3_adds_the_addend_late() -> None:
    """C = 2 - 2^-22 with products 2^-22 and 2^-23 + 2^-32: the product sum keeps 31 bits below 2^0, so
    2 + 2^-23 is a tie that rounds to 2; a single alignment of C with the products that keeps 34 bits, or
    a late sum that keeps 32, keeps 2^-32 and rounds up to 2 + 2^-22."""
    a, w = [2.0**-11, 2.0**-12 + 2.0**-21], [2.0**-11, 2.0**-11]
    assert _one("MI300 fp16 -> fp32", a, w, c=2 - 2.0**-22) == 2.0
    early = emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(8)", align_bits=34)
    assert float(emu.matmul([a], np.array(w)[:, None], early, c=[[2 - 2.0**-22]])[0, 0]) == 2 + 2.0**-22
    wide = dict(CDNA3, sum_bits=32)  # a product sum that keeps 32 bits rounds up too
    assert _one("MI300 fp16 -> fp32", a, w, c=2 - 2.0**-22, late_addend=wide) == 2 + 2.0**-22


def test_cdna3_aligns_a_zero_addend_at_2_to_minus_126() -> None:
    """C = 0, bf16 products 2^-150 and 2^-158: aligned at 2^-126 the sum keeps 31 bits (2^-157), 2^-158 is
    floored away and 2^-150 is a tie that rounds to 0; a zero C without an exponent keeps both, and the sum
    rounds up to 2^-149."""
    a, w = [2.0**-75, 2.0**-79], [2.0**-75, 2.0**-79]
    assert _one("MI300 bf16 -> fp32", a, w) == 0.0
    free = dict(addend_bits=24, sum_bits=31, rounding="floor")
    assert _one("MI300 bf16 -> fp32", a, w, late_addend=free) == 2.0**-149


def test_cdna3_fp8_groups_odd_and_even_products() -> None:
    """e4m3fnuz products 2^14 (position 0) and -2^-12 (position 1): aligned together, -2^-12 is truncated
    to 0 on the grid 2^-10; in its own group it is exact and the join floors it to -2^-10."""
    a, w = [128.0, -(2.0**-6)], [128.0, 2.0**-6]
    assert _one("MI300 e4m3 -> fp32", a, w) == 2.0**14 - 2.0**-10
    assert _one("MI300 e4m3 -> fp32", a, w, product_groups="all") == 2.0**14
    # a negative addend 30 binades below the sum: floored to -2^-10 here, dropped with drop_shift=25
    drop = dict(addend_bits=24, sum_bits=31, rounding="floor", zero_exp=-126, drop_shift=25)
    assert _one("MI300 e4m3 -> fp32", [128.0], [128.0], c=-(2.0**-16)) == 2.0**14 - 2.0**-10
    assert _one("MI300 e4m3 -> fp32", [128.0], [128.0], c=-(2.0**-16), late_addend=drop) == 2.0**14


def test_cdna3_products_of_2_to_128_are_infinite() -> None:
    a, w = [2.0**64, -(2.0**64)], [2.0**64, 2.0**64]
    assert math.isnan(_one("MI300 bf16 -> fp32", a, w))
    assert _one("MI300 bf16 -> fp32", a[:1], w[:1], c=-(2.0**127)) == math.inf
    assert _one("MI300 bf16 -> fp32", a, w, product_inf=False) == 0.0  # the sum cancels without the rule


def test_an_infinite_product_is_an_accumulator_overflow_under_every_mode() -> None:
    """A product 2^130 made infinite by the rule counts as an overflow of its step, so acc_overflow acts
    on it in the step where it happens (also the last): inf under inf, the largest value under saturate,
    an error under error; and the kernel agrees with the exact twin."""
    a, w = np.array([[2.0**100]]), np.array([[2.0**30]])
    y, st = emu.matmul(a, w, "MI300 bf16 -> fp32", return_stats=True)
    assert y[0, 0] == math.inf
    assert st.acc_overflow == 1
    assert emu.matmul(a, w, emu.mac_preset("MI300 bf16 -> fp32", acc_overflow="saturate"))[0, 0] == (
        emu.format("fp32").max)
    with pytest.raises(OverflowError, match=r"matmul: 1 accumulator addition\(s\) overflow fp32"):
        emu.matmul(a, w, emu.mac_preset("MI300 bf16 -> fp32", acc_overflow="error"))
    mac = emu.mac_preset("MI300 bf16 -> fp32")
    assert late_dot_ref([2.0**100], [2.0**30], 0.0, mac) == (math.inf, 1)


def test_the_infinite_product_rule_holds_when_the_accumulator_is_already_infinite() -> None:
    """+2^130 in the first step makes the accumulator +inf; -2^130 in the second is -inf by the same rule,
    so the sum is NaN (it was +inf: the IEEE path took -2^130 as a finite float64)."""
    a, w = [2.0**100] + [0.0] * 7 + [-(2.0**100)], [2.0**30] * 9
    assert math.isnan(_one("MI300 bf16 -> fp32", a, w))
    assert math.isnan(late_dot_ref(a, w, 0.0, emu.mac_preset("MI300 bf16 -> fp32"))[0])
    assert _one("MI300 bf16 -> fp32", a[:8] + [2.0**100], w) == math.inf  # both +inf: inf


def test_exact_steps_keep_wide_exponent_spreads() -> None:
    """C = 2^100 and a product 2^-48 (fp16 subnormals): the exact sum rounds to 2^100, toward zero to its
    predecessor when the product is negative; C = -(sum of the products) cancels exactly to +0."""
    assert _one("MI100 fp16 -> fp32", [2.0**-24], [2.0**-24], c=2.0**100) == 2.0**100
    assert _one("MI100 fp16 -> fp32", [-(2.0**-24)], [2.0**-24], c=2.0**100, acc_rounding="toward_zero") == (
        2.0**100 - 2.0**76)
    assert _one("MI100 fp16 -> fp32", [3.0, 2.0**-24], [5.0, -(2.0**-24)], c=-15.0) == -(2.0**-48)
    zero = _one("MI100 fp16 -> fp32", [3.0, 0.0], [5.0, 1.0], c=-15.0)
    assert zero == 0.0
    assert math.copysign(1.0, zero) > 0


# -- the presets and the new fields -------------------------------------------------------------------

def test_presets_follow_the_model_files() -> None:
    want = {  # name: (order, align_bits, accumulator, act)
        "MI100 fp16 -> fp32": ("exact(4)", None, "fp32", "fp16"),
        "MI100 bf16 -> fp32": ("exact(2)", None, "fp32", "bf16"),
        "MI210 fp16 -> fp32": ("tree(4)", None, "fp<8,23,ftz>", "fp<5,10,ftz>"),
        "MI250 bf16 -> fp32": ("tree(2)", None, "fp<8,23,ftz>", "fp<8,7,ftz>"),
        "MI250 bf16_1k -> fp32": ("tree(4)", None, "fp<8,23,ftz>", "fp<8,7,ftz>"),
        "MI300 fp16 -> fp32": ("fused(8)", 24, "fp32", "fp16"),
        "MI300A bf16 -> fp32": ("fused(8)", 24, "fp32", "bf16"),
        "MI300X xf32 -> fp32": ("fused(4)", 24, "fp32", "tf32"),
        "MI300 e4m3 -> fp32": ("fused(16)", 24, "fp32", "e4m3fnuz"),
        "MI300X e5m2 -> fp32": ("fused(16)", 24, "fp32", "e5m2fnuz"),
    }
    for name, (order, bits, acc, act) in want.items():
        m = emu.mac_preset(name)
        assert (str(m.order), m.align_bits, str(m.acc), str(m.act)) == (order, bits, acc, act), name
        assert str(m.acc_rounding) == "nearest_even", name
        assert "Khattak & Mikaitis" in AMD_UNIT_SOURCES[name]
        assert "no AMD measurements in this repository" in AMD_UNIT_SOURCES[name]
    for name in AMD_UNITS:
        m = emu.mac_preset(name)
        gpu = name.split()[0]
        if name.endswith("fp32 -> fp32"):
            assert m.fused, name
            assert str(m.order) == "sequential", name
            assert "sequential FMAs" in AMD_UNIT_SOURCES[name]
            continue
        assert (m.late_addend is not None) == gpu.startswith("MI300"), name
        assert m.product_inf == gpu.startswith("MI300"), name
        assert (m.product_groups == ProductGroups.ODD_EVEN) == (name.split()[1] in ("e4m3", "e5m2")), name
        assert ("MI300" in AMD_UNIT_SOURCES[name]) == gpu.startswith("MI300"), name
    assert emu.mac_preset("MI300 fp16 -> fp32").late_addend == LateAddend(**CDNA3)
    assert emu.mac_preset("MI300X xf32 -> fp32").input_rounding == emu.Rounding.TOWARD_ZERO
    for gpu in ("MI300A", "MI300X"):  # MI300AMC.m and MI300XMC.m call MI300MC.m
        for unit in ("fp16", "bf16", "xf32", "e4m3", "e5m2"):
            assert AMD_UNITS[f"{gpu} {unit} -> fp32"] == AMD_UNITS[f"MI300 {unit} -> fp32"]
    for unit in ("fp16", "bf16", "bf16_1k"):  # MI250MC.m calls MI210MC.m
        assert AMD_UNITS[f"MI250 {unit} -> fp32"] == AMD_UNITS[f"MI210 {unit} -> fp32"]


def test_new_fields_are_checked_at_construction() -> None:
    fp16 = dict(act="fp16", weight="fp16", acc="fp32")
    with pytest.raises(ValueError, match="LateAddend: rounding=nearest_even is not allowed; allowed: floor"):
        LateAddend(rounding="nearest_even")
    with pytest.raises(ValueError, match="LateAddend: sum_bits=39 outside"):
        LateAddend(sum_bits=39)
    with pytest.raises(TypeError, match="late_addend=5 must be None, a LateAddend or a dict"):
        emu.MAC(**fp16, order="fused(8)", align_bits=24, late_addend=5)
    with pytest.raises(ValueError, match=r"late_addend=.* applies to order='fused\(n\)' only"):
        emu.MAC(**fp16, late_addend=CDNA3)
    with pytest.raises(ValueError, match="product_groups=odd_even needs order='fused.n.' with a late_addend"):
        emu.MAC(**fp16, order="fused(8)", align_bits=24, product_groups="odd_even")
    with pytest.raises(ValueError, match="product_groups='pairs' is not one of all, odd_even"):
        emu.MAC(**fp16, order="fused(8)", align_bits=24, late_addend=CDNA3, product_groups="pairs")
    with pytest.raises(ValueError, match="product_inf=True needs order='fused.n.' with a late_addend"):
        emu.MAC(**fp16, product_inf=True)
    with pytest.raises(TypeError, match="product_inf=1 must be a bool"):
        emu.MAC(**fp16, order="fused(8)", align_bits=24, late_addend=CDNA3, product_inf=1)
    with pytest.raises(ValueError, match=r"order='tree\(3\)': the tree needs n a power of two"):
        emu.MAC(**fp16, order="tree(3)")
    with pytest.raises(ValueError, match=r"order='exact\(4\)' adds exact products; product= does not apply"):
        emu.MAC(**fp16, order="exact(4)", product="fp32")
    with pytest.raises(ValueError, match=r"order='tree\(4\)' does not take fused=True; allowed: False"):
        emu.MAC(**fp16, order="tree(4)", fused=True)
    with pytest.raises(ValueError, match=r"order='tree\(4\)' does not take product_rounding='stochastic';"
                                         " allowed: the deterministic roundings"):
        emu.MAC(**fp16, order="tree(4)", product="fp16", product_rounding="stochastic")
    with pytest.raises(ValueError, match=r"order='exact\(4\)' needs float formats; act=fx<4,4>"):
        emu.MAC(act="fx<4,4>", weight="fp16", acc="fp32", order="exact(4)")
    with pytest.raises(ValueError, match="late_addend=.* does not apply to block-scaled"):
        emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32", late_addend=CDNA3)
    with pytest.raises(ValueError, match=r"order='tree' is not one of sequential, pairwise, lanes\(n\)"):
        emu.MAC(**fp16, order="tree")
