"""Integer requantization at its edges and on bad input (`emu.quantize_multiplier`, `emu.requantize`,
`emu.multiply_by_quantized_multiplier`, `emu.int_matmul_requant`).

- A multiplier below 2^-32 - 2^-64 underflows to (0, 0) as TFLite's QuantizeMultiplier (its shift would
  be below -31), and the reference agrees; the result it gives is the exactly rounded one (0).
- Empty operands follow numpy's matmul: M = 0 gives (0, N) results, K = 0 a zero accumulator.
- Bad input raises one-line errors naming the parameter the caller passed.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

import numpy as np
import pytest

import emu
from emu._ref import block as ref

# --- quantize_multiplier -------------------------------------------------------------------------


@pytest.mark.parametrize("real", [2.0 ** -33, 2.0 ** -40, 5e-324, 2.0 ** -32 * (1 - 2.0 ** -31),
                                  2.0 ** -32 * 0.99999])
def test_a_multiplier_with_a_shift_below_minus_31_underflows_to_zero(real: float) -> None:
    assert emu.quantize_multiplier(real) == (0, 0)
    assert ref.ref_quantize_multiplier(real) == (0, 0)


@pytest.mark.parametrize("real", [2.0 ** -32, 2.0 ** -31, 2.0 ** -32 * (1 + 2.0 ** -20),
                                  2.0 ** -32 * (1 - 2.0 ** -32), math.nextafter(2.0 ** -32, 0.0)])
def test_the_smallest_multipliers_kept_have_shift_minus_31(real: float) -> None:
    """2^-32 (and what rounds up to it, from 2^-32 - 2^-64 on) is M0 = 2^30 with shift -31, the last shift
    TFLite keeps."""
    m0, shift = emu.quantize_multiplier(real)
    assert (m0, shift) == ref.ref_quantize_multiplier(real)
    assert shift >= -31
    assert 1 << 30 <= m0 < 1 << 31
    assert abs(Fraction(m0, 1 << 31) * Fraction(2) ** shift - Fraction(real)) <= Fraction(2) ** (shift - 32)


def test_an_underflowed_multiplier_gives_the_exactly_rounded_result() -> None:
    """|x| <= 2^31 times a multiplier below 2^-32 is below 1/2 in magnitude: it rounds to 0, as M0 = 0."""
    real = 2.0 ** -32 * (1 - 2.0 ** -31)  # M0 = 2^31 - 1 at shift -32 before the underflow
    x = np.array([-(1 << 31), (1 << 31) - 1, 12345, -1, 0])
    assert all(abs(Fraction(int(v)) * Fraction(real)) < Fraction(1, 2) for v in x)
    assert emu.multiply_by_quantized_multiplier(x, *emu.quantize_multiplier(real)).tolist() == [0] * 5


@pytest.mark.parametrize("real", ["0.5", True, False, np.bool_(True), None, [0.5], 1j, math.nan, math.inf])
def test_quantize_multiplier_refuses_what_is_not_a_real_number(real: object) -> None:
    with pytest.raises(TypeError, match=rf"^quantize_multiplier: real={re.escape(repr(real))} must be a"
                                        r" finite real number$"):
        emu.quantize_multiplier(real)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^quantize_multiplier: real=-0.5 outside the allowed range"
                                         r" \[0, inf\)$"):
        emu.quantize_multiplier(-0.5)


def test_quantize_multiplier_takes_ints_and_numpy_reals() -> None:
    assert emu.quantize_multiplier(1) == emu.quantize_multiplier(np.float32(1.0)) == (1 << 30, 1)
    assert emu.quantize_multiplier(np.int64(0)) == (0, 0)


# --- requantize / multiply_by_quantized_multiplier shapes ----------------------------------------


def test_requantize_names_m0_and_shift_that_do_not_fit_the_columns() -> None:
    acc = np.zeros((2, 3), np.int64)
    with pytest.raises(ValueError, match=r"^requantize: m0 \(shape \(2,\)\) and shift \(shape \(\)\) must"
                                         r" broadcast to \(3,\), one per column of acc \(2, 3\)$"):
        emu.requantize(acc, np.array([1, 2]), 0)
    with pytest.raises(ValueError, match=r"^requantize: m0 \(shape \(\)\) and shift \(shape \(2, 3\)\) must"
                                         r" broadcast to \(3,\)"):
        emu.requantize(acc, 1 << 30, np.zeros((2, 3), np.int64))
    assert emu.requantize(acc, np.array([1 << 30] * 3), np.array([0])).shape == (2, 3)


def test_multiply_by_quantized_multiplier_names_shapes_that_do_not_broadcast() -> None:
    with pytest.raises(ValueError, match=r"^multiply_by_quantized_multiplier: x \(3,\), m0 \(2,\) and shift"
                                         r" \(\) do not broadcast together$"):
        emu.multiply_by_quantized_multiplier([1, 2, 3], [1 << 30, 1 << 30], 0)


# --- int_matmul_requant ---------------------------------------------------------------------------


def test_int_matmul_requant_of_no_rows_is_an_empty_result() -> None:
    q, v, acc = emu.int_matmul_requant(np.zeros((0, 3)), np.ones((3, 2)), 0.1, return_acc=True)
    assert (q.shape, q.dtype, v.shape, v.dtype, acc.shape, acc.dtype) == (
        (0, 2), np.int64, (0, 2), np.float64, (0, 2), np.int64)
    q, v = emu.int_matmul_requant(np.zeros((0, 0)), np.zeros((0, 4)), 0.1)
    assert (q.shape, v.shape) == ((0, 4), (0, 4))


def test_int_matmul_requant_of_k_zero_is_the_zero_point() -> None:
    """numpy's matmul of (M, 0) by (0, N) is zeros: the accumulator is 0, and 0 requantizes to zp."""
    q, v, acc = emu.int_matmul_requant(np.zeros((2, 0)), np.zeros((0, 3)), 0.1, out_zero_point=5,
                                       return_acc=True)
    assert acc.tolist() == [[0] * 3] * 2
    assert q.tolist() == [[5] * 3] * 2
    assert v.tolist() == [[0.0] * 3] * 2


def test_int_matmul_requant_flushes_a_multiplier_below_2_to_the_minus_32() -> None:
    """s_a * s_b / out_scale below 2^-33: every output is below half a step, i.e. the zero point (was a
    ValueError)."""
    a, b = np.array([[1.0, 2.0]]), np.array([[1.0], [1.0]])
    q, v = emu.int_matmul_requant(a, b, out_scale=1e12, out_zero_point=-3)
    assert q.tolist() == [[-3]]
    assert v.tolist() == [[0.0]]


def test_int_matmul_requant_names_a_multiplier_too_large() -> None:
    with pytest.raises(ValueError, match=r"^int_matmul_requant: a requantization multiplier s_a \* s_b /"
                                         r" out_scale of 2\^31 or more \(out_scale=1e-15 too small\)$"):
        emu.int_matmul_requant([[1.0, 2.0]], [[1.0], [1.0]], out_scale=1e-15)


BAD = [
    ({"out_scale": True}, TypeError, r"out_scale=True must be a finite real number$"),
    ({"out_scale": "0.1"}, TypeError, r"out_scale='0.1' must be a finite real number$"),
    ({"out_scale": None}, TypeError, r"out_scale=None must be a finite real number$"),
    ({"out_scale": -1.0}, ValueError, r"out_scale=-1.0 outside the allowed range \(0, inf\)$"),
    ({"out_scale": 0.0}, ValueError, r"out_scale=0.0 outside the allowed range \(0, inf\)$"),
    ({"out_scale": float("nan")}, TypeError, r"out_scale=nan must be a finite real number$"),
    ({"return_acc": "no"}, TypeError, r"return_acc='no' must be a bool$"),
    ({"return_acc": 1}, TypeError, r"return_acc=1 must be a bool$"),
    ({"out_bits": 40}, ValueError, r"out_bits=40 outside the allowed range \[2, 16\]$"),
    ({"out_bits": 8.0}, TypeError, r"out_bits=8.0 must be an int$"),
    ({"out_zero_point": 1 << 31}, ValueError, r"out_zero_point=2147483648 outside the allowed range"),
    ({"out_zero_point": 0.5}, TypeError, r"out_zero_point=0.5 must be an int$"),
]


@pytest.mark.parametrize(("kw", "exc", "msg"), BAD, ids=[b[2][:24] for b in BAD])
def test_int_matmul_requant_names_its_own_parameters(kw: dict[str, object], exc: type[Exception],
                                                     msg: str) -> None:
    args = {"out_scale": 0.1, **kw}
    with pytest.raises(exc, match=r"^int_matmul_requant: " + msg):
        emu.int_matmul_requant([[1.0]], [[1.0]], **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["int8_channel", "int8_asym_channel"])
@pytest.mark.parametrize(("shape", "axis"), [((0, 4), 0), ((4, 0), 1), ((0, 0), 0), ((0, 3, 2), 0)])
def test_per_channel_encoding_of_no_channels_is_empty(fmt: str, shape: tuple[int, ...], axis: int) -> None:
    scales, codes = emu.block_encode(np.zeros(shape), fmt, axis=axis)
    assert scales.scale.shape == (0,)
    assert codes.shape == shape
    assert emu.block_decode(scales, codes, fmt, axis=axis).shape == shape


def test_int_matmul_requant_of_no_columns_is_an_empty_result() -> None:
    q, v = emu.int_matmul_requant(np.ones((2, 3)), np.ones((3, 0)), 0.1, fmt_b="int8_channel")
    assert q.shape == v.shape == (2, 0)


@pytest.mark.parametrize(("real", "shift"), [(2.0 ** 31, 32), (2.0 ** 31 - 0.5, 32), (1e300, 997)])
def test_a_multiplier_of_2_to_31_or_more_is_refused(real: float, shift: int) -> None:
    """A shift above 31 was returned ((1073741824, 32) for 2^31), which no requantization accepts."""
    with pytest.raises(ValueError, match=rf"^quantize_multiplier: real={re.escape(repr(real))} outside the"
                                         rf" allowed range \[0, 2\^31 - 1/2\): its multiplier would need"
                                         rf" shift={shift}, above 31$"):
        emu.quantize_multiplier(real)
    assert emu.quantize_multiplier(2.0 ** 31 - 0.75) == (2**31 - 1, 31)
    assert emu.quantize_multiplier(2.0 ** 30) == ref.ref_quantize_multiplier(2.0 ** 30) == (1 << 30, 31)
