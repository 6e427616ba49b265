"""The block MAC engine: `block_matmul`, `block_dot`, the `BlockMAC` datapath value and its presets."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..formats import FixedFormat, FloatFormat, Format
from ..modes import Overflow, Rounding, parse_overflow, parse_rounding
from ..registry import get_format
from .convert import as_real, block_encode, elem_table, expand, int_scale_values
from .formats import (
    E4M3,
    E8M0_BIAS,
    E8M0_NAN,
    BlockFormat,
    BlockMACStats,
    Granularity,
    MXFormat,
    NVFP4Format,
    ScaledIntFormat,
    ScaleKind,
    block_format,
)
from .mac_kernels import block_mm_kernel


def operand(x: np.ndarray, f: BlockFormat, role: str) -> tuple[np.ndarray, np.ndarray, float, int]:
    """(element values (rows, K), block scale values (rows, nbk), global scale, block size) of an operand.

    ``role`` "a": x is (M, K), blocks along axis 1; "b": x is (K, N), blocks along axis 0 (returned
    transposed as (N, K)).
    """
    K = x.shape[1] if role == "a" else x.shape[0]
    kax = 1 if role == "a" else 0
    if isinstance(f, ScaledIntFormat):
        chan_ax = 0 if role == "a" else 1
        sc, codes = block_encode(x, f, chan_ax if f.granularity is Granularity.CHANNEL else kax)
        c = codes.astype(np.int64)
        q = np.where(c >= (1 << (f.bits - 1)), c - (1 << f.bits), c)
        sv = int_scale_values(sc, f)
        zp = np.zeros(sv.shape, np.int64) if sc.zero_point is None else np.asarray(sc.zero_point, np.int64)
        if f.granularity is Granularity.TENSOR:
            vals, svb, B = q - zp, np.full((x.shape[1 - kax], 1), float(sv)), K
        elif f.granularity is Granularity.CHANNEL:
            shape = (-1, 1) if role == "a" else (1, -1)
            vals = q - zp.reshape(shape)
            svb, B = sv.reshape(-1, 1), K
        else:
            B = f.group_size
            zx = np.moveaxis(expand(np.moveaxis(zp, kax, -1), B, K), -1, kax)
            vals = q - zx
            svb = sv if role == "a" else sv.T
        vals = vals.astype(np.float64)
        return (vals if role == "a" else vals.T), np.ascontiguousarray(svb, np.float64), 1.0, B
    sc, codes = block_encode(x, f, kax)
    vals = elem_table(f.element)[codes.astype(np.int64)]
    if isinstance(f, MXFormat):
        s = sc.astype(np.int64)
        svals = np.where(s == E8M0_NAN, np.nan, np.ldexp(1.0, s - E8M0_BIAS))
        g = 1.0
    else:
        svals = elem_table(E4M3)[sc.block.astype(np.int64)]
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


def parse_acc(acc: object, acc_rounding: object, acc_overflow: object,
              func: str = "block_matmul") -> tuple[Format | None, Rounding, Overflow | None]:
    """The accumulator format (None: exact) and its modes as enum members, checked (`acc_spec`)."""
    if acc is None or (isinstance(acc, str) and acc.strip().lower() == "exact"):
        fa = None
    else:
        fa = get_format(acc) if isinstance(acc, str) else acc
    mode = parse_rounding(acc_rounding, func, "acc_rounding")
    ovf = None if acc_overflow is None else parse_overflow(acc_overflow, func, "acc_overflow")
    acc_spec(fa, mode, ovf, func)
    return fa, mode, ovf  # type: ignore[return-value]


def acc_spec(fa: object, mode: Rounding, ovf: Overflow | None, func: str = "block_matmul") -> tuple:
    """Kernel arguments (kind, M, emin, maxval, mode, ovf, fl, wl, has -0) of a parsed accumulator.

    kind 0: a float format; 1: a signed fixed format; 2: exact (``fa`` None).
    """
    if fa is None:
        return (2, 0, 0, 0.0, 0, 0, 0, 0, False)
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
        return (0, fa.man_bits, fa.emin, fa.max, int(mode), int(ovf), 0, 0, fa.has_negative_zero)
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
        return (1, 0, 0, 0.0, 0, int(ovf), fa.frac_bits, fa.bits, False)
    raise TypeError(f"{func}: acc={fa!r} must be a FloatFormat, a signed FixedFormat, their name, or None")


def block_matmul(a: object, b: object, fmt_a: str | BlockFormat, fmt_b: str | BlockFormat,
                 acc: object = "fp32", *, acc_rounding: str | Rounding = Rounding.NEAREST_EVEN,
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
    A = as_real(a, "block_matmul")
    Bm = as_real(b, "block_matmul")
    if A.ndim != 2 or Bm.ndim != 2:
        raise ValueError(f"block_matmul: a and b must be 2-d, got shapes {A.shape} and {Bm.shape}")
    if A.shape[1] != Bm.shape[0]:
        raise ValueError(f"block_matmul: a is {A.shape} and b is {Bm.shape}; their inner sizes differ")
    if fa_.kind != fb_.kind:
        raise ValueError(f"block_matmul: fmt_a={fa_} and fmt_b={fb_} are of different families ({fa_.kind},"
                         f" {fb_.kind}); both must be MX/BFP, both NVFP4 or both scaled integers")
    if isinstance(fa_, ScaledIntFormat) and isinstance(fb_, ScaledIntFormat):
        for f, nm in ((fa_, "fmt_a"), (fb_, "fmt_b")):
            if f.scale is ScaleKind.FIXMUL:
                raise ValueError(f"block_matmul: {nm}={f} has fixmul scales; use fp32/bf16/pow2 scales here"
                                 " and int_matmul_requant for the fixed-point multiplier path")
    spec = acc_spec(*parse_acc(acc, acc_rounding, acc_overflow))
    kind = spec[0]
    if isinstance(fa_, NVFP4Format) and kind == 1:
        raise ValueError("block_matmul: nvfp4 needs a float accumulator or acc=None")
    K = A.shape[1]
    av, sa, ga, Ba = operand(A, fa_, "a")
    bv, sb, gb, Bb = operand(Bm, fb_, "b")
    if K == 0:
        out0 = np.zeros((A.shape[0], Bm.shape[1]))
        return (out0, BlockMACStats(0, 0)) if return_stats else out0
    if Ba != Bb and not (sa.shape[1] == 1 and sb.shape[1] == 1) and not (
            isinstance(fa_, ScaledIntFormat)
            and (fa_.granularity is not Granularity.GROUP or fb_.granularity is not Granularity.GROUP)):
        raise ValueError(f"block_matmul: block sizes along K differ ({fa_}: {Ba}, {fb_}: {Bb}); they must"
                         " match")
    single_a = isinstance(fa_, ScaledIntFormat) and fa_.granularity is not Granularity.GROUP
    single_b = isinstance(fb_, ScaledIntFormat) and fb_.granularity is not Granularity.GROUP
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
        block_mm_kernel(avc, bvc, sums, sa, sb,
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
    (exact); ``acc_rounding`` a `Rounding` and ``acc_overflow`` an `Overflow`
    or None (the format's default), given as members or names and stored as
    members. Everything is parsed and checked at construction. `matmul` runs
    it; `preset` builds an entry of `BLOCK_MAC_PRESETS`. Costed by
    ``hwmodel.cost`` and usable as a ``nets`` layer's forward datapath.

    >>> m = BlockMAC.preset("mxfp8"); str(m)
    'mxfp8_e4m3 x mxfp8_e4m3 -> fp32'
    >>> m.matmul([[1.0, 2.0]], [[3.0], [4.0]]).tolist()
    [[11.0]]
    """

    act: Any
    weight: Any
    acc: Any = "fp32"
    acc_rounding: Any = Rounding.NEAREST_EVEN
    acc_overflow: Any = None

    def __post_init__(self) -> None:
        a, w = block_format(self.act), block_format(self.weight)
        if a.kind != w.kind:
            raise ValueError(f"BlockMAC: act={a} and weight={w} are of different families ({a.kind},"
                             f" {w.kind})")
        object.__setattr__(self, "act", a)
        object.__setattr__(self, "weight", w)
        fa, mode, ovf = parse_acc(self.acc, self.acc_rounding, self.acc_overflow, "BlockMAC")
        object.__setattr__(self, "acc", fa)
        object.__setattr__(self, "acc_rounding", mode)
        object.__setattr__(self, "acc_overflow", ovf)

    @classmethod
    def preset(cls, name: str) -> BlockMAC:
        """The datapath of ``BLOCK_MAC_PRESETS[name]`` (``mxfp8``, ``mxfp4``, ``nvfp4``, ``int8_requant``)."""
        p = BLOCK_MAC_PRESETS.get(name) if isinstance(name, str) else None
        if p is None:
            raise ValueError(f"BlockMAC.preset: name={name!r} is not one of ({', '.join(BLOCK_MAC_PRESETS)})")
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
    av = as_real(a, "block_dot")
    bv = as_real(b, "block_dot")
    if av.ndim != 1 or bv.ndim != 1:
        raise ValueError(f"block_dot: a and b must be 1-d, got shapes {av.shape} and {bv.shape}")
    r = block_matmul(av.reshape(1, -1), bv.reshape(-1, 1), fmt_a, fmt_b, acc, **kwargs)
    if isinstance(r, tuple):
        return r[0][0, 0], r[1]
    return r[0, 0]




#: Named MAC configurations: keyword arguments (fmt_a, fmt_b, acc) of `block_matmul`, each one a
#: `BlockMAC.preset`. ``int8_requant``: int8 per tensor x int8 per output channel, the exact integer
#: sum dequantized once into fp32; its requantizing integer path is `int_matmul_requant` with the same
#: fmt_a and fmt_b.
BLOCK_MAC_PRESETS: dict[str, dict[str, Any]] = {
    "mxfp8": {"fmt_a": "mxfp8_e4m3", "fmt_b": "mxfp8_e4m3", "acc": "fp32"},
    "mxfp4": {"fmt_a": "mxfp4", "fmt_b": "mxfp4", "acc": "fp32"},
    "nvfp4": {"fmt_a": "nvfp4", "fmt_b": "nvfp4", "acc": "fp32"},
    "int8_requant": {"fmt_a": "int8_tensor", "fmt_b": "int8_channel", "acc": "fp32"},
}

