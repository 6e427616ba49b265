"""Slow exact reference for the block-scaled formats (`emu.block`).

Everything is computed with Python integers and `fractions.Fraction`, block by
block and element by element, straight from the rules in docs/blockscaled.md.
fp32 arithmetic steps of the NVFP4 and scaled-integer recipes are modelled as
"exact result, rounded once to fp32 (nearest even)", which is what IEEE 754
single-precision division and subtraction do. The tests compare the fast
kernels against these functions bit for bit.

This module depends on no code under test: it reads format descriptions (the
block format objects' fields and `emu.formats` dataclasses; accumulator names
through `emu.registry.get_format`) and decodes element codes, fp32/bf16 bit
patterns and E8M0/E4M3 scales itself. numpy serves only to hold arrays. Block
formats are passed as objects (``emu.block_format(name)``), never as names.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from .formats import FixedFormat, FloatFormat, Format
from .registry import get_format

__all__ = [
    "RefIntScales",
    "RefNVFP4Scales",
    "elem_value",
    "ref_block_decode",
    "ref_block_encode",
    "ref_block_matmul",
    "ref_mbqm",
    "ref_quantize_multiplier",
    "ref_round_float",
]

_FP32 = FloatFormat(8, 23)
_BF16 = FloatFormat(8, 7)
_FP64 = FloatFormat(11, 52)
_E4M3 = FloatFormat(4, 3, special="fn")
_NEAREST = ("nearest_even", "nearest_away", "nearest_up", "nearest_down")


@dataclass(frozen=True)
class RefNVFP4Scales:
    """NVFP4 scales: ``tensor`` (0-d uint32 fp32 bits), ``block`` (E4M3 codes)."""

    tensor: np.ndarray
    block: np.ndarray


@dataclass(frozen=True)
class RefIntScales:
    """Scaled-integer scales: ``scale`` codes, ``zero_point`` (or None), ``shift`` (fixmul, or None)."""

    scale: np.ndarray
    zero_point: np.ndarray | None = None
    shift: np.ndarray | None = None


def _mode_name(mode: Any) -> str:
    """A rounding or overflow mode (an enum member or its name) as its lowercase name."""
    return str(getattr(mode, "name", mode)).lower()


def _kind(fmt: Any) -> str:
    if isinstance(fmt, str) or not hasattr(fmt, "kind"):
        raise TypeError(f"_ref_block: fmt={fmt!r} must be a block format object (emu.block_format(name))")
    return str(fmt.kind)


def floor_log2(q: Fraction) -> int:
    """floor(log2 q) for q > 0, exactly."""
    n, d = q.numerator, q.denominator
    e = n.bit_length() - d.bit_length()
    if (n << max(-e, 0)) < (d << max(e, 0)):
        e -= 1
    return e


def _pow2(e: int) -> Fraction:
    return Fraction(1 << e) if e >= 0 else Fraction(1, 1 << -e)


def _round_int(t: Fraction, mode: str) -> int:
    """Round the signed rational t to an integer."""
    f = math.floor(t)
    r = t - f
    if r == 0:
        return f
    half = Fraction(1, 2)
    if mode == "floor":
        return f
    if mode == "ceil":
        return f + 1
    if mode == "toward_zero":
        return f if t > 0 else f + 1
    if r != half:
        return f + (1 if r > half else 0)
    return {"nearest_even": f + (f & 1), "nearest_away": f + (1 if t > 0 else 0),
            "nearest_up": f + 1, "nearest_down": f}[mode]


def ref_round_float(x: Fraction, fmt: FloatFormat, mode: Any = "nearest_even",
                    overflow: Any = "saturate") -> tuple[float, bool]:
    """x rounded to the float format (value as float, overflowed?). x = 0 gives +0."""
    mode, overflow = _mode_name(mode), _mode_name(overflow)
    if x == 0:
        return 0.0, False
    neg = x < 0
    a = -x if neg else x
    e = floor_log2(a)
    qe = max(e, fmt.emin) - fmt.man_bits
    # round the signed value on the grid 2^qe (directed modes act on the signed value)
    k = _round_int(x / _pow2(qe), mode)
    if mode == "nearest_even" and fmt.man_bits == 0 and e >= fmt.emin and abs(x / _pow2(qe)) - abs(
            math.floor(abs(x / _pow2(qe)))) == Fraction(1, 2):
        # ties to the even exponent field
        lo = math.floor(abs(x / _pow2(qe)))
        k = lo + (1 if ((e + fmt.bias) & 1) else 0)
        k = -k if neg else k
    v = Fraction(k) * _pow2(qe)
    if abs(v) > Fraction(fmt.max):
        if overflow == "saturate":
            return (-fmt.max if neg else fmt.max), True
        if overflow == "nan":
            return math.nan, True
        to_inf = mode in _NEAREST or (mode == "floor" and neg) or (mode == "ceil" and not neg)
        r = math.inf if to_inf else fmt.max
        return (-r if neg else r), True
    if v == 0:
        return (-0.0 if neg and fmt.has_negative_zero else 0.0), False
    return float(v), False


def _fp32(x: Fraction) -> Fraction:
    v, _ = ref_round_float(x, _FP32, overflow="inf")
    if math.isinf(v):
        raise OverflowError("fp32 overflow")
    return Fraction(v)


def _fp32_bits(v: Fraction) -> int:
    """The fp32 bit pattern of v (an fp32 value)."""
    return int.from_bytes(struct.pack(">f", float(v)), "big")


def _fp32_from_bits(b: int) -> Fraction:
    return Fraction(struct.unpack(">f", int(b).to_bytes(4, "big"))[0])


def elem_value(code: int, el: Format) -> float:
    """The value of one code of a float or fixed element format, decoded from its fields (NaN as nan)."""
    code = int(code)
    if isinstance(el, FixedFormat):
        q = code - (1 << el.bits) if el.signed and code >= 1 << (el.bits - 1) else code
        return float(Fraction(q) * _pow2(-el.frac_bits))
    assert isinstance(el, FloatFormat)
    E, M = el.exp_bits, el.man_bits
    s = code >> (E + M)
    e = (code >> M) & ((1 << E) - 1)
    f = code & ((1 << M) - 1)
    top = (1 << E) - 1
    if el.special == "ieee" and e == top:
        return math.nan if f else (-math.inf if s else math.inf)
    if el.special == "fn" and e == top and f == (1 << M) - 1:
        return math.nan
    if el.special == "fnuz" and s == 1 and e == 0 and f == 0:
        return math.nan
    if e == 0:
        mag = Fraction(f) * _pow2(el.emin - M) if el.subnormals else Fraction(0)
    else:
        mag = Fraction((1 << M) + f) * _pow2(e - el.bias - M)
    if mag == 0:
        return -0.0 if s and el.has_negative_zero else 0.0
    return float(-mag if s else mag)


def _values(el: Format) -> list[float]:
    return [elem_value(c, el) for c in range(1 << el.bits)]


def _code_table(el: Format) -> dict[tuple[float, bool], int]:
    table: dict[tuple[float, bool], int] = {}
    for c, v in enumerate(_values(el)):
        if math.isnan(v):
            continue
        if isinstance(el, FixedFormat) and c == (1 << (el.bits - 1)):
            continue  # the asymmetric two's complement minimum is never produced
        table.setdefault((v, math.copysign(1.0, v) < 0), c)
    return table


def _elem_code(v: float, neg_in: bool, el: Format, table: dict) -> int:
    if v == 0.0:
        neg = neg_in and isinstance(el, FloatFormat) and el.has_negative_zero
        return table[(-0.0 if neg else 0.0, neg)]
    return table[(v, v < 0)]


def _is_neg(v: float) -> bool:
    return v < 0 or (v == 0 and math.copysign(1.0, v) < 0)


def _round_elem(q: Fraction, neg_in: bool, el: Format, table: dict) -> tuple[int, bool]:
    """Code of q rounded to the element format (nearest even, saturating)."""
    if isinstance(el, FloatFormat):
        v, sat = ref_round_float(q, el, "nearest_even", "saturate")
    else:
        k = _round_int(q / _pow2(-el.frac_bits), "nearest_even")
        sat = abs(k) > el.qmax
        k = max(-el.qmax, min(el.qmax, k))
        v = float(Fraction(k) * _pow2(-el.frac_bits))
    return _elem_code(v, neg_in, el, table), sat


def _blocks(x: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    xm = np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(xm).reshape(-1, xm.shape[-1]), xm.shape


def ref_block_encode(x: Any, fmt: Any, axis: int = -1) -> tuple[Any, np.ndarray]:
    """(scales, codes) in the layout of `emu.block_encode`, computed exactly.

    Scales are uint8-valued int64 arrays (MX), a `RefNVFP4Scales` or a `RefIntScales`.
    """
    kind = _kind(fmt)
    f = fmt
    xa = np.asarray(x, np.float64)
    if kind == "int":
        return _ref_int_encode(xa, f, axis)
    zero_d = xa.ndim == 0
    if zero_d:
        xa = xa.reshape(1)
    ax = axis % xa.ndim
    rows, moved = _blocks(xa, ax)
    R, n = rows.shape
    B = f.block_size
    nb = -(-n // B)
    el = f.element
    table = _code_table(el)
    scodes = np.zeros((R, nb), np.int64)
    codes = np.zeros((R, n), np.int64)
    g = Fraction(1)
    if kind == "nvfp4":
        fin = [abs(Fraction(v)) for v in rows.ravel().tolist() if math.isfinite(v)]
        amax_t = max(fin, default=Fraction(0))
        if amax_t == 0:
            g = Fraction(1)
        else:
            g = _fp32(_fp32(amax_t) / 2688)
            if g == 0:
                g = _pow2(-149)
        e4 = _code_table(_E4M3)
    emax_el = floor_log2(Fraction(el.max))
    for r in range(R):
        for b in range(nb):
            blk = rows[r, b * B:(b + 1) * B].tolist()
            if not all(math.isfinite(v) for v in blk):
                scodes[r, b] = 255 if kind == "mx" else 0x7F
                continue
            amax = max(abs(Fraction(v)) for v in blk)
            if kind == "mx":
                if amax == 0:
                    X = -127
                else:
                    X = floor_log2(amax) - emax_el
                    if str(f.rule) == "ceil" and amax > Fraction(el.max) * _pow2(X):
                        X += 1
                    X = max(-127, min(127, X))
                scodes[r, b] = X + 127
                d = _pow2(X)
            else:
                s32 = _fp32(_fp32(_fp32(amax) / 6) / g)
                sv, _ = ref_round_float(s32, _E4M3, "nearest_even", "saturate")
                scodes[r, b] = _elem_code(sv, False, _E4M3, e4)
                d = Fraction(sv) * g
            for k, v in enumerate(blk):
                if d == 0:
                    codes[r, b * B + k] = _elem_code(0.0, _is_neg(v), el, table)
                else:
                    codes[r, b * B + k] = _round_elem(Fraction(v) / d, _is_neg(v), el, table)[0]
    sc = np.moveaxis(scodes.reshape(*moved[:-1], nb), -1, ax)
    cd = np.moveaxis(codes.reshape(moved), -1, ax)
    if zero_d:
        sc, cd = sc.reshape(()), cd.reshape(())
    if kind == "nvfp4":
        return RefNVFP4Scales(np.array(_fp32_bits(g), np.uint32), sc), cd
    return sc, cd


def _ref_int_scale(mn: Fraction, mx: Fraction, f: Any) -> tuple[Fraction, int, int, int]:
    """(scale value, scale code, shift, zero point) of one block."""
    if f.symmetric:
        s = _fp32(_fp32(max(-mn, mx)) / f.qmax)
    else:
        s = _fp32(_fp32(_fp32(mx) - _fp32(mn)) / ((1 << f.bits) - 1))
    if mn == 0 and mx == 0:
        s = Fraction(1)
    if s == 0:
        s = _pow2(-149)
    shift = 0
    kind = str(f.scale)
    if kind == "fp32":
        code = _fp32_bits(s)
    elif kind == "bf16":
        v, _ = ref_round_float(s, _BF16, "nearest_even", "saturate")
        s = Fraction(v) if v != 0 else _pow2(-133)
        code = _fp32_bits(s) >> 16
    elif kind == "pow2":
        e = floor_log2(s)
        if _pow2(e) != s:
            e += 1
        e = max(e, -127)
        s, code = _pow2(e), e + 127
    else:
        e = floor_log2(s) + 1  # s = m 2^e, m in [1/2, 1)
        m0 = s / _pow2(e) * (1 << 31)
        assert m0.denominator == 1
        code, shift = int(m0), e
    zp = 0
    if not f.symmetric:
        lo = _fp32(mn)
        zp = max(f.qmin, min(f.qmax, f.qmin - _round_int(lo / s, "nearest_even")))
    return s, code, shift, zp


def _ref_int_encode(xa: np.ndarray, f: Any, axis: int) -> tuple[RefIntScales, np.ndarray]:
    gran = str(f.granularity)
    if gran == "tensor":
        rows = xa.reshape(1, -1)
        B = max(1, xa.size)
    elif gran == "channel":
        ax = axis % xa.ndim
        xm = np.moveaxis(xa, ax, 0)
        rows = np.ascontiguousarray(xm).reshape(xm.shape[0], -1)
        B = max(1, rows.shape[1])
    else:
        ax = axis % xa.ndim if xa.ndim else 0
        rows, moved = _blocks(xa.reshape(1) if xa.ndim == 0 else xa, ax)
        B = f.group_size
    R, n = rows.shape
    nb = -(-n // B) if n else 1
    sc = np.zeros((R, nb), np.int64)
    sh = np.zeros((R, nb), np.int64)
    zp = np.zeros((R, nb), np.int64)
    codes = np.zeros((R, n), np.int64)
    for r in range(R):
        for b in range(nb):
            blk = [Fraction(v) for v in rows[r, b * B:(b + 1) * B].tolist()]
            mn = min([Fraction(0), *blk])
            mx = max([Fraction(0), *blk])
            s, code, shift, z = _ref_int_scale(mn, mx, f)
            sc[r, b], sh[r, b], zp[r, b] = code, shift, z
            if str(f.scale) == "fixmul":
                s = Fraction(code) * _pow2(shift - 31)
            for k, v in enumerate(blk):
                q = _round_int(v / s, "nearest_even") + z
                q = max(f.qmin, min(f.qmax, q))
                codes[r, b * B + k] = q % (1 << f.bits)

    def shape(a: np.ndarray) -> np.ndarray:
        if gran == "tensor":
            return a.reshape(())
        if gran == "channel":
            return a.reshape(-1)
        if xa.ndim == 0:
            return a.reshape(())
        return np.moveaxis(a.reshape(*moved[:-1], nb), -1, ax)

    if gran == "tensor":
        cd = codes.reshape(xa.shape)
    elif gran == "channel":
        cd = np.moveaxis(codes.reshape(xm.shape), 0, ax)
    else:
        cd = codes.reshape(()) if xa.ndim == 0 else np.moveaxis(codes.reshape(moved), -1, ax)
    scales = RefIntScales(shape(sc), None if f.symmetric else shape(zp),
                          shape(sh) if str(f.scale) == "fixmul" else None)
    return scales, cd


def _int_scale_value(code: int, shift: int, kind: str) -> Fraction:
    """The exact value of one stored integer-format scale."""
    if kind == "fp32":
        return _fp32_from_bits(code)
    if kind == "bf16":
        return _fp32_from_bits(code << 16)
    if kind == "pow2":
        return _pow2(code - 127)
    return Fraction(code) * _pow2(shift - 31)


def _int_scale_values(scales: Any, f: Any) -> tuple[np.ndarray, np.ndarray]:
    """(exact scale values as an object array of Fractions, zero points int64) of scaled-integer scales."""
    raw = np.asarray(scales.scale, np.int64)
    sh = np.zeros(raw.shape, np.int64) if scales.shift is None else np.asarray(scales.shift, np.int64)
    kind = str(f.scale)
    sv = np.empty(raw.shape, object)
    for idx in np.ndindex(*raw.shape):
        sv[idx] = _int_scale_value(int(raw[idx]), int(sh[idx]), kind)
    zp = np.zeros(raw.shape, np.int64) if scales.zero_point is None else np.asarray(scales.zero_point,
                                                                                     np.int64)
    return sv, zp


def _e8m0(code: int) -> Fraction | None:
    return None if code == 255 else _pow2(code - 127)


def ref_block_decode(scales: Any, codes: Any, fmt: Any, axis: int = -1) -> np.ndarray:
    """Exact values of (scales, codes): element value times block scale, element by element."""
    kind = _kind(fmt)
    f = fmt
    c = np.asarray(codes, np.int64)
    zero_d = c.ndim == 0
    c1 = c.reshape(1) if zero_d else c
    ax = axis % c1.ndim
    out = np.zeros(c1.shape)
    if kind == "int":
        sv, zp = _int_scale_values(scales, f)
        gran = str(f.granularity)
        for idx in np.ndindex(*c1.shape):
            v = int(c1[idx])
            q = v - (1 << f.bits) if v >= 1 << (f.bits - 1) else v
            if gran == "tensor":
                si: tuple[int, ...] = ()
            elif gran == "channel":
                si = (idx[ax],)
            elif zero_d:
                si = ()
            else:
                si = tuple(i // f.group_size if d == ax else i for d, i in enumerate(idx))
            out[idx] = float((q - int(zp[si])) * sv[si])
        return out.reshape(()) if zero_d else out
    table = _values(f.element)
    if kind == "mx":
        s = np.asarray(scales, np.int64).reshape(c1.shape[:ax] + (-1,) + c1.shape[ax + 1:])
        g = Fraction(1)
    else:
        s = np.asarray(scales.block, np.int64).reshape(c1.shape[:ax] + (-1,) + c1.shape[ax + 1:])
        g = _fp32_from_bits(int(np.asarray(scales.tensor)))
        e4 = _values(_E4M3)
    for idx in np.ndindex(*c1.shape):
        si = tuple(i // f.block_size if d == ax else i for d, i in enumerate(idx))
        sc = int(s[si])
        ev = table[int(c1[idx])]
        if kind == "mx":
            scale = _e8m0(sc)
        else:
            scale = None if math.isnan(e4[sc]) else Fraction(e4[sc]) * g
        if scale is None or math.isnan(ev):
            out[idx] = math.nan
        elif not math.isfinite(ev) or ev == 0:
            out[idx] = ev
        else:
            out[idx] = float(Fraction(ev) * scale)
    return out.reshape(()) if zero_d else out


def _frac_values(f: Any, x: np.ndarray, role: str) -> tuple[list[list[Any]], list[list[Any]], Fraction, int]:
    """(element values [row][k], scale values [row][block] (None: NaN), global scale, block size), exact."""
    kind = _kind(f)
    kax = 1 if role == "a" else 0
    if kind == "int":
        gran = str(f.granularity)
        chan = 0 if role == "a" else 1
        sc, codes = ref_block_encode(x, f, chan if gran == "channel" else kax)
        c = np.asarray(codes, np.int64)
        q = np.where(c >= (1 << (f.bits - 1)), c - (1 << f.bits), c)
        sv, zp = _int_scale_values(sc, f)
        K = x.shape[kax]
        if role == "b":
            q = q.T
        vals, scl = [], []
        for r in range(q.shape[0]):
            if gran == "tensor":
                vals.append([Fraction(int(v) - int(zp)) for v in q[r]])
                scl.append([sv[()]])
            elif gran == "channel":
                vals.append([Fraction(int(v) - int(zp[r])) for v in q[r]])
                scl.append([sv[r]])
            else:
                zr = zp[r] if role == "a" else zp[:, r]
                sr = sv[r] if role == "a" else sv[:, r]
                G = f.group_size
                vals.append([Fraction(int(q[r, k]) - int(zr[k // G])) for k in range(K)])
                scl.append(list(sr))
        B = f.group_size if gran == "group" else K
        return vals, scl, Fraction(1), B
    sc, codes = ref_block_encode(x, f, kax)
    table = _values(f.element)
    c = np.asarray(codes, np.int64)
    if kind == "mx":
        s = np.asarray(sc, np.int64)
        g = Fraction(1)
    else:
        s = np.asarray(sc.block, np.int64)
        g = _fp32_from_bits(int(np.asarray(sc.tensor)))
        e4 = _values(_E4M3)
    if role == "b":
        c, s = c.T, s.T
    vals = [[Fraction(table[v]) for v in row] for row in c]
    if kind == "mx":
        scl = [[_e8m0(int(v)) for v in row] for row in s]
    else:
        scl = [[None if math.isnan(e4[v]) else Fraction(e4[v]) for v in row] for row in s]
    return vals, scl, g, f.block_size


def ref_block_matmul(a: Any, b: Any, fmt_a: Any, fmt_b: Any, acc: Any = "fp32",
                     acc_rounding: Any = "nearest_even", acc_overflow: Any = None,
                     return_stats: bool = False) -> Any:
    """The block MAC of docs/blockscaled.md, exactly, output by output.

    With ``return_stats`` also the number of accumulator overflow events (float: a rounding beyond the
    format's range; fixed: a sum outside the word before it saturates or wraps).
    """
    mode = _mode_name(acc_rounding)
    ovf = None if acc_overflow is None else _mode_name(acc_overflow)
    A = np.asarray(a, np.float64)
    Bm = np.asarray(b, np.float64)
    M, K = A.shape
    N = Bm.shape[1]
    va, sa, ga, Ba = _frac_values(fmt_a, A, "a")
    vb, sb, gb, Bb = _frac_values(fmt_b, Bm, "b")
    nbk = max(len(sa[0]) if sa else 1, len(sb[0]) if sb else 1)
    Bk = Ba if len(sa[0]) == nbk and nbk > 1 else (Bb if nbk > 1 else max(K, 1))
    nv = _kind(fmt_a) == "nvfp4"
    fa = None if acc is None or acc == "exact" else (get_format(acc) if isinstance(acc, str) else acc)
    out = np.zeros((M, N))
    events = [0]
    for i in range(M):
        for j in range(N):
            accv: Any = Fraction(0)
            accf = 0.0
            nan = False
            for kb in range(nbk):
                s1 = sa[i][kb if len(sa[i]) > 1 else 0]
                s2 = sb[j][kb if len(sb[j]) > 1 else 0]
                if s1 is None or s2 is None:
                    nan = True
                    continue
                P = sum((va[i][k] * vb[j][k] for k in range(kb * Bk, min((kb + 1) * Bk, K))), Fraction(0))
                term = P * s1 * s2
                if fa is None:
                    accv += term * (ga * gb if nv else 1)
                elif isinstance(fa, FloatFormat):
                    accf = _float_add(accf, term, fa, mode, ovf, events)
                else:
                    accv = _fixed_add(accv, term, fa, ovf or "saturate", events)
            if nan or (fa is not None and isinstance(fa, FloatFormat) and math.isnan(accf)):
                out[i, j] = math.nan
            elif fa is None:
                out[i, j] = ref_round_float(accv, _FP64)[0]
            elif isinstance(fa, FloatFormat):
                if nv and math.isfinite(accf):
                    accf = _float_add(0.0, Fraction(accf) * ga * gb, fa, mode, ovf, events)
                elif nv:
                    accf = accf * float(ga * gb)
                out[i, j] = accf
            else:
                out[i, j] = float(accv * _pow2(-fa.frac_bits))
    return (out, events[0]) if return_stats else out


def _float_add(accf: float, term: Fraction, fa: FloatFormat, mode: str, overflow: str | None,
               events: list[int]) -> float:
    ovf = overflow or ("inf" if fa.has_inf else "saturate")
    if math.isnan(accf):
        return accf
    if math.isinf(accf):
        if ovf == "saturate":
            return -fa.max if accf < 0 else fa.max
        return accf
    s = Fraction(accf) + term
    if s == 0:
        both_pos = accf == 0 and math.copysign(1.0, accf) > 0 and term == 0
        return -0.0 if (mode == "floor" and not both_pos and fa.has_negative_zero) else 0.0
    v, o = ref_round_float(s, fa, mode, ovf)
    events[0] += o
    return v


def _fixed_add(A: Fraction, term: Fraction, fa: FixedFormat, ovf: str, events: list[int]) -> Fraction:
    """A is the integer code (as Fraction); term floored onto the grid, then wrap/saturate."""
    S = int(A) + math.floor(term * _pow2(fa.frac_bits))
    if fa.qmin <= S <= fa.qmax:
        return Fraction(S)
    events[0] += 1
    if ovf == "saturate":
        return Fraction(fa.qmax if S > fa.qmax else fa.qmin)
    w = S % (1 << fa.bits)
    return Fraction(w - (1 << fa.bits) if w > fa.qmax else w)


# --- integer requantization --------------------------------------------------------------------


def ref_quantize_multiplier(real: float) -> tuple[int, int]:
    """(M0, shift) with M0 = round_half_away(real / 2^shift * 2^31) in [2^30, 2^31]."""
    q = Fraction(real)
    if q == 0:
        return 0, 0
    e = floor_log2(q) + 1
    t = q / _pow2(e) * (1 << 31)
    m0 = math.floor(t + Fraction(1, 2))
    if m0 == 1 << 31:
        m0, e = 1 << 30, e + 1
    return m0, e


def ref_mbqm(x: int, m0: int, shift: int) -> int:
    """TFLite MultiplyByQuantizedMultiplier with Python integers (C semantics spelled out)."""
    left, right = max(shift, 0), max(-shift, 0)
    v = (x << left) % (1 << 32)
    v = v - (1 << 32) if v >= 1 << 31 else v
    if v == m0 == -(1 << 31):
        h = (1 << 31) - 1
    else:
        ab = v * m0
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        s = ab + nudge
        h = abs(s) // (1 << 31) * (1 if s >= 0 else -1)  # C division truncates toward zero
    if right == 0:
        return h
    mask = (1 << right) - 1
    rem = h & mask
    thr = (mask >> 1) + (1 if h < 0 else 0)
    return (h >> right) + (1 if rem > thr else 0)
