"""Pooling layers of imported graphs: padded and dilated max/average pooling, global average pooling.

`Pool2d` is ONNX MaxPool/AveragePool with pads (top, left, bottom, right)
and dilations (nets' `MaxPool2d`/`AvgPool2d` have neither and serve the
plain case). `GlobalAveragePool` averages every spatial axis. Both compute
in float64 and convert their output to ``activations`` and their input
gradient to ``errors``, as nets' pooling does. A dilated window can hold
padding only: it gives what onnxruntime gives (`ORT_EMPTY_MAX`, 0 for an
average) and passes no gradient. Imports numpy and `nets`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np

from emu.checks import int_pair, parse_choice

from ..layers import Context, Layer
from .products import col2im_dilated, im2col_dilated

__all__ = ["ORT_EMPTY_MAX", "GlobalAveragePool", "Pool2d", "PoolKind"]

#: onnxruntime's MaxPool of a window of padding only, by the ONNX type of the pooled tensor (FLOAT 1,
#: FLOAT16 10, DOUBLE 11): the lowest finite float32 or float64, where its kernels start the maximum, and
#: -inf from its float16 kernel
ORT_EMPTY_MAX = {1: float(np.finfo(np.float32).min), 10: -np.inf, 11: float(np.finfo(np.float64).min)}


class PoolKind(StrEnum):
    """What `Pool2d` takes over a window.

    >>> PoolKind("max") is PoolKind.MAX
    True
    """

    #: the maximum (the first on ties); pad cells never win
    MAX = "max"
    #: the mean, over the whole window (``count_include_pad``) or over its cells inside the input
    AVG = "avg"


class Pool2d(Layer):
    """Max or average over kh x kw windows with pads (top, left, bottom, right) and dilation, NCHW.

    Max pooling pads with -inf; average pooling divides by kh kw when
    ``count_include_pad`` (pads count as zeros), else by the number of the
    window's cells inside the input (ONNX's default). A window with no cell
    inside the input (dilated: all its taps in the padding) gives
    ``empty_max`` (max; by default float32's lowest, as onnxruntime gives for a
    float tensor) or 0 (average, as onnxruntime), and passes no gradient.

    Raises:
        ValueError: a size below 1, a negative pad, a pad not smaller than the dilated kernel,
            a kind not one of PoolKind's.

    >>> p = Pool2d(PoolKind.AVG, 2, stride=1, pads=(1, 1, 0, 0))
    >>> p.forward(np.ones((1, 1, 2, 2)), Context.float64())[0, 0].tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """

    def __init__(self, kind: PoolKind | str, kernel: Any, stride: Any = None, pads: Any = (0, 0, 0, 0),
                 dilation: Any = 1, count_include_pad: bool = False, name: str = "",
                 empty_max: float = ORT_EMPTY_MAX[1]) -> None:
        super().__init__(name)
        self.kind = parse_choice(PoolKind, kind, "Pool2d", "kind")
        who = type(self).__name__
        self.kernel = int_pair(kernel, who, "kernel")
        self.stride = int_pair(stride, who, "stride") if stride is not None else self.kernel
        self.dilation = int_pair(dilation, who, "dilation")
        self.pads = tuple(int(p) for p in pads)
        ext = [d * (k - 1) + 1 for d, k in zip(self.dilation, self.kernel, strict=True)]
        if (len(self.pads) != 4 or min(self.kernel + self.stride + self.dilation) < 1 or min(self.pads) < 0
                or max(self.pads[0], self.pads[2]) >= ext[0] or max(self.pads[1], self.pads[3]) >= ext[1]):
            raise ValueError(f"Pool2d: bad shape kernel={kernel}, stride={stride}, pads={pads},"
                             f" dilation={dilation} (pads must be >= 0 and below the dilated kernel)")
        self.count_include_pad = bool(count_include_pad)
        self.empty_max = float(empty_max)

    def _cells(self, h: int, w: int) -> np.ndarray:
        """The number of each window's cells inside an h x w input (not in the padding), (OH * OW,)."""
        t, left, b, r = self.pads
        ones = np.pad(np.ones((1, 1, h, w)), ((0, 0), (0, 0), (t, b), (left, r)))
        return im2col_dilated(ones, *self.kernel, self.stride, self.dilation)[0].sum(axis=1)

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if x.ndim != 4:
            raise ValueError(f"{self.name or 'Pool2d'}: input shape {x.shape}, expected NCHW")
        n, c, h, w = x.shape
        t, left, b, r = self.pads
        fill = -np.inf if self.kind is PoolKind.MAX else 0.0
        xp = np.pad(x.reshape(n * c, 1, h, w), ((0, 0), (0, 0), (t, b), (left, r)), constant_values=fill)
        kh, kw = self.kernel
        cols, oh, ow = im2col_dilated(xp, kh, kw, self.stride, self.dilation)
        self._shape, self._pshape, self._out, self._ncols = x.shape, xp.shape, (oh, ow), cols.shape
        if self.kind is PoolKind.MAX:  # a window of padding only picks a pad cell: its gradient is cropped
            self._arg = cols.argmax(axis=1)
            y = cols[np.arange(cols.shape[0]), self._arg].reshape(n * c, oh * ow)
            if any(self.pads) and self.dilation != (1, 1):  # else every window holds an input cell
                y = np.where(self._cells(h, w) == 0, self.empty_max, y)
        else:
            if self.count_include_pad or not any(self.pads):
                self._count = np.full(oh * ow, float(kh * kw))
            else:  # a window of padding only sums to 0: 0 / 1, its gradient spread over pad cells only
                self._count = np.maximum(self._cells(h, w), 1.0)
            y = cols.sum(axis=1).reshape(n * c, oh * ow) / self._count
        return self.q(y.reshape(n, c, oh, ow), "activations", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        n, c, h, w = self._shape
        oh, ow = self._out
        if self.kind is PoolKind.MAX:
            d = np.zeros(self._ncols)
            d[np.arange(d.shape[0]), self._arg] = dy.reshape(-1)
        else:
            per = (dy.reshape(n * c, oh * ow) / self._count).reshape(-1, 1)
            d = np.repeat(per, self._ncols[1], axis=1)
        dxp = col2im_dilated(d, self._pshape, *self.kernel, self.stride, self.dilation, oh, ow)
        t, left = self.pads[:2]
        return self.q(dxp[:, :, t:t + h, left:left + w].reshape(self._shape), "errors", ctx)

    def extra_repr(self) -> str:
        return (f"{self.kind}, kernel={self.kernel}, stride={self.stride}, pads={self.pads},"
                f" dilation={self.dilation}" + (", count_include_pad" if self.count_include_pad else ""))


class GlobalAveragePool(Layer):
    """The mean over every axis after the first two: (n, c, ...) -> (n, c, 1, ...).

    >>> GlobalAveragePool().forward(np.arange(8.0).reshape(1, 2, 2, 2), Context.float64()).ravel().tolist()
    [1.5, 5.5]
    """

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if x.ndim < 3:
            raise ValueError(f"{self.name or 'GlobalAveragePool'}: input shape {x.shape},"
                             " expected (n, c, ...)")
        self._shape = x.shape
        return self.q(x.mean(axis=tuple(range(2, x.ndim)), keepdims=True), "activations", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        k = int(np.prod(self._shape[2:]))
        return self.q(np.broadcast_to(dy / k, self._shape).copy(), "errors", ctx)
