"""Numba kernels for conversion to fixed, float and power-of-two formats.

Everything here works in the integer domain: a finite input is split into sign,
an unsigned 64-bit magnitude ``mag`` and an exponent ``e`` (x = +-mag * 2^e),
and rounding drops ``s`` low bits of ``mag`` with the exact remainder kept as
``F`` (its top 64 bits, as a fraction of the rounding step) plus a sticky flag.
That makes every mode exact for any input, float64 or 64-bit integer, whatever
the format's radix point. The rules are docs/semantics.md; ``emu._ref`` is the
slow reference they are tested against bit for bit.

Kernels never raise: they count overflow, underflow, NaN and bad inputs per
chunk of elements into a ``stats`` array and the Python wrappers raise.
Parallel loops run over fixed chunks, and random bits are drawn by element
index, so results never depend on the thread count. No fastmath anywhere.

The rounding rules themselves live in `emu._rounding` (the rounding core).
Imports the modes' integer values and `emu._rounding`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, prange

from ._rounding import (  # the rounding core; the datapath kernels import these names from here too
    _CEIL,
    _FLOOR,
    _FRAC_MASK,
    _HIDDEN,
    _INF,
    _NA,
    _NAN,
    _ND,
    _NE,
    _NU,
    _ONE,
    _SAT,
    _SQRT2_Q63,
    _SR,
    _WRAP,
    _ZERO,
    U64,
    _is_ne,
    bitlen,
    first_word,
    float_overflow,
    float_params,
    fround,
    fround_ne,
    round_mag,
)

#: Columns of the per-chunk stats array.
ST_OVERFLOW, ST_UNDERFLOW, ST_NAN, ST_FIRST_OVERFLOW, ST_FIRST_NAN, ST_BAD, ST_FIRST_BAD = range(7)
N_STATS = 7
CHUNK = 1 << 15


@njit(cache=True)
def _store(stats, c, n_ovf, n_unf, n_nan, f_ovf, f_nan, n_bad, f_bad):
    """Write one chunk's counts and first indices into the stats array."""
    stats[c, ST_OVERFLOW] = n_ovf
    stats[c, ST_UNDERFLOW] = n_unf
    stats[c, ST_NAN] = n_nan
    stats[c, ST_FIRST_OVERFLOW] = f_ovf
    stats[c, ST_FIRST_NAN] = f_nan
    stats[c, ST_BAD] = n_bad
    stats[c, ST_FIRST_BAD] = f_bad


@njit(cache=True)
def _split_float(b: np.uint64) -> tuple[bool, np.uint64, np.int64]:
    """Sign, magnitude and exponent of a finite float64 given by its bits."""
    neg = (b >> U64(63)) != _ZERO
    ex = np.int64((b >> U64(52)) & U64(0x7FF))
    fr = b & _FRAC_MASK
    if ex == 0:
        return neg, fr, np.int64(-1074)
    return neg, fr | _HIDDEN, ex - 1075


@njit(cache=True)
def _split_int(b: np.uint64, in_kind: np.int64, e_off: np.int64) -> tuple[bool, np.uint64, np.int64]:
    """Sign, magnitude and exponent of an integer code q given as 64 bits (int64
    when ``in_kind`` is 1, uint64 when 2) standing for q * 2^e_off."""
    if in_kind == 1 and (b >> U64(63)) != _ZERO:
        return True, ~b + _ONE, e_off
    return False, b, e_off


@njit(cache=True)
def _fixed_one(neg: bool, mag: np.uint64, e: np.int64, fl: np.int64, wl: np.int64, signed: bool,
               mode: np.int64, ovf: np.int64, key: np.uint64, index: np.int64,
               rbits: np.int64) -> tuple[np.int64, bool]:
    """Code (as a signed integer) of +-mag * 2^e in <WL-FL, FL>, and an overflow flag."""
    qmag, big = round_mag(mag, -fl - e, neg, mode, True, key, index, rbits, _ZERO)
    if signed:
        lim = U64(1 << (wl - 1))
        over = big or (qmag >= lim if not neg else qmag > lim)
    else:
        over = big or (qmag > (U64(1 << wl) - _ONE) if not neg else qmag != _ZERO)
    if not over:
        return (-np.int64(qmag) if neg else np.int64(qmag)), False
    if ovf == _WRAP:
        v = (~qmag + _ONE) if neg else qmag
        v &= U64(1 << wl) - _ONE
        if signed and v >= U64(1 << (wl - 1)):
            return np.int64(v) - (np.int64(1) << wl), True
        return np.int64(v), True
    if signed:
        return (-(np.int64(1) << (wl - 1)) if neg else (np.int64(1) << (wl - 1)) - 1), True
    return (np.int64(0) if neg else (np.int64(1) << wl) - 1), True


@njit(parallel=True, cache=True)
def quantize_fixed(xb, in_kind, out_val, out_code, fl, wl, signed, mode, ovf, key, rbits, stats, e_off,
                   flags):
    """Convert float64 bit patterns (or integers, see `_split`) to <WL-FL, FL>.

    Writes values (float64) into ``out_val`` and codes (the WL-bit pattern) into
    ``out_code`` when those arrays are non-empty.
    """
    n = xb.size
    want_val = out_val.size > 0
    want_code = out_code.size > 0
    want_flags = flags.size > 0
    eps = np.ldexp(1.0, -fl)
    mask = U64(1 << wl) - _ONE
    qmax = (np.int64(1) << (wl - 1)) - 1 if signed else (np.int64(1) << wl) - 1
    qmin = -(np.int64(1) << (wl - 1)) if signed else np.int64(0)
    nchunks = stats.shape[0]
    for c in prange(nchunks):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        n_ovf = 0
        n_unf = 0
        n_nan = 0
        n_bad = 0
        f_ovf = -1
        f_nan = -1
        f_bad = -1
        for i in range(lo, hi):
            b = xb[i]
            q = np.int64(0)
            if in_kind != 0:
                neg, mag, e = _split_int(b, in_kind, e_off)
            else:
                if (b & U64(0x7FF0000000000000)) == U64(0x7FF0000000000000):
                    if (b & _FRAC_MASK) != _ZERO:
                        n_nan += 1
                        if f_nan < 0:
                            f_nan = i
                    else:
                        n_ovf += 1
                        if f_ovf < 0:
                            f_ovf = i
                        if want_flags:
                            flags[i] = 1
                        q = qmin if (b >> U64(63)) != _ZERO else qmax
                        if ovf == _WRAP:
                            n_bad += 1
                            if f_bad < 0:
                                f_bad = i
                    if want_val:
                        out_val[i] = np.float64(q) * eps
                    if want_code:
                        out_code[i] = U64(q) & mask
                    continue
                neg, mag, e = _split_float(b)
            if mag != _ZERO:
                q, over = _fixed_one(neg, mag, e, fl, wl, signed, mode, ovf, key, i, rbits)
                if over:
                    n_ovf += 1
                    if f_ovf < 0:
                        f_ovf = i
                    if want_flags:
                        flags[i] = 1
                elif q == 0:
                    n_unf += 1
            if want_val:
                out_val[i] = np.float64(q) * eps
            if want_code:
                out_code[i] = U64(q) & mask
        _store(stats, c, n_ovf, n_unf, n_nan, f_ovf, f_nan, n_bad, f_bad)


@njit(parallel=True, cache=True)
def quantize_float(xb, in_kind, out_val, out_code, ebits, mbits, bias, emax, subnormals, has_inf,
                   has_nan, nzero, nan_code, max_sig, mode, ovf, key, rbits, pow2, stats, e_off, flags):
    """Convert float64 bit patterns (or integers, see `_split`) to a float format.

    ``pow2[p - (emin - M)]`` holds 2^p for every rounding point p <= emax - M;
    ``nzero`` says whether -0 exists; ``nan_code`` is the canonical NaN code.
    """
    n = xb.size
    want_val = out_val.size > 0
    want_code = out_code.size > 0
    want_flags = flags.size > 0
    emin = 1 - bias
    top = mbits + ebits
    sign_bit = _ONE << U64(top)
    hid = np.int64(1) << mbits
    pmin = emin - mbits
    max_val = np.float64(max_sig) * pow2[emax - mbits - pmin]
    max_code = U64(emax + bias) << U64(mbits) | (U64(max_sig) - U64(hid))
    inf_code = U64((1 << ebits) - 1) << U64(mbits)
    nchunks = stats.shape[0]
    for c in prange(nchunks):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        n_ovf = 0
        n_unf = 0
        n_nan = 0
        n_bad = 0
        f_ovf = -1
        f_nan = -1
        f_bad = -1
        for i in range(lo, hi):
            b = xb[i]
            cls = -1  # -1 finite result; 0 max; 1 inf; 2 nan; 3 zero
            val = 0.0
            code = _ZERO
            if in_kind != 0:
                neg, mag, e = _split_int(b, in_kind, e_off)
            else:
                neg = (b >> U64(63)) != _ZERO
                if (b & U64(0x7FF0000000000000)) == U64(0x7FF0000000000000):
                    if (b & _FRAC_MASK) != _ZERO:
                        n_nan += 1
                        if f_nan < 0:
                            f_nan = i
                        cls = 2 if has_nan else 3
                        neg = False
                    elif has_inf and (ovf == _INF or ovf == _NAN):
                        cls = 1
                    else:
                        n_ovf += 1
                        if f_ovf < 0:
                            f_ovf = i
                        if want_flags:
                            flags[i] = 1
                        cls = float_overflow(neg, mode, ovf)
                        if cls == 1:
                            cls = 0  # +-inf into a format without inf: saturate
                    mag = _ZERO
                    e = np.int64(0)
                else:
                    neg, mag, e = _split_float(b)
            if cls < 0:
                if mag == _ZERO:
                    cls = 3
                else:
                    ex = bitlen(mag) - 1 + e
                    if ex < emin and not subnormals:
                        cls = 3
                        n_unf += 1
                    else:
                        p = (ex if ex > emin else emin) - mbits
                        qmag, big = round_mag(mag, p - e, neg, mode, False, key, i, rbits,
                                              U64((ex + bias + 1) & 1) if (mbits == 0 and ex >= emin)
                                              else _ZERO)
                        if qmag == U64(hid << 1):
                            qmag = U64(hid)
                            p += 1
                        if qmag == _ZERO:
                            cls = 3
                            n_unf += 1
                        else:
                            ev = p + mbits if qmag >= U64(hid) else emin
                            if ev > emax or (ev == emax and qmag > U64(max_sig)):
                                n_ovf += 1
                                if f_ovf < 0:
                                    f_ovf = i
                                if want_flags:
                                    flags[i] = 1
                                cls = float_overflow(neg, mode, ovf)
                            else:
                                if want_val:
                                    val = np.float64(qmag) * pow2[p - pmin]
                                    if neg:
                                        val = -val
                                if want_code:
                                    if qmag >= U64(hid):
                                        code = (U64(ev + bias) << U64(mbits)) | (qmag - U64(hid))
                                    else:
                                        code = qmag
                                    if neg:
                                        code |= sign_bit
            if cls == 0:
                val = -max_val if neg else max_val
                code = max_code | (sign_bit if neg else _ZERO)
            elif cls == 1:
                val = -np.inf if neg else np.inf
                code = inf_code | (sign_bit if neg else _ZERO)
            elif cls == 2:
                val = np.nan
                code = nan_code
            elif cls == 3:
                if neg and nzero:
                    val = -0.0
                    code = sign_bit
                else:
                    val = 0.0
                    code = _ZERO
            if want_val:
                out_val[i] = val
            if want_code:
                out_code[i] = code
        _store(stats, c, n_ovf, n_unf, n_nan, f_ovf, f_nan, n_bad, f_bad)


@njit(parallel=True, cache=True)
def quantize_pow2(xb, in_kind, out_val, out_code, emin, emax, signed, kbits, mode, ovf, key, rbits, stats,
                  e_off, flags):
    """Convert float64 bit patterns (or integers, see `_split_int`) to powers of two.

    Magnitudes in [2^k, 2^(k+1)) round at the geometric midpoint in the nearest
    modes and by `round_mag` (linear fraction) otherwise; below 2^emin between 0
    and 2^emin by `round_mag`.
    """
    n = xb.size
    want_val = out_val.size > 0
    want_code = out_code.size > 0
    want_flags = flags.size > 0
    sign_bit = _ONE << U64(kbits)
    nchunks = stats.shape[0]
    for c in prange(nchunks):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        n_ovf = 0
        n_unf = 0
        n_nan = 0
        f_ovf = -1
        f_nan = -1
        for i in range(lo, hi):
            b = xb[i]
            k = emin - 1  # emin - 1 stands for zero
            over = False
            if in_kind != 0:
                neg, mag, e = _split_int(b, in_kind, e_off)
            else:
                neg = (b >> U64(63)) != _ZERO
                mag = _ZERO
                e = np.int64(0)
                if (b & U64(0x7FF0000000000000)) == U64(0x7FF0000000000000):
                    if (b & _FRAC_MASK) != _ZERO:
                        n_nan += 1
                        if f_nan < 0:
                            f_nan = i
                        neg = False
                    else:
                        over = True
                else:
                    neg, mag, e = _split_float(b)
            if mag != _ZERO:
                bl = bitlen(mag)
                ex = bl - 1 + e
                if ex >= emin:
                    if mode <= _ND:
                        up = (mag << U64(64 - bl)) > _SQRT2_Q63
                        k = ex + (1 if up else 0)
                    else:
                        q, big = round_mag(mag, ex - e, neg, mode, False, key, i, rbits, _ZERO)
                        k = ex + (1 if q == U64(2) else 0)
                else:
                    q, big = round_mag(mag, emin - e, neg, mode, False, key, i, rbits, _ZERO)
                    if q != _ZERO:
                        k = emin
                    else:
                        n_unf += 1
                over = k > emax or (neg and not signed and k >= emin)
            if over:
                n_ovf += 1
                if f_ovf < 0:
                    f_ovf = i
                if want_flags:
                    flags[i] = 1
                k = emin - 1 if (neg and not signed) else emax
            if k < emin:
                if want_val:
                    out_val[i] = 0.0
                if want_code:
                    out_code[i] = _ZERO
            else:
                if want_val:
                    v = math.ldexp(1.0, int(k))
                    out_val[i] = -v if neg else v
                if want_code:
                    out_code[i] = U64(k - emin + 1) | (sign_bit if neg else _ZERO)
        _store(stats, c, n_ovf, n_unf, n_nan, f_ovf, f_nan, 0, -1)


@njit(parallel=True, cache=True)
def uniform53(key, out):
    """out[i] = (w0(key, i) >> 11) * 2^-53: a uniform float64 in [0, 1) per element."""
    scale = np.ldexp(1.0, -53)
    for i in prange(out.size):
        out[i] = np.float64(first_word(key, i) >> U64(11)) * scale


# --- fast paths -----------------------------------------------------------------------------------
# Values only, float64 input. Each is tested bit for bit against the general
# kernels above and the reference; the wrappers fall back to the general
# kernels outside the stated conditions. Stats columns: overflow, underflow, nan.

N_FAST_STATS = 3


@njit(cache=True)
def _fixed_det_block(x, out, scale, eps, lo_f, hi_f, mode):
    """One block of `fixed_fast`; returns (overflow, underflow, nan) counts.

    r = rint(t) and e = t - r are exact for every float64 t (|e| <= 1/2; for
    |t| < 1 by Sterbenz's lemma), so each mode is r adjusted by the sign of e,
    and a tie (|e| = 1/2) chooses between r and r + 2e.
    """
    n_ovf = 0
    n_unf = 0
    n_nan = 0
    for i in range(x.size):
        xi = x[i]
        t = xi * scale
        r = np.rint(t)
        e = t - r
        if mode == _NE:
            q = r
        elif mode <= _ND:
            other = r + 2.0 * e
            tie = (e == 0.5) | (e == -0.5)
            if mode == _NA:
                pick = abs(other) > abs(r)
            elif mode == _NU:
                pick = other > r
            else:
                pick = other < r
            q = other if tie & pick else r
        else:
            down = r - 1.0 if e < 0.0 else r
            up = r + 1.0 if e > 0.0 else r
            if mode == _FLOOR:
                q = down
            elif mode == _CEIL:
                q = up
            else:
                q = down if t > 0.0 else up
        qc = min(max(q, lo_f), hi_f)
        isnan = xi != xi
        n_ovf += (qc != q) & ~isnan
        n_nan += isnan
        qc = 0.0 if isnan else qc
        n_unf += (qc == 0.0) & (qc == q) & (xi != 0.0)
        out[i] = qc * eps + 0.0
    return n_ovf, n_unf, n_nan


@njit(cache=True)
def _fixed_fast_chunk(c, x, out, fl, codes, qmin, qmax, mode, stats):
    lo = c * CHUNK
    hi = min(x.size, lo + CHUNK)
    eps = 1.0 if codes else np.ldexp(1.0, -fl)
    a, b, d = _fixed_det_block(x[lo:hi], out[lo:hi], np.ldexp(1.0, fl), eps, np.float64(qmin),
                               np.float64(qmax), mode)
    stats[c, 0] = a
    stats[c, 1] = b
    stats[c, 2] = d


@njit(parallel=True, cache=True)
def fixed_fast(x, out, fl, qmin, qmax, mode, stats, codes=False):
    """<WL-FL, FL> values for a deterministic mode; needs FL >= 0 and WL <= 53.

    t = x 2^FL is exact, f = floor(t) and d = t - f are exact, so every mode is
    rint or a comparison of d with 0 and 1/2. Out-of-range q clamps (saturate).
    With ``codes`` the integer codes q go to ``out`` instead of q 2^-FL (float32
    when the caller knows |q| < 2^24, as the matmul's float32 BLAS path does).
    """
    for c in prange(stats.shape[0]):
        _fixed_fast_chunk(c, x, out, fl, codes, qmin, qmax, mode, stats)


@njit(cache=True)
def fixed_fast_serial(x, out, fl, qmin, qmax, mode, codes=False):
    """`fixed_fast` without threads on at most `CHUNK` elements (a parallel launch costs more than a
    small input); returns the (overflow, underflow, nan) counts."""
    return _fixed_det_block(x, out, np.ldexp(1.0, fl), 1.0 if codes else np.ldexp(1.0, -fl), np.float64(qmin),
                            np.float64(qmax), mode)


@njit(cache=True)
def _fixed_sr_block(x, out, scale, eps, lo_f, hi_f, key, base, rbits, ties):
    """One block of `fixed_sr_fast`; flags in ``ties`` the elements whose first
    random word equals the fraction's first 64 bits (to be settled exactly).

    The fraction of t is taken from the magnitude m = |t| (m - floor(m) is
    exact), F = floor(frac(m) 2^64) with a sticky flag, and for negative t the
    two's complement of those bits, as in `round_mag`.
    """
    n_ovf = 0
    n_unf = 0
    n_nan = 0
    n_tie = 0
    two64 = np.ldexp(1.0, 64)
    sh = U64(64 - rbits) if rbits > 0 else _ZERO
    for i in range(x.size):
        xi = x[i]
        t = xi * scale
        m = abs(t)
        fm_int = np.floor(m)
        fm = m - fm_int
        v = fm * two64 if fm > 0.0 else 0.0  # 0 for inf/NaN inputs
        big = U64(v)
        sticky = v != np.float64(big)
        neg = t < 0.0
        if neg and v > 0.0:
            big = ~big + (_ZERO if sticky else _ONE)
            f = -fm_int - 1.0
        else:
            f = -fm_int if neg else fm_int
        w = first_word(key, base + i)
        if rbits > 0:
            up = (big >> sh) > (w >> sh)
            tie = False
        else:
            up = w < big
            tie = (w == big) & sticky
        ties[i] = tie
        n_tie += tie
        q = f + 1.0 if up else f
        qc = min(max(q, lo_f), hi_f)
        isnan = xi != xi
        n_ovf += (qc != q) & ~isnan
        n_nan += isnan
        qc = 0.0 if isnan else qc
        n_unf += (qc == 0.0) & (qc == q) & (xi != 0.0)
        out[i] = qc * eps + 0.0
    return n_ovf, n_unf, n_nan, n_tie


@njit(cache=True)
def _fixed_sr_chunk(c, x, xb, out, fl, wl, signed, qmin, qmax, key, rbits, stats):
    n = x.size
    scale = np.ldexp(1.0, fl)
    eps = np.ldexp(1.0, -fl)
    lo = c * CHUNK
    hi = min(n, lo + CHUNK)
    ties = np.empty(hi - lo, np.bool_)
    a, b, d, nt = _fixed_sr_block(x[lo:hi], out[lo:hi], scale, eps, np.float64(qmin), np.float64(qmax),
                                  key, lo, rbits, ties)
    if nt > 0:
        lo_f = np.float64(qmin)
        hi_f = np.float64(qmax)
        for j in range(hi - lo):
            if ties[j]:
                f = np.floor(x[lo + j] * scale)
                neg, mag, e = _split_float(xb[lo + j])
                q, over = _fixed_one(neg, mag, e, fl, wl, signed, _SR, _SAT, key, lo + j, rbits)
                out[lo + j] = np.float64(q) * eps + 0.0
                old_over = (f < lo_f) | (f > hi_f)
                a += np.int64(over) - np.int64(old_over)
                b += np.int64((q == 0) & ~over) - np.int64((f == 0.0) & ~old_over)
    stats[c, 0] = a
    stats[c, 1] = b
    stats[c, 2] = d


@njit(parallel=True, cache=True)
def fixed_sr_fast(x, xb, out, fl, wl, signed, qmin, qmax, key, rbits, stats):
    """<WL-FL, FL> values under stochastic rounding; needs FL >= 0 and WL <= 53.

    F = floor(d 2^64) of the exact fraction d = t - floor(t) is compared with
    the element's first random word; the rare exact tie (probability 2^-64)
    is settled by the integer path.
    """
    for c in prange(stats.shape[0]):
        _fixed_sr_chunk(c, x, xb, out, fl, wl, signed, qmin, qmax, key, rbits, stats)


@njit(cache=True)
def fixed_sr_fast_serial(x, xb, out, fl, wl, signed, qmin, qmax, key, rbits):
    """`fixed_sr_fast` without threads on at most `CHUNK` elements; returns the (overflow, underflow,
    nan) counts."""
    stats = np.zeros((1, N_FAST_STATS), np.int64)
    _fixed_sr_chunk(0, x, xb, out, fl, wl, signed, qmin, qmax, key, rbits, stats)
    return stats[0, 0], stats[0, 1], stats[0, 2]


@njit(cache=True)
def _float_det_block(x, out, prm, nan_value):
    """One block of `float_fast`; returns (overflow, underflow, nan) counts."""
    n_ovf = 0
    n_unf = 0
    n_nan = 0
    ne = _is_ne(prm)  # the same for every element: the compiler splits the loop on it
    for i in range(x.size):
        xi = x[i]
        v, over = fround_ne(xi, prm) if ne else fround(xi, prm)
        isnan = xi != xi
        v = nan_value if isnan else v
        out[i] = v
        n_ovf += over
        n_nan += isnan
        n_unf += (v == 0.0) & (xi != 0.0) & ~isnan
    return n_ovf, n_unf, n_nan


@njit(cache=True)
def _float_fast_chunk(c, x, out, prm, nan_value, stats):
    lo = c * CHUNK
    hi = min(x.size, lo + CHUNK)
    a, b, d = _float_det_block(x[lo:hi], out[lo:hi], prm, nan_value)
    stats[c, 0] = a
    stats[c, 1] = b
    stats[c, 2] = d


@functools.lru_cache(maxsize=256)
def float_params_packed(fmt, mode: int, ovf: int) -> np.ndarray:
    """`float_params` packed into one read-only uint64 array (a float by its bits): numba types an
    array argument in a fraction of the time an 18-tuple takes, and conversions are called often."""
    out = np.array([np.float64(v).view(U64) if isinstance(v, float) else int(v)
                    for v in float_params(fmt, mode, ovf)], U64)
    out.flags.writeable = False
    return out


@njit(cache=True)
def _unpack(p):
    """The `float_params` tuple from `float_params_packed`."""
    f = p.view(np.float64)
    return (p[0], p[1], p[2], f[3], f[4], p[5], p[6], p[7], p[8], np.int64(p[9]), np.int64(p[10]), p[11],
            p[12], p[13], p[14] != _ZERO, p[15] != _ZERO, p[16] != _ZERO, p[17])


@njit(parallel=True, cache=True)
def float_fast(x, out, packed, nan_value, stats):
    """Float-format values for a deterministic mode, on float64 input (`fround` per element).

    ``packed`` comes from `float_params_packed` (needs 52 - M >= 1 and the
    format's normals among float64's normals); NaN inputs give ``nan_value``.
    """
    prm = _unpack(packed)
    for c in prange(stats.shape[0]):
        _float_fast_chunk(c, x, out, prm, nan_value, stats)


@njit(cache=True)
def float_fast_serial(x, out, packed, nan_value):
    """`float_fast` without threads on at most `CHUNK` elements; returns the (overflow, underflow, nan)
    counts."""
    return _float_det_block(x, out, _unpack(packed), nan_value)


@njit(cache=True)
def float_fast_2d(x, out, packed, nan_value):
    """`float_fast` from a 2-D float64 array of any layout into ``out`` of the
    same shape (float64, or float32 when the caller knows the format's values
    are binary32 values); returns (overflow, nan) counts."""
    prm = _unpack(packed)
    ne = _is_ne(prm)
    n_ovf = 0
    n_nan = 0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            xi = x[i, j]
            v, over = fround_ne(xi, prm) if ne else fround(xi, prm)
            isnan = xi != xi
            out[i, j] = nan_value if isnan else v
            n_ovf += over
            n_nan += isnan
    return n_ovf, n_nan


@njit(cache=True)
def codes_block(v, out, is_fixed, fl, wl, mbits, ebits, bias, emin, nzero, nan_code):
    mask = (_ONE << U64(wl)) - _ONE
    scale = np.ldexp(1.0, fl) if is_fixed else np.ldexp(1.0, mbits - emin)
    min_normal = np.ldexp(1.0, emin)
    sign_bit = _ONE << U64(wl - 1)
    inf_code = U64((1 << ebits) - 1) << U64(mbits)
    mmask = (_ONE << U64(mbits)) - _ONE
    for i in range(v.size):
        x = v[i]
        if is_fixed:
            out[i] = U64(np.int64(x * scale)) & mask
            continue
        b = np.float64(x).view(np.uint64)
        a = abs(x)
        if a >= min_normal:
            code = (U64(np.int64((b >> U64(52)) & U64(0x7FF)) - 1023 + bias) << U64(mbits)) | (
                (b >> U64(52 - mbits)) & mmask)
        else:
            code = U64(np.int64(a * scale))
        code = inf_code if a == np.inf else code
        neg = (b >> U64(63)) != _ZERO
        code = code | (sign_bit if neg and (nzero or a != 0.0) else _ZERO)
        out[i] = nan_code if x != x else code


@njit(parallel=True, cache=True)
def codes_of_values(v, out, is_fixed, fl, wl, mbits, ebits, bias, emin, nzero, nan_code):
    """Codes of values already in a fixed or float format (the fast kernels' output).

    Fixed: q = v 2^FL as a WL-bit pattern. Float (needs 52 - M >= 0 and the
    format's normals among float64's normals): the exponent and top M fraction
    bits of v re-biased, or v / 2^(emin - M) below the smallest normal.
    """
    n = v.size
    for c in prange(-(-n // CHUNK)):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        codes_block(v[lo:hi], out[lo:hi], is_fixed, fl, wl, mbits, ebits, bias, emin, nzero, nan_code)
