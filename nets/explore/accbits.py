"""How many integer bits each layer's accumulator needs: LB_wrap and LB_clip
(de Bruin et al. 2018).

A wrapping accumulator computes modulo 2^W, so it gives the exact result as
long as the final sum fits: LB_wrap is the integer bits of the largest
|final sum|. A clipping (saturating) accumulator loses information at the
first partial sum that leaves its range: LB_clip is the integer bits of the
largest |partial sum| in the accumulation order (sequential, starting at the
bias). Both are measured on actual data: one forward pass under a policy
records each weighted layer's operands (as the policy converts them), and the
partial sums are computed in float64: exactly for fixed operands whose
products and sums stay within 53 bits of their step (the narrow formats this
study is about), to float64 precision otherwise, which decides the integer
bits unless a maximum lies within one float64 step of a power of two.

"Integer bits" counts the sign bit, as in fx<IL,FL>: the smallest IL with
|v| < 2^(IL-1) for every value v (at least 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..layers import Context, Conv2d, Linear
from ..models import Model
from ..policy import PrecisionPolicy
from ..quant import Quantizer

__all__ = ["LayerAccBits", "int_bits", "layer_acc_bits"]


@dataclass(frozen=True)
class LayerAccBits:
    """One layer's accumulator needs on the data: K, LB_wrap, LB_clip, and the extremes they come from."""

    name: str
    k: int
    lb_wrap: int
    lb_clip: int
    max_final: float
    max_partial: float


def int_bits(m: float) -> int:
    """The smallest IL >= 1 with m < 2^(IL-1) (m >= 0).

    >>> int_bits(0.0), int_bits(0.99), int_bits(1.0), int_bits(5.5)
    (1, 1, 2, 4)
    """
    if m < 0 or not math.isfinite(m):
        raise ValueError(f"int_bits: m={m!r} must be finite and >= 0")
    if m == 0:
        return 1
    e = math.floor(math.log2(m))
    while 2.0 ** e <= m:  # guard the log's rounding
        e += 1
    while e > 0 and 2.0 ** (e - 1) > m:
        e -= 1
    return max(1, e + 1)


def _partial_extremes(a: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                      rows: int = 64) -> tuple[float, float]:
    """(max |final sum|, max |partial sum|) of b + sum_k a[i,k] w[k,j] in increasing k, every i, j."""
    start = np.zeros(w.shape[1]) if b is None else b
    fin = part = float(np.max(np.abs(start), initial=0.0))
    for i0 in range(0, a.shape[0], rows):
        s = np.cumsum(a[i0:i0 + rows, :, None] * w[None, :, :], axis=1) + start
        part = max(part, float(np.max(np.abs(s), initial=0.0)))
        fin = max(fin, float(np.max(np.abs(s[:, -1, :]), initial=0.0)) if s.shape[1] else fin)
    return fin, part


def layer_acc_bits(model: Model, x: np.ndarray, policy: PrecisionPolicy | None = None) -> list[LayerAccBits]:
    """LB_wrap and LB_clip of every Linear/Conv2d layer on inputs ``x`` under ``policy``
    (evaluation mode; operands as the policy converts them)."""
    ctx = Context(policy or PrecisionPolicy.float64(), Quantizer(0), False, np.random.default_rng(0))
    model.forward(np.asarray(x, np.float64), ctx)
    out = []
    for layer in model.layers():
        if isinstance(layer, Linear):
            a, w = layer._x, layer._w
        elif isinstance(layer, Conv2d):
            a, w = layer._cols, layer._w.reshape(layer.c_out, -1).T
        else:
            continue
        b = layer.q(layer.params["b"], "biases", ctx) if "b" in layer.params else None
        fin, part = _partial_extremes(a, w, b)
        out.append(LayerAccBits(layer.name, a.shape[1], int_bits(fin), int_bits(part), fin, part))
    return out
