"""Independent conversion oracles: the one mapping from our format names to them.

Every test that checks ``emu`` against an outside implementation imports this
module, so the choice of oracle, and the overflow mode each oracle implements,
is made once:

============  ==============================  ==========  ===============================
our name      oracle dtype                    overflow    notes
============  ==============================  ==========  ===============================
e4m3          ml_dtypes.float8_e4m3fn         nan         OCP E4M3, non-saturating cast
e5m2          ml_dtypes.float8_e5m2           inf         OCP E5M2 (IEEE-like)
e4m3fnuz      ml_dtypes.float8_e4m3fnuz       nan
e5m2fnuz      ml_dtypes.float8_e5m2fnuz       nan
fp<4,3>       ml_dtypes.float8_e4m3           inf         IEEE-like E4M3 (with inf)
fp<3,4>       ml_dtypes.float8_e3m4           inf         IEEE-like E3M4
fp<4,3,...>   ml_dtypes.float8_e4m3b11fnuz    nan         fnuz with bias 11
e2m1          ml_dtypes.float4_e2m1fn         saturate    no inf/NaN; NaN input not defined
e2m3          ml_dtypes.float6_e2m3fn         saturate    no inf/NaN; NaN input not defined
e3m2          ml_dtypes.float6_e3m2fn         saturate    no inf/NaN; NaN input not defined
bf16          ml_dtypes.bfloat16              inf
fp16          numpy.float16                   inf         direct float64 -> half cast
fp32          numpy.float32                   inf         hardware cast
============  ==============================  ==========  ===============================

All of them round to nearest, ties to even.

ml_dtypes casts float64 to its types through float32, so a float64 input that is
not a float32 rounds twice (``1 + 2**-8 + 2**-30`` becomes 1.0 in bfloat16
instead of 1.0078125). :func:`oracle_round` removes that double rounding by first
rounding float64 to float32 *to odd* (truncate, then set the last bit if
inexact): rounding to odd onto a format with at least two more significand bits
than the target makes the second rounding equal to a single correct rounding
(Boldo and Melquiond, 2008). float32 has 24 bits against at most 11 for these
targets, and its exponent range covers theirs (values beyond float32's range
become FLT_MAX or the smallest subnormal with the sticky bit, which round as
the original would). Pass ``direct=True`` to see ml_dtypes' own cast instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

from emu.modes import Overflow

__all__ = ["ORACLES", "Oracle", "oracle_codes", "oracle_round"]


@dataclass(frozen=True)
class Oracle:
    """One outside implementation of a format.

    Attributes:
        dtype: the numpy / ml_dtypes scalar type.
        overflow: the overflow mode its float64 cast implements.
        via_float32: the cast from float64 goes through float32 (ml_dtypes).
        nan_input: whether a NaN input has a defined result (a NaN).
    """

    dtype: type
    overflow: Overflow
    via_float32: bool
    nan_input: bool = True


#: Our format name (``str(fmt)``) -> the oracle that implements it.
ORACLES: dict[str, Oracle] = {
    "e4m3": Oracle(ml_dtypes.float8_e4m3fn, Overflow.NAN, True),
    "e5m2": Oracle(ml_dtypes.float8_e5m2, Overflow.INF, True),
    "e4m3fnuz": Oracle(ml_dtypes.float8_e4m3fnuz, Overflow.NAN, True),
    "e5m2fnuz": Oracle(ml_dtypes.float8_e5m2fnuz, Overflow.NAN, True),
    "fp<4,3>": Oracle(ml_dtypes.float8_e4m3, Overflow.INF, True),
    "fp<3,4>": Oracle(ml_dtypes.float8_e3m4, Overflow.INF, True),
    "fp<4,3,fnuz,bias=11>": Oracle(ml_dtypes.float8_e4m3b11fnuz, Overflow.NAN, True),
    "e2m1": Oracle(ml_dtypes.float4_e2m1fn, Overflow.SATURATE, True, nan_input=False),
    "e2m3": Oracle(ml_dtypes.float6_e2m3fn, Overflow.SATURATE, True, nan_input=False),
    "e3m2": Oracle(ml_dtypes.float6_e3m2fn, Overflow.SATURATE, True, nan_input=False),
    "bf16": Oracle(ml_dtypes.bfloat16, Overflow.INF, True),
    "fp16": Oracle(np.float16, Overflow.INF, False),
    "fp32": Oracle(np.float32, Overflow.INF, False),
}


def _to_float32_odd(x: np.ndarray) -> np.ndarray:
    """Round float64 to float32 toward zero, then set the last bit when inexact."""
    with np.errstate(over="ignore"):
        f = x.astype(np.float32)
    back = f.astype(np.float64)
    finite = np.isfinite(x)
    inexact = finite & (back != x)
    # truncate: step back toward zero where the nearest cast went away from zero
    too_far = inexact & (np.abs(back) > np.abs(x))
    f = np.where(too_far, np.nextafter(f, np.float32(0)), f)
    bits = f.view(np.uint32).copy()
    bits[inexact] |= np.uint32(1)
    return bits.view(np.float32)


def _cast(x: np.ndarray, name: str, direct: bool) -> np.ndarray:
    try:
        oracle = ORACLES[name]
    except KeyError:
        raise KeyError(f"no oracle for format {name!r}; known: {', '.join(ORACLES)}") from None
    x = np.asarray(x, dtype=np.float64)
    src = _to_float32_odd(x) if oracle.via_float32 and not direct else x
    with np.errstate(over="ignore", invalid="ignore"):
        return src.astype(oracle.dtype)


def oracle_round(x: np.ndarray, name: str, *, direct: bool = False) -> np.ndarray:
    """Round float64 values to a format with its outside oracle.

    Args:
        x: float64 values (any shape).
        name: our format name, a key of :data:`ORACLES`.
        direct: skip the round-to-odd float32 step (see the module docstring);
            the result then carries ml_dtypes' double rounding.

    Returns:
        float64 array of the rounded values (exact: every oracle value is a
        float64).

    Raises:
        KeyError: no oracle for ``name``.
    """
    return _cast(x, name, direct).astype(np.float64)


def oracle_codes(x: np.ndarray, name: str, *, direct: bool = False) -> np.ndarray:
    """Like :func:`oracle_round` but return the oracle's bit patterns (uint64).

    Sub-byte ml_dtypes types (float4/float6) occupy one byte each; their codes
    are the low bits of that byte.
    """
    y = _cast(x, name, direct)
    width = y.dtype.itemsize
    return y.view({1: np.uint8, 2: np.uint16, 4: np.uint32}[width]).astype(np.uint64)
