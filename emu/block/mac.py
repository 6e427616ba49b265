"""The block MAC engine: `block_product`, which `emu.matmul` runs for a `MAC` of block-scaled operands,
the datapath check `block_datapath`, and `block_matmul`, a short name for that call."""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from .._mac_kernels import add_float_params
from .._rounding import float_params, fround_ne_add_applies, half_grid_mask
from ..checks import check_bool
from ..formats import FixedFormat, FloatFormat, Format
from ..inputs import as_real
from ..modes import Overflow, Rounding
from .convert import block_encode, elem_table, expand, int_scale_values
from .formats import (
    E4M3,
    E8M0_VALUES,
    BlockFormat,
    MXFormat,
    NVFP4Format,
    ScaledIntFormat,
    ScaleGranularity,
    ScaleKind,
    block_format_arg,
)
from .kernels import gather_values
from .mac_kernels import block_mm_float_ne, block_mm_kernel


def operand(x: np.ndarray, f: BlockFormat, role: str, tensor_range: tuple[float, float] | None = None
            ) -> tuple[np.ndarray, np.ndarray, float, int, int]:
    """(element values (rows, K), block scale values (rows, nbk), global scale, block size, elements that
    saturated on encoding) of an operand.

    ``role`` "a": x is (M, K), blocks along axis 1; "b": x is (K, N), blocks along axis 0 (returned
    transposed as (N, K)). ``tensor_range``: `block_encode`'s, for x a part of a larger operand.
    """
    K = x.shape[1] if role == "a" else x.shape[0]
    kax = 1 if role == "a" else 0
    if isinstance(f, ScaledIntFormat):
        chan_ax = 0 if role == "a" else 1
        sc, codes, st = block_encode(x, f, chan_ax if f.granularity is ScaleGranularity.CHANNEL else kax,
                                     tensor_range=tensor_range, return_stats=True)
        c = codes.astype(np.int64)
        q = np.where(c >= (1 << (f.bits - 1)), c - (1 << f.bits), c)
        sv = int_scale_values(sc, f)
        zp = np.zeros(sv.shape, np.int64) if sc.zero_point is None else np.asarray(sc.zero_point, np.int64)
        if f.granularity is ScaleGranularity.TENSOR:
            vals, svb, B = q - zp, np.full((x.shape[1 - kax], 1), float(sv)), K
        elif f.granularity is ScaleGranularity.CHANNEL:
            shape = (-1, 1) if role == "a" else (1, -1)
            vals = q - zp.reshape(shape)
            svb, B = sv.reshape(-1, 1), K
        else:
            B = f.group_size
            zx = np.moveaxis(expand(np.moveaxis(zp, kax, -1), B, K), -1, kax)
            vals = q - zx
            svb = sv if role == "a" else sv.T
        vals = vals.astype(np.float64)
        return (vals if role == "a" else vals.T), np.ascontiguousarray(svb, np.float64), 1.0, B, st.saturated
    sc, codes, st = block_encode(x, f, kax, tensor_range=tensor_range, return_stats=True)
    vals = np.empty(codes.shape, np.float64)
    gather_values(codes, elem_table(f.element), vals)
    if isinstance(f, MXFormat):
        svals = E8M0_VALUES[sc]  # 2^(code - 127), NaN for the NaN code
        g = 1.0
    else:
        svals = elem_table(E4M3)[sc.block.astype(np.int64)]
        g = float(np.asarray(sc.tensor, np.uint32).view(np.float32))
    if role == "b":
        vals, svals = vals.T, svals.T
    return vals, np.ascontiguousarray(svals), g, f.block_size, st.saturated


@lru_cache(maxsize=64)
def _span_bits(f: BlockFormat) -> float:
    """log2 of (largest element magnitude / smallest element step)."""
    if isinstance(f, ScaledIntFormat):
        return float(f.bits + (0 if f.symmetric else 1))
    el = f.element
    if isinstance(el, FixedFormat):
        return float(el.bits)
    return math.log2(el.max / el.smallest_subnormal) + 1


class AccSpec(NamedTuple):
    """The block MAC kernel's view of an accumulator: ``kind`` 0 a float format (``man_bits``, ``emin``,
    ``maxval``, ``nzero``: it has -0), 1 a signed fixed format (``fl`` fraction bits of ``wl``), 2 exact;
    with its rounding ``mode`` and overflow mode ``ovf`` as integers."""

    kind: int
    man_bits: int
    emin: int
    maxval: float
    mode: int
    ovf: int
    fl: int
    wl: int
    nzero: bool


@lru_cache(maxsize=64)
def acc_spec(fa: object, mode: Rounding, ovf: Overflow | None, func: str = "block_matmul") -> AccSpec:
    """The `AccSpec` of a parsed accumulator (``fa`` None: exact), its modes checked against it (made once
    per accumulator and modes; a refusal is raised at every call)."""
    if fa is None:
        return AccSpec(2, 0, 0, 0.0, 0, 0, 0, 0, False)
    if mode is Rounding.STOCHASTIC:
        raise ValueError(f"{func}: acc_rounding='stochastic' is not supported; use a deterministic mode")
    if isinstance(fa, FloatFormat):
        if not 1 <= fa.man_bits <= 50:
            raise ValueError(f"{func}: acc={fa} has man_bits={fa.man_bits}; allowed range [1, 50]"
                             " (fp32, bf16, fp16, tf32, ...); use acc=None for an exact sum")
        ovf = fa.default_overflow if ovf is None else ovf
        allowed = [o for o in (Overflow.SATURATE, Overflow.INF, Overflow.NAN) if o in fa.overflow_modes]
        if ovf not in allowed:
            names = ", ".join(map(str, allowed))
            raise ValueError(f"{func}: acc_overflow={ovf} is not one of ({names}) for {fa}")
        return AccSpec(0, fa.man_bits, fa.emin, fa.max, int(mode), int(ovf), 0, 0, fa.has_negative_zero)
    if isinstance(fa, FixedFormat):
        if not fa.signed:
            raise ValueError(f"{func}: acc={fa} must be a signed fixed-point format")
        if mode not in (Rounding.FLOOR, Rounding.NEAREST_EVEN):
            raise ValueError(f"{func}: acc_rounding={mode} is not one of (floor, nearest_even) for {fa}: a"
                             " fixed-point accumulator aligns with floor (drops low bits); nearest_even is"
                             " the default")
        ovf = Overflow.SATURATE if ovf is None else ovf
        if ovf not in (Overflow.SATURATE, Overflow.WRAP):
            raise ValueError(f"{func}: acc_overflow={ovf} is not one of (saturate, wrap) for {fa}")
        return AccSpec(1, 0, 0, 0.0, 0, int(ovf), fa.frac_bits, fa.bits, False)
    raise TypeError(f"{func}: acc={fa!r} must be a FloatFormat, a signed FixedFormat, their name, or None")


_FP32 = FloatFormat(8, 23)


@lru_cache(maxsize=64)
def _fused_ne_params(acc: FloatFormat, ovf: int) -> Any:
    """The accumulator parameters of `block_mm_float_ne` (nearest even, overflow mode ``ovf``), or None
    where its rounding by one addition (`fround_ne_add_applies`) does not cover ``acc``."""
    return add_float_params(acc, int(Rounding.NEAREST_EVEN), ovf) if fround_ne_add_applies(acc) else None


def block_datapath(act: BlockFormat, weight: BlockFormat, acc: Format | None, acc_rounding: Rounding,
                   acc_overflow: Overflow | None, func: str = "MAC") -> Overflow | None:
    """Check the block-scaled datapath act x weight -> acc (None: exact) and return its accumulator
    overflow mode (the format's default when None). Raises ValueError naming the field at fault."""
    if act.kind != weight.kind:
        raise ValueError(f"{func}: act={act} and weight={weight} are of different families ({act.kind},"
                         f" {weight.kind}); both must be MX/BFP, both NVFP4 or both scaled integers")
    for f, nm in ((act, "act"), (weight, "weight")):
        if isinstance(f, ScaledIntFormat) and f.scale is ScaleKind.FIXMUL:
            raise ValueError(f"{func}: {nm}={f} has fixmul scales; use fp32/bf16/pow2 scales here and"
                             " int_matmul_requant for the fixed-point multiplier path")
    spec = acc_spec(acc, acc_rounding, acc_overflow, func)
    if isinstance(act, NVFP4Format) and spec.kind == 1:
        raise ValueError(f"{func}: acc={acc} is a fixed format; nvfp4 needs a float accumulator or an"
                         " exact one")
    return None if spec.kind == 2 else Overflow(spec.ovf)


def block_product(A: np.ndarray, W: np.ndarray, act: BlockFormat, weight: BlockFormat, acc: Format | None,
                  acc_rounding: Rounding, acc_overflow: Overflow | None, init_v: np.ndarray,
                  init_q: np.ndarray, ranges: tuple[Any, Any] = (None, None)
                  ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The block-scaled product of A (M, K) and W (K, N) reals: (accumulator values (M, N), accumulator
    overflow counts (M, N), elements that saturated on encoding, blocks with a NaN scale). A is encoded
    in ``act`` with blocks along K (axis 1), W in ``weight`` with blocks along K (axis 0); per-channel
    integers take a scale per row of A / per column of W. Both formats share a family and a block size
    along K (a per-tensor or per-channel integer operand is one block spanning K). Each output's
    accumulator starts at its row of ``init_v`` (values in the accumulator's format) or ``init_q`` (codes
    of a fixed accumulator), (1, N) or (M, N),
    then for each block in increasing order:

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

    A NaN scale (a block that held NaN or inf) makes the output NaN. An exact
    zero sum is +0 (-0 under floor unless both operands are +0).

    ``ranges``: the ``tensor_range`` of A and of W where each is a part of a larger operand whose one
    tensor-wide scale it takes (`emu.matmul`'s batch parts), else None.
    """
    spec = acc_spec(acc, acc_rounding, acc_overflow)
    K = A.shape[1]
    av, sa, ga, Ba, sat_a = operand(A, act, "a", ranges[0])
    bv, sb, gb, Bb, sat_b = operand(W, weight, "b", ranges[1])
    M_, N_ = A.shape[0], W.shape[1]
    nan_blocks = int(np.isnan(sa).sum() + np.isnan(sb).sum())
    if K == 0:
        empty = np.broadcast_to(init_v, (M_, N_)).copy()
        return empty, np.zeros((M_, N_), np.int64), sat_a + sat_b, nan_blocks
    grouped = isinstance(act, ScaledIntFormat) and (act.granularity is ScaleGranularity.GROUP
                                                    and weight.granularity is ScaleGranularity.GROUP)
    one_block_each = sa.shape[1] == 1 and sb.shape[1] == 1
    if Ba != Bb and not one_block_each and (grouped or not isinstance(act, ScaledIntFormat)):
        raise ValueError(f"matmul: block sizes along K differ ({act}: {Ba}, {weight}: {Bb}); they must match")
    single_a = isinstance(act, ScaledIntFormat) and act.granularity is not ScaleGranularity.GROUP
    single_b = isinstance(weight, ScaledIntFormat) and weight.granularity is not ScaleGranularity.GROUP
    if sa.shape[1] == 1 and sb.shape[1] == 1:
        Bk = max(K, 1)
    elif single_a:
        sa, Bk = np.ascontiguousarray(np.repeat(sa, sb.shape[1], axis=1)), Bb
    elif single_b:
        sb, Bk = np.ascontiguousarray(np.repeat(sb, sa.shape[1], axis=1)), Ba
    else:
        Bk = Ba
    span = _span_bits(act) + _span_bits(weight) + math.log2(max(min(Bk, K), 1))
    pow2 = isinstance(act, MXFormat)
    if span > 100 or (not pow2 and span > 52):
        raise ValueError(f"matmul: {act} x {weight} with blocks of {Bk} needs {span:.0f} bits for an exact"
                         " block sum; allowed up to 100 (MX) or 52 (other families)")
    wide = span > 52
    out = np.zeros((M_, N_), np.float64)
    novf = np.zeros((M_, N_), np.int64)
    fused_ne = (pow2 and not wide and spec.kind == 0 and acc_rounding is Rounding.NEAREST_EVEN
                and ga * gb == 1.0 and nan_blocks == 0 and _fused_ne_params(acc, spec.ovf) is not None)
    if M_ and N_ and fused_ne:  # the block sums formed inside the accumulating loop
        block_mm_float_ne(np.ascontiguousarray(av, np.float64), np.ascontiguousarray(bv.T, np.float64), sa,
                          np.ascontiguousarray(sb.T), max(Bk, 1), _fused_ne_params(acc, spec.ovf),
                          np.ascontiguousarray(init_v, np.float64), out, novf)
    elif M_ and N_:
        avc, bvc = np.ascontiguousarray(av, np.float64), np.ascontiguousarray(bv, np.float64)
        sums = _block_sums(avc, bvc, max(Bk, 1)) if not wide else np.zeros((0, 0, 0))
        fa = acc if isinstance(acc, FloatFormat) else _FP32  # (fixed and exact accumulators do not use it)
        ovf = spec.ovf if isinstance(acc, FloatFormat) else int(Overflow.INF)
        fprm = float_params(fa, int(acc_rounding), ovf)
        block_mm_kernel(avc, bvc, sums, sa, sb, max(Bk, 1), pow2, wide, *spec, ga * gb, fprm,
                        half_grid_mask(fa.man_bits),
                        np.ascontiguousarray(init_v, np.float64), np.ascontiguousarray(init_q, np.int64), out,
                        novf)
    out[np.isnan(out)] = np.nan  # one NaN, sign bit clear
    return out, novf, sat_a + sat_b, nan_blocks


def block_matmul(a: object, b: object, fmt_a: str | BlockFormat, fmt_b: str | BlockFormat,
                 acc: object = "fp32", *, acc_rounding: str | Rounding = Rounding.NEAREST_EVEN,
                 acc_overflow: str | Overflow | None = None, return_stats: bool = False) -> Any:
    """``emu.matmul(a, b, MAC(act=fmt_a, weight=fmt_b, acc=acc, ...))``: a @ b with block-scaled operands
    (``acc=None`` means ``"exact"``); see `block_product` for the arithmetic. Refusals of the formats,
    modes and operands name block_matmul and its parameters (fmt_a, fmt_b, a, b), not the MAC's fields.

    >>> a = [[1.0, 2.0, 3.0, 4.0]]; b = [[1.0], [1.0], [1.0], [1.0]]
    >>> block_matmul(a, b, "mxfp8_e4m3", "mxfp8_e4m3").tolist()
    [[10.0]]
    """
    from ..datapath import matmul
    from ..mac import MAC  # the datapath type lives above this package

    fn = "block_matmul"
    check_bool(return_stats, fn, "return_stats")
    fa, fb = block_format_arg(fmt_a, fn, "fmt_a"), block_format_arg(fmt_b, fn, "fmt_b")
    try:
        mac = MAC(act=fa, weight=fb, acc="exact" if acc is None else acc, acc_rounding=acc_rounding,
                  acc_overflow=acc_overflow)
    except (ValueError, TypeError) as e:  # the MAC's refusal, in block_matmul's names
        msg = re.sub(r"\b(act|weight)=", lambda m: "fmt_a=" if m[1] == "act" else "fmt_b=", str(e))
        raise type(e)(f"{fn}: {msg.removeprefix('MAC: ')}") from None
    A, B = as_real(a, fn, "a"), as_real(b, fn, "b")
    if A.ndim == 0 or B.ndim == 0:
        raise ValueError(f"{fn}: a and b must have at least one dimension; got shapes {A.shape} and"
                         f" {B.shape}")
    ka, kb = A.shape[-1], B.shape[0] if B.ndim == 1 else B.shape[-2]
    if ka != kb:
        raise ValueError(f"{fn}: a has K={ka} (shape {A.shape}) but b has K={kb} (shape {B.shape})")
    return matmul(A, B, mac, return_stats=return_stats)


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
