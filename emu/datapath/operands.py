"""The operands of a datapath: real inputs converted to the MAC's act and weight formats (integer codes
for the integer path, values for the float path; binary and ternary weights as signs and a scale, per
output channel where the format says so), the bias as start values, and the stochastic input conversion
made once per element before a product (`stochastic_inputs`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _fast_kernels, _kernels
from .._nans import quiet_nans
from ..checks import real_array
from ..convert import convert_operand
from ..formats import BinaryFormat, FixedFormat, Format, TernaryFormat
from ..mac import MAC
from ..modes import Overflow, Rounding
from ..operand_grid import int_grid
from ..signs import data_scale, sign_codes
from ..threads import CONVERT_THREAD_ELEMENTS


def one_pass_codes(f: Format, mac: MAC) -> bool:
    """Whether `operand` makes float32 codes of reals in one pass of the fast fixed-point kernel
    (`emu._fast_kernels.fixed_fast_serial` / ``fixed_fast`` with ``codes``): a fixed format of FL >= 0,
    saturating, rounded deterministically; callers may run that kernel on pieces of x themselves."""
    return (isinstance(f, FixedFormat) and f.frac_bits >= 0 and mac.input_overflow == Overflow.SATURATE
            and mac.input_rounding != Rounding.STOCHASTIC)


def operand(x: np.ndarray, f: Format, mac: MAC, role: str, as_int: bool, f32: bool = False,
             seed: int | None = None) -> tuple[np.ndarray, Any, int]:
    """(codes or values, scale or None, input overflow count) of one operand;
    with ``f32`` (the caller knows every code is below 2^24) the codes come as float32;
    ``seed`` drives stochastic conversions (binary/ternary<stochastic> formats, stochastic input rounding)."""
    func = f"matmul ({role})"
    if f32 and one_pass_codes(f, mac):  # one pass from reals to float32 codes
        xf = np.ascontiguousarray(x, np.float64).reshape(-1)
        codes = np.empty(xf.size, np.float32)
        args = (xf, codes, f.frac_bits, f.qmin, f.qmax, int(mac.input_rounding))
        if xf.size < CONVERT_THREAD_ELEMENTS:
            ovf, _, nan = _fast_kernels.fixed_fast_serial(*args, True)
        else:
            stats = np.zeros((-(-xf.size // _kernels.CHUNK), _fast_kernels.N_FAST_STATS), np.int64)
            _fast_kernels.fixed_fast(*args, stats, True)
            ovf, _, nan = stats.sum(axis=0).tolist()
        if not nan:  # NaN: the general path below raises the conversion's error
            return codes.reshape(x.shape), None, ovf
    if isinstance(f, (BinaryFormat, TernaryFormat)):
        stochastic = f.stochastic if isinstance(f, BinaryFormat) else f.method == "stochastic"
        per_output = f.has_data_scale and f.scale == "channel"  # a channel is an output: the last axis of w
        if per_output and not stochastic:  # thresholds (TWN) are per output too
            s, xf, _ = sign_codes(np.moveaxis(x, -1, 0), f, "nearest_even", None, None, None, None, func)
            s, xf = np.moveaxis(s, 0, -1), np.moveaxis(xf, 0, -1)
        else:
            s, xf, _ = sign_codes(x, f, "nearest_even", None, seed if stochastic else None, None, None, func)
        scale = None
        if f.has_data_scale:
            scale = data_scale(np.moveaxis(xf, -1, 0), f, func) if per_output else data_scale(xf, f, func)
            scale = np.asarray(scale, np.float64).reshape(-1)
        return s.astype(np.float32 if f32 else np.float64), scale, 0
    v, st = convert_operand(x, f, mac.input_rounding, mac.input_overflow, seed, func)
    if st.nan:
        v = quiet_nans(v)
    if not as_int:
        return v, None, st.overflow
    fl, _ = int_grid(f)
    q = v * 2.0**fl  # integer codes, held exactly
    return (q.astype(np.float32) if f32 else q), None, st.overflow


def absmax(q: np.ndarray) -> int:
    """Largest |q| of integer codes (held as float64 or int64)."""
    return int(max(q.max(initial=0), -q.min(initial=0)))


def bias_vector(bias: Any, n: int) -> np.ndarray:
    """The bias as float64 (n,): zeros for None, a scalar or (n,) array broadcast."""
    if bias is None:
        return np.zeros(n)
    b = real_array(bias, "matmul", "bias").astype(np.float64, copy=False)
    if b.shape == (n,):
        return b
    if b.ndim > 1 or (b.ndim == 1 and b.size != 1):
        raise ValueError(f"matmul: bias has shape {b.shape}; expected ({n},) or a scalar")
    return np.full(n, b.reshape(()) if b.ndim == 0 else b[0])


def stochastic_inputs(x: np.ndarray, f: Format, mac: MAC, seed: int | None,
                      role: str) -> tuple[np.ndarray, int]:
    """x converted once to an operand format under stochastic input rounding, each element by its index
    in x (later conversions of these values are exact), and the overflow count; x itself otherwise."""
    if mac.input_rounding != Rounding.STOCHASTIC or isinstance(f, (BinaryFormat, TernaryFormat)):
        return x, 0
    v, st = convert_operand(x, f, mac.input_rounding, mac.input_overflow, seed, f"matmul ({role})")
    return v, st.overflow


def c_ordered(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """(a C-ordered array, transposed): x itself, or x.T (free when x is Fortran-ordered, else a copy) with
    ``transposed`` True, for kernels that read an operand in either memory order.

    >>> c_ordered(np.asfortranarray(np.ones((2, 3))))[0].shape, c_ordered(np.ones((2, 3)))[1]
    ((3, 2), False)
    """
    if x.flags.c_contiguous:
        return x, False
    return (x.T if x.flags.f_contiguous else np.ascontiguousarray(x.T)), True
