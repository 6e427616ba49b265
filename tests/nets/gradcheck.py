"""Central differences: the gradient checks' one reference."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numeric_grad(f: Callable[[], float], x: np.ndarray, idx: list[tuple[int, ...]] | None = None,
                 h: float = 1e-6) -> np.ndarray:
    """(f(x + h e_i) - f(x - h e_i)) / 2h for each index i of ``idx`` (a 1-d array in that order), or for
    every index of x (an array shaped like x); x is changed in place and restored."""
    points = list(np.ndindex(x.shape)) if idx is None else idx
    out = []
    for i in points:
        old = x[i]
        x[i] = old + h
        fp = f()
        x[i] = old - h
        fm = f()
        x[i] = old
        out.append((fp - fm) / (2 * h))
    return np.array(out).reshape(x.shape) if idx is None else np.array(out)
