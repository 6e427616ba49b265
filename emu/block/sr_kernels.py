"""numba kernels of stochastic rounding of block elements: the MX and NVFP4 encoders with
``rounding="stochastic"`` (docs/blockscaled.md, "Stochastic rounding of elements").

The scale is chosen as the deterministic encoders choose it (`mx_scale_exp`, `nv_block_scale`); then
each element's magnitude t (in units of the element grid's step at its exponent) becomes floor(t) + 1
when the element's uniform U = 0.w0 w1 w2 ... (binary; the words of its index in the key's stream,
`emu._rounding.first_word` and `mix64`) is below frac(t), else floor(t): P(up) = frac(t) exactly. With
``random_bits = r`` (1..64) only r bits decide: up iff floor(frac(t) 2^r) > w0 >> (64 - r). The
element with index i (C order in x with the block axis moved last: row r, column k of the kernels'
(rows, n) array is i = r n + k) gets the same words as element i of `emu.quantize`'s stream.

- MX float elements round the magnitude (sign-magnitude, as `emu.quantize` does for floats), MX integer
  elements the signed value (two's complement fixed point, as `emu.quantize` does for fixed formats):
  both through the rounding core's `round_mag` on the float64's integer significand, exactly for any
  scale. Results beyond the element maximum saturate.
- NVFP4 elements are x / (s g), a quotient by an odd integer times a power of two, whose binary fraction
  does not end: `ratio_word` produces its 64-bit words by long division and `ratio_up` compares them
  with the stream, so the decision is exact too.

Worked example: the first 64 fraction bits of 1/3 = 0.0101...b, which never ends, and 3 * 2^4 / 3 = 16:

>>> w, ends = ratio_word(1, 3, 64)
>>> hex(int(w)), bool(ends)
('0x5555555555555555', False)
>>> [int(v) for v in ratio_word(3, 3, 4)]
[16, 1]
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._rounding import bitlen, first_word, mix64, round_mag
from ..modes import Rounding
from .kernels import BLOCK_THREAD_ELEMENTS, float_code, mx_block_start, nv_block_start

U64 = np.uint64
_SR = int(Rounding.STOCHASTIC)
#: the stream's increment G (docs/semantics.md): w_(j+1) = mix64(w_j + G)
GOLDEN = U64(0x9E3779B97F4A7C15)
FRAC52 = U64((1 << 52) - 1)
HIDDEN = U64(1 << 52)


@njit(cache=True)
def split_mag(bv):
    """(significand integer m, exponent e2, floor(log2 |v|)) of a nonzero finite float64's bits: |v| = m
    2^e2."""
    fv = np.int64((bv >> U64(52)) & U64(0x7FF))
    frac = bv & FRAC52
    if fv == 0:
        return frac, np.int64(-1074), np.int64(-1075) + bitlen(frac)
    return frac | HIDDEN, fv - 1075, fv - 1023


@njit(cache=True)
def _mx_sr_block(idx, x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el, rule,
                 mtop, maxcode, key, rbits, scodes, ecodes, stats):
    """Block ``idx`` of `mx_encode_sr_kernel`."""
    R, n = x2.shape
    nb = scodes.shape[1]
    mask = (np.int64(1) << bits) - 1
    signbit = np.int64(1) << (bits - 1)
    r, lo, hi, X, bad = mx_block_start(x2, idx, nb, B, rule, emax_el, maxval, mtop, scodes, ecodes, stats)
    if bad:
        return
    nsat = 0
    for k in range(lo, hi):
        bv = xb[r, k]
        neg = (bv >> U64(63)) != U64(0)
        if x2[r, k] == 0.0:
            ecodes[r, k] = float_code(0.0, neg, M, emin, bias, bits, negzero) if is_float else np.int64(0)
            continue
        mag, e2, top = split_mag(bv)
        e = top - X  # floor(log2(|v| / 2^X))
        i = np.int64(r * n + k)
        if is_float:
            if e > emax_el:
                cm = maxcode
                sat = True
            elif ftz and e < emin:  # below the smallest normal: a zero of its sign, no rounding
                cm = np.int64(0)
                sat = False
            else:
                ee = max(e, emin)
                q, _ = round_mag(mag, ee - M + X - e2, neg, _SR, False, key, i, rbits, U64(0))
                cm = np.int64(q) + (np.int64(ee - emin) << M)
                sat = cm > maxcode
                if sat:
                    cm = maxcode
            c = (signbit | cm) if (neg and (cm != 0 or negzero)) else cm
        else:
            if e + fl > 61:
                q = qmax
                sat = True
            else:
                qu, _ = round_mag(mag, X - fl - e2, neg, _SR, True, key, i, rbits, U64(0))
                q = np.int64(qu)
                sat = q > qmax
                if sat:
                    q = qmax
            c = (-q if neg else q) & mask
        if sat:
            nsat += 1
        ecodes[r, k] = c
    stats[idx, 0] = nsat


@njit(parallel=True, cache=True)
def _mx_sr_threads(x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el, rule,
                   mtop, maxcode, key, rbits, scodes, ecodes, stats):
    for idx in prange(x2.shape[0] * scodes.shape[1]):
        _mx_sr_block(idx, x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el,
                     rule, mtop, maxcode, key, rbits, scodes, ecodes, stats)


@njit(cache=True)
def _mx_sr_serial(x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el, rule,
                  mtop, maxcode, key, rbits, scodes, ecodes, stats):
    for idx in range(x2.shape[0] * scodes.shape[1]):
        _mx_sr_block(idx, x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el,
                     rule, mtop, maxcode, key, rbits, scodes, ecodes, stats)


def mx_encode_sr_kernel(x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el,
                        rule, mtop, maxcode, key, rbits, scodes, ecodes, stats):
    """`mx_encode_kernel` with stochastic rounding of the elements (module docstring); blocks on numba's
    threads from `BLOCK_THREAD_ELEMENTS` elements, else on the calling thread."""
    run = _mx_sr_threads if x2.size >= BLOCK_THREAD_ELEMENTS else _mx_sr_serial
    run(x2, xb, B, is_float, M, emin, bias, bits, negzero, ftz, maxval, fl, qmax, emax_el, rule, mtop,
        maxcode, key, rbits, scodes, ecodes, stats)


# --- NVFP4: the quotient x / (s g) -------------------------------------------------------------------


@njit(cache=True)
def ratio_word(a, b, p):
    """(floor(a 2^p / b) mod 2^64, whether a 2^p / b is an integer) for integers 0 <= a < 2^63,
    1 <= b < 2^31 and any p: long division, 32 bits at a time."""
    a = U64(a)
    b = U64(b)
    if p <= 0:
        sh = -p
        if sh >= 64:
            return U64(0), a == U64(0)
        hi = a >> U64(sh)
        low = a & ((U64(1) << U64(sh)) - U64(1))
        return hi // b, (low == U64(0)) and (hi % b == U64(0))
    w = a // b
    rem = a % b
    while p > 0:
        c = min(p, 32)
        rem = rem << U64(c)
        w = (w << U64(c)) | (rem // b)
        rem = rem % b
        p -= c
    return w, rem == U64(0)


@njit(cache=True)
def ratio_up(a, b, k, key, i, rbits):
    """Whether t = a 2^k / b rounds up stochastically: U < frac(t) with the words of element ``i`` (or
    the ``rbits``-bit rule), as `emu._rounding.round_mag` decides for a binary fraction."""
    c, ends = ratio_word(a, b, k + 64)
    if c == U64(0) and ends:
        return False
    w = first_word(key, i)
    if rbits > 0:
        sh = U64(64 - rbits)
        return (c >> sh) > (w >> sh)
    j = 1
    while True:
        if w != c:
            return w < c
        if ends:
            return False
        w = mix64(w + GOLDEN)
        c, ends = ratio_word(a, b, k + 64 * (j + 1))
        j += 1


@njit(cache=True)
def floor_log2_ratio(a, b):
    """floor(log2(a / b)) for integers 0 < a < 2^53, 0 < b < 2^31."""
    la = bitlen(U64(a))
    lb = bitlen(U64(b))
    if la >= lb:
        below = U64(a) < (U64(b) << U64(la - lb))
    else:
        below = (U64(a) << U64(lb - la)) < U64(b)
    return la - lb - (1 if below else 0)


@njit(cache=True)
def odd_significand(d):
    """(odd integer m, exponent e) with d = m 2^e, for a positive normal float64 d."""
    bv = np.float64(d).view(np.uint64)
    m = (bv & FRAC52) | HIDDEN
    e = np.int64((bv >> U64(52)) & U64(0x7FF)) - 1075
    while (m & U64(1)) == U64(0):
        m = m >> U64(1)
        e += 1
    return m, e


@njit(cache=True)
def _nv_sr_block(idx, x2, xb, B, g, scale_prm, key, rbits, scodes, ecodes, stats):
    """Block ``idx`` of `nv_encode_sr_kernel`."""
    R, n = x2.shape
    nb = scodes.shape[1]
    r, lo, hi, d, bad = nv_block_start(x2, idx, nb, B, g, scale_prm, scodes, ecodes, stats)
    if bad:
        return
    md, ed = odd_significand(d) if d != 0.0 else (U64(1), np.int64(0))
    nsat = 0
    for k in range(lo, hi):
        bv = xb[r, k]
        neg = (bv >> U64(63)) != U64(0)
        cm = np.int64(0)
        if d != 0.0 and x2[r, k] != 0.0:
            mag, e2, _ = split_mag(bv)
            e = floor_log2_ratio(mag, md) + e2 - ed  # floor(log2(|v| / d))
            if e > 2:
                cm = np.int64(7)
            else:
                ee = max(e, 0)
                kk = e2 - ed - (ee - 1)  # t = |v| / (d 2^(ee - 1)) = mag 2^kk / md < 4
                q, _ = ratio_word(mag, md, kk)
                up = ratio_up(mag, md, kk, key, np.int64(r * n + k), rbits)
                cm = np.int64(q) + (1 if up else 0) + (ee << 1)
            if cm > 7:
                cm = np.int64(7)
                nsat += 1
            elif e > 2:
                nsat += 1
        ecodes[r, k] = cm | (8 if neg else 0)
    stats[idx, 0] = nsat


@njit(parallel=True, cache=True)
def _nv_sr_threads(x2, xb, B, g, scale_prm, key, rbits, scodes, ecodes, stats):
    for idx in prange(x2.shape[0] * scodes.shape[1]):
        _nv_sr_block(idx, x2, xb, B, g, scale_prm, key, rbits, scodes, ecodes, stats)


@njit(cache=True)
def _nv_sr_serial(x2, xb, B, g, scale_prm, key, rbits, scodes, ecodes, stats):
    for idx in range(x2.shape[0] * scodes.shape[1]):
        _nv_sr_block(idx, x2, xb, B, g, scale_prm, key, rbits, scodes, ecodes, stats)


def nv_encode_sr_kernel(x2, xb, B, g, scale_prm, key, rbits, scodes, ecodes, stats):
    """`nv_encode_kernel` with stochastic rounding of the E2M1 elements (module docstring); blocks on
    numba's threads from `BLOCK_THREAD_ELEMENTS` elements, else on the calling thread."""
    run = _nv_sr_threads if x2.size >= BLOCK_THREAD_ELEMENTS else _nv_sr_serial
    run(x2, xb, B, g, scale_prm, key, rbits, scodes, ecodes, stats)
