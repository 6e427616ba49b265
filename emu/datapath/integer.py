"""The integer path: fixed and exact accumulators on integer codes (NUMERICS.md section 6).

When the products are exact and aligned exactly and a per-output L1 bound proves that no partial sum in
any order can leave the accumulator's range (or the accumulator is exact), the result is the exact integer
sum, which float BLAS computes exactly on codes split into limbs small enough that every partial sum stays
below 2^53 (`_exact_int_matmul`). Other outputs take the sequential kernels of `emu._mac_kernels`, or, for
a narrow sequential fixed accumulator, the 16- or 32-bit-lane kernels of `emu._fixed_kernels` (with 16-bit
lanes every row runs in the kernel: it is faster than the bound's own product). A product below
2^18 MACs of a datapath `emu._fixed_small_kernels` covers runs in one kernel call, conversions included
(`matmul_fixed`); a larger one whose formats fit 16-bit lanes goes from reals to int16 codes in one pass
per operand and into the 16-bit kernel; from 2^19 MACs, one with exact terms takes the general path
(its exact sums). Every path is tested bit-identical with the exact reference."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from .. import _fixed_kernels as FK
from .. import _fixed_small_kernels as SK
from .. import _mac_kernels as MK
from .. import _pair_kernels as PK
from ..convert import convert_operand
from ..formats import FixedFormat
from ..mac import MAC
from ..modes import Overflow, Rounding
from ..operand_grid import int_grid, max_code
from ..threads import LANE_THREAD_MACS, share
from .operands import absmax, c_ordered
from .stats import Part


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


def _exact_int_matmul(ca: np.ndarray, cw: np.ndarray) -> np.ndarray:
    """sum_k ca[i,k] cw[k,j] exactly (mod 2^64 if it does not fit in int64), by BLAS.

    The codes are integers held in float64. float32 BLAS when every partial sum
    stays below 2^24, float64 below 2^53; else the codes are split into limbs
    that keep each product's partial sums below 2^53, and the limb products are
    shifted and added in int64.
    """
    K = ca.shape[1]
    amax, wmax = absmax(ca), absmax(cw)
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
    tprm: MK.IntTermParams
    aprm: MK.FixedAddParams | None
    fl_acc: int
    lo: int
    hi: int
    wrap: bool
    exact_products: bool


def int_plan(mac: MAC) -> _IntPlan:
    fa, _ = int_grid(mac.act)
    fw, _ = int_grid(mac.weight)
    flp = fa + fw
    prod = mac.product
    if prod is not None:  # `MAC` refused an alignment beyond 62 bits
        sp = flp - prod.frac_bits
        # a product (below 2^62) shifted down by 63 bits or more is under 1/2 in magnitude: every
        # deterministic mode rounds it as it rounds the 63-bit shift (int64 shifts stop at 63; `MAC`
        # refuses a stochastic rounding that far)
        pprm = (True, min(sp, 63), int(mac.product_rounding), prod.qmin, prod.qmax, (1 << prod.bits) - 1,
                mac.product_overflow == Overflow.WRAP)  # the first fields of an IntTermParams
        fl_t = prod.frac_bits
    else:
        pprm = (False, 0, 0, 0, 0, 0, False)
        fl_t = flp
    if mac.exact_acc:  # its sums' room is checked on the operands' codes (`check_exact_room`)
        fl_acc = fl_t
        tprm = MK.IntTermParams(*pprm, 0, 0)
        return _IntPlan(tprm, None, fl_acc, -(1 << 62), 1 << 62, False, prod is None)  # type: ignore[arg-type]
    acc = mac.acc
    assert isinstance(acc, FixedFormat)
    fl_acc = acc.frac_bits
    sa = fl_t - fl_acc  # within 62 bits after the shift, and in blocks: `MAC` checked it
    tprm = MK.IntTermParams(*pprm, min(sa, 63), int(mac.align_rounding))  # (63: as the product's shift)
    wrap = mac.acc_overflow == Overflow.WRAP
    aprm = MK.FixedAddParams(acc.qmin, acc.qmax, (1 << acc.bits) - 1, wrap)
    return _IntPlan(tprm, aprm, fl_acc, acc.qmin, acc.qmax, wrap, prod is None and sa <= 0)


def check_exact_room(plan: _IntPlan, K: int, ca: np.ndarray, cw: np.ndarray, start: np.ndarray) -> None:
    """Refuse, before any sum, operands whose exact sums could leave the exact accumulator's register:
    62 bits on its grid (the products' step, `acc_start`). The bound is these operands' codes', not their
    formats': |start| + K max|a| max|w| units (with a ``product`` format, each rounded product's bound).

    e4m3 x e5m2 products reach 2^49.6 units, so their formats alone would allow K = 5000 and refuse 6000;
    6000 terms of these operands' codes pass when their largest product is smaller.

    Raises:
        ValueError: naming K, the largest term and the bits the sum could need.
    """
    t, p = absmax(ca) * absmax(cw), plan.tprm
    if p.prod_on:  # a product format: the rounded product's bound
        t = min(max(-p.plo, p.phi), (t >> p.sp) + 1 if p.sp > 0 else t << -p.sp)
    need = absmax(start) + K * t
    if need >= 1 << 62:
        raise ValueError(f"matmul: acc=exact holds sums below 2^62 units of its grid, but {K} products of"
                         f" these operands reach {t} units each ({need.bit_length()} bits with the start"
                         " value); give each call fewer terms (split K) or use a float accumulator")


def int_term(t: MK.IntTermParams, key: int) -> tuple[Any, tuple]:
    """The most specialised term function for a plan, with its parameters (so the kernel's inner loop
    vectorises); ``key`` drives a stochastic product rounding."""
    if t.prod_on and t.pmode == int(Rounding.STOCHASTIC) and t.sp > 0:
        return MK.term_int_sr, MK.StochasticIntParams(t.sp, t.plo, t.phi, t.pmask, t.pwrap, t.sa, t.amode,
                                                      as_i64(key))
    if t.prod_on:
        return MK.term_int, t
    if t.sa == 0:
        return MK.term_mul, MK.ShiftParams(0, 0)
    if t.sa < 0:
        return MK.term_mul_shl, MK.ShiftParams(-t.sa, 0)
    if t.amode == int(Rounding.FLOOR):
        return MK.term_mul_floor, MK.ShiftParams(t.sa, t.amode)
    return MK.term_mul_round, MK.ShiftParams(t.sa, t.amode)


def acc_start(init: np.ndarray, mac: MAC, plan: _IntPlan, seed: int | None) -> tuple[np.ndarray, int]:
    """(the accumulator's start codes as int64, their conversion's overflow count): the start values
    ``init`` (reals) converted to the accumulator's grid (an exact accumulator: a 62-bit grid of its
    fraction bits, its radix point anywhere) with the input rounding, saturating. An exact accumulator
    refuses a start value its register does not hold (saturating it would make the sum inexact)."""
    grid = FixedFormat(62 - plan.fl_acc, plan.fl_acc) if mac.exact_acc else mac.acc
    q, overflow = start_codes(init, grid, mac.input_rounding, seed)
    if overflow and mac.exact_acc:
        raise ValueError(f"matmul: acc=exact holds sums in {grid} (62 bits on the products' grid), but"
                         f" {overflow} start value(s) (bias or c) lie outside it; use a float accumulator")
    return q, overflow


def start_codes(init: np.ndarray, grid: FixedFormat, rounding: Rounding, seed: int | None
                ) -> tuple[np.ndarray, int]:
    """(the integer codes of ``init`` converted to ``grid`` with ``rounding``, saturating, as int64; the
    overflow count): taken from the word's bits, exact where a float64 value is not (a word of more
    than 53 bits, whose largest code 2^(W-1) - 1 float64 would round up to 2^(W-1))."""
    codes, st = convert_operand(init, grid, rounding, Overflow.SATURATE, seed, "matmul (bias, c)", codes=True)
    q = codes.astype(np.int64)
    if grid.signed:
        q = np.where(q >= 1 << (grid.bits - 1), q - (1 << grid.bits), q)
    return q, st.overflow


def term_shifts(term: Any, tprm: tuple) -> tuple[int, int]:
    """(sl, sr) of a shift term: the product shifted up by sl (``term_mul_shl``) or floored by sr bits
    (``term_mul_floor``); (0, 0) for ``term_mul``."""
    return (tprm.bits if term is MK.term_mul_shl else 0, tprm.bits if term is MK.term_mul_floor else 0)


def as_i64(key: int) -> int:
    """A 64-bit key as the int64 of the same bits (kernel parameter tuples hold int64)."""
    return key - (1 << 64) if key >= 1 << 63 else key


def rows_kernel(m: int, k: int, n: int) -> Any:
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


def run_int(ca: np.ndarray, cw: np.ndarray, bias_q: np.ndarray, mac: MAC, plan: _IntPlan,
             force_sequential: bool, key: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Accumulator codes (M, N) and overflow counts; ca, cw hold integer codes as float64; ``bias_q``
    the start codes, (1, N) or (M, N); ``key`` drives a stochastic product rounding."""
    M, K = ca.shape
    N = cw.shape[1]
    pcnt = np.zeros((M, N), np.int32)
    acnt = np.zeros((M, N), np.int32)
    good = np.zeros(M, bool)
    shift = -plan.tprm.sa if not mac.exact_acc else 0
    term, tprm = int_term(plan.tprm, key)
    prod_max = absmax(ca) * absmax(cw)
    lanes = narrow_lanes(mac, term, tprm, prod_max)
    if plan.exact_products and not force_sequential and M and N:
        limit = min(plan.hi, -plan.lo) if plan.lo < 0 else plan.hi
        unsigned_ok = plan.lo < 0 or (ca.min(initial=0) >= 0 and cw.min(initial=0) >= 0
                                      and bias_q.min(initial=0) >= 0)
        most = (K * prod_max << shift) + absmax(bias_q)
        if mac.exact_acc or (unsigned_ok and most <= limit):
            good[:] = True  # no partial sum of any output can leave the range
        elif lanes != 16:  # (16-bit lanes run every row faster than the bound's own product)
            # per output: the L1 bound sum_k |a_ik| |w_kj| (float64, with a margin) plus |bias|
            with blas_one_thread(M * K * N):
                l1 = np.abs(ca) @ np.abs(cw)
            bound = l1 * 2.0**shift * (1 + 2.0**-40) + np.abs(bias_q)
            safe = bound <= limit
            if plan.lo >= 0:  # unsigned: no negative term, so no partial sum below 0
                safe &= (ca >= 0).all(axis=1)[:, None] & (cw >= 0).all(axis=0)[None, :] & (bias_q >= 0)
            good = safe.all(axis=1)
    if M and good.all():
        return _shift_add(_exact_int_matmul(ca, cw), shift, bias_q), pcnt, acnt, "exact-sum"
    out = np.empty((M, N), np.int64)
    rows = np.flatnonzero(~good)
    _sequential_rows(ca, cw, bias_q, mac, plan, (term, tprm, lanes), rows, out, pcnt, acnt)
    if good.any():  # after the kernel: BLAS's threads spin on for a while after a call
        out[good] = _shift_add(_exact_int_matmul(ca[good], cw), shift, _rows_of(bias_q, good))
    return out, pcnt, acnt, "mixed" if good.any() else "sequential"


def _sequential_rows(ca: np.ndarray, cw: np.ndarray, bias_q: np.ndarray, mac: MAC, plan: _IntPlan,
                     kernel_choice: tuple[Any, tuple, int], rows: np.ndarray, out: np.ndarray,
                     pcnt: np.ndarray, acnt: np.ndarray) -> None:
    """The rows ``rows`` of the product by a sequential kernel, into out, pcnt and acnt; ``kernel_choice``
    holds the term function, its parameters and the narrow kernel's lanes (`narrow_lanes`)."""
    M, K = ca.shape
    N = cw.shape[1]
    every = rows.size == M  # then the kernels write into out, pcnt and acnt (zeros) directly
    sub_out = out if every else np.empty((rows.size, N), np.int64)
    sub_p = pcnt if every else np.zeros((rows.size, N), np.int32)
    sub_a = acnt if every else np.zeros((rows.size, N), np.int32)
    add = MK.add_exact if mac.exact_acc else MK.add_fixed
    aprm = MK.FixedAddParams(0, 0, 0, False) if mac.exact_acc else plan.aprm
    term, tprm, lanes = kernel_choice
    assert every or term is not MK.term_int_sr  # random streams are indexed by the row
    sub_a_int = ca if every else ca[rows]
    if lanes:  # 16- or 32-bit lanes, blocked for the caches
        sl, sr = term_shifts(term, tprm)
        acc, wrap = mac.acc, mac.acc_overflow == Overflow.WRAP
        parallel = rows.size * K * N >= LANE_THREAD_MACS
        init = _rows_of(bias_q, rows)
        if lanes == 16:
            kernel = FK.mac_fixed16 if parallel else FK.mac_fixed16_serial
            kernel(sub_a_int.astype(np.int16), FK.held_weights(cw, sl, sr, acc.bits), init.astype(np.int16),
                   sub_out, sub_a, sr, acc.bits, wrap)
        else:
            kernel = FK.mac_fixed32 if parallel else FK.mac_fixed32_serial
            kernel(sub_a_int.astype(np.int32), cw.astype(np.int32), init.astype(np.int32), sub_out, sub_a,
                   sl, sr, acc.qmin, acc.qmax, (1 << acc.bits) - 1, wrap)
    else:
        rows_kernel(rows.size, K, N)(sub_a_int.astype(np.int64), cw.astype(np.int64), _rows_of(bias_q, rows),
                                      sub_out, sub_p, sub_a, MK.tag(MK.TERM_CODES[term]), tprm,
                                      MK.tag(MK.ADD_CODES[add]), aprm, MK.ORDER_CODES[mac.order.kind],
                                      mac.order.n)
    if not every:
        out[rows], pcnt[rows], acnt[rows] = sub_out, sub_p, sub_a


_BLAS: list[Any] = []  # the thread-pool controller, made on first use


def blas_one_thread(macs: int) -> Any:
    """A context in which a large BLAS call runs on one thread: OpenBLAS's threads spin on after a call
    and halved the speed of the numba kernel that followed (measured: 32 ms alone, 63 ms after a
    512^3 product); below 2^22 MACs, or without threadpoolctl's controller, nothing changes."""
    if macs < 1 << 22:
        return contextlib.nullcontext()
    if not _BLAS:  # imported here: importing threadpoolctl sets KMP_DUPLICATE_LIB_OK, and importing emu
        # changes no global setting
        from threadpoolctl import ThreadpoolController

        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def narrow_lanes(mac: MAC, term: Any, tprm: tuple, prod_max: int) -> int:
    """The lanes (16 or 32 bits) of the kernel of `emu._fixed_kernels` that runs this product, or 0 for
    none: the sequential order, exact products (up to ``prod_max`` in magnitude) aligned by a shift, and a
    fixed accumulator and products narrow enough (`fits_int16`: a signed accumulator of at most 16 bits;
    `fits_int32`: at most 30 bits, aligned products below 2^29)."""
    if mac.order.kind != "sequential" or mac.exact_acc or term not in (MK.term_mul, MK.term_mul_shl,
                                                                        MK.term_mul_floor):
        return 0
    sl, sr = term_shifts(term, tprm)
    if mac.acc.qmin < 0 and FK.fits_int16(mac.acc.bits, prod_max, sl, sr):
        return 16
    return 32 if FK.fits_int32(mac.acc.bits, prod_max << sl) else 0


#: whether exact sums of int16 codes run on the CPU's 16-bit pair multiply-add (`emu._pair_kernels`; the
#: convolutions' `emu.datapath.conv_narrow._pair_sums`, the products' `_pair_product`; measured on ResNet-20's
#: sums on one thread: 108 to 116 GMAC/s against float32 BLAS's 23 to 49) rather than BLAS products
PAIR_SUMS = PK.PAIR_LANES > 0
#: the fewest multiply-adds for which `_pair_product` shares its columns among threads
PAIR_THREAD_MACS = 1 << 22


def pairs_hold(mac: MAC) -> bool:
    """Whether a product's exact sums may take the pair route: the host has it (`PAIR_SUMS`) and the act
    and weight formats are fixed-point formats whose codes are int16s (power-of-two, binary and ternary
    operands keep their own routes). Its int32 sums are exact below 2^31, so the formats' proof of exact
    sums asks K max|a| max|w| < 2^31 there (`exact_bound`)."""
    return PAIR_SUMS and all(isinstance(f, FixedFormat) and -(1 << 15) <= f.qmin and f.qmax < 1 << 15
                             for f in (mac.act, mac.weight))


def exact_bound(mac: MAC) -> int:
    """The bound below which every partial sum of codes must stay for the exact-sum routes: 2^31 on the pair
    route (int32 sums, `pairs_hold`), else 2^24 (float32 BLAS)."""
    return 1 << 31 if pairs_hold(mac) else 1 << 24


def _pair_product(qa: np.ndarray, qw: np.ndarray) -> np.ndarray:
    """The exact sums qa @ qw (M, N) of int16 codes qa (M, K) and qw (K, N), as an int32 (M, N) view, by the
    pair kernel: the rows of qa as its rows (packed, each row's pairs broadcast), the columns of qw as its
    columns (rows 2 kp and 2 kp + 1 of qw interleaved: pair kp of column n at [kp, n]), the columns shared
    among threads from `PAIR_THREAD_MACS` multiply-adds. Every partial sum must be below 2^31 in
    magnitude."""
    M, K = qa.shape
    N = qw.shape[1]
    kp, blk = -(-K // 2), PK.pair_block()
    np_ = max(blk, -(-N // blk) * blk)
    x = np.zeros((kp, np_, 2), np.int16)
    x[:, :N, 0] = qw[0::2]
    x[:K // 2, :N, 1] = qw[1::2]
    packed = PK.pack_pair_weights(qa)
    offs = np.arange(kp, dtype=np.int64) * 2 * np_
    sums = np.empty((packed.shape[0] * PK.MR, np_), np.int32)
    flat = x.reshape(-1)
    if M * K * N < PAIR_THREAD_MACS:
        PK.pair_sums(flat, offs, packed, sums)
    else:
        def work(t: int, threads: int) -> None:
            per = -(-np_ // (blk * threads)) * blk
            PK.pair_sums(flat, offs, packed, sums, (min(np_, t * per), min(np_, (t + 1) * per)))
        share(work)
    return sums[:M, :N]


def blas_proves(mac: MAC, plan: _IntPlan, K: int, bias_q: np.ndarray) -> bool:
    """Whether the formats alone prove every sum of K products plus a start value in ``bias_q`` inside a
    signed fixed accumulator, with exact products (the condition of `blas_into_acc`, given the float32
    bound on the codes)."""
    acc = mac.acc
    assert isinstance(acc, FixedFormat)
    if not plan.exact_products or acc.qmin >= 0:
        return False
    most = (K * max_code(mac.act) * max_code(mac.weight) << -plan.tprm.sa) + absmax(bias_q)
    return most <= min(acc.qmax, -acc.qmin)


def blas_into_acc(qa: np.ndarray, qw: np.ndarray, bias_q: np.ndarray, mac: MAC, plan: _IntPlan,
                   want_codes: bool, input_overflow: int, pair: bool = False) -> Part | None:
    """The whole product by one float32 BLAS call, or with ``pair`` by the pair kernel (`_pair_product`),
    which the caller chooses where float32 would not hold the sums (`pairs_hold`), when the operand
    formats alone prove it exact and overflow-free: every partial sum of codes is an integer below
    `exact_bound` (2^24, so float32 holds it, or 2^31 for the pair kernel's int32 lanes, in any summation
    order) and the shifted sum plus the bias stays inside the accumulator. None when that is not proven.
    (Below 2^24 float32 BLAS stays: there the two took about the same time, the pair kernel's operands
    being laid out in pairs first: medians of 20 calls, 512 x 768 x 768 3.4 ms against 3.6, 4096 x 256
    x 256 3.6 against 2.9.)"""
    M, K = qa.shape
    N = qw.shape[1]
    acc = mac.acc
    if not blas_proves(mac, plan, K, bias_q):
        return None
    shift = -plan.tprm.sa
    vals = np.empty((M, N), np.float64)
    codes = np.empty((M, N) if want_codes else (0, 0), np.uint64)
    sums = _pair_product(qa, qw) if pair else qa @ qw
    MK.exact_sums_out(sums, shift, bias_q, 2.0**-plan.fl_acc, np.uint64((1 << acc.bits) - 1), vals, codes,
                      want_codes)
    return Part(vals, codes if want_codes else None, None, None, None, input_overflow, "exact-sum")


class _Direct(NamedTuple):
    """The arguments of `mac_fixed_from_reals` after the operands: each conversion's (2^FL, lowest code,
    highest code, rounding mode) for act, weight and bias; the term's shifts; the accumulator's codes,
    wrap mask and mode, step; the lanes (`emu._fixed_small_kernels.lanes`)."""

    a: tuple[float, float, float, int]
    w: tuple[float, float, float, int]
    b: tuple[float, float, float, int]
    sl: int
    sr: int
    lo: int
    hi: int
    mask: int
    wrap: bool
    step: float
    lane: int


@functools.lru_cache(maxsize=256)
def _direct_params(mac: MAC) -> _Direct | None:
    """The parameters of `mac_fixed_from_reals` for a datapath it covers, else None: fixed operands
    converted deterministically with saturation, exact products aligned by a shift (``term_mul``,
    ``term_mul_shl``, ``term_mul_floor``) into a fixed accumulator of at most 53 bits that wraps or
    saturates after every addition in the sequential order, no output conversion."""
    if (mac.block_scaled or mac.float_acc or mac.exact_acc or mac.output is not None
            or mac.product is not None or not isinstance(mac.act, FixedFormat)
            or not isinstance(mac.weight, FixedFormat)
            or mac.input_rounding == Rounding.STOCHASTIC or mac.input_overflow != Overflow.SATURATE
            or mac.order.kind != "sequential" or mac.acc_overflow not in (Overflow.SATURATE, Overflow.WRAP)
            or mac.acc.bits > 53):
        return None
    plan = int_plan(mac)
    term, tprm = int_term(plan.tprm, 0)
    if term not in (MK.term_mul, MK.term_mul_shl, MK.term_mul_floor):
        return None
    sl, sr = term_shifts(term, tprm)
    mode = int(mac.input_rounding)
    acc = mac.acc
    conv = [(2.0**f.frac_bits, float(f.qmin), float(f.qmax), mode) for f in (mac.act, mac.weight, acc)]
    lane = SK.lanes(max_code(mac.act) * max_code(mac.weight), sl, sr, acc.qmin, acc.qmax)
    return _Direct(*conv, sl, sr, acc.qmin, acc.qmax, (1 << acc.bits) - 1, mac.acc_overflow == Overflow.WRAP,
                   2.0**-acc.frac_bits, lane)


def fixed_kernel_args(mac: MAC) -> _Direct | None:
    """For compiled (numba) code that runs a fixed-point datapath's small 2-D products itself: the
    arguments after the start values that `mac_fixed_kernel` takes for ``mac`` (`_Direct`), where it covers
    the datapath; else None.

    `mac_fixed_kernel(a, a_t, w, w_t, b, *args, out, cnt)` is `matmul_fixed`'s one-call kernel: the
    float64 operands a (M, K), or (K, M) with ``a_t``, and w (K, N), or (N, K) with ``w_t``, both
    C-ordered, and the start values ``b`` (N,) are converted to codes, and every output is its chain of
    additions from k = 0 up, wrapped or saturated after each; ``cnt`` (M, N, int32) gets each output's
    additions that overflowed. It returns (input overflows, whether a NaN was met, additions that
    overflowed): `matmul`'s values and accumulator counts where no NaN was met (elsewhere the caller is to
    run `matmul`, which refuses it). `matmul` runs it below 2^18 MACs; larger products it runs on other
    kernels, with the same values.
    """
    return _direct_params(mac)


#: `matmul_fixed`'s one-call kernel (`fixed_kernel_args`)
mac_fixed_kernel = SK.mac_fixed_from_reals


#: the one-call kernel runs on one thread at about 4 GMAC/s; the general path's threaded kernels overtake it
#: between 2^24 and 2^27 MACs (measured, fx<4,12> x fx<4,12> -> fx<4,12> saturating, which 16-bit lanes do
#: not hold: 512x512x64 4.0 ms one-call against 4.6 ms; 512^3 33 ms against 24 ms)
_ONE_CALL_MAX_MACS = 1 << 25


#: from this many MACs a product whose terms are exact (no floor onto the accumulator's grid) leaves the
#: one-call kernel to the general path, whose exact sums (BLAS on codes, proven by the formats or by each
#: output's L1 bound) are several times faster; where neither proof holds its sequential kernels take about
#: the one-call kernel's time (measured: fx<4,4> x fx<1,7> -> fx<21,11> wrapping, 32x64x100 128 us one-call
#: against 205 us, 512x144x6 319 against 327 us, 512x64x128 2.5 ms against 0.26 ms; fx<1,7> x fx<1,7> ->
#: fx<8,24> saturating, 6400x150x16 7.4 ms against 2.0 ms, and 8.5 against 9.2 ms on data that defeat
#: the L1 bound)
_EXACT_OVER_MACS = 1 << 19


def matmul_fixed(a: np.ndarray, w: np.ndarray, mac: MAC, b: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """(outputs, None, accumulator counts or None, input overflow) of a 2-D product of a datapath that
    `mac_fixed_from_reals` covers (`_direct_params`): from 2^18 MACs in 16-bit lanes when the formats fit
    them (`_matmul_fixed16`), else, below `_ONE_CALL_MAX_MACS`, in that one kernel call; None otherwise,
    from `_EXACT_OVER_MACS` when the terms are exact (the general path's exact sums), or when an input is
    NaN (the general path then runs, and raises).

    >>> m = MAC(act="fx<2,2>", weight="fx<2,2>", acc="fx<2,2>", acc_overflow="saturate")
    >>> out, _, acnt, ovf = matmul_fixed(np.array([[1.3, 1.7]]), np.array([[1.5], [1.75]]), m, np.zeros(1))
    >>> out.tolist(), acnt.tolist(), ovf
    ([[1.75]], [[1]], 0)
    """
    prm = _direct_params(mac)
    M, K = a.shape
    N = w.shape[1]
    if prm is None or a.dtype != np.float64 or w.dtype != np.float64:
        return None
    if M * K * N >= 1 << 18:
        done = _matmul_fixed16(a, w, mac, b, prm)
        if done is not None or M * K * N >= _ONE_CALL_MAX_MACS:
            return done
        if M * K * N >= _EXACT_OVER_MACS and prm.sr == 0:  # exact terms: the general path's exact sums
            return None
    (a_s, a_t), (w_s, w_t) = c_ordered(a), c_ordered(w)
    out = np.empty((M, N), np.float64)
    cnt = np.empty((M, N), np.int32)
    ovf, nan, n_acc = SK.mac_fixed_from_reals(a_s, a_t, w_s, w_t, np.ascontiguousarray(b, np.float64), *prm,
                                              out, cnt)
    if nan:
        return None
    return out, None, cnt if n_acc else None, ovf


def _matmul_fixed16(a: np.ndarray, w: np.ndarray, mac: MAC, b: np.ndarray, prm: _Direct
                    ) -> tuple[np.ndarray, ...] | None:
    """`matmul_fixed` of a larger product whose formats alone prove it runs in 16-bit lanes (`fits_int16`
    with the formats' largest codes): reals to int16 codes in one parallel pass per operand (the weights
    held as `mac_fixed16` takes them), then `mac_fixed16`; None otherwise or when an input is NaN."""
    a_prm, w_prm, b_prm, sl, sr = prm.a, prm.w, prm.b, prm.sl, prm.sr
    acc = mac.acc
    if acc.qmin >= 0 or not FK.fits_int16(acc.bits, max_code(mac.act) * max_code(mac.weight), sl, sr):
        return None
    M, N = a.shape[0], w.shape[1]
    codes = []
    ovf = 0
    for x, (scale, lo, hi, mode), up in ((a, a_prm, 0), (w, w_prm, 0 if sr else sl + 16 - acc.bits),
                                         (b.reshape(1, N), b_prm, 0)):
        xs, t = c_ordered(x)
        q = np.empty(x.shape, np.int16)
        stats = np.zeros((-(-x.shape[0] // SK.BLOCK_ROWS), 2), np.int64)
        SK.codes_rows(xs, t, scale, lo, hi, mode, q, 1 << up, stats)
        o, nan = stats.sum(axis=0).tolist()
        if nan:
            return None
        codes.append(q)
        ovf += o
    out = np.empty((M, N), np.float64)  # the codes, exact in float64, then scaled in place
    cnt = np.empty((M, N), np.int32)
    FK.mac_fixed16(*codes, out, cnt, sr, acc.bits, mac.acc_overflow == Overflow.WRAP)
    out *= prm.step
    return out, None, cnt if cnt.any() else None, ovf
