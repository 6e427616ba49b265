"""The counter-based random stream of stochastic rounding, exactly (docs/semantics.md).

"Stochastic rounding and its random bits": element ``index`` under a 64-bit
``key`` sees the words ``w0 = mix64(key + (index + 1) * G)`` and ``w_j =
mix64(w_{j-1} + G)`` (all modulo 2^64, ``G = 0x9E3779B97F4A7C15``), with
splitmix64's finaliser ``mix64``. Python integers throughout.

>>> random_word(0, 0, 0) == mix64(GOLDEN)
True
>>> random_word(7, 3, 2) == mix64(mix64(random_word(7, 3, 0) + GOLDEN) + GOLDEN)
True

Imports: the standard library only.
"""

from __future__ import annotations

import math

__all__ = ["GOLDEN", "MASK64", "mix64", "random_word", "uniform53"]

MASK64 = (1 << 64) - 1
#: The splitmix64 increment (2^64 / golden ratio, odd).
GOLDEN = 0x9E3779B97F4A7C15


def mix64(z: int) -> int:
    """splitmix64's finaliser on a 64-bit word.

    ``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
    z ^= z >> 31``, every step modulo 2^64. The argument is first reduced modulo
    2^64.

    Args:
        z: any integer (taken modulo 2^64).

    Returns:
        The mixed word, in ``[0, 2**64)``.
    """
    z &= MASK64
    z ^= z >> 30
    z = (z * 0xBF58476D1CE4E5B9) & MASK64
    z ^= z >> 27
    z = (z * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return z


def random_word(key: int, index: int, j: int) -> int:
    """Word ``w_j`` of the random stream of element ``index`` under ``key``.

    ``w_0 = mix64(key + (index + 1) * G)`` and ``w_j = mix64(w_{j-1} + G)``, all
    modulo 2^64, with ``G = 0x9E3779B97F4A7C15`` (docs/semantics.md).

    Args:
        key: the 64-bit key derived from the seed (taken modulo 2^64).
        index: the C-order flat index of the element (>= 0).
        j: which word (>= 0).

    Returns:
        The word, in ``[0, 2**64)``.

    Raises:
        ValueError: ``index`` or ``j`` is negative.
    """
    if index < 0 or j < 0:
        raise ValueError(f"random_word: index={index} and j={j} must be >= 0")
    w = mix64(key + (index + 1) * GOLDEN)
    for _ in range(j):
        w = mix64(w + GOLDEN)
    return w


def uniform53(key: int, index: int) -> float:
    """u = (w0 >> 11) * 2^-53, an exact float64 in [0, 1) (binary and ternary stochastic rules)."""
    return math.ldexp(float(random_word(int(key) & MASK64, index, 0) >> 11), -53)
