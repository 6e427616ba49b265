"""numba kernels of the block MAC: double-double arithmetic, one rounding of an exact sum into a float
or fixed accumulator, the exact (Kulisch-style) limb accumulator and the block matmul loop."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .._mac_kernels import add_float_ne
from .._rounding import fround, nudged, round_mag
from ..modes import Overflow, Rounding


@njit(cache=True)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True)
def _split(a):
    c = 134217729.0 * a
    hi = c - (c - a)
    return hi, a - hi


@njit(cache=True)
def _two_prod(a, b):
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


_RNE, _RNA = int(Rounding.NEAREST_EVEN), int(Rounding.NEAREST_AWAY)
_RNU, _RND = int(Rounding.NEAREST_UP), int(Rounding.NEAREST_DOWN)
_RFLOOR, _RTZ, _RCEIL = int(Rounding.FLOOR), int(Rounding.TOWARD_ZERO), int(Rounding.CEIL)
_OSAT, _OWRAP, _OINF, _ONAN = int(Overflow.SATURATE), int(Overflow.WRAP), int(Overflow.INF), int(Overflow.NAN)


@njit(cache=True)
def _acc_float(acc, t1, t2, fprm, half_mask, maxval, mode, ovf, nz):
    """acc (+) (t1 + t2), exact sum rounded once; (t1, t2) a normalized double-double. The sum's leading
    double f1 and the sign of the rest go through the rounding core: `fround` of `nudged` f1 (``fprm``
    from `float_params` of the accumulator and its modes)."""
    if not (np.isfinite(acc) and np.isfinite(t1) and np.isfinite(t2)):
        z = acc + t1 + t2
        if np.isnan(z):
            return np.nan, False
        if ovf == _OSAT:
            return (-maxval if z < 0 else maxval), True
        if ovf == _ONAN:
            return np.nan, True
        return z, False
    th, tl = _two_sum(acc, t1)
    r1, r2 = _two_sum(tl, t2)
    f1, f2 = _two_sum(th, r1)
    if f1 == 0.0:
        f1 = r2
        sig = 0
    else:
        sig = 1 if f2 > 0 else (-1 if f2 < 0 else (1 if r2 > 0 else (-1 if r2 < 0 else 0)))
    if f1 == 0.0:
        # an exact zero: IEEE sign rules (the term is never -0)
        if nz and mode == _RFLOOR and not (acc == 0.0 and math.copysign(1.0, acc) > 0 and t1 == 0.0):
            return -0.0, False
        return 0.0, False
    v, o = fround(nudged(f1, float(sig), half_mask), fprm)
    if v == 0.0 and not nz:
        v = 0.0
    return v, o


@njit(cache=True)
def _acc_fp32(acc, t1, t2, fprm, half_mask, maxval, mode, ovf, nz):
    """`_acc_float` for an fp32 accumulator rounding to nearest even, with a fast path: when acc + t1 is
    exact in float64 (t2 = 0, no two-sum error) and a normal fp32 magnitude below 2^127, one float32 cast
    is the single rounding."""
    if t2 == 0.0:
        f1, f2 = _two_sum(acc, t1)
        af = abs(f1)
        if f2 == 0.0 and 1.1754943508222875e-38 <= af < 1.7014118346046923e+38:
            return float(np.float32(f1)), False
    return _acc_float(acc, t1, t2, fprm, half_mask, maxval, mode, ovf, nz)


@njit(cache=True)
def _mod64(d):
    """An integer-valued finite double modulo 2^64, as int64 (two's complement); 0 beyond 2^117, where
    every double is a multiple of 2^64."""
    a = abs(d)
    if a < 4611686018427387904.0:
        return np.int64(d)
    if not a < 1.6615349947311448e+35:  # 2^117, and inf (the exact value was a multiple of 2^64 too)
        return np.int64(0)
    m, ex = math.frexp(a)
    mant = np.uint64(math.ldexp(m, 53))
    r = mant << np.uint64(ex - 53)
    if d < 0:
        r = ~r + np.uint64(1)
    return np.int64(r)


@njit(cache=True)
def _acc_fixed(A, t1, t2, fl, wl, ovf):
    """A (+) floor((t1 + t2) * 2^fl) with wrap or saturate to wl bits; returns (A, overflowed).

    (t1, t2) is the exact term as a double-double; the floor is exact for every term: a term below half an
    accumulator unit floors by its sign alone (0 or -1); one beyond 2^62 units overflows every word of at
    most 62 bits whatever A holds (saturate by its sign, or wrap modulo 2^64, then to wl bits).
    """
    qmax = (np.int64(1) << (wl - 1)) - 1
    qmin = -qmax - 1
    t1, t2 = _two_sum(t1, t2)  # normalized: |t2| <= ulp(t1) / 2, the sign of the term is t1's
    if t1 == 0.0:
        return A, False
    m, ex = math.frexp(t1)
    pe = ex + fl  # 2^(pe-1) <= |t1| * 2^fl < 2^pe
    if pe <= -1:  # |term| < 1/2 unit: floor is 0 or -1
        S = A if t1 > 0 else A - 1
    elif pe <= 62 or (pe == 63 and abs(m) == 0.5):  # |u1| <= 2^62: S fits int64 exactly
        u1 = math.ldexp(t1, fl)
        u2 = math.ldexp(t2, fl)
        F = math.floor(u1)
        r = u1 - F  # exact: |u1| >= 1/2 (Sterbenz for -1 < u1 < 0, a fraction part otherwise)
        if r == 0.0:
            adj = np.int64(math.floor(u2))
        elif u2 >= 0:
            adj = np.int64(1) if u2 >= 1.0 - r else np.int64(0)
        else:
            adj = np.int64(-1) if r < -u2 else np.int64(0)
        S = A + np.int64(F) + adj
    else:
        if ovf == _OSAT:
            return (qmax if t1 > 0 else qmin), True
        # |u1| > 2^62: an integer; floor(u1 + u2) = u1 + floor(u2), summed modulo 2^64
        T = np.uint64(_mod64(math.ldexp(t1, fl))) + np.uint64(_mod64(math.floor(math.ldexp(t2, fl))))
        w = (np.uint64(A) + T) & ((np.uint64(1) << np.uint64(wl)) - np.uint64(1))
        v = np.int64(w)
        if v > qmax:
            v -= np.int64(1) << wl
        return v, True
    if qmin <= S <= qmax:
        return S, False
    if ovf == _OSAT:
        return (qmax if S > qmax else qmin), True
    w = np.uint64(S) & ((np.uint64(1) << np.uint64(wl)) - np.uint64(1))
    v = np.int64(w)
    if v > qmax:
        v -= np.int64(1) << wl
    return v, True


_SUPER_OFF = 1152
_SUPER_LIMBS = 72


@njit(cache=True)
def _super_add(limbs, d):
    if d == 0.0:
        return
    m, ex = math.frexp(abs(d))
    mant = np.uint64(math.ldexp(m, 53))
    p = ex - 53 + _SUPER_OFF
    i = p // 32
    off = np.uint64(p - i * 32)
    m32 = np.uint64(0xFFFFFFFF)
    lo = (mant << off) & m32
    rest = (mant >> (np.uint64(32) - off)) if off > 0 else (mant >> np.uint64(32))
    mid = rest & m32
    top = rest >> np.uint64(32)
    if d > 0:
        limbs[i] += np.int64(lo)
        limbs[i + 1] += np.int64(mid)
        limbs[i + 2] += np.int64(top)
    else:
        limbs[i] -= np.int64(lo)
        limbs[i + 1] -= np.int64(mid)
        limbs[i + 2] -= np.int64(top)


@njit(cache=True)
def _super_round(limbs):
    """The exact sum held in the limbs (32-bit digits, value * 2^offset), rounded to float64 (nearest
    even)."""
    n = limbs.shape[0]
    carry = np.int64(0)
    for i in range(n):
        v = limbs[i] + carry
        carry = v >> 32
        limbs[i] = v & 0xFFFFFFFF
    neg = carry < 0
    if neg:  # magnitude = 2^(32 n) - value
        c = np.int64(1)
        for i in range(n):
            v = (0xFFFFFFFF - limbs[i]) + c
            c = v >> 32
            limbs[i] = v & 0xFFFFFFFF
    top = -1
    for i in range(n - 1, -1, -1):
        if limbs[i] != 0:
            top = i
            break
    if top < 0:
        return 0.0
    nbits = 0
    t = limbs[top]
    while t != 0:
        nbits += 1
        t >>= 1
    msb = top * 32 + nbits - 1
    lsb = msb - 61  # keep 62 bits in g, the rest is sticky
    g = np.int64(0)
    for pos in range(msb, lsb - 1, -1):
        bit = (limbs[pos // 32] >> (pos % 32)) & 1 if pos >= 0 else 0
        g = (g << 1) | bit
    sticky = False
    if lsb > 0:
        li = lsb // 32
        if (limbs[li] & ((np.int64(1) << (lsb % 32)) - 1)) != 0:
            sticky = True
        for i in range(li):
            if limbs[i] != 0:
                sticky = True
                break
    # 62 bits and a sticky bit rounded to float64's 53 by the rounding core
    kept, _ = round_mag(np.uint64((g << 1) | np.int64(sticky)), 10, False, _RNE, False, np.uint64(0), 0, 0,
                        np.uint64(0))
    v = math.ldexp(float(kept), lsb + 9 - _SUPER_OFF)
    return -v if neg else v


@njit(parallel=True, cache=True)
def block_mm_kernel(av, bv, sums, sa, sb, B, pow2, wide, kind, M, emin, maxval, mode, ovf, fl, wl, nz, post,
                    fprm, half_mask, init_v, init_q, out, novf):
    """out[i, j] = acc over blocks of (exact block sum) * sa[i, kb] * sb[j, kb] (then * post).

    ``sums`` (m, n, nbk), when not empty, holds the exact block sums already
    (a BLAS product: exact in any order when every block sum fits 53 bits).
    The accumulator of (i, j) starts at row min(i, rows - 1) of ``init_v``
    (values in its format; float and exact accumulators) or ``init_q`` (codes;
    fixed accumulators), each (1, n) or (m, n).
    """
    m, K = av.shape
    n = bv.shape[0]
    nbk = sa.shape[1]
    last = init_v.shape[0] - 1
    fast32 = M == 23 and emin == -126 and mode == _RNE
    for i in prange(m):
        limbs = np.zeros(_SUPER_LIMBS, np.int64)
        r = min(np.int64(i), last)
        for j in range(n):
            acc = init_v[r, j]
            A = init_q[r, j]
            cnt = 0
            if kind == 2:
                limbs[:] = 0
                _super_add(limbs, acc)
            for kb in range(nbk):
                lo = kb * B
                hi = min(lo + B, K)
                s = 0.0
                e = 0.0
                if sums.shape[0]:
                    s = sums[i, j, kb]
                elif wide:
                    for k in range(lo, hi):
                        s, err = _two_sum(s, av[i, k] * bv[j, k])
                        e += err
                    s, e = _two_sum(s, e)
                else:
                    for k in range(lo, hi):
                        s += av[i, k] * bv[j, k]
                sab = sa[i, kb] * sb[j, kb]
                if pow2:
                    t1 = s * sab
                    t2 = e * sab
                else:
                    t1, t2 = _two_prod(s, sab)
                if kind == 0:
                    if fast32:
                        acc, o = _acc_fp32(acc, t1, t2, fprm, half_mask, maxval, mode, ovf, nz)
                    else:
                        acc, o = _acc_float(acc, t1, t2, fprm, half_mask, maxval, mode, ovf, nz)
                elif kind == 1:
                    if not (np.isfinite(t1) and np.isfinite(t2)):
                        acc = np.nan
                        continue
                    A, o = _acc_fixed(A, t1, t2, fl, wl, ovf)
                else:
                    if not (np.isfinite(t1) and np.isfinite(t2)):
                        acc = np.nan
                        continue
                    if post != 1.0:
                        p1, p2 = _two_prod(t1, post)
                        p3, p4 = _two_prod(t2, post)
                        _super_add(limbs, p1)
                        _super_add(limbs, p2)
                        _super_add(limbs, p3)
                        _super_add(limbs, p4)
                    else:
                        _super_add(limbs, t1)
                        _super_add(limbs, t2)
                    o = False
                if o:
                    cnt += 1
            if kind == 0:
                if post != 1.0:
                    if np.isfinite(acc):
                        p1, p2 = _two_prod(acc, post)
                        acc, o = _acc_float(0.0, p1, p2, fprm, half_mask, maxval, mode, ovf, nz)
                        if o:
                            cnt += 1
                    else:
                        acc = acc * post
                out[i, j] = acc
            elif kind == 1:
                out[i, j] = np.nan if np.isnan(acc) else math.ldexp(float(A), -fl)
            else:
                out[i, j] = np.nan if np.isnan(acc) else _super_round(limbs)
            novf[i, j] = cnt


#: the multiply-adds from which `block_mm_float_ne` shares its rows among numba's threads: below, one thread
#: was faster on fresh operands (measured: 32 x 64 x 100 60 us on two threads, 45 us on one; 270 x 64 x 100
#: 250 against 354 us)
THREAD_MACS = 1 << 20


@njit(cache=True)
def _float_ne_rows(av, bvT, sa, sbT, B, prm, init_v, out, novf, i0, i1):
    """Rows i0 .. i1 - 1 of `block_mm_float_ne`."""
    K = av.shape[1]
    n = bvT.shape[1]
    nbk = sa.shape[1]
    last = init_v.shape[0] - 1
    acc = np.empty(n)
    s = np.empty(n)
    cnt = np.empty(n, np.int64)
    for i in range(i0, i1):
        acc[:] = init_v[min(np.int64(i), last)]
        cnt[:] = 0
        for kb in range(nbk):
            s[:] = 0.0
            for k in range(kb * B, min(K, kb * B + B)):
                a = av[i, k]
                for j in range(n):
                    s[j] += a * bvT[k, j]
            sai = sa[i, kb]
            for j in range(n):
                r, o = add_float_ne(acc[j], s[j] * (sai * sbT[kb, j]), prm)
                acc[j] = r
                cnt[j] += o
        out[i] = acc
        novf[i] = cnt


@njit(parallel=True, cache=True)
def _float_ne_threads(av, bvT, sa, sbT, B, prm, init_v, out, novf):
    m = av.shape[0]
    rows = 16
    for c in prange((m + rows - 1) // rows):
        _float_ne_rows(av, bvT, sa, sbT, B, prm, init_v, out, novf, c * rows, min(m, c * rows + rows))


def block_mm_float_ne(av, bvT, sa, sbT, B, prm, init_v, out, novf):
    """`block_mm_kernel` for power-of-two block scales (MX) whose exact block sums fit 53 bits, into a float
    accumulator rounding to nearest even that `fround_ne_add` covers, every scale finite and no global
    scale: out[i, j] = init_v[min(i, rows - 1), j] (+) sum_kb (block sum) * sa[i, kb] * sbT[kb, j], each
    (+) the exact sum rounded once (`add_float_ne`), overflows counted in ``novf``.

    The block sums are formed here (every partial sum is exact, so their order is free) and never stored:
    one pass over a row of ``av`` (m, K) against ``bvT`` (K, n), with the output columns innermost so the
    loops vectorise. A term s * 2^(Xa + Xb) is exact (s is a float64 within float64's range, the scales
    powers of two), and s = +0 gives +0, as `block_mm_kernel`'s rule for an exact zero sum has it under
    nearest even. Chunks of 16 rows run in parallel from
    `THREAD_MACS` multiply-adds, on the calling thread below.
    """
    if av.shape[0] * av.shape[1] * bvT.shape[1] >= THREAD_MACS:
        _float_ne_threads(av, bvT, sa, sbT, B, prm, init_v, out, novf)
    else:
        _float_ne_rows(av, bvT, sa, sbT, B, prm, init_v, out, novf, 0, av.shape[0])
