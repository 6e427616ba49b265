"""The inputs of every conversion: real arrays as 64-bit patterns, element indices, and seeds.

`as_bits` admits the real dtypes (float16/32/64, ml_dtypes' floats, integers up
to 64 bits, ml_dtypes' int1/2/4 and uint1/2/4) and refuses the rest by name;
`as_real` gives their float64 values for conversions that compute in float64,
refusing integers float64 cannot hold; `seed_key` turns a seed into the 64-bit key of the counter-based random
stream (docs/semantics.md, "Stochastic rounding and its random bits"), and
`check_seed` refuses the seeds it would refuse without drawing. Imports numpy
and `emu.checks`.
"""

from __future__ import annotations

import numpy as np

from .checks import check_int, inexact_int

__all__ = ["as_bits", "as_real", "as_word", "check_seed", "flat_index", "seed_key", "seed_word"]

#: ml_dtypes' floats (each value a float64) and narrow integers (each an int64), by dtype name: emu does
#: not import ml_dtypes, and a name an older ml_dtypes lacks is never met
_ML_DTYPE_FLOATS = {
    "bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
    "float8_e4m3b11fnuz", "float8_e4m3", "float8_e3m4", "float8_e5m3fnu", "float8_e8m0fnu",
    "float6_e2m3fn", "float6_e3m2fn", "float4_e2m1fn",
}  # fmt: skip
_GENERATOR = np.random.Generator
_ML_DTYPE_INTS = {"int1", "uint1", "int2", "uint2", "int4", "uint4"}


def seed_key(seed: object, func: str = "quantize") -> np.uint64:
    """The 64-bit key of the random stream for ``seed`` (docs/semantics.md).

    ``seed`` is an int >= 0, a SeedSequence, a Generator (one raw 64-bit draw
    is taken from its bit generator) or None (fresh entropy).
    """
    if isinstance(seed, np.random.Generator):  # one raw 64-bit draw of its bit generator (the fastest draw)
        return np.uint64(seed.bit_generator.random_raw())
    if isinstance(seed, np.random.SeedSequence):
        return np.uint64(seed.generate_state(1, np.uint64)[0])
    if seed is None:
        return np.uint64(np.random.SeedSequence().generate_state(1, np.uint64)[0])
    return np.uint64(np.random.SeedSequence(_seed_int(seed, func)).generate_state(1, np.uint64)[0])


def check_seed(seed: object, func: str) -> None:
    """Refuse a ``seed`` that `seed_key` would refuse, drawing nothing from it: the entry points that take
    ``seed=`` check it whatever the rounding (a deterministic one ignores the seed), and a Generator's
    stream stays where it is. None and a Generator, the seeds of the hot paths, pass two comparisons.

    >>> g = np.random.default_rng(0)
    >>> check_seed(g, "encode"), g.bit_generator.state == np.random.default_rng(0).bit_generator.state
    (None, True)
    >>> check_seed(-1, "encode")
    Traceback (most recent call last):
    ...
    ValueError: encode: seed=-1 outside the allowed range [0, inf)
    """
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence)):
        return
    _seed_int(seed, func)


def _seed_int(seed: object, func: str) -> int:
    """An int seed >= 0 as an int; anything else `seed_key` does not take is refused naming ``func``."""
    try:
        return check_int(seed, func, "seed", 0)
    except TypeError:
        raise TypeError(f"{func}: seed={seed!r} must be an int >= 0, a SeedSequence, a Generator"
                        " or None") from None


def as_word(key: np.uint64 | int) -> int:
    """The int64 with the bits of a 64-bit key, as a Python int (what the fast conversion kernels take:
    numba types an int argument in a fraction of the time a new numpy scalar takes).

    >>> as_word(np.uint64(5)), as_word(np.uint64(2**64 - 1))
    (5, -1)
    """
    w = int(key)
    return w - ((w >> 63) << 64)


def seed_word(seed: object, func: str = "quantize") -> int:
    """`seed_key`'s key as its int64 word (`as_word`), drawn the same way (a Generator's one raw draw taken
    without a numpy scalar in between).

    >>> g, h = np.random.default_rng(1), np.random.default_rng(1)
    >>> seed_word(g) == as_word(seed_key(h))
    True
    """
    if type(seed) is _GENERATOR or isinstance(seed, np.random.Generator):
        w = seed.bit_generator.random_raw()  # a Python int below 2^64
        return w - ((w >> 63) << 64)
    return as_word(seed_key(seed, func))


def as_bits(x: object, func: str, name: str = "x") -> tuple[np.ndarray, np.ndarray, int]:
    """Return (the array as given, its flat 64-bit patterns, input kind); a refusal names x as ``name``.

    Kind 0: float64 bit patterns; 1: int64 values; 2: uint64 values.
    """
    a = np.asarray(x)
    dt = a.dtype
    if dt.kind == "f":
        if dt.itemsize > 8:
            raise TypeError(
                f"{func}: {name} has dtype {dt}, which holds more precision than float64; convert it"
                " explicitly"
            )
        flat = np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
        return a, flat.view(np.uint64), 0
    if dt.kind == "i":
        return a, np.ascontiguousarray(a, dtype=np.int64).reshape(-1).view(np.uint64), 1
    if dt.kind == "u":
        return a, np.ascontiguousarray(a, dtype=np.uint64).reshape(-1), 2
    if dt.kind == "V" and dt.name in _ML_DTYPE_FLOATS:
        flat = np.ascontiguousarray(a.astype(np.float64)).reshape(-1)
        return a, flat.view(np.uint64), 0
    if dt.kind == "V" and dt.name in _ML_DTYPE_INTS:
        return a, np.ascontiguousarray(a.astype(np.int64)).reshape(-1).view(np.uint64), 1
    what = {"b": "bool", "c": "complex", "O": "object", "U": "str", "S": "bytes"}.get(dt.kind, str(dt))
    raise TypeError(
        f"{func}: {name} has dtype {what}; expected real numbers (float16/32/64, integers up to 64 bits)"
    )


def as_real(x: object, func: str, name: str = "x") -> np.ndarray:
    """x as float64 values (its shape kept), for conversions that compute from float64 values (block
    formats, the data scales and thresholds of binary and ternary formats). An integer float64 cannot
    hold (beyond 2^53 and not on its grid) is refused, since its rounding to float64 would be a first
    rounding before the conversion's own (convert it explicitly to accept that).

    >>> as_real(np.array([2**53 + 1]), "f")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: f: x holds integers that float64 cannot hold exactly (first at index (0,): 90071992547...
    """
    a, xb, kind = as_bits(x, func, name)
    f = (xb.view(np.float64) if kind == 0 else xb.view(np.int64) if kind == 1 else xb).astype(np.float64)
    if kind:
        ints = xb.view(np.int64) if kind == 1 else xb
        i = inexact_int(ints)
        if i is not None:
            raise ValueError(f"{func}: {name} holds integers that float64 cannot hold exactly (first at index"
                             f" {flat_index(a.shape, i)}: {int(ints[i])}); this conversion computes from"
                             f" float64 values: pass {name}.astype(np.float64) to accept that rounding")
    return f.reshape(a.shape)


def flat_index(shape: tuple[int, ...], flat: int) -> tuple[int, ...]:
    """The multi-index of C-order element ``flat`` of an array of ``shape`` (``()`` for a scalar)."""
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
