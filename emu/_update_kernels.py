"""numba kernel of the fused parameter update (`emu.update.rounded_update`).

new = Q_outer(w + Q_inner(a g)), each Q one of the values-only fast conversions of `emu._fast_kernels`
(or none), in one call: the same element loops the separate conversions run, on the same float64 values,
so the bits and counts are theirs. A conversion is named by its kind and packed arguments
(`emu.convert.FastSpec`): ``ints`` the integer arguments of a fixed-point kernel, ``packed`` and
``nan_value`` those of a float kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._fast_kernels import fixed_fast_serial, fixed_sr_fast_serial, float_fast_serial

#: the kinds of conversion: none (the value passes), fixed point by a deterministic mode, fixed point by
#: stochastic rounding, a float format by a deterministic mode
KIND_NONE, KIND_FIXED, KIND_FIXED_SR, KIND_FLOAT = 0, 1, 2, 3

#: the counts `rounded_update` returns: inner overflow, underflow, NaN; outer overflow, underflow, NaN;
#: updates attempted (a g != 0) and zeroed (attempted, and the new value equals w)
UPDATE_COUNTS = ("inner overflow", "inner underflow", "inner nan", "outer overflow", "outer underflow",
                 "outer nan", "attempted", "zeroed")


@njit(cache=True, nogil=True)
def convert_kind(kind, x, out, ints, packed, nan_value, key):
    """out = the conversion of x of this kind; returns its (overflow, underflow, NaN) counts."""
    if kind == KIND_FIXED:
        o, u, n = fixed_fast_serial(x, out, ints[0], ints[1], ints[2], ints[3])
    elif kind == KIND_FIXED_SR:
        o, u, n = fixed_sr_fast_serial(x, out, ints[0], ints[1], ints[2] != 0, ints[3], ints[4], ints[5], key)
    elif kind == KIND_FLOAT:
        o, u, n = float_fast_serial(x, out, packed, nan_value)
    else:
        for i in range(x.size):
            out[i] = x[i]
        o, u, n = 0, 0, 0
    return np.int64(o), np.int64(u), np.int64(n)


@njit(cache=True, nogil=True)
def rounded_update(w, g, a, ik, iints, ipacked, inan, ikey, ok, oints, opacked, onan, okey, out):
    """out = Q_outer(w + Q_inner(a g)) over flat float64 arrays w, g, out of one size; returns the counts in
    the order of `UPDATE_COUNTS`. Each product a g and each sum w + d is one float64 operation, rounded to
    nearest even, as numpy's ``a * g`` and ``w + d`` are."""
    n = w.size
    buf = np.empty(n)
    d = np.empty(n)
    for i in range(n):
        buf[i] = a * g[i]
    i_ovf, i_unf, i_nan = convert_kind(ik, buf, d, iints, ipacked, inan, ikey)
    for i in range(n):
        buf[i] = w[i] + d[i]
    o_ovf, o_unf, o_nan = convert_kind(ok, buf, out, oints, opacked, onan, okey)
    attempted = 0
    zeroed = 0
    for i in range(n):
        moving = np.int64(a * g[i] != 0.0)
        attempted += moving
        zeroed += moving & np.int64(out[i] == w[i])
    return i_ovf, i_unf, i_nan, o_ovf, o_unf, o_nan, attempted, zeroed
