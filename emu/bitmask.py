"""The bit-mask method of reduced-precision studies, as a named helper.

AND-ing a float32 with a mask that keeps the sign, the 8 exponent bits and the
top M mantissa bits is exactly ``toward_zero`` rounding to ``fp<8,M>`` with
float32's exponent (bias 127, subnormals, inf/NaN): the tests check this
equivalence. Imports numpy and `emu.checks`.
"""

from __future__ import annotations

import numpy as np

from .checks import check_int, real_array

__all__ = ["mask_float32"]


def mask_float32(x: object, man_bits: int) -> np.ndarray:
    """Keep the sign, exponent and top ``man_bits`` mantissa bits of float32 x.

    Layout of float32: ``0bS_EEEEEEEE_MMMMMMMMMMMMMMMMMMMMMMM``; the mask is
    ``0xFF800000 | (((1 << man_bits) - 1) << (23 - man_bits))``. Inputs that
    are not float32 are first rounded to float32 (nearest-even). NaN inputs
    whose payload lies only in the dropped bits become inf, as the literal
    method does.

    >>> mask_float32([1.9999999, -3.3], 2)
    array([ 1.75, -3.  ], dtype=float32)

    Raises:
        ValueError: ``man_bits`` outside [0, 23].
        TypeError: x is not real (bool, complex, object, str), or ``man_bits`` is not an int.
    """
    man_bits = check_int(man_bits, "mask_float32", "man_bits", 0, 23)
    a = real_array(x, "mask_float32", "x").astype(np.float32)
    mask = np.uint32(0xFF800000 | (((1 << man_bits) - 1) << (23 - man_bits)))
    return (a.view(np.uint32) & mask).view(np.float32)
