"""numba kernels of block conversion: rounding to element grids, the MX, NVFP4 and scaled-integer
encoders, per-block minima and maxima, and the table-driven decoder."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._rounding import (
    div_rne,
    fround_ne,
    pow2,
    rint_even,
    rint_side,
    round_grid_ne,
)

#: the elements from which a block kernel shares its blocks among numba's threads: below it one thread is
#: faster on the arrays a conversion is given, which the calling thread has just written (measured,
#: mxfp8_e4m3 encode of fresh arrays: 6400 values 27 us on two threads against 15 us on one, 524,288
#: values 1.25 against 1.13 ms)
BLOCK_THREAD_ELEMENTS = 1 << 20

# --- numba scalar routines ------------------------------------------------------------------------------


@njit(cache=True)
def float_code(v, neg, M, emin, bias, bits, negzero):
    """Code of the grid value v >= 0 (sign from ``neg``) in a small float format."""
    s = np.int64(1) << (bits - 1) if (neg and (v != 0.0 or negzero)) else np.int64(0)
    if v == 0.0:
        return s
    vb = np.float64(v).view(np.uint64)
    e = np.int64(vb >> np.uint64(52)) - 1023  # v's exponent, read from its bits (v >= 2^-1022 here)
    if e < emin or e == -1023:  # the format's subnormals (and a subnormal float64 v): v / 2^(emin - M)
        return s | np.int64(math.ldexp(v, M - emin))
    frac = np.int64((vb >> np.uint64(52 - M)) & np.uint64((1 << M) - 1))  # v's top M fraction bits
    return s | (np.int64(e + bias) << M) | frac


#: a float64's magnitude bits, and the bits of +inf (every NaN's magnitude bits lie above them)
_ABS_BITS, _INF_BITS = np.uint64(0x7FFFFFFFFFFFFFFF), np.uint64(0x7FF0000000000000)


@njit(cache=True)
def block_scan(x2, idx, nb, B, ecodes, stats):
    """Block ``idx`` of the row-major block grid (``nb`` blocks of ``B`` elements per row): (row, first
    element, end, largest |x|, whether an element is NaN or infinite). Such a block gets zero element
    codes and is counted in stats[idx, 2]; its scale code is the caller's."""
    r = idx // nb
    lo = (idx - r * nb) * B
    hi = min(lo + B, x2.shape[1])
    row = x2[r, lo:hi]
    top = np.uint64(0)  # the largest |x| bit pattern: the largest magnitude, or inf / NaN (above all finite)
    for k in range(hi - lo):  # (indices from 0: no negative-index checks, and the loop vectorises)
        top = max(top, np.float64(row[k]).view(np.uint64) & _ABS_BITS)
    bad = top >= _INF_BITS
    amax = 0.0 if bad else np.uint64(top).view(np.float64)
    if bad:
        for k in range(lo, hi):
            ecodes[r, k] = 0
        stats[idx, 2] = 1
    return r, lo, hi, amax, bad


#: `ScaleRule` members as the kernels' integer codes (`rule_code`)
RULE_OCP, RULE_CEIL, RULE_EVEN, RULE_RCEIL = 0, 1, 2, 3


@njit(cache=True)
def mx_scale_exp(amax, rule, emax_el, maxval, mtop, idx, stats):
    """The shared exponent X of an MX block with largest magnitude amax (finite, >= 0) under the scale rule
    code ``rule`` (`ScaleRule`: ``emax_el`` the element's largest power-of-two exponent, ``maxval`` its
    largest value, ``mtop`` the fraction bits of its top binade), clamped to [-127, 127]; a clamp from
    above sets stats[idx, 1]. An all-zero block gets -127."""
    if amax == 0.0:
        return np.int64(-127)
    mm, ex = math.frexp(amax)  # amax = mm 2^ex, mm in [1/2, 1)
    X = np.int64(ex - 1 - emax_el)
    if rule == RULE_CEIL:
        if mm != 0.5:
            X += 1
    elif rule == RULE_EVEN:  # the significand 2 mm rounds (ties to even) to 2 at M fraction bits
        if mm >= 1.0 - math.ldexp(1.0, -(mtop + 2)):
            X += 1
    elif rule == RULE_RCEIL:
        if amax > math.ldexp(maxval, X):
            X += 1
    if X > 127:
        X = 127
        stats[idx, 1] = 1
    elif X < -127:
        X = -127
    return X


#: the quotients the fast MX loop converts to integers are clamped to 2^52 (larger ones saturate anyway)
_TWO52 = 4503599627370496.0


@njit(cache=True)
def mx_fast_elements(M, emin, emax_el):
    """Whether `_mx_float_elements` covers a float element format: every power of two it scales by,
    2^-(X + qe) with X in [-127, 127] and qe in [emin - M, emax_el + 1 - M], is a normal float64, and the
    smallest step 2^(emin - M) is above 2^-890 (so a subnormal float64 input, below 2^-895 once divided
    by 2^X, rounds to zero, as the loop gives it)."""
    return M - emin < 890 and emax_el + 130 < 1020


@njit(cache=True, inline="always")
def _mx_float_elements(x2, xb, r, lo, hi, X, M, emin, bits, negzero, ftz, emax_el, maxcode, ecodes):
    """The float element codes of block elements lo .. hi - 1 of row r under the shared exponent X,
    nearest even and saturating, in one loop of selects that vectorises (for the formats
    `mx_fast_elements` accepts); returns the saturated count.

    Per element, with e the exponent of |v| / 2^X: above the element's top binade (e > emax_el) it
    saturates to the largest code; below half its smallest step (e < emin - M - 1), or below 2^emin with
    ``ftz``, it is 0; otherwise |v| 2^-(X + qe), qe = max(e, emin) - M, is rounded to an integer kf by the
    nearest-even addition of 2^52 (`rint_even`) and the code is kf + ((qe - emin + M) << M), saturating
    above the largest code; the sign bit is set on negative values (on -0 where the format has one). e
    is clamped to [emin - M - 2, emax_el + 1] before the scale is made and the quotient to 2^52 before
    its conversion, so every intermediate is finite and in range; the selects decide the clamped cases."""
    signbit = np.int64(1) << (bits - 1)
    nsat = 0
    xs, bs, out = x2[r, lo:hi], xb[r, lo:hi], ecodes[r, lo:hi]  # indices from 0: no negative-index checks
    for k in range(hi - lo):
        bv = bs[k]
        neg = (bv >> np.uint64(63)) != np.uint64(0)
        fv = np.int64((bv >> np.uint64(52)) & np.uint64(0x7FF))
        e = fv - 1023 - X
        qe = max(min(max(e, emin - M - 2), emax_el + 1), emin) - M
        t = min(abs(xs[k]) * pow2(-X - qe), _TWO52)  # (2^-(X + qe): a normal float64)
        kf = rint_even(t)
        cm = np.int64(kf) + (np.int64(qe - emin + M) << M)
        big = e > emax_el
        small = (e < emin - M - 1) | (ftz & (e < emin))
        sat = big | (~small & (cm > maxcode))
        cm = maxcode if sat else (np.int64(0) if small else cm)
        out[k] = (signbit | cm) if (neg & ((cm != 0) | negzero)) else cm
        nsat += np.int64(sat)
    return nsat


@njit(cache=True)
def _mx_general_elements(x2, xb, r, lo, hi, X, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax,
                         emax_el, maxcode, p2, ecodes):
    """The element codes of block elements lo .. hi - 1 of row r under the shared exponent X, one element
    at a time (fixed elements and the float formats `_mx_float_elements` does not cover); returns the
    saturated count."""
    mask = (np.int64(1) << bits) - 1
    signbit = np.int64(1) << (bits - 1)
    nsat = 0
    for k in range(lo, hi):
        v = x2[r, k]
        bv = xb[r, k]
        neg = (bv >> np.uint64(63)) != np.uint64(0)
        fv = np.int64((bv >> np.uint64(52)) & np.uint64(0x7FF))
        if v == 0.0:
            c = float_code(0.0, neg, M, emin, bias, bits, negzero) if is_float else np.int64(0)
            ecodes[r, k] = c
            continue
        if fv == 0:  # a subnormal float64: the general (slow) path
            a = math.ldexp(abs(v), -X)
            if is_float:
                val, sat = (0.0, False) if ftz and a < math.ldexp(1.0, emin) else round_grid_ne(
                    a, 0, M, emin, maxval)
                c = float_code(val, neg, M, emin, bias, bits, negzero)
            else:
                q = rint_side(math.ldexp(a, fl), 0)
                c = np.int64(0) if q == 0.0 else (np.int64(-q) if neg else np.int64(q)) & mask
                sat = False
            nsat += np.int64(sat)
            ecodes[r, k] = c
            continue
        e = fv - 1023 - X  # exponent of |v| / 2^X
        av = abs(v)
        if is_float:
            if e > emax_el:
                sat = True
                cm = maxcode
            elif e < emin - M - 1 or (ftz and e < emin):
                sat = False
                cm = np.int64(0)
            else:
                qe = max(e, emin) - M
                t = av * p2[P2OFF - X - qe]  # exact: a power of two, no underflow here
                kf = rint_even(t)  # (M = 0: a tie's significand 3/2 goes to 2)
                cm = np.int64(kf) + (np.int64(qe - emin + M) << M)
                sat = cm > maxcode
                if sat:
                    cm = maxcode
            c = (signbit | cm) if (neg and (cm != 0 or negzero)) else cm
        else:
            if e > 62 - fl:
                q = qmax
                sat = True
            else:
                t = av * p2[P2OFF - X + fl]
                if t >= 4503599627370496.0:
                    q = qmax
                    sat = True
                else:
                    q = np.int64(rint_even(t))
                    sat = q > qmax
                    if sat:
                        q = qmax
            c = (-q if neg else q) & mask
        nsat += np.int64(sat)
        ecodes[r, k] = c
    return nsat


@njit(cache=True, inline="always")
def mx_block_start(x2, idx, nb, B, rule, emax_el, maxval, mtop, scodes, ecodes, stats):
    """The start of MX block ``idx`` (`mx_encode_kernel`, `emu.block.sr_kernels.mx_encode_sr_kernel`): its
    scan (`block_scan`) and scale code written; returns (row, first element, end, shared exponent X,
    whether the block holds NaN or inf: scale code 255, element codes 0, nothing left to do)."""
    r, lo, hi, amax, bad = block_scan(x2, idx, nb, B, ecodes, stats)
    b = idx - r * nb
    if bad:
        scodes[r, b] = 255
        return r, lo, hi, np.int64(0), True
    X = mx_scale_exp(amax, rule, emax_el, maxval, mtop, idx, stats)
    scodes[r, b] = X + 127
    return r, lo, hi, X, False


@njit(cache=True)
def _mx_block(idx, x2, xb, B, nb, fast, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax,
              emax_el, rule, mtop, maxcode, p2, scodes, ecodes, stats):
    """Block ``idx`` of `mx_encode_kernel`."""
    r, lo, hi, X, bad = mx_block_start(x2, idx, nb, B, rule, emax_el, maxval, mtop, scodes, ecodes, stats)
    if bad:
        return
    if fast:
        nsat = _mx_float_elements(x2, xb, r, lo, hi, X, M, emin, bits, negzero, ftz, emax_el, maxcode, ecodes)
    else:
        nsat = _mx_general_elements(x2, xb, r, lo, hi, X, is_float, M, emin, bias, bits, negzero, ftz, maxval,
                                    fl, qmax, emax_el, maxcode, p2, ecodes)
    stats[idx, 0] = nsat


@njit(parallel=True, cache=True)
def _mx_threads(x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el, rule, mtop,
                maxcode, p2, scodes, ecodes, stats):
    nb = scodes.shape[1]
    fast = is_float and mx_fast_elements(M, emin, emax_el)
    for idx in prange(x2.shape[0] * nb):
        _mx_block(idx, x2, xb, B, nb, fast, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax,
                  emax_el, rule, mtop, maxcode, p2, scodes, ecodes, stats)


@njit(cache=True)
def _mx_serial(x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el, rule, mtop,
               maxcode, p2, scodes, ecodes, stats):
    nb = scodes.shape[1]
    fast = is_float and mx_fast_elements(M, emin, emax_el)
    for idx in range(x2.shape[0] * nb):
        _mx_block(idx, x2, xb, B, nb, fast, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax,
                  emax_el, rule, mtop, maxcode, p2, scodes, ecodes, stats)


def mx_encode_kernel(x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el, rule,
                     mtop, maxcode, p2, scodes, ecodes, stats):
    """MX encoding of the rows of x2 (blocks of B along them) with nearest-even elements: scale codes
    (`mx_scale_exp` + 127, 255 for a block holding NaN or inf) and element codes; a float element format
    (``is_float``: M fraction bits, ``emin``, ``bias``, ``bits``, ``negzero``) with ``ftz`` (no subnormals)
    takes a quotient |v| / 2^X below 2^emin to a zero of its sign before any rounding. stats[idx] =
    (saturated elements, scale clamped from above, NaN/inf block). Float elements go through the loop of
    selects (`_mx_float_elements`) where it covers the format, the rest element by element
    (`_mx_general_elements`). Blocks are shared among numba's threads from `BLOCK_THREAD_ELEMENTS`
    elements (each block's codes are the same either way)."""
    run = _mx_threads if x2.size >= BLOCK_THREAD_ELEMENTS else _mx_serial
    run(x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el, rule, mtop,
        maxcode, p2, scodes, ecodes, stats)


@njit(cache=True)
def nv_block_scale(amax, g32, scale_prm):
    """The E4M3 block scale of NVFP4, e4m3(fp32(fp32(amax) / 6) / g) (fp32 divisions, nearest even; E4M3
    nearest even, saturating: ``scale_prm``), as a float64."""
    s32 = np.float32(np.float32(np.float32(amax) / np.float32(6.0)) / g32)
    sv, ssat = fround_ne(float(s32), scale_prm)  # the rounding core: E4M3, saturating
    return sv


@njit(cache=True, inline="always")
def e2m1_magnitude(av, d):
    """(code magnitude 0..7, saturated) of av / d (av >= 0, d >= 0) rounded to nearest even onto E2M1
    (0, 0.5, 1, 1.5, 2, 3, 4, 6: codes 0..7), saturating at 6, without dividing: av is compared with the
    midpoints times d. For an NVFP4 block d = s g (an E4M3 scale times the fp32 tensor scale) holds at
    most 28 significant bits and lies in [2^-158, 2^137], so each midpoint times d (at most 3 significant
    bits) is exact, and the comparisons decide the exact quotient's rounding: the ties 0.25, 1.25, 2.5 and
    5 go down and 0.75, 1.75 and 3.5 up (to the even code), and from 7 (the midpoint between 6 and the
    next binade's 8, a tie that goes up to 8) the quotient overflows and saturates. d = 0 gives 0.

    >>> e2m1_magnitude(2.5, 1.0), e2m1_magnitude(2.75, 1.0), e2m1_magnitude(7.0, 1.0)
    ((4, False), (5, False), (7, True))
    """
    if d == 0.0:
        return np.int64(0), False
    c = np.int64(av > 0.25 * d) + np.int64(av >= 0.75 * d) + np.int64(av > 1.25 * d)
    c += np.int64(av >= 1.75 * d) + np.int64(av > 2.5 * d) + np.int64(av >= 3.5 * d) + np.int64(av > 5.0 * d)
    return c, av >= 7.0 * d


@njit(cache=True, inline="always")
def nv_block_start(x2, idx, nb, B, g, scale_prm, scodes, ecodes, stats):
    """The start of NVFP4 block ``idx`` (`nv_encode_kernel`, `emu.block.sr_kernels.nv_encode_sr_kernel`): its
    scan (`block_scan`) and E4M3 scale code written; returns (row, first element, end, the divisor d = s g
    of its elements, exact: 4 x 24 significant bits; whether the block holds NaN or inf: scale code 0x7F,
    element codes 0, nothing left to do)."""
    r, lo, hi, amax, bad = block_scan(x2, idx, nb, B, ecodes, stats)
    b = idx - r * nb
    if bad:
        scodes[r, b] = 0x7F
        return r, lo, hi, 0.0, True
    sv = nv_block_scale(amax, np.float32(g), scale_prm)
    scodes[r, b] = float_code(sv, False, 3, -6, 7, 8, True)
    return r, lo, hi, sv * g, False


@njit(cache=True)
def _nv_block(idx, x2, B, nb, g, scale_prm, scodes, ecodes, stats):
    """Block ``idx`` of `nv_encode_kernel`."""
    r, lo, hi, d, bad = nv_block_start(x2, idx, nb, B, g, scale_prm, scodes, ecodes, stats)
    if bad:
        return
    nsat = 0
    xs, out = x2[r, lo:hi], ecodes[r, lo:hi]  # indices from 0: no negative-index checks
    for k in range(hi - lo):
        v = xs[k]
        c, sat = e2m1_magnitude(abs(v), d)
        neg = (np.float64(v).view(np.uint64) >> np.uint64(63)) != np.uint64(0)  # -0 too
        out[k] = (np.int64(8) if neg else np.int64(0)) | c
        nsat += sat
    stats[idx, 0] = nsat


@njit(parallel=True, cache=True)
def _nv_threads(x2, B, g, scale_prm, scodes, ecodes, stats):
    nb = scodes.shape[1]
    for idx in prange(x2.shape[0] * nb):
        _nv_block(idx, x2, B, nb, g, scale_prm, scodes, ecodes, stats)


@njit(cache=True)
def _nv_serial(x2, B, g, scale_prm, scodes, ecodes, stats):
    nb = scodes.shape[1]
    for idx in range(x2.shape[0] * nb):
        _nv_block(idx, x2, B, nb, g, scale_prm, scodes, ecodes, stats)


def nv_encode_kernel(x2, B, g, scale_prm, scodes, ecodes, stats):
    """NVFP4 encoding of the rows of x2 (blocks of B along them) with nearest-even elements: each block's
    E4M3 scale code (`nv_block_scale`; 0x7F for a block holding NaN or inf) and its E2M1 element codes
    (`e2m1_magnitude`, the sign bit 8 on negative values and -0); stats[idx] = (saturated elements, 0,
    NaN/inf block). ``g`` is the fp32 tensor scale. Threads as `mx_encode_kernel`."""
    run = _nv_threads if x2.size >= BLOCK_THREAD_ELEMENTS else _nv_serial
    run(x2, B, g, scale_prm, scodes, ecodes, stats)


@njit(parallel=True, cache=True)
def int_encode_kernel(x2, B, svals, zps, qlo, qhi, bits, ecodes, stats):
    R, n = x2.shape
    nb = svals.shape[1]
    mask = (np.int64(1) << bits) - 1
    for idx in prange(R * nb):
        r = idx // nb
        b = idx - r * nb
        lo = b * B
        hi = min(lo + B, n)
        s = svals[r, b]
        z = zps[r, b]
        nsat = 0
        for k in range(lo, hi):
            v = x2[r, k]
            if abs(v) / s >= 1e15:
                q = qhi if v > 0 else qlo
                nsat += 1
            else:
                q = np.int64(div_rne(v, s)) + z
                if q > qhi:
                    q = qhi
                    nsat += 1
                elif q < qlo:
                    q = qlo
                    nsat += 1
            ecodes[r, k] = q & mask
        stats[idx, 0] = nsat


@njit(parallel=True, cache=True)
def block_minmax(x2, B, out):
    """Per block: (min, max, non-finite count)."""
    R, n = x2.shape
    nb = out.shape[1]
    for idx in prange(R * nb):
        r = idx // nb
        b = idx - r * nb
        lo = b * B
        hi = min(lo + B, n)
        mn = 0.0
        mx = 0.0
        bad = 0
        for k in range(lo, hi):
            v = x2[r, k]
            if not np.isfinite(v):
                bad += 1
            else:
                mn = min(mn, v)
                mx = max(mx, v)
        out[r, b, 0] = mn
        out[r, b, 1] = mx
        out[r, b, 2] = bad


P2OFF = 600
P2 = np.ldexp(1.0, np.arange(-P2OFF, P2OFF + 1))  # P2[P2OFF + j] = 2^j


@njit(cache=True)
def _decode_rows(c2, s2, lut, slut, B, out, r0, r1):
    """Rows r0 .. r1 - 1 of `decode_kernel`."""
    n = c2.shape[1]
    for r in range(r0, r1):
        for b in range(s2.shape[1]):
            sv = slut[s2[r, b]]
            cs, os = c2[r, b * B:min(b * B + B, n)], out[r, b * B:min(b * B + B, n)]  # indices from 0
            for k in range(cs.size):
                v = lut[cs[k]] * sv
                os[k] = np.nan if np.isnan(v) else v


@njit(parallel=True, cache=True)
def _decode_threads(c2, s2, lut, slut, B, out):
    for r in prange(c2.shape[0]):
        _decode_rows(c2, s2, lut, slut, B, out, r, r + 1)


def decode_kernel(c2, s2, lut, slut, B, out):
    """out[r, k] = lut[c2[r, k]] * slut[s2[r, k // B]], a NaN product as the one quiet NaN; rows shared
    among numba's threads from `BLOCK_THREAD_ELEMENTS` elements."""
    if c2.size >= BLOCK_THREAD_ELEMENTS:
        _decode_threads(c2, s2, lut, slut, B, out)
    else:
        _decode_rows(c2, s2, lut, slut, B, out, 0, c2.shape[0])


@njit(cache=True)
def _gather_rows(codes, table, out, r0, r1):
    """Rows r0 .. r1 - 1 of `gather_values`."""
    for r in range(r0, r1):
        cs, os = codes[r], out[r]
        for k in range(cs.size):
            os[k] = table[cs[k]]


@njit(parallel=True, cache=True)
def _gather_threads(codes, table, out):
    for r in prange(codes.shape[0]):
        _gather_rows(codes, table, out, r, r + 1)


def gather_values(codes, table, out):
    """out[r, k] = table[codes[r, k]]: element codes (any integer dtype) decoded through the value table of
    their format (`elem_table`), without an int64 copy of the codes; rows shared among numba's threads
    from `BLOCK_THREAD_ELEMENTS` elements."""
    if codes.size >= BLOCK_THREAD_ELEMENTS:
        _gather_threads(codes, table, out)
    else:
        _gather_rows(codes, table, out, 0, codes.shape[0])
