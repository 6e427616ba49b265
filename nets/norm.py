"""Batch normalisation with its own precision roles.

`BatchNorm` normalises over the batch (and the spatial axes of NCHW maps) in
float64. Its parameters gamma and beta are converted to the layer's
``bn_params`` role before use, its running mean and variance are stored
converted to the ``bn_stats`` role, its output to ``activations``, its input
gradient to ``errors`` and the gradients of gamma and beta to ``grads``. The
roles of the weighted layers (``weights``, ``biases``) do not apply: a policy
that binarises the weights (BinaryConnect, TWN, binarized networks) leaves
gamma and beta real-valued unless it sets ``bn_params``. Imports numpy, numba
and `nets.layers`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from emu.checks import check_real

from .args import check_size
from .layers import Context, Layer
from .quant import Pieces

__all__ = ["BatchNorm"]


@njit(parallel=True, cache=True)
def _normalise_maps(x, mean, inv, g, b, xhat, y):
    """xhat = (x - mean) * inv and y = xhat * g + b for x (N, C, H*W), per channel: the numpy expression's
    roundings (no fused multiply-add: numba contracts nothing without fastmath), in one pass (training,
    which keeps xhat for the backward pass)."""
    n, c, hw = x.shape
    for t in prange(n * c):
        i, ch = t // c, t % c
        m, s, gg, bb = mean[ch], inv[ch], g[ch], b[ch]
        for p in range(hw):
            v = (x[i, ch, p] - m) * s
            xhat[i, ch, p] = v
            y[i, ch, p] = v * gg + bb


@njit(nogil=True, cache=True)
def _normalise_piece(x, lo, hi, hw, c, mean, inv, g, b, out):
    """out[k - lo] = (x[k] - mean[ch]) * inv[ch] * g[ch] + b[ch] for the flat NCHW elements lo <= k < hi
    (ch = (k // hw) % c, hw the size of a map): `_normalise_maps`'s y, the same roundings, for one piece
    of the maps, without the GIL."""
    k = lo
    while k < hi:
        ch = (k // hw) % c
        end = min(hi, (k // hw + 1) * hw)
        m, s, gg, bb = mean[ch], inv[ch], g[ch], b[ch]
        xs, os = x[k:end], out[k - lo:end - lo]  # indexed from 0, so the loop vectorises
        for p in range(end - k):
            os[p] = (xs[p] - m) * s * gg + bb
        k = end


class BatchNorm(Layer):
    """Batch normalisation over the batch (and the axes after the features: NCHW maps, (N, C, L)
    sequences), with running statistics.

    Training: y = gamma (x - mean_B) / sqrt(var_B + eps) + beta, and the
    running statistics become Q_bn_stats((1 - momentum) running + momentum
    batch) (the variance unbiased, count / (count - 1)); evaluation uses the
    running statistics. The normalisation runs in float64; gamma and beta
    are converted to ``bn_params``, y to ``activations``.

    >>> import nets
    >>> bn = BatchNorm(2, name="bn")
    >>> pol = nets.PrecisionPolicy(nets.LayerPolicy(weights="binary", bn_stats="fx<2,2>"))
    >>> ctx = Context(pol, nets.Quantizer(0))
    >>> y = bn.forward(np.array([[0.0, 1.0], [1.0, 3.0]]), ctx)  # gamma = 1 stays 1 (not binarised)
    >>> bn.running_mean  # 0.05 and 0.2 on the grid of 0.25
    array([0.  , 0.25])
    """

    def __init__(self, n: int, eps: float = 1e-5, momentum: float = 0.1, name: str = "") -> None:
        super().__init__(name)
        n = check_size(n, "BatchNorm", "n")
        self.params["gamma"] = np.ones(n)
        self.params["beta"] = np.zeros(n)
        self.running_mean = np.zeros(n)
        self.running_var = np.ones(n)
        self.eps = check_real(eps, "BatchNorm", "eps", 0.0)  # 0 is ONNX's to allow
        self.momentum = check_real(momentum, "BatchNorm", "momentum", 0.0, 1.0)  # 0: statistics kept
        self.n = n

    def _axes(self, x: np.ndarray) -> tuple[int, ...]:
        """The axes the statistics run over: all but axis 1, the features (N, C) or (N, C, D1, ..., Dk)."""
        if x.ndim >= 2 and x.shape[1] == self.n:
            return (0, *range(2, x.ndim))
        raise ValueError(f"{self.name or 'BatchNorm'}: input shape {x.shape} has no axis 1 of {self.n}"
                         " features (expected (N, C) or (N, C, D1, ..., Dk))")

    def _view(self, v: np.ndarray, x: np.ndarray) -> np.ndarray:
        return v.reshape(1, -1, *([1] * (x.ndim - 2)))

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        axes = self._axes(x)
        if ctx.training:
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            m = self.momentum
            count = x.size // self.n
            self.running_mean = self.q((1 - m) * self.running_mean + m * mean, "bn_stats", ctx,
                                       tensor="running_mean")
            self.running_var = self.q((1 - m) * self.running_var + m * var * count / max(count - 1, 1),
                                      "bn_stats", ctx, tensor="running_var")
        else:
            mean, var = self.running_mean, self.running_var
        self._inv = 1.0 / np.sqrt(var + self.eps)
        self._axes_used = axes
        g = self.q_param("gamma", "bn_params", ctx, tensor="gamma")
        b = self.q_param("beta", "bn_params", ctx, tensor="beta")
        self._g = g
        self._x, self._mean, self._stats_fixed = x, mean, not ctx.training
        if x.ndim == 4 and x.dtype == np.float64 and not ctx.training:  # maps: y made as it is converted,
            self._xhat = None  # and x_hat made again if a backward asks
            flat, inv = np.ascontiguousarray(x).reshape(-1), self._inv
            c, hw = x.shape[1], x.shape[2] * x.shape[3]

            def fill(lo: int, hi: int, buf: np.ndarray) -> None:
                _normalise_piece(flat, lo, hi, hw, c, mean, inv, g, b, buf)
            return self.q(Pieces(x.shape, fill), "activations", ctx)
        if x.ndim == 4 and x.dtype == np.float64:  # training maps: one pass per channel, the same roundings
            y, xhat = np.empty(x.shape), np.empty(x.shape)
            n, c = x.shape[:2]
            _normalise_maps(np.ascontiguousarray(x).reshape(n, c, -1), mean, self._inv, g, b,
                            xhat.reshape(n, c, -1), y.reshape(n, c, -1))
        else:
            xhat = self._normalised(x, mean)
            y = xhat * self._view(g, x)
            y += self._view(b, x)
        self._xhat = xhat
        return self.q(y, "activations", ctx)

    def _normalised(self, x: np.ndarray, mean: np.ndarray) -> np.ndarray:
        xhat = x - self._view(mean, x)
        xhat *= self._view(self._inv, x)  # in place: the roundings of (x - mean) * inv
        return xhat

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        """The gradients after a training forward pass (batch statistics, which depend on x), or after an
        evaluation one (the running statistics, constants: dx = dy gamma / sqrt(var + eps))."""
        axes = self._axes_used
        xhat = self._normalised(self._x, self._mean) if self._xhat is None else self._xhat
        self.grads["gamma"] = self.q((dy * xhat).sum(axis=axes), "grads", ctx, tensor="gamma")
        self.grads["beta"] = self.q(dy.sum(axis=axes), "grads", ctx, tensor="beta")
        dxhat = dy * self._view(self._g, dy)
        if self._stats_fixed:
            return self.q(dxhat * self._view(self._inv, dy), "errors", ctx)
        m = dy.size // self.n
        dx = (self._view(self._inv, dy) / m) * (
            m * dxhat - self._view(dxhat.sum(axis=axes), dy)
            - xhat * self._view((dxhat * xhat).sum(axis=axes), dy))
        return self.q(dx, "errors", ctx)

    def extra_repr(self) -> str:
        return f"{self.n}"
