"""The float path: products rounded to the product or accumulator format (or exact when fused), every
addition rounded once into a float accumulator (`float_plan` picks the kernels' term and addition
functions, with nearest-even twins where the modes allow). A binary32 datapath (an fp32 accumulator
rounding to nearest even, operands within binary32) runs native float32 chains, converting its operands
straight into float32 (`matmul_fp32`, `direct32`). The matrix units' steps run their own kernels:
``fused(n)`` (`emu._fused_kernels`, `emu._late_kernels`), ``tree(n)`` (`emu._tree_kernels`) and
``exact(n)`` (`emu._exact_kernels`)."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import _exact_kernels as XK
from .. import _fast_kernels
from .. import _fp32_kernels as F32
from .. import _fused_kernels as FK
from .. import _late_kernels as LK
from .. import _mac_kernels as MK
from .. import _tree_kernels as TK
from .._nans import quiet_nans
from .._rounding import fround_ne_add_applies
from ..convert import checked_settings
from ..formats import FixedFormat, FloatFormat, Format, Pow2Format
from ..mac import MAC
from ..modes import Overflow, Rounding
from .integer import as_i64, rows_kernel
from .operands import c_ordered


def _span(f: Format) -> tuple[int, int]:
    """(exponent of the top bit + 1, exponent of the lowest bit) of any value of an operand or accumulator."""
    if isinstance(f, FloatFormat):
        return f.emax + 1, f.emin - f.man_bits
    if isinstance(f, FixedFormat):
        return f.int_bits, -f.frac_bits
    if isinstance(f, Pow2Format):
        return f.emax + 1, f.emin
    return 1, 0


def _sum_is_exact(acc: FloatFormat, mac: MAC) -> bool:
    """Whether every float64 sum acc + term of the datapath is exact (then no two-sum is needed)."""
    hi_a, lo_a = _span(mac.act)
    hi_w, lo_w = _span(mac.weight)
    hi_t, lo_t = hi_a + hi_w, lo_a + lo_w
    if not mac.fused:
        hi_t, lo_t = _span(mac.product if mac.product is not None else acc)
    if mac.order.kind == "blocks":
        return False  # block sums are float64 values of any exponent
    hi_acc, lo_acc = _span(acc)
    hi = max(hi_t, hi_acc) + 1
    lo = min(lo_t, lo_acc)
    return hi - lo <= 53


def in_fp32(f: Format) -> bool:
    """Whether every value of ``f`` is a binary32 value (then a binary32 datapath's conversion of them to
    its fp32 accumulator leaves them as they are) (binary32 holds 24
    significant bits, exponents up to 127 and steps down to 2^-149)."""
    if isinstance(f, FloatFormat):
        return f.man_bits <= 23 and f.emax <= 127 and f.emin - f.man_bits >= -149
    if isinstance(f, FixedFormat):
        return f.bits - f.signed <= 24 and f.frac_bits <= 149 and f.int_bits <= 127
    if isinstance(f, Pow2Format):
        return f.emin >= -149 and f.emax <= 127
    return True  # binary, ternary: +-1 and 0


_FP32 = FloatFormat(8, 23)


_F64 = np.dtype(np.float64)


@functools.lru_cache(maxsize=256)
def float_plan(mac: MAC) -> tuple[bool, Any, tuple, Any, tuple]:
    """(binary32 kernels apply, term function, its parameters, add function, its parameters) of a
    float accumulator (memoised per datapath: a training step runs the same few thousands of times)."""
    acc = mac.acc
    assert isinstance(acc, FloatFormat)
    ne = Rounding.NEAREST_EVEN
    # the native binary32 addition adds two binary32 values; a block's exact sum (blocks(c)) is not one, and
    # casting it first would round twice
    native = (acc == _FP32 and mac.acc_rounding == ne and mac.acc_overflow == Overflow.INF and not mac.fused
              and mac.order.kind != "blocks"
              and (mac.product is None or (mac.product == _FP32 and mac.product_rounding == ne
                                           and mac.product_overflow == Overflow.INF)))
    rounded = not mac.fused  # the product is rounded (else passed exact to the adder)
    if rounded:
        pf = mac.product if mac.product is not None else acc
        assert isinstance(pf, FloatFormat)  # MAC checks it
        pr = mac.product_rounding if mac.product is not None else mac.acc_rounding
        po = mac.product_overflow if mac.product is not None else mac.acc_overflow
        fprm = MK.float_params(pf, int(pr), int(po))
    if native:
        binary32 = mac.order.kind == "sequential" and in_fp32(mac.act) and in_fp32(mac.weight)
        return binary32, MK.term_fp32, (0,), MK.add_fp32, (0,)
    if mac.product is not None and mac.product_rounding == Rounding.STOCHASTIC:
        pf = mac.product
        term, tprm = MK.term_float_sr, (*MK.float_params(pf, int(ne), int(mac.product_overflow)), pf.emin,
                                        pf.man_bits)  # `run_float` appends the key
    elif not rounded:
        term, tprm = MK.term_mul, (0,)
    else:  # nearest even for both signs: one float64 addition rounds, where it can
        ne_twin = MK.is_ne(fprm) and fround_ne_add_applies(pf)
        term, tprm = MK.term_float_round_ne if ne_twin else MK.term_float_round, fprm
    acc_ne = mac.acc_rounding == ne and fround_ne_add_applies(acc)
    if _sum_is_exact(acc, mac):
        add = MK.add_float_exact_ne if acc_ne else MK.add_float_exact
        aprm = MK.AddFloatParams(*MK.float_params(acc, int(mac.acc_rounding), int(mac.acc_overflow)),
                                 MK.U64(0), mac.acc_rounding == Rounding.FLOOR)
    else:
        add = MK.add_float_ne if acc_ne else MK.add_float
        aprm = MK.add_float_params(acc, int(mac.acc_rounding), int(mac.acc_overflow))
    return False, term, tprm, add, aprm


def fp32_layout(M: int, K: int, N: int) -> tuple[bool, bool]:
    """(chains down the columns, threads) of a binary32 product: few outputs per row run the chains down the
    columns instead (below 64 columns the column kernel is 2x to 3x faster); a thread launch costs about
    0.1 ms, as much as 1.5M binary32 MACs."""
    parallel = M * K * N >= 1 << 24
    return M > N and N < 64 and not parallel, parallel


def run_fp32(a32: np.ndarray, w32: np.ndarray, i32: np.ndarray, cols: bool, parallel: bool,
              out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The binary32 datapath into ``out`` (M, N) on float32 operands (``a32`` transposed, (K, M), when
    ``cols``) from the start values ``i32`` ((1, N) or (M, N)); (product, accumulator) overflow counts,
    None when nothing overflowed. It runs without counts first: an inf or NaN, once in a chain, stays in
    it, so finite outputs prove that nothing overflowed, and only otherwise does the counting kernel run
    again; its NaN outputs are then made the positive quiet NaN, the datapaths' NaN (the hardware's
    inf - inf is the negative one)."""
    if cols:
        it = np.ascontiguousarray(i32.T)  # (N, 1) or (N, M): the chains run down the columns
        if not F32.mac_cols_fp32_plain(a32, w32, it[:, 0] if i32.shape[0] == 1 else it, out):
            return None, None
        counting, args = F32.mac_cols_fp32, (a32, w32, it)
    else:
        plain = F32.mac_rows_fp32_plain if parallel else F32.mac_rows_fp32_plain_serial
        if not plain(a32, w32, i32, out):
            return None, None
        counting, args = F32.mac_rows_fp32 if parallel else F32.mac_rows_fp32_serial, (a32, w32, i32)
    pcnt, acnt = np.zeros(out.shape, np.int32), np.zeros(out.shape, np.int32)
    counting(*args, out, pcnt, acnt)
    out[...] = quiet_nans(out)
    return pcnt, acnt


def run_float(a: np.ndarray, w: np.ndarray, init: np.ndarray, mac: MAC, key: int) -> tuple[np.ndarray, ...]:
    """Accumulator values (M, N) and overflow counts from the start values ``init`` ((1, N) or (M, N), in
    the accumulator's format); ``key`` drives a stochastic product rounding."""
    M, K = a.shape
    N = w.shape[1]
    if mac.order.kind == "fused":
        return _run_fused(a, w, init, mac)
    if mac.order.kind == "tree":
        return TK.run_tree(a, w, init, mac)
    if mac.order.kind == "exact":
        out, acnt = XK.run_exact(a, w, init, mac)
        return out, np.zeros_like(acnt), acnt
    binary32, term, tprm, add, aprm = float_plan(mac)
    out = np.empty((M, N), np.float64)
    if binary32:
        cols, parallel = fp32_layout(M, K, N)
        a32 = np.ascontiguousarray(a.T if cols else a, np.float32)
        w32, i32 = np.ascontiguousarray(w, np.float32), np.ascontiguousarray(init, np.float32)
        pcnt, acnt = run_fp32(a32, w32, i32, cols, parallel, out)
        return out, pcnt, acnt
    if term is MK.term_float_sr:
        tprm = MK.StochasticFloatParams(*tprm, as_i64(key))
    pcnt = np.zeros((M, N), np.int32)
    acnt = np.zeros((M, N), np.int32)
    rows_kernel(M, K, N)(np.ascontiguousarray(a), np.ascontiguousarray(w), init, out, pcnt, acnt,
                          MK.tag(MK.TERM_CODES[term]), tprm, MK.tag(MK.ADD_CODES[add]),
                          aprm, MK.ORDER_CODES[mac.order.kind], mac.order.n)
    return out, pcnt, acnt


def _run_fused(a: np.ndarray, w: np.ndarray, init: np.ndarray, mac: MAC) -> tuple[np.ndarray, ...]:
    """`run_float` for the multi-term fused steps of ``order="fused(n)"`` (`emu._fused_kernels.run_fused`,
    or `emu._late_kernels.run_late` with a late addend; every field of the MAC); the products are exact,
    so the product counts are zero."""
    out, acnt = FK.run_fused(a, w, init, mac) if mac.late_addend is None else LK.run_late(a, w, init, mac)
    return out, np.zeros_like(acnt), acnt


@functools.lru_cache(maxsize=256)
def _f32_rounder(f: Format, rounding: Rounding, overflow: Overflow) -> tuple | None:
    """(`fround` parameters, NaN value) that round reals to ``f`` straight into binary32, or None when
    the fast kernel does not cover the conversion (stochastic rounding, overflow error, values beyond
    binary32, an unsigned format: `fround` keeps the input's sign)."""
    if (not isinstance(f, FloatFormat) or not f.signed or not in_fp32(f) or rounding == Rounding.STOCHASTIC
            or overflow == Overflow.ERROR):
        return None
    checked_settings(f, rounding, overflow, None, None, "matmul")  # the general conversion's checks
    return _fast_kernels.float_params_packed(f, int(rounding), int(overflow)), np.nan if f.has_nan else 0.0


def operand32(x: np.ndarray, f: Format, rounding: Rounding, overflow: Overflow,
               transpose: bool = False) -> tuple[np.ndarray, int] | None:
    """The 2-D float64 array x (or x.T with ``transpose``) rounded to ``f`` into a C-ordered float32
    array, and the count of values that overflowed: the same values and count as `quantize`. None when
    the fast kernel does not cover the case or x holds a NaN that ``f`` has no code for (the general
    conversion then runs, and raises)."""
    r = _f32_rounder(f, rounding, overflow)
    if r is None or x.dtype != np.float64:
        return None
    flip = not x.flags.c_contiguous and x.T.flags.c_contiguous  # in memory order: the loop vectorises
    src = np.ascontiguousarray(x.T if flip else x)
    out = np.empty(src.shape, np.float32)
    ovf, nan = _fast_kernels.float_fast_2d(src, out, *r)
    if nan and not f.has_nan:
        return None
    return (np.ascontiguousarray(out.T) if flip != transpose else out), ovf


@functools.lru_cache(maxsize=256)
def _fp32_inputs(mac: MAC) -> tuple | None:
    """(packed parameters, NaN value) of the act, weight and bias conversions of a binary32 datapath,
    straight into binary32; None when one is not covered (`_f32_rounder`)."""
    rs = (_f32_rounder(mac.act, mac.input_rounding, mac.input_overflow),
          _f32_rounder(mac.weight, mac.input_rounding, mac.input_overflow),
          _f32_rounder(mac.acc, mac.input_rounding, Overflow.SATURATE))
    return None if None in rs else (*rs[0], *rs[1], *rs[2])  # type: ignore[misc]


@functools.lru_cache(maxsize=256)
def direct32(mac: MAC) -> bool:
    """Whether a 2-D product can go straight to `matmul_fp32`: a binary32 datapath of float operands
    whose outputs are its accumulator's values (no output conversion; its overflow modes never raise)."""
    return (mac.float_acc and mac.output is None and not mac.block_scaled and float_plan(mac)[0]
            and _fp32_inputs(mac) is not None)


def fp32_kernel_args(mac: MAC) -> tuple | None:
    """For compiled (numba) code that runs a binary32 datapath's 2-D products itself: the arguments after
    ``bias`` that `mac_fp32_kernel` takes for ``mac`` (the packed act, weight and accumulator conversions
    and their NaN values), where `direct32` holds; else None.

    `mac_fp32_kernel(a, a_t, w, w_t, bias, *args, cols, out)` is `matmul_fp32`'s one-call kernel: the
    float64 operands a (M, K), or (K, M) with ``a_t``, and w (K, N), or (N, K) with ``w_t``, both
    C-ordered, and the start values ``bias`` (N,) are converted straight into binary32, then every output
    is its chain from k = 0 up, whatever the layout (``cols``: chains down the columns, `fp32_layout`'s
    choice); it returns (input overflows, NaN in a, in w, in the bias, outputs not finite). Its values are
    `matmul`'s where no operand holds a NaN and every output is finite; elsewhere the caller is to run
    `matmul`, which counts the overflows and refuses a NaN a format has no code for.
    """
    return _fp32_inputs(mac) if direct32(mac) else None


#: `matmul_fp32`'s one-call kernel (`fp32_kernel_args`)
mac_fp32_kernel = F32.mac_fp32_from_reals


def matmul_fp32(a: np.ndarray, w: np.ndarray, mac: MAC, b: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """(outputs, product counts, accumulator counts, input overflow) of a binary32 datapath whose operand
    formats are float formats, every conversion straight into binary32; None when a conversion is not
    covered (`_f32_rounder`) or meets a NaN its format has no code for (the general path then raises).

    A product too small to repay threads runs in one kernel call, conversions included
    (`mac_fp32_from_reals`); with threads, or when an output is not finite (its overflows are to be
    counted), the conversions and the product run as separate kernels."""
    conv = _fp32_inputs(mac)
    if conv is None or a.dtype is not _F64 or w.dtype is not _F64:
        return None
    M, K = a.shape
    N = w.shape[1]
    cols, parallel = fp32_layout(M, K, N)
    out = np.empty((M, N), np.float64)
    if not parallel:
        (a_s, a_t), (w_s, w_t) = c_ordered(a), c_ordered(w)  # the kernel reads either memory order
        ovf, nan_a, nan_w, nan_b, bad = F32.mac_fp32_from_reals(a_s, a_t, w_s, w_t, b, *conv, cols, out)
        if ((nan_a and not mac.act.has_nan) or (nan_w and not mac.weight.has_nan)
                or (nan_b and not mac.acc.has_nan)):
            return None
        if not bad:
            return out, None, None, ovf
    ra = operand32(a, mac.act, mac.input_rounding, mac.input_overflow, transpose=cols)
    rw = operand32(w, mac.weight, mac.input_rounding, mac.input_overflow)
    rb = operand32(b.reshape(1, N), mac.acc, mac.input_rounding, Overflow.SATURATE)
    if ra is None or rw is None or rb is None:
        return None
    pcnt, acnt = run_fp32(ra[0], rw[0], rb[0], cols, parallel, out)
    return out, pcnt, acnt, ra[1] + rw[1] + rb[1]
