"""Round to odd: what it is for (conversion chains without double rounding) and where it applies.

The bit-exact checks of every kernel against the oracles run with every mode (tests/emu/test_exhaustive.py,
test_ref.py, test_properties.py); these tests pin the property users want it for."""

from __future__ import annotations

import numpy as np
import pytest

import emu

CHAINS = [("fp<8,9>", "bf16"), ("fp<5,12>", "fp16"), ("fx<4,12>", "fx<4,10>"), ("fp<5,5>", "e5m2"),
          ("fp<8,25>", "fp32")]


@pytest.mark.parametrize(("wide", "narrow"), CHAINS)
def test_to_odd_then_nearest_is_nearest_once(wide: str, narrow: str) -> None:
    """Boldo and Melquiond (2008): rounding to odd with at least two more fraction bits, then to nearest
    even, is rounding to nearest even once; rounding to nearest twice is not (the test finds such values)."""
    rng = np.random.default_rng(0)
    nf = emu.format(narrow)
    x = rng.uniform(-1, 1, 200_000) * min(nf.max, 4.0)
    once = emu.quantize(x, narrow)
    chained = emu.quantize(emu.quantize(x, wide, "to_odd"), narrow)
    assert np.array_equal(chained, once)
    twice = emu.quantize(emu.quantize(x, wide), narrow)
    assert np.count_nonzero(twice != once) > 0


def test_to_odd_picks_the_odd_code_and_keeps_exact_values() -> None:
    codes = emu.encode([1.0, 1.0 + 2.0**-12, 1.0 + 2.0**-10 + 2.0**-12, 65519.0, 7.0], "fp16", "to_odd")
    assert [int(c) for c in codes] == [0x3C00, 0x3C01, 0x3C01, 0x7BFF, 0x4700]
    # beyond the largest value: the largest value (as toward zero), never inf; e4m3's largest code is even
    assert float(emu.quantize(1e6, "fp16", "to_odd", "inf")) == 65504.0
    q, st = emu.quantize([460.0], "e4m3", "to_odd", return_stats=True)
    assert (float(q[0]), st.overflow) == (448.0, 1)
    # powers of two: the odd code K (2^k has K = k - emin + 1)
    assert emu.quantize([0.75, 1.5, 0.3], "pow2<-8,0>", "to_odd").tolist() == [1.0, 1.0, 0.25]


def test_to_odd_is_refused_where_a_code_has_no_parity_to_choose() -> None:
    for fmt in ("binary", "ternary"):
        with pytest.raises(ValueError, match=rf"^quantize: rounding='to_odd' does not apply to {fmt}; binary"
                                             " and ternary formats round by their own rule"):
            emu.quantize([0.3], fmt, "to_odd")


@pytest.mark.parametrize("name", ["fp<3,1,bias=-2>", "fp<4,3,bias=-100>", "fp<5,2,bias=-7,ftz>"])
def test_tiny_inputs_of_a_format_whose_subnormal_step_exceeds_one(name: str) -> None:
    """A format whose smallest normal is above 2^M (a small or negative bias: emin > M) measures a
    subnormal magnitude in steps of 2^(emin - M) > 1, so the float64 inputs far below one step vanish when
    scaled to it; the directed modes (and to odd) must still see them as nonzero: ceil of a tiny positive
    input is the smallest subnormal (or the smallest normal without subnormals), floor of a tiny negative
    one its negative, to odd both; without subnormals they flush to zero first. Every deterministic mode
    and overflow rule (the fast kernels and, under ``error``, the general one) against the exact
    reference."""
    from emu._ref.scalar import quantize_ref

    fmt = emu.format(name)
    xs = [5e-324, -5e-324, 1e-310, -1e-310, 2.0**-1000, -(2.0**-1000), 1e-300, 3.0 * fmt.smallest_subnormal]
    for mode in ["nearest_even", "nearest_away", "toward_zero", "floor", "ceil", "to_odd"]:
        for ovf in ["saturate", "inf", "error"]:
            got, st = emu.quantize(np.array(xs), fmt, mode, ovf, return_stats=True)
            refs = [quantize_ref(x, fmt, emu.Rounding[mode.upper()], emu.Overflow[ovf.upper()]) for x in xs]
            want = np.array([float(r.value) for r in refs])
            assert np.array_equal(got.view(np.uint64), want.view(np.uint64)), (mode, ovf, got, want)
            assert st.underflow == sum(r.underflow for r in refs), (mode, ovf)
    tiniest = emu.quantize(np.array([5e-324, -5e-324]), fmt, "to_odd")
    step = fmt.smallest_subnormal if fmt.subnormals else 0.0
    assert tiniest.tolist() == [step, -step]
