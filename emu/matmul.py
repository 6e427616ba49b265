"""Dot products, matrix products and convolutions through a `MAC` datapath.

`matmul(a, w, mac)` converts real inputs to the MAC's operand formats, runs
every output's dot product through the datapath (NUMERICS.md section 6,
docs/semantics.md "Multiply-accumulate") and returns the float64 values of the
output codes, optionally with the codes and a `MACStats`. `dot` and `conv2d`
(NCHW, im2col order (c_in, kh, kw)) are built on it.

Speed without giving up exactness: the sequential kernel is exact for every
configuration; when the datapath's products are exact and aligned exactly and
a per-output L1 bound proves that no partial sum in any order can leave the
accumulator's range (or the accumulator is exact), the result equals the exact
integer sum, which float64 BLAS computes exactly on operands split into limbs
small enough that every partial sum stays below 2^53. Outputs whose bound fails
take the sequential kernel. Both paths are tested bit-identical.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from . import _fixed_kernels as FK
from . import _kernels, _rounding
from . import _mac_kernels as MK
from .block.formats import NVFP4Format
from .block.mac import block_product
from .checks import real_array
from .convert import checked_settings, codes_of_values, convert_array, quantize
from .inputs import seed_key
from .signs import data_scale, sign_codes
from .formats import BinaryFormat, FixedFormat, FloatFormat, Format, Pow2Format, TernaryFormat
from .mac import MAC, mac_preset
from .modes import Overflow, Rounding

__all__ = ["MACStats", "conv2d", "dot", "im2col", "matmul"]


class MACStats(NamedTuple):
    """Overflow accounting of one `matmul`/`conv2d`/`dot` call (an immutable named tuple).

    Attributes:
        input_overflow: operand values that overflowed their formats on conversion.
        product_overflow: products that overflowed the product format.
        acc_overflow: accumulator additions that left the accumulator's range.
        output_overflow: outputs that overflowed the output format.
        product_per_channel, acc_per_channel, output_per_channel: the same
            counts per output channel (the last axis of a matmul result, axis 1
            of a conv2d result).
        path: "sequential", "exact-sum", "block" or "mixed" (which kernel produced the outputs).
        nan_blocks: blocks of block-scaled operands whose scale is NaN (they held NaN or inf).
    """

    input_overflow: int
    product_overflow: int
    acc_overflow: int
    output_overflow: int
    product_per_channel: np.ndarray
    acc_per_channel: np.ndarray
    output_per_channel: np.ndarray
    path: str = "sequential"
    nan_blocks: int = 0


def _mac(mac: MAC | str | dict) -> MAC:
    if isinstance(mac, MAC):
        return mac
    if isinstance(mac, str):
        return mac_preset(mac)
    if isinstance(mac, dict):
        return MAC(**mac)
    raise TypeError(f"matmul: mac={mac!r} must be a MAC, a preset name or a dict of MAC fields")


def _int_grid(f: Format) -> tuple[int, int]:
    """(FL, WL) of the integer codes that carry an operand in the integer path."""
    if isinstance(f, FixedFormat):
        return f.frac_bits, f.bits
    if isinstance(f, Pow2Format):
        return -f.emin, f.emax - f.emin + 2
    if isinstance(f, FloatFormat):
        return f.man_bits - f.emin, f.emax + 2 + f.man_bits - f.emin
    return 0, 2  # binary, ternary


def _operand(x: np.ndarray, f: Format, mac: MAC, role: str, as_int: bool, f32: bool = False,
             seed: int | None = None) -> tuple[np.ndarray, Any, int]:
    """(codes or values, scale or None, input overflow count) of one operand;
    with ``f32`` (the caller knows every code is below 2^24) the codes come as float32;
    ``seed`` drives stochastic conversions (binary/ternary<stochastic> formats, stochastic input rounding)."""
    func = f"matmul ({role})"
    if (f32 and isinstance(f, FixedFormat) and f.frac_bits >= 0 and mac.input_overflow == Overflow.SATURATE
            and mac.input_rounding != Rounding.STOCHASTIC):  # one pass from reals to float32 codes
        xf = np.ascontiguousarray(x, np.float64).reshape(-1)
        codes = np.empty(xf.size, np.float32)
        args = (xf, codes, f.frac_bits, f.qmin, f.qmax, int(mac.input_rounding))
        if xf.size <= _kernels.CHUNK:
            ovf, _, nan = _kernels.fixed_fast_serial(*args, True)
        else:
            stats = np.zeros((-(-xf.size // _kernels.CHUNK), _kernels.N_FAST_STATS), np.int64)
            _kernels.fixed_fast(*args, stats, True)
            ovf, _, nan = stats.sum(axis=0).tolist()
        if not nan:  # NaN: the general path below raises the conversion's error
            return codes.reshape(x.shape), None, ovf
    if isinstance(f, (BinaryFormat, TernaryFormat)):
        if isinstance(f, TernaryFormat) and f.method == "ttq":
            raise ValueError(f"{func}: TTQ has separate positive and negative scales; quantize the weights"
                             " with emu.quantize and use a fixed or float weight format")
        stochastic = f.stochastic if isinstance(f, BinaryFormat) else f.method == "stochastic"
        per_output = f.has_data_scale and f.scale == "channel"  # a channel is an output: the last axis of w
        if per_output and not stochastic:  # thresholds (TWN) are per output too
            s, xf, _ = sign_codes(np.moveaxis(x, -1, 0), f, "nearest_even", None, None, None, None, func)
            s, xf = np.moveaxis(s, 0, -1), np.moveaxis(xf, 0, -1)
        else:
            s, xf, _ = sign_codes(x, f, "nearest_even", None, seed if stochastic else None, None, None, func)
        scale = None
        if f.has_data_scale:
            scale = data_scale(np.moveaxis(xf, -1, 0), f) if per_output else data_scale(xf, f)
            scale = np.asarray(scale, np.float64).reshape(-1)
        return s.astype(np.float32 if f32 else np.float64), scale, 0
    v, st = quantize(x, f, mac.input_rounding, mac.input_overflow, return_stats=True, seed=seed)
    if not as_int:
        return v, None, st.overflow
    fl, _ = _int_grid(f)
    q = v * 2.0**fl  # integer codes, held exactly
    return (q.astype(np.float32) if f32 else q), None, st.overflow


def _max_code(f: Format) -> int:
    """Largest |code| of an operand in the integer path."""
    fl, wl = _int_grid(f)
    if isinstance(f, (BinaryFormat, TernaryFormat)):
        return 1
    return int(math.ldexp(max(f.max, -f.min), fl))


def _limbs(q: np.ndarray, bits: int, size: int) -> list[tuple[np.ndarray, int]]:
    """Split integers into limbs of ``size`` bits (the top limb signed): q = sum limb << shift."""
    out = []
    shift = 0
    while True:
        if shift + size >= bits:
            out.append(((q >> shift).astype(np.float64), shift))
            return out
        out.append((((q >> shift) & ((1 << size) - 1)).astype(np.float64), shift))
        shift += size


def _absmax(q: np.ndarray) -> int:
    """Largest |q| of integer codes (held as float64 or int64)."""
    return int(max(q.max(initial=0), -q.min(initial=0)))


def _exact_int_matmul(ca: np.ndarray, cw: np.ndarray) -> np.ndarray:
    """sum_k ca[i,k] cw[k,j] exactly (mod 2^64 if it does not fit in int64), by BLAS.

    The codes are integers held in float64. float32 BLAS when every partial sum
    stays below 2^24, float64 below 2^53; else the codes are split into limbs
    that keep each product's partial sums below 2^53, and the limb products are
    shifted and added in int64.
    """
    K = ca.shape[1]
    amax, wmax = _absmax(ca), _absmax(cw)
    if K * amax * wmax < 1 << 24:  # every partial sum is an integer float32 holds exactly
        return (ca.astype(np.float32, copy=False) @ cw.astype(np.float32, copy=False)).astype(np.int64)
    if K * amax * wmax < 1 << 53:
        return (ca @ cw).astype(np.int64)
    qa, qw = ca.astype(np.int64), cw.astype(np.int64)
    ba, bw = amax.bit_length() + 1, wmax.bit_length() + 1
    kb = max(K, 1).bit_length()
    room = 53 - kb
    la = max(1, min(ba, room // 2))
    lw = max(1, room - la)
    total = np.zeros((qa.shape[0], qw.shape[1]), np.int64)
    for a_limb, sa in _limbs(qa, ba, la):
        for w_limb, sw in _limbs(qw, bw, lw):
            part = (a_limb @ w_limb).astype(np.int64)
            total += part << (sa + sw)  # int64 arithmetic wraps mod 2^64
    return total


@dataclass
class _IntPlan:
    tprm: tuple
    aprm: tuple | None
    fl_acc: int
    lo: int
    hi: int
    wrap: bool
    exact_products: bool


def _int_plan(mac: MAC, K: int) -> _IntPlan:
    fa, wa = _int_grid(mac.act)
    fw, ww = _int_grid(mac.weight)
    if wa + ww > 62:
        raise ValueError(f"matmul: the integer product of {mac.act} ({wa} bits as codes) and {mac.weight}"
                         f" ({ww} bits) needs {wa + ww} bits; at most 62 are supported")
    flp = fa + fw
    pmax = _max_code(mac.act) * _max_code(mac.weight)
    prod = mac.product
    if prod is not None and not isinstance(prod, FixedFormat):
        raise ValueError(f"matmul: product={prod} with a fixed or exact accumulator must be a fixed format")
    if prod is not None:
        sp = flp - prod.frac_bits
        if sp < 0 and pmax << -sp >= 1 << 62:
            raise ValueError(f"matmul: aligning products to product={prod} needs more than 62 bits")
        pprm = (True, sp, int(mac.product_rounding), prod.qmin, prod.qmax, (1 << prod.bits) - 1,
                mac.product_overflow == Overflow.WRAP)
        fl_t = prod.frac_bits
        pmax = max(-prod.qmin, prod.qmax)
    else:
        pprm = (False, 0, 0, 0, 0, 0, False)
        fl_t = flp
    if mac.exact_acc:
        fl_acc = fl_t
        if (K + 1) * pmax >= 1 << 62:
            raise ValueError(f"matmul: an exact sum of {K} products of up to {pmax} units needs more than 62"
                             " bits; use a fixed accumulator")
        tprm = (*pprm, 0, 0)
        return _IntPlan(tprm, None, fl_acc, -(1 << 62), 1 << 62, False, prod is None)  # type: ignore[arg-type]
    acc = mac.acc
    assert isinstance(acc, FixedFormat)
    fl_acc = acc.frac_bits
    sa = fl_t - fl_acc
    if sa < 0 and pmax << -sa >= 1 << 62:
        raise ValueError(f"matmul: aligning products into acc={acc} needs more than 62 bits")
    if mac.order.kind == "blocks" and mac.order.n * (pmax << max(0, -sa)) >= 1 << 62:
        raise ValueError(f"matmul: block sums of {mac.order.n} products need more than 62 bits")
    tprm = (*pprm, sa, int(mac.align_rounding))
    wrap = mac.acc_overflow == Overflow.WRAP
    aprm = (acc.qmin, acc.qmax, (1 << acc.bits) - 1, wrap)
    return _IntPlan(tprm, aprm, fl_acc, acc.qmin, acc.qmax, wrap, prod is None and sa <= 0)


def _int_term(tprm: tuple, key: int) -> tuple[Any, tuple]:
    """The most specialised term function for a plan (so the kernel's inner loop vectorises); ``key``
    drives a stochastic product rounding."""
    prod_on, sa, amode = tprm[0], tprm[-2], tprm[-1]
    if prod_on and tprm[2] == int(Rounding.STOCHASTIC) and tprm[1] > 0:
        return MK.term_int_sr, (*tprm[1:2], *tprm[3:7], sa, amode, _as_i64(key))
    if prod_on:
        return MK.term_int, tprm
    if sa == 0:
        return MK.term_mul, (0,)
    if sa < 0:
        return MK.term_mul_shl, (-sa,)
    if amode == int(Rounding.FLOOR):
        return MK.term_mul_floor, (sa,)
    return MK.term_mul_round, (sa, amode)


def _as_i64(key: int) -> int:
    """A 64-bit key as the int64 of the same bits (kernel parameter tuples hold int64)."""
    return key - (1 << 64) if key >= 1 << 63 else key


def _rows_kernel(m: int, k: int, n: int) -> Any:
    """The parallel row kernel, or its serial twin for products too small to repay a thread launch."""
    return MK.mac_rows if m > 1 and m * k * n >= 1 << 18 else MK.mac_rows_serial


def _shift_add(s: np.ndarray, shift: int, init_q: np.ndarray) -> np.ndarray:
    """s << shift + the start codes ((1, N) or (M, N)), in place, skipping the no-op passes."""
    if shift:
        s <<= shift
    if init_q.any():
        s += init_q
    return s


def _rows_of(init: np.ndarray, rows: Any) -> np.ndarray:
    """The start values of some rows: a single row (1, N) serves every row."""
    return init if init.shape[0] == 1 else init[rows]


def _run_int(ca: np.ndarray, cw: np.ndarray, bias_q: np.ndarray, mac: MAC, plan: _IntPlan,
             force_sequential: bool, key: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Accumulator codes (M, N) and overflow counts; ca, cw hold integer codes as float64; ``bias_q``
    the start codes, (1, N) or (M, N); ``key`` drives a stochastic product rounding."""
    M, K = ca.shape
    N = cw.shape[1]
    pcnt = np.zeros((M, N), np.int32)
    acnt = np.zeros((M, N), np.int32)
    good = np.zeros(M, bool)
    shift = -plan.tprm[-2] if not mac.exact_acc else 0
    if plan.exact_products and not force_sequential and M and N:
        limit = min(plan.hi, -plan.lo) if plan.lo < 0 else plan.hi
        unsigned_ok = plan.lo < 0 or (ca.min(initial=0) >= 0 and cw.min(initial=0) >= 0 and bias_q.min(initial=0) >= 0)
        if mac.exact_acc or (unsigned_ok and (K * _absmax(ca) * _absmax(cw) << shift) + _absmax(bias_q) <= limit):
            good[:] = True  # no partial sum of any output can leave the range
        else:  # per output: the L1 bound sum_k |a_ik| |w_kj| (float64, with a margin) plus |bias|
            bound = (np.abs(ca) @ np.abs(cw)) * 2.0**shift * (1 + 2.0**-40) + np.abs(bias_q)
            safe = bound <= limit
            if plan.lo >= 0:  # unsigned: no negative term, so no partial sum below 0
                safe &= (ca >= 0).all(axis=1)[:, None] & (cw >= 0).all(axis=0)[None, :] & (bias_q >= 0)
            good = safe.all(axis=1)
    if M and good.all():
        return _shift_add(_exact_int_matmul(ca, cw), shift, bias_q), pcnt, acnt, "exact-sum"
    out = np.empty((M, N), np.int64)
    if good.any():
        out[good] = _shift_add(_exact_int_matmul(ca[good], cw), shift, _rows_of(bias_q, good))
    rows = np.flatnonzero(~good)
    sub_out = np.empty((rows.size, N), np.int64)
    sub_p = np.zeros((rows.size, N), np.int32)
    sub_a = np.zeros((rows.size, N), np.int32)
    add = MK.add_exact if mac.exact_acc else MK.add_fixed
    aprm = (0, 0, 0, False) if mac.exact_acc else plan.aprm
    term, tprm = _int_term(plan.tprm, key)
    assert rows.size == M or term is not MK.term_int_sr  # random streams are indexed by the row
    sub_a_int = ca[rows]
    if _narrow_fixed(mac, term, tprm, sub_a_int, cw):  # 32-bit lanes, blocked for the caches
        sa = tprm[0] if term is MK.term_mul_floor else -tprm[0] if term is MK.term_mul_shl else 0
        acc = mac.acc
        kernel = FK.mac_fixed32 if rows.size * K * N >= 1 << 18 else FK.mac_fixed32_serial
        kernel(sub_a_int.astype(np.int32), cw.astype(np.int32), _rows_of(bias_q, rows).astype(np.int32),
               sub_out, sub_a, max(0, -sa), max(0, sa), acc.qmin, acc.qmax, (1 << acc.bits) - 1,
               mac.acc_overflow == Overflow.WRAP)
        out[rows], pcnt[rows], acnt[rows] = sub_out, sub_p, sub_a
        return out, pcnt, acnt, "mixed" if good.any() else "sequential"
    _rows_kernel(rows.size, K, N)(sub_a_int.astype(np.int64), cw.astype(np.int64), _rows_of(bias_q, rows),
                                  sub_out, sub_p, sub_a,
                MK.tag(MK.TERM_CODES[term]), tprm, MK.tag(MK.ADD_CODES[add]), aprm,
                MK.ORDER_CODES[mac.order.kind], mac.order.n)
    out[rows], pcnt[rows], acnt[rows] = sub_out, sub_p, sub_a
    return out, pcnt, acnt, "mixed" if good.any() else "sequential"


def _narrow_fixed(mac: MAC, term: Any, tprm: tuple, ca: np.ndarray, cw: np.ndarray) -> bool:
    """Whether the 32-bit-lane kernel (`emu._fixed_kernels`) runs this product: the sequential order, a
    fixed accumulator of at most 30 bits, exact products aligned by a shift, and every aligned product
    of these codes below 2^29 in magnitude."""
    if mac.order.kind != "sequential" or mac.exact_acc or term not in (MK.term_mul, MK.term_mul_shl,
                                                                        MK.term_mul_floor):
        return False
    shl = tprm[0] if term is MK.term_mul_shl else 0
    return FK.fits_int32(mac.acc.bits, (_absmax(ca) * _absmax(cw)) << shl)


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


def _in_fp32(f: Format) -> bool:
    """Whether every value of ``f`` is a binary32 value (binary32 holds 24
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
def _float_plan(mac: MAC) -> tuple[bool, Any, tuple, Any, tuple]:
    """(binary32 kernels apply, term function, its parameters, add function, its parameters) of a
    float accumulator (memoised per datapath: a training step runs the same few thousands of times)."""
    acc = mac.acc
    assert isinstance(acc, FloatFormat)
    ne = Rounding.NEAREST_EVEN
    native = (acc == _FP32 and mac.acc_rounding == ne and mac.acc_overflow == Overflow.INF and not mac.fused
              and (mac.product is None or (mac.product == _FP32 and mac.product_rounding == ne
                                           and mac.product_overflow == Overflow.INF)))
    if mac.fused:
        tprm = (False, *MK.float_params(acc, int(mac.acc_rounding), int(mac.acc_overflow)))
    else:
        pf = mac.product if mac.product is not None else acc
        if not isinstance(pf, FloatFormat) or pf.man_bits > 50 or pf.emin < -1000 or pf.emax > 1000:
            raise ValueError(f"matmul: product={pf} with a float accumulator must be a float format with at"
                             " most 50 fraction bits")
        pr = mac.product_rounding if mac.product is not None else mac.acc_rounding
        po = mac.product_overflow if mac.product is not None else mac.acc_overflow
        tprm = (True, *MK.float_params(pf, int(pr), int(po)))
    if native:
        binary32 = mac.order.kind == "sequential" and _in_fp32(mac.act) and _in_fp32(mac.weight)
        return binary32, MK.term_fp32, (0,), MK.add_fp32, (0,)
    if mac.product is not None and mac.product_rounding == Rounding.STOCHASTIC:
        pf = mac.product
        term, tprm = MK.term_float_sr, (*MK.float_params(pf, int(ne), int(mac.product_overflow)), pf.emin,
                                        pf.man_bits)
    elif not tprm[0]:
        term, tprm = MK.term_mul, (0,)
    else:  # nearest even for both signs leaves out the directed modes' correction
        term, tprm = MK.term_float_round_ne if MK.is_ne(tprm[1:]) else MK.term_float_round, tprm[1:]
    acc_ne = mac.acc_rounding == ne
    if _sum_is_exact(acc, mac):
        add = MK.add_float_exact_ne if acc_ne else MK.add_float_exact
        aprm = (*MK.float_params(acc, int(mac.acc_rounding), int(mac.acc_overflow)),
                mac.acc_rounding == Rounding.FLOOR)
    else:
        add = MK.add_float_ne if acc_ne else MK.add_float
        aprm = MK.add_float_params(acc, int(mac.acc_rounding), int(mac.acc_overflow))
    return False, term, tprm, add, aprm


def _fp32_layout(M: int, K: int, N: int) -> tuple[bool, bool]:
    """(chains down the columns, threads) of a binary32 product: few outputs per row run the chains down the
    columns instead (below 64 columns the column kernel is 2x to 3x faster); a thread launch costs about
    0.1 ms, as much as 1.5M binary32 MACs."""
    parallel = M * K * N >= 1 << 24
    return M > N and N < 64 and not parallel, parallel


def _run_fp32(a32: np.ndarray, w32: np.ndarray, i32: np.ndarray, cols: bool, parallel: bool,
              out: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The binary32 datapath into ``out`` (M, N) on float32 operands (``a32`` transposed, (K, M), when
    ``cols``) from the start values ``i32`` ((1, N) or (M, N)); (product, accumulator) overflow counts,
    None when nothing overflowed. It runs without counts first: an inf or NaN, once in a chain, stays in
    it, so finite outputs prove that nothing overflowed, and only otherwise does the counting kernel run
    again."""
    if cols:
        it = np.ascontiguousarray(i32.T)  # (N, 1) or (N, M): the chains run down the columns
        if not MK.mac_cols_fp32_plain(a32, w32, it[:, 0] if i32.shape[0] == 1 else it, out):
            return None, None
        pcnt, acnt = np.zeros(out.shape, np.int32), np.zeros(out.shape, np.int32)
        MK.mac_cols_fp32(a32, w32, it, out, pcnt, acnt)
        return pcnt, acnt
    plain = MK.mac_rows_fp32_plain if parallel else MK.mac_rows_fp32_plain_serial
    counting = MK.mac_rows_fp32 if parallel else MK.mac_rows_fp32_serial
    if not plain(a32, w32, i32, out):
        return None, None
    pcnt, acnt = np.zeros(out.shape, np.int32), np.zeros(out.shape, np.int32)
    counting(a32, w32, i32, out, pcnt, acnt)
    return pcnt, acnt


def _run_float(a: np.ndarray, w: np.ndarray, init: np.ndarray, mac: MAC, key: int) -> tuple[np.ndarray, ...]:
    """Accumulator values (M, N) and overflow counts from the start values ``init`` ((1, N) or (M, N), in
    the accumulator's format); ``key`` drives a stochastic product rounding."""
    M, K = a.shape
    N = w.shape[1]
    binary32, term, tprm, add, aprm = _float_plan(mac)
    out = np.empty((M, N), np.float64)
    if binary32:
        cols, parallel = _fp32_layout(M, K, N)
        a32 = np.ascontiguousarray(a.T if cols else a, np.float32)
        w32, i32 = np.ascontiguousarray(w, np.float32), np.ascontiguousarray(init, np.float32)
        pcnt, acnt = _run_fp32(a32, w32, i32, cols, parallel, out)
        return out, pcnt, acnt
    if term is MK.term_float_sr:
        tprm = (*tprm, _as_i64(key))
    pcnt = np.zeros((M, N), np.int32)
    acnt = np.zeros((M, N), np.int32)
    _rows_kernel(M, K, N)(np.ascontiguousarray(a), np.ascontiguousarray(w), init, out, pcnt, acnt,
                          MK.tag(MK.TERM_CODES[term]), tprm, MK.tag(MK.ADD_CODES[add]),
                          aprm, MK.ORDER_CODES[mac.order.kind], mac.order.n)
    return out, pcnt, acnt


@functools.lru_cache(maxsize=256)
def _f32_rounder(f: Format, rounding: Rounding, overflow: Overflow) -> tuple | None:
    """(`fround` parameters, NaN value) that round reals to ``f`` straight into binary32, or None when
    the fast kernel does not cover the conversion (stochastic rounding, overflow error, values beyond
    binary32)."""
    if (not isinstance(f, FloatFormat) or not _in_fp32(f) or rounding == Rounding.STOCHASTIC
            or overflow == Overflow.ERROR):
        return None
    checked_settings(f, rounding, overflow, None, None, "matmul")  # the general conversion's checks
    return _kernels.float_params_packed(f, int(rounding), int(overflow)), np.nan if f.has_nan else 0.0


def _operand32(x: np.ndarray, f: Format, rounding: Rounding, overflow: Overflow,
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
    ovf, nan = _kernels.float_fast_2d(src, out, *r)
    if nan and not f.has_nan:
        return None
    return (np.ascontiguousarray(out.T) if flip != transpose else out), ovf


def _bias_vector(bias: Any, n: int) -> np.ndarray:
    """The bias as float64 (n,): zeros for None, a scalar or (n,) array broadcast."""
    if bias is None:
        return np.zeros(n)
    b = real_array(bias, "matmul", "bias").astype(np.float64, copy=False)
    if b.shape == (n,):
        return b
    if b.ndim > 1 or (b.ndim == 1 and b.size != 1):
        raise ValueError(f"matmul: bias has shape {b.shape}; expected ({n},) or a scalar")
    return np.full(n, b.reshape(()) if b.ndim == 0 else b[0])


class _Keys(NamedTuple):
    """The seeds of a datapath's random draws, one stream per role (None: the role draws nothing).

    From the call's 64-bit key (`seed_key`), role r of batch part b gets
    int(mix64(key + (2^32 r + b + 1) * 0xD1B54A32D192ED03)) as its ``seed``.
    """

    act: int | None = None
    weight: int | None = None
    addend: int | None = None
    product: int | None = None
    output: int | None = None

    @property
    def product_key(self) -> int:
        """The 64-bit key of the product stream (`seed_key` of its seed, as `quantize` derives one)."""
        return 0 if self.product is None else int(seed_key(self.product, "matmul"))

    @staticmethod
    def of(mac: MAC, seed: object, part: int = 0, key: np.uint64 | None = None) -> _Keys:
        """The keys of batch part ``part`` (``key``: the call's key, drawn from ``seed`` when None)."""
        sr = Rounding.STOCHASTIC
        draws = (mac.input_rounding == sr or _stochastic_format(mac.act),
                 mac.input_rounding == sr or _stochastic_format(mac.weight),
                 mac.input_rounding == sr,
                 mac.product is not None and mac.product_rounding == sr,
                 mac.output_rounding == sr)
        if not any(draws):
            return _Keys()
        if key is None:
            key = seed_key(seed, "matmul")
        ks = [int(_rounding.mix64(np.uint64((int(key) + ((r << 32) + part + 1) * 0xD1B54A32D192ED03)
                                           % (1 << 64)))) if d else None for r, d in enumerate(draws)]
        return _Keys(*ks)


def _stochastic_format(f: Format) -> bool:
    """Whether an operand format draws random bits of its own (binary<stochastic>, ternary<stochastic>)."""
    if isinstance(f, BinaryFormat):
        return f.stochastic
    return isinstance(f, TernaryFormat) and f.method == "stochastic"


@functools.lru_cache(maxsize=256)
def _fp32_inputs(mac: MAC) -> tuple | None:
    """(packed parameters, NaN value) of the act, weight and bias conversions of a binary32 datapath,
    straight into binary32; None when one is not covered (`_f32_rounder`)."""
    rs = (_f32_rounder(mac.act, mac.input_rounding, mac.input_overflow),
          _f32_rounder(mac.weight, mac.input_rounding, mac.input_overflow),
          _f32_rounder(mac.acc, mac.input_rounding, Overflow.SATURATE))
    return None if None in rs else (*rs[0], *rs[1], *rs[2])  # type: ignore[misc]


@functools.lru_cache(maxsize=256)
def _direct32(mac: MAC) -> bool:
    """Whether a 2-D product can go straight to `_matmul_fp32`: a binary32 datapath of float operands
    whose outputs are its accumulator's values (no output conversion; its overflow modes never raise)."""
    return (mac.float_acc and mac.output is None and not mac.block_scaled and _float_plan(mac)[0]
            and _fp32_inputs(mac) is not None)


def _matmul_fp32(a: np.ndarray, w: np.ndarray, mac: MAC, b: np.ndarray) -> tuple[np.ndarray, ...] | None:
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
    cols, parallel = _fp32_layout(M, K, N)
    out = np.empty((M, N), np.float64)
    if not parallel:
        a_t = not a.flags.c_contiguous  # hand the kernel a C-ordered array: a itself, a.T, or a copy
        w_t = not w.flags.c_contiguous
        a_s = a if not a_t else a.T if a.flags.f_contiguous else np.ascontiguousarray(a.T)
        w_s = w if not w_t else w.T if w.flags.f_contiguous else np.ascontiguousarray(w.T)
        ovf, nan_a, nan_w, nan_b, bad = MK.mac_fp32_from_reals(a_s, a_t, w_s, w_t, b, *conv, cols, out)
        if ((nan_a and not mac.act.has_nan) or (nan_w and not mac.weight.has_nan)
                or (nan_b and not mac.acc.has_nan)):
            return None
        if not bad:
            return out, None, None, ovf
    ra = _operand32(a, mac.act, mac.input_rounding, mac.input_overflow, transpose=cols)
    rw = _operand32(w, mac.weight, mac.input_rounding, mac.input_overflow)
    rb = _operand32(b.reshape(1, N), mac.acc, mac.input_rounding, Overflow.SATURATE)
    if ra is None or rw is None or rb is None:
        return None
    pcnt, acnt = _run_fp32(ra[0], rw[0], rb[0], cols, parallel, out)
    return out, pcnt, acnt, ra[1] + rw[1] + rb[1]


@dataclass
class _Part:
    """One 2-D product: values, codes (or None), counts (None: all zero), input overflow, path."""

    vals: np.ndarray
    codes: np.ndarray | None
    pcnt: np.ndarray | None
    acnt: np.ndarray | None
    oflag: np.ndarray | None
    input_overflow: int
    path: str
    nan_blocks: int = 0


def _blas_into_acc(qa: np.ndarray, qw: np.ndarray, bias_q: np.ndarray, mac: MAC, plan: _IntPlan,
                   want_codes: bool, input_overflow: int) -> _Part | None:
    """The whole product by one float32 BLAS call when the operand formats alone
    prove it exact and overflow-free: every partial sum of codes is an integer
    below 2^24 (so float32 holds it, in any summation order) and the shifted sum
    plus the bias stays inside the accumulator. None when that is not proven."""
    M, K = qa.shape
    N = qw.shape[1]
    acc = mac.acc
    assert isinstance(acc, FixedFormat)
    shift = -plan.tprm[-2]
    if not plan.exact_products or acc.qmin >= 0:
        return None
    most = (K * _max_code(mac.act) * _max_code(mac.weight) << shift) + _absmax(bias_q)
    if most > min(acc.qmax, -acc.qmin):
        return None
    vals = np.empty((M, N), np.float64)
    codes = np.empty((M, N) if want_codes else (0, 0), np.uint64)
    MK.exact_sums_out(qa @ qw, shift, bias_q, 2.0**-plan.fl_acc, np.uint64((1 << acc.bits) - 1), vals, codes,
                      want_codes)
    return _Part(vals, codes if want_codes else None, None, None, None, input_overflow, "exact-sum")


def _matmul2d(a: np.ndarray, w: np.ndarray, mac: MAC, init: np.ndarray, keys: _Keys, force_sequential: bool,
              want_codes: bool, want_flags: bool) -> _Part:
    """One 2-D product from the start values ``init`` ((1, N) or (M, N) reals, not yet converted)."""
    if mac.block_scaled:
        return _block_part(a, w, mac, init, keys, want_codes, want_flags)
    M, K = a.shape
    N = w.shape[1]
    as_int = not mac.float_acc
    direct = not as_int and _float_plan(mac)[0] and init.shape[0] == 1 and keys == _NO_KEYS
    fast = _matmul_fp32(a, w, mac, init[0]) if direct else None
    if fast is not None:  # float operands into binary32: one pass each, no float64 copies
        acc, pcnt, acnt, ia = fast
        sa = sw = None
        iw = 0
        path = "sequential"
    else:
        # float32 codes when the formats alone keep every partial sum of |codes| below 2^24
        f32 = as_int and not force_sequential and K * _max_code(mac.act) * _max_code(mac.weight) < 1 << 24
        qa, sa, ia = _operand(a, mac.act, mac, "act", as_int, f32, keys.act)
        qw, sw, iw = _operand(w, mac.weight, mac, "weight", as_int, f32, keys.weight)
        if as_int:
            plan = _int_plan(mac, K)
            grid = FixedFormat(max(1, 62 - plan.fl_acc), plan.fl_acc) if mac.exact_acc else mac.acc
            iv, ist = quantize(init, grid, mac.input_rounding, "saturate", return_stats=True, seed=keys.addend)
            bias_q = (iv * 2.0**plan.fl_acc).astype(np.int64)
            ia += ist.overflow  # the addend's conversion counts with the inputs'
            if f32 and sa is None and sw is None and mac.output is None and not mac.exact_acc:
                part = _blas_into_acc(qa, qw, bias_q, mac, plan, want_codes, ia + iw)
                if part is not None:
                    return part
            acc, pcnt, acnt, path = _run_int(qa, qw, bias_q, mac, plan, force_sequential, keys.product_key)
            e_off = -plan.fl_acc
        else:
            iv, ist = quantize(init, mac.acc, mac.input_rounding, "saturate", return_stats=True, seed=keys.addend)
            ia += ist.overflow
            _check_nan_products(qa, qw, mac)
            acc, pcnt, acnt = _run_float(qa, qw, iv, mac, keys.product_key)
            path = "sequential"
    out_fmt = mac.output_format
    if not as_int and not mac.acc.has_nan:
        _check_nan(acc, f"acc={mac.acc}")
    elif not as_int and not (isinstance(out_fmt, FloatFormat) and out_fmt.has_nan):
        _check_nan(acc, f"output={out_fmt}")
    scale = None
    if sa is not None or sw is not None:
        scale = np.broadcast_to((1.0 if sa is None else sa) * (np.ones(N) if sw is None else sw), (N,))
    flags = codes = None
    if not as_int and scale is None and mac.output is None and out_fmt.has_nan:
        vals = acc  # every addition rounded into the accumulator's format: no conversion, no overflow
        codes = codes_of_values(acc.reshape(-1), out_fmt).astype(np.uint64).reshape(M, N) if want_codes else None
    elif as_int and scale is None and mac.output is None and not mac.exact_acc and out_fmt.bits <= 53:
        vals = acc * 2.0**e_off  # already in the output format: no conversion, no overflow
        if want_codes:
            codes = (acc & ((1 << out_fmt.bits) - 1)).astype(np.uint64)
    else:
        if as_int and scale is None:
            x, kw = acc.reshape(-1), {"e_off": e_off}
        else:
            x = (acc * 2.0**e_off if as_int else acc).reshape(-1)
            x, kw = (x * np.tile(scale, M) if scale is not None else x), {}
        vals, codes, flags = _output(x, mac, keys, (M, N), want_codes, want_flags, **kw)
    counts = [None if c is None or not c.any() else c for c in (pcnt, acnt)]
    return _Part(vals, codes, counts[0], counts[1], None if flags is None else flags.reshape(M, N).astype(bool),
                 ia + iw, path)


_NO_KEYS = _Keys()


def _output(x: np.ndarray, mac: MAC, keys: _Keys, shape: tuple[int, int], want_codes: bool, want_flags: bool,
            **kw: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(values, codes, overflow flags) of the final accumulators ``x`` (flat) converted to the output."""
    flags = np.zeros(x.size, np.uint8) if want_flags else None
    vals, codes, _ = convert_array(x, mac.output_format, mac.output_rounding, mac.output_overflow, keys.output, None,
                              None, True, want_codes, "matmul (output)", flags=flags, **kw)
    return (vals.reshape(shape), None if codes is None else codes.reshape(shape),
            None if flags is None else flags.reshape(shape))


def _block_part(a: np.ndarray, w: np.ndarray, mac: MAC, init: np.ndarray, keys: _Keys, want_codes: bool,
                want_flags: bool) -> _Part:
    """One 2-D product of block-scaled operands (`emu.block.mac.block_product`)."""
    M, N = a.shape[0], w.shape[1]
    acc = mac.acc
    if isinstance(mac.act, NVFP4Format) and init.any():
        raise ValueError("matmul: nvfp4 operands take no bias= or c= (their fp32 tensor scales multiply the"
                         " finished sum); add it to the result")
    init_q = np.zeros(init.shape, np.int64)
    start_overflow = 0
    if not mac.exact_acc:
        init, st = quantize(init, acc, mac.input_rounding, "saturate", return_stats=True, seed=keys.addend)
        start_overflow = st.overflow
        if isinstance(acc, FixedFormat):
            init_q = (init * 2.0**acc.frac_bits).astype(np.int64)
    vals, novf, saturated, nan_blocks = block_product(
        a, w, mac.act, mac.weight, None if mac.exact_acc else acc, mac.acc_rounding,
        None if mac.exact_acc else mac.acc_overflow, init, init_q)
    if not mac.exact_acc and (isinstance(acc, FixedFormat) or not acc.has_nan):
        _check_nan(vals, f"acc={acc}")
    elif mac.output is not None and not (isinstance(mac.output, FloatFormat) and mac.output.has_nan):
        _check_nan(vals, f"output={mac.output}")
    codes = flags = None
    if mac.output is None:
        if want_codes:
            codes = codes_of_values(vals.reshape(-1), mac.output_format).astype(np.uint64).reshape(M, N)
    else:
        vals, codes, flags = _output(vals.reshape(-1), mac, keys, (M, N), want_codes, want_flags)
    acnt = novf.astype(np.int32) if novf.any() else None
    return _Part(vals, codes, None, acnt, None if flags is None else flags.astype(bool),
                 saturated + start_overflow, "block", nan_blocks)


def _check_nan_products(qa: np.ndarray, qw: np.ndarray, mac: MAC) -> None:
    """ValueError when some product a_ik w_kj is NaN (a NaN operand, or 0 times inf) and the product
    format it is rounded into has no NaN (NUMERICS.md section 5: NaN in a format without NaN is an
    error). The accumulator's and the output's cases are checked on the results (`_check_nan`)."""
    pf = mac.product
    if not isinstance(pf, FloatFormat) or pf.has_nan:
        return
    fa, fw = ~np.isfinite(qa), ~np.isfinite(qw)
    if not (fa.any() or fw.any()):
        return
    nan_k = (np.isnan(qa).any(axis=0) | np.isnan(qw).any(axis=1)
             | (np.isinf(qa).any(axis=0) & (qw == 0).any(axis=1)) | ((qa == 0).any(axis=0) & np.isinf(qw).any(axis=1)))
    if nan_k.any():
        raise ValueError(f"matmul: a product at k={int(np.flatnonzero(nan_k)[0])} is NaN (a NaN operand or"
                         f" 0 x inf) and product={pf} has no NaN")


def _check_nan(acc: np.ndarray, where: str) -> None:
    """ValueError when a NaN (a NaN product, or inf - inf) reached ``where``, a format without NaN."""
    bad = np.isnan(acc)
    if bad.any():
        first = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad.reshape(-1))[0]), bad.shape))
        raise ValueError(f"matmul: a NaN (a NaN product or inf - inf) reached {where}, which has no NaN;"
                         f" first in output {first}")


def _raise_errors(mac: MAC, pcnt: np.ndarray | None, acnt: np.ndarray | None) -> None:
    """OverflowError for an overflow mode ``error`` that was hit (None: nothing counted). Without a
    product format an unfused product is rounded into the accumulator's format under ``acc_overflow``."""
    prod_error = (mac.product_overflow == Overflow.ERROR
                  or (mac.product is None and mac.float_acc and mac.acc_overflow == Overflow.ERROR))
    if prod_error and pcnt is not None and pcnt.any():
        first = np.unravel_index(int(np.flatnonzero(pcnt.reshape(-1))[0]), pcnt.shape)
        into = mac.product if mac.product is not None else f"acc={mac.acc}"
        raise OverflowError(f"matmul: {int(pcnt.sum())} product(s) overflow {into}; first in output"
                            f" {tuple(int(i) for i in first)}")
    if mac.acc_overflow == Overflow.ERROR and acnt is not None and acnt.any():
        first = np.unravel_index(int(np.flatnonzero(acnt.reshape(-1))[0]), acnt.shape)
        raise OverflowError(f"matmul: {int(acnt.sum())} accumulator addition(s) overflow {mac.acc}; first in"
                            f" output {tuple(int(i) for i in first)}")


def matmul(a: object, w: object, mac: MAC | str | dict, bias: object = None, *, c: object = None,
           seed: object = None, return_stats: bool = False, return_codes: bool = False,
           sequential: bool = False) -> Any:
    """Matrix product a @ w with every dot product through the datapath ``mac``.

    Args:
        a: activations (..., M, K) or (K,).
        w: weights (K, N), (..., K, N) or (K,); leading dimensions broadcast as in np.matmul.
        mac: a `MAC`, a preset name (``"int8 x int8 -> int32"``) or a dict of MAC fields.
        bias: (N,) or a scalar: the accumulator's start value, one per output column (converted to the
            accumulator's format with ``input_rounding`` and saturation).
        c: an addend broadcastable to the output's shape: each accumulator's start value (D = A W + C, as
            matrix units compute it), converted like the bias. Give ``bias`` or ``c``, not both.
        seed: the random stream of every stochastic rounding in the datapath (the input, addend, product
            and output conversions; binary<stochastic> and ternary<stochastic> operands): an int >= 0, a
            SeedSequence, a Generator or None (fresh entropy). Role r of batch part b (a part is one 2-D
            product: one per batch index when w has batch dimensions, else the whole call) draws with the
            key mix64(k + (2^32 r + b + 1) * 0xD1B54A32D192ED03) of the call's key k (docs/semantics.md),
            roles act 0, weight 1, addend 2, product 3, output 4; an operand's element takes its C-order
            index in the operand, product (i, j, k) the index (i N + j) K + k, output (i, j) i N + j. The
            same seed gives the same bits for any thread count, memory layout or chunking.
        return_stats: also return a `MACStats` (an addend or bias that saturated counts as an input overflow).
        return_codes: also return the output codes (bit patterns of the output format).
        sequential: force the sequential kernel (the exact-sum fast path is off).

    Returns:
        float64 values of the output codes, shape as np.matmul's, then the codes
        and/or the stats when asked.

    Raises:
        ValueError: shape mismatch, formats that cannot be combined, widths beyond 62 bits, a NaN that
            reaches a product, accumulator or output format without NaN.
        OverflowError: an overflow mode ``error`` was hit (the first output is named).
        TypeError: an operand, bias or addend that is not real (bool, complex, object, str).

    >>> matmul([[1.0, 2.0]], [[3.0], [4.0]], "int8 x int8 -> int32")
    array([[11.]])
    >>> matmul([[1.0, 2.0]], [[3.0], [4.0]], "int8 x int8 -> int32", c=[[100.0]])
    array([[111.]])
    """
    m = mac if type(mac) is MAC else _mac(mac)
    if (c is None and type(a) is np.ndarray and type(w) is np.ndarray and a.ndim == 2 and w.ndim == 2
            and not return_codes and a.shape[1] == w.shape[0] and _direct32(m)):  # training's common case
        r = _matmul_fp32(a, w, m, _bias_vector(bias, w.shape[1]))
        if r is not None:
            if not return_stats:
                return r[0]
            return r[0], _mac_stats(w.shape[1], r[3], r[1], r[2], None, {"sequential"})
    return _matmul(a, w, m, bias, c, _call_key(m, seed), return_stats, return_codes, sequential)


def _call_key(mac: MAC, seed: object) -> np.uint64 | None:
    """The call's 64-bit key, drawn only when the datapath rounds stochastically somewhere."""
    return seed_key(seed, "matmul") if _Keys.of(mac, None, 0, np.uint64(0)) != _NO_KEYS else None


def _stochastic_inputs(x: np.ndarray, f: Format, mac: MAC, seed: int | None) -> tuple[np.ndarray, int]:
    """x converted once to an operand format under stochastic input rounding, each element by its index
    in x (later conversions of these values are exact), and the overflow count; x itself otherwise."""
    if mac.input_rounding != Rounding.STOCHASTIC or isinstance(f, (BinaryFormat, TernaryFormat)):
        return x, 0
    v, st = quantize(x, f, mac.input_rounding, mac.input_overflow, seed=seed, return_stats=True)
    return v, st.overflow


def _addend(c: object, A: np.ndarray, Wm: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The addend as float64 of the full product shape (*batch, M, N), a broadcast view."""
    C = real_array(c, "matmul", "c").astype(np.float64, copy=False)
    final = shape[:-2] + (() if A.ndim == 1 else shape[-2:-1]) + (() if Wm.ndim == 1 else shape[-1:])
    try:
        Cb = np.broadcast_to(C, final)
    except ValueError:
        raise ValueError(f"matmul: c has shape {C.shape}; it must broadcast to the output's shape {final}"
                         ) from None
    if A.ndim == 1:
        Cb = Cb[..., None] if Wm.ndim == 1 else Cb[..., None, :]
    if Wm.ndim == 1:
        Cb = Cb[..., None]
    return np.broadcast_to(Cb, shape)


def _starts(Cf: np.ndarray | None, b: np.ndarray | None, parts: tuple[int, ...]) -> Any:
    """A function giving part p's start values: (1, N) when one row serves every row (a bias, or an
    addend constant down the rows), else the part's (M, N) rows of the addend reshaped to ``parts``."""
    if Cf is None:
        row = b[None, :]  # type: ignore[index]
        return lambda p: row
    lead = Cf.ndim - 1
    if all(Cf.strides[i] == 0 or Cf.shape[i] == 1 for i in range(lead)):  # constant down the rows
        row = np.ascontiguousarray(Cf[(0,) * lead])[None, :]
        return lambda p: row
    full = Cf.reshape(parts)
    return lambda p: full[p]


def _matmul(a: object, w: object, m: MAC, bias: object, c: object, key: np.uint64 | None,
            return_stats: bool, return_codes: bool, sequential: bool, pre_overflow: int = 0) -> Any:
    """`matmul` after the datapath and the call's key are known; ``pre_overflow`` counts input conversions
    made by the caller (`conv2d`)."""
    A, Wm = real_array(a, "matmul", "a"), real_array(w, "matmul", "w")
    if A.ndim == 0 or Wm.ndim == 0:
        raise ValueError("matmul: a and w must have at least one dimension")
    if bias is not None and c is not None:
        raise ValueError("matmul: give bias= (one start value per output column) or c= (an addend that"
                         " broadcasts to the output), not both")
    a2 = A[None, :] if A.ndim == 1 else A
    w2 = Wm[:, None] if Wm.ndim == 1 else Wm
    if a2.shape[-1] != w2.shape[-2]:
        raise ValueError(f"matmul: a has K={a2.shape[-1]} (shape {A.shape}) but w has K={w2.shape[-2]}"
                         f" (shape {Wm.shape})")
    batch = a2.shape[:-2] if w2.ndim == 2 else np.broadcast_shapes(a2.shape[:-2], w2.shape[:-2])
    M, K, N = a2.shape[-2], a2.shape[-1], w2.shape[-1]
    shape = (*batch, M, N)
    Cf = None if c is None else _addend(c, A, Wm, shape)
    k0 = _Keys.of(m, None, 0, key) if key is not None else _NO_KEYS
    a2, ovf_a = _stochastic_inputs(a2, m.act, m, k0.act)
    w2, ovf_w = _stochastic_inputs(w2, m.weight, m, k0.weight)
    pre_overflow += ovf_a + ovf_w
    b = _bias_vector(bias, N) if Cf is None else None
    if w2.ndim == 2:
        rows = math.prod(a2.shape[:-1])
        start = _starts(Cf, b, (rows, N))
        parts = [_matmul2d(a2.reshape(rows, K), w2, m, start(slice(None)), k0, sequential, return_codes,
                           return_stats)]
    else:
        nb = math.prod(batch)
        ab = np.broadcast_to(a2, (*batch, M, K)).reshape(nb, M, K)
        wb = np.broadcast_to(w2, (*batch, K, N)).reshape(nb, K, N)
        start = _starts(Cf, b, (nb, M, N))
        parts = [_matmul2d(ab[i], wb[i], m, start(i), _Keys.of(m, None, i, key) if key is not None else k0,
                           sequential, return_codes, return_stats) for i in range(nb)]

    pcnt, acnt = _join(parts, "pcnt", np.int32, N), _join(parts, "acnt", np.int32, N)
    _raise_errors(m, pcnt, acnt)
    vals = _join(parts, "vals", np.float64, N).reshape(shape)  # type: ignore[union-attr]
    codes = None if not return_codes else _join(parts, "codes", np.uint64, N).reshape(shape)  # type: ignore
    if A.ndim == 1:
        vals = vals[..., 0, :]
        codes = None if codes is None else codes[..., 0, :]
    if Wm.ndim == 1:
        vals = vals[..., 0]
        codes = None if codes is None else codes[..., 0]
    out: list[Any] = [vals]
    if return_codes:
        out.append(codes)
    if return_stats:
        oflag = _join(parts, "oflag", bool, N)
        input_overflow = pre_overflow + sum(p.input_overflow for p in parts)
        st = _mac_stats(N, input_overflow, pcnt, acnt, oflag, {p.path for p in parts})
        nan_blocks = sum(p.nan_blocks for p in parts)
        out.append(st._replace(nan_blocks=nan_blocks) if nan_blocks else st)
    return out[0] if len(out) == 1 else tuple(out)


def _mac_stats(n: int, input_overflow: int, pcnt: np.ndarray | None, acnt: np.ndarray | None,
               oflag: np.ndarray | None, paths: set[str]) -> MACStats:
    """The `MACStats` of product, accumulator and output counts per output (None: nothing counted)."""
    counted = (pcnt, acnt, oflag)
    if pcnt is None and acnt is None and oflag is None:  # nothing counted: the common case, kept short
        zeros = [np.zeros(n, np.int64) for _ in range(3)]
        return MACStats(input_overflow, 0, 0, 0, *zeros, paths.pop() if len(paths) == 1 else "mixed")
    per = [np.zeros(n, np.int64) if c is None else c.reshape(-1, n).sum(axis=0, dtype=np.int64)
           for c in counted]
    total = [0 if c is None else int(p.sum()) for c, p in zip(counted, per, strict=True)]
    return MACStats(input_overflow, total[0], total[1], total[2], per[0], per[1], per[2],
                    paths.pop() if len(paths) == 1 else "mixed")


def _join(parts: list[_Part], name: str, dtype: Any, n: int) -> np.ndarray | None:
    """The parts' arrays ``name`` stacked; None when every part has None (nothing counted)."""
    if len(parts) == 1:
        return getattr(parts[0], name)  # type: ignore[no-any-return]
    if not parts:
        return np.zeros((0, n), dtype)
    arrs = [getattr(p, name) for p in parts]
    if all(x is None for x in arrs):
        return None
    return np.concatenate([np.zeros(p.vals.shape, dtype) if x is None else x
                           for x, p in zip(arrs, parts, strict=True)])


def dot(a: object, w: object, mac: MAC | str | dict, bias: object = None, **kwargs: Any) -> Any:
    """The dot product of two vectors through ``mac`` (a 0-d result; see `matmul`)."""
    A, Wv = real_array(a, "dot", "a"), real_array(w, "dot", "w")
    if A.ndim != 1 or Wv.ndim != 1:
        raise ValueError(f"dot: a and w must be vectors; got shapes {A.shape} and {Wv.shape}")
    return matmul(A, Wv, mac, bias, **kwargs)


def im2col(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], padding: tuple[int, int]
           ) -> tuple[np.ndarray, int, int]:
    """(patches, OH, OW): the (N*OH*OW, C*kh*kw) patches of an NCHW array, k in (c, i, j) C order.

    >>> cols, oh, ow = im2col(np.arange(9.0).reshape(1, 1, 3, 3), 2, 2, (1, 1), (0, 0))
    >>> cols[0].tolist(), oh, ow
    ([0.0, 1.0, 3.0, 4.0], 2, 2)
    """
    n, c, h, w_ = x.shape
    ph, pw = padding
    sh, sw = stride
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (w_ + 2 * pw - kw) // sw + 1
    s = xp.strides
    patches = np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, c, kh, kw), (s[0], s[2] * sh, s[3] * sw, s[1], s[2], s[3]), writeable=False)
    return patches.reshape(n * oh * ow, c * kh * kw), oh, ow


def _pair(v: object, name: str) -> tuple[int, int]:
    t = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)  # type: ignore[arg-type]
    if len(t) != 2 or any(isinstance(i, bool) or not isinstance(i, (int, np.integer)) for i in t):
        raise ValueError(f"conv2d: {name}={v!r} must be an int or a pair of ints")
    return int(t[0]), int(t[1])


def conv2d(x: object, w: object, mac: MAC | str | dict, stride: object = 1, padding: object = 0,
           bias: object = None, *, c: object = None, seed: object = None, **kwargs: Any) -> Any:
    """2-D convolution (cross-correlation) of NCHW x with (C_out, C_in, kh, kw) w through ``mac``.

    Each output is a dot product over k in (c_in, kh, kw) C order (im2col).
    Returns (N, C_out, OH, OW) values (plus codes/stats as `matmul`); the
    stats' per-channel counts are per output channel. ``c`` is an addend
    broadcastable to the output (N, C_out, OH, OW). Under stochastic input
    rounding x and w are converted once, each element by its C-order index
    in x or w (a value shared by several patches is the same in each);
    ``seed`` and the other random streams are `matmul`'s on the
    (N*OH*OW, C_in*kh*kw) patches and the (C_in*kh*kw, C_out) weights.

    >>> conv2d(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), "int8 x int8 -> int32").shape
    (1, 2, 2, 2)
    """
    X, Wt = real_array(x, "conv2d", "x"), real_array(w, "conv2d", "w")
    if X.ndim != 4 or Wt.ndim != 4:
        raise ValueError(f"conv2d: x must be NCHW and w (C_out, C_in, kh, kw); got {X.shape} and {Wt.shape}")
    if X.shape[1] != Wt.shape[1]:
        raise ValueError(f"conv2d: x has C_in={X.shape[1]} but w has C_in={Wt.shape[1]}")
    st, pad = _pair(stride, "stride"), _pair(padding, "padding")
    if min(st) < 1 or min(pad) < 0:
        raise ValueError(f"conv2d: stride={stride!r} must be >= 1 and padding={padding!r} >= 0")
    cout, cin, kh, kw = Wt.shape
    if X.shape[2] + 2 * pad[0] < kh or X.shape[3] + 2 * pad[1] < kw:
        raise ValueError(f"conv2d: kernel {kh}x{kw} larger than the padded input {X.shape[2:]}")
    m = mac if type(mac) is MAC else _mac(mac)
    key = _call_key(m, seed)
    k0 = _Keys.of(m, None, 0, key) if key is not None else _NO_KEYS
    X, ovf_x = _stochastic_inputs(X, m.act, m, k0.act)
    Wt, ovf_w = _stochastic_inputs(Wt, m.weight, m, k0.weight)
    cols, oh, ow = im2col(X, kh, kw, st, pad)
    n = X.shape[0]
    c_mat = None
    if c is not None:
        C = real_array(c, "conv2d", "c").astype(np.float64, copy=False)
        try:
            Cb = np.broadcast_to(C, (n, cout, oh, ow))
        except ValueError:
            raise ValueError(f"conv2d: c has shape {C.shape}; it must broadcast to the output's shape"
                             f" {(n, cout, oh, ow)}") from None
        Cb = Cb.transpose(0, 2, 3, 1)  # the product's (N*OH*OW, C_out) layout
        c_mat = Cb if any(Cb.strides[i] for i in range(3)) else Cb[0, 0, 0]
        c_mat = c_mat.reshape(-1, cout) if c_mat.ndim == 4 else c_mat
    res = _matmul(cols, Wt.reshape(cout, -1).T, m, bias, c_mat, key, kwargs.pop("return_stats", False),
                  kwargs.pop("return_codes", False), kwargs.pop("sequential", False), ovf_x + ovf_w,
                  **kwargs)

    def back(y: np.ndarray) -> np.ndarray:
        return y.reshape(n, oh, ow, cout).transpose(0, 3, 1, 2)

    if isinstance(res, tuple):
        return tuple(back(r) if isinstance(r, np.ndarray) and r.ndim == 2 else r for r in res)
    return back(res)
