"""`to_onnx`: a nets `Model` as an ONNX model (opset 17) whose weights are the values of their formats.

The exporter walks the model's layers in forward order (a `Sequential` in
order, a `Residual` as body + shortcut and an Add, a `nets.graph.Graph` node by
node with its tensor names) and writes one node per layer through
`nets.onnx.emit` (the layers `from_onnx` makes, and nets' own Linear, Conv2d,
pooling, BatchNorm, Flatten, Dropout, ReLU, Tanh, Sigmoid). Weights, biases and
normalisation parameters are written as the forward pass uses them under the
policy in evaluation (`converted_parameters`): each converted to its role's
format, as float32 values. Activations are not converted in the exported graph:
an ONNX runtime computes the float32 network of the converted weights.

The model's ``metadata_props`` record the formats:

- ``nets.policy``: the policy's description (`PrecisionPolicy.describe`);
- ``nets.layer.<layer>.<role>`` for every exported layer: ``activations``
  and, where the layer has them, ``weights``, ``biases``, ``preacts``,
  ``bn_params`` (the name of the format the values are in, e.g. ``fx<2,6>``, or
  ``float64``; the rounding is the policy's; for dynamic fixed point the fixed
  format of the radix point in use, per tensor where gamma's and beta's differ:
  ``gamma fx<2,8>, beta fx<4,6>``), and
  ``fwd_mac`` (the forward datapath, e.g.
  ``fx<8,0> x fx<8,0> -> fx<32,0> (wrap, sequential)``, or ``float64``);
- ``nets.float32_exact``: ``true`` when every value written is exactly a
  float32 (the converted parameters, running statistics as stored, folded
  constants: formats of at most 24 significant bits and float32's exponent
  range), else ``false`` (some values were rounded to float32).

The graph's input and output declare their shapes (`to_onnx`'s
``input_shape``), so that ``onnx.checker.check_model(proto, full_check=True)``
accepts the model.

Imports numpy and `nets`; `onnx` only when called.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..args import check_instance, check_size
from ..graph import Graph, MultiLayer
from ..layers import Conv2d, Layer, Linear, Residual, Sequential
from ..models import Model, evaluation_context
from ..norm import BatchNorm
from ..policy import PrecisionPolicy
from ..quant import Quantizer, check_quant
from ..roleformat import DynamicFixed, RoleFormat
from .emit import EMITTERS, Writer
from .layernorm import LayerNorm
from .products import GroupedConv2d

__all__ = ["OPSET", "converted_parameters", "to_onnx"]

#: The ONNX opset the exporter writes.
OPSET = 17

_INSTALL = "nets.onnx.to_onnx needs the onnx package: pip install numfmt-emu[onnx]"


def _check_args(func: str, model: Model, policy: PrecisionPolicy | None, quant: Quantizer | None) -> None:
    """Refuse a ``model`` that is not a nets `Model`, a policy `Model.check_policy` refuses and a ``quant``
    that is neither None nor a `Quantizer`, naming ``func`` and the parameter."""
    check_instance(model, Model, func, "model", "a nets Model (nets.mlp, nets.from_onnx, ...)")
    model.check_policy(policy, func)
    check_quant(quant, func)


def _roles(layer: Layer) -> dict[str, tuple[str, bool]]:
    """The role of each parameter of ``layer`` and whether it is converted transposed (as forward does)."""
    if isinstance(layer, Linear):
        return {"W": ("weights", True), "b": ("biases", False)}
    if isinstance(layer, (Conv2d, GroupedConv2d)):
        return {"W": ("weights", False), "b": ("biases", False)}
    if isinstance(layer, (BatchNorm, LayerNorm)):
        return {"gamma": ("bn_params", False), "beta": ("bn_params", False)}
    return {}


def converted_parameters(model: Model, policy: PrecisionPolicy | None = None,
                         quant: Quantizer | None = None) -> dict[tuple[str, str], np.ndarray]:
    """Every parameter as the forward pass uses it under ``policy`` in evaluation, by (layer, parameter).

    Weights and biases of products are converted to their ``weights`` and
    ``biases`` roles, gamma and beta of normalisations to ``bn_params``, with
    the converter of `nets.models.evaluation_context` (policy, batch 0,
    ``quant``): nearest even in place of stochastic rounding unless the
    policy's ``eval_rounding`` is "policy"; ``quant`` lends a training run's
    dynamic radix points. Other parameters are returned as stored. None: float64.

    >>> import nets
    >>> m = nets.mlp([2, 2], seed=0)
    >>> m.layers()[0].params["W"][:] = [[0.3, -0.7], [1.0, 0.1]]
    >>> converted_parameters(m, nets.PrecisionPolicy.uniform("fx<2,2>"))[("linear1", "W")].tolist()
    [[0.25, -0.75], [1.0, 0.0]]

    Raises:
        TypeError: a ``model`` that is not a nets `Model`, a ``policy`` not a `PrecisionPolicy` or None, a
            ``quant`` not a `Quantizer` or None. ValueError: a policy `Model.check_policy` refuses.
    """
    _check_args("converted_parameters", model, policy, quant)
    ctx = evaluation_context(policy, 0, quant)
    out = {}
    for layer in model.layers():
        roles = _roles(layer)
        for key, v in layer.params.items():
            role, transposed = roles.get(key, ("", False))
            if not role:
                out[(layer.name, key)] = v.copy()
            elif transposed:  # in C order (BLAS rounds float64 products by layout)
                out[(layer.name, key)] = np.ascontiguousarray(layer.q(v.T, role, ctx).T)
            else:
                tensor = key if role == "bn_params" else None
                out[(layer.name, key)] = layer.q(v, role, ctx, tensor=tensor)
    return out


def _emitter(layer: Layer) -> Any:
    for cls in type(layer).__mro__:
        if cls in EMITTERS:
            return EMITTERS[cls]
    known = sorted({c.__name__ for c in EMITTERS} | {"Graph", "Residual", "Sequential"})
    raise ValueError(f"to_onnx: layer {layer.name!r} ({type(layer).__name__}) has no ONNX export;"
                     f" exported: {', '.join(known)}")


def _walk(w: Writer, layer: Layer, x: str) -> str:
    """Write ``layer`` reading tensor ``x``; the name of its output tensor."""
    if isinstance(layer, Sequential):
        for child in layer.children:
            x = _walk(w, child, x)
        return x
    if isinstance(layer, Residual):
        s = x if layer.shortcut is None else _walk(w, layer.shortcut, x)
        y = _walk(w, layer.body, x)
        out = w.fresh(f"{layer.name}:out")
        w.node("Add", [y, s], [out], layer.name)
        return out
    if isinstance(layer, Graph):
        return _walk_graph(w, layer, x)
    out = w.fresh(layer.name)
    _emitter(layer)(w, layer, [x], [out])
    return out


def _walk_graph(w: Writer, g: Graph, x: str) -> str:
    env = {g.input: x}
    for node in g.nodes:
        xs = []
        for t in node.inputs:
            if t not in env:  # a constant, written where it is first read
                env[t] = w.const(t, g.constants[t])
            xs.append(env[t])
        ys = [w.fresh(t) for t in node.outputs]
        if isinstance(node.layer, MultiLayer) or not isinstance(node.layer, (Sequential, Residual, Graph)):
            _emitter(node.layer)(w, node.layer, xs, ys)
        else:
            y = _walk(w, node.layer, xs[0])
            w.node("Identity", [y], ys, f"{node.layer.name}/out")
        env.update(zip(node.outputs, ys, strict=True))
    return env[g.output]


#: the tensors of a role with several dynamic fixed point groups in one layer (`nets.quant.TENSOR_ROLES`)
#: among those exported; every other role has one group per layer
_ROLE_TENSORS = {"bn_params": ("gamma", "beta")}


def _format_name(layer: Layer, role: str, rf: RoleFormat, quant: Quantizer) -> str:
    """The name of the format ``layer``'s values of ``role`` are in under the evaluation converter
    ``quant``: the role's format (its rounding left out), or for dynamic fixed point the fixed format
    of the group's frozen radix point ("float64" while it warms up), per tensor where a role's tensors
    differ ("gamma fx<2,6>, beta fx<4,4>")."""
    if not isinstance(rf.fmt, DynamicFixed):
        return "float64" if rf.fmt is None else str(rf.fmt)
    names = {t: str(quant.format_of(rf, layer.name, role, t) or "float64")
             for t in _ROLE_TENSORS.get(role, ("",))}
    shared = set(names.values())
    return shared.pop() if len(shared) == 1 else ", ".join(f"{t} {f}" for t, f in names.items())


def _metadata(model: Model, policy: PrecisionPolicy, exact: bool, quant: Quantizer | None) -> dict[str, str]:
    meta = {"nets.policy": policy.describe(), "nets.float32_exact": "true" if exact else "false"}
    q = evaluation_context(policy, 0, quant).quant
    for layer in model.layers():
        if isinstance(layer, (Sequential, Graph)):
            continue  # containers (a Residual converts its sum: its activations are recorded)
        lp = policy.for_layer(layer.name)
        product = isinstance(layer, (Linear, Conv2d, GroupedConv2d)) or getattr(layer, "opens_layer", False)
        roles = ["activations"]
        if isinstance(layer, (Linear, Conv2d, GroupedConv2d)):
            roles = ["weights", "biases", "preacts", *roles]
        elif product:  # a product of two activations (MatMul): its output to preacts
            roles = ["preacts", *roles]
        elif isinstance(layer, (BatchNorm, LayerNorm)):
            roles = ["bn_params", *roles]
        for r in roles:
            meta[f"nets.layer.{layer.name}.{r}"] = _format_name(layer, r, getattr(lp, r), q)
        if product:
            meta[f"nets.layer.{layer.name}.fwd_mac"] = "float64" if lp.fwd_mac is None else str(lp.fwd_mac)
    return meta


def _set_dims(t: Any, dims: list[int | str]) -> None:
    """Declare the shape of the tensor type ``t``: an int a fixed size, a str a symbolic one."""
    t.shape.Clear()
    for d in dims:
        if isinstance(d, str):
            t.shape.dim.add().dim_param = d
        else:
            t.shape.dim.add().dim_value = d


def _inferred(onnx: Any, m: Any, dims: list[int | str], strict: bool) -> Any:
    """The output's tensor type ONNX shape inference gives ``m`` with its input declared as ``dims``."""
    trial = onnx.ModelProto()
    trial.CopyFrom(m)
    _set_dims(trial.graph.input[0].type.tensor_type, dims)
    return onnx.shape_inference.infer_shapes(trial, strict_mode=strict).graph.output[0].type.tensor_type


def _input_dims(onnx: Any, m: Any, graph: Graph | None,
                input_shape: tuple[int, ...] | None) -> list[int | str]:
    """The input's declared dimensions: ``N`` (the batch axis) and ``input_shape``; without it, those
    `from_onnx` read from the imported graph's input (the batch axis ``N`` unless the graph mixes rows,
    an unknown size a name of its own); else the only rank ONNX shape inference accepts, its sizes named."""
    x = m.graph.input[0].name
    if input_shape is not None:
        if not isinstance(input_shape, (tuple, list)):
            raise TypeError(f"to_onnx: input_shape={input_shape!r} must be None or a tuple of sizes (ints"
                            " >= 1)")
        return ["N", *(check_size(d, "to_onnx", f"input_shape[{i}]") for i, d in enumerate(input_shape))]
    imported = None if graph is None else graph.input_dims
    if imported is not None:
        dims: list[int | str] = [f"{x}_{i}" if d is None else int(d) for i, d in enumerate(imported)]
        if dims and graph is not None and graph.rows_mixed_by is None:
            dims[0] = "N"
        return dims
    ranks = []
    for rank in range(1, 9):
        try:
            _inferred(onnx, m, ["N", *(f"{x}_{i}" for i in range(1, rank))], strict=True)
        except onnx.shape_inference.InferenceError:
            continue
        ranks.append(rank)
    if len(ranks) != 1:
        raise ValueError(f"to_onnx: the input's rank is not fixed by the model's layers (ranks {ranks} of"
                         " 1..8 pass ONNX shape inference); give input_shape")
    return ["N", *(f"{x}_{i}" for i in range(1, ranks[0]))]


def _declare(onnx: Any, m: Any, dims: list[int | str]) -> None:
    """Declare the input's dimensions ``dims`` and the output's as ONNX shape inference gives them (a
    size it leaves unknown named ``<output>_<axis>``), as `onnx.checker` requires of a graph's input and
    output."""
    try:
        t = _inferred(onnx, m, dims, strict=True)
    except onnx.shape_inference.InferenceError as e:
        first = next((line.strip() for line in str(e).splitlines() if line.strip()), "")
        raise ValueError(f"to_onnx: the input's shape {dims} does not fit the model: {first}") from None
    if not t.HasField("shape"):
        raise ValueError(f"to_onnx: ONNX shape inference gives the output no rank from the input's shape"
                         f" {dims}")
    y = m.graph.output[0].name
    out: list[int | str] = [d.dim_param if d.HasField("dim_param") else d.dim_value if d.HasField("dim_value")
                            else f"{y}_{i}" for i, d in enumerate(t.shape.dim)]
    _set_dims(m.graph.input[0].type.tensor_type, dims)
    _set_dims(m.graph.output[0].type.tensor_type, out)


def to_onnx(model: Model, policy: PrecisionPolicy | None = None, path: str | os.PathLike[str] | None = None,
            *, input_shape: tuple[int, ...] | None = None, quant: Quantizer | None = None) -> Any:
    """The model as an ONNX ``ModelProto`` (opset 17), its parameters converted under ``policy``.

    Args:
        model: a model from `nets.onnx.from_onnx` or built by nets (`nets.mlp`,
            `nets.lenet5`, `nets.resnet_small`: every layer but Maxout and Sign).
        policy: the precision policy whose roles convert the parameters
            (`converted_parameters`); None writes them as stored (float64
            rounded to float32).
        path: where to save the model too (None: not saved).
        input_shape: the shape of one example, for the input's declared type
            (its batch axis is named ``N``). None: a model from `from_onnx`
            declares the sizes its ONNX graph's input had (the batch axis ``N``
            unless the graph mixes rows, a symbolic size named ``<input>_<axis>``);
            another declares ``N`` and symbolic sizes of the only rank its layers
            accept (a Gemm's 2, a Conv's 4). The output's shape is the one ONNX
            shape inference gives, so `onnx.checker` accepts the model. A model
            from `from_onnx` keeps its graph's input and output names; another's
            are ``x`` and ``y``.
        quant: a training run's converter, whose dynamic fixed point radix points it lends.

    Returns:
        the ``onnx.ModelProto``; its ``metadata_props`` name every layer's formats
        and datapath (module docstring).

    Raises:
        ImportError: without the ``onnx`` package.
        ValueError: a layer with no ONNX export (the message names it and lists those exported); an
            ``input_shape`` that ONNX shape inference finds the model cannot take, or of a size below 1
            or above `nets.args.MAX_SIZE`; no ``input_shape`` for a model whose layers accept several ranks
            (a Sequential of elementwise layers, say).
        TypeError: a ``model`` that is not a nets `Model`, a ``policy`` or ``quant`` of another type, an
            ``input_shape`` that is not a tuple of ints (a float size was truncated).
    """
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise ImportError(_INSTALL) from None
    _check_args("to_onnx", model, policy, quant)
    pol = policy or PrecisionPolicy.float64()
    params = converted_parameters(model, pol, quant)
    w = Writer(helper, numpy_helper, params)
    children = model.root.children
    graph = children[0] if len(children) == 1 and isinstance(children[0], Graph) else None
    x = w.fresh(graph.input if graph is not None else "x")
    y = _walk(w, model.root, x)
    if graph is None:
        w.node("Identity", [y], [w.fresh("y")], "output")
        y = w.nodes[-1].output[0]
    g = helper.make_graph(w.nodes, "nets", [helper.make_tensor_value_info(x, onnx.TensorProto.FLOAT, None)],
                          [helper.make_tensor_value_info(y, onnx.TensorProto.FLOAT, None)], w.initializers)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="nets")
    _declare(onnx, m, _input_dims(onnx, m, graph, input_shape))
    helper.set_model_props(m, _metadata(model, pol, w.exact, quant))
    if path is not None:
        onnx.save(m, os.fspath(path))
    return m
