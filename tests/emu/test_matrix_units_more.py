"""Matrix units from the published models (A2, A30, Ada, L40S, H100 e5m2, B200, H200, RTX PRO 6000,
B200RN), and the unmeasured units taken from MMA-Sim or from the measured ones (every preset that is neither
measured nor AMD nor Intel): each preset against the model's parameters and against the exact twin
`emu._ref.fused` on seeded inputs with subnormals, cancellation and overflow; and the step's exponent floor
``align_min_exp`` (B200TC.m's ``min_exp_limit``), fast kernel against twin bit for bit."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import emu
from emu import _fused_kernels as FK
from emu._ref.fused import fused_dot_ref
from emu.amd_units import AMD_UNITS
from emu.matrix_units import (
    ADA_FP8_FP16_UNITS,
    HOPPER_FP8_FP16_INFERRED,
    INTEL_UNITS,
    MATRIX_UNIT_SOURCES,
    MATRIX_UNITS,
    MEASURED_UNITS,
)

from .unit_operands import float_operands

#: the NVIDIA units from model files (the AMD units: tests/emu/test_amd_units.py; AMX: the last tests here)
MODELLED = sorted(set(MATRIX_UNITS) - set(MEASURED_UNITS) - set(AMD_UNITS) - set(INTEL_UNITS))


def _same(got: float, want: float) -> bool:
    """Bit-equal as float64 values: equal with the same sign, or both NaN."""
    if math.isnan(want):
        return math.isnan(got)
    return got == want and math.copysign(1.0, got) == math.copysign(1.0, want)


def _check_rows(mac: emu.MAC, a: np.ndarray, w: np.ndarray, c: np.ndarray) -> None:
    """`FK.run_fused` (every MAC field, the floor included) equals the twin on every output, value, sign
    and overflow count."""
    got, acnt = FK.run_fused(a, w, c, mac)
    for i, j in itertools.product(range(a.shape[0]), range(w.shape[1])):
        want, over = fused_dot_ref([float(x) for x in a[i]], [float(x) for x in w[:, j]], float(c[i, j]), mac)
        assert _same(float(got[i, j]), want), (str(mac), i, j, got[i, j], want)
        assert acnt[i, j] == over, (str(mac), i, j)


def _inputs(mac: emu.MAC, seed: int, M: int = 12, N: int = 3) -> tuple[np.ndarray, ...]:
    """Seeded (a, w, c) of K = 2n + 3 (two full steps and a short one): random values of the formats, then
    row 0 cancelling pairs (a_k w_k = -a_{k+1} w_{k+1}), row 1 subnormal operands, row 2 small values around
    the accumulator's smallest normal, row 3 large equal-sign values that overflow the accumulator."""
    rng = np.random.default_rng(seed)
    K = 2 * mac.order.n + 3
    a = float_operands(rng, mac.act, (M, K))
    w = float_operands(rng, mac.weight, (K, N))
    c = emu.quantize(float_operands(rng, mac.acc, (M, N)), mac.acc)
    a[0, 1::2] = -a[0, 0:K - 1:2]
    w[1::2] = w[0:K - 1:2]
    sub = mac.act.smallest_normal
    a[1] = emu.quantize(rng.uniform(-sub, sub, K), mac.act, rounding="toward_zero")
    c[2] = emu.quantize(mac.acc.smallest_normal * rng.uniform(-4, 4, N), mac.acc, rounding="toward_zero")
    a[3] = float(mac.act.max)
    c[3] = float(mac.acc.max) / 2
    return a, w, c


@pytest.mark.parametrize("name", MODELLED)
def test_modelled_preset_matches_the_twin(name: str) -> None:
    mac = emu.mac_preset(name)
    a, w, c = _inputs(mac, seed=sum(map(ord, name)))
    _check_rows(mac, a, w, c)
    _, acnt = FK.run_fused(a, w, c, mac)
    if mac.acc.emax < mac.act.emax + mac.weight.emax:  # products can pass the accumulator's range
        assert acnt.sum() > 0


@pytest.mark.parametrize("name", MODELLED)
def test_modelled_preset_runs_through_matmul(name: str) -> None:
    """`emu.matmul` gives the kernel's values for every preset, where the exponent floor does not bind (all
    but tiny terms); with it, see test_matmul_honours_the_floor."""
    mac = emu.mac_preset(name)
    rng = np.random.default_rng(7)
    K = 3 * mac.order.n + 1
    a = emu.quantize(rng.standard_normal((16, K)) * 8, mac.act)
    w = emu.quantize(rng.standard_normal((K, 5)), mac.weight)
    c = emu.quantize(rng.standard_normal((16, 5)), mac.acc)
    got, st = emu.matmul(a, w, mac, c=c, return_stats=True)
    want, acnt = FK.run_fused(a, w, c, mac)
    out = emu.quantize(want, mac.output_format, rounding=mac.output_rounding)
    assert np.array_equal(got, out)
    assert st.acc_overflow == acnt.sum()


def _odd_multipliers(name: str) -> np.ndarray:
    """The odd m of `_floor_rows`: 8 significant bits for bf16, 9 for fp16 (the product stays below 2^-15)."""
    return np.arange(1, 256 if name.endswith("bf16 -> fp32") else 512, 2, dtype=np.float64)


def _floor_rows(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One step per row whose terms all lie below 2^align_min_exp, so the floor coarsens the cut: a product
    p0 = m u0 (m odd), for fp16 -> fp16 a half unit u0 / 2 beside it, and a small negative term that the
    floor's unit cuts to 0 while the unit without the floor keeps it. Without the floor the result is one
    unit lower (fp32, toward zero: (m - 1) 2^-149) or rounds down (fp16, to nearest: just below the tie
    (m + 1/2) 2^-24); with it m 2^-149, or the tie rounded to even, (m + 1) 2^-24."""
    m = _odd_multipliers(name)
    if name.endswith("bf16 -> fp32"):  # p0 = m 2^-149, aligned at <= 2^-142; -2^-160 between the units
        a = np.stack([m * 2.0**-75, np.full_like(m, -(2.0**-80))], axis=1)
        w = np.array([[2.0**-74], [2.0**-80]])
    else:  # fp16 -> fp16: p0 = m 2^-24 aligned at <= 2^-16, 2^-25, and -2^-41 (floor unit 2^-40)
        a = np.stack([m * 2.0**-12, np.full_like(m, 2.0**-13), np.full_like(m, -(2.0**-17))], axis=1)
        w = np.array([[2.0**-12], [2.0**-12], [2.0**-24]])
    return a, w, np.zeros((len(m), 1))


@pytest.mark.parametrize("name", ["B200 bf16 -> fp32", "B200 fp16 -> fp16"])
def test_the_floor_changes_steps_below_it(name: str) -> None:
    mac = emu.mac_preset(name)
    a, w, c = _floor_rows(name)
    _check_rows(mac, a, w, c)
    want, _ = FK.run_fused(a, w, c, mac)
    free, _ = FK.run_fused(a, w, c, emu.mac_preset(name, align_min_exp=None))
    m = _odd_multipliers(name)
    assert np.array_equal(emu.quantize(a, mac.act), a)  # the operands are bf16 or fp16 values
    if name.endswith("fp32"):
        assert np.array_equal(want[:, 0], m * 2.0**-149)
        assert np.array_equal(free[:, 0], (m - 1) * 2.0**-149)
    else:
        assert np.array_equal(want[:, 0], (m + 1) * 2.0**-24)
        assert np.array_equal(free[:, 0], m * 2.0**-24)


@pytest.mark.parametrize("name", ["B200 bf16 -> fp32", "B200 fp16 -> fp16"])
def test_matmul_honours_the_floor(name: str) -> None:
    a, w, c = _floor_rows(name)
    want, _ = FK.run_fused(a, w, c, emu.mac_preset(name))
    assert np.array_equal(emu.matmul(a, w, name, c=c), want)
    mac = emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(2)", align_bits=3, align_min_exp=2)
    assert float(emu.matmul([[0.25, 0.125]], [[1.0], [1.0]], mac)[0, 0]) == 0.0  # the docstring example


def test_the_floor_worked_examples() -> None:
    """Hand-computed steps: the docstring example of `emu._fused_kernels`, and a B200 bf16 step whose terms
    are all below 2^-133."""
    mac = emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(2)", align_bits=3, align_min_exp=2)
    free = emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(2)", align_bits=3)
    a, w, c = np.array([[0.25, 0.125]]), np.array([[1.0], [1.0]]), np.zeros((1, 1))
    assert FK.run_fused(a, w, c, mac)[0][0, 0] == 0.0 == fused_dot_ref([0.25, 0.125], [1.0, 1.0], 0.0, mac)[0]
    assert FK.run_fused(a, w, c, free)[0][0, 0] == 0.375 == fused_dot_ref([0.25, 0.125], [1.0, 1.0], 0.0,
                                                                           free)[0]
    # 2^-140 - 2^-160: with E >= -133 the unit is 2^-158 and -2^-160 is cut to 0 (2^-140 stays); without the
    # floor E = -140, the unit 2^-165 keeps it, and toward zero the binary32 result is 2^-140 - 2^-149
    b200 = emu.mac_preset("B200 bf16 -> fp32")
    a, w = [2.0**-70, -(2.0**-80)], [2.0**-70, 2.0**-80]
    A, W, C = np.array([a]), np.array(w)[:, None], np.zeros((1, 1))
    assert FK.run_fused(A, W, C, b200)[0][0, 0] == 2.0**-140 == fused_dot_ref(a, w, 0.0, b200)[0]
    free = emu.mac_preset("B200 bf16 -> fp32", align_min_exp=None)  # the same unit without the floor
    assert FK.run_fused(A, W, C, free)[0][0, 0] == 2.0**-140 - 2.0**-149 == fused_dot_ref(a, w, 0.0, free)[0]
    h100 = emu.mac_preset("H100 bf16 -> fp32")  # H100TC.m's floor is B200TC.m's: the same step
    assert FK.run_fused(A, W, C, h100)[0][0, 0] == 2.0**-140 == fused_dot_ref(a, w, 0.0, h100)[0]


def _finite_values(fmt: str) -> list[float]:
    f = emu.format(fmt)
    return sorted({float(v) for v in emu.decode(np.arange(1 << f.bits), f) if np.isfinite(v)})


@pytest.mark.parametrize(("n", "bits", "floor", "cut", "rounding"),
                         [(1, 2, -1, "toward_zero", "toward_zero"), (2, 3, 0, "toward_zero", "nearest_even"),
                          (3, 2, 1, "floor", "toward_zero"), (2, 1, -2, "floor", "nearest_even"),
                          (4, 4, 2, "toward_zero", "floor")])
def test_floor_kernel_matches_the_twin_on_small_formats(n: int, bits: int, floor: int, cut: str,
                                                        rounding: str) -> None:
    """fp<2,1> operands (both signs, subnormals) into an fp<3,2> accumulator with the exponent floor inside
    their range: every (a, w, c) of one product exhaustively, then 150 x 3 seeded outputs of two steps."""
    mac = emu.MAC(act="fp<2,1>", weight="fp<2,1>", acc="fp<3,2>", order=f"fused({n})", align_bits=bits,
                  align_rounding=cut, acc_rounding=rounding, acc_overflow="saturate", align_min_exp=floor)
    vals, cs = _finite_values("fp<2,1>"), _finite_values("fp<3,2>")
    x = np.array(vals)
    for z in cs:
        _check_rows(mac, x[:, None], x[None, :], np.full((len(vals), len(vals)), z))
    rng = np.random.default_rng(n * 10 + bits)
    a = rng.choice(vals, (150, 2 * n))
    w = rng.choice(vals, (2 * n, 3))
    c = rng.choice(cs, (150, 3))
    _check_rows(mac, a, w, c)


def test_non_finite_terms_follow_the_twin() -> None:
    """inf, -inf and NaN operands and addends (the kernel's rare path) give the twin's IEEE results."""
    mac = emu.mac_preset("B200 fp16 -> fp16")
    a = np.array([[np.inf, 1.0, 2.0], [np.inf, -np.inf, 0.0], [np.nan, 1.0, 1.0], [1.0, 2.0, 3.0]])
    w = np.array([[1.0], [1.0], [1.0]])
    c = np.array([[1.0], [0.0], [0.0], [-np.inf]])
    _check_rows(mac, a, w, c)


def test_presets_follow_their_model_files() -> None:
    """The translation of each model's fma, neab, frmode and min_exp_limit (emu.matrix_units)."""
    want = {  # name: (n, align_bits, step rounding, accumulator, align_min_exp)
        "A2 fp16 -> fp32": (8, 24, "toward_zero", "fp32", None),
        "A30 tf32 -> fp32": (4, 24, "toward_zero", "fp32", None),
        "Ada fp16 -> fp16": (8, 24, "nearest_even", "fp16", None),
        "L40S e5m2 -> fp32": (16, 13, "toward_zero", "fp<8,13>", None),
        "H100 e5m2 -> fp32": (32, 13, "toward_zero", "fp<8,13>", -133),
        "B200 tf32 -> fp32": (8, 25, "toward_zero", "fp32", -133),
        "H200 fp16 -> fp16": (16, 25, "nearest_even", "fp16", -15),
        "RTX PRO 6000 e4m3 -> fp32": (32, 25, "toward_zero", "fp32", -133),
        "B200RN bf16 -> fp32": (16, 25, "nearest_even", "fp32", None),
    }
    for name, (n, bits, rounding, acc, floor) in want.items():
        m = emu.mac_preset(name)
        assert (m.order.n, m.align_bits, str(m.acc_rounding), str(m.acc), m.align_min_exp) == (
            n, bits, rounding, acc, floor), name
        assert f"align_bits {bits} = 23 + neab" in MATRIX_UNIT_SOURCES[name]
    for gpu in ("A2", "A30"):  # A2TC.m and A30TC.m call A100TC.m
        for unit in ("fp16 -> fp32", "fp16 -> fp16", "bf16 -> fp32", "tf32 -> fp32"):
            assert MATRIX_UNITS[f"{gpu} {unit}"] == MATRIX_UNITS[f"A100 {unit}"]
    assert "L40S fp16 -> fp16" not in MATRIX_UNITS  # L40STC.m refuses it
    # no fp8 -> fp16 path follows the model files' rule: the measured H100 unit, its inferred twins and
    # MMA-Sim's Ada units are the only ones
    fp8_fp16 = {name for name in MATRIX_UNITS
                if name.endswith("-> fp16") and name.split()[-3] in ("e4m3", "e5m2")}
    assert fp8_fp16 == {"H100 e4m3 -> fp16", *HOPPER_FP8_FP16_INFERRED, *ADA_FP8_FP16_UNITS}
    for name in fp8_fp16:
        assert "model of models/" not in MATRIX_UNIT_SOURCES[name], name


def test_b200rn_rounds_to_nearest_where_b200_truncates() -> None:
    """One step of 1 + 2^-23 + 2^-24 (+ 2^-25 so no tie): toward zero 1 + 2^-23, to nearest 1 + 2^-22."""
    a = [1.0, 2.0**-12, 2.0**-12, 2.0**-13]
    w = [1.0, 2.0**-11, 2.0**-12, 2.0**-12]
    A, W, C = np.array([a]), np.array(w)[:, None], np.zeros((1, 1))
    assert float(emu.matmul(A, W, "B200 fp16 -> fp32", c=C)[0, 0]) == 1.0 + 2.0**-23
    assert float(emu.matmul(A, W, "B200RN fp16 -> fp32", c=C)[0, 0]) == 1.0 + 2.0**-22


def test_amx_is_a_chain_of_flushing_binary32_fmas() -> None:
    """AMX bf16 -> fp32: each product joins the running binary32 sum with one rounding (an FMA), so
    1 + 2^-24 + 2^-24 rounds to 1 twice where the exact sum is 1 + 2^-23; bf16 subnormal inputs count as
    zero and binary32 subnormal results flush to zero."""
    from emu._ref.mac import mac_dot_ref

    mac = emu.mac_preset("AMX bf16 -> fp32")
    assert "Intel Intrinsics Guide" in MATRIX_UNIT_SOURCES["AMX bf16 -> fp32"]
    assert float(emu.matmul([[1.0, 2.0**-12, 2.0**-12]], [[1.0], [2.0**-12], [2.0**-12]], mac)[0, 0]) == 1.0
    assert float(emu.matmul([[2.0**-130]], [[2.0**10]], mac)[0, 0]) == 0.0  # input denormal: zero
    assert float(emu.matmul([[2.0**-70]], [[2.0**-60]], mac)[0, 0]) == 0.0  # output denormal: flushed
    exact = emu.MAC(act="bf16", weight="bf16", acc="fp32", fused=True)
    assert float(emu.matmul([[2.0**-70]], [[2.0**-60]], exact)[0, 0]) == 2.0**-130
    rng = np.random.default_rng(11)
    a = emu.quantize(rng.standard_normal((20, 9)) * np.exp2(rng.integers(-72, -60, (20, 9))), mac.act)
    w = emu.quantize(rng.standard_normal((9, 2)) * np.exp2(rng.integers(-72, -60, (9, 2))), mac.weight)
    got = emu.matmul(a, w, mac)
    assert (got == 0).any()
    assert (got != 0).any()
    for i, j in itertools.product(range(20), range(2)):
        want = mac_dot_ref(list(a[i]), list(w[:, j]), mac).value
        assert got[i, j] == float(want), (i, j)
