"""One translation per ONNX operator: the nets layer (or layers) that compute it.

`TRANSLATORS` maps an operator type to a function ``(builder, node)`` that
emits the node's layers into the `nets.onnx.importer.Builder`. Weights,
biases, normalisation parameters and statistics must be constants (after
folding) and become the layer's parameters as float64; every other
constant operand becomes a graph constant (`nets.graph.Graph`). Attributes
the operator's opset moved to inputs are read from either place. An
attribute value the layers cannot honour is refused (ValueError), never
ignored. Which layer each operator becomes, and what it converts under a
policy, is listed in docs/onnx.md. Imports numpy and `nets`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..layers import AvgPool2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU, Sigmoid, Tanh
from ..norm import BatchNorm
from .layernorm import LayerNorm, scale_shape_mismatch
from .pointwise import Add, Clip, Div, Erf, Gelu, LeakyReLU, Mul, Softmax, Sub
from .pooling import ORT_EMPTY_MAX, GlobalAveragePool, Pool2d, PoolKind
from .products import GroupedConv2d, LinearND, MatMul
from .shape import (
    Concat,
    FlattenAt,
    Gather,
    Pad,
    Reshape,
    Slice,
    Split,
    Squeeze,
    Transpose,
    Unsqueeze,
    axes_index,
    axis_index,
    slice_disagreement,
    zero_past_rank,
)

if TYPE_CHECKING:
    from .importer import Builder, OnnxNode

__all__ = ["TRANSLATORS"]


def _ints(v: object) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _f64(v: np.ndarray) -> np.ndarray:
    """A float64 copy in C order: a parameter's layout never depends on the graph's transposes (BLAS's
    float64 products round by layout, so an exported and re-imported model gives the same bits)."""
    return np.array(v, dtype=np.float64, order="C")


def _float_attr(n: OnnxNode, name: str, default: float) -> float:
    """A float attribute, or the operator's default as a float32 value, as ONNX stores float attributes:
    a node that omits epsilon and one that states 1e-5 import alike, with float32(1e-5) =
    9.999999747378752e-06, as onnxruntime reads both."""
    return float(n.attrs.get(name, np.float32(default)))


def _input(n: OnnxNode, i: int) -> str:
    return n.inputs[i] if len(n.inputs) > i else ""


def _required_const(b: Builder, n: OnnxNode, i: int, what: str) -> np.ndarray:
    v = b.const(_input(n, i))
    if v is None:
        raise b.error(n, f"its {what} (input {i}, {_input(n, i)!r}) must be a constant")
    return v


def _optional_const(b: Builder, n: OnnxNode, i: int, what: str) -> np.ndarray | None:
    t = _input(n, i)
    if not t:
        return None
    return _required_const(b, n, i, what)


def _scalar(b: Builder, n: OnnxNode, v: np.ndarray, what: str) -> float:
    """A constant operand that holds one value (a scalar, or a tensor of one element such as shape [1], as
    onnxruntime accepts); more than one element is refused."""
    if v.size != 1:
        raise b.error(n, f"its {what} has shape {list(v.shape)}; one value (a scalar or a one-element"
                      " tensor) is supported")
    return float(v.reshape(()))


def _spatial(b: Builder, n: OnnxNode, kernel: tuple[int, int], strides: list[int], dilations: list[int]
             ) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``pads`` or ``auto_pad``."""
    auto = n.attrs.get("auto_pad", "NOTSET")
    if auto == "NOTSET":
        pads = _ints(n.attrs.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise b.error(n, f"pads={pads} is not 2-D (4 values)")
        return pads[0], pads[1], pads[2], pads[3]
    if auto == "VALID":
        return 0, 0, 0, 0
    if auto not in ("SAME_UPPER", "SAME_LOWER"):
        raise b.error(n, f"auto_pad={auto!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
    if any(d != 1 for d in dilations):  # onnxruntime refuses it for Conv, and pads pooling without them
        raise b.error(n, f"auto_pad={auto} with dilations={dilations} is not supported (the ONNX formula"
                      " counts the dilation, onnxruntime's pooling does not); give explicit pads")
    dims = b.dims(n.inputs[0])
    if dims is None or len(dims) != 4 or dims[2] is None or dims[3] is None:
        raise b.error(n, f"auto_pad={auto} needs the input's spatial size at import; shape inference gave"
                      f" {dims}")
    begin, end = [], []
    for size, k, s, d in zip(dims[2:], kernel, strides, dilations, strict=True):
        total = (-(-size // s) - 1) * s + (k - 1) * d + 1 - size
        if total < 0 and n.op != "Conv":  # Conv's is clamped to 0 in onnxruntime too
            raise b.error(n, f"auto_pad={auto} with strides={list(strides)} larger than kernel_shape="
                          f"{list(kernel)} gives a negative total pad ({total}) on an input of {size}:"
                          " onnxruntime refuses it (MaxPool; AveragePool before opset 19) or starts the"
                          " windows inside the input (AveragePool 19); give explicit pads")
        total = max(total, 0)
        lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
        begin.append(lo)
        end.append(total - lo)
    return begin[0], begin[1], end[0], end[1]


def _check_window(b: Builder, n: OnnxNode, kernel: tuple[int, int], dilations: list[int],
                  pads: tuple[int, int, int, int]) -> None:
    """Refuse a dilated kernel larger than the padded input where shape inference knows the input's spatial
    size (the node would have no output position by the ONNX definition, floor((H - span) / stride) + 1
    = 0: an empty output or an error only when run; onnxruntime's arithmetic, truncating toward zero,
    runs one window reaching past the input instead)."""
    dims = b.dims(n.inputs[0])
    if dims is None or len(dims) != 4 or dims[2] is None or dims[3] is None:
        return  # known only when run (where a padded or dilated window is refused)
    padded = (dims[2] + pads[0] + pads[2], dims[3] + pads[1] + pads[3])
    ext = [d * (k - 1) + 1 for d, k in zip(dilations, kernel, strict=True)]
    if ext[0] > padded[0] or ext[1] > padded[1]:
        raise b.error(n, f"kernel_shape={list(kernel)} with dilations={list(dilations)} spans"
                      f" {ext[0]}x{ext[1]}, larger than the padded input {padded[0]}x{padded[1]}"
                      f" (input {dims[2]}x{dims[3]}, pads={list(pads)}): no output position")


def _pairs(b: Builder, n: OnnxNode, name: str, default: int) -> list[int]:
    v = _ints(n.attrs.get(name, [default, default]))
    if len(v) != 2:
        raise b.error(n, f"{name}={v} is not 2-D (2 values); only 2-D convolution and pooling are supported")
    return v


def _conv(b: Builder, n: OnnxNode) -> None:
    w = _required_const(b, n, 1, "weight")
    if w.ndim != 4:
        raise b.error(n, f"weight shape {w.shape}: only 2-D convolutions (4-d weights) are supported")
    bias = _optional_const(b, n, 2, "bias")
    group = int(n.attrs.get("group", 1))
    kernel = (int(w.shape[2]), int(w.shape[3]))
    if "kernel_shape" in n.attrs and tuple(_ints(n.attrs["kernel_shape"])) != kernel:
        raise b.error(n, f"kernel_shape={n.attrs['kernel_shape']} differs from the weight's {kernel}")
    strides, dil = _pairs(b, n, "strides", 1), _pairs(b, n, "dilations", 1)
    pads = _spatial(b, n, kernel, strides, dil)
    _check_window(b, n, kernel, dil, pads)
    c_out, c_in = int(w.shape[0]), int(w.shape[1]) * group
    if group == 1 and dil == [1, 1] and pads[0] == pads[2] and pads[1] == pads[3]:
        layer: Conv2d | GroupedConv2d = Conv2d(c_in, c_out, kernel, tuple(strides), (pads[0], pads[1]),
                                               name=n.name, bias=bias is not None)
    else:
        layer = GroupedConv2d(c_in, c_out, kernel, strides, pads, dil, group, bias is not None, name=n.name)
    layer.params["W"] = _f64(w)
    if bias is not None:
        layer.params["b"] = _f64(bias).reshape(c_out)
    b.emit(layer, [b.data(n.inputs[0])], [n.outputs[0]])


def _linear(b: Builder, n: OnnxNode, x: str, w: np.ndarray, y: str, nd: bool) -> None:
    """y = x @ w, w (K, N), as a Linear (2-d input) or LinearND layer named after the node."""
    if w.ndim != 2:
        raise b.error(n, f"constant operand of shape {w.shape}: only 2-d weights are supported")
    cls = LinearND if nd else Linear
    layer = cls(int(w.shape[0]), int(w.shape[1]), name=n.name, bias=False)
    layer.params["W"] = _f64(w)
    b.emit(layer, [x], [y])


def _swap_last(b: Builder, n: OnnxNode, t: str, suffix: str, rank: int | None) -> str:
    """Emit a transpose of the last two axes of ``t``; returns the new tensor's name."""
    if rank is None:
        raise b.error(n, f"a transpose of {t!r} is needed and its rank is not known at import")
    perm = [*range(rank - 2), rank - 1, rank - 2]
    out = b.fresh(f"{n.name}/{suffix}")
    b.emit(Transpose(perm, name=out), [b.data(t)], [out])
    return out


def _rank(b: Builder, t: str) -> int | None:
    d = b.dims(t)
    return None if d is None else len(d)


def _matmul(b: Builder, n: OnnxNode) -> None:
    a, w = n.inputs[0], n.inputs[1]
    ca, cw = b.const(a), b.const(w)
    one_d = [t for t, c in ((a, ca), (w, cw)) if c is None and _rank(b, t) == 1]
    if one_d:
        raise b.error(n, f"run-time operand {one_d[0]!r} is 1-d; only operands of 2 or more dimensions are"
                      " supported")
    if cw is not None and ca is None:
        _linear(b, n, a, cw, n.outputs[0], nd=True)
    elif ca is not None and cw is None:  # y = A x  <=>  y^T = x^T A^T
        if ca.ndim != 2:
            raise b.error(n, f"constant left operand of shape {ca.shape}: only 2-d weights are supported")
        r = _rank(b, w)
        xt = _swap_last(b, n, w, "transpose_in", r)
        product = b.fresh(f"{n.name}/product")
        _linear(b, n, xt, ca.T, product, nd=True)
        b.emit(Transpose([*range(r - 2), r - 1, r - 2], name=b.fresh(f"{n.name}/transpose_out")),  # type: ignore[operator]
               [product], [n.outputs[0]])
    else:
        b.emit(MatMul(name=n.name), [b.data(a), b.data(w)], [n.outputs[0]])


def _gemm(b: Builder, n: OnnxNode) -> None:
    alpha, beta = float(n.attrs.get("alpha", 1.0)), float(n.attrs.get("beta", 1.0))
    ta, tb = int(n.attrs.get("transA", 0)), int(n.attrs.get("transB", 0))
    a, w, c = n.inputs[0], n.inputs[1], _input(n, 2)
    ca, cw = b.const(a), b.const(w)
    if (ca is None) == (cw is None):
        raise b.error(n, "exactly one of A and B must be a constant (the weight)")
    y = n.outputs[0]
    cc = b.const(c) if c else None
    if c and cc is None:
        raise b.error(n, f"its C input {c!r} must be a constant")
    bias = None if cc is None else beta * _f64(cc)
    if cw is not None:
        x = _swap_last(b, n, a, "transpose_in", 2) if ta else a
        wm = alpha * _f64(cw.T if tb else cw)
        n_out = wm.shape[1]
        as_bias = bias is not None and (bias.size == 1 or (bias.size == n_out and bias.shape[-1] == n_out))
        mid = b.fresh(f"{n.name}/product") if bias is not None and not as_bias else y
        _linear(b, n, x, wm, mid, nd=False)
        if as_bias:
            b.nodes[-1].layer.params["b"] = np.broadcast_to(bias.reshape(-1), (n_out,)).copy()  # type: ignore
        elif bias is not None:
            _add_c(b, n, mid, bias, y)
        return
    # y = A' x' + C with A' constant: y^T = x'^T A'^T
    xt = b.data(w) if tb else _swap_last(b, n, w, "transpose_in", 2)
    wm = alpha * _f64(ca.T if ta else ca)  # type: ignore[union-attr]
    product = b.fresh(f"{n.name}/product")
    _linear(b, n, xt, wm.T, product, nd=False)
    out = y if bias is None else b.fresh(f"{n.name}/transposed")
    b.emit(Transpose([1, 0], name=b.fresh(f"{n.name}/transpose_out")), [product], [out])
    if bias is not None:
        _add_c(b, n, out, bias, y)


def _add_c(b: Builder, n: OnnxNode, t: str, c: np.ndarray, y: str) -> None:
    """y = t + C, Gemm's C (already times beta) as a graph constant of its own."""
    name = b.fresh(f"{n.name}/c")
    b.constants[name] = c
    b.emit(Add(name=b.fresh(f"{n.name}/add_c")), [t, b.data(name)], [y])


def _simple(cls: Callable[..., object]) -> Callable[[Builder, OnnxNode], None]:
    def tr(b: Builder, n: OnnxNode) -> None:
        b.emit(cls(name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])  # type: ignore[arg-type]
    return tr


def _legacy_broadcast(b: Builder, n: OnnxNode) -> str:
    """Before opset 7, ``broadcast=1`` with ``axis`` aligns B's dimensions with A's from ``axis`` on; numpy
    aligns them with A's last ones. A constant B gains trailing axes of size 1 so that the two agree."""
    a, other = n.inputs[0], n.inputs[1]
    c, ra = b.const(other), _rank(b, a)
    if c is None or ra is None:
        raise b.error(n, f"broadcast=1 with axis={n.attrs['axis']} needs a constant B and an A of known rank")
    axis = int(n.attrs["axis"]) + (ra if int(n.attrs["axis"]) < 0 else 0)
    trailing = ra - axis - c.ndim
    if axis < 0 or trailing < 0:
        raise b.error(n, f"axis={n.attrs['axis']} does not place B {c.shape} inside A of rank {ra}")
    name = b.fresh(f"{n.name}/b_aligned")
    b.constants[name] = c.reshape(c.shape + (1,) * trailing)
    return name


def _binary(cls: Callable[..., object]) -> Callable[[Builder, OnnxNode], None]:
    def tr(b: Builder, n: OnnxNode) -> None:
        other = n.inputs[1]
        if b.opset < 7 and int(n.attrs.get("broadcast", 0)) and "axis" in n.attrs:
            other = _legacy_broadcast(b, n)
        b.emit(cls(name=n.name), [b.data(n.inputs[0]), b.data(other)], [n.outputs[0]])  # type: ignore
    return tr


def _leaky(b: Builder, n: OnnxNode) -> None:
    b.emit(LeakyReLU(_float_attr(n, "alpha", 0.01), name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


#: the largest finite value of an ONNX float element type (float32, float16, double, bfloat16): a missing
#: Clip bound is its lowest / largest value (onnxruntime's numeric_limits), so +-inf is clipped too
_TYPE_MAX = {1: float(np.finfo(np.float32).max), 10: 65504.0, 11: float(np.finfo(np.float64).max),
             16: float.fromhex("0x1.fep127")}


def _clip(b: Builder, n: OnnxNode) -> None:
    """Clip(x, min, max); a missing bound is the element type's lowest or largest value (float32's when
    shape inference gives no type), as onnxruntime takes it: Clip() maps -inf and inf to -+3.4028235e38."""
    big = _TYPE_MAX.get(b.types.get(n.inputs[0], 1), _TYPE_MAX[1])
    if b.opset < 11:
        lo, hi = float(n.attrs.get("min", -big)), float(n.attrs.get("max", big))
    else:
        cl, ch = _optional_const(b, n, 1, "min"), _optional_const(b, n, 2, "max")
        lo = -big if cl is None else _scalar(b, n, cl, "min")
        hi = big if ch is None else _scalar(b, n, ch, "max")
    b.emit(Clip(lo, hi, name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


def _gelu(b: Builder, n: OnnxNode) -> None:
    if b.opset < 20:
        raise b.error(n, "Gelu is an operator of opset 20 on; this model imports an earlier opset (write the"
                      " function out with Erf, or import the model at opset 20)")
    b.emit(Gelu(n.attrs.get("approximate", "none"), name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


def _known_axes(b: Builder, n: OnnxNode, t: str, axes: list[int], what: str = "axis", *, end: bool = False,
                added: int = 0) -> None:
    """Refuse at import, as onnxruntime refuses the model, an axis (``what="axis"``: axes[0]; "axes": each,
    none twice) outside the rank r of input ``t`` where shape inference knows it: [-r, r - 1], Flatten's
    [-r, r] (``end``), or the output's rank r + ``added`` (Unsqueeze's). Where the rank is not known, the
    layer checks when it runs."""
    dims = b.dims(t)
    if dims is None:
        return
    who = f"from_onnx: {n.op} node {n.name!r} (opset {b.opset})"
    if what == "axes":
        axes_index(axes, len(dims) + added, who)
    else:
        axis_index(axes[0], len(dims) + added, who, what, end=end)


def _softmax(b: Builder, n: OnnxNode) -> None:
    legacy = b.opset < 13
    axis = int(n.attrs.get("axis", 1 if legacy else -1))
    _known_axes(b, n, n.inputs[0], [axis])
    b.emit(Softmax(axis, coerce_2d=legacy, name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


def _pool(kind: PoolKind) -> Callable[[Builder, OnnxNode], None]:
    def tr(b: Builder, n: OnnxNode) -> None:
        y = b.first_output_only(n)
        kernel = _ints(n.attrs["kernel_shape"])
        if len(kernel) != 2:
            raise b.error(n, f"kernel_shape={kernel}: only 2-D pooling is supported")
        if int(n.attrs.get("ceil_mode", 0)):
            raise b.error(n, "ceil_mode=1 is not supported (only 0, the floor of the output size)")
        strides, dil = _pairs(b, n, "strides", 1), _pairs(b, n, "dilations", 1)
        pads = _spatial(b, n, (kernel[0], kernel[1]), strides, dil)
        _check_window(b, n, (kernel[0], kernel[1]), dil, pads)
        include = bool(int(n.attrs.get("count_include_pad", 0)))
        if not any(pads) and dil == [1, 1]:
            plain = MaxPool2d if kind is PoolKind.MAX else AvgPool2d
            layer: object = plain(tuple(kernel), tuple(strides), name=n.name)
        else:
            empty = ORT_EMPTY_MAX.get(b.types.get(n.inputs[0], 1), ORT_EMPTY_MAX[1])  # float32's otherwise
            layer = Pool2d(kind, kernel, strides, pads, dil, include, name=n.name, empty_max=empty)
        b.emit(layer, [b.data(n.inputs[0])], [y])  # type: ignore[arg-type]
    return tr


def _check_is_test(b: Builder, n: OnnxNode, what: str) -> None:
    """Refuse the training mode of a BatchNormalization or Dropout before opset 7: is_test=0, which is also
    the schema's default when the attribute is absent."""
    absent = "is_test" not in n.attrs
    if not int(n.attrs.get("is_test", 0 if b.opset < 7 else 1)):
        raise b.error(n, f"is_test=0{' (the default)' if absent else ''}: training mode ({what}) is not"
                      " supported, as training_mode=1 of later opsets is not; an inference graph has"
                      " is_test=1")


def _batchnorm(b: Builder, n: OnnxNode) -> None:
    y = b.first_output_only(n)
    if int(n.attrs.get("training_mode", 0)):
        raise b.error(n, "training_mode=1 is not supported (an inference graph has 0)")
    _check_is_test(b, n, "batch statistics")
    if not int(n.attrs.get("spatial", 1)):
        raise b.error(n, "spatial=0 is not supported")
    gamma, beta = _required_const(b, n, 1, "scale"), _required_const(b, n, 2, "bias")
    mean, var = _required_const(b, n, 3, "mean"), _required_const(b, n, 4, "variance")
    bn = BatchNorm(int(gamma.size), eps=_float_attr(n, "epsilon", 1e-5),
                   momentum=1.0 - _float_attr(n, "momentum", 0.9), name=n.name)
    bn.params["gamma"], bn.params["beta"] = _f64(gamma).reshape(-1), _f64(beta).reshape(-1)
    bn.running_mean, bn.running_var = _f64(mean).reshape(-1), _f64(var).reshape(-1)
    b.emit(bn, [b.data(n.inputs[0])], [y])


def _layernorm(b: Builder, n: OnnxNode) -> None:
    y = b.first_output_only(n)
    gamma = _required_const(b, n, 1, "scale")
    beta = _optional_const(b, n, 2, "bias")
    try:  # scale and bias each broadcast against the normalised axes, so against each other
        shape = gamma.shape if beta is None else np.broadcast_shapes(gamma.shape, beta.shape)
    except ValueError:
        raise b.error(n, f"scale {gamma.shape} and bias {beta.shape} do not broadcast together") from None
    axis = int(n.attrs.get("axis", -1))
    _known_axes(b, n, n.inputs[0], [axis])
    dims = b.dims(n.inputs[0])
    why = None if dims is None else scale_shape_mismatch(shape, dims)
    if why:
        raise b.error(n, why)
    ln = LayerNorm(shape, axis, _float_attr(n, "epsilon", 1e-5), name=n.name)
    ln.params["gamma"] = np.broadcast_to(_f64(gamma), shape).copy()
    ln.params["beta"] = np.zeros(shape) if beta is None else np.broadcast_to(_f64(beta), shape).copy()
    b.emit(ln, [b.data(n.inputs[0])], [y])


def _flatten(b: Builder, n: OnnxNode) -> None:
    axis = int(n.attrs.get("axis", 1))
    _known_axes(b, n, n.inputs[0], [axis], end=True)
    layer = Flatten(name=n.name) if axis == 1 else FlattenAt(axis, name=n.name)
    b.emit(layer, [b.data(n.inputs[0])], [n.outputs[0]])


def _reshape(b: Builder, n: OnnxNode) -> None:
    shape = _ints(n.attrs["shape"]) if b.opset < 5 else _ints(_required_const(b, n, 1, "shape"))
    allowzero = bool(int(n.attrs.get("allowzero", 0)))
    dims = b.dims(n.inputs[0])
    why = None if dims is None else zero_past_rank(shape, len(dims), allowzero)
    if why:
        raise b.error(n, why)
    layer = Reshape(shape, allowzero, name=n.name)
    b.emit(layer, [b.data(n.inputs[0])], [n.outputs[0]])


def _transpose(b: Builder, n: OnnxNode) -> None:
    perm = None if n.attrs.get("perm") is None else _ints(n.attrs["perm"])
    dims = b.dims(n.inputs[0])
    if perm is not None and dims is not None and sorted(perm) != list(range(len(dims))):
        raise b.error(n, f"perm={perm} is not a permutation of the {len(dims)} axes of its input")
    b.emit(Transpose(perm, name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


def _concat(b: Builder, n: OnnxNode) -> None:
    axis = int(n.attrs["axis"])
    for t in n.inputs:
        if t:
            _known_axes(b, n, t, [axis])
    b.emit(Concat(axis, name=n.name), [b.data(t) for t in n.inputs if t], [n.outputs[0]])


def _axes(b: Builder, n: OnnxNode, since: int) -> list[int] | None:
    if b.opset >= since:
        v = _optional_const(b, n, 1, "axes")
        return None if v is None else _ints(v)
    return None if "axes" not in n.attrs else _ints(n.attrs["axes"])


def _squeeze(b: Builder, n: OnnxNode) -> None:
    axes = _axes(b, n, 13)
    dims = b.dims(n.inputs[0])
    if axes is not None:
        _known_axes(b, n, n.inputs[0], axes, "axes")
    if axes is None and dims is not None and None not in dims:  # its size-1 axes, known now (exportable)
        axes = [i for i, d in enumerate(dims) if d == 1]
    b.emit(Squeeze(axes, name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


def _unsqueeze(b: Builder, n: OnnxNode) -> None:
    axes = _axes(b, n, 13)
    if axes is None:
        raise b.error(n, "axes missing")
    _known_axes(b, n, n.inputs[0], axes, "axes", added=len(axes))
    b.emit(Unsqueeze(axes, name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


def _dropout(b: Builder, n: OnnxNode) -> None:
    y = b.first_output_only(n)
    if b.opset >= 12:
        r = _optional_const(b, n, 1, "ratio")
        ratio = 0.5 if r is None else _scalar(b, n, r, "ratio")
        mode = _optional_const(b, n, 2, "training_mode")
        if mode is not None and _scalar(b, n, mode, "training_mode"):
            raise b.error(n, "training_mode=True is not supported (nets drops in training only)")
    else:
        _check_is_test(b, n, "random drops")
        ratio = float(n.attrs.get("ratio", 0.5))
    b.emit(Dropout(ratio, name=n.name), [b.data(n.inputs[0])], [y])


def _pad(b: Builder, n: OnnxNode) -> None:
    mode = n.attrs.get("mode", "constant")
    if b.opset < 11:
        pads, value, axes = _ints(n.attrs["pads"]), float(n.attrs.get("value", 0.0)), None
    else:
        pads = _ints(_required_const(b, n, 1, "pads"))
        v = _optional_const(b, n, 2, "constant_value")
        value = 0.0 if v is None else _scalar(b, n, v, "constant_value")
        a = _optional_const(b, n, 3, "axes")
        axes = None if a is None else _ints(a)
    if axes is not None:
        _known_axes(b, n, n.inputs[0], axes, "axes")
    b.emit(Pad(pads, mode, value, axes, name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


def _split_input(b: Builder, n: OnnxNode, attr: list[int] | None) -> list[int]:
    """Split-1's sizes given as its second input, a constant of the data's (float) type; from opset 2 to 12
    the sizes are an attribute only."""
    if b.opset > 1:
        raise b.error(n, f"a second input ({_input(n, 1)!r}) is not one of Split's before opset 13 but at"
                      " opset 1; give the sizes as the attribute split")
    if attr is not None:
        raise b.error(n, "split is given both as an attribute and as an input; give one")
    v = np.asarray(_required_const(b, n, 1, "split"), np.float64).reshape(-1)
    if not np.all(np.isfinite(v) & (v == np.round(v))):
        raise b.error(n, f"its split input {v.tolist()} holds sizes that are not whole numbers")
    return _ints(v)


def _split(b: Builder, n: OnnxNode) -> None:
    axis = int(n.attrs.get("axis", 0))
    if b.opset >= 13:
        s = _optional_const(b, n, 1, "split")
        sizes = None if s is None else _ints(s)
    else:
        sizes = _ints(n.attrs["split"]) if "split" in n.attrs else None
        if _input(n, 1):
            sizes = _split_input(b, n, sizes)
    if sizes is not None and len(sizes) != len(n.outputs):
        raise b.error(n, f"split={sizes} gives {len(sizes)} parts for {len(n.outputs)} outputs")
    if b.opset >= 18 and sizes is None and "num_outputs" not in n.attrs:
        raise b.error(n, "from opset 18 a Split without split sizes needs num_outputs")
    parts = int(n.attrs.get("num_outputs", len(n.outputs)))
    if parts != len(n.outputs):
        raise b.error(n, f"num_outputs={parts} but the node has {len(n.outputs)} outputs")
    _known_axes(b, n, n.inputs[0], [axis])
    dims = b.dims(n.inputs[0])
    if b.opset < 18 and sizes is None and dims is not None:
        d = dims[axis]
        if d is not None and d % len(n.outputs):
            raise b.error(n, f"axis {axis} of {d} values does not split into {len(n.outputs)} equal parts"
                          " (before opset 18 the parts are equal; give split sizes)")
    layer = Split(axis, sizes, len(n.outputs), equal=b.opset < 18, name=n.name)
    b.emit(layer, [b.data(n.inputs[0])], list(n.outputs))


def _slice(b: Builder, n: OnnxNode) -> None:
    if b.opset < 10:
        starts, ends = _ints(n.attrs["starts"]), _ints(n.attrs["ends"])
        axes, steps = (_ints(n.attrs["axes"]) if "axes" in n.attrs else None), None
    else:
        starts = _ints(_required_const(b, n, 1, "starts"))
        ends = _ints(_required_const(b, n, 2, "ends"))
        a, s = _optional_const(b, n, 3, "axes"), _optional_const(b, n, 4, "steps")
        axes, steps = (None if a is None else _ints(a)), (None if s is None else _ints(s))
    if axes is not None:
        _known_axes(b, n, n.inputs[0], axes, "axes")
    why = slice_disagreement(b.dims(n.inputs[0]), ends, axes, steps)
    if why is not None:
        raise b.error(n, why)
    b.emit(Slice(starts, ends, axes, steps, name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


def _gather(b: Builder, n: OnnxNode) -> None:
    idx = b.const(n.inputs[1])
    if idx is None:
        raise b.error(n, "indices computed at run time (an embedding lookup) are not supported; the indices"
                      " must be a constant")
    axis = int(n.attrs.get("axis", 0))
    _known_axes(b, n, n.inputs[0], [axis])
    b.emit(Gather(idx, axis, name=n.name), [b.data(n.inputs[0])], [n.outputs[0]])


#: operator type -> translation; docs/onnx.md lists each with its layer and its conversions
TRANSLATORS: dict[str, Callable[[Builder, OnnxNode], None]] = {
    "Gemm": _gemm, "MatMul": _matmul, "Conv": _conv,
    "Relu": _simple(ReLU), "Sigmoid": _simple(Sigmoid), "Tanh": _simple(Tanh), "LeakyRelu": _leaky,
    "Clip": _clip, "Erf": _simple(Erf), "Gelu": _gelu, "Softmax": _softmax,
    "MaxPool": _pool(PoolKind.MAX), "AveragePool": _pool(PoolKind.AVG),
    "GlobalAveragePool": _simple(GlobalAveragePool),
    "BatchNormalization": _batchnorm, "LayerNormalization": _layernorm,
    "Flatten": _flatten, "Reshape": _reshape, "Transpose": _transpose, "Concat": _concat, "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze, "Split": _split, "Slice": _slice, "Gather": _gather, "Pad": _pad,
    "Add": _binary(Add), "Sub": _binary(Sub), "Mul": _binary(Mul), "Div": _binary(Div),
    "Dropout": _dropout,
}
