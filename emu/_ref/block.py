"""Slow exact references of the block-scaled formats (`emu.block`), as one namespace.

Everything is computed with Python integers and ``fractions.Fraction``, block
by block and element by element, straight from the rules in
docs/blockscaled.md; the tests compare the fast kernels against these
functions bit for bit. The references depend on no code under test: they read
format descriptions (the block format objects' fields and the `emu.formats`
dataclasses; accumulator names through `emu.registry.get_format`), decode
element codes, fp32/bf16 bit patterns and E8M0/E4M3 scales themselves
(`emu._ref.block_codes`), and round only through `emu._ref.rounding`.

- `emu._ref.block_encode`: ``ref_block_encode``, ``ref_block_decode``;
- `emu._ref.block_matmul`: ``ref_block_matmul``;
- `emu._ref.requant`: ``ref_quantize_multiplier``, ``ref_mbqm``.
"""

from __future__ import annotations

from .block_codes import elem_value
from .block_encode import RefIntScales, RefNVFP4Scales, ref_block_decode, ref_block_encode
from .block_matmul import ref_block_matmul
from .requant import ref_mbqm, ref_quantize_multiplier

__all__ = [
    "RefIntScales",
    "RefNVFP4Scales",
    "elem_value",
    "ref_block_decode",
    "ref_block_encode",
    "ref_block_matmul",
    "ref_mbqm",
    "ref_quantize_multiplier",
]
