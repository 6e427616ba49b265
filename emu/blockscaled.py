"""Block-scaled formats: block floating point, OCP MX v1.0, NVFP4 and scaled integers.

A block-scaled tensor stores small element codes plus one scale per block of
consecutive elements along an axis (default: the last). Three families, each
an immutable dataclass with a readable name that `block_format` parses:

=================  ===========================================================  ==========================
class              scale                                                        names
=================  ===========================================================  ==========================
`MXFormat`         one E8M0 exponent X per block of B: 2^X, X in [-127, 127]     mxfp8_e4m3, mxfp8_e5m2,
                   (code X + 127; code 255 = NaN); elements a small float or     mxfp6_e2m3, mxfp6_e3m2,
                   a signed integer (block floating point)                       mxfp4, mxint8,
                                                                                 bfp<int8,16>, bfp<e2m1,32,ceil>
`NVFP4Format`      an E4M3 scale per block of 16 and an fp32 scale per tensor    nvfp4, nvfp4<32>
`ScaledIntFormat`  one scale (fp32, bf16, power of two or a fixed-point          int8, int8_channel, int4_g128,
                   multiplier M0 * 2^(shift-31)) per tensor, per channel or      int8_asym, int8_channel_bf16,
                   per group of G; symmetric or with a zero point                int8_fixmul
=================  ===========================================================  ==========================

Every format has ``encode(x, axis=-1) -> (scales, codes)``, ``decode(scales,
codes, axis=-1) -> float64`` (exact values) and ``quantize(x, axis=-1)`` (=
decode(encode(x))). The exact rules (docs/blockscaled.md) in short:

MX / block floating point (OCP Microscaling v1.0, section 6.3)
    Blocks are B consecutive elements along ``axis``; a last partial block is a
    shorter block. ``amax`` = the block's largest magnitude. Rule ``ocp``:
    X = floor(log2 amax) - emax_elem (emax_elem: exponent of the element
    format's largest power of two, 8 for E4M3, 2 for E2M1, 0 for MX INT8);
    rule ``ceil``: the smallest X with amax <= elem_max * 2^X (never clips).
    X is clamped to [-127, 127] (``scale_overflow="error"`` raises instead of
    clamping down from above). Element = v / 2^X rounded to nearest, ties to
    even, saturating at +-elem_max. A block holding NaN or +-inf gets the NaN
    scale code 255 and element codes 0 (it decodes to NaN throughout). An
    all-zero block gets scale code 0 (2^-127); its zeros keep their sign where
    the element format has -0.

    Worked example (mxfp4, elements E2M1 = {0, 0.5, 1, 1.5, 2, 3, 4, 6}):
    the block [1.0, -0.3, 5.0, 7.5, 0, ...] has amax 7.5, floor(log2 7.5) = 2,
    emax(E2M1) = 2, so X = 0 (scale code 127); elements 1.0 -> 1 (0b0010),
    -0.3 -> -0.5 (0b1001), 5.0 -> 4 (tie between 4 and 6, even significand:
    0b0110), 7.5 -> 6 (saturates, 0b0111).

NVFP4 (recipe, fp32 arithmetic, every operation rounded to nearest even)
    g = fp32(amax_tensor) / 2688 (fp32 division; 2688 = 448 * 6), 1.0 for an
    all-zero tensor; per block of 16: s = e4m3(fp32(fp32(amax_block) / 6) / g)
    (saturating at 448); element = e2m1(x / (s * g)) with the quotient rounded
    exactly (one rounding, ties to even, saturating at 6). Value = e2m1 * s * g.

Scaled integers (W = 2..16 bits)
    Symmetric: s = fp32(amax) / (2^(W-1) - 1) in fp32, q = round_even(x / s)
    clamped to [-(2^(W-1)-1), 2^(W-1)-1]. Asymmetric: lo = fp32(min(x, 0)),
    hi = fp32(max(x, 0)), s = (hi - lo) / (2^W - 1) in fp32, zero point z =
    clamp(-2^(W-1) - round_even(lo / s)), q = clamp(round_even(x / s) + z) in
    [-2^(W-1), 2^(W-1)-1]; value (q - z) * s. The fp32 scale is then stored as
    ``fp32``, rounded to ``bf16``, rounded up to a power of two (``pow2``, E8M0
    code) or written exactly as ``fixmul`` (M0 in [2^30, 2^31), shift n, scale
    M0 * 2^(n-31)). x / s is rounded exactly (no double rounding).

`block_matmul` emulates the MAC of two block-scaled operands (exact products
per block, one multiplication by the block scales, one rounding into the
accumulator per block); `requantize` / `int_matmul_requant` the integer path of
gemmlowp / TFLite. Fast paths are numba kernels; ``emu._ref_block`` is the slow
exact reference they are tested against bit for bit.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
from numba import njit, prange

from .convert import decode as _emu_decode
from .convert import encode as _emu_encode
from .convert import quantize as _emu_quantize
from .formats import FixedFormat, FloatFormat, Format, _check_int
from .modes import Overflow, Rounding, parse_overflow, parse_rounding
from .registry import get_format

__all__ = [
    "BLOCK_MAC_PRESETS",
    "BlockMAC",
    "BlockMACStats",
    "BlockStats",
    "IntScales",
    "MXFormat",
    "MX_FORMATS",
    "NVFP4Format",
    "NVFP4Scales",
    "ScaledIntFormat",
    "block_decode",
    "block_dot",
    "block_encode",
    "block_format",
    "block_matmul",
    "block_quantize",
    "int_matmul_requant",
    "multiply_by_quantized_multiplier",
    "quantize_multiplier",
    "requantize",
]

_E8M0_BIAS = 127
_E8M0_NAN = 255
#: E8M0 scale values by code: 2^(c - 127), code 255 NaN
_E8M0_VALUES = np.where(np.arange(256) == _E8M0_NAN, np.nan, np.ldexp(1.0, np.arange(256) - _E8M0_BIAS))
_XMIN, _XMAX = -127, 127
_E4M3 = FloatFormat(4, 3, special="fn")
_E2M1 = FloatFormat(2, 1, special="none")
_FP32_TINY = math.ldexp(1.0, -149)
_RULES = ("ocp", "ceil")
_GRANULARITIES = ("tensor", "channel", "group")
_SCALE_KINDS = ("fp32", "bf16", "pow2", "fixmul")


# --- format descriptors --------------------------------------------------------------------------


def _elem_emax(el: Format) -> int:
    """Exponent of the largest power of two <= the element format's max."""
    return math.frexp(el.max)[1] - 1


def _elem_name(el: Format) -> str:
    if isinstance(el, FixedFormat) and el.frac_bits == 0:
        return f"int{el.bits}"
    return el.name


class _BlockMethods:
    """encode / decode / quantize of a block format, along ``axis`` (`block_encode`, `block_decode`)."""

    def encode(self, x: object, axis: int = -1, **kwargs: Any) -> Any:
        """(scales, element codes) of x; keyword arguments as `block_encode`'s."""
        return block_encode(x, self, axis, **kwargs)

    def decode(self, scales: Any, codes: object, axis: int = -1) -> np.ndarray:
        """Exact float64 values of (scales, codes); see `block_decode`."""
        return block_decode(scales, codes, self, axis)

    def quantize(self, x: object, axis: int = -1, **kwargs: Any) -> np.ndarray:
        """decode(encode(x)): x rounded to the format."""
        return block_quantize(x, self, axis, **kwargs)


@dataclass(frozen=True)
class MXFormat(_BlockMethods):
    """Block floating point with one shared power-of-two scale per block (OCP MX v1.0).

    Layout: per block of ``block_size`` elements along the block axis, one
    8-bit E8M0 scale code c (value 2^(c-127); c = 255 is NaN) and
    ``block_size`` element codes of ``element`` (a `FloatFormat` of at most 16
    bits or a signed `FixedFormat` of 2..16 bits; integer elements are encoded
    symmetrically in [-qmax, qmax], the code -2^(W-1) decodes but is never
    produced). Value of element i: decode(element code) * 2^(c - 127).

    ``rule``: ``"ocp"`` (X = floor(log2 amax) - emax_elem, elements saturate)
    or ``"ceil"`` (smallest X with amax <= elem_max * 2^X: no element clips).

    >>> f = block_format("mxfp4")
    >>> (str(f), f.block_size, f.element.name, f.bits_per_element)
    ('mxfp4', 32, 'e2m1', 4.25)
    >>> s, c = f.encode([1.0, -0.3, 5.0, 7.5])
    >>> int(s[0]), [int(v) for v in c], f.decode(s, c).tolist()
    (127, [2, 9, 6, 7], [1.0, -0.5, 4.0, 6.0])
    """

    element: Format
    block_size: int = 32
    rule: str = "ocp"
    kind: ClassVar[str] = "mx"

    def __post_init__(self) -> None:
        fn = "MXFormat"
        el = get_format(self.element) if isinstance(self.element, str) else self.element
        if isinstance(el, FloatFormat):
            if el.bits > 16:
                raise ValueError(f"{fn}: element={el} has {el.bits} bits; allowed element widths are 2..16 bits")
        elif isinstance(el, FixedFormat):
            if not el.signed or not 2 <= el.bits <= 16:
                raise ValueError(f"{fn}: element={el} must be a signed fixed/integer format of 2..16 bits")
        else:
            raise TypeError(f"{fn}: element={self.element!r} must be a FloatFormat or a signed FixedFormat")
        object.__setattr__(self, "element", el)
        object.__setattr__(self, "block_size", _check_int(fn, "block_size", self.block_size, 1, 1 << 24))
        if self.rule not in _RULES:
            raise ValueError(f"{fn}: rule={self.rule!r} is not one of {_RULES}")

    @property
    def name(self) -> str:
        """The MX name (``mxfp8_e4m3`` ...) or ``bfp<element,B[,ceil]>``."""
        for key, (el, b) in _MX_DEFS.items():
            if el == self.element and b == self.block_size and self.rule == "ocp":
                return key
        rule = ",ceil" if self.rule == "ceil" else ""
        return f"bfp<{_elem_name(self.element)},{self.block_size}{rule}>"

    def __str__(self) -> str:
        return self.name

    @property
    def bits_per_element(self) -> float:
        """Storage per element: element bits + 8 / block_size."""
        return self.element.bits + 8 / self.block_size


@dataclass(frozen=True)
class NVFP4Format(_BlockMethods):
    """NVFP4: E2M1 elements, an E4M3 scale per block, an fp32 scale per tensor.

    Layout: per block of ``block_size`` (16) elements one E4M3 code (uint8)
    and 4-bit E2M1 element codes (0bS_EE_M, one per uint8); per tensor one fp32
    bit pattern (uint32). Value = e2m1 * e4m3 * fp32. Recipe (module docstring):
    g = fp32(amax_t)/2688, s = e4m3((amax_b/6)/g), element = e2m1(x/(s g)).

    >>> f = block_format("nvfp4")
    >>> sc, c = f.encode([0.0, 1.0, -3.0, 6.0])   # g = fp32(6 / 2688), s = 448 (0x7E)
    >>> int(sc.block[0]), c.tolist()                # x / (448 g): 1.0 -> 0b0010, -3.0 -> 0b1101
    (126, [0, 2, 13, 7])
    """

    block_size: int = 16
    kind: ClassVar[str] = "nvfp4"

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_size", _check_int("NVFP4Format", "block_size", self.block_size, 1, 1 << 24))

    @property
    def element(self) -> FloatFormat:
        """E2M1."""
        return _E2M1

    @property
    def name(self) -> str:
        """``nvfp4`` (block 16) or ``nvfp4<B>``."""
        return "nvfp4" if self.block_size == 16 else f"nvfp4<{self.block_size}>"

    def __str__(self) -> str:
        return self.name

    @property
    def bits_per_element(self) -> float:
        """4 + 8 / block_size (the per-tensor fp32 scale not counted)."""
        return 4 + 8 / self.block_size


@dataclass(frozen=True)
class ScaledIntFormat(_BlockMethods):
    """W-bit integers with a scale per tensor, per channel or per group of G.

    Layout: element codes are W-bit two's complement patterns (uint8 for W <=
    8, else uint16); scales are an `IntScales`: ``scale`` holds fp32 bit
    patterns (uint32), bf16 bit patterns (uint16), E8M0 codes (uint8, value
    2^(c-127)) or M0 (int32, with ``shift`` int16: value M0 * 2^(shift-31));
    ``zero_point`` (int32) for asymmetric formats. Value = (q - z) * scale.

    ``granularity``: ``tensor`` (one scale), ``channel`` (one scale per index
    along ``axis``), ``group`` (groups of ``group_size`` consecutive elements
    along ``axis``, a last partial group allowed).

    >>> f = block_format("int8_channel")
    >>> (f.bits, f.symmetric, f.granularity, f.scale)
    (8, True, 'channel', 'fp32')
    >>> block_format("int4_asym_g128_bf16").name
    'int4_asym_g128_bf16'
    """

    bits: int = 8
    symmetric: bool = True
    granularity: str = "tensor"
    group_size: int | None = None
    scale: str = "fp32"
    kind: ClassVar[str] = "int"

    def __post_init__(self) -> None:
        fn = "ScaledIntFormat"
        _check_int(fn, "bits", self.bits, 2, 16)
        if self.granularity not in _GRANULARITIES:
            raise ValueError(f"{fn}: granularity={self.granularity!r} is not one of {_GRANULARITIES}")
        if self.granularity == "group":
            if self.group_size is None:
                raise ValueError(f"{fn}: granularity='group' needs group_size (an int in [1, 2^24])")
            object.__setattr__(self, "group_size", _check_int(fn, "group_size", self.group_size, 1, 1 << 24))
        elif self.group_size is not None:
            raise ValueError(f"{fn}: group_size={self.group_size!r} applies only to granularity='group'")
        if self.scale not in _SCALE_KINDS:
            raise ValueError(f"{fn}: scale={self.scale!r} is not one of {_SCALE_KINDS}")
        if not isinstance(self.symmetric, (bool, np.bool_)):
            raise TypeError(f"{fn}: symmetric={self.symmetric!r} must be a bool")

    @property
    def name(self) -> str:
        """``int<W>[_asym][_channel|_g<G>][_bf16|_pow2|_fixmul]``."""
        g = {"tensor": "", "channel": "_channel"}.get(self.granularity, f"_g{self.group_size}")
        s = "" if self.scale == "fp32" else f"_{self.scale}"
        return f"int{self.bits}{'' if self.symmetric else '_asym'}{g}{s}"

    def __str__(self) -> str:
        return self.name

    @property
    def qmin(self) -> int:
        """Smallest code value: -(2^(W-1) - 1) symmetric, -2^(W-1) asymmetric."""
        return -(1 << (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def qmax(self) -> int:
        """Largest code value, 2^(W-1) - 1."""
        return (1 << (self.bits - 1)) - 1


BlockFormat = MXFormat | NVFP4Format | ScaledIntFormat


@dataclass(frozen=True)
class NVFP4Scales:
    """The scales of an NVFP4 tensor: ``tensor`` (0-d uint32, fp32 bits), ``block`` (uint8 E4M3 codes)."""

    tensor: np.ndarray
    block: np.ndarray


@dataclass(frozen=True)
class IntScales:
    """The scales of a scaled-integer tensor (see `ScaledIntFormat`)."""

    scale: np.ndarray
    zero_point: np.ndarray | None = None
    shift: np.ndarray | None = None


@dataclass(frozen=True)
class BlockStats:
    """Conversion accounting: elements that saturated, scales clamped from above, NaN/inf blocks."""

    size: int
    saturated: int
    clamped_scales: int
    nan_blocks: int


@dataclass(frozen=True)
class BlockMACStats:
    """Accumulator overflow events (float: results beyond max; fixed: saturations or wraps)."""

    acc_overflow: int
    nan_blocks: int


_MX_DEFS: dict[str, tuple[Format, int]] = {
    "mxfp8_e4m3": (_E4M3, 32),
    "mxfp8_e5m2": (FloatFormat(5, 2), 32),
    "mxfp6_e2m3": (FloatFormat(2, 3, special="none"), 32),
    "mxfp6_e3m2": (FloatFormat(3, 2, special="none"), 32),
    "mxfp4": (_E2M1, 32),
    "mxint8": (FixedFormat(2, 6), 32),
}

#: The six OCP MX v1.0 formats by name.
MX_FORMATS: dict[str, MXFormat] = {k: MXFormat(el, b) for k, (el, b) in _MX_DEFS.items()}

_RE_INT = re.compile(r"int(\d+)(_asym)?(?:_(tensor|channel|g(\d+)))?(?:_(fp32|bf16|pow2|fixmul))?")
_GRAMMAR = ("mxfp8_e4m3 | mxfp8_e5m2 | mxfp6_e2m3 | mxfp6_e3m2 | mxfp4 | mxint8 | bfp<ELEM,B[,ocp|ceil]>"
            " (ELEM an emu float/fixed name or int<W>) | nvfp4 | nvfp4<B> |"
            " int<W>[_asym][_tensor|_channel|_g<G>][_fp32|_bf16|_pow2|_fixmul]")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "<") - (ch == ">")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def block_format(name: str | BlockFormat) -> BlockFormat:
    """The block-scaled format a name stands for (a format passes through).

    Grammar: ``mxfp8_e4m3 | mxfp8_e5m2 | mxfp6_e2m3 | mxfp6_e3m2 | mxfp4 |
    mxint8 | bfp<ELEM,B[,ocp|ceil]> | nvfp4 | nvfp4<B> |
    int<W>[_asym][_tensor|_channel|_g<G>][_fp32|_bf16|_pow2|_fixmul]``; ELEM
    is an `emu.format` name (``e4m3``, ``fp<3,2,none>``, ``fx<2,6>``) or
    ``int<W>`` (plain W-bit integers).

    >>> str(block_format("bfp<int8,16>")), str(block_format("bfp<e2m1,32>"))
    ('bfp<int8,16>', 'mxfp4')
    """
    if isinstance(name, (MXFormat, NVFP4Format, ScaledIntFormat)):
        return name
    if not isinstance(name, str):
        raise TypeError(f"block_format: name={name!r} must be a str or a block format")
    key = name.strip().lower()
    if key in MX_FORMATS:
        return MX_FORMATS[key]
    if key == "nvfp4":
        return NVFP4Format()
    if m := re.fullmatch(r"nvfp4<(\d+)>", key):
        return NVFP4Format(int(m[1]))
    if key.startswith("bfp<") and key.endswith(">"):
        parts = _split_top(key[4:-1])
        if len(parts) not in (2, 3) or not parts[1].isdigit():
            raise ValueError(f"block_format: {name!r} must read bfp<ELEM,B[,ocp|ceil]>")
        el_txt = parts[0]
        if m := re.fullmatch(r"int(\d+)", el_txt):
            el: Format = FixedFormat(_check_int("block_format", "W", int(m[1]), 2, 16), 0)
        else:
            el = get_format(el_txt)
        return MXFormat(el, int(parts[1]), parts[2] if len(parts) == 3 else "ocp")
    if m := _RE_INT.fullmatch(key):
        gran = m[3] or "tensor"
        group = None
        if m[4] is not None:
            gran, group = "group", int(m[4])
        return ScaledIntFormat(int(m[1]), symmetric=m[2] is None, granularity=gran, group_size=group,
                               scale=m[5] or "fp32")
    raise ValueError(f"block_format: name={name!r} is not a block-scaled format. Grammar: {_GRAMMAR}")


# --- numba scalar routines ------------------------------------------------------------------------------


@njit(cache=True)
def _round_mag(a, dirn, M, emin, bias, maxval):
    """Round a magnitude a >= 0 (finite) to a float grid, ties to even, saturating.

    ``dirn`` (-1, 0, +1) says where the exact magnitude lies relative to a when
    a is only its float64 rounding (it matters at midpoints alone). Returns
    (value, saturated).
    """
    if a == 0.0:
        return 0.0, False
    m, ex = math.frexp(a)
    e = ex - 1
    qe = max(e, emin) - M
    t = math.ldexp(a, -qe)
    if t >= 9007199254740992.0:  # far beyond the format: saturate
        return maxval, True
    f = math.floor(t)
    d = t - f
    up = False
    if d > 0.5:
        up = True
    elif d == 0.5:
        if dirn > 0:
            up = True
        elif dirn == 0:
            if M == 0 and e >= emin:
                up = ((e + bias) & 1) == 1
            else:
                up = (int(f) & 1) == 1
    k = f + 1.0 if up else f
    v = math.ldexp(k, qe)
    if v > maxval:
        return maxval, True
    return v, False


@njit(cache=True)
def _is_mid(a, M, emin):
    """Whether a > 0 lies exactly halfway between two neighbours of the grid."""
    if a == 0.0:
        return False
    m, ex = math.frexp(a)
    qe = max(ex - 1, emin) - M
    t = math.ldexp(a, -qe)
    return t - math.floor(t) == 0.5


@njit(cache=True)
def _float_code(v, neg, M, emin, bias, bits, negzero):
    """Code of the grid value v >= 0 (sign from ``neg``) in a small float format."""
    s = np.int64(1) << (bits - 1) if (neg and (v != 0.0 or negzero)) else np.int64(0)
    if v == 0.0:
        return s
    m, ex = math.frexp(v)
    e = ex - 1
    if e < emin:
        return s | np.int64(math.ldexp(v, M - emin))
    frac = np.int64(math.ldexp(v, M - e)) - (np.int64(1) << M)
    return s | (np.int64(e + bias) << M) | frac


@njit(cache=True)
def _int_rne(a, dirn):
    """round_even(a) for a >= 0 with the exact value's side ``dirn`` at midpoints."""
    f = math.floor(a)
    d = a - f
    if d > 0.5 or (d == 0.5 and (dirn > 0 or (dirn == 0 and (int(f) & 1) == 1))):
        return f + 1.0
    return f


@njit(cache=True)
def _div_rne(x, s):
    """round_even(x / s) of the exact quotient (x, s doubles, s > 0, |x/s| < 2^52), as float."""
    a = abs(x)
    t = a / s
    f = math.floor(t)
    if t - f == 0.5:
        p = (f + 0.5) * s  # exact: f < 2^17 in use, s of at most 31 significant bits
        dirn = 1 if a > p else (-1 if a < p else 0)
    else:
        dirn = 0
    r = _int_rne(t, dirn)
    return -r if x < 0 else r


@njit(cache=True)
def _block_scan(x2, idx, nb, B, ecodes, stats):
    """Block ``idx`` of the row-major block grid (``nb`` blocks of ``B`` elements per row): (row, first
    element, end, largest |x|, whether an element is NaN or infinite). Such a block gets zero element
    codes and is counted in stats[idx, 2]; its scale code is the caller's."""
    r = idx // nb
    lo = (idx - r * nb) * B
    hi = min(lo + B, x2.shape[1])
    amax = 0.0
    bad = False
    for k in range(lo, hi):
        v = x2[r, k]
        if not np.isfinite(v):
            bad = True
        elif abs(v) > amax:
            amax = abs(v)
    if bad:
        for k in range(lo, hi):
            ecodes[r, k] = 0
        stats[idx, 2] = 1
    return r, lo, hi, amax, bad


@njit(parallel=True, cache=True)
def _mx_encode_kernel(x2, xb, B, is_float, M, emin, bias, bits, negzero, maxval, fl, qmax, emax_el, ceil_rule,
                      maxcode, p2, scodes, ecodes, stats):
    R = x2.shape[0]
    nb = scodes.shape[1]
    mask = (np.int64(1) << bits) - 1
    signbit = np.int64(1) << (bits - 1)
    for idx in prange(R * nb):
        r, lo, hi, amax, bad = _block_scan(x2, idx, nb, B, ecodes, stats)
        b = idx - r * nb
        if bad:
            scodes[r, b] = 255
            continue
        if amax == 0.0:
            X = -127
        else:
            mm, ex = math.frexp(amax)
            X = ex - 1 - emax_el
            if ceil_rule and amax > math.ldexp(maxval, X):
                X += 1
            if X > 127:
                X = 127
                stats[idx, 1] = 1
            elif X < -127:
                X = -127
        scodes[r, b] = X + 127
        nsat = 0
        for k in range(lo, hi):
            v = x2[r, k]
            bv = xb[r, k]
            neg = (bv >> np.uint64(63)) != np.uint64(0)
            fv = np.int64((bv >> np.uint64(52)) & np.uint64(0x7FF))
            if v == 0.0:
                c = _float_code(0.0, neg, M, emin, bias, bits, negzero) if is_float else np.int64(0)
                ecodes[r, k] = c
                continue
            if fv == 0:  # a subnormal float64: the general (slow) path
                a = math.ldexp(abs(v), -X)
                if is_float:
                    val, sat = _round_mag(a, 0, M, emin, bias, maxval)
                    c = _float_code(val, neg, M, emin, bias, bits, negzero)
                else:
                    q = _int_rne(math.ldexp(a, fl), 0)
                    c = np.int64(0) if q == 0.0 else (np.int64(-q) if neg else np.int64(q)) & mask
                    sat = False
                ecodes[r, k] = c
                continue
            e = fv - 1023 - X  # exponent of |v| / 2^X
            av = abs(v)
            if is_float:
                if e > emax_el:
                    sat = True
                    cm = maxcode
                elif e < emin - M - 1:
                    sat = False
                    cm = np.int64(0)
                else:
                    qe = max(e, emin) - M
                    t = av * p2[P2OFF - X - qe]  # exact: a power of two, no underflow here
                    kf = (t + 4503599627370496.0) - 4503599627370496.0  # nearest even (t < 2^52)
                    if M == 0 and kf - t == 0.5 and e >= emin and ((e + bias) & 1) == 0:
                        kf -= 1.0  # M = 0: ties to the even exponent field
                    elif M == 0 and t - kf == 0.5 and e >= emin and ((e + bias) & 1) == 1:
                        kf += 1.0
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
                        q = np.int64((t + 4503599627370496.0) - 4503599627370496.0)
                        sat = q > qmax
                        if sat:
                            q = qmax
                c = (-q if neg else q) & mask
            if sat:
                nsat += 1
            ecodes[r, k] = c
        stats[idx, 0] = nsat


@njit(parallel=True, cache=True)
def _nv_encode_kernel(x2, B, g, scodes, ecodes, stats):
    R = x2.shape[0]
    nb = scodes.shape[1]
    g32 = np.float32(g)
    six = np.float32(6.0)
    for idx in prange(R * nb):
        r, lo, hi, amax, bad = _block_scan(x2, idx, nb, B, ecodes, stats)
        b = idx - r * nb
        if bad:
            scodes[r, b] = 0x7F
            continue
        a32 = np.float32(amax)
        s32 = np.float32(np.float32(a32 / six) / g32)
        sv, ssat = _round_mag(float(s32), 0, 3, -6, 7, 448.0)
        scodes[r, b] = _float_code(sv, False, 3, -6, 7, 8, True)
        d = sv * g  # exact: 4 x 24 significant bits
        nsat = 0
        for k in range(lo, hi):
            v = x2[r, k]
            neg = v < 0.0 or (v == 0.0 and math.copysign(1.0, v) < 0.0)
            if d == 0.0:
                val = 0.0
                sat = False
            else:
                av = abs(v)
                q = av / d
                dirn = 0
                if _is_mid(q, 1, 0):
                    p = q * d  # exact: q has at most 3 significant bits
                    dirn = 1 if av > p else (-1 if av < p else 0)
                val, sat = _round_mag(q, dirn, 1, 0, 1, 6.0)
            if sat:
                nsat += 1
            ecodes[r, k] = _float_code(val, neg, 1, 0, 1, 4, True)
        stats[idx, 0] = nsat


@njit(parallel=True, cache=True)
def _int_encode_kernel(x2, B, svals, zps, qlo, qhi, bits, ecodes, stats):
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
                q = np.int64(_div_rne(v, s)) + z
                if q > qhi:
                    q = qhi
                    nsat += 1
                elif q < qlo:
                    q = qlo
                    nsat += 1
            ecodes[r, k] = q & mask
        stats[idx, 0] = nsat


@njit(parallel=True, cache=True)
def _block_minmax(x2, B, out):
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
_P2 = np.ldexp(1.0, np.arange(-P2OFF, P2OFF + 1))  # _P2[P2OFF + j] = 2^j


def _float_max_code(el: FloatFormat) -> int:
    """The code (sign bit clear) of the element format's largest finite value."""
    return int(np.asarray(_emu_encode(el.max, el)))


# --- conversion API -----------------------------------------------------------------------------


def _as_real(x: object, func: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind == "b" or a.dtype.kind not in "fiuV":
        raise TypeError(f"{func}: x has dtype {a.dtype}; expected real numbers")
    if a.dtype.kind == "f" and a.dtype.itemsize > 8:
        raise TypeError(f"{func}: x has dtype {a.dtype}, more precise than float64; convert it explicitly")
    return np.asarray(a, dtype=np.float64)


def _norm_axis(axis: object, ndim: int, func: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{func}: axis={axis!r} must be an int")
    if ndim == 0:
        if int(axis) not in (0, -1):
            raise ValueError(f"{func}: axis={axis} outside the allowed range [-1, 0] for a 0-d input")
        return 0
    if not -ndim <= int(axis) < ndim:
        raise ValueError(f"{func}: axis={axis} outside the allowed range [{-ndim}, {ndim - 1}] for {ndim}-d x")
    return int(axis) % ndim


def _to_rows(x: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """x with the block axis last, as (rows, n); also the moved shape."""
    xm = np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(xm).reshape(math.prod(xm.shape[:-1]), xm.shape[-1]), xm.shape


def _code_dtype(bits: int) -> Any:
    return np.uint8 if bits <= 8 else np.uint16


def _elem_params(el: Format) -> tuple:
    if isinstance(el, FloatFormat):
        return (True, el.man_bits, el.emin, el.bias, el.bits, el.has_negative_zero, el.max, 0, 0)
    assert isinstance(el, FixedFormat)
    return (False, 0, 0, 0, el.bits, False, el.max, el.frac_bits, el.qmax)


def _blocks_shape(moved: tuple[int, ...], nb: int) -> tuple[int, ...]:
    return (*moved[:-1], nb)


def block_encode(x: object, fmt: str | BlockFormat, axis: int = -1, *, scale_overflow: str = "clamp",
                 return_stats: bool = False) -> Any:
    """Encode x into a block-scaled format: ``(scales, element_codes)``.

    Args:
        x: real array-like (float16/32/64, ints, ml_dtypes floats); 0-d is one block.
        fmt: a block format or its name (`block_format`).
        axis: the axis the blocks run along (MX, NVFP4, integer groups); for
            per-channel integers the channel axis (one scale per index).
        scale_overflow: MX only: ``"clamp"`` (spec: X > 127 becomes 127 and the
            elements saturate) or ``"error"`` (OverflowError).
        return_stats: also return a `BlockStats`.

    Returns:
        element codes in x's shape (uint8, uint16 above 8 bits) and scales:
        MX: uint8 E8M0 codes, shape x.shape with ``axis`` replaced by the
        number of blocks ceil(n / B); NVFP4: `NVFP4Scales`; integers: `IntScales`
        (shape () per tensor, (C,) per channel, block shape per group).

    Raises:
        ValueError: axis out of range, NaN/inf into a scaled-integer format.
        OverflowError: a scale beyond its format's range (fp32/bf16 integer
            scales, NVFP4's fp32 tensor scale, MX with ``scale_overflow="error"``).

    >>> s, c = block_encode([[1.0, 2.0, 3.0, 4.0]], "bfp<int8,2>")
    >>> s.tolist(), c.tolist()
    ([[122, 123]], [[32, 64, 48, 64]])
    """
    f = block_format(fmt)
    xa = _as_real(x, "block_encode")
    ax = _norm_axis(axis, xa.ndim, "block_encode")
    if scale_overflow not in ("clamp", "error"):
        raise ValueError(f"block_encode: scale_overflow={scale_overflow!r} is not one of ('clamp', 'error')")
    if isinstance(f, ScaledIntFormat):
        return _int_encode(xa, f, ax, return_stats)
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
        el = f.element
        isf, M, emin, bias, bits, nz, mx, fl, qmax = _elem_params(el)
        scodes = np.zeros((R, nb), np.uint8)
        ecodes = np.zeros((R, n), _code_dtype(bits))
        if x2.size:
            maxcode = _float_max_code(el) if isf else 0
            _mx_encode_kernel(x2, x2.view(np.uint64), B, isf, M, emin, bias, bits, nz, mx, fl, qmax,
                              _elem_emax(el), f.rule == "ceil", maxcode, _P2, scodes, ecodes, stats)
        if scale_overflow == "error" and stats[:, 1].any():
            first = int(np.flatnonzero(stats[:, 1])[0])
            raise OverflowError(
                f"block_encode: {int(stats[:, 1].sum())} block(s) of x need a scale above 2^127, the E8M0"
                f" maximum (first: block {first % nb} of row {first // nb}); scale_overflow='clamp' saturates"
            )
        scales: Any = scodes.reshape(_blocks_shape(moved, nb))
        scales = np.moveaxis(scales, -1, ax)
    else:
        finite = x2[np.isfinite(x2)]
        amax = float(np.max(np.abs(finite))) if finite.size else 0.0
        g = _nv_global(amax)
        scodes = np.zeros((R, nb), np.uint8)
        ecodes = np.zeros((R, n), np.uint8)
        if x2.size:
            _nv_encode_kernel(x2, B, g, scodes, ecodes, stats)
        sc = np.moveaxis(scodes.reshape(_blocks_shape(moved, nb)), -1, ax)
        scales = NVFP4Scales(np.array(np.float32(g)).view(np.uint32), sc)
    codes = np.moveaxis(ecodes.reshape(moved), -1, ax)
    if zero_d:
        codes = codes.reshape(())
        if isinstance(scales, np.ndarray):
            scales = scales.reshape(())
        else:
            scales = NVFP4Scales(scales.tensor, scales.block.reshape(()))
    if return_stats:
        st = BlockStats(int(xa.size), int(stats[:, 0].sum()), int(stats[:, 1].sum()), int(stats[:, 2].sum()))
        return scales, codes, st
    return scales, codes


def _nv_global(amax: float) -> float:
    """The NVFP4 per-tensor scale g = fp32(amax) / 2688 in fp32 (1.0 for amax = 0)."""
    if amax == 0.0:
        return 1.0
    with np.errstate(over="ignore"):
        a32 = np.float32(amax)
    if not np.isfinite(a32):
        raise OverflowError(f"block_encode: nvfp4 tensor amax={amax!r} exceeds the fp32 range of its tensor scale")
    g = float(a32 / np.float32(2688.0))
    return g if g > 0 else _FP32_TINY


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
        raise OverflowError(f"block_encode: {f}: a scale exceeds the fp32 range (|x| up to {np.max(np.abs(mx))!r})")
    zero_range = (mn == 0) & (mx == 0)
    s = np.where(zero_range, np.float32(1.0), s)
    s = np.where(s == 0, np.float32(_FP32_TINY), s)
    return s.astype(np.float64)


def _store_scales(s32: np.ndarray, f: ScaledIntFormat) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(scale values as float64, scale codes, shift or None) for the format's scale storage."""
    if f.scale == "fp32":
        return s32, s32.astype(np.float32).view(np.uint32), None
    if f.scale == "bf16":
        v = _emu_quantize(s32, "bf16", overflow="saturate")
        v = np.where(v == 0, math.ldexp(1.0, -133), v)
        return v, (v.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16), None
    if f.scale == "pow2":
        m, e = np.frexp(s32)
        e = np.where(m == 0.5, e - 1, e).astype(np.int64)
        if (e > _XMAX).any():
            raise OverflowError(f"block_encode: {f}: a power-of-two scale above 2^127 (E8M0 range)")
        e = np.maximum(e, _XMIN)
        return np.ldexp(1.0, e), (e + _E8M0_BIAS).astype(np.uint8), None
    m, e = np.frexp(s32)  # fixmul: fp32 significands fit M0 exactly
    m0 = np.ldexp(m, 31).astype(np.int64)
    return s32, m0.astype(np.int32), e.astype(np.int16)


def _int_encode(xa: np.ndarray, f: ScaledIntFormat, ax: int, return_stats: bool) -> Any:
    if f.granularity == "tensor":
        x2, moved, B = xa.reshape(1, -1), None, max(1, xa.size)
    elif f.granularity == "channel":
        if xa.ndim == 0:
            raise ValueError(f"block_encode: {f} is per channel and needs x with at least one axis")
        xm = np.moveaxis(xa, ax, 0)
        x2 = np.ascontiguousarray(xm).reshape(xm.shape[0], -1)
        moved, B = xm.shape, max(1, x2.shape[1])
    else:
        xr = xa.reshape(1) if xa.ndim == 0 else xa
        x2, moved = _to_rows(xr, ax if xa.ndim else 0)
        B = f.group_size
    R, n = x2.shape
    nb = max(1, -(-n // B)) if n else (1 if f.granularity != "group" else 0)
    mm = np.zeros((R, nb, 3), np.float64)
    if x2.size:
        _block_minmax(x2, B, mm)
    if mm[:, :, 2].any():
        raise ValueError(f"block_encode: x holds NaN or +-inf, which {f} (no NaN code, no inf) cannot encode")
    s32 = _fp32_scales(mm[:, :, 0], mm[:, :, 1], f)
    sv, scode, shift = _store_scales(s32, f)
    if f.symmetric:
        zp = np.zeros((R, nb), np.int64)
    else:
        lo = mm[:, :, 0].astype(np.float32).astype(np.float64)
        r = np.array([_div_rne(float(a), float(s)) for a, s in zip(lo.ravel(), sv.ravel(), strict=True)])
        zp = np.clip(f.qmin - r.reshape(lo.shape), f.qmin, f.qmax).astype(np.int64)
    ecodes = np.zeros((R, n), _code_dtype(f.bits))
    stats = np.zeros((R * nb, 3), np.int64)
    if x2.size:
        _int_encode_kernel(x2, B, np.ascontiguousarray(sv), zp, f.qmin, f.qmax, f.bits, ecodes, stats)

    def shape_scales(a: np.ndarray) -> np.ndarray:
        if f.granularity == "tensor":
            return a.reshape(())
        if f.granularity == "channel":
            return a.reshape(-1)
        return np.moveaxis(a.reshape(_blocks_shape(moved, nb)), -1, ax) if xa.ndim else a.reshape(())

    if f.granularity == "tensor":
        codes = ecodes.reshape(xa.shape)
    elif f.granularity == "channel":
        codes = np.moveaxis(ecodes.reshape(moved), 0, ax)
    else:
        codes = np.moveaxis(ecodes.reshape(moved), -1, ax) if xa.ndim else ecodes.reshape(())
    scales = IntScales(shape_scales(scode), None if f.symmetric else shape_scales(zp.astype(np.int32)),
                       None if shift is None else shape_scales(shift))
    if return_stats:
        return scales, codes, BlockStats(int(xa.size), int(stats[:, 0].sum()), 0, 0)
    return scales, codes


@lru_cache(maxsize=64)
def _elem_table(el: Format) -> np.ndarray:
    """The value of every code of an element format (read-only, cached)."""
    t = np.asarray(_emu_decode(np.arange(1 << el.bits, dtype=np.uint64), el), np.float64)
    t.flags.writeable = False
    return t


@njit(parallel=True, cache=True)
def _decode_kernel(c2, s2, lut, slut, B, out):
    """out[r, k] = lut[c2[r, k]] * slut[s2[r, k // B]], a NaN product as the one quiet NaN."""
    R, n = c2.shape
    nb = s2.shape[1]
    for idx in prange(R * nb):
        r = idx // nb
        b = idx - r * nb
        sv = slut[s2[r, b]]
        for k in range(b * B, min(b * B + B, n)):
            v = lut[c2[r, k]] * sv
            out[r, k] = np.nan if np.isnan(v) else v


def _check_codes(c: object, bits: int, what: str, as_int64: bool = True) -> np.ndarray:
    """Integer codes in [0, 2^bits), as int64 (or in their own integer dtype)."""
    a = np.asarray(c)
    if a.dtype.kind not in "iu":
        raise TypeError(f"block_decode: {what} have dtype {a.dtype}; expected integer codes")
    if a.size and (a.min() < 0 or a.max() >= (1 << bits)):
        raise ValueError(f"block_decode: {what} outside [0, {(1 << bits) - 1}]")
    return a.astype(np.int64) if as_int64 else a


def _expand(scale_rows: np.ndarray, B: int, n: int) -> np.ndarray:
    return np.repeat(scale_rows, B, axis=-1)[..., :n]


def block_decode(scales: Any, codes: object, fmt: str | BlockFormat, axis: int = -1) -> np.ndarray:
    """Exact float64 values of ``(scales, codes)`` from `block_encode` (same ``axis``).

    Raises:
        ValueError: codes out of range, scales of the wrong shape, axis out of range.

    >>> s, c = block_encode([3.0, -0.5], "mxfp8_e4m3")
    >>> block_decode(s, c, "mxfp8_e4m3").tolist()
    [3.0, -0.5]
    """
    f = block_format(fmt)
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
    sc = scales.block if isinstance(f, NVFP4Format) else scales
    if isinstance(f, NVFP4Format) and not isinstance(scales, NVFP4Scales):
        raise TypeError("block_decode: nvfp4 scales must be the NVFP4Scales that block_encode returned")
    s = _check_codes(sc, 8, "scale codes", as_int64=False)
    if zero_d:
        s = s.reshape(1)
    want = list(c.shape)
    want[ax] = nb
    if list(s.shape) != want:
        raise ValueError(f"block_decode: scales have shape {s.shape}; codes of shape {c.shape} with block size"
                         f" {f.block_size} along axis {ax} need {tuple(want)}")
    if isinstance(f, MXFormat):
        slut = _E8M0_VALUES
    else:
        g = float(np.asarray(scales.tensor, np.uint32).view(np.float32))
        slut = _elem_table(_E4M3) * g
    c2, moved = _to_rows(c, ax)
    s2 = _to_rows(s, ax)[0]
    out2 = np.empty(c2.shape, np.float64)
    _decode_kernel(c2, s2, _elem_table(el), slut, f.block_size, out2)
    out = np.moveaxis(out2.reshape(moved), -1, ax)
    return out.reshape(()) if zero_d else out


def _int_scale_values(scales: IntScales, f: ScaledIntFormat) -> np.ndarray:
    sc = np.asarray(scales.scale)
    if f.scale == "fp32":
        return sc.astype(np.uint32).view(np.float32).astype(np.float64)
    if f.scale == "bf16":
        return (sc.astype(np.uint32) << np.uint32(16)).view(np.float32).astype(np.float64)
    if f.scale == "pow2":
        return np.ldexp(1.0, sc.astype(np.int64) - _E8M0_BIAS)
    if scales.shift is None:
        raise ValueError("block_decode: fixmul scales need the shift array")
    return np.ldexp(sc.astype(np.float64), np.asarray(scales.shift, np.int64) - 31)


def _int_decode(scales: IntScales, codes: object, f: ScaledIntFormat, axis: int) -> np.ndarray:
    if not isinstance(scales, IntScales):
        raise TypeError("block_decode: scaled-integer scales must be the IntScales that block_encode returned")
    c = _check_codes(codes, f.bits, "element codes")
    q = np.where(c >= (1 << (f.bits - 1)), c - (1 << f.bits), c)
    sv = _int_scale_values(scales, f)
    zp = np.zeros(sv.shape, np.int64) if scales.zero_point is None else np.asarray(scales.zero_point, np.int64)
    if f.granularity == "tensor":
        return (q - zp) * sv
    ax = _norm_axis(axis, c.ndim, "block_decode") if c.ndim else 0
    if f.granularity == "channel":
        shape = [1] * c.ndim
        shape[ax] = -1
        return (q - zp.reshape(shape)) * sv.reshape(shape)
    if c.ndim == 0:
        return (q - zp) * sv
    n = c.shape[ax]

    def ex(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(_expand(np.moveaxis(a, ax, -1), f.group_size, n), -1, ax)

    return (q - ex(zp)) * ex(sv)


def block_quantize(x: object, fmt: str | BlockFormat, axis: int = -1, **kwargs: Any) -> np.ndarray:
    """x rounded to a block-scaled format: ``block_decode(*block_encode(x))``, float64.

    >>> block_quantize([1.0, -0.3, 5.0, 7.5], "mxfp4").tolist()
    [1.0, -0.5, 4.0, 6.0]
    """
    f = block_format(fmt)
    s, c = block_encode(x, f, axis, **kwargs)[:2]
    return block_decode(s, c, f, axis)


# --- MAC ----------------------------------------------------------------------------------------


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


_RNE, _RNA, _RNU, _RND = int(Rounding.NEAREST_EVEN), int(Rounding.NEAREST_AWAY), int(Rounding.NEAREST_UP), int(
    Rounding.NEAREST_DOWN)
_RFLOOR, _RTZ, _RCEIL = int(Rounding.FLOOR), int(Rounding.TOWARD_ZERO), int(Rounding.CEIL)
_OSAT, _OWRAP, _OINF, _ONAN = int(Overflow.SATURATE), int(Overflow.WRAP), int(Overflow.INF), int(Overflow.NAN)


@njit(cache=True)
def _round_to_float(f1, sigma, M, emin, maxval, mode, ovf):
    """Round the exact value f1 + tiny (sign sigma, |tiny| below half an ulp of f1) to the float grid.

    Returns (value, overflowed).
    """
    neg = f1 < 0
    a = abs(f1)
    s_mag = -sigma if neg else sigma
    m, ex = math.frexp(a)
    e = ex - 1
    if s_mag < 0 and m == 0.5:
        e -= 1
    qe = max(e, emin) - M
    mant = np.int64(math.ldexp(m, 53))
    shift = qe - (ex - 53)
    # state: 0 exact, 1 below half, 2 tie, 3 above half
    if shift >= 62:
        kept = np.int64(0)
        state = 1
    else:
        kept = mant >> shift
        rem = mant & ((np.int64(1) << shift) - 1)
        if rem == 0:
            if s_mag == 0:
                state = 0
            elif s_mag > 0:
                state = 1
            else:
                kept -= 1
                state = 3
        else:
            half = np.int64(1) << (shift - 1)
            if rem > half:
                state = 3
            elif rem < half:
                state = 1
            else:
                state = 2 if s_mag == 0 else (3 if s_mag > 0 else 1)
    up = False
    if state == 3:
        up = mode == _RNE or mode == _RNA or mode == _RNU or mode == _RND
    elif state == 2:
        if mode == _RNE:
            up = (kept & 1) == 1
        elif mode == _RNA:
            up = True
        elif mode == _RNU:
            up = not neg
        elif mode == _RND:
            up = neg
    if state != 0:
        if mode == _RFLOOR:
            up = neg
        elif mode == _RCEIL:
            up = not neg
    if up:
        kept += 1
    v = math.ldexp(float(kept), qe)
    if v > maxval:
        if ovf == _OSAT:
            v = maxval
        elif ovf == _ONAN:
            v = np.nan
        else:
            to_inf = mode <= _RND or (mode == _RFLOOR and neg) or (mode == _RCEIL and not neg)
            v = np.inf if to_inf else maxval
        return (-v if neg else v), True
    return (-v if neg else v), False


@njit(cache=True)
def _acc_float(acc, t1, t2, M, emin, maxval, mode, ovf, nz):
    """acc (+) (t1 + t2), exact sum rounded once; (t1, t2) a normalized double-double."""
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
    v, o = _round_to_float(f1, sig, M, emin, maxval, mode, ovf)
    if v == 0.0 and not nz:
        v = 0.0
    return v, o


@njit(cache=True)
def _acc_fp32(acc, t1, t2, M, emin, maxval, mode, ovf, nz):
    """`_acc_float` for an fp32 accumulator rounding to nearest even, with a fast path: when acc + t1 is
    exact in float64 (t2 = 0, no two-sum error) and a normal fp32 magnitude below 2^127, one float32 cast
    is the single rounding."""
    if t2 == 0.0:
        f1, f2 = _two_sum(acc, t1)
        af = abs(f1)
        if f2 == 0.0 and 1.1754943508222875e-38 <= af < 1.7014118346046923e+38:
            return float(np.float32(f1)), False
    return _acc_float(acc, t1, t2, M, emin, maxval, mode, ovf, nz)


@njit(cache=True)
def _mod64(d):
    """An integer-valued double modulo 2^64, as int64 (two's complement)."""
    if abs(d) < 4611686018427387904.0:
        return np.int64(d)
    m, ex = math.frexp(abs(d))
    mant = np.uint64(math.ldexp(m, 53))
    sh = ex - 53
    r = np.uint64(0) if sh >= 64 else (mant << np.uint64(sh))
    v = np.int64(r)
    return -v if d < 0 else v


@njit(cache=True)
def _acc_fixed(A, t1, t2, fl, wl, ovf):
    """A (+) floor((t1 + t2) * 2^fl) with wrap or saturate to wl bits; returns (A, overflowed)."""
    qmax = (np.int64(1) << (wl - 1)) - 1
    qmin = -qmax - 1
    u1 = math.ldexp(t1, fl)
    u2 = math.ldexp(t2, fl)
    if abs(u1) >= 2305843009213693952.0:  # 2^61: beyond any accumulator word
        if ovf == _OSAT:
            return (qmax if u1 > 0 else qmin), True
        T = _mod64(u1) + _mod64(math.floor(u2))
        S = A + T
    else:
        F = math.floor(u1)
        r = u1 - F
        if r == 0.0:
            adj = np.int64(math.floor(u2))
        elif u2 >= 0:
            adj = np.int64(1) if u2 >= 1.0 - r else np.int64(0)
        else:
            adj = np.int64(-1) if r < -u2 else np.int64(0)
        S = A + np.int64(F) + adj
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
    """The exact sum held in the limbs (32-bit digits, value * 2^offset), rounded to float64 (nearest even)."""
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
    kept = g >> 9
    rem = g & 511
    if rem > 256 or (rem == 256 and (sticky or (kept & 1) == 1)):
        kept += 1
    v = math.ldexp(float(kept), lsb + 9 - _SUPER_OFF)
    return -v if neg else v


@njit(parallel=True, cache=True)
def _block_mm_kernel(av, bv, sums, sa, sb, B, pow2, wide, kind, M, emin, maxval, mode, ovf, fl, wl, nz, post, out,
                     novf):
    """out[i, j] = acc over blocks of (exact block sum) * sa[i, kb] * sb[j, kb] (then * post).

    ``sums`` (m, n, nbk), when not empty, holds the exact block sums already
    (a BLAS product: exact in any order when every block sum fits 53 bits).
    """
    m, K = av.shape
    n = bv.shape[0]
    nbk = sa.shape[1]
    fast32 = M == 23 and emin == -126 and mode == _RNE
    for i in prange(m):
        limbs = np.zeros(_SUPER_LIMBS, np.int64)
        for j in range(n):
            acc = 0.0
            A = np.int64(0)
            cnt = 0
            if kind == 2:
                limbs[:] = 0
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
                        acc, o = _acc_fp32(acc, t1, t2, M, emin, maxval, mode, ovf, nz)
                    else:
                        acc, o = _acc_float(acc, t1, t2, M, emin, maxval, mode, ovf, nz)
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
                        acc, o = _acc_float(0.0, p1, p2, M, emin, maxval, mode, ovf, nz)
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


def _operand(x: np.ndarray, f: BlockFormat, role: str) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(element values (rows, K), block scale values (rows, nbk), global scale, block size) of an operand.

    ``role`` "a": x is (M, K), blocks along axis 1; "b": x is (K, N), blocks along axis 0 (returned
    transposed as (N, K)).
    """
    K = x.shape[1] if role == "a" else x.shape[0]
    kax = 1 if role == "a" else 0
    if isinstance(f, ScaledIntFormat):
        chan_ax = 0 if role == "a" else 1
        sc, codes = block_encode(x, f, chan_ax if f.granularity == "channel" else kax)
        c = codes.astype(np.int64)
        q = np.where(c >= (1 << (f.bits - 1)), c - (1 << f.bits), c)
        sv = _int_scale_values(sc, f)
        zp = np.zeros(sv.shape, np.int64) if sc.zero_point is None else np.asarray(sc.zero_point, np.int64)
        if f.granularity == "tensor":
            vals, svb, B = q - zp, np.full((x.shape[1 - kax], 1), float(sv)), K
        elif f.granularity == "channel":
            shape = (-1, 1) if role == "a" else (1, -1)
            vals = q - zp.reshape(shape)
            svb, B = sv.reshape(-1, 1), K
        else:
            B = f.group_size
            zx = np.moveaxis(_expand(np.moveaxis(zp, kax, -1), B, K), -1, kax)
            vals = q - zx
            svb = sv if role == "a" else sv.T
        vals = vals.astype(np.float64)
        return (vals if role == "a" else vals.T), np.ascontiguousarray(svb, np.float64), 1.0, B
    sc, codes = block_encode(x, f, kax)
    vals = _elem_table(f.element)[codes.astype(np.int64)]
    if isinstance(f, MXFormat):
        s = sc.astype(np.int64)
        svals = np.where(s == _E8M0_NAN, np.nan, np.ldexp(1.0, s - _E8M0_BIAS))
        g = 1.0
    else:
        svals = _elem_table(_E4M3)[sc.block.astype(np.int64)]
        g = float(np.asarray(sc.tensor, np.uint32).view(np.float32))
    if role == "b":
        vals, svals = vals.T, svals.T
    return vals, np.ascontiguousarray(svals), g, f.block_size


def _span_bits(f: BlockFormat) -> float:
    """log2 of (largest element magnitude / smallest element step)."""
    if isinstance(f, ScaledIntFormat):
        return float(f.bits + (0 if f.symmetric else 1))
    el = f.element
    if isinstance(el, FixedFormat):
        return float(el.bits)
    return math.log2(el.max / el.smallest_subnormal) + 1


def _acc_spec(acc: object, acc_rounding: object, acc_overflow: object) -> tuple:
    """(kind, M, emin, maxval, mode, ovf, fl, wl, has -0, format or None)."""
    if acc is None or acc == "exact":
        return (2, 0, 0, 0.0, 0, 0, 0, 0, False, None)
    fa = get_format(acc) if isinstance(acc, str) else acc
    mode = parse_rounding(acc_rounding, "block_matmul")
    if mode == Rounding.STOCHASTIC:
        raise ValueError("block_matmul: acc_rounding='stochastic' is not supported; use a deterministic mode")
    if isinstance(fa, FloatFormat):
        if not 1 <= fa.man_bits <= 50:
            raise ValueError(f"block_matmul: acc={fa} has man_bits={fa.man_bits}; allowed range [1, 50]"
                             " (fp32, bf16, fp16, tf32, ...); use acc=None for an exact sum")
        ovf = fa.default_overflow if acc_overflow is None else parse_overflow(acc_overflow, "block_matmul")
        if ovf not in (Overflow.SATURATE, Overflow.INF, Overflow.NAN) or ovf not in fa.overflow_modes:
            raise ValueError(f"block_matmul: acc_overflow={ovf} is not allowed for {fa}")
        return (0, fa.man_bits, fa.emin, fa.max, int(mode), int(ovf), 0, 0, fa.has_negative_zero, fa)
    if isinstance(fa, FixedFormat):
        if not fa.signed:
            raise ValueError(f"block_matmul: acc={fa} must be a signed fixed-point format")
        if mode != Rounding.FLOOR and acc_rounding != "nearest_even":
            raise ValueError("block_matmul: a fixed-point accumulator aligns with floor (drops low bits) only")
        ovf = Overflow.SATURATE if acc_overflow is None else parse_overflow(acc_overflow, "block_matmul")
        if ovf not in (Overflow.SATURATE, Overflow.WRAP):
            raise ValueError(f"block_matmul: acc_overflow={ovf} is not one of (saturate, wrap) for {fa}")
        return (1, 0, 0, 0.0, 0, int(ovf), fa.frac_bits, fa.bits, False, fa)
    raise TypeError(f"block_matmul: acc={acc!r} must be a FloatFormat, a signed FixedFormat, their name, or None")


def block_matmul(a: object, b: object, fmt_a: str | BlockFormat, fmt_b: str | BlockFormat,
                 acc: object = "fp32", *, acc_rounding: str | Rounding = "nearest_even",
                 acc_overflow: str | Overflow | None = None, return_stats: bool = False) -> Any:
    """Emulate y = a @ b with block-scaled operands, bit-exactly.

    a (M, K) is encoded in ``fmt_a`` with blocks along K (axis 1), b (K, N) in
    ``fmt_b`` with blocks along K (axis 0); per-channel integers take a scale
    per row of a / per column of b. Both formats must share a family and
    block size along K (a per-tensor or per-channel integer operand is one
    block spanning K). For each output, in increasing block order:

    1. P = sum of the element products of the block, exact (products of small
       floats/integers are exact; the sum is kept exact as a double-double);
    2. term = P * scale_a * scale_b, exact (MX: 2^(Xa+Xb); integers: fp32/bf16/
       power-of-two scales; NVFP4: the two E4M3 block scales);
    3. acc = acc (+) term: the exact sum rounded once into ``acc`` (a float
       format with 1..50 fraction bits, ``acc_rounding`` and ``acc_overflow``;
       or a signed fixed format: term floored onto its grid, then saturate or
       wrap); ``acc=None`` sums exactly and rounds once to float64 at the end.
    4. NVFP4 only: y = acc * g_a * g_b (the two fp32 tensor scales), rounded once
       into ``acc`` (with ``acc=None`` the global scales multiply each term).

    A NaN scale (a block that held NaN or inf) makes the output NaN. The
    accumulator starts at +0; an exact zero sum is +0 (-0 under floor unless
    both operands are +0).

    Returns: float64 (M, N) exact values of the accumulator (and a
    `BlockMACStats` with ``return_stats``).

    >>> a = [[1.0, 2.0, 3.0, 4.0]]; b = [[1.0], [1.0], [1.0], [1.0]]
    >>> block_matmul(a, b, "mxfp8_e4m3", "mxfp8_e4m3").tolist()
    [[10.0]]
    """
    fa_, fb_ = block_format(fmt_a), block_format(fmt_b)
    A = _as_real(a, "block_matmul")
    Bm = _as_real(b, "block_matmul")
    if A.ndim != 2 or Bm.ndim != 2:
        raise ValueError(f"block_matmul: a and b must be 2-d, got shapes {A.shape} and {Bm.shape}")
    if A.shape[1] != Bm.shape[0]:
        raise ValueError(f"block_matmul: a is {A.shape} and b is {Bm.shape}; their inner sizes differ")
    if fa_.kind != fb_.kind:
        raise ValueError(f"block_matmul: fmt_a={fa_} and fmt_b={fb_} are of different families ({fa_.kind},"
                         f" {fb_.kind}); both must be MX/BFP, both NVFP4 or both scaled integers")
    if isinstance(fa_, ScaledIntFormat) and isinstance(fb_, ScaledIntFormat):
        for f, nm in ((fa_, "fmt_a"), (fb_, "fmt_b")):
            if f.scale == "fixmul":
                raise ValueError(f"block_matmul: {nm}={f} has fixmul scales; use fp32/bf16/pow2 scales here"
                                 " and int_matmul_requant for the fixed-point multiplier path")
    spec = _acc_spec(acc, acc_rounding, acc_overflow)
    kind = spec[0]
    if isinstance(fa_, NVFP4Format) and kind == 1:
        raise ValueError("block_matmul: nvfp4 needs a float accumulator or acc=None")
    K = A.shape[1]
    av, sa, ga, Ba = _operand(A, fa_, "a")
    bv, sb, gb, Bb = _operand(Bm, fb_, "b")
    if K == 0:
        out0 = np.zeros((A.shape[0], Bm.shape[1]))
        return (out0, BlockMACStats(0, 0)) if return_stats else out0
    if Ba != Bb and not (sa.shape[1] == 1 and sb.shape[1] == 1) and not (
            isinstance(fa_, ScaledIntFormat) and (fa_.granularity != "group" or fb_.granularity != "group")):
        raise ValueError(f"block_matmul: block sizes along K differ ({fa_}: {Ba}, {fb_}: {Bb}); they must match")
    single_a = isinstance(fa_, ScaledIntFormat) and fa_.granularity != "group"
    single_b = isinstance(fb_, ScaledIntFormat) and fb_.granularity != "group"
    if sa.shape[1] == 1 and sb.shape[1] == 1:
        Bk = max(K, 1)
    elif single_a:
        sa, Bk = np.ascontiguousarray(np.repeat(sa, sb.shape[1], axis=1)), Bb
    elif single_b:
        sb, Bk = np.ascontiguousarray(np.repeat(sb, sa.shape[1], axis=1)), Ba
    else:
        Bk = Ba
    span = _span_bits(fa_) + _span_bits(fb_) + math.log2(max(min(Bk, K), 1))
    pow2 = isinstance(fa_, MXFormat)
    if span > 100 or (not pow2 and span > 52):
        raise ValueError(f"block_matmul: {fa_} x {fb_} with blocks of {Bk} needs {span:.0f} bits for an exact"
                         " block sum; allowed up to 100 (MX) or 52 (other families)")
    wide = span > 52
    post = ga * gb
    M_, N_ = A.shape[0], Bm.shape[1]
    out = np.zeros((M_, N_), np.float64)
    novf = np.zeros((M_, N_), np.int64)
    if M_ and N_:
        avc, bvc = np.ascontiguousarray(av, np.float64), np.ascontiguousarray(bv, np.float64)
        sums = _block_sums(avc, bvc, max(Bk, 1)) if not wide else np.zeros((0, 0, 0))
        _block_mm_kernel(avc, bvc, sums, sa, sb,
                         max(Bk, 1), pow2, wide, kind, *spec[1:9], post, out, novf)
    out[np.isnan(out)] = np.nan  # one NaN, sign bit clear
    if return_stats:
        nan_blocks = int(np.isnan(sa).sum() + np.isnan(sb).sum())
        return out, BlockMACStats(int(novf.sum()), nan_blocks)
    return out


@dataclass(frozen=True)
class BlockMAC:
    """A block-scaled datapath as a value: operand formats, accumulator (`block_matmul`'s semantics).

    ``act`` and ``weight`` are block formats (or names), both of one family;
    ``acc`` a float or signed fixed `emu` format (default fp32) or None
    (exact). `matmul` runs it; `preset` names the issue's presets. Costed by
    ``hwmodel.cost`` and usable as a ``nets`` layer's forward datapath.

    >>> m = BlockMAC.preset("mxfp8"); str(m)
    'mxfp8_e4m3 x mxfp8_e4m3 -> fp32'
    >>> m.matmul([[1.0, 2.0]], [[3.0], [4.0]]).tolist()
    [[11.0]]
    """

    act: Any
    weight: Any
    acc: Any = "fp32"
    acc_rounding: Any = "nearest_even"
    acc_overflow: Any = None

    def __post_init__(self) -> None:
        a, w = block_format(self.act), block_format(self.weight)
        if a.kind != w.kind:
            raise ValueError(f"BlockMAC: act={a} and weight={w} are of different families ({a.kind}, {w.kind})")
        object.__setattr__(self, "act", a)
        object.__setattr__(self, "weight", w)
        if self.acc is not None:
            object.__setattr__(self, "acc", get_format(self.acc) if isinstance(self.acc, str) else self.acc)
        _acc_spec(self.acc, self.acc_rounding, self.acc_overflow)  # validates the accumulator

    @classmethod
    def preset(cls, name: str) -> BlockMAC:
        """``mxfp8``, ``mxfp4``, ``nvfp4`` (`BLOCK_MAC_PRESETS`; not the integer requantization path)."""
        p = BLOCK_MAC_PRESETS.get(name)
        if p is None or "acc" not in p:
            raise ValueError(f"BlockMAC.preset: name={name!r} is not one of mxfp8, mxfp4, nvfp4")
        return cls(p["fmt_a"], p["fmt_b"], p["acc"])

    def matmul(self, a: object, w: object, return_stats: bool = False) -> Any:
        """a @ w through this datapath (`block_matmul`)."""
        return block_matmul(a, w, self.act, self.weight, self.acc, acc_rounding=self.acc_rounding,
                            acc_overflow=self.acc_overflow, return_stats=return_stats)

    def __str__(self) -> str:
        return f"{self.act} x {self.weight} -> {self.acc if self.acc is not None else 'exact'}"


def _block_sums(av: np.ndarray, bv: np.ndarray, B: int) -> np.ndarray:
    """Exact block sums (m, n, nbk) of av (m, K) by bv (n, K) by one batched BLAS product.

    Only for blocks whose exact sums fit in 53 bits (``not wide``): then every
    partial sum of any order, fused or not, is exact, so BLAS's order cannot
    change the result. The last partial block is padded with zeros (exact).
    """
    m, K = av.shape
    n = bv.shape[0]
    nbk = -(-K // B)
    if nbk * B != K:
        av = np.concatenate([av, np.zeros((m, nbk * B - K))], axis=1)
        bv = np.concatenate([bv, np.zeros((n, nbk * B - K))], axis=1)
    a3 = av.reshape(m, nbk, B).transpose(1, 0, 2)
    b3 = bv.reshape(n, nbk, B).transpose(1, 2, 0)
    return np.ascontiguousarray(np.matmul(a3, b3).transpose(1, 2, 0))


def block_dot(a: object, b: object, fmt_a: str | BlockFormat, fmt_b: str | BlockFormat, acc: object = "fp32",
              **kwargs: Any) -> Any:
    """Dot product of two vectors (blocks along the vector): `block_matmul` of (1, K) by (K, 1).

    >>> float(block_dot([1.0, 2.0], [3.0, 4.0], "mxfp8_e4m3", "mxfp8_e4m3"))
    11.0
    """
    av = _as_real(a, "block_dot")
    bv = _as_real(b, "block_dot")
    if av.ndim != 1 or bv.ndim != 1:
        raise ValueError(f"block_dot: a and b must be 1-d, got shapes {av.shape} and {bv.shape}")
    r = block_matmul(av.reshape(1, -1), bv.reshape(-1, 1), fmt_a, fmt_b, acc, **kwargs)
    if isinstance(r, tuple):
        return r[0][0, 0], r[1]
    return r[0, 0]


# --- integer requantization (gemmlowp / TFLite) -------------------------------------------------


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(M0, shift) with real = M0 * 2^(shift - 31), M0 in [2^30, 2^31) (TFLite QuantizeMultiplier).

    M0 = round(frac * 2^31) with frac = frexp(real)[0], rounding half away from
    zero (C's std::round); M0 = 2^31 becomes 2^30 with shift + 1. real = 0 gives (0, 0).

    >>> quantize_multiplier(0.5), quantize_multiplier(0.1)
    ((1073741824, 0), (1717986918, -3))
    """
    r = float(real)
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"quantize_multiplier: real={real!r} must be finite and >= 0")
    if r == 0.0:
        return 0, 0
    m, e = math.frexp(r)
    t = math.ldexp(m, 31)
    q = int(math.floor(t + 0.5))  # t > 0: half away from zero; t + 0.5 is exact (t < 2^31)
    if q == 1 << 31:
        q //= 2
        e += 1
    return q, e


@njit(cache=True)
def _srdhm(a, b):
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values (held in int64)."""
    if a == b and a == -2147483648:
        return np.int64(2147483647)
    ab = a * b
    nudge = np.int64(1 << 30) if ab >= 0 else np.int64(1 - (1 << 30))
    s = ab + nudge
    q = s // np.int64(1 << 31)
    if s < 0 and q * np.int64(1 << 31) != s:  # C division truncates toward zero
        q += 1
    return q


@njit(cache=True)
def _rdbpot(x, exponent):
    """gemmlowp RoundingDivideByPOT."""
    if exponent == 0:
        return x
    mask = (np.int64(1) << exponent) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if rem > thr else 0)


@njit(cache=True)
def _wrap32(v):
    w = v & np.int64(0xFFFFFFFF)
    return w - (np.int64(1) << 32) if w >= (np.int64(1) << 31) else w


@njit(cache=True)
def _mbqm(x, m0, shift):
    left = shift if shift > 0 else 0
    right = 0 if shift > 0 else -shift
    return _rdbpot(_srdhm(_wrap32(x << left), m0), right)


@njit(parallel=True, cache=True)
def _requant_kernel(acc, m0, shift, zp, qmin, qmax, out):
    m, n = acc.shape
    for i in prange(m):
        for j in range(n):
            v = _mbqm(acc[i, j], m0[j], shift[j]) + zp
            out[i, j] = min(max(v, qmin), qmax)


def multiply_by_quantized_multiplier(x: object, m0: object, shift: object) -> np.ndarray:
    """TFLite MultiplyByQuantizedMultiplier on int32 x (elementwise, broadcast).

    RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^max(shift, 0),
    M0), max(-shift, 0)); x * 2^left wraps to int32.

    >>> multiply_by_quantized_multiplier([100, -100, 7], 1073741824, 0).tolist()
    [50, -50, 4]
    """
    xb, mb, sb = np.broadcast_arrays(np.asarray(x, np.int64), np.asarray(m0, np.int64), np.asarray(shift, np.int64))
    flat = [int(_mbqm(int(v), int(m), int(s))) for v, m, s in zip(xb.ravel(), mb.ravel(), sb.ravel(), strict=True)]
    return np.array(flat, np.int64).reshape(xb.shape)


def requantize(acc: object, m0: object, shift: object, zero_point: int = 0, bits: int = 8) -> np.ndarray:
    """int32 accumulators (M, N) -> W-bit codes: clamp(zp + MBQM(acc, M0[j], shift[j])), per column j.

    >>> requantize([[1000, -1000]], 1073741824, -3).tolist()
    [[63, -63]]
    """
    a = np.asarray(acc, np.int64)
    if a.ndim != 2:
        raise ValueError(f"requantize: acc must be 2-d (M, N), got shape {a.shape}")
    _check_int("requantize", "bits", bits, 2, 16)
    n = a.shape[1]
    m0a = np.broadcast_to(np.asarray(m0, np.int64), (n,)).copy()
    sha = np.broadcast_to(np.asarray(shift, np.int64), (n,)).copy()
    if (m0a < 0).any() or (m0a >= 1 << 31).any():
        raise ValueError("requantize: m0 outside [0, 2^31 - 1]")
    if (sha > 31).any() or (sha < -31).any():
        raise ValueError("requantize: shift outside the allowed range [-31, 31]")
    out = np.zeros(a.shape, np.int64)
    qmin, qmax = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    _requant_kernel(_wrap32_arr(a), m0a, sha, int(zero_point), qmin, qmax, out)
    return out


def _wrap32_arr(a: np.ndarray) -> np.ndarray:
    w = a & 0xFFFFFFFF
    return np.where(w >= 1 << 31, w - (1 << 32), w).astype(np.int64)


def int_matmul_requant(a: object, b: object, out_scale: float, fmt_a: str | ScaledIntFormat = "int8",
                       fmt_b: str | ScaledIntFormat = "int8_channel", out_zero_point: int = 0,
                       out_bits: int = 8, return_acc: bool = False) -> Any:
    """The integer path: int codes -> int32 accumulator -> requantize with a fixed-point multiplier.

    a (M, K) and b (K, N) are encoded in ``fmt_a`` (per tensor) and ``fmt_b``
    (per tensor or per output channel, axis 1); acc[i, j] = sum_k (qa - za)(qb
    - zb) wrapped to int32; the multiplier of column j is real_j = s_a * s_b[j]
    / out_scale in float64 arithmetic (as TFLite), (M0_j, shift_j) =
    `quantize_multiplier` (real_j); out = clamp(out_zero_point + MBQM(acc, M0_j,
    shift_j)) to ``out_bits``. Returns (codes int64 (M, N), values (codes -
    zp) * out_scale), plus acc with ``return_acc``.

    >>> q, v = int_matmul_requant([[1.0, 2.0]], [[1.0], [1.0]], out_scale=3.0 / 127)
    >>> q.tolist(), v.tolist() == [[3.0]]
    ([[127]], True)
    """
    fa_, fb_ = block_format(fmt_a), block_format(fmt_b)
    for f, nm in ((fa_, "fmt_a"), (fb_, "fmt_b")):
        if not isinstance(f, ScaledIntFormat) or f.granularity == "group":
            raise ValueError(f"int_matmul_requant: {nm}={f} must be a per-tensor or per-channel integer format")
    if fa_.granularity != "tensor":
        raise ValueError(f"int_matmul_requant: fmt_a={fa_} must be per tensor")
    A = _as_real(a, "int_matmul_requant")
    Bm = _as_real(b, "int_matmul_requant")
    if A.ndim != 2 or Bm.ndim != 2 or A.shape[1] != Bm.shape[0]:
        raise ValueError(f"int_matmul_requant: a {A.shape} and b {Bm.shape} are not (M, K) and (K, N)")
    if not (math.isfinite(out_scale) and out_scale > 0):
        raise ValueError(f"int_matmul_requant: out_scale={out_scale!r} must be finite and > 0")
    av, sa, _, _ = _operand(A, fa_, "a")
    bv, sb, _, _ = _operand(Bm, fb_, "b")
    acc = _wrap32_arr(av.astype(np.int64) @ bv.astype(np.int64).T)
    sa0 = float(sa[0, 0])
    reals = [sa0 * float(s) / float(out_scale) for s in sb[:, 0]]
    mq = [quantize_multiplier(r) for r in reals]
    m0 = np.array([m for m, _ in mq], np.int64)
    sh = np.array([s for _, s in mq], np.int64)
    if (sh > 31).any() or (sh < -31).any():
        raise ValueError("int_matmul_requant: a requantization multiplier outside 2^[-32, 31]")
    q = requantize(acc, m0, sh, out_zero_point, out_bits)
    vals = (q - out_zero_point) * float(out_scale)
    return (q, vals, acc) if return_acc else (q, vals)


#: Named MAC configurations: keyword arguments of `block_matmul` (or of `int_matmul_requant` for ``int8``).
BLOCK_MAC_PRESETS: dict[str, dict[str, Any]] = {
    "mxfp8": {"fmt_a": "mxfp8_e4m3", "fmt_b": "mxfp8_e4m3", "acc": "fp32"},
    "mxfp4": {"fmt_a": "mxfp4", "fmt_b": "mxfp4", "acc": "fp32"},
    "nvfp4": {"fmt_a": "nvfp4", "fmt_b": "nvfp4", "acc": "fp32"},
    "int8_requant": {"fmt_a": "int8", "fmt_b": "int8_channel"},
}
