"""emu against APyTypes, an independent implementation of fixed- and floating-point arithmetic.

Pinned bit for bit: fixed-point conversions in every deterministic rounding mode (APyTypes' TIES_EVEN,
TIES_AWAY, TIES_POS, TIES_NEG, TO_NEG, TO_ZERO, TO_POS and JAM_UNBIASED, round to odd) under saturation
and wrapping, radix points inside and outside the word, on every multiple of a fine grid of a small
format and on seeded random inputs of wider ones; float conversions of custom formats (exponent bits,
fraction bits, bias) with IEEE overflow to inf, at and next to every tie; and the multiply-accumulate:
APyTypes' products under an accumulator context (each product aligned to a fixed accumulator with the
context's rounding, or added into a float accumulator and rounded once)
against emu's sequential datapath. APyTypes writes a NaN as the code with fraction 0..01 where emu keeps
the NaN's payload (tests/emu/test_nan_codes.py), so NaN is left out of the float comparisons.
"""

from __future__ import annotations

import apytypes as apy
import numpy as np
import pytest

import emu

QM, OM = apy.QuantizationMode, apy.OverflowMode
MODES = {"nearest_even": QM.TIES_EVEN, "nearest_away": QM.TIES_AWAY, "nearest_up": QM.TIES_POS,
         "nearest_down": QM.TIES_NEG, "floor": QM.TO_NEG, "toward_zero": QM.TO_ZERO, "ceil": QM.TO_POS,
         "to_odd": QM.JAM_UNBIASED}
OVERFLOWS = {"saturate": OM.SAT, "wrap": OM.WRAP}
FIXED = [(4, 4), (1, 7), (2, 14), (-2, 10), (6, -2), (3, 0), (8, 24)]
FLOATS = [(4, 3, None), (5, 2, None), (5, 10, None), (8, 7, None), (3, 2, None), (6, 7, None), (2, 1, None),
          (4, 3, 3), (4, 3, 12), (5, 4, 20)]


def _apy_fixed(x: np.ndarray, il: int, fl: int, extra: int) -> apy.APyFixedArray:
    """x exactly, in a fixed format ``extra`` bits finer and 8 integer bits wider than <il, fl>."""
    wide = apy.APyFixedArray.from_float(x, int_bits=il + 8, frac_bits=fl + extra)
    np.testing.assert_array_equal(wide.to_numpy(), x)  # from_float rounds: the inputs must be on its grid
    return wide


@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("mode", MODES)
def test_every_multiple_of_a_fine_grid_converts_as_apytypes_does(mode: str, overflow: str) -> None:
    """fx<3,3> (6 bits): every multiple of 2^-6 over four times its range, ties and overflows of both
    signs included."""
    fmt = emu.FixedFormat(3, 3)
    x = np.arange(-(1 << 11), 1 << 11) * 2.0**-6
    want = _apy_fixed(x, 3, 3, 3).cast(int_bits=3, frac_bits=3, quantization=MODES[mode],
                                       overflow=OVERFLOWS[overflow]).to_numpy()
    np.testing.assert_array_equal(emu.quantize(x, fmt, mode, overflow), want)


@pytest.mark.parametrize("overflow", OVERFLOWS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("il", "fl"), FIXED, ids=[f"fx<{i},{f}>" for i, f in FIXED])
def test_fixed_conversions_match_apytypes(il: int, fl: int, mode: str, overflow: str) -> None:
    """Seeded multiples of 2^-(FL+6) up to 2^7 times the range: ties (one input in 64), values between,
    overflows; the codes as well as the values."""
    fmt = emu.FixedFormat(il, fl)
    rng = np.random.default_rng(1000 + il * 100 + fl)
    x = rng.integers(-(1 << (il + fl + 12)), 1 << (il + fl + 12), 3000) * 2.0 ** -(fl + 6)
    got = _apy_fixed(x, il, fl, 6).cast(int_bits=il, frac_bits=fl, quantization=MODES[mode],
                                       overflow=OVERFLOWS[overflow])
    np.testing.assert_array_equal(emu.quantize(x, fmt, mode, overflow), got.to_numpy())
    np.testing.assert_array_equal(emu.encode(x, fmt, mode, overflow).astype(np.uint64),
                                  np.asarray(got.to_bits()).astype(np.uint64))


def _float_inputs(e: int, m: int, bias: int | None, rng: np.random.Generator) -> np.ndarray:
    """Values across the format's range and beyond (subnormals, overflow), every midpoint between two of
    its neighbouring values and the float64 values next to those midpoints, zeros and infinities."""
    fmt = emu.FloatFormat(e, m, bias)
    b = fmt.bias
    x = rng.standard_normal(2000) * 2.0 ** rng.integers(1 - b - m - 3, (1 << e) - b + 2, 2000)
    v = np.unique(np.abs(emu.decode(np.arange(1 << (e + m)), fmt)))
    v = v[np.isfinite(v)]
    mid = (v[:-1] + v[1:]) / 2  # exact: at most 52 fraction bits
    near = np.concatenate([mid, np.nextafter(mid, 0), np.nextafter(mid, np.inf)])
    return np.concatenate([x, near, -near, [0.0, -0.0, np.inf, -np.inf, fmt.max, -fmt.max]])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("e", "m", "bias"), FLOATS, ids=[f"fp<{e},{m}>b{b}" for e, m, b in FLOATS])
def test_float_conversions_match_apytypes(e: int, m: int, bias: int | None, mode: str) -> None:
    fmt = emu.FloatFormat(e, m, bias)
    x = _float_inputs(e, m, bias, np.random.default_rng(10 * e + m))
    exact = apy.APyFloatArray.from_float(x, exp_bits=20, man_bits=52)  # float64 values, exactly
    want = exact.cast(exp_bits=e, man_bits=m, bias=fmt.bias, quantization=MODES[mode])
    got = emu.encode(x, fmt, mode, "inf").astype(np.uint64)
    np.testing.assert_array_equal(got, np.asarray(want.to_bits()).astype(np.uint64))


FIXED_MACS = [("fx<4,4>", "fx<2,6>", 12, 6, "floor"), ("fx<4,4>", "fx<2,6>", 12, 3, "nearest_even"),
              ("fx<4,4>", "fx<2,6>", 12, 3, "toward_zero"), ("fx<3,5>", "fx<3,5>", 10, 8, "nearest_away"),
              ("fx<3,5>", "fx<3,5>", 10, 4, "ceil"), ("fx<8,0>", "fx<8,0>", 24, -2, "floor")]


@pytest.mark.parametrize(("act", "weight", "il", "fl", "align"), FIXED_MACS,
                         ids=[f"{c[0]}x{c[1]}->fx<{c[2]},{c[3]}>-{c[4]}" for c in FIXED_MACS])
def test_fixed_accumulators_match_apytypes(act: str, weight: str, il: int, fl: int, align: str) -> None:
    """APyTypes' fixed-point product under an accumulator context: each exact product brought to the
    accumulator's grid with the context's rounding (emu's ``align_rounding``), then added in k order.
    APyTypes 0.5's context neither wraps nor saturates the running sum (16 products of 11.25 into
    fx<6,6> give 180.0 under either overflow mode), so these accumulators are wide enough that nothing
    overflows; emu's wrapping and saturating sums are pinned against the exact reference
    (tests/emu/test_mac_ref.py, tests/emu/test_fixed_kernels.py)."""
    rng = np.random.default_rng(il * 10 + fl + 100)
    fa, fw = emu.format(act), emu.format(weight)
    a = emu.quantize(rng.uniform(fa.min, fa.max, (7, 45)), fa)
    w = emu.quantize(rng.uniform(fw.min, fw.max, (45, 6)), fw)
    A = apy.APyFixedArray.from_float(a, int_bits=fa.int_bits, frac_bits=fa.frac_bits)
    W = apy.APyFixedArray.from_float(w, int_bits=fw.int_bits, frac_bits=fw.frac_bits)
    with apy.APyFixedAccumulatorContext(int_bits=il, frac_bits=fl, quantization=MODES[align],
                                        overflow=OM.SAT):
        want = (A @ W).to_numpy()
    mac = emu.MAC(act=fa, weight=fw, acc=emu.FixedFormat(il, fl), acc_overflow="saturate",
                  align_rounding=align)
    got, st = emu.matmul(a, w, mac, return_stats=True)
    assert st.acc_overflow == 0
    assert not np.array_equal(got, a @ w)  # the alignment rounds: the comparison sees it act
    np.testing.assert_array_equal(got, want)


def test_an_exact_fixed_accumulator_is_apytypes_full_precision_product() -> None:
    rng = np.random.default_rng(3)
    a = emu.quantize(rng.standard_normal((6, 50)) * 3, "fx<4,4>")
    w = emu.quantize(rng.standard_normal((50, 5)), "fx<2,6>")
    want = (apy.APyFixedArray.from_float(a, int_bits=4, frac_bits=4)
            @ apy.APyFixedArray.from_float(w, int_bits=2, frac_bits=6)).to_numpy()
    got = emu.matmul(a, w, emu.MAC(act="fx<4,4>", weight="fx<2,6>", acc="exact"))
    np.testing.assert_array_equal(got, want)


FLOAT_MACS = [("bf16", "fp32", "nearest_even"), ("bf16", "bf16", "nearest_even"),
              ("fp16", "fp16", "nearest_even"), ("fp16", "fp<5,6>", "toward_zero"),
              ("fp16", "fp<5,6>", "ceil"), ("bf16", "fp<8,4>", "nearest_away"),
              ("fp<4,3>", "fp<5,4>", "floor")]


@pytest.mark.parametrize(("operands", "acc", "mode"), FLOAT_MACS, ids=["-".join(c) for c in FLOAT_MACS])
def test_float_accumulators_match_apytypes(operands: str, acc: str, mode: str) -> None:
    """APyTypes' float product under an accumulator context: each exact product added in k order into the
    accumulator format, rounded once per addition in the context's mode (emu's sequential order)."""
    rng = np.random.default_rng(len(acc) + len(mode))
    fo, fa = emu.format(operands), emu.format(acc)
    a = emu.quantize(rng.standard_normal((5, 40)) * 4, fo)
    w = emu.quantize(rng.standard_normal((40, 6)), fo)
    A = apy.APyFloatArray.from_float(a, exp_bits=fo.exp_bits, man_bits=fo.man_bits)
    W = apy.APyFloatArray.from_float(w, exp_bits=fo.exp_bits, man_bits=fo.man_bits)
    with apy.APyFloatAccumulatorContext(exp_bits=fa.exp_bits, man_bits=fa.man_bits, quantization=MODES[mode]):
        want = (A @ W).to_numpy()
    got = emu.matmul(a, w, emu.MAC(act=fo, weight=fo, acc=fa, acc_rounding=mode))
    np.testing.assert_array_equal(got, want)
