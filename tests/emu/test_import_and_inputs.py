"""Importing emu changes no global setting; complex arrays, ml_dtypes' complex types included, are
refused as inputs (they lost their imaginary part); a zero binary or ternary scale counts
underflows; error metrics take arrays of one shape, give numpy scalars for scalars and refuse
thresholds that are not a tuple or list of finite numbers >= 0; `bits` names itself for an unknown
keyword."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import emu


def test_importing_emu_leaves_the_environment_alone() -> None:
    """threadpoolctl, imported by emu at module level, set KMP_DUPLICATE_LIB_OK for the whole process."""
    env = {k: v for k, v in os.environ.items() if k != "KMP_DUPLICATE_LIB_OK"}
    code = "import os, emu; print(os.environ.get('KMP_DUPLICATE_LIB_OK'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"


def test_an_ml_dtypes_complex_array_is_refused() -> None:
    z = np.array([1 + 2j, 3 - 4j], dtype=ml_dtypes.bcomplex32)
    with pytest.raises(TypeError, match=r"^quantize: x has dtype bcomplex32; expected real numbers"):
        emu.quantize(z, "fx<4,4>")
    with pytest.raises(TypeError, match=r"^absolute_error: x has dtype complex; expected real numbers"):
        emu.absolute_error(z, [0, 0])
    with pytest.raises(TypeError, match=r"^mask_float32: x has dtype complex"):
        emu.mask_float32(z, 23)


def test_a_zero_scale_counts_the_values_it_zeroes_as_underflow() -> None:
    """Scaled binary or ternary with scale 0: every nonzero input becomes 0, an underflow (it was 0)."""
    _, st = emu.quantize([1.0, -2.0, 0.0], "binary<scale=tensor>", scale=0.0, return_stats=True)
    assert (st.size, st.underflow) == (3, 2)
    _, st = emu.quantize([1.0, -2.0, 0.1], "ttq", scale=(0.0, 0.0), return_stats=True)
    assert st.underflow == 3


def test_error_metrics_refuse_arrays_of_different_shapes() -> None:
    """q is x converted value for value: a length mismatch failed with numpy's unnamed broadcast error and
    a (2, 2) q silently repeated a (2,) x."""
    with pytest.raises(ValueError, match=r"^absolute_error: x has shape \(2,\) and q \(3,\)"):
        emu.absolute_error([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"^error_summary: x has shape \(2,\) and q \(2, 2\)"):
        emu.error_summary([1.0, 2.0], [[1.0, 2.0], [2.0, 2.0]])


def test_encode_counts_a_zero_scales_underflow_as_quantize_does() -> None:
    (_, scale), st = emu.encode([1.0, -2.0], "binary<scale=tensor>", scale=0.0, return_stats=True)
    assert (float(scale), st.underflow) == (0.0, 2)


def test_relative_error_of_scalars_is_a_numpy_scalar_as_absolute_error() -> None:
    """relative_error gave a 0-d array where absolute_error gives a numpy scalar."""
    r, a = emu.relative_error(2.0, 2.5), emu.absolute_error(2.0, 2.5)
    assert type(r) is type(a) is np.float64
    assert (float(r), float(a)) == (0.25, 0.5)
    assert type(emu.relative_error(0.0, 0.0)) is np.float64
    assert emu.relative_error([2.0], [2.5]).shape == (1,)


@pytest.mark.parametrize("thresholds", [0.1, 1, "0.1", None, {0.1}, np.array([0.1])])
def test_error_summary_refuses_thresholds_not_a_tuple_or_list(thresholds: object) -> None:
    with pytest.raises(TypeError, match=r"^error_summary: thresholds=.* must be a tuple or list of relative"
                                        r" errors >= 0"):
        emu.error_summary([1.0], [1.0], thresholds=thresholds)  # type: ignore[arg-type]


@pytest.mark.parametrize("t", [-0.5, -1e-300])
def test_error_summary_refuses_a_negative_threshold(t: float) -> None:
    with pytest.raises(ValueError, match=rf"^error_summary: thresholds element={t!r} outside the allowed"
                                         r" range \[0, inf\)$"):
        emu.error_summary([1.0, 2.0], [1.0, 2.5], thresholds=(0.1, t))
    with pytest.raises(ValueError, match=r"^error_summary: thresholds element"):
        emu.error_summary([], [], thresholds=[t])  # refused on empty arrays too


@pytest.mark.parametrize("t", ["0.1", True, None, math.nan, math.inf, -math.inf])
def test_error_summary_refuses_a_threshold_not_a_finite_number(t: object) -> None:
    with pytest.raises(TypeError, match=rf"^error_summary: thresholds element={re.escape(repr(t))} must be a"
                                        r" finite real number$"):
        emu.error_summary([1.0], [1.0], thresholds=(t,))  # type: ignore[arg-type]


def test_error_summary_takes_a_list_and_a_zero_threshold() -> None:
    s = emu.error_summary([1.0, 2.0], [1.0, 2.5], thresholds=[0, 0.5])
    assert s.share_above == {0: 0.5, 0.5: 0.0}


def test_bits_names_itself_for_an_unknown_keyword() -> None:
    """An unknown keyword was reported against the internal encoder, not bits."""
    with pytest.raises(TypeError, match=r"^bits\(\) got an unexpected keyword argument 'bogus'$"):
        emu.bits(1.0, "e4m3", bogus=1)  # type: ignore[call-arg]
    assert emu.bits(1.0, "e4m3", seed=1, rounding="stochastic", random_bits=8) == "0|0111|000"
    assert emu.bits([1.0, float("nan")], "e4m3", nan=0).tolist() == ["0|0111|000", "0|1111|111"]
