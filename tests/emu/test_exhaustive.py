"""Exhaustive tests of every small format (16 bits or fewer) against the neighbour oracle.

For every format in `emu.SMALL_FORMATS`, every deterministic rounding mode and
every overflow mode the format allows: every code, every midpoint between
neighbouring codes, one float64 step either side of it, one step inside each
neighbour, and the points around and beyond the largest and smallest values
convert to exactly the value and code `tests.neighbours` derives from first
principles. Both kernels are checked: the values-only fast path (`quantize`)
and the general integer path (`encode`, and values with codes).
"""

from __future__ import annotations

import numpy as np
import pytest

import emu
from emu import Overflow, Rounding
from emu.convert import convert_array
from tests.neighbours import DETERMINISTIC, canonical_codes, cases

NUMERIC_SMALL = [f for f in emu.SMALL_FORMATS if f.kind in ("fixed", "float", "pow2")]


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise-equal float64 (NaN equals NaN, -0 differs from +0)."""
    return (a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))


def _report(x: np.ndarray, got: np.ndarray, want: np.ndarray, bad: np.ndarray) -> str:
    rows = [f"x={x[i]!r} got={got[i]!r} want={want[i]!r}" for i in np.flatnonzero(bad)[:8]]
    return f"{bad.sum()} mismatches of {bad.size}:\n" + "\n".join(rows)


@pytest.mark.parametrize("fmt", NUMERIC_SMALL, ids=str)
def test_every_code_round_trips(fmt: emu.Format) -> None:
    codes = canonical_codes(fmt)
    values = emu.decode(codes, fmt)
    for mode in DETERMINISTIC:
        back = emu.encode(values, fmt, mode, nan=None)
        assert np.array_equal(back.astype(np.uint64), codes), (fmt, mode)
        assert np.all(_same(emu.quantize(values, fmt, mode), values)), (fmt, mode)


@pytest.mark.parametrize("fmt", NUMERIC_SMALL, ids=str)
@pytest.mark.parametrize("mode", DETERMINISTIC, ids=str)
def test_rounding_and_overflow_match_the_oracle(fmt: emu.Format, mode: Rounding) -> None:
    for ovf in fmt.overflow_modes:
        if ovf == Overflow.ERROR:
            continue
        c = cases(fmt, mode, ovf)
        fast = emu.quantize(c.x, fmt, mode, ovf)
        bad = ~_same(fast, c.value)
        assert not bad.any(), f"{fmt} {mode} {ovf} quantize\n" + _report(c.x, fast, c.value, bad)
        vals, codes, stats = convert_array(c.x, fmt, mode, ovf, None, None, None, True, True, "test")
        bad = ~_same(vals, c.value)
        assert not bad.any(), f"{fmt} {mode} {ovf} general\n" + _report(c.x, vals, c.value, bad)
        bad = codes.astype(np.uint64) != c.code
        assert not bad.any(), f"{fmt} {mode} {ovf} codes\n" + _report(c.x, codes, c.code, bad)
        assert stats.overflow == int(c.overflow.sum())


@pytest.mark.parametrize("fmt", NUMERIC_SMALL, ids=str)
def test_overflow_error_names_the_first_overflow(fmt: emu.Format) -> None:
    c = cases(fmt, Rounding.NEAREST_EVEN, Overflow.SATURATE)
    inside = c.x[~c.overflow]
    emu.quantize(inside, fmt, overflow="error")  # nothing overflows: no error
    first = int(np.flatnonzero(c.overflow)[0])
    with pytest.raises(OverflowError, match=rf"{int(c.overflow.sum())} of {c.x.size} value\(s\) overflow"
                       rf".*first at index \({first},\)"):
        emu.quantize(c.x, fmt, overflow="error")
