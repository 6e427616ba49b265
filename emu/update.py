"""A parameter update rounded as a low-precision optimiser stores it: new = Q_outer(w + Q_inner(a g)).

A training step of plain SGD converts its update term -lr g (the ``update`` role) and then the new
weight w + d (the ``master`` role): two conversions and two numpy operations per parameter tensor, and a
count of the updates the rounding lost. `rounded_update` does it in one call, which a step over many small
tensors needs (each separate call costs more than its work there). Its kernels are public for compiled
(numba) code that fuses more work around them: `convert_kind` converts a flat float64 array by a
converter's `emu.convert.FastSpec` args and a key, returning its (overflow, underflow, NaN) counts, and
`update_kernel` is `rounded_update`'s kernel over flat arrays (its counts in the order of
`UPDATE_COUNTS`); `FIXED_KINDS` are the kinds of fixed-point conversions (deterministic, stochastic),
`FLOAT_KIND` that of a float format's (deterministic rounding), `COPY_KIND` the kind that copies its
input, counting nothing (for values a caller knows the conversion would leave as they are).
Imports emu's own modules.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import _update_kernels as UK
from .checks import check_real, real_array
from .convert import Converter
from .inputs import check_seed, seed_word
from .stats import QuantStats
from .threads import CONVERT_THREAD_ELEMENTS

__all__ = ["COPY_KIND", "FIXED_KINDS", "FLOAT_KIND", "UPDATE_COUNTS", "UpdateResult", "convert_kind",
           "rounded_update", "update_kernel"]

convert_kind = UK.convert_kind
update_kernel = UK.rounded_update
UPDATE_COUNTS = UK.UPDATE_COUNTS
FIXED_KINDS = (UK.KIND_FIXED, UK.KIND_FIXED_SR)
FLOAT_KIND = UK.KIND_FLOAT
COPY_KIND = UK.KIND_NONE

#: the kernel arguments of no conversion (`emu.convert.FastSpec.args`)
_NO_SPEC = (UK.KIND_NONE, np.zeros(0, np.int64), np.zeros(0, np.uint64), 0.0)
_F64 = np.dtype(np.float64)
_GENERATOR = np.random.Generator
_CONVERTERS = (Converter, type(None))


class UpdateResult(NamedTuple):
    """What `rounded_update` gives: the new values (w's shape), each conversion's counts (None where that
    converter is None), the updates attempted (elements with a g != 0) and, of them, the ones whose new
    value equals w (the rounding lost them)."""

    values: np.ndarray
    inner: QuantStats | None
    outer: QuantStats | None
    attempted: int
    zeroed: int


def _operand(x: object, name: str) -> np.ndarray:
    if type(x) is np.ndarray and x.dtype is _F64:
        return x
    return np.asarray(real_array(x, "rounded_update", name), np.float64)


def _check_converter(c: object, name: str) -> None:
    if c is not None and not isinstance(c, Converter):
        raise TypeError(f"rounded_update: {name}={c!r} must be an emu.Converter or None (no conversion)")


def rounded_update(w: object, g: object, a: float, inner: Converter | None, outer: Converter | None, *,
                   seed: object = None) -> UpdateResult:
    """new = outer(w + inner(a * g)), exactly as the separate calls give it.

    The update term a * g is one float64 product per element and w + d one
    float64 sum (rounded to nearest even, as numpy's ``a * g`` and ``w + d``);
    ``inner`` converts the term and ``outer`` the sum (None: that value passes
    as it is). The random stream is drawn as the two calls draw it, inner first:
    the values and counts are bit for bit those of
    ``outer(w + inner(a * g, seed=seed), seed=seed)`` (each call's
    ``return_stats``). Where both converters have fast kernels
    (`emu.Converter.spec`) and w holds fewer than
    `emu.threads.CONVERT_THREAD_ELEMENTS` elements, one kernel call runs the
    whole update; elsewhere the calls run.

    Args:
        w, g: real arrays of one shape (the parameter and its gradient),
            computed from as float64: integers float64 cannot hold (beyond
            2^53, off its grid) are refused, where ``a * g`` and ``w + d``
            in numpy would round them first.
        a: the finite real multiplying g (SGD: -lr).
        inner, outer: `emu.Converter` or None.
        seed: as `emu.quantize`'s.

    Raises:
        ValueError: shapes that differ, integers float64 cannot hold, a NaN a
            converter's format cannot hold (the conversion's refusal), an
            int ``a`` beyond float64's range.
        TypeError: a non-real array or ``a``, a converter that is not one.

    >>> c = Converter("fx<4,4>")
    >>> r = rounded_update(np.array([1.0, 1.0]), np.array([1.0, 0.01]), -0.5, None, c)
    >>> r.values.tolist(), r.outer.size, r.attempted, r.zeroed
    ([0.5, 1.0], 2, 2, 1)
    """
    wa, ga = _operand(w, "w"), _operand(g, "g")
    if wa.shape != ga.shape:
        raise ValueError(f"rounded_update: w has shape {wa.shape} and g {ga.shape}; they must be one shape")
    if type(a) is not float or not math.isfinite(a):
        a = check_real(a, "rounded_update", "a")
    if type(inner) not in _CONVERTERS or type(outer) not in _CONVERTERS:
        _check_converter(inner, "inner")
        _check_converter(outer, "outer")
    if seed is not None and type(seed) is not _GENERATOR:
        check_seed(seed, "rounded_update")
    si = None if inner is None else inner.spec
    so = None if outer is None else outer.spec
    if (inner is not None and si is None) or (outer is not None and so is None) or (
            wa.size >= CONVERT_THREAD_ELEMENTS):
        return _composed(wa, ga, a, inner, outer, seed)
    ikey = seed_word(seed, "rounded_update") if si is not None and si.stochastic else 0
    okey = seed_word(seed, "rounded_update") if so is not None and so.stochastic else 0
    out = np.empty(wa.shape)
    c = UK.rounded_update(wa.reshape(-1), ga.reshape(-1), a, *(_NO_SPEC if si is None else si.args), ikey,
                          *(_NO_SPEC if so is None else so.args), okey,
                          out.reshape(-1))
    if (c[2] and not si.nan_ok) or (c[5] and not so.nan_ok):  # type: ignore[union-attr]
        _composed(wa, ga, a, inner, outer, None)  # raises the conversion's refusal
    n = wa.size
    return UpdateResult(out, None if inner is None else QuantStats(n, c[0], c[1], c[2]),
                        None if outer is None else QuantStats(n, c[3], c[4], c[5]), c[6], c[7])


def _composed(w: np.ndarray, g: np.ndarray, a: float, inner: Converter | None, outer: Converter | None,
              seed: object) -> UpdateResult:
    """`rounded_update` by the separate calls (the definition its kernel follows; float64 overflows to
    +-inf and inf - inf to NaN pass silently, as in the kernel, and the conversions count them)."""
    with np.errstate(over="ignore", invalid="ignore"):
        raw = a * g
        d, si = (raw, None) if inner is None else inner(raw, seed=seed, return_stats=True)
        new, so = (w + d, None) if outer is None else outer(w + d, seed=seed, return_stats=True)
    moving = raw != 0.0
    return UpdateResult(np.asarray(new), si, so, int(np.count_nonzero(moving)),
                        int(np.count_nonzero(moving & (new == w))))
