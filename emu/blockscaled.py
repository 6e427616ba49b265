"""Block-scaled formats: block floating point, OCP MX v1.0, NVFP4 and scaled integers.

The implementation lives in the package `emu.block` (docs/blockscaled.md has
the rules); this module re-exports its public names, so ``from
emu.blockscaled import block_matmul`` keeps working.
"""

from __future__ import annotations

from .block import (
    BLOCK_MAC_PRESETS,
    MX_FORMATS,
    BlockKind,
    BlockMAC,
    BlockMACStats,
    BlockStats,
    Granularity,
    IntScales,
    MXFormat,
    NVFP4Format,
    NVFP4Scales,
    ScaledIntFormat,
    ScaleKind,
    ScaleOverflow,
    ScaleRule,
    block_decode,
    block_dot,
    block_encode,
    block_format,
    block_matmul,
    block_quantize,
    int_matmul_requant,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
)

__all__ = [
    "BLOCK_MAC_PRESETS",
    "BlockKind",
    "BlockMAC",
    "BlockMACStats",
    "BlockStats",
    "Granularity",
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
