"""Slow exact references of block-scaled encoding and decoding (docs/blockscaled.md).

Block by block and element by element, with Python integers and
``fractions.Fraction``, straight from the rules in docs/blockscaled.md: MX
(E8M0 scale per block), NVFP4 (fp32 tensor scale, E4M3 block scale) and the
scaled-integer formats (tensor, channel or group scales). The fp32 arithmetic
steps of the NVFP4 and scaled-integer recipes are "exact result, rounded once
to fp32 (nearest even)", which is what IEEE 754 single-precision division and
subtraction do. Every rounding is a call of `emu._ref.rounding`.

Block formats are passed as objects (``emu.block_format(name)``), never as
names; only their fields are read. numpy serves only to hold arrays.

Imports: the standard library, numpy, ``emu.formats`` and the other references (no
code under test: the block formats come in as objects).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..formats import FloatFormat
from .block_codes import (
    BF16,
    E4M3,
    code_table,
    e8m0,
    elem_code,
    float_value,
    fp32,
    fp32_bits,
    fp32_from_bits,
    int_scale_value,
    is_neg,
    kind_of,
    to_elem_code,
    values,
)
from .rounding import floor_log2, pow2, round_float, round_fraction, round_pow2

__all__ = ["RefIntScales", "RefNVFP4Scales", "int_scale_values", "ref_block_decode", "ref_block_encode",
           "ref_mx_scale_exp"]


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

def _blocks(x: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    xm = np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(xm).reshape(-1, xm.shape[-1]), xm.shape


def ref_mx_scale_exp(amax: Fraction, el: Any, rule: str) -> int:
    """The shared exponent X of an MX block (largest magnitude amax >= 0) under a scale rule
    (`emu.block.ScaleRule`, by name), clamped to [-127, 127] from above and below.

    e = floor(log2 amax), emax = floor(log2 elem_max), M = the element's top-binade fraction bits (a
    float's man_bits, W - 2 for W-bit integers): ocp X = e - emax; ceil X = ceil(log2 amax) - emax;
    even X = floor(log2 r) - emax with r = amax / 2^e rounded to M fraction bits, ties to even, times
    2^e; rceil X = the smallest X with amax <= elem_max 2^X. An all-zero block gives -127.

    >>> from emu.formats import FloatFormat
    >>> e2m1 = FloatFormat(2, 1, special="none")
    >>> [ref_mx_scale_exp(Fraction(13, 2), e2m1, r) for r in ("ocp", "ceil", "even", "rceil")]
    [0, 1, 0, 1]
    """
    if amax == 0:
        return -127
    emax = floor_log2(Fraction(el.max))
    e = floor_log2(amax)
    X = e - emax
    if rule == "ceil" and amax != pow2(e):
        X += 1
    elif rule == "even":
        top = el.man_bits if isinstance(el, FloatFormat) else el.bits - 2
        if round_float(amax / pow2(e), FloatFormat(8, top), "nearest_even") == 2:
            X += 1
    elif rule == "rceil" and amax > Fraction(el.max) * pow2(X):
        X += 1
    return max(-127, min(127, X))


def ref_block_encode(x: Any, fmt: Any, axis: int = -1, rounding: str = "nearest_even", *, key: int = 0,
                     random_bits: int | None = None) -> tuple[Any, np.ndarray]:
    """(scales, codes) in the layout of `emu.block_encode`, computed exactly.

    Scales are uint8-valued int64 arrays (MX), a `RefNVFP4Scales` or a `RefIntScales`. ``rounding``
    (nearest_even or stochastic) rounds MX and NVFP4 elements; stochastic rounding gives the element in
    row r, column k of x with ``axis`` moved last (rows in C order, n columns) the words of index
    r n + k of the stream under ``key`` (the 64-bit key `emu.block_encode` derives from its seed).
    """
    kind = kind_of(fmt)
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
    table = code_table(el)
    scodes = np.zeros((R, nb), np.int64)
    codes = np.zeros((R, n), np.int64)
    g = Fraction(1)
    if kind == "nvfp4":
        fin = [abs(Fraction(v)) for v in rows.ravel().tolist() if math.isfinite(v)]
        amax_t = max(fin, default=Fraction(0))
        if amax_t == 0:
            g = Fraction(1)
        else:
            g = fp32(fp32(amax_t) / 2688)
            if g == 0:
                g = pow2(-149)
        e4 = code_table(E4M3)
    for r in range(R):
        for b in range(nb):
            blk = rows[r, b * B:(b + 1) * B].tolist()
            if not all(math.isfinite(v) for v in blk):
                scodes[r, b] = 255 if kind == "mx" else 0x7F
                continue
            amax = max(abs(Fraction(v)) for v in blk)
            if kind == "mx":
                X = ref_mx_scale_exp(amax, el, str(f.rule))
                scodes[r, b] = X + 127
                d = pow2(X)
            else:
                s32 = fp32(fp32(fp32(amax) / 6) / g)
                sv, _ = float_value(s32, E4M3, "nearest_even", "saturate")
                scodes[r, b] = elem_code(sv, False, E4M3, e4)
                d = Fraction(sv) * g
            for k, v in enumerate(blk):
                if d == 0:
                    codes[r, b * B + k] = elem_code(0.0, is_neg(v), el, table)
                else:
                    codes[r, b * B + k] = to_elem_code(Fraction(v) / d, is_neg(v), el, table, rounding,
                                                       key=key, index=r * n + b * B + k,
                                                       random_bits=random_bits)[0]
    sc = np.moveaxis(scodes.reshape(*moved[:-1], nb), -1, ax)
    cd = np.moveaxis(codes.reshape(moved), -1, ax)
    if zero_d:
        sc, cd = sc.reshape(()), cd.reshape(())
    if kind == "nvfp4":
        return RefNVFP4Scales(np.array(fp32_bits(g), np.uint32), sc), cd
    return sc, cd


def _ref_int_scale(mn: Fraction, mx: Fraction, f: Any) -> tuple[Fraction, int, int, int]:
    """(scale value, scale code, shift, zero point) of one block."""
    if f.symmetric:
        s = fp32(fp32(max(-mn, mx)) / f.qmax)
    else:
        s = fp32(fp32(fp32(mx) - fp32(mn)) / ((1 << f.bits) - 1))
    if mn == 0 and mx == 0:
        s = Fraction(1)
    if s == 0:
        s = pow2(-149)
    shift = 0
    kind = str(f.scale)
    if kind == "fp32":
        code = fp32_bits(s)
    elif kind == "bf16":
        v, _ = float_value(s, BF16, "nearest_even", "saturate")
        s = Fraction(v) if v != 0 else pow2(-133)
        code = fp32_bits(s) >> 16
    elif kind == "pow2":
        s = round_pow2(s, -127, "ceil")  # up to a power of two, at least 2^-127
        code = floor_log2(s) + 127
    else:
        e = floor_log2(s) + 1  # s = m 2^e, m in [1/2, 1)
        m0 = s / pow2(e) * (1 << 31)
        assert m0.denominator == 1
        code, shift = int(m0), e
    zp = 0
    if not f.symmetric:
        lo = fp32(mn)
        zp = max(f.qmin, min(f.qmax, f.qmin - round_fraction(lo / s, "nearest_even")))
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
                s = Fraction(code) * pow2(shift - 31)
            for k, v in enumerate(blk):
                q = round_fraction(v / s, "nearest_even") + z
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


def int_scale_values(scales: Any, f: Any) -> tuple[np.ndarray, np.ndarray]:
    """(exact scale values as an object array of Fractions, zero points int64) of scaled-integer scales."""
    raw = np.asarray(scales.scale, np.int64)
    sh = np.zeros(raw.shape, np.int64) if scales.shift is None else np.asarray(scales.shift, np.int64)
    kind = str(f.scale)
    sv = np.empty(raw.shape, object)
    for idx in np.ndindex(*raw.shape):
        sv[idx] = int_scale_value(int(raw[idx]), int(sh[idx]), kind)
    zp = np.zeros(raw.shape, np.int64) if scales.zero_point is None else np.asarray(scales.zero_point,
                                                                                     np.int64)
    return sv, zp


def ref_block_decode(scales: Any, codes: Any, fmt: Any, axis: int = -1) -> np.ndarray:
    """Exact values of (scales, codes): element value times block scale, element by element."""
    kind = kind_of(fmt)
    f = fmt
    c = np.asarray(codes, np.int64)
    zero_d = c.ndim == 0
    c1 = c.reshape(1) if zero_d else c
    ax = axis % c1.ndim
    out = np.zeros(c1.shape)
    if kind == "int":
        sv, zp = int_scale_values(scales, f)
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
    table = values(f.element)
    if kind == "mx":
        s = np.asarray(scales, np.int64).reshape(c1.shape[:ax] + (-1,) + c1.shape[ax + 1:])
        g = Fraction(1)
    else:
        s = np.asarray(scales.block, np.int64).reshape(c1.shape[:ax] + (-1,) + c1.shape[ax + 1:])
        g = fp32_from_bits(int(np.asarray(scales.tensor)))
        e4 = values(E4M3)
    for idx in np.ndindex(*c1.shape):
        si = tuple(i // f.block_size if d == ax else i for d, i in enumerate(idx))
        sc = int(s[si])
        ev = table[int(c1[idx])]
        if kind == "mx":
            scale = e8m0(sc)
        else:
            scale = None if math.isnan(e4[sc]) else Fraction(e4[sc]) * g
        if scale is None or math.isnan(ev):
            out[idx] = math.nan
        elif not math.isfinite(ev) or ev == 0:
            out[idx] = ev
        else:
            out[idx] = float(Fraction(ev) * scale)
    return out.reshape(()) if zero_d else out

