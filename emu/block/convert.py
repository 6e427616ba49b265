"""The conversion API: `block_encode`, `block_decode` and `block_quantize` of every block family."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from .._rounding import div_rne, float_params
from ..checks import check_bool, check_int, parse_choice
from ..convert import decode as emu_decode
from ..convert import encode as emu_encode
from ..convert import quantize as emu_quantize
from ..formats import FixedFormat, FloatFormat, Format
from ..inputs import as_real, check_seed, seed_key
from ..modes import Overflow, Rounding, parse_rounding
from .formats import (
    E4M3,
    E8M0_BIAS,
    E8M0_VALUES,
    FP32_TINY,
    XMAX,
    XMIN,
    BlockFormat,
    BlockStats,
    IntScales,
    MXFormat,
    NVFP4Format,
    NVFP4Scales,
    ScaledIntFormat,
    ScaleGranularity,
    ScaleKind,
    ScaleOverflow,
    ScaleRule,
    block_format_arg,
    elem_emax,
    elem_top_bits,
)
from .kernels import (
    P2,
    RULE_CEIL,
    RULE_EVEN,
    RULE_OCP,
    RULE_RCEIL,
    block_minmax,
    decode_kernel,
    int_encode_kernel,
    mx_encode_kernel,
    nv_encode_kernel,
)
from .sr_kernels import mx_encode_sr_kernel, nv_encode_sr_kernel

_RULE_CODES = {ScaleRule.OCP: RULE_OCP, ScaleRule.CEIL: RULE_CEIL, ScaleRule.EVEN: RULE_EVEN,
               ScaleRule.RCEIL: RULE_RCEIL}
#: the element roundings block encoding offers
BLOCK_ROUNDINGS = (Rounding.NEAREST_EVEN, Rounding.STOCHASTIC)


def _ne_saturating(f: Format) -> tuple:
    """The rounding core's parameters of nearest even with saturation into ``f``."""
    return float_params(f, int(Rounding.NEAREST_EVEN), int(Overflow.SATURATE))

def _float_max_code(el: FloatFormat) -> int:
    """The code (sign bit clear) of the element format's largest finite value."""
    return int(np.asarray(emu_encode(el.max, el)))


@lru_cache(maxsize=64)
def _mx_args(f: MXFormat) -> tuple:
    """The MX encoding kernels' arguments of format ``f`` after the blocks' size: the element's parameters
    (`_elem_params`), its largest power-of-two exponent, the scale rule's code, the top binade's fraction
    bits and the largest finite element's code (0 for a fixed element); made once per format."""
    el = f.element
    elem = _elem_params(el)
    maxcode = _float_max_code(el) if elem[0] else 0  # type: ignore[arg-type]
    return (*elem, elem_emax(el), _RULE_CODES[f.rule], elem_top_bits(el), maxcode)



# --- conversion API -----------------------------------------------------------------------------


def _norm_axis(axis: object, ndim: int, func: str) -> int:
    ax = check_int(axis, func, "axis")
    if ndim == 0:
        if ax not in (0, -1):
            raise ValueError(f"{func}: axis={ax} outside the allowed range [-1, 0] for a 0-d input")
        return 0
    if not -ndim <= ax < ndim:
        raise ValueError(f"{func}: axis={ax} outside the allowed range [{-ndim}, {ndim - 1}] for {ndim}-d x")
    return ax % ndim


def _to_rows(x: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """x with the block axis (``axis`` >= 0) last, as (rows, n); also the moved shape."""
    xm = x if axis == x.ndim - 1 else x.T if x.ndim == 2 else np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(xm).reshape(math.prod(xm.shape[:-1]), xm.shape[-1]), xm.shape


def _from_last(a: np.ndarray, axis: int) -> np.ndarray:
    """a with its last axis moved to ``axis`` (>= 0): `_to_rows` undone (a itself where that is the last)."""
    return a if axis == a.ndim - 1 else a.T if a.ndim == 2 else np.moveaxis(a, -1, axis)


def _code_dtype(bits: int) -> Any:
    return np.uint8 if bits <= 8 else np.uint16


def _elem_params(el: Format) -> tuple:
    if isinstance(el, FloatFormat):
        return (True, el.man_bits, el.emin, el.bias, el.bits, el.has_negative_zero, not el.subnormals, el.max,
                0, 0)
    assert isinstance(el, FixedFormat)
    return (False, 0, 0, 0, el.bits, False, False, el.max, el.frac_bits, el.qmax)


def _blocks_shape(moved: tuple[int, ...], nb: int) -> tuple[int, ...]:
    return (*moved[:-1], nb)


def parse_block_rounding(rounding: object, random_bits: object, func: str) -> tuple[Rounding, int]:
    """(rounding, random bits: 0 for the exact probability) of block element conversion, validated.

    >>> parse_block_rounding("stochastic", 8, "f")
    (<Rounding.STOCHASTIC: 7>, 8)
    >>> parse_block_rounding("toward_zero", None, "f")
    Traceback (most recent call last):
    ...
    ValueError: f: rounding='toward_zero' is not one of nearest_even, stochastic (block elements)
    """
    try:
        rnd = parse_rounding(rounding, func)
    except ValueError:
        rnd = None
    if rnd not in BLOCK_ROUNDINGS:
        allowed = ", ".join(m.name.lower() for m in BLOCK_ROUNDINGS)
        raise ValueError(f"{func}: rounding={rounding!r} is not one of {allowed} (block elements)")
    if random_bits is None:
        return rnd, 0
    if rnd is not Rounding.STOCHASTIC:
        raise ValueError(f"{func}: random_bits={random_bits!r} applies only to rounding='stochastic'")
    return rnd, check_int(random_bits, func, "random_bits", 1, 64)


def block_encode(x: object, fmt: str | BlockFormat, axis: int = -1, *,
                 rounding: str | Rounding = Rounding.NEAREST_EVEN, seed: object = None,
                 random_bits: int | None = None,
                 scale_overflow: str | ScaleOverflow = ScaleOverflow.CLAMP,
                 tensor_range: tuple[float, float] | None = None, return_stats: bool = False) -> Any:
    """Encode x into a block-scaled format: ``(scales, element_codes)``.

    Args:
        x: real array-like (float16/32/64, ints, ml_dtypes floats); 0-d is one block.
        fmt: a block format or its name (`block_format`).
        axis: the axis the blocks run along (MX, NVFP4, integer groups); for
            per-channel integers the channel axis (one scale per index).
        rounding: how elements round once the scale is chosen (the scale itself
            is deterministic): ``"nearest_even"`` (default, the spec's) or, for
            MX and NVFP4, ``"stochastic"`` (P(up) = the distance to the lower
            grid point over the step; results beyond the element maximum
            saturate). MX float and NVFP4 elements round their magnitude, MX
            integer elements their signed value.
        seed: stochastic rounding's random stream, as `emu.quantize`'s (an int
            >= 0, SeedSequence, Generator, or None for fresh entropy); ignored
            by nearest_even (checked, nothing drawn). Element i in C order of
            ``np.moveaxis(x, axis, -1)`` draws the words of index i: the codes
            depend on (seed, values, axis), never on memory layout or threads.
        random_bits: stochastic rounding with r in 1..64 random bits (P(up) =
            floor(f 2^r) / 2^r); None: the exact probability.
        scale_overflow: MX only: ``"clamp"`` (X > 127 becomes 127 and the elements
            saturate, counted; Microsoft's microxcaling reference gives such a block
            a NaN scale instead) or ``"error"`` (OverflowError). Other formats take
            the default and raise OverflowError where their scales overflow
            (``"error"`` is refused for them).
        tensor_range: (lo, hi), finite, for a format with one scale per tensor
            (NVFP4's fp32 scale, a per-tensor integer; `tensor_scaled`) when x
            is a part of a larger tensor (a batch part of a product): the
            scale is that of the tensor whose finite values span [lo, hi]
            (`finite_range`), not of x alone; it must hold x's finite values.
        return_stats: also return a `BlockStats`.

    Returns:
        element codes in x's shape (uint8, uint16 above 8 bits) and scales:
        MX: uint8 E8M0 codes, shape x.shape with ``axis`` replaced by the
        number of blocks ceil(n / B); NVFP4: `NVFP4Scales`; integers: `IntScales`
        (shape () per tensor, (C,) per channel, block shape per group).

    Raises:
        ValueError: axis out of range, NaN/inf into a scaled-integer format, a
            rounding other than nearest_even / stochastic (stochastic for a
            scaled-integer format), random_bits without stochastic rounding.
        TypeError: return_stats not True or False.
        OverflowError: a scale beyond its format's range (fp32/bf16 integer
            scales, NVFP4's fp32 tensor scale, MX with ``scale_overflow="error"``).

    >>> s, c = block_encode([[1.0, 2.0, 3.0, 4.0]], "bfp<int8,2>")
    >>> s.tolist(), c.tolist()
    ([[122, 123]], [[32, 64, 48, 64]])
    >>> s, c = block_encode(np.full(100_000, 4.5), "mxfp4", rounding="stochastic", seed=1)
    >>> int(s[0]), sorted(set(c.tolist())), round(float(np.mean(c == 7)), 2)  # 4.5: 4 or 6, P(6) = 1/4
    (127, [6, 7], 0.25)
    """
    check_seed(seed, "block_encode")
    check_bool(return_stats, "block_encode", "return_stats")
    f = block_format_arg(fmt, "block_encode", "fmt")
    # a float64 array is read as it is (the kernels only read it); other input is copied to float64
    xa = x if type(x) is np.ndarray and x.dtype == np.float64 else as_real(x, "block_encode")
    ax = _norm_axis(axis, xa.ndim, "block_encode")
    scale_overflow = parse_choice(ScaleOverflow, scale_overflow, "block_encode", "scale_overflow")
    if scale_overflow is not ScaleOverflow.CLAMP and not isinstance(f, MXFormat):
        raise ValueError(f"block_encode: scale_overflow={scale_overflow} applies to MX formats (an E8M0 scale"
                         f" beyond 127); {f}'s scales raise OverflowError where they overflow")
    rnd, rbits = parse_block_rounding(rounding, random_bits, "block_encode")
    stochastic = rnd is Rounding.STOCHASTIC
    if tensor_range is not None:
        _check_tensor_range(tensor_range, xa, f)
    if isinstance(f, ScaledIntFormat):
        if stochastic:
            raise ValueError(f"block_encode: rounding='stochastic' applies to MX and NVFP4 formats; {f}"
                             " rounds to nearest_even only")
        return _int_encode(xa, f, ax, return_stats, tensor_range)
    key = seed_key(seed, "block_encode") if stochastic else np.uint64(0)
    if xa.ndim == 0:
        xa = xa.reshape(1)
        zero_d = True
    else:
        zero_d = False
    x2, moved = _to_rows(xa, ax)
    R, n = x2.shape
    B = f.block_size
    nb = max(1, -(-n // B)) if n else 0
    stats = np.zeros((R * nb, 3), np.int64)
    if isinstance(f, MXFormat):
        elem = _mx_args(f)
        scodes = np.zeros((R, nb), np.uint8)
        ecodes = np.zeros((R, n), _code_dtype(elem[4]))
        if x2.size:
            if stochastic:
                mx_encode_sr_kernel(x2, x2.view(np.uint64), B, *elem, key, rbits, scodes, ecodes, stats)
            else:
                mx_encode_kernel(x2, x2.view(np.uint64), B, *elem, P2, scodes, ecodes, stats)
        if scale_overflow is ScaleOverflow.ERROR and stats[:, 1].any():
            first = int(np.flatnonzero(stats[:, 1])[0])
            raise OverflowError(
                f"block_encode: {int(stats[:, 1].sum())} block(s) of x need a scale above 2^127, the E8M0"
                f" maximum (first: block {first % nb} of row {first // nb}); scale_overflow='clamp' saturates"
            )
        scales: Any = scodes.reshape(_blocks_shape(moved, nb))
        scales = _from_last(scales, ax)
    else:
        lo, hi = finite_range(x2) if tensor_range is None else tensor_range
        g = _nv_global(max(-lo, hi))
        scodes = np.zeros((R, nb), np.uint8)
        ecodes = np.zeros((R, n), np.uint8)
        if x2.size and stochastic:
            nv_encode_sr_kernel(x2, x2.view(np.uint64), B, g, _ne_saturating(E4M3), key, rbits, scodes,
                                ecodes, stats)
        elif x2.size:
            nv_encode_kernel(x2, B, g, _ne_saturating(E4M3), scodes, ecodes, stats)
        sc = _from_last(scodes.reshape(_blocks_shape(moved, nb)), ax)
        scales = NVFP4Scales(np.array(np.float32(g)).view(np.uint32), sc)
    codes = _from_last(ecodes.reshape(moved), ax)
    if zero_d:
        codes = codes.reshape(())
        if isinstance(scales, np.ndarray):
            scales = scales.reshape(())
        else:
            scales = NVFP4Scales(scales.tensor, scales.block.reshape(()))
    if return_stats:
        st = BlockStats(int(xa.size), *stats.sum(axis=0).tolist())
        return scales, codes, st
    return scales, codes


def tensor_scaled(f: BlockFormat) -> bool:
    """Whether ``f`` has one scale spanning the whole tensor: NVFP4 (its fp32 scale beside the block
    scales) or a per-tensor integer format."""
    return isinstance(f, NVFP4Format) or (isinstance(f, ScaledIntFormat)
                                          and f.granularity is ScaleGranularity.TENSOR)


def finite_range(x: np.ndarray) -> tuple[float, float]:
    """(min, max) of the finite values of x, (0.0, 0.0) when it has none.

    >>> finite_range(np.array([2.0, -np.inf, -3.0, np.nan]))
    (-3.0, 2.0)
    """
    if x.size:
        lo, hi = float(x.min()), float(x.max())  # NaN or +-inf among them only where x holds one
        if math.isfinite(lo) and math.isfinite(hi):
            return lo, hi
    finite = x[np.isfinite(x)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def _check_tensor_range(tensor_range: object, xa: np.ndarray, f: BlockFormat) -> None:
    """Refuse a ``tensor_range`` that is not a finite (lo, hi) with lo <= hi holding x's finite values, or
    one given for a format without a tensor-wide scale."""
    if not tensor_scaled(f):
        raise ValueError(f"block_encode: tensor_range applies to a format with one scale per tensor (nvfp4, a"
                         f" per-tensor integer); {f} has none")
    try:
        lo, hi = (float(v) for v in tensor_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        lo = hi = math.nan
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"block_encode: tensor_range={tensor_range!r} must be (lo, hi), finite, lo <= hi")
    xlo, xhi = finite_range(xa)
    if xa.size and not (lo <= xlo and xhi <= hi):
        raise ValueError(f"block_encode: tensor_range={tensor_range!r} must hold x's finite values, which"
                         f" span [{xlo!r}, {xhi!r}]")


def _nv_global(amax: float) -> float:
    """The NVFP4 per-tensor scale g = fp32(amax) / 2688 in fp32 (1.0 for amax = 0)."""
    if amax == 0.0:
        return 1.0
    with np.errstate(over="ignore"):
        a32 = np.float32(amax)
    if not np.isfinite(a32):
        raise OverflowError(f"block_encode: nvfp4 tensor amax={amax!r} exceeds the fp32 range of its"
                            " tensor scale")
    g = float(a32 / np.float32(2688.0))
    return g if g > 0 else FP32_TINY


def _fp32_scales(mn: np.ndarray, mx: np.ndarray, f: ScaledIntFormat) -> np.ndarray:
    """The fp32 scale per block (float64 array holding fp32 values)."""
    with np.errstate(over="ignore"):
        if f.symmetric:
            a32 = np.maximum(np.abs(mn), np.abs(mx)).astype(np.float32)
            s = a32 / np.float32(f.qmax)
        else:
            lo32, hi32 = mn.astype(np.float32), mx.astype(np.float32)
            s = (hi32 - lo32) / np.float32((1 << f.bits) - 1)
    if not np.all(np.isfinite(s)):
        raise OverflowError(f"block_encode: {f}: a scale exceeds the fp32 range"
                            f" (|x| up to {np.max(np.abs(mx))!r})")
    zero_range = (mn == 0) & (mx == 0)
    s = np.where(zero_range, np.float32(1.0), s)
    s = np.where(s == 0, np.float32(FP32_TINY), s)
    return s.astype(np.float64)


def _store_scales(s32: np.ndarray, f: ScaledIntFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(scale values as float64, scale codes, shift or None) for the format's scale storage."""
    if f.scale is ScaleKind.FP32:
        return s32, s32.astype(np.float32).view(np.uint32), None
    if f.scale is ScaleKind.BF16:
        v = emu_quantize(s32, "bf16", overflow="saturate")
        v = np.where(v == 0, math.ldexp(1.0, -133), v)
        return v, (v.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16), None
    if f.scale is ScaleKind.POW2:
        m, e = np.frexp(s32)
        e = np.where(m == 0.5, e - 1, e).astype(np.int64)
        if (e > XMAX).any():
            raise OverflowError(f"block_encode: {f}: a power-of-two scale above 2^127 (E8M0 range)")
        e = np.maximum(e, XMIN)
        return np.ldexp(1.0, e), (e + E8M0_BIAS).astype(np.uint8), None
    m, e = np.frexp(s32)  # fixmul: fp32 significands fit M0 exactly
    m0 = np.ldexp(m, 31).astype(np.int64)
    return s32, m0.astype(np.int32), e.astype(np.int16)


def _int_encode(xa: np.ndarray, f: ScaledIntFormat, ax: int, return_stats: bool,
                tensor_range: tuple[float, float] | None = None) -> Any:
    if f.granularity is ScaleGranularity.TENSOR:
        x2, moved, B = xa.reshape(1, -1), None, max(1, xa.size)
    elif f.granularity is ScaleGranularity.CHANNEL:
        if xa.ndim == 0:
            raise ValueError(f"block_encode: {f} is per channel and needs x with at least one axis")
        xm = np.moveaxis(xa, ax, 0)
        x2 = np.ascontiguousarray(xm).reshape(xm.shape[0], math.prod(xm.shape[1:]))  # (no -1: 0 channels)
        moved, B = xm.shape, max(1, x2.shape[1])
    else:
        xr = xa.reshape(1) if xa.ndim == 0 else xa
        x2, moved = _to_rows(xr, ax if xa.ndim else 0)
        B = f.group_size
    R, n = x2.shape
    nb = max(1, -(-n // B)) if n else (1 if f.granularity is not ScaleGranularity.GROUP else 0)
    mm = np.zeros((R, nb, 3), np.float64)
    if x2.size:
        block_minmax(x2, B, mm)
    if mm[:, :, 2].any():
        raise ValueError(f"block_encode: x holds NaN or +-inf, which {f} (no NaN code, no inf) cannot encode")
    if tensor_range is not None:  # one scale for the tensor x is part of
        mm[0, 0, :2] = tensor_range
    s32 = _fp32_scales(mm[:, :, 0], mm[:, :, 1], f)
    sv, scode, shift = _store_scales(s32, f)
    if f.symmetric:
        zp = np.zeros((R, nb), np.int64)
    else:
        lo = mm[:, :, 0].astype(np.float32).astype(np.float64)
        r = np.array([div_rne(float(a), float(s)) for a, s in zip(lo.ravel(), sv.ravel(), strict=True)])
        zp = np.clip(f.qmin - r.reshape(lo.shape), f.qmin, f.qmax).astype(np.int64)
    ecodes = np.zeros((R, n), _code_dtype(f.bits))
    stats = np.zeros((R * nb, 3), np.int64)
    if x2.size:
        int_encode_kernel(x2, B, np.ascontiguousarray(sv), zp, f.qmin, f.qmax, f.bits, ecodes, stats)

    def shape_scales(a: np.ndarray) -> np.ndarray:
        if f.granularity is ScaleGranularity.TENSOR:
            return a.reshape(())
        if f.granularity is ScaleGranularity.CHANNEL:
            return a.reshape(-1)
        return _from_last(a.reshape(_blocks_shape(moved, nb)), ax) if xa.ndim else a.reshape(())

    if f.granularity is ScaleGranularity.TENSOR:
        codes = ecodes.reshape(xa.shape)
    elif f.granularity is ScaleGranularity.CHANNEL:
        codes = np.moveaxis(ecodes.reshape(moved), 0, ax)
    else:
        codes = _from_last(ecodes.reshape(moved), ax) if xa.ndim else ecodes.reshape(())
    scales = IntScales(shape_scales(scode), None if f.symmetric else shape_scales(zp.astype(np.int32)),
                       None if shift is None else shape_scales(shift))
    if return_stats:
        return scales, codes, BlockStats(int(xa.size), int(stats[:, 0].sum()), 0, 0)
    return scales, codes


@lru_cache(maxsize=64)
def elem_table(el: Format) -> np.ndarray:
    """The value of every code of an element format (read-only, cached)."""
    t = np.asarray(emu_decode(np.arange(1 << el.bits, dtype=np.uint64), el), np.float64)
    t.flags.writeable = False
    return t



def _check_codes(c: object, bits: int, what: str, as_int64: bool = True) -> np.ndarray:
    """Integer codes in [0, 2^bits), as int64 (or in their own integer dtype)."""
    a = np.asarray(c)
    if a.dtype.kind not in "iu":
        raise TypeError(f"block_decode: {what} have dtype {a.dtype}; expected integer codes")
    if a.size and (a.min() < 0 or a.max() >= (1 << bits)):
        raise ValueError(f"block_decode: {what} outside [0, {(1 << bits) - 1}]")
    return a.astype(np.int64) if as_int64 else a


def expand(scale_rows: np.ndarray, B: int, n: int) -> np.ndarray:
    return np.repeat(scale_rows, B, axis=-1)[..., :n]


def block_decode(scales: Any, codes: object, fmt: str | BlockFormat, axis: int = -1) -> np.ndarray:
    """Exact float64 values of ``(scales, codes)`` from `block_encode` (same ``axis``).

    Raises:
        TypeError: codes or scale fields that are not integers (an `IntScales` field of floats is not
            read as bit patterns), scales of another type than block_encode returns for the format.
        ValueError: codes out of range, scales of the wrong shape for the codes, format and axis, scale
            codes out of range (or, for fp32/bf16 scales, of NaN or inf), a zero point or shift the
            format has none of (or missing where it has one), axis out of range.

    >>> s, c = block_encode([3.0, -0.5], "mxfp8_e4m3")
    >>> block_decode(s, c, "mxfp8_e4m3").tolist()
    [3.0, -0.5]
    """
    f = block_format_arg(fmt, "block_decode", "fmt")
    if isinstance(f, ScaledIntFormat):
        return _int_decode(scales, codes, f, axis)
    el = f.element
    c = _check_codes(codes, el.bits, "element codes", as_int64=False)
    ax = _norm_axis(axis, c.ndim, "block_decode")
    zero_d = c.ndim == 0
    if zero_d:
        c = c.reshape(1)
    n = c.shape[ax]
    nb = -(-n // f.block_size)
    if isinstance(f, NVFP4Format) and not isinstance(scales, NVFP4Scales):
        raise TypeError("block_decode: nvfp4 scales must be the NVFP4Scales that block_encode returned")
    sc = scales.block if isinstance(f, NVFP4Format) else scales
    s = _check_codes(sc, 8, "scale codes", as_int64=False)
    if zero_d:
        s = s.reshape(1)
    want = list(c.shape)
    want[ax] = nb
    if list(s.shape) != want:
        raise ValueError(f"block_decode: scales have shape {s.shape}; codes of shape {c.shape} with block"
                         " size"
                         f" {f.block_size} along axis {ax} need {tuple(want)}")
    if isinstance(f, NVFP4Format):
        t = _check_codes(scales.tensor, 32, "tensor scale codes")  # the fp32 bits, one code
        if t.ndim:
            raise ValueError(f"block_decode: the tensor scale has shape {t.shape}; one fp32 code (0-d)")
    return _decode_values(s, c, scales.tensor if isinstance(f, NVFP4Format) else None, f, ax, zero_d)


def _decode_values(s: np.ndarray, c: np.ndarray, tensor: Any, f: MXFormat | NVFP4Format, ax: int,
                   zero_d: bool) -> np.ndarray:
    """`block_decode` of MX or NVFP4 scale codes ``s`` and element codes ``c`` (of at least one dimension;
    ``zero_d``: the values of a 0-d x) already known to fit (an encoder's own, or checked), ``tensor`` the
    fp32 tensor scale's code of NVFP4."""
    if isinstance(f, MXFormat):
        slut = E8M0_VALUES
    else:
        slut = elem_table(E4M3) * float(np.asarray(tensor).astype(np.uint32).view(np.float32))
    c2, moved = _to_rows(c, ax)
    s2 = _to_rows(s, ax)[0]
    out2 = np.empty(c2.shape, np.float64)
    decode_kernel(c2, s2, elem_table(f.element), slut, f.block_size, out2)
    out = _from_last(out2.reshape(moved), ax)
    return out.reshape(()) if zero_d else out


def int_scale_values(scales: IntScales, f: ScaledIntFormat) -> np.ndarray:
    sc = np.asarray(scales.scale)
    if f.scale is ScaleKind.FP32:
        return sc.astype(np.uint32).view(np.float32).astype(np.float64)
    if f.scale is ScaleKind.BF16:
        return (sc.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    if f.scale is ScaleKind.POW2:
        return np.ldexp(1.0, sc.astype(np.int64) - E8M0_BIAS)
    if scales.shift is None:
        raise ValueError("block_decode: fixmul scales need the shift array")
    return np.ldexp(sc.astype(np.float64), np.asarray(scales.shift, np.int64) - 31)


#: (lowest, highest, what) of the scale codes of each `ScaleKind`
_SCALE_CODES = {ScaleKind.FP32: (0, (1 << 32) - 1, "fp32 bit patterns"),
                ScaleKind.BF16: (0, (1 << 16) - 1, "bf16 bit patterns"),
                ScaleKind.POW2: (0, 254, "E8M0 codes, 255 is NaN"),
                ScaleKind.FIXMUL: (-(1 << 31), (1 << 31) - 1, "int32 M0")}


def _int_field(v: object, name: str, lo: int, hi: int, what: str, want: tuple[int, ...], where: str
               ) -> np.ndarray:
    """An `IntScales` field as int64: integers (TypeError) of shape ``want`` in [lo, hi] (ValueError)."""
    a = np.asarray(v)
    if a.dtype.kind not in "iu":
        raise TypeError(f"block_decode: IntScales.{name} has dtype {a.dtype}; expected integer codes"
                        f" ({what})")
    if a.shape != want:
        raise ValueError(f"block_decode: IntScales.{name} has shape {a.shape}; {where}: shape {want}")
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        raise ValueError(f"block_decode: IntScales.{name} holds values outside [{lo}, {hi}] ({what})")
    return a.astype(np.int64)


def _check_int_scales(scales: IntScales, c: np.ndarray, f: ScaledIntFormat, ax: int) -> None:
    """Refuse an `IntScales` that `block_encode` could not have returned for codes ``c`` of ``f`` along
    ``ax``: fields of another dtype, shape or range, a zero point or shift the format has none of."""
    if f.granularity is ScaleGranularity.TENSOR or c.ndim == 0:
        want, where = (), f"{f} codes of shape {c.shape} have one scale"
    elif f.granularity is ScaleGranularity.CHANNEL:
        want, where = (c.shape[ax],), f"{f} codes of shape {c.shape} have one scale per index along axis {ax}"
    else:
        want = c.shape[:ax] + (-(-c.shape[ax] // f.group_size),) + c.shape[ax + 1:]  # type: ignore[operator]
        where = f"{f} codes of shape {c.shape} have one scale per group of {f.group_size} along axis {ax}"
    sc = _int_field(scales.scale, "scale", *_SCALE_CODES[f.scale], want, where)
    if f.scale in (ScaleKind.FP32, ScaleKind.BF16):
        bits32 = sc.astype(np.uint32) << np.uint32(16 if f.scale is ScaleKind.BF16 else 0)
        if not np.isfinite(bits32.view(np.float32)).all():
            raise ValueError(f"block_decode: IntScales.scale holds {f.scale} codes of NaN or inf")
    if f.symmetric != (scales.zero_point is None):
        raise ValueError("block_decode: IntScales.zero_point " + (f"given, but {f} is symmetric and has none"
                         if f.symmetric else f"is None, but {f} is asymmetric and needs one"))
    if scales.zero_point is not None:
        _int_field(scales.zero_point, "zero_point", f.qmin, f.qmax, "zero points in the codes' range", want,
                   where)
    if (f.scale is ScaleKind.FIXMUL) != (scales.shift is not None):
        raise ValueError("block_decode: IntScales.shift " + (
            f"is None, but {f} needs one (fixmul scales)" if scales.shift is None
            else f"given, but {f} has {f.scale} scales, without a shift"))
    if scales.shift is not None:
        _int_field(scales.shift, "shift", -(1 << 15), (1 << 15) - 1, "int16 shifts", want, where)


def _int_decode(scales: IntScales, codes: object, f: ScaledIntFormat, axis: int) -> np.ndarray:
    if not isinstance(scales, IntScales):
        raise TypeError("block_decode: scaled-integer scales must be the IntScales that block_encode"
                        " returned")
    c = _check_codes(codes, f.bits, "element codes")
    ax = _norm_axis(axis, c.ndim, "block_decode")
    if f.granularity is ScaleGranularity.CHANNEL and c.ndim == 0:
        raise ValueError(f"block_decode: {f} is per channel and needs codes with at least one axis")
    _check_int_scales(scales, c, f, ax)
    q = np.where(c >= (1 << (f.bits - 1)), c - (1 << f.bits), c)
    sv = int_scale_values(scales, f)
    zp = np.zeros(sv.shape, np.int64) if scales.zero_point is None else np.asarray(scales.zero_point,
                                                                                    np.int64)
    if f.granularity is ScaleGranularity.TENSOR:
        return (q - zp) * sv
    if f.granularity is ScaleGranularity.CHANNEL:
        shape = [1] * c.ndim
        shape[ax] = -1
        return (q - zp.reshape(shape)) * sv.reshape(shape)
    if c.ndim == 0:
        return (q - zp) * sv
    n = c.shape[ax]

    def ex(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(expand(np.moveaxis(a, ax, -1), f.group_size, n), -1, ax)

    return (q - ex(zp)) * ex(sv)


def block_quantize(x: object, fmt: str | BlockFormat, axis: int = -1, **kwargs: Any) -> np.ndarray:
    """x rounded to a block-scaled format: ``block_decode(*block_encode(x))``, float64; keyword arguments
    (``rounding``, ``seed``, ``random_bits``, ``scale_overflow``, ``tensor_range``, ``return_stats``) as
    `block_encode`'s: with ``return_stats`` the values and the `BlockStats`.

    >>> block_quantize([1.0, -0.3, 5.0, 7.5], "mxfp4").tolist()
    [1.0, -0.5, 4.0, 6.0]
    >>> block_quantize([1.0, 100.0], "mxfp4", return_stats=True)[1].saturated
    0
    """
    f = block_format_arg(fmt, "block_quantize", "fmt")
    if "return_stats" in kwargs:
        check_bool(kwargs["return_stats"], "block_quantize", "return_stats")
    out = block_encode(x, f, axis, **kwargs)
    if isinstance(f, ScaledIntFormat):
        vals = block_decode(out[0], out[1], f, axis)
    else:  # the encoder's own codes: decoded without block_decode's checks of a caller's codes
        nv = isinstance(f, NVFP4Format)
        codes, sc = np.asarray(out[1]), np.asarray(out[0].block if nv else out[0])
        zero_d = codes.ndim == 0
        ax = 0 if zero_d else _norm_axis(axis, codes.ndim, "block_quantize")
        vals = _decode_values(sc.reshape(-1) if zero_d else sc, codes.reshape(-1) if zero_d else codes,
                              out[0].tensor if nv else None, f, ax, zero_d)
    return (vals, out[2]) if kwargs.get("return_stats") else vals

