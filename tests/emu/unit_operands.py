"""Seeded operands for the matrix-unit tests: values of a float format across its whole range."""

from __future__ import annotations

import numpy as np

import emu


def float_operands(rng: np.random.Generator, fmt: emu.formats.FloatFormat,
                   shape: tuple[int, int]) -> np.ndarray:
    """Values of ``fmt`` across its range: normals of every binade, subnormals, zeros, the largest values."""
    e = rng.integers(fmt.emin - fmt.man_bits, fmt.emax + 1, shape)
    x = rng.choice([-1.0, 1.0], shape) * rng.uniform(1.0, 2.0, shape) * np.exp2(e.astype(np.float64))
    kind = rng.random(shape)
    x[kind < 0.08] = 0.0
    x[(kind >= 0.08) & (kind < 0.12)] = float(fmt.max) * rng.choice([-1.0, 1.0])
    return emu.quantize(x, fmt, rounding="toward_zero")
