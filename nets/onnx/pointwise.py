"""Pointwise layers of imported graphs: nonlinearities, softmax, and arithmetic on two tensors.

Every layer here computes in float64 and converts as nets' own nonlinearities
do: its output to the ``activations`` role, every input gradient it returns
to ``errors``. No product goes through a MAC: an elementwise product or
quotient of two tensors is one float64 operation per value, rounded once to
``activations`` (no accumulation happens). A constant operand (a graph
constant) is used as its float64 value, unconverted, and receives no
gradient. Broadcasting follows numpy (ONNX's multidirectional broadcasting is
the same rule); the gradient of a broadcast operand is summed back to its
shape (`unbroadcast`). Imports numpy, scipy and `nets`.
"""

from __future__ import annotations

import math
from enum import StrEnum

import numpy as np

from emu.checks import parse_choice

from ..graph import MultiLayer
from ..layers import Context, Elementwise, Layer
from ..quant import Pieces, sum_pieces
from .shape import axis_index

__all__ = ["Add", "Clip", "Div", "Erf", "Gelu", "GeluApproximation", "LeakyReLU", "Mul",
           "Softmax", "Sub", "unbroadcast"]


def _erf(x: np.ndarray) -> np.ndarray:
    """scipy's erf of x, scipy.special imported on first use (0.14 s that `import nets` no longer pays for
    the two layers that use it)."""
    from scipy.special import erf as scipy_erf

    return scipy_erf(x)


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient ``g`` of a broadcast result summed back to an operand of ``shape``.

    >>> unbroadcast(np.ones((2, 3)), (3,)).tolist(), unbroadcast(np.ones((2, 3)), (2, 1)).tolist()
    ([2.0, 2.0, 2.0], [[3.0], [3.0]])
    """
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead))) if lead else g
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


class LeakyReLU(Elementwise):
    """x for x >= 0, alpha x otherwise (ONNX LeakyRelu); derivative 1 for x > 0, else alpha.

    >>> LeakyReLU(0.1).f(np.array([-2.0, 3.0]))
    array([-0.2,  3. ])
    """

    def __init__(self, alpha: float = 0.01, name: str = "") -> None:
        super().__init__(name)
        self.alpha = float(alpha)

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, x, self.alpha * x)

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where(x > 0, 1.0, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Clip(Elementwise):
    """min(max(x, lo), hi) (ONNX Clip; Relu6 is lo = 0, hi = 6); derivative 1 for lo < x < hi, else 0.
    With lo > hi every output is hi, as ONNX defines it (and the derivative 0).

    Raises:
        ValueError: a bound that is NaN.

    >>> Clip(0.0, 6.0).f(np.array([-1.0, 2.5, 7.0]))
    array([0. , 2.5, 6. ])
    >>> Clip(2.0, 1.0).f(np.array([0.0, 5.0]))
    array([1., 1.])
    """

    def __init__(self, lo: float = -math.inf, hi: float = math.inf, name: str = "") -> None:
        super().__init__(name)
        if math.isnan(lo) or math.isnan(hi):
            raise ValueError(f"Clip: lo={lo!r}, hi={hi!r}; the bounds must be numbers (not NaN)")
        self.lo, self.hi = float(lo), float(hi)

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.minimum(np.maximum(x, self.lo), self.hi)

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ((x > self.lo) & (x < self.hi)).astype(np.float64)

    def extra_repr(self) -> str:
        return f"lo={self.lo}, hi={self.hi}"


class Erf(Elementwise):
    """The error function erf(x); derivative 2 / sqrt(pi) exp(-x^2).

    >>> float(Erf().f(np.array([0.0]))[0])
    0.0
    """

    def f(self, x: np.ndarray) -> np.ndarray:
        return _erf(x)

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (2.0 / math.sqrt(math.pi)) * np.exp(-x * x)


class GeluApproximation(StrEnum):
    """How `Gelu` computes (ONNX Gelu's ``approximate`` attribute).

    >>> GeluApproximation("tanh") is GeluApproximation.TANH
    True
    """

    #: x Phi(x) = x (1 + erf(x / sqrt 2)) / 2, exactly
    NONE = "none"
    #: x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2
    TANH = "tanh"


_K = math.sqrt(2.0 / math.pi)


class Gelu(Elementwise):
    """The Gaussian error linear unit x Phi(x) (Hendrycks and Gimpel 2016), exact or tanh-approximated.

    Raises:
        ValueError: ``approximate`` not one of none, tanh.

    >>> round(float(Gelu().f(np.array([1.0]))[0]), 6)
    0.841345
    """

    def __init__(self, approximate: GeluApproximation | str = GeluApproximation.NONE, name: str = "") -> None:
        super().__init__(name)
        self.approximate = parse_choice(GeluApproximation, approximate, "Gelu", "approximate")

    def f(self, x: np.ndarray) -> np.ndarray:
        if self.approximate is GeluApproximation.TANH:
            return 0.5 * x * (1.0 + np.tanh(_K * (x + 0.044715 * x ** 3)))
        return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if self.approximate is GeluApproximation.TANH:
            t = np.tanh(_K * (x + 0.044715 * x ** 3))
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * _K * (1.0 + 3 * 0.044715 * x * x)
        return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate}"


class Softmax(Layer):
    """exp(x - max) / sum exp(x - max) along ``axis``, output to ``activations``.

    ``coerce_2d`` gives ONNX's rule before opset 13: the input is viewed as a
    matrix (prod(shape[:axis]), prod(shape[axis:])) and every row is
    normalised. Backward: dx = y (dy - sum(dy y)) over the same values, to
    ``errors``.

    >>> Softmax(-1).forward(np.log(np.array([[1.0, 3.0]])), Context.float64())
    array([[0.25, 0.75]])
    """

    def __init__(self, axis: int = -1, coerce_2d: bool = False, name: str = "") -> None:
        super().__init__(name)
        self.axis, self.coerce_2d = int(axis), bool(coerce_2d)

    def _view(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        a = axis_index(self.axis, x.ndim, self.name or "Softmax") if x.ndim else 0
        if self.coerce_2d:
            return x.reshape(math.prod(x.shape[:a]), -1), 1
        return x, a

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        v, ax = self._view(x)
        if v.size == 0:  # an empty axis (or batch): nothing to normalise, an empty output as onnxruntime's
            self._y = x.copy()
            return self.q(self._y, "activations", ctx)
        e = np.exp(v - v.max(axis=ax, keepdims=True))
        y = (e / e.sum(axis=ax, keepdims=True)).reshape(x.shape)
        self._y = y
        return self.q(y, "activations", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        y, ax = self._view(self._y)
        d = dy.reshape(y.shape)
        dx = y * (d - (d * y).sum(axis=ax, keepdims=True))
        return self.q(dx.reshape(dy.shape), "errors", ctx)

    def extra_repr(self) -> str:
        return f"axis={self.axis}" + (", coerce_2d" if self.coerce_2d else "")


class _Binary(MultiLayer):
    """y = op(a, b) (numpy broadcasting) converted to ``activations``; the input gradients to ``errors``.
    ``op`` may give y as `nets.quant.Pieces` (made as it is converted)."""

    def op(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | Pieces:  # pragma: no cover - abstract
        raise NotImplementedError

    def input_grads(self, a: np.ndarray, b: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError  # pragma: no cover - abstract

    def forward_many(self, xs: list[np.ndarray], ctx: Context) -> list[np.ndarray]:
        if len(xs) != 2:
            raise ValueError(f"{self.name or type(self).__name__}: takes two inputs, got {len(xs)}")
        a, b = xs
        self._a, self._b = a, b
        return [self.q(self.op(a, b), "activations", ctx)]

    def backward_many(self, dys: list[np.ndarray], ctx: Context) -> list[np.ndarray | None]:
        da, db = self.input_grads(self._a, self._b, dys[0])
        return [self.q(unbroadcast(da, self._a.shape), "errors", ctx),
                self.q(unbroadcast(db, self._b.shape), "errors", ctx)]


class Add(_Binary):
    """a + b (of one shape: summed piece by piece as it is converted, `sum_pieces`).

    >>> Add().forward_many([np.ones((2, 2)), np.array([1.0, 2.0])], Context.float64())[0].tolist()
    [[2.0, 3.0], [2.0, 3.0]]
    """

    def op(self, a: np.ndarray, b: np.ndarray) -> np.ndarray | Pieces:
        return sum_pieces(a, b)

    def input_grads(self, a: np.ndarray, b: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return dy, dy


class Sub(_Binary):
    """a - b."""

    def op(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    def input_grads(self, a: np.ndarray, b: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return dy, -dy


class Mul(_Binary):
    """a b, elementwise (one float64 product per value, no MAC)."""

    def op(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * b

    def input_grads(self, a: np.ndarray, b: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return dy * b, dy * a


class Div(_Binary):
    """a / b, elementwise."""

    def op(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a / b

    def input_grads(self, a: np.ndarray, b: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return dy / b, -dy * a / (b * b)
