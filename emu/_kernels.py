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

import math

import numpy as np
from numba import njit, prange

from ._nans import nan_code_of, nan_value_of
from ._rounding import (  # the rounding core; the datapath kernels import these names from here too
    _FRAC_MASK,
    _HIDDEN,
    _INF,
    _NAN,
    _ND,
    _ONE,
    _QNAN,
    _SIGN,
    _SQRT2_Q63,
    _TO,
    _WRAP,
    _ZERO,
    U64,
    bitlen,
    first_word,
    float_overflow,
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
def split_float(b: np.uint64) -> tuple[bool, np.uint64, np.int64]:
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
def fixed_one(neg: bool, mag: np.uint64, e: np.int64, fl: np.int64, wl: np.int64, signed: bool,
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
                neg, mag, e = split_float(b)
            if mag != _ZERO:
                q, over = fixed_one(neg, mag, e, fl, wl, signed, mode, ovf, key, i, rbits)
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
                   has_nan, nzero, nan_code, nan_payload, inf_code, max_sig, uns, code_ties, mode, ovf, key,
                   rbits, pow2, stats, e_off, flags):
    """Convert float64 bit patterns (or integers, see `_split`) to a float format.

    ``pow2[p - (emin - M)]`` holds 2^p for every rounding point p <= emax - M;
    ``nzero`` says whether -0 exists (and NaN codes have a sign); ``nan_code`` and
    ``inf_code`` are the canonical NaN and +inf codes; ``nan_payload``: NaN codes
    keep a NaN input's payload (ieee; `nan_code_of`). ``uns`` is None for signed formats (the
    compiler then drops every unsigned step) and, for unsigned ones, whether
    the format lacks a zero (E8M0: the field 0 is the normal 2^-B, emin = -B).
    Unsigned: a negative result that is not zero, and -inf, lie below the
    range (an overflow: the smallest value, or NaN under the nan and inf
    modes where the format has NaN); without zero a positive magnitude below
    2^-B becomes 2^-B (an underflow) and a zero input lies below the range. ``code_ties``: without
    fraction bits, nearest-even ties go by the code's parity (`FloatFormat.ties_by_code`); to odd always
    does.
    """
    n = xb.size
    want_val = out_val.size > 0
    want_code = out_code.size > 0
    want_flags = flags.size > 0
    emin = 1 - bias
    top = mbits + ebits
    sign_bit = _ONE << U64(top)
    nan_sign = sign_bit if nzero else _ZERO
    below_cls = 2 if (ovf == _NAN or (ovf == _INF and has_nan)) else 4  # unsigned: below the range
    if uns is not None:
        sign_bit = _ZERO
        if uns:
            emin = -bias
    hid = np.int64(1) << mbits
    pmin = emin - mbits
    max_val = np.float64(max_sig) * pow2[emax - mbits - pmin]
    if max_sig >= hid:
        max_code = U64(emax + bias) << U64(mbits) | (U64(max_sig) - U64(hid))
    else:  # every finite value subnormal (fp<1,M>): the largest is the code max_sig
        max_code = U64(max_sig)
    low_val = pow2[0] if emin == -bias else 0.0  # unsigned: the smallest value, code 0
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
            cls = -1  # -1 finite result; 0 max; 1 inf; 2 nan; 3 zero; 4 the smallest value (unsigned)
            o0 = n_ovf
            u0 = n_unf
            val = 0.0
            code = _ZERO
            nan_bits = _QNAN  # a NaN result's float64 bits for `nan_code_of`: the input's, or an overflow's
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
                        nan_bits = b
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
                    neg, mag, e = split_float(b)
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
                        by_code = mbits == 0 and ex >= emin and (code_ties or mode == _TO)
                        qmag, big = round_mag(mag, p - e, neg, mode, False, key, i, rbits,
                                              U64((ex + bias + 1) & 1) if by_code else _ZERO)
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
            if uns is not None:
                if cls != 2:
                    below = False
                    if neg and (cls != 3 or uns):
                        below = True
                    elif cls == 3 and uns:
                        below = mag == _ZERO
                        cls = 4  # a positive magnitude below 2^-B (an underflow, counted above)
                    if below:
                        cls = below_cls
                        n_unf = u0  # an overflow, not also an underflow
                        if n_ovf == o0:
                            n_ovf += 1
                            if f_ovf < 0:
                                f_ovf = i
                            if want_flags:
                                flags[i] = 1
            if cls == 0:
                val = -max_val if neg else max_val
                code = max_code | (sign_bit if neg else _ZERO)
            elif cls == 1:
                val = -np.inf if neg else np.inf
                code = U64(inf_code) | (sign_bit if neg else _ZERO)
            elif cls == 2:
                nan_bits |= _SIGN if neg else _ZERO
                code = nan_code_of(nan_bits, nan_code, mbits, nan_sign, nan_payload)
                val = nan_value_of(code, mbits, nan_sign, nan_payload)
            elif cls == 3:
                if neg and nzero:
                    val = -0.0
                    code = sign_bit
                else:
                    val = 0.0
                    code = _ZERO
            elif cls == 4:
                val = low_val
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
                    neg, mag, e = split_float(b)
            if mag != _ZERO:
                bl = bitlen(mag)
                ex = bl - 1 + e
                if ex >= emin:
                    if mode <= _ND:
                        up = (mag << U64(64 - bl)) > _SQRT2_Q63
                        k = ex + (1 if up else 0)
                    else:
                        # to_odd: the code of 2^ex, K = ex - emin + 1, is odd when ex - emin is even
                        q, big = round_mag(mag, ex - e, neg, mode, False, key, i, rbits, U64((ex - emin) & 1))
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


@njit(cache=True)
def codes_block(v, out, is_fixed, fl, wl, mbits, ebits, bias, emin, nzero, nan_code, nan_sign, nan_payload,
                inf_code):
    """`codes_of_values` on one block, without threads."""
    mask = (_ONE << U64(wl)) - _ONE
    scale = np.ldexp(1.0, fl) if is_fixed else np.ldexp(1.0, mbits - emin)
    min_normal = np.ldexp(1.0, emin)
    sign_bit = _ONE << U64(wl - 1)
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
        code = U64(inf_code) if a == np.inf else code
        neg = (b >> U64(63)) != _ZERO
        code = code | (sign_bit if neg and (nzero or a != 0.0) else _ZERO)
        out[i] = nan_code_of(b, nan_code, mbits, nan_sign, nan_payload) if x != x else code


@njit(parallel=True, cache=True)
def codes_of_values(v, out, is_fixed, fl, wl, mbits, ebits, bias, emin, nzero, nan_code, nan_sign,
                    nan_payload, inf_code):
    """Codes of values already in a fixed or float format (the fast kernels' output).

    Fixed: q = v 2^FL as a WL-bit pattern. Float (signed, needs 52 - M >= 0
    and the format's normals among float64's normals): the exponent and top M
    fraction bits of v re-biased, or v / 2^(emin - M) below the smallest
    normal; +-inf gives ``inf_code`` with the sign bit; a NaN the code `nan_code_of` gives it
    (``nan_sign``: the sign bit a NaN code keeps, or 0; ``nan_payload``: whether it keeps a payload).
    """
    n = v.size
    for c in prange(-(-n // CHUNK)):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        codes_block(v[lo:hi], out[lo:hi], is_fixed, fl, wl, mbits, ebits, bias, emin, nzero, nan_code,
                    nan_sign, nan_payload, inf_code)
