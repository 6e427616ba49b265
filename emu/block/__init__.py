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
                                                                                 bfp<int8,16>,
                                                                                 mxfp4,even
`NVFP4Format`      an E4M3 scale per block of 16 and an fp32 scale per tensor    nvfp4, nvfp4<32>
`ScaledIntFormat`  one scale (fp32, bf16, power of two or a fixed-point          int8_tensor, int8_channel,
                   multiplier M0 * 2^(shift-31)) per tensor, per channel or      int4_g128, int8_asym_tensor,
                   per group of G; symmetric or with a zero point                int8_channel_bf16,
                                                                                 int8_tensor_fixmul
=================  ===========================================================  ==========================

Every format has ``encode(x, axis=-1) -> (scales, codes)``, ``decode(scales,
codes, axis=-1) -> float64`` (exact values) and ``quantize(x, axis=-1)`` (=
decode(encode(x))). The exact rules (docs/blockscaled.md) in short:

MX / block floating point (OCP Microscaling v1.0, section 6.3)
    Blocks are B consecutive elements along ``axis``; a last partial block is a
    shorter block. ``amax`` = the block's largest magnitude. Rule ``ocp``:
    X = floor(log2 amax) - emax_elem (emax_elem: exponent of the element
    format's largest power of two, 8 for E4M3, 2 for E2M1, 0 for MX INT8);
    the other rules (`ScaleRule`, torchao's names): ``ceil`` (X = ceil(log2
    amax) - emax_elem), ``even`` (amax's significand rounded to the element's
    precision first) and ``rceil`` (the smallest X with amax <= elem_max * 2^X,
    never clips); names ``mxfp4,even``, ``bfp<e4m3,16,rceil>``.
    X is clamped to [-127, 127] (``scale_overflow="error"`` raises instead of
    clamping down from above). Element = v / 2^X rounded to nearest, ties to
    even, saturating at +-elem_max; or, with ``rounding="stochastic",
    seed=...``, rounded stochastically (MX and NVFP4; docs/blockscaled.md).
    A block holding NaN or +-inf gets the NaN
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

An `emu.MAC` whose operands are block formats (``MAC(act="mxfp8_e4m3",
weight="mxfp8_e4m3", acc="fp32")``) runs through `emu.matmul`, `emu.dot` and
`emu.conv2d` with the block engine of `emu.block.mac` (exact products per
block, one multiplication by the block scales, one rounding into the
accumulator per block); `block_matmul` is a short name for that call;
`requantize` / `int_matmul_requant` the integer path of gemmlowp / TFLite.
Fast paths are numba kernels; ``emu._ref.block`` is the slow exact reference
they are tested against bit for bit.

Package layout (one concept per module): `emu.block.formats` (the enums, the
format dataclasses, scale containers, statistics and the name parser),
`emu.block.kernels` (numba encode/decode kernels), `emu.block.sr_kernels`
(the stochastic-rounding encoders), `emu.block.convert`
(`block_encode`, `block_decode`, `block_quantize`), `emu.block.mac_kernels`
(numba accumulation kernels), `emu.block.mac` (`block_product`,
`block_datapath`, `block_matmul`) and `emu.block.requant` (the gemmlowp
integer path).
"""

from __future__ import annotations

from .convert import (
    block_decode,
    block_encode,
    block_quantize,
)
from .formats import (
    MX_FORMATS,
    BlockKind,
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
    block_format,
)
from .mac import block_matmul
from .requant import (
    int_matmul_requant,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
)

__all__ = [
    "BlockKind",
    "BlockStats",
    "ScaleGranularity",
    "IntScales",
    "MXFormat",
    "MX_FORMATS",
    "NVFP4Format",
    "NVFP4Scales",
    "ScaleKind",
    "ScaleOverflow",
    "ScaleRule",
    "ScaledIntFormat",
    "block_decode",
    "block_encode",
    "block_format",
    "block_matmul",
    "block_quantize",
    "int_matmul_requant",
    "multiply_by_quantized_multiplier",
    "quantize_multiplier",
    "requantize",
]
