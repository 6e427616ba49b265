"""One 2-D product through a datapath (`matmul2d`): the operands, the integer, float or block-scaled
engine, the NaN rules (a NaN into a product, accumulator or output format without NaN raises), the output
conversion and its overflow flags, and the errors of the overflow mode ``error`` (`raise_errors`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._nans import quiet_nans
from ..block.formats import NVFP4Format
from ..block.mac import block_product
from ..convert import codes_of_values, convert_array, convert_operand
from ..formats import FixedFormat, FloatFormat
from ..mac import MAC
from ..modes import Overflow
from ..operand_grid import max_code
from .floating import float_plan, matmul_fp32, run_float
from .integer import (
    acc_start,
    blas_into_acc,
    check_exact_room,
    exact_bound,
    int_plan,
    matmul_fixed,
    run_int,
    start_codes,
)
from .operands import operand
from .seeds import NO_SEEDS, RoleSeeds
from .stats import Part
from .wide import run_wide, wide_start


def matmul2d(a: np.ndarray, w: np.ndarray, mac: MAC, init: np.ndarray, keys: RoleSeeds,
             force_sequential: bool, want_codes: bool, want_flags: bool,
             ranges: tuple[Any, Any] = (None, None)) -> Part:
    """One 2-D product from the start values ``init`` ((1, N) or (M, N) reals, not yet converted);
    ``ranges``: `emu.block.mac.block_product`'s, for block-scaled operands that are parts of larger ones."""
    if mac.block_scaled:
        return _block_part(a, w, mac, init, keys, want_codes, want_flags, ranges)
    if mac.wide_exact:
        return _wide_part(a, w, mac, init, keys, want_codes, want_flags)
    M, K = a.shape
    N = w.shape[1]
    as_int = not mac.float_acc
    direct = not as_int and float_plan(mac)[0] and init.shape[0] == 1 and keys == NO_SEEDS
    fast = matmul_fp32(a, w, mac, init[0]) if direct else None
    if fast is not None:  # float operands into binary32: one pass each, no float64 copies
        acc, pcnt, acnt, ia = fast
        sa = sw = None
        iw = 0
        path = "sequential"
    else:
        if as_int and init.shape[0] == 1 and keys == NO_SEEDS and not want_codes:
            done = matmul_fixed(a, w, mac, init[0])  # a datapath of the one-call kernels, from reals
            if done is not None:
                return Part(done[0], None, None, done[2], None, done[3], "sequential")
        # float32 codes when the formats alone keep every partial sum of |codes| below 2^24, or below 2^31
        # where the exact sums may take the pair kernel's int32 lanes (`exact_bound`; int16 codes, which
        # float32 holds, and made float64 again if that route does not run)
        most = K * max_code(mac.act) * max_code(mac.weight)
        f32 = as_int and not force_sequential and most < 1 << 24
        pair = (as_int and not force_sequential and not f32 and most < exact_bound(mac) and not mac.exact_acc
                and mac.output is None)
        qa, sa, ia = operand(a, mac.act, mac, "act", as_int, f32 or pair, keys.act)
        qw, sw, iw = operand(w, mac.weight, mac, "weight", as_int, f32 or pair, keys.weight)
        if as_int:
            _check_nan_codes(qa, qw, mac)
            plan = int_plan(mac)
            bias_q, start_overflow = acc_start(init, mac, plan, keys.addend)
            if mac.exact_acc:
                check_exact_room(plan, K, qa, qw, bias_q)
            ia += start_overflow  # the addend's conversion counts with the inputs'
            if (f32 or pair) and sa is None and sw is None and mac.output is None and not mac.exact_acc:
                part = blas_into_acc(qa, qw, bias_q, mac, plan, want_codes, ia + iw, pair)
                if part is not None:
                    return part
            if pair:  # the general path's float64 codes
                qa, qw = qa.astype(np.float64), qw.astype(np.float64)
            acc, pcnt, acnt, path = run_int(qa, qw, bias_q, mac, plan, force_sequential, keys.product_key)
            e_off = -plan.fl_acc
        else:
            iv, ist = convert_operand(init, mac.acc, mac.input_rounding, Overflow.SATURATE, keys.addend,
                                      "matmul (bias, c)")
            ia += ist.overflow
            _check_nan_products(qa, qw, mac)
            acc, pcnt, acnt = run_float(qa, qw, iv, mac, keys.product_key)
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
        vals = quiet_nans(acc)  # every addition rounded into the accumulator's format: no conversion
        if want_codes:
            codes = codes_of_values(acc.reshape(-1), out_fmt).astype(np.uint64).reshape(M, N)
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
    oflag = None if flags is None else flags.reshape(M, N).astype(bool)
    return Part(vals, codes, counts[0], counts[1], oflag, ia + iw, path)


def _output(x: np.ndarray, mac: MAC, keys: RoleSeeds, shape: tuple[int, int], want_codes: bool,
            want_flags: bool, **kw: Any) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """(values, codes, overflow flags) of the final accumulators ``x`` (flat) converted to the output."""
    flags = np.zeros(x.size, np.uint8) if want_flags else None
    out = mac.output_format
    x = quiet_nans(x).reshape(shape)  # (M, N): an overflow error names the output (i, j)
    vals, codes, _ = convert_array(x, out, mac.output_rounding, mac.output_overflow, keys.output, None, None,
                                   True, want_codes, "matmul (output)", flags=flags, **kw)
    return (vals.reshape(shape), None if codes is None else codes.reshape(shape),
            None if flags is None else flags.reshape(shape))


def _wide_part(a: np.ndarray, w: np.ndarray, mac: MAC, init: np.ndarray, keys: RoleSeeds, want_codes: bool,
               want_flags: bool) -> Part:
    """One 2-D product on the wide exact path (`emu.datapath.wide`): the operands' values, the exact sums
    rounded to odd at 53 bits, then the output conversion (a NaN sum into an output without NaN raises)."""
    qa, _, ia = operand(a, mac.act, mac, "act", False, seed=keys.act)
    qw, _, iw = operand(w, mac.weight, mac, "weight", False, seed=keys.weight)
    acc = run_wide(qa, qw, wide_start(init, mac, a.shape[1]), mac)
    if not mac.output.has_nan:
        _check_nan(acc, f"output={mac.output}")
    vals, codes, flags = _output(acc.reshape(-1), mac, keys, acc.shape, want_codes, want_flags)
    return Part(vals, codes, None, None, None if flags is None else flags.astype(bool), ia + iw, "exact-wide")


def _block_part(a: np.ndarray, w: np.ndarray, mac: MAC, init: np.ndarray, keys: RoleSeeds, want_codes: bool,
                want_flags: bool, ranges: tuple[Any, Any]) -> Part:
    """One 2-D product of block-scaled operands (`emu.block.mac.block_product`)."""
    M, N = a.shape[0], w.shape[1]
    acc = mac.acc
    if isinstance(mac.act, NVFP4Format) and init.any():
        raise ValueError("matmul: nvfp4 operands take no bias= or c= (their fp32 tensor scales multiply the"
                         " finished sum); add it to the result")
    init_q = np.zeros(init.shape, np.int64)
    start_overflow = 0
    if isinstance(acc, FixedFormat):  # the start codes exact, as on the integer path
        init_q, start_overflow = start_codes(init, acc, mac.input_rounding, keys.addend)
        init = init_q * 2.0**-acc.frac_bits
    elif not mac.exact_acc:
        init, st = convert_operand(init, acc, mac.input_rounding, Overflow.SATURATE, keys.addend,
                                   "matmul (bias, c)")
        start_overflow = st.overflow
    vals, novf, saturated, nan_blocks = block_product(
        a, w, mac.act, mac.weight, None if mac.exact_acc else acc, mac.acc_rounding,
        None if mac.exact_acc else mac.acc_overflow, init, init_q, ranges)
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
    return Part(vals, codes, None, acnt, None if flags is None else flags.astype(bool),
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
             | (np.isinf(qa).any(axis=0) & (qw == 0).any(axis=1))
             | ((qa == 0).any(axis=0) & np.isinf(qw).any(axis=1)))
    if nan_k.any():
        raise ValueError(f"matmul: a product at k={int(np.flatnonzero(nan_k)[0])} is NaN (a NaN operand or"
                         f" 0 x inf) and product={pf} has no NaN")


def _check_nan_codes(qa: np.ndarray, qw: np.ndarray, mac: MAC) -> None:
    """ValueError when a NaN operand (of a float operand format with NaN) would reach a fixed or exact
    accumulator, which has no NaN (docs/semantics.md, item 7), naming the first output it reaches."""
    if not any(isinstance(f, FloatFormat) and f.has_nan for f in (mac.act, mac.weight)):
        return
    rows, cols = np.isnan(qa).any(axis=1), np.isnan(qw).any(axis=0)
    if rows.any() or cols.any():
        _check_nan(np.where(rows[:, None] | cols[None, :], np.nan, 0.0),
                   "acc=exact" if mac.exact_acc else f"acc={mac.acc}")


def _check_nan(acc: np.ndarray, where: str) -> None:
    """ValueError when a NaN (a NaN product, or inf - inf) reached ``where``, a format without NaN."""
    bad = np.isnan(acc)
    if bad.any():
        first = tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(bad.reshape(-1))[0]), bad.shape))
        raise ValueError(f"matmul: a NaN (a NaN product or inf - inf) reached {where}, which has no NaN;"
                         f" first in output {first}")


def raise_errors(mac: MAC, pcnt: np.ndarray | None, acnt: np.ndarray | None) -> None:
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
        raise OverflowError(f"matmul: {int(acnt.sum())} accumulator addition(s) overflow {mac.acc} (counted"
                            " as under saturation, the accumulator held at its bound); first in output"
                            f" {tuple(int(i) for i in first)}")
