"""Matrix units: the multi-term fused datapath against its exact twin, and every measured tensor-core dot
product reproduced bit for bit by its preset (golden data in tests/golden/tensorcore)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import emu
from emu._ref.fused import fused_dot_ref
from emu.amd_units import AMD_UNITS
from emu.matrix_units import (
    ADA_FP8_FP16_UNITS,
    HOPPER_FP8_FP16_INFERRED,
    INTEL_UNITS,
    MATRIX_UNIT_SOURCES,
    MATRIX_UNITS,
    MEASURED_UNITS,
    OTHER_PATH_UNITS,
    TURING_UNITS,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "tensorcore" / "measured.npz"

#: preset -> (data key, output); the H100 e4m3 -> fp32 lines reproduce with C = 0 (not with the C their
#: harness passed: test_the_h100_fp8_fp32_lines_carry_no_addend)
MEASURED = {name: (f"{name.split()[0]}_{name.split()[1]}", name.split()[-1]) for name in MEASURED_UNITS}


@pytest.fixture(scope="module")
def measured() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_every_measured_dot_product_is_reproduced(name: str, measured: dict[str, np.ndarray]) -> None:
    key, out = MEASURED[name]
    a = measured[f"{key}_a"].view(np.float32).astype(np.float64)
    b = measured[f"{key}_b"].view(np.float32).astype(np.float64)
    c = measured[f"{key}_c"].view(np.float32).astype(np.float64)
    if name == "H100 e4m3 -> fp32":
        c = np.zeros_like(c)
    want = measured[f"{key}_d_{out}"]
    mac = emu.mac_preset(name)
    got = emu.matmul(a[:, None, :], b[:, :, None], mac, c=c[:, None, None])[:, 0, 0]
    got_bits = got.astype(np.float32).view(np.uint32)
    wrong = np.flatnonzero(got_bits != want)
    assert wrong.size == 0, (f"{name}: {wrong.size} of {want.size} lines differ; first line {wrong[:1]}:"
                             f" {got[wrong[:1]]} vs {want[wrong[:1]].view(np.float32)}")
    assert len(want) == 5000


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_the_exact_twin_reproduces_the_measured_lines(name: str, measured: dict[str, np.ndarray]) -> None:
    """The Python-integer twin (`emu._ref.fused`) on the first 150 lines of every measurement: C rounded to
    nearest even into the accumulator first, as `emu.matmul` does and the harnesses did."""
    key, out = MEASURED[name]
    mac = emu.mac_preset(name)
    a, b, c = (measured[f"{key}_{x}"][:150].view(np.float32).astype(np.float64) for x in "abc")
    if name == "H100 e4m3 -> fp32":
        c = np.zeros_like(c)
    a = emu.quantize(a, mac.act, mac.input_rounding)
    b = emu.quantize(b, mac.weight, mac.input_rounding)
    c = emu.quantize(c, mac.acc)
    want = measured[f"{key}_d_{out}"][:150]
    for i in range(150):
        got, _ = fused_dot_ref(list(a[i]), list(b[i]), float(c[i]), mac)
        assert np.float32(got).view(np.uint32) == want[i], (name, i, got)


def test_the_h100_fp8_fp32_lines_carry_no_addend(measured: dict[str, np.ndarray]) -> None:
    """mma_fp8_output_fp32.cu passes C (the binary32 C stored here) to mma.sync, yet the recorded D of the
    first 500 lines are those of C = 0: with the stored C none is reproduced."""
    a, b, c = (measured[f"H100_e4m3_{x}"][:500].view(np.float32).astype(np.float64) for x in "abc")
    want = measured["H100_e4m3_d_fp32"][:500]
    assert np.count_nonzero(c) == 500
    for addend, hits in ((np.zeros_like(c), 500), (c, 0)):
        got = emu.matmul(a[:, None, :], b[:, :, None], "H100 e4m3 -> fp32", c=addend[:, None, None])[:, 0, 0]
        assert np.count_nonzero(got.astype(np.float32).view(np.uint32) == want) == hits


def test_the_measurement_is_not_reproduced_by_neighbouring_parameters(
        measured: dict[str, np.ndarray]) -> None:
    """The data pin the parameters: one bit more or less alignment, or nearest-even steps, miss lines."""
    a = measured["A100_fp16_a"][:400].view(np.float32).astype(np.float64)
    b = measured["A100_fp16_b"][:400].view(np.float32).astype(np.float64)
    c = measured["A100_fp16_c"][:400].view(np.float32).astype(np.float64)
    want = measured["A100_fp16_d_fp32"][:400]
    for change in (dict(align_bits=23), dict(align_bits=25), dict(acc_rounding="nearest_even")):
        mac = emu.mac_preset("A100 fp16 -> fp32", **change)
        got = emu.matmul(a[:, None, :], b[:, :, None], mac, c=c[:, None, None])[:, 0, 0]
        assert (got.astype(np.float32).view(np.uint32) != want).sum() > 10, change


def test_every_unit_names_its_source() -> None:
    """Every NVIDIA unit names its source and alignment bits (AMD: tests/emu/test_amd_units.py; Intel AMX:
    tests/emu/test_matrix_units_more.py; the MMA-Sim paths: tests/emu/test_matrix_unit_paths.py)."""
    assert set(MATRIX_UNIT_SOURCES) == set(MATRIX_UNITS)
    assert set(MEASURED_UNITS) <= set(MATRIX_UNITS)
    others = (set(AMD_UNITS) | set(INTEL_UNITS) | set(TURING_UNITS) | set(OTHER_PATH_UNITS)
              | set(HOPPER_FP8_FP16_INFERRED) | set(ADA_FP8_FP16_UNITS))
    assert others <= set(MATRIX_UNITS)
    for name in sorted(set(MATRIX_UNITS) - others):
        assert "Khattak & Mikaitis" in MATRIX_UNIT_SOURCES[name]
        assert f"align_bits {emu.mac_preset(name).align_bits}" in MATRIX_UNIT_SOURCES[name]
        checked = "reproduce every measured line" in MATRIX_UNIT_SOURCES[name]
        assert checked == (name in MEASURED_UNITS), name
        if not checked:
            assert "model of models/" in MATRIX_UNIT_SOURCES[name]
            assert "not checked against measurements in this repository" in MATRIX_UNIT_SOURCES[name]


def test_tf32_presets_ignore_the_low_13_bits() -> None:
    x = 1.0 + 2.0**-11 + 2.0**-20  # tf32 keeps 10 fraction bits: 1 + 2^-11 + 2^-20 truncates to 1
    got = emu.matmul([[x]], [[1.0]], "A100 tf32 -> fp32")
    assert float(got[0, 0]) == 1.0


def _small_values(fmt: str) -> list[float]:
    f = emu.format(fmt)
    v = emu.decode(np.arange(1 << f.bits), f)
    return sorted({float(x) for x in v if np.isfinite(x)})


def _check_against_twin(mac: emu.MAC, rows: list[tuple[list[float], list[float], float]]) -> None:
    a = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows])
    c = np.array([r[2] for r in rows])
    got = emu.matmul(a[:, None, :], w[:, :, None], mac, c=c[:, None, None])[:, 0, 0]
    for i, (ra, rw, rc) in enumerate(rows):
        want, _ = fused_dot_ref(ra, rw, rc, mac)
        assert got[i] == want, (ra, rw, rc, got[i], want)
        assert np.signbit(got[i]) == np.signbit(want), (ra, rw, rc, got[i], want)


@pytest.mark.parametrize(("n", "bits", "cut", "rounding"),
                         [(1, 2, "toward_zero", "toward_zero"), (2, 3, "toward_zero", "nearest_even"),
                          (3, 4, "floor", "toward_zero"), (2, 1, "floor", "nearest_even"),
                          (4, 6, "toward_zero", "floor"), (8, 5, "floor", "nearest_even"),
                          (5, 3, "floor", "toward_zero")])
def test_kernel_matches_the_exact_twin_on_small_formats(n: int, bits: int, cut: str, rounding: str) -> None:
    """fp<2,1> operands (both signs, subnormals) into an fp<3,2> accumulator: every (a, w, c) of one
    product exhaustively, then 600 seeded rows of two steps."""
    mac = emu.MAC(act="fp<2,1>", weight="fp<2,1>", acc="fp<3,2>", order=f"fused({n})", align_bits=bits,
                  align_rounding=cut, acc_rounding=rounding, acc_overflow="saturate")
    vals = _small_values("fp<2,1>")
    cs = _small_values("fp<3,2>")
    _check_against_twin(mac, [([x], [y], z) for x, y, z in itertools.product(vals, vals, cs)])
    rng = np.random.default_rng(n * 10 + bits)
    pairs = list(itertools.product(vals, repeat=2))
    rows = []
    for _ in range(600):
        idx = rng.integers(0, len(pairs), n + 1)
        rows.append(([pairs[i][0] for i in idx], [pairs[i][1] for i in idx], float(rng.choice(cs))))
    _check_against_twin(mac, rows)


def test_kernel_matches_the_exact_twin_on_random_preset_inputs() -> None:
    """Seeded random fp16 and bf16 products of several steps through three presets, with the threaded
    kernel (a 64 x 96 x 64 product) and the twin on every output."""
    rng = np.random.default_rng(1)
    for name in ("V100 fp16 -> fp32", "H100 bf16 -> fp32", "A100 fp16 -> fp16"):
        mac = emu.mac_preset(name)
        a = emu.quantize(rng.standard_normal((64, 96)) * np.exp2(rng.integers(-12, 12, (64, 96))), mac.act)
        w = emu.quantize(rng.standard_normal((96, 64)), mac.weight)
        c = emu.quantize(rng.standard_normal((64, 64)), mac.acc)
        got = emu.matmul(a, w, mac, c=c)
        for i, j in zip(rng.integers(0, 64, 40), rng.integers(0, 64, 40), strict=True):
            want, _ = fused_dot_ref(list(a[i]), list(w[:, j]), float(c[i, j]), mac)
            assert got[i, j] == want, (name, i, j)


def test_column_tiles_give_the_untiled_result(monkeypatch: pytest.MonkeyPatch) -> None:
    """`run_fused` runs columns in tiles of `COLUMN_TILE`: 300 columns (two full tiles and a short one, the
    threaded kernel) give the values and overflow counts of one untiled call, and sampled outputs the
    twin's; with C per output, overflows and an instruction whose addend enters last."""
    from emu import _fused_kernels as FK

    rng = np.random.default_rng(3)
    for name in ("H100 fp16 -> fp16", "H100 e4m3 -> fp16"):
        mac = emu.mac_preset(name)
        a = emu.quantize(rng.standard_normal((24, 70)) * 8.0, mac.act)
        w = emu.quantize(rng.standard_normal((70, 300)) * 8.0, mac.weight)
        c = emu.quantize(rng.uniform(-65000.0, 65000.0, (24, 300)), mac.acc)  # near binary16's top
        tiled, tcnt = FK.run_fused(a, w, c, mac)
        monkeypatch.setattr(FK, "COLUMN_TILE", 1 << 20)
        whole, wcnt = FK.run_fused(a, w, c, mac)
        monkeypatch.undo()
        assert np.array_equal(tiled, whole, equal_nan=True)
        assert np.array_equal(tcnt, wcnt)
        assert wcnt.sum() > 0
        for i, j in zip(rng.integers(0, 24, 30), [0, 127, 128, 255, 256, 299, *rng.integers(0, 300, 24)],
                        strict=True):
            want, over = fused_dot_ref(list(a[i]), list(w[:, j]), float(c[i, j]), mac)
            assert tiled[i, j] == want or (np.isnan(want) and np.isnan(tiled[i, j])), (name, i, j)
            assert tcnt[i, j] == over, (name, i, j)


def test_special_values_and_overflow_are_counted() -> None:
    mac = emu.mac_preset("V100 fp16 -> fp16")
    got, st = emu.matmul([[60000.0, 60000.0]], [[1.0], [1.0]], mac, return_stats=True)
    assert np.isinf(got[0, 0])
    assert st.acc_overflow == 1
    assert np.isnan(emu.matmul([[np.nan, 1.0]], [[0.0], [1.0]], mac)[0, 0])  # inputs saturate; NaN stays
    # every term zero: -0 only when the addend and every product are -0 (as the twin says)
    for a, w, c, negative in (([-0.0, 0.0], [1.0, -1.0], -0.0, True), ([-0.0, 0.0], [1.0, 1.0], -0.0, False),
                              ([-0.0, -0.0], [1.0, 1.0], 0.0, False)):
        got = emu.matmul([a], np.array(w)[:, None], mac, c=[[c]])[0, 0]
        want, _ = fused_dot_ref(a, w, c, mac)
        assert got == 0.0
        assert np.signbit(got) == np.signbit(want) == negative, (a, w, c)


def test_fused_steps_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match=r"order='fused\(4\)' needs align_bits"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(4)")
    with pytest.raises(ValueError, match="align_bits=3 applies to order='fused"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", align_bits=3)
    with pytest.raises(ValueError, match="needs float formats; act=fx<4,4>"):
        emu.MAC(act="fx<4,4>", weight="fp16", acc="fp32", order="fused(4)", align_bits=3)
    with pytest.raises(ValueError, match="align_rounding=nearest_even does not apply"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(4)", align_bits=3,
                align_rounding="nearest_even")
    with pytest.raises(ValueError, match="product= and fused= do not apply"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(4)", align_bits=3, product="fp16")
    with pytest.raises(ValueError, match="align_bits=41 outside"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(4)", align_bits=41)
    with pytest.raises(ValueError, match="align_min_exp=-15 applies to order='fused"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", align_min_exp=-15)
    with pytest.raises(ValueError, match="align_min_exp=1001 outside"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(4)", align_bits=3, align_min_exp=1001)
    with pytest.raises(TypeError, match="align_min_exp=True must be an int"):
        emu.MAC(act="fp16", weight="fp16", acc="fp32", order="fused(4)", align_bits=3, align_min_exp=True)
    with pytest.raises(ValueError, match="align_min_exp=-15 does not apply to block-scaled"):
        emu.MAC(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32", align_min_exp=-15)



@pytest.mark.parametrize("rounding", ["toward_zero", "floor", "ceil", "nearest_away", "to_odd",
                                      "nearest_even"])
def test_kernel_matches_the_twin_on_subnormal_step_results(rounding: str) -> None:
    """Steps whose cut sums fall between the subnormals of an fp<3,2> accumulator (step 2^-4, normals from
    2^-2), so that every mode's own rounding of subnormal results is exercised (the kernel rounds normal
    results by one rule and leaves the others to the full rounding)."""
    mac = emu.MAC(act="fp<4,3>", weight="fp<4,3>", acc="fp<3,2>", order="fused(4)", align_bits=10,
                  acc_rounding=rounding, acc_overflow="saturate")
    vals = [v for v in _small_values("fp<4,3>") if abs(v) <= 0.5]
    cs = [v for v in _small_values("fp<3,2>") if abs(v) < 0.25]
    rng = np.random.default_rng(len(rounding))
    rows = [([float(v) for v in rng.choice(vals, 6)], [float(v) for v in rng.choice(vals, 6)],
             float(rng.choice(cs))) for _ in range(400)]
    _check_against_twin(mac, rows)
    a, w = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    c = np.array([r[2] for r in rows])[:, None, None]
    got = emu.matmul(a[:, None, :], w[:, :, None], mac, c=c)
    subnormal = (got != 0) & (np.abs(got) < 0.25)
    assert subnormal.sum() > 50
    if rounding != "nearest_even":  # the mode decides some of them
        ne = emu.matmul(a[:, None, :], w[:, :, None], replace(mac, acc_rounding="nearest_even"), c=c)
        assert (got != ne)[subnormal].any()


def _t4(a: list[float], b: list[float], c: float, out: str = "fp32") -> float:
    """One 4-product dot product c + a.b through the T4 preset of that output."""
    mac = emu.mac_preset(f"T4 fp16 -> {out}")
    return float(emu.matmul([a], [[x] for x in b], mac, c=[[c]])[0, 0])


def test_t4_presets_follow_the_published_feature_tests() -> None:
    """The T4 presets are V100's fields, sourced to Fasi et al. 2021, and give the outcomes that paper's
    feature suite (one 4-product dot product per test) reports for its GPUs: exact products, binary32
    accumulation aligned to the largest term with no guard bit, two carry bits, truncation of binary32
    results, nearest even into binary16."""
    for out in ("fp32", "fp16"):
        assert TURING_UNITS[f"T4 fp16 -> {out}"] == MATRIX_UNITS[f"V100 fp16 -> {out}"]
        assert "Fasi, Higham, Mikaitis & Pranesh" in MATRIX_UNIT_SOURCES[f"T4 fp16 -> {out}"]
    u = 2.0**-24
    below = 1 - 2.0**-11
    assert _t4([below, 0, 0, 0], [below, 0, 0, 0], 0.0) == 1 - 2.0**-10 + 2.0**-22  # exact product
    assert _t4([0.5] * 4, [u] * 4, 1.0) == 1.0  # four 2^-25 terms vanish below 1's 23 bits
    assert _t4([1, 1, 1, 1], [2.0, 2.0**-23 + u, 0, 0], 0.0) == 2.0  # truncation of a positive sum
    assert _t4([1, 1, 1, 1], [-2.0, -(2.0**-23) - u, 0, 0], 0.0) == -2.0  # and of a negative one
    assert _t4([u, u, 0, 0], [0.5, 0.25, 0, 0], 0.0, "fp16") == u  # 0.75 * 2^-24 to nearest: 2^-24
    assert _t4([1, 0, 0, 0], [1, 0, 0, 0], -(1 - u)) == 2.0**-23  # no guard bit: -(1 - 2^-24) is cut
    assert _t4([1, 1, 1, 1], [1.0, 1.5, 1.75, 1.875], 1.875) == 8.0  # a sum of 8.0: no carry lost
    assert _t4([1, 1, 1, 1], [1, 1, 1, 1], 1 + 2.0**-22 + 2.0**-23) == 5.0  # cut after the carry
    assert _t4([1, 1, 1, 1], [-1, -1, -1, -1], -1 - 2.0**-22 - 2.0**-23) == -5.0
