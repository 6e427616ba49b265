"""Integer requantization (gemmlowp / TFLite): `quantize_multiplier`, `multiply_by_quantized_multiplier`,
`requantize` and the integer matmul path `int_matmul_requant`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit, prange

from ..checks import check_int, check_real
from ..inputs import as_real
from .formats import ScaledIntFormat, ScaleGranularity, block_format_arg
from .mac import operand


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(M0, shift) with real = M0 * 2^(shift - 31), M0 in [2^30, 2^31) (TFLite QuantizeMultiplier).

    M0 = round(frac * 2^31) with frac = frexp(real)[0], rounding half away from
    zero (C's std::round); M0 = 2^31 becomes 2^30 with shift + 1. real = 0 gives (0, 0).
    A multiplier whose shift would be below -31 (real < 2^-32 - 2^-64, one that
    does not round up to 2^-32) underflows to (0, 0) as in TFLite: its M0 *
    2^(shift - 31) < 2^-32 takes every int32 below 1/2 in magnitude, which
    rounds to 0, so the multiplier 0 gives the same results. Every shift
    returned is >= -31 and <= 31: a real of 2^31 - 1/2 or more (M0 would round to 2^31 with shift 31,
    or its shift exceed 31) has no such multiplier.

    Raises:
        TypeError: real not a finite real number (a str or a bool is not a multiplier; NaN, inf).
        ValueError: real negative, or 2^31 - 1/2 or more (a shift above 31).

    >>> quantize_multiplier(0.5), quantize_multiplier(0.1), quantize_multiplier(2.0 ** -33)
    ((1073741824, 0), (1717986918, -3), (0, 0))
    """
    r = check_real(real, "quantize_multiplier", "real", 0.0)
    if r == 0.0:
        return 0, 0
    m, e = math.frexp(r)
    t = math.ldexp(m, 31)
    q = int(math.floor(t + 0.5))  # t > 0: half away from zero; t + 0.5 is exact (t < 2^31)
    if q == 1 << 31:
        q //= 2
        e += 1
    if e < -31:  # TFLite: the multiplier underflows to 0 (a right shift past 31 is not taken)
        return 0, 0
    if e > 31:
        raise ValueError(f"quantize_multiplier: real={real!r} outside the allowed range [0, 2^31 - 1/2): its"
                         f" multiplier would need shift={e}, above 31")
    return q, e


@njit(cache=True)
def _srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (held in int64)."""
    if a == b and a == -2147483648:
        return np.int64(2147483647)
    ab = a * b
    nudge = np.int64(1 << 30) if ab >= 0 else np.int64(1 - (1 << 30))
    s = ab + nudge
    q = s // np.int64(1 << 31)
    if s < 0 and q * np.int64(1 << 31) != s:  # C division truncates toward zero
        q += 1
    return q


@njit(cache=True)
def _rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT."""
    if exponent == 0:
        return x
    mask = (np.int64(1) << exponent) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if rem > thr else 0)


@njit(cache=True)
def _wrap32(v):
    w = v & np.int64(0xFFFFFFFF)
    return w - (np.int64(1) << 32) if w >= (np.int64(1) << 31) else w


@njit(cache=True)
def _mbqm(x, m0, shift):
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return _rdbpot(_srdhm(_wrap32(x << left), m0), right)


@njit(parallel=True, cache=True)
def _requant_kernel(acc, m0, shift, zp, qmin, qmax, out):
    m, n = acc.shape
    for i in prange(m):
        for j in range(n):
            v = _mbqm(acc[i, j], m0[j], shift[j]) + zp
            out[i, j] = min(max(v, qmin), qmax)


_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


def int_array(v: object, func: str, param: str, lo: int = _INT32_MIN, hi: int = _INT32_MAX) -> np.ndarray:
    """v as an int64 array after checking it holds integers (TypeError) in [lo, hi] (ValueError)."""
    a = np.asarray(v)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{func}: {param} has dtype {a.dtype}; expected integers (an int array or Python"
                        " ints)")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError(f"{func}: {param} holds values outside the allowed range [{lo}, {hi}]")
    return a.astype(np.int64)


def multiply_by_quantized_multiplier(x: object, m0: object, shift: object) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier on int32 x (elementwise, broadcast).

    RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0),
    M0), max(-shift, 0)); x * 2^left wraps to int32. x and m0 are int32 values,
    shift an int in [-31, 31]; all three must have integer dtypes.

    Raises:
        TypeError: x, m0 or shift not integers (floats are not truncated).
        ValueError: x or m0 outside the int32 range, shift outside [-31, 31], shapes that do not
            broadcast together.

    >>> multiply_by_quantized_multiplier([100, -100, 7], 1073741824, 0).tolist()
    [50, -50, 4]
    """
    fn = "multiply_by_quantized_multiplier"
    xa = int_array(x, fn, "x")
    ma = int_array(m0, fn, "m0")
    sa = int_array(shift, fn, "shift", -31, 31)
    try:
        xb, mb, sb = np.broadcast_arrays(xa, ma, sa)
    except ValueError:
        raise ValueError(f"{fn}: x {xa.shape}, m0 {ma.shape} and shift {sa.shape} do not broadcast"
                         " together") from None
    flat = [int(_mbqm(int(v), int(m), int(s)))
            for v, m, s in zip(xb.ravel(), mb.ravel(), sb.ravel(), strict=True)]
    return np.array(flat, np.int64).reshape(xb.shape)


def requantize(acc: object, m0: object, shift: object, zero_point: int = 0, bits: int = 8) -> np.ndarray:
    """int32 accumulators (M, N) -> W-bit codes: clamp(zp + MBQM(acc, M0[j], shift[j])), per column j.

    Raises:
        TypeError: acc, m0 or shift not integers (floats are not truncated), zero_point or bits not an int.
        ValueError: acc or zero_point outside the int32 range, m0 outside [0, 2^31 - 1], shift outside
            [-31, 31], bits outside [2, 16], acc not 2-d, m0 or shift not broadcasting to (N,).

    >>> requantize([[1000, -1000]], 1073741824, -3).tolist()
    [[63, -63]]
    """
    fn = "requantize"
    a = int_array(acc, fn, "acc")
    if a.ndim != 2:
        raise ValueError(f"{fn}: acc must be 2-d (M, N), got shape {a.shape}")
    check_int(bits, fn, "bits", 2, 16)
    zp = check_int(zero_point, fn, "zero_point", _INT32_MIN, _INT32_MAX)
    n = a.shape[1]
    m0i, shi = int_array(m0, fn, "m0", 0, _INT32_MAX), int_array(shift, fn, "shift", -31, 31)
    try:
        m0a, sha = (np.broadcast_to(v, (n,)).copy() for v in (m0i, shi))
    except ValueError:
        raise ValueError(f"{fn}: m0 (shape {m0i.shape}) and shift (shape {shi.shape}) must broadcast to"
                         f" ({n},), one per column of acc {a.shape}") from None
    out = np.zeros(a.shape, np.int64)
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    _requant_kernel(a, m0a, sha, zp, qmin, qmax, out)
    return out


def _wrap32_arr(a: np.ndarray) -> np.ndarray:
    w = a & 0xFFFFFFFF
    return np.where(w >= 1 << 31, w - (1 << 32), w).astype(np.int64)


def int_matmul_requant(a: object, b: object, out_scale: float, fmt_a: str | ScaledIntFormat = "int8_tensor",
                       fmt_b: str | ScaledIntFormat = "int8_channel", out_zero_point: int = 0,
                       out_bits: int = 8, return_acc: bool = False) -> Any:
    """The integer path: int codes -> int32 accumulator -> requantize with a fixed-point multiplier.

    a (M, K) and b (K, N) are encoded in ``fmt_a`` (per tensor) and ``fmt_b``
    (per tensor or per output channel, axis 1); acc[i, j] = sum_k (qa - za)(qb
    - zb) wrapped to int32; the multiplier of column j is real_j = s_a * s_b[j]
    / out_scale in float64 arithmetic (as TFLite), (M0_j, shift_j) =
    `quantize_multiplier` (real_j); out = clamp(out_zero_point + MBQM(acc, M0_j,
    shift_j)) to ``out_bits``. Returns (codes int64 (M, N), values (codes -
    zp) * out_scale), plus acc with ``return_acc``. As numpy's matmul, M = 0
    gives (0, N) results and K = 0 a zero accumulator (codes out_zero_point).
    A multiplier below 2^-32 - 2^-64 underflows to 0 (`quantize_multiplier`):
    every output of that column rounds to out_zero_point.

    Raises:
        TypeError: out_scale not a real number, out_bits or out_zero_point not an int, return_acc not a
            bool.
        ValueError: shapes not (M, K) and (K, N); out_scale not finite and > 0; out_bits outside [2, 16],
            out_zero_point outside the int32 range; formats not per-tensor (a) or per-tensor/per-channel
            integers (b); a multiplier of 2^31 or more.

    >>> q, v = int_matmul_requant([[1.0, 2.0]], [[1.0], [1.0]], out_scale=3.0 / 127)
    >>> q.tolist(), v.tolist() == [[3.0]]
    ([[127]], True)
    """
    fn = "int_matmul_requant"
    fa_, fb_ = block_format_arg(fmt_a, fn, "fmt_a"), block_format_arg(fmt_b, fn, "fmt_b")
    for f, nm in ((fa_, "fmt_a"), (fb_, "fmt_b")):
        if not isinstance(f, ScaledIntFormat) or f.granularity is ScaleGranularity.GROUP:
            raise ValueError(f"{fn}: {nm}={f} must be a per-tensor or per-channel integer format")
    if fa_.granularity is not ScaleGranularity.TENSOR:
        raise ValueError(f"{fn}: fmt_a={fa_} must be per tensor")
    A = as_real(a, fn)
    Bm = as_real(b, fn)
    if A.ndim != 2 or Bm.ndim != 2 or A.shape[1] != Bm.shape[0]:
        raise ValueError(f"{fn}: a {A.shape} and b {Bm.shape} are not (M, K) and (K, N)")
    scale = check_real(out_scale, fn, "out_scale", 0.0, lo_open=True)
    bits = check_int(out_bits, fn, "out_bits", 2, 16)
    zp = check_int(out_zero_point, fn, "out_zero_point", _INT32_MIN, _INT32_MAX)
    if not isinstance(return_acc, (bool, np.bool_)):
        raise TypeError(f"{fn}: return_acc={return_acc!r} must be a bool")
    av, sa, _, _, _ = operand(A, fa_, "a")
    bv, sb, _, _, _ = operand(Bm, fb_, "b")
    acc = _wrap32_arr(av.astype(np.int64) @ bv.astype(np.int64).T)
    n = Bm.shape[1]
    m0, sh = np.zeros(n, np.int64), np.zeros(n, np.int64)
    if A.shape[0]:  # no row, no multiplier: a (0, N) result
        sa0 = float(sa[0, 0])
        for j, s in enumerate(sb[:, 0]):
            try:
                m0[j], sh[j] = quantize_multiplier(sa0 * float(s) / scale)
            except ValueError:
                raise ValueError(f"{fn}: a requantization multiplier s_a * s_b / out_scale of 2^31 or more"
                                 f" (out_scale={out_scale!r} too small)") from None
    q = requantize(acc, m0, sh, zp, bits)
    vals = (q - zp) * scale
    return (q, vals, acc) if return_acc else (q, vals)
