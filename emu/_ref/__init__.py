"""Slow exact references: the executable form of NUMERICS.md and docs/semantics.md.

The fast kernels are tested against these modules bit for bit; they are
deliberately simple and slow. Every value is a Python ``int`` or
``fractions.Fraction``; float64 arithmetic appears only where the contract
defines a quantity in float64. One concept per module:

- `emu._ref.stream`: the counter-based random stream (``mix64``, ``random_word``);
- `emu._ref.rounding`: the one exact rounding every reference uses (a rational
  to an integer under every mode, stochastic included; to a float format's
  grid; to a power of two);
- `emu._ref.scalar`: ``quantize_ref``, ``decode_ref``, ``encode_ref`` (fixed,
  float, pow2);
- `emu._ref.signs`: binary and ternary (``binary_ref``, ``data_scale_ref``,
  ``ternary_ref``);
- `emu._ref.mac`: the multiply-accumulate datapath (``mac_dot_ref``);
- `emu._ref.block` (with `block_codes`, `block_encode`, `block_matmul`,
  `requant`): the block-scaled formats.

The references import nothing of ``emu`` but the format descriptions
(`emu.formats`, `emu.modes`, `emu.registry`) and each other
(tests/emu/test_ref_structure.py pins it). This package re-exports the scalar
references, so ``from emu import _ref; _ref.quantize_ref(...)`` works.
"""

from __future__ import annotations

from .rounding import round_float, round_fraction, round_magnitude, round_pow2
from .scalar import RefResult, decode_ref, encode_ref, quantize_ref
from .signs import TernaryScale, binary_ref, data_scale_ref, ternary_ref
from .stream import GOLDEN, mix64, random_word

__all__ = [
    "GOLDEN",
    "RefResult",
    "TernaryScale",
    "binary_ref",
    "data_scale_ref",
    "decode_ref",
    "encode_ref",
    "mix64",
    "quantize_ref",
    "random_word",
    "round_float",
    "round_fraction",
    "round_magnitude",
    "round_pow2",
    "ternary_ref",
]
