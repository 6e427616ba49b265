"""Weight initialisations: Glorot, He, orthonormal, sparse, and LSUV rescaling.

Each takes a weight shape ((in, out) for Linear, (C_out, C_in, kh, kw) for
Conv2d) and a numpy Generator. Fan-in and fan-out follow Glorot and Bengio
2010 (for convolutions times the kernel area). `lsuv` is the layer-sequential
unit-variance procedure of Mishkin and Matas 2016. Imports numpy only (and
`nets.layers` for `lsuv`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["INITS", "fans", "glorot_normal", "glorot_uniform", "he_normal", "lsuv", "orthonormal", "sparse"]


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a Linear (in, out) or Conv2d (out, in, kh, kw) weight."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 4:
        area = shape[2] * shape[3]
        return shape[1] * area, shape[0] * area
    raise ValueError(f"fans: weight shape {shape} is neither (in, out) nor (out, in, kh, kw)")


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    fi, fo = fans(shape)
    a = np.sqrt(6.0 / (fi + fo))
    return rng.uniform(-a, a, shape)


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """N(0, 2 / (fan_in + fan_out))."""
    fi, fo = fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / (fi + fo)), shape)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """N(0, 2 / fan_in) (He et al. 2015, for ReLU networks)."""
    fi, _ = fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / fi), shape)


def _as_matrix(shape: tuple[int, ...]) -> tuple[int, int]:
    fi, _ = fans(shape)
    rows = shape[1] if len(shape) == 2 else shape[0]
    return rows, fi


def orthonormal(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A (semi-)orthonormal matrix from the QR decomposition of a Gaussian one (Saxe et al. 2014)."""
    out_, fi = _as_matrix(shape)
    a = rng.standard_normal((max(out_, fi), min(out_, fi)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    m = q if out_ >= fi else q.T  # (out, fan_in)
    return m.T.reshape(shape) if len(shape) == 2 else m.reshape(shape)


def sparse(shape: tuple[int, ...], rng: np.random.Generator, nonzero: int = 15) -> np.ndarray:
    """Sparse initialisation (Martens 2010): each unit gets ``nonzero`` N(0, 1) incoming weights."""
    out_, fi = _as_matrix(shape)
    m = np.zeros((out_, fi))
    k = min(nonzero, fi)
    for u in range(out_):
        m[u, rng.choice(fi, k, replace=False)] = rng.standard_normal(k)
    return m.T.reshape(shape) if len(shape) == 2 else m.reshape(shape)


#: Initialisations by name.
INITS: dict[str, Callable[..., np.ndarray]] = {
    "glorot": glorot_uniform, "glorot_uniform": glorot_uniform, "glorot_normal": glorot_normal,
    "he": he_normal, "orthonormal": orthonormal, "sparse": sparse,
}


def lsuv(model: Any, x: np.ndarray, tol: float = 0.1, max_iter: int = 10) -> dict[str, float]:
    """Layer-sequential unit variance (Mishkin and Matas 2016), in float64.

    Layer by layer (Linear and Conv2d, in order), the weights are rescaled
    until the variance of that layer's output on the batch ``x`` is within
    ``tol`` of 1. Returns the final output variance of each layer.
    """
    from .layers import Context, Conv2d, Linear

    ctx = Context.float64(training=False)
    out: dict[str, float] = {}
    for layer in model.root.layers():
        if not isinstance(layer, (Linear, Conv2d)):
            continue
        var = 0.0
        for _ in range(max_iter):
            captured: dict[str, np.ndarray] = {}
            fwd = layer.forward

            def spy(inp: np.ndarray, c: Context, fwd: Any = fwd,
                    captured: dict[str, np.ndarray] = captured) -> np.ndarray:
                y = fwd(inp, c)
                captured["y"] = y
                return y

            layer.forward = spy  # type: ignore[method-assign]
            try:
                model.root.forward(x, ctx)
            finally:
                del layer.forward
            var = float(captured["y"].var())
            if abs(var - 1.0) < tol or var == 0.0:
                break
            layer.params["W"] /= np.sqrt(var)
        out[layer.name] = var
    return out
