"""Losses: value and gradient with respect to the network output, in float64.

Each returns (mean loss over the batch, d loss / d output). Labels are class
indices (n,). `example_losses` gives each example's loss alone, computed from
its row only (evaluation sums them exactly: `nets.train.evaluate`). Imports
numpy and numba.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["LOSSES", "cross_entropy", "example_losses", "mse", "square_hinge"]


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((y.shape[0], k))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


@njit(cache=True)
def _labels_inside(y: np.ndarray, k: int) -> bool:
    """Whether 0 <= y[i] < k for every label (one pass; a loss checks every batch)."""
    for v in y:
        if v < 0 or v >= k:
            return False
    return True


def _check(z: np.ndarray, y: np.ndarray, name: str) -> None:
    if z.ndim != 2 or y.shape != (z.shape[0],):
        raise ValueError(f"{name}: outputs {z.shape} and labels {y.shape} do not match"
                         " (need (n, k) and (n,))")
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels have dtype {y.dtype}; expected integer class indices")
    if not _labels_inside(y, z.shape[1]):
        raise ValueError(f"{name}: labels outside [0, {z.shape[1] - 1}]")


def cross_entropy(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax cross-entropy: mean(-log softmax(z)[y]); gradient (softmax(z) - onehot(y)) / n."""
    _check(z, y, "cross_entropy")
    s = z - z.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    n = z.shape[0]
    rows = np.arange(n)
    loss = -(logp[rows, y].sum() / n)  # the mean, as np.mean computes it, without its Python wrapper
    d = np.exp(logp)
    d[rows, y] -= 1.0  # softmax - onehot(y): the other entries lose 0, exactly
    d /= n
    return float(loss), d


def mse(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error against one-hot targets: mean over the batch of sum_k (z - t)^2 / 2."""
    _check(z, y, "mse")
    d = z - _onehot(y, z.shape[1])
    n = z.shape[0]
    return float(0.5 * (d * d).sum() / n), d / n


def square_hinge(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Square hinge loss with targets t in {-1, +1} (BinaryConnect): mean_n sum_k max(0, 1 - t z)^2.

    t is +1 for the labelled class and -1 for the others; the gradient is
    -2 t max(0, 1 - t z) / n. BinaryConnect's reference code averages over
    the k classes too (this loss divided by k: the same minimiser, and the
    same Adam steps up to Adam's epsilon).

    >>> loss, d = square_hinge(np.array([[0.5, -2.0, 0.0]]), np.array([0]))
    >>> loss, d.tolist()  # (1 - 0.5)^2 + 0 + (1 - 0)^2
    (1.25, [[-1.0, 0.0, 2.0]])
    """
    _check(z, y, "square_hinge")
    t = 2.0 * _onehot(y, z.shape[1]) - 1.0
    m = np.maximum(0.0, 1.0 - t * z)
    n = z.shape[0]
    return float((m * m).sum() / n), -2.0 * t * m / n


#: Losses by name.
LOSSES = {"cross_entropy": cross_entropy, "mse": mse, "square_hinge": square_hinge}


@njit(cache=True)
def _rows_cross_entropy(z: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    for i in range(z.shape[0]):
        m, nan = z[i, 0], z[i, 0] != z[i, 0]
        for j in range(1, z.shape[1]):
            if z[i, j] != z[i, j]:
                nan = True
            elif z[i, j] > m:
                m = z[i, j]
        if nan:  # as np.max, whose NaN makes the loss NaN
            out[i] = np.nan
            continue
        se = 0.0
        for j in range(z.shape[1]):
            se += np.exp(z[i, j] - m)
        out[i] = -((z[i, y[i]] - m) - np.log(se))


@njit(cache=True)
def _rows_mse(z: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    for i in range(z.shape[0]):
        s = 0.0
        for j in range(z.shape[1]):
            d = z[i, j] - (1.0 if j == y[i] else 0.0)
            s += d * d
        out[i] = 0.5 * s


@njit(cache=True)
def _rows_square_hinge(z: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    for i in range(z.shape[0]):
        s = 0.0
        for j in range(z.shape[1]):
            m = 1.0 - (1.0 if j == y[i] else -1.0) * z[i, j]
            if m > 0.0 or m != m:  # np.maximum(0, m): NaN stays
                s += m * m
        out[i] = s


_ROWS = {"cross_entropy": _rows_cross_entropy, "mse": _rows_mse, "square_hinge": _rows_square_hinge}


def example_losses(name: str, z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each example's loss (n,) under the loss ``name`` of `LOSSES`: row i's from z[i] and y[i] alone, its
    classes summed from the first up (no mean over the batch), so its bits do not depend on the other
    rows; the losses' mean is the loss of `LOSSES` up to its rounding.

    >>> example_losses("square_hinge", np.array([[0.5, -2.0, 0.0], [1.0, 0.0, -1.0]]), np.array([0, 1]))
    array([1.25, 5.  ])
    """
    if name not in _ROWS:
        raise ValueError(f"example_losses: loss={name!r} is not one of {', '.join(LOSSES)}")
    z = np.ascontiguousarray(z, np.float64)
    _check(z, y, name)
    out = np.empty(z.shape[0])
    _ROWS[name](z, np.ascontiguousarray(y, np.int64), out)
    return out
