"""Fast conversion kernels: float64 arrays to fixed and float formats in vectorised blocks.

The general kernels of `emu._kernels` work in the integer domain and handle
every input and mode; these handle the common cases (float64 input, values
only, nearest and directed modes of fixed point, stochastic fixed point, every
deterministic mode of floats through the rounding core's `fround`, stochastic
floats) in float arithmetic that provably gives the same values: each is tested
bit for bit against the general kernels and the exact reference, and the
wrappers fall back to the general kernels outside the stated conditions. Stats
columns: overflow, underflow, NaN (the stochastic float kernel's third:
elements it declines, `float_sr_fast_serial`).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange
from numba.extending import overload

from ._kernels import CHUNK, fixed_one, split_float
from ._rounding import (  # the rounding core; the datapath kernels import these names from here too
    _QNAN,
    _SAT,
    _SR,
    _ZERO,
    U64,
    FroundParams,
    _is_ne,
    conversion_nan,
    first_word,
    float_overflow,
    float_params,
    fround,
    fround_ne,
    fround_ne_add,
    fround_ne_add_covers,
    pow2,
    rint_mode,
)

N_FAST_STATS = 3


@njit(cache=True)
def _saturated(xi, q, lo_f, hi_f, eps):
    """The integer q rounded from input xi, saturated to [lo_f, hi_f] and scaled by eps (NaN input: 0):
    (value, overflowed, underflowed to 0, was NaN)."""
    qc = min(max(q, lo_f), hi_f)
    isnan = xi != xi
    qc = 0.0 if isnan else qc
    return qc * eps + 0.0, (qc != q) & ~isnan, (qc == 0.0) & (qc == q) & (xi != 0.0), isnan


@njit(cache=True)
def _fixed_det_block(x, out, scale, eps, lo_f, hi_f, mode):
    """One block of `fixed_fast` (t = x 2^FL is exact; `rint_mode` rounds it); returns (overflow,
    underflow, nan) counts."""
    n_ovf = 0
    n_unf = 0
    n_nan = 0
    for i in range(x.size):
        xi = x[i]
        t = xi * scale
        v, o, u, isnan = _saturated(xi, rint_mode(t, mode), lo_f, hi_f, eps)
        out[i] = v
        n_ovf += o
        n_unf += u
        n_nan += isnan
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


@njit(cache=True, nogil=True)
def fixed_fast_serial(x, out, fl, qmin, qmax, mode, codes=False):
    """`fixed_fast` without threads (a parallel launch costs more than an input below
    `emu.threads.CONVERT_THREAD_ELEMENTS`), without the GIL (callers may share pieces of an array among
    their own threads); returns the (overflow, underflow, nan) counts."""
    return _fixed_det_block(x, out, np.ldexp(1.0, fl), 1.0 if codes else np.ldexp(1.0, -fl), np.float64(qmin),
                            np.float64(qmax), mode)


@njit(cache=True)
def _fixed_sr_block(x, out, scale, eps, lo_f, hi_f, key, base, rbits, ties):
    """One block of `fixed_sr_fast` (at most `CHUNK` elements); flags in ``ties`` the elements whose first
    random word's top 53 bits equal the fraction's first 53 bits (to be settled exactly); returns the
    (overflow, underflow, nan, tie) counts.

    The fraction f of t = x 2^FL is taken from the magnitude m = |t| (m - floor(m) is exact): F53 =
    floor(f 2^53) is floor((m - floor m) 2^53) for t >= 0 and 2^53 - ceil((m - floor m) 2^53) for t < 0
    (0 when m is whole), an exact float64. With U53 = w0 >> 11, the top bits of the element's first
    random word: U53 < F53 means w0 < floor(f 2^64), round up; U53 > F53 means w0 > f 2^64, round down;
    equality (probability 2^-53) is a tie for the integer path. With ``rbits`` = r in 1..53 the rule
    floor(f 2^r) > w0 >> (64 - r) is the same comparison of both sides divided by 2^(53 - r) and floored.
    The four counts are packed in one integer, 16 bits each (a block holds at most 2^15 elements).
    """
    packed = 0
    two53 = np.ldexp(1.0, 53)
    cut = np.ldexp(1.0, rbits - 53) if rbits > 0 else 1.0
    for i in range(x.size):
        xi = x[i]
        t = xi * scale
        m = abs(t)
        fm_int = np.floor(m)
        v = (m - fm_int) * two53  # NaN for inf and NaN inputs
        neg = t < 0.0
        whole = v == 0.0
        f53 = 0.0 if whole else (two53 - np.ceil(v) if neg else np.floor(v))
        f = (-fm_int - (0.0 if whole else 1.0)) if neg else fm_int  # floor(t)
        u = np.float64(first_word(key, base + i) >> U64(11))
        if rbits > 0:
            up = np.floor(f53 * cut) > np.floor(u * cut)
            tie = False
        else:
            up = u < f53
            tie = u == f53
        ties[i] = tie
        val, o, un, isnan = _saturated(xi, f + 1.0 if up else f, lo_f, hi_f, eps)
        out[i] = val
        packed += np.int64(o) | (np.int64(un) << 16) | (np.int64(isnan) << 32) | (np.int64(tie) << 48)
    low = (1 << 16) - 1
    return packed & low, (packed >> 16) & low, (packed >> 32) & low, packed >> 48


@njit(cache=True)
def _on_grid(x, out, scale, lo_f, hi_f):
    """Whether every x 2^FL is an integer in [lo_f, hi_f] (NaN and +-inf are not): values a conversion
    into the format leaves unchanged under any rounding, with nothing to count; out then holds them (-0
    as +0), else it is left unwritten. The first 64 elements are checked one by one (most arrays off the
    grid stop there), the rest in one loop that vectorises."""
    n = x.size
    head = min(n, 64)
    for i in range(head):
        t = x[i] * scale
        if (t != np.floor(t)) | (t < lo_f) | (t > hi_f):
            return False
    bad = 0
    rest = x[head:]  # indexed from 0: a loop from a runtime start keeps numba's negative-index branch
    for i in range(rest.size):
        t = rest[i] * scale
        bad += (t != np.floor(t)) | (t < lo_f) | (t > hi_f)
    if bad:
        return False
    for i in range(n):
        out[i] = x[i] + 0.0
    return True


@njit(cache=True)
def _fixed_sr_chunk(c, x, xb, out, fl, wl, signed, qmin, qmax, key, rbits, stats, base=0):
    """Chunk c of `fixed_sr_fast`; x[0] is element ``base`` of the random stream."""
    n = x.size
    scale = np.ldexp(1.0, fl)
    eps = np.ldexp(1.0, -fl)
    lo = c * CHUNK
    hi = min(n, lo + CHUNK)
    if _on_grid(x[lo:hi], out[lo:hi], scale, np.float64(qmin), np.float64(qmax)):
        # values already in the format (stored weights, ReLU of converted values): no random word is drawn
        stats[c, 0] = 0
        stats[c, 1] = 0
        stats[c, 2] = 0
        return
    ties = np.empty(hi - lo, np.bool_)
    a, b, d, nt = _fixed_sr_block(x[lo:hi], out[lo:hi], scale, eps, np.float64(qmin), np.float64(qmax),
                                  key, base + lo, rbits, ties)
    if nt > 0:
        lo_f = np.float64(qmin)
        hi_f = np.float64(qmax)
        for j in range(hi - lo):
            if ties[j]:
                f = np.floor(x[lo + j] * scale)
                neg, mag, e = split_float(xb[lo + j])
                q, over = fixed_one(neg, mag, e, fl, wl, signed, _SR, _SAT, key, base + lo + j, rbits)
                out[lo + j] = np.float64(q) * eps + 0.0
                old_over = (f < lo_f) | (f > hi_f)
                a += np.int64(over) - np.int64(old_over)
                b += np.int64((q == 0) & ~over) - np.int64((f == 0.0) & ~old_over)
    stats[c, 0] = a
    stats[c, 1] = b
    stats[c, 2] = d


@njit(parallel=True, cache=True)
def fixed_sr_fast(x, out, fl, wl, signed, qmin, qmax, rbits, key, stats):
    """<WL-FL, FL> values under stochastic rounding; needs FL >= 0, WL <= 53 and ``rbits`` <= 53.

    A chunk already on the grid is copied (`_on_grid`); otherwise the first 53 bits of each element's
    fraction are compared with the top 53 bits of its first random word (`_fixed_sr_block`), and the
    rare equality (probability 2^-53) is settled by the integer path. ``key``: the stream's 64-bit key,
    as the int64 of the same bits (`emu.inputs.seed_word`: numba types an int argument in a fraction of
    the time a new numpy scalar takes) or as a uint64.
    """
    k = U64(key)
    xb = x.view(np.uint64)
    for c in prange(stats.shape[0]):
        _fixed_sr_chunk(c, x, xb, out, fl, wl, signed, qmin, qmax, k, rbits, stats)


@njit(cache=True, nogil=True)
def fixed_sr_fast_serial(x, out, fl, wl, signed, qmin, qmax, rbits, key, base=0):
    """`fixed_sr_fast` without threads, chunk after chunk (the same random words and results), without the
    GIL, x[0] being element ``base`` of the random stream (a piece of a longer array); returns the
    (overflow, underflow, nan) counts."""
    k = U64(key)
    stats = np.zeros((max(1, -(-x.size // CHUNK)), N_FAST_STATS), np.int64)
    xb = x.view(np.uint64)
    for c in range(stats.shape[0]):
        _fixed_sr_chunk(c, x, xb, out, fl, wl, signed, qmin, qmax, k, rbits, stats, base)
    return stats[:, 0].sum(), stats[:, 1].sum(), stats[:, 2].sum()


@njit(cache=True)
def _rounding_kind(prm):
    """How the float conversions round with ``prm``: 2 nearest even by one addition (`fround_ne_add`), 1
    nearest even (`fround_ne`), 0 any deterministic mode (`fround`)."""
    if not _is_ne(prm):
        return 0
    return 2 if fround_ne_add_covers(prm) else 1


#: the float conversions' rounding functions, by `_rounding_kind`; a kernel selects one by the *type* of a
#: tag, a tuple of kind + 1 zeros (`_rnd`), so each loop is compiled (and cached) per function
_ROUNDERS = (fround, fround_ne, fround_ne_add)


def _rnd(tag, x, prm):
    """The rounding function the tag selects, applied (plain Python; jitted code uses the overload)."""
    return _ROUNDERS[len(tag) - 1](x, prm)


@overload(_rnd)
def _rnd_ol(tag, x, prm):
    f = _ROUNDERS[tag.count - 1]

    def impl(tag, x, prm):
        return f(x, prm)

    return impl


@njit(cache=True)
def _det_loop(x, out, prm, nan_value, tag):
    """`_float_det_block`'s loop with the rounding the tag selects (`_rnd`): one loop per function, each
    vectorised."""
    n_ovf = 0
    n_unf = 0
    n_nan = 0
    for i in range(x.size):
        xi = x[i]
        v, over = _rnd(tag, xi, prm)
        isnan = xi != xi
        v = nan_value if isnan else v
        out[i] = v
        n_ovf += over
        n_nan += isnan
        n_unf += (v == 0.0) & (xi != 0.0) & ~isnan
    if (n_nan > 0) | ((n_ovf > 0) & (prm.ovr_pos == _QNAN)):  # NaN results: the conversion's (a rare pass)
        xb = x.view(np.uint64)
        for i in range(x.size):
            if out[i] != out[i]:
                out[i] = conversion_nan(xb[i], prm)
    return n_ovf, n_unf, n_nan


@njit(cache=True)
def _float_det_block(x, out, prm, nan_value):
    """One block of `float_fast`; returns (overflow, underflow, nan) counts."""
    kind = _rounding_kind(prm)
    if kind == 2:
        return _det_loop(x, out, prm, nan_value, (0, 0, 0))
    if kind == 1:
        return _det_loop(x, out, prm, nan_value, (0, 0))
    return _det_loop(x, out, prm, nan_value, (0,))


@njit(cache=True)
def _float_fast_chunk(c, x, out, prm, nan_value, stats):
    lo = c * CHUNK
    hi = min(x.size, lo + CHUNK)
    a, b, d = _float_det_block(x[lo:hi], out[lo:hi], prm, nan_value)
    stats[c, 0] = a
    stats[c, 1] = b
    stats[c, 2] = d


@functools.lru_cache(maxsize=256)
def float_params_packed(fmt, mode: int, ovf: int, conversion: bool = False) -> np.ndarray:
    """`float_params` packed into one read-only uint64 array (a float by its bits): numba types an
    array argument in a fraction of the time a 19-tuple takes, and conversions are called often."""
    out = np.array([np.float64(v).view(U64) if isinstance(v, float) else int(v)
                    for v in float_params(fmt, mode, ovf, conversion)], U64)
    out.flags.writeable = False
    return out


@njit(cache=True)
def _unpack(p):
    """The `FroundParams` from `float_params_packed`."""
    f = p.view(np.float64)
    return FroundParams(p[0], p[1], p[2], f[3], f[4], p[5], p[6], p[7], p[8], np.int64(p[9]),
                        np.int64(p[10]), p[11], p[12], p[13], p[14] != _ZERO, p[15] != _ZERO,
                        p[16] != _ZERO, p[17], p[18])


@njit(parallel=True, cache=True)
def float_fast(x, out, packed, nan_value, stats):
    """Float-format values for a deterministic mode, on float64 input (`fround` per element).

    ``packed`` comes from `float_params_packed` (needs 52 - M >= 1 and the
    format's normals among float64's normals); NaN inputs give ``nan_value``,
    and NaN results `conversion_nan`'s NaN.
    """
    for c in prange(stats.shape[0]):  # a record made here could not enter the threads' loop body
        _float_fast_chunk(c, x, out, _unpack(packed), nan_value, stats)


@njit(cache=True, nogil=True)
def float_fast_serial(x, out, packed, nan_value):
    """`float_fast` without threads or the GIL; returns the (overflow, underflow, nan) counts."""
    return _float_det_block(x, out, _unpack(packed), nan_value)


@njit(cache=True)
def float_fast_2d(x, out, packed, nan_value):
    """`float_fast` from a C-ordered 2-D float64 array into the C-ordered ``out`` of the same shape (float64,
    or float32 when the caller knows the format's values are binary32 values), one pass over the flat
    elements with the rounding chosen once per call as `_float_det_block` chooses it; returns (overflow,
    nan) counts."""
    prm = _unpack(packed)
    xf = x.reshape(-1)
    of = out.reshape(-1)
    kind = _rounding_kind(prm)
    if kind == 2:
        n_ovf, _, n_nan = _det_loop(xf, of, prm, nan_value, (0, 0, 0))
    elif kind == 1:
        n_ovf, _, n_nan = _det_loop(xf, of, prm, nan_value, (0, 0))
    else:
        n_ovf, _, n_nan = _det_loop(xf, of, prm, nan_value, (0,))
    return n_ovf, n_nan


@njit(cache=True, nogil=True)
def float_sr_fast_serial(x, out, M, emin, emax, max_val, subnormals, nzero, ovf, rbits, key, base=0):
    """Stochastic rounding of float64 x into a signed float format (M fraction bits, normal exponents
    ``emin`` .. ``emax``, largest finite value ``max_val``, ``subnormals``, ``nzero``: it has -0; overflow
    mode ``ovf``) in float arithmetic, x[0] being element ``base`` of the random stream; returns (overflow,
    underflow, declined) counts. Needs M <= 51, emin - M >= -1022 and emax + 1 - M <= 1022 (every power
    of two below a normal float64) and ``rbits`` <= 53 (0: the exact probability).

    An element's |x| = t 2^p, p = max(e, emin) - M for its exponent e (taken at most emax + 1: larger ones
    overflow either way), rounds up to floor(t) + 1 when the top 53 bits of its first random word, U53,
    lie below F53 = floor(frac(t) 2^53) (exact), and down when above (with ``rbits`` = r: floor(F53 /
    2^(53 - r)) against U53 >> (53 - r)), as the general kernel's rule (up iff U = 0.w0 w1 ... <
    frac(t)) decides them. The rest is declined and written nowhere the caller keeps: U53 = F53
    (probability 2^-53 an element, where later words may decide), subnormal float64 inputs, NaN and
    infinities, and overflows into NaN; the caller (`emu.convert.convert_array`) then converts all of x
    by the general kernel with the same key. Zeros keep their sign where the format has -0; below 2^emin
    without subnormals, and where the rounding gives 0, the result is a zero and counts as an
    underflow; above ``max_val`` an overflow saturates or gives an infinity by ``ovf``. One loop of
    selects, which vectorises."""
    k = U64(key)
    two53 = np.ldexp(1.0, 53)
    cut = np.ldexp(1.0, rbits - 53) if rbits > 0 else 1.0
    cls = float_overflow(False, _SR, ovf)  # the same for both signs under stochastic rounding
    big = max_val if cls == 0 else np.inf
    n_ovf = 0
    n_unf = 0
    n_dec = 0
    for i in range(x.size):
        xi = x[i]
        b = np.float64(xi).view(np.uint64)
        neg = (b >> U64(63)) != _ZERO
        fv = np.int64((b >> U64(52)) & U64(0x7FF))
        special = (fv == 0) | (fv == 2047)  # zeros, subnormal float64s, NaN and infinities
        e = min(fv - 1023, emax + 1)
        flush = (e < emin) & ~subnormals
        p = max(e, emin) - M
        t = abs(xi) * pow2(-p)  # exact: a power of two, t < 2^(M + 1) below the clamp
        fl = np.floor(t)
        f53 = np.floor((t - fl) * two53)
        u = np.float64(first_word(k, base + i) >> U64(11))
        up = (np.floor(f53 * cut) > np.floor(u * cut)) if rbits > 0 else (u < f53)
        tie = (rbits == 0) & (u == f53)
        q = fl + 1.0 if up else fl
        v = q * pow2(p)
        zero = special | flush | (q == 0.0)
        over = ~zero & (v > max_val)
        r = 0.0 if zero else (big if over else v)
        out[i] = (-0.0 if nzero else 0.0) if (neg & (r == 0.0)) else (-r if neg else r)
        n_ovf += np.int64(over)
        n_unf += np.int64(~special & (flush | (q == 0.0)))
        n_dec += np.int64((special & ((b << U64(1)) != _ZERO)) | (fv == 2047) | (~special & ~flush & tie)
                          | (over & (cls == 2)))
    return n_ovf, n_unf, n_dec


@njit(parallel=True, cache=True)
def float_sr_fast(x, out, M, emin, emax, max_val, subnormals, nzero, ovf, rbits, key, stats):
    """`float_sr_fast_serial` over `CHUNK`-element chunks on numba's threads (stats[c] = chunk c's
    overflow, underflow and declined counts)."""
    for c in prange(stats.shape[0]):
        lo = c * CHUNK
        hi = min(x.size, lo + CHUNK)
        o, u, d = float_sr_fast_serial(x[lo:hi], out[lo:hi], M, emin, emax, max_val, subnormals, nzero, ovf,
                                       rbits, key, lo)
        stats[c, 0] = o
        stats[c, 1] = u
        stats[c, 2] = d
