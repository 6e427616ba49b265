"""Binary and ternary formats: sign codes, their data scales, and the values they stand for.

`sign_codes` turns reals into +-1 (binary) or -1/0/+1 (ternary) by the
format's rule (deterministic, BinaryConnect's stochastic rule, TWN or TTQ
thresholds; docs/semantics.md "Binary and ternary"); `data_scale` computes
the per-tensor or per-channel scale (BWN/XNOR alpha, TWN alpha, TTQ scales)
with `exact_mean`, a mean rounded once; `scaled_values` and `resolve_scale`
give the represented values. Imports numpy and emu's formats, modes, inputs,
stats and kernels.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from . import _kernels as K
from .formats import BinaryFormat, TernaryFormat
from .inputs import as_real, flat_index, seed_key
from .modes import Overflow, Rounding, parse_overflow, parse_rounding
from .stats import QuantStats

__all__ = ["check_scale", "data_scale", "exact_mean", "resolve_scale", "scaled_values", "sign_codes"]


def exact_mean(v: np.ndarray) -> float:
    """Mean of float64 values: the exact sum over n, rounded once to float64.

    Every finite float64 is m * 2^e with an integer m of 53 bits (`np.frexp`);
    the m are summed per exponent in two int64 halves (no overflow below 2^36
    values per exponent) and the groups combined in Python integers, so the
    result is machine- and order-independent. 0.0 for no values; an infinite
    value gives its infinity (callers pass values of one sign).

    >>> exact_mean(np.array([0.1, 0.2, 0.3]))  # a plain float sum gives 0.20000000000000004
    0.2
    """
    v = np.asarray(v, np.float64).reshape(-1)
    if v.size == 0:
        return 0.0
    inf = ~np.isfinite(v)
    if inf.any():
        return float(v[inf][0])
    m, e = np.frexp(v)
    mi = (m * 2.0**53).astype(np.int64)
    ei = e.astype(np.int64) - 53
    order = np.argsort(ei, kind="stable")
    ei, mi = ei[order], mi[order]
    starts = np.flatnonzero(np.r_[True, ei[1:] != ei[:-1]])
    hi = np.add.reduceat(mi >> 26, starts)
    lo = np.add.reduceat(mi & ((1 << 26) - 1), starts)
    base = int(ei[0])
    total = sum(((int(h) << 26) + int(lo_)) << (int(ei[s]) - base)
                for h, lo_, s in zip(hi, lo, starts, strict=True))
    mean = Fraction(total, v.size) * (Fraction(2) ** base)
    return float(mean)


def _mean_abs(v: np.ndarray) -> float:
    """Exact mean of |v| rounded once (0.0 for an empty selection)."""
    return exact_mean(np.abs(v))


def _per_channel(x: np.ndarray, fn: Any, per_channel: bool, func: str) -> np.ndarray:
    if not per_channel:
        return np.asarray(fn(x.reshape(-1)))
    if x.ndim == 0:
        raise ValueError(f"{func}: scale='channel' needs an array with a channel axis (axis 0)")
    out = np.array([fn(x[c].reshape(-1)) for c in range(x.shape[0])], dtype=np.float64)
    return out.reshape((-1,) + (1,) * (x.ndim - 1))


def data_scale(x: np.ndarray, fmt: BinaryFormat | TernaryFormat, func: str = "data_scale") -> Any:
    """The scale a scaled binary/ternary format computes from the data (``func``: the function its errors
    name)."""
    per_channel = fmt.scale == "channel"
    if isinstance(fmt, BinaryFormat):
        return _per_channel(x, _mean_abs, per_channel, func)
    t = fmt.threshold
    if fmt.method == "twn":
        def alpha(v: np.ndarray) -> float:
            return _mean_abs(v[np.abs(v) > t * _mean_abs(v)])

        return _per_channel(x, alpha, per_channel, func)

    def wp(v: np.ndarray) -> float:
        return _mean_abs(v[v > t * float(np.max(np.abs(v)))]) if v.size else 0.0

    def wn(v: np.ndarray) -> float:
        return _mean_abs(v[v < -t * float(np.max(np.abs(v)))]) if v.size else 0.0

    return (_per_channel(x, wp, per_channel, func), _per_channel(x, wn, per_channel, func))


def _ternary_codes(x: np.ndarray, fmt: TernaryFormat, key: np.uint64, func: str) -> np.ndarray:
    """Ternary integer values in {-1, 0, +1}."""
    if fmt.method == "stochastic":
        c = np.clip(x, -1.0, 1.0)
        u = _uniform(key, x.shape)
        return np.where(u < np.abs(c), np.sign(c), 0.0).astype(np.int8)
    per_channel = fmt.scale == "channel"
    if fmt.method == "twn":
        ref = _per_channel(x, _mean_abs, per_channel, func)
    else:
        ref = _per_channel(x, lambda v: float(np.max(np.abs(v))) if v.size else 0.0, per_channel, func)
    delta = fmt.threshold * ref
    return np.asarray(np.where(x > delta, 1, 0) - np.where(x < -delta, 1, 0)).astype(np.int8)


def _uniform(key: np.uint64, shape: tuple[int, ...]) -> np.ndarray:
    u = np.empty(int(np.prod(shape)), np.float64)
    K.uniform53(key, u)
    return u.reshape(shape)


def sign_codes(x: object, fmt: BinaryFormat | TernaryFormat, rounding: object, overflow: object,
           seed: object, random_bits: object, nan: object,
           func: str) -> tuple[np.ndarray, np.ndarray, QuantStats]:
    """Integer values (+-1, 0) of a binary/ternary conversion, the float input, and stats (no overflow;
    underflow is the caller's to count from the scaled values)."""
    if parse_rounding(rounding, func) != Rounding.NEAREST_EVEN:
        raise ValueError(
            f"{func}: rounding={rounding!r} does not apply to {fmt}; binary and ternary formats round by"
            " their own rule (use binary<stochastic> or ternary<stochastic> for stochastic variants)"
        )
    if overflow is not None and parse_overflow(overflow, func) != Overflow.SATURATE:
        raise ValueError(f"{func}: overflow={overflow!r} does not apply to {fmt} (it cannot overflow)")
    if random_bits is not None:
        raise ValueError(f"{func}: random_bits={random_bits!r} does not apply to {fmt}")
    if nan is not None:
        raise ValueError(f"{func}: nan={nan!r} does not apply to {fmt}; NaN has no binary/ternary code")
    xf = as_real(x, func)
    bad = np.isnan(xf)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValueError(f"{func}: x holds NaN (first at index {flat_index(xf.shape, first)}); {fmt} has"
                         " no NaN")
    stochastic = fmt.stochastic if isinstance(fmt, BinaryFormat) else fmt.method == "stochastic"
    from_data = fmt.has_data_scale or (isinstance(fmt, TernaryFormat) and not stochastic)
    inf = np.isinf(xf)
    if from_data and inf.any():
        first = int(np.flatnonzero(inf.reshape(-1))[0])
        raise ValueError(f"{func}: x holds {xf.reshape(-1)[first]} (first at index"
                         f" {flat_index(xf.shape, first)}); {fmt} computes its threshold or scale from the"
                         " data, which an infinity leaves undefined")
    key = seed_key(seed, func) if stochastic else np.uint64(0)
    if isinstance(fmt, BinaryFormat):
        if fmt.stochastic:
            p = np.minimum(np.maximum((xf + 1.0) * 0.5, 0.0), 1.0)
            s = np.where(_uniform(key, xf.shape) < p, 1, -1).astype(np.int8)
        else:
            s = np.where(xf >= 0, 1, -1).astype(np.int8)
    else:
        s = _ternary_codes(xf, fmt, key, func)
    return s, xf, QuantStats(xf.size, 0, 0, 0)  # underflow: the caller's, from the values (with the scale)


def scaled_values(s: np.ndarray, fmt: BinaryFormat | TernaryFormat, scale: Any) -> np.ndarray:
    v = s.astype(np.float64)
    if scale is None:
        return v
    if isinstance(fmt, TernaryFormat) and fmt.method == "ttq":
        wp, wn = scale
        return np.asarray(np.where(s > 0, v * np.asarray(wp, np.float64), v * np.asarray(wn, np.float64)))
    return np.asarray(v * np.asarray(scale, np.float64))


def resolve_scale(xf: np.ndarray, fmt: BinaryFormat | TernaryFormat, scale: Any, func: str) -> Any:
    if not fmt.has_data_scale:
        if scale is not None:
            raise ValueError(f"{func}: scale= given but {fmt} is unscaled")
        return None
    if scale is None:
        return data_scale(xf, fmt, func)
    return check_scale(scale, fmt, xf.shape, func)


def check_scale(scale: Any, fmt: BinaryFormat | TernaryFormat, shape: tuple[int, ...], func: str) -> Any:
    """A caller's scale for values of ``shape``, shaped as `data_scale` gives it: finite numbers >= 0,
    one per tensor, or one per index of axis 0 for ``scale="channel"``; TTQ takes a pair (wp, wn).

    >>> check_scale([0.5, 2.0], BinaryFormat(scale="channel"), (2, 3), "decode").tolist()
    [[0.5], [2.0]]
    """
    if fmt.scale == "channel" and not shape:
        raise ValueError(f"{func}: scale='channel' needs an array with a channel axis (axis 0); got a"
                         " 0-d one")
    if isinstance(fmt, TernaryFormat) and fmt.method == "ttq":
        if not (isinstance(scale, tuple) and len(scale) == 2):
            raise ValueError(f"{func}: scale={scale!r} for {fmt} must be a pair (wp, wn)")
        return tuple(_one_scale(s, fmt, shape, f"{func}: scale[{i}]") for i, s in enumerate(scale))
    return _one_scale(scale, fmt, shape, f"{func}: scale")


def _one_scale(scale: Any, fmt: BinaryFormat | TernaryFormat, shape: tuple[int, ...], what: str) -> Any:
    a = np.asarray(scale)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{what}={scale!r} must be real numbers")
    a = a.astype(np.float64)
    channel = fmt.scale == "channel"
    n = shape[0] if channel else 1  # (`check_scale` refused a 0-d array with channel scales)
    if a.size != n:
        raise ValueError(f"{what} holds {a.size} values; {fmt} takes "
                         + (f"one per index of axis 0 ({n})" if channel else "one per tensor"))
    bad = ~(np.isfinite(a) & (a >= 0))
    if bad.any():
        raise ValueError(f"{what} holds {a.reshape(-1)[np.flatnonzero(bad.reshape(-1))[0]]}; a scale is a"
                         " finite number >= 0")
    return a.reshape((-1,) + (1,) * (len(shape) - 1)) if channel else a.reshape(())


# --- public API ---------------------------------------------------------------------------------
