"""emu: bit-exact emulation of number formats.

Formats are immutable values (`FixedFormat`, `FloatFormat`, `Pow2Format`,
`BinaryFormat`, `TernaryFormat`) with readable names; `format("fx<2,14>")`
parses a name. `quantize`, `encode`, `decode` and `bits` convert real numbers
bit-exactly as NUMERICS.md defines. `emu` imports nothing from `nets` or
`hwmodel`.

Unless NUMBA_THREADING_LAYER is set, emu selects numba's ``workqueue``
threading layer: the default OpenMP layer's spinning threads and OpenBLAS's
slow every kernel that follows a BLAS call several-fold, and emu alternates the
two. (workqueue does not allow parallel kernels launched from several Python
threads at once; set NUMBA_THREADING_LAYER=omp or tbb for that.)
"""

import os as _os

import numba as _numba

if "NUMBA_THREADING_LAYER" not in _os.environ:
    _numba.config.THREADING_LAYER = "workqueue"

from .bitmask import mask_float32
from .convert import bits, decode, encode, quantize
from .mac import MAC, MAC_PRESETS, Order, mac_preset
from .matmul import MACStats, conv2d, dot, matmul
from .formats import BinaryFormat, FixedFormat, FloatFormat, Format, Pow2Format, TernaryFormat
from .metrics import ErrorSummary, absolute_error, error_summary, relative_error
from .modes import Overflow, Rounding
from .registry import ALL_FORMATS, SMALL_FORMATS, UnknownFormatError, get_format
from .stats import QuantStats

format = get_format  # noqa: A001 - emu.format("e4m3") reads as intended

__all__ = [
    "ALL_FORMATS",
    "SMALL_FORMATS",
    "BinaryFormat",
    "ErrorSummary",
    "FixedFormat",
    "FloatFormat",
    "Format",
    "MAC",
    "MACStats",
    "MAC_PRESETS",
    "Order",
    "Overflow",
    "Pow2Format",
    "QuantStats",
    "Rounding",
    "TernaryFormat",
    "UnknownFormatError",
    "absolute_error",
    "bits",
    "conv2d",
    "decode",
    "dot",
    "encode",
    "error_summary",
    "format",
    "get_format",
    "mac_preset",
    "mask_float32",
    "matmul",
    "quantize",
    "relative_error",
]
