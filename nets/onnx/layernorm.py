"""Layer normalisation (Ba et al. 2016; ONNX LayerNormalization) with batch normalisation's roles.

`LayerNorm` normalises every example over the axes from ``axis`` on, in
float64. Its gamma and beta are normalisation parameters, like batch
normalisation's: they are converted to the ``bn_params`` role (not
``weights``: a policy that binarises the weights leaves them real-valued
unless it sets ``bn_params``), their gradients to ``grads``; the output to
``activations``, the input gradient to ``errors``. Imports numpy and `nets`.
"""

from __future__ import annotations

import numpy as np

from ..layers import Context, Layer
from .pointwise import unbroadcast
from .shape import axis_index

__all__ = ["LayerNorm"]


def scale_shape_mismatch(shape: tuple[int, ...], x_shape: tuple[int | None, ...]) -> str | None:
    """Why scale and bias of ``shape`` do not fit an input of ``x_shape`` (None where they do, or where a
    dimension that decides is unknown): the output must keep the input's shape, as onnxruntime requires
    (a scale of higher rank, or wider than an axis, would change it).

    >>> scale_shape_mismatch((1, 1, 3), (2, 3))
    'scale and bias of shape (1, 1, 3) do not keep the shape (2, 3) of the input (rank 3 above its 2)'
    >>> scale_shape_mismatch((3,), (2, 3)) is None
    True
    """
    if len(shape) > len(x_shape):
        return (f"scale and bias of shape {shape} do not keep the shape {tuple(x_shape)} of the input (rank"
                f" {len(shape)} above its {len(x_shape)})")
    for s, d in zip(shape[::-1], x_shape[::-1], strict=False):
        if s != 1 and d is not None and s != d:
            return f"scale and bias of shape {shape} do not keep the shape {tuple(x_shape)} of the input"
    return None


class LayerNorm(Layer):
    """y = gamma (x - mean) / sqrt(var + eps) + beta, mean and (biased) var over axes ``axis`` ... last.

    ``shape`` is the shape of gamma and beta (broadcast against the
    normalised axes). No running statistics: training and evaluation compute alike.

    >>> ln = LayerNorm((2,))
    >>> ln.forward(np.array([[1.0, 3.0]]), Context.float64()).round(4).tolist()
    [[-1.0, 1.0]]
    """

    def __init__(self, shape: tuple[int, ...], axis: int = -1, eps: float = 1e-5, name: str = "") -> None:
        super().__init__(name)
        self.params["gamma"] = np.ones(shape)
        self.params["beta"] = np.zeros(shape)
        self.axis, self.eps = int(axis), float(eps)

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        a = axis_index(self.axis, x.ndim, self.name or "LayerNormalization")
        why = scale_shape_mismatch(self.params["gamma"].shape, x.shape)
        if why:
            raise ValueError(f"{self.name or 'LayerNormalization'}: {why}")
        axes = tuple(range(a, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        self._inv = 1.0 / np.sqrt(var + self.eps)
        self._xhat = (x - mean) * self._inv
        self._axes = axes
        self._g = self.q_param("gamma", "bn_params", ctx, tensor="gamma")
        b = self.q_param("beta", "bn_params", ctx, tensor="beta")
        return self.q(self._xhat * self._g + b, "activations", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        axes = self._axes
        shape = self.params["gamma"].shape
        self.grads["gamma"] = self.q(unbroadcast(dy * self._xhat, shape), "grads", ctx, tensor="gamma")
        self.grads["beta"] = self.q(unbroadcast(dy, shape), "grads", ctx, tensor="beta")
        m = int(np.prod([dy.shape[i] for i in axes]))
        dxhat = dy * self._g
        dx = (self._inv / m) * (m * dxhat - dxhat.sum(axis=axes, keepdims=True)
                                - self._xhat * (dxhat * self._xhat).sum(axis=axes, keepdims=True))
        return self.q(dx, "errors", ctx)

    def extra_repr(self) -> str:
        return f"{self.params['gamma'].shape}, axis={self.axis}, eps={self.eps}"
