"""Importing emu changes no global setting; complex arrays, ml_dtypes' complex types included, are
refused as inputs (they lost their imaginary part); a zero binary or ternary scale counts
underflows; error metrics take arrays of one shape."""

from __future__ import annotations

import os
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
