"""One ONNX node (or a few) per nets layer: the translations `nets.onnx.to_onnx` writes, opset 17.

`EMITTERS` maps a layer class to a function ``(writer, layer, inputs, outputs)``
that appends the layer's nodes to the `Writer`, reading its parameters through
``writer.param(layer, name)`` (the values the exporter chose: the policy's
conversions of weights, biases and normalisation parameters). Evaluation-mode
semantics only: a `Dropout` is an ONNX Dropout (an identity in inference), a
`BatchNorm` uses its running statistics. Every emitted node is named after its layer (a layer of several
nodes adds ``/<op>`` for the others). Imports numpy and `nets` layers; `onnx`
only through the writer it is handed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers import (
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Layer,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Tanh,
)
from ..norm import BatchNorm
from .layernorm import LayerNorm
from .pointwise import Add, Clip, Div, Erf, LeakyReLU, Mul, Softmax, Sub
from .pooling import GlobalAveragePool, Pool2d, PoolKind
from .products import GroupedConv2d, LinearND, MatMul
from .shape import (
    Concat,
    FlattenAt,
    Gather,
    Pad,
    PadMode,
    Reshape,
    Slice,
    Split,
    Squeeze,
    Transpose,
    Unsqueeze,
)

__all__ = ["EMITTERS", "Writer"]


class Writer:
    """The nodes and initializers of the graph being written, and the parameter values to write.

    Args:
        helper, numpy_helper: ``onnx.helper`` and ``onnx.numpy_helper``.
        params: the value of every parameter by (layer name, parameter name).
        dtype: the numpy float type of the initializers (float32: what runtimes run).
    """

    def __init__(self, helper: Any, numpy_helper: Any, params: dict[tuple[str, str], np.ndarray],
                 dtype: type = np.float32) -> None:
        self.helper, self.numpy_helper, self.params, self.dtype = helper, numpy_helper, params, dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        #: whether every float value written so far was exactly a value of ``dtype``
        self.exact = True
        self.names: set[str] = set()
        self.node_names: set[str] = set()

    def fresh(self, name: str, taken: set[str] | None = None) -> str:
        """``name``, or ``name_2``, ``name_3``... if a tensor or initializer (with ``taken``: a name of
        that set) already has it; the name is then taken."""
        names = self.names if taken is None else taken
        out, i = name, 1
        while out in names:
            i += 1
            out = f"{name}_{i}"
        names.add(out)
        return out

    def const(self, name: str, value: Any, integer: bool = False) -> str:
        """An initializer holding ``value`` (int64 when ``integer``, else the float type); its name."""
        a = np.asarray(value, np.int64 if integer else self.dtype)
        if not integer:
            self.exact = self.exact and np.array_equal(a, np.asarray(value, np.float64), equal_nan=True)
        t = self.fresh(name)
        self.initializers.append(self.numpy_helper.from_array(a, t))
        return t

    def param(self, layer: Layer, key: str) -> str:
        """An initializer holding parameter ``key`` of ``layer`` as chosen for export; its name."""
        return self.const(f"{layer.name}.{key}", self.params[(layer.name, key)])

    def node(self, op: str, inputs: list[str], outputs: list[str], name: str, **attrs: Any) -> None:
        """Append one node."""
        node_name = self.fresh(name, self.node_names)
        self.nodes.append(self.helper.make_node(op, inputs, outputs, name=node_name, **attrs))


Emit = Callable[[Writer, Any, list[str], list[str]], None]


def _plain(op: str) -> Emit:
    def emit(w: Writer, layer: Layer, xs: list[str], ys: list[str]) -> None:
        w.node(op, xs, ys, layer.name)
    return emit


def _linear(w: Writer, layer: Linear, xs: list[str], ys: list[str]) -> None:
    ins = [xs[0], w.param(layer, "W")] + ([w.param(layer, "b")] if "b" in layer.params else [])
    w.node("Gemm", ins, ys, layer.name)


def _linear_nd(w: Writer, layer: LinearND, xs: list[str], ys: list[str]) -> None:
    if "b" not in layer.params:
        w.node("MatMul", [xs[0], w.param(layer, "W")], ys, layer.name)
        return
    t = w.fresh(f"{layer.name}/matmul")
    w.node("MatMul", [xs[0], w.param(layer, "W")], [t], layer.name)
    w.node("Add", [t, w.param(layer, "b")], ys, f"{layer.name}/add")


def _conv(w: Writer, layer: Conv2d | GroupedConv2d, xs: list[str], ys: list[str]) -> None:
    ins = [xs[0], w.param(layer, "W")] + ([w.param(layer, "b")] if "b" in layer.params else [])
    if isinstance(layer, GroupedConv2d):
        pads, dil, group = list(layer.pads), list(layer.dilation), layer.groups
    else:
        ph, pw = layer.padding
        pads, dil, group = [ph, pw, ph, pw], [1, 1], 1
    w.node("Conv", ins, ys, layer.name, kernel_shape=list(layer.kernel), strides=list(layer.stride),
           pads=pads, dilations=dil, group=group)


def _pool(w: Writer, layer: MaxPool2d | AvgPool2d | Pool2d, xs: list[str], ys: list[str]) -> None:
    kw: dict[str, Any] = dict(kernel_shape=list(layer.kernel), strides=list(layer.stride))
    if isinstance(layer, Pool2d):
        kw["pads"] = list(layer.pads)
        is_max = layer.kind is PoolKind.MAX
        if is_max:
            kw["dilations"] = list(layer.dilation)
        elif layer.dilation != (1, 1):
            raise ValueError(f"to_onnx: layer {layer.name!r}: a dilated average pooling has no opset 17"
                             " export")
        else:
            kw["count_include_pad"] = int(layer.count_include_pad)
    else:
        is_max = isinstance(layer, MaxPool2d)
    w.node("MaxPool" if is_max else "AveragePool", xs, ys, layer.name, **kw)


def _batchnorm(w: Writer, layer: BatchNorm, xs: list[str], ys: list[str]) -> None:
    ins = [xs[0], w.param(layer, "gamma"), w.param(layer, "beta"),
           w.const(f"{layer.name}.running_mean", layer.running_mean),
           w.const(f"{layer.name}.running_var", layer.running_var)]
    w.node("BatchNormalization", ins, ys, layer.name, epsilon=float(layer.eps))


def _layernorm(w: Writer, layer: LayerNorm, xs: list[str], ys: list[str]) -> None:
    w.node("LayerNormalization", [xs[0], w.param(layer, "gamma"), w.param(layer, "beta")], ys, layer.name,
           axis=layer.axis, epsilon=float(layer.eps))


def _leaky(w: Writer, layer: LeakyReLU, xs: list[str], ys: list[str]) -> None:
    w.node("LeakyRelu", xs, ys, layer.name, alpha=layer.alpha)


def _clip(w: Writer, layer: Clip, xs: list[str], ys: list[str]) -> None:
    lo = w.const(f"{layer.name}.min", layer.lo) if math.isfinite(layer.lo) else ""
    hi = w.const(f"{layer.name}.max", layer.hi) if math.isfinite(layer.hi) else ""
    w.node("Clip", [xs[0], lo, hi], ys, layer.name)


def _softmax(w: Writer, layer: Softmax, xs: list[str], ys: list[str]) -> None:
    if layer.coerce_2d:
        raise ValueError(f"to_onnx: layer {layer.name!r}: a Softmax of the opset < 13 rule (coerce_2d) has no"
                         " opset 17 export")
    w.node("Softmax", xs, ys, layer.name, axis=layer.axis)


def _flatten(w: Writer, layer: Flatten | FlattenAt, xs: list[str], ys: list[str]) -> None:
    w.node("Flatten", xs, ys, layer.name, axis=getattr(layer, "axis", 1))


def _reshape(w: Writer, layer: Reshape, xs: list[str], ys: list[str]) -> None:
    w.node("Reshape", [xs[0], w.const(f"{layer.name}.shape", layer.shape, True)], ys, layer.name,
           allowzero=int(layer.allowzero))


def _transpose(w: Writer, layer: Transpose, xs: list[str], ys: list[str]) -> None:
    kw = {} if layer.perm is None else {"perm": list(layer.perm)}
    w.node("Transpose", xs, ys, layer.name, **kw)


def _squeeze(w: Writer, layer: Squeeze | Unsqueeze, xs: list[str], ys: list[str]) -> None:
    op = "Squeeze" if isinstance(layer, Squeeze) else "Unsqueeze"
    ins = xs if layer.axes is None else [xs[0], w.const(f"{layer.name}.axes", layer.axes, True)]
    w.node(op, ins, ys, layer.name)


def _concat(w: Writer, layer: Concat, xs: list[str], ys: list[str]) -> None:
    w.node("Concat", xs, ys, layer.name, axis=layer.axis)


def _split(w: Writer, layer: Split, xs: list[str], ys: list[str]) -> None:
    if layer.sizes is None:
        raise ValueError(f"to_onnx: layer {layer.name!r}: a Split into equal parts (num_outputs) needs"
                         " opset 18")
    sizes = w.const(f"{layer.name}.split", layer.sizes, True)
    w.node("Split", [xs[0], sizes], ys, layer.name, axis=layer.axis)


def _slice(w: Writer, layer: Slice, xs: list[str], ys: list[str]) -> None:
    ins = [xs[0], w.const(f"{layer.name}.starts", layer.starts, True),
           w.const(f"{layer.name}.ends", layer.ends, True)]
    if layer.axes is not None or layer.steps is not None:
        axes = layer.axes if layer.axes is not None else range(len(layer.starts))
        ins.append(w.const(f"{layer.name}.axes", list(axes), True))
    if layer.steps is not None:
        ins.append(w.const(f"{layer.name}.steps", layer.steps, True))
    w.node("Slice", ins, ys, layer.name)


def _gather(w: Writer, layer: Gather, xs: list[str], ys: list[str]) -> None:
    w.node("Gather", [xs[0], w.const(f"{layer.name}.indices", layer.indices, True)], ys, layer.name,
           axis=layer.axis)


def _pad(w: Writer, layer: Pad, xs: list[str], ys: list[str]) -> None:
    if layer.axes is not None:
        raise ValueError(f"to_onnx: layer {layer.name!r}: a Pad of some axes (axes=) needs opset 18")
    if layer.mode is PadMode.WRAP:
        raise ValueError(f"to_onnx: layer {layer.name!r}: Pad mode wrap needs opset 19 (export writes 17)")
    ins = [xs[0], w.const(f"{layer.name}.pads", layer.pads, True),
           w.const(f"{layer.name}.value", layer.value)]
    w.node("Pad", ins, ys, layer.name, mode=str(layer.mode))


def _dropout(w: Writer, layer: Dropout, xs: list[str], ys: list[str]) -> None:
    w.node("Dropout", [xs[0], w.const(f"{layer.name}.ratio", layer.p)], ys, layer.name)


#: The emission of every exported layer class (subclasses before their bases: `LinearND` before `Linear`).
EMITTERS: dict[type, Emit] = {
    LinearND: _linear_nd, Linear: _linear, Conv2d: _conv, GroupedConv2d: _conv, MatMul: _plain("MatMul"),
    ReLU: _plain("Relu"), Sigmoid: _plain("Sigmoid"), Tanh: _plain("Tanh"), Erf: _plain("Erf"),
    LeakyReLU: _leaky, Clip: _clip, Softmax: _softmax,
    MaxPool2d: _pool, AvgPool2d: _pool, Pool2d: _pool, GlobalAveragePool: _plain("GlobalAveragePool"),
    BatchNorm: _batchnorm, LayerNorm: _layernorm,
    Add: _plain("Add"), Sub: _plain("Sub"), Mul: _plain("Mul"), Div: _plain("Div"),
    Flatten: _flatten, FlattenAt: _flatten, Reshape: _reshape, Transpose: _transpose, Squeeze: _squeeze,
    Unsqueeze: _squeeze, Concat: _concat, Split: _split, Slice: _slice, Gather: _gather, Pad: _pad,
    Dropout: _dropout,
}
