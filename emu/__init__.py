"""emu: bit-exact emulation of number formats.

Formats are immutable values (`FixedFormat`, `FloatFormat`, `Pow2Format`,
`BinaryFormat`, `TernaryFormat`) with readable names; `format("fx<2,14>")`
parses a name. `quantize`, `encode`, `decode` and `bits` convert real numbers
bit-exactly as NUMERICS.md defines. `MAC` and `matmul` emulate datapaths
(operands given as reals, or as codes already encoded: `Encoded`);
`product_format`, `lossless_acc`, `acc_bits_for_weights` and the accumulator
rules of `emu.radix` track radix points and size accumulators exactly;
`forward_error_bound` (`emu.bounds`) bounds a float layer's rounding error;
`xnor_dot` (`emu.xnor`) is the XNOR-popcount dot product. Block-scaled
formats (OCP MX, NVFP4, integers with per-tensor, channel or group scales)
and their conversion are in `emu.block` (`block_format`, `block_quantize`); a
`MAC` of block-scaled operands runs through `matmul` like any other. `emu` imports
nothing from `nets` or `hwmodel`.

Importing emu changes no global setting: numba's threading layer is chosen
explicitly with `use_threading_layer` (`emu.threads` says why and when).
"""

from . import golden
from .bitmask import mask_float32
from .block import (
    MX_FORMATS,
    BlockStats,
    IntScales,
    MXFormat,
    NVFP4Format,
    NVFP4Scales,
    ScaledIntFormat,
    block_decode,
    block_encode,
    block_format,
    block_matmul,
    block_quantize,
    int_matmul_requant,
    multiply_by_quantized_multiplier,
    quantize_multiplier,
    requantize,
)
from .bounds import forward_error_bound, unit_roundoff
from .convert import Converter, bits, decode, encode, quantize
from .datapath import MACStats, conv2d, dot, im2col, matmul
from .encoded import Encoded
from .formats import BinaryFormat, FixedFormat, FloatFormat, Format, Pow2Format, TernaryFormat
from .instruction import AddendEntry, Instruction
from .late_addend import LateAddend, ProductGroups
from .mac import MAC, MAC_PRESETS, mac_preset
from .metrics import ErrorSummary, absolute_error, error_summary, relative_error
from .modes import Overflow, Rounding
from .order import Order
from .radix import (
    AccBound,
    a2q_l1_bound,
    a2q_min_acc_bits,
    acc_bits_for_weights,
    add_format,
    admissible_widths,
    lossless_acc,
    product_format,
)
from .registry import ALL_FORMATS, SMALL_FORMATS, UnknownFormatError, get_format
from .stats import QuantStats
from .threads import use_threading_layer
from .update import UpdateResult, rounded_update
from .xnor import pack_signs, xnor_dot

format = get_format  # noqa: A001 - emu.format("e4m3") reads as intended

__all__ = [
    "ALL_FORMATS",
    "AccBound",
    "AddendEntry",
    "BinaryFormat",
    "BlockStats",
    "Converter",
    "Encoded",
    "ErrorSummary",
    "FixedFormat",
    "FloatFormat",
    "Format",
    "Instruction",
    "IntScales",
    "LateAddend",
    "MAC",
    "MACStats",
    "MAC_PRESETS",
    "MXFormat",
    "MX_FORMATS",
    "NVFP4Format",
    "NVFP4Scales",
    "Order",
    "Overflow",
    "Pow2Format",
    "ProductGroups",
    "QuantStats",
    "Rounding",
    "SMALL_FORMATS",
    "ScaledIntFormat",
    "TernaryFormat",
    "UnknownFormatError",
    "UpdateResult",
    "a2q_l1_bound",
    "a2q_min_acc_bits",
    "absolute_error",
    "acc_bits_for_weights",
    "add_format",
    "admissible_widths",
    "bits",
    "block_decode",
    "block_encode",
    "block_format",
    "block_matmul",
    "block_quantize",
    "conv2d",
    "decode",
    "dot",
    "encode",
    "error_summary",
    "format",
    "forward_error_bound",
    "get_format",
    "golden",
    "im2col",
    "int_matmul_requant",
    "lossless_acc",
    "mac_preset",
    "mask_float32",
    "matmul",
    "multiply_by_quantized_multiplier",
    "pack_signs",
    "product_format",
    "quantize",
    "quantize_multiplier",
    "relative_error",
    "requantize",
    "rounded_update",
    "unit_roundoff",
    "use_threading_layer",
    "xnor_dot",
]

