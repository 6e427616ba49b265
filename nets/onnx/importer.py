"""`from_onnx`: an ONNX model as a nets `Model` whose layers are nets layers, one per ONNX node.

The import reads the graph once, in its (topological) node order:

1. initializers and Constant nodes become constants; a node whose inputs
   are all constants is evaluated at import (`nets.onnx.fold`), and so is
   ``Shape`` of a tensor whose shape ONNX shape inference knows; Identity
   nodes are aliases;
2. every other node becomes one nets layer named after the node
   (`nets.onnx.translate`), a few with an auxiliary transpose named
   ``<node>/transpose_in`` or ``<node>/transpose_out``; an operator with no
   translation is refused with a ValueError naming the operator, the node
   and the opset, never skipped;
3. with ``fold_batchnorm``, a BatchNormalization whose input is read only by
   it and comes from a Conv or a Gemm is folded into that layer's weights
   and bias (the BatchNormalization node disappears); with ``fuse_bias`` (the
   default), an Add of a constant vector to the only use of a MatMul by a
   constant becomes that layer's bias (the Add node disappears);
4. nodes that do not lead to the output are dropped;
5. the graph records whether its output rows each come from their own input
   row (`nets.onnx.rows.mixing_node`), which batching by `Model.predict` and
   `nets.evaluate` needs, and the dimensions shape inference gave its input
   (``Graph.input_dims``: None where symbolic, None for an unknown rank), which
   `nets.onnx.to_onnx` declares again.

Layer names are the ONNX node names; a node without a name is called
``<op_type>_<index>`` (its index in the ONNX node list), and a name met again
gets ``_2``, ``_3``, ... appended. The model's weights are the imported ones
(`Model` initialises weights from its seed; the import puts them back).

Imports numpy and `nets`; `onnx` only when called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..graph import Graph, Node
from ..layers import Conv2d, Layer, Linear, Sequential
from ..models import Model
from ..norm import BatchNorm
from .fold import FOLDERS, fold
from .pointwise import Add
from .products import GroupedConv2d, LinearND
from .rows import mixing_node
from .translate import TRANSLATORS

__all__ = ["Builder", "OnnxNode", "from_onnx", "layer_names"]

_INSTALL = "nets.onnx.from_onnx needs the onnx package: pip install numfmt-emu[onnx]"


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(_INSTALL) from None
    return onnx


@dataclass(frozen=True)
class OnnxNode:
    """One ONNX node as the translators read it: its layer name, operator, tensor names (inputs resolved
    through aliases; '' for an absent optional input) and attributes (tensors as numpy arrays, strings
    decoded)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


class Builder:
    """The state of one import: constants, known shapes, the opset, and the nodes emitted so far."""

    def __init__(self, constants: dict[str, np.ndarray], shapes: dict[str, tuple[int | None, ...]],
                 opset: int, used: set[str], types: dict[str, int] | None = None) -> None:
        self.constants = constants
        self.shapes = shapes
        self.types = types or {}  # ONNX element types (TensorProto.FLOAT, ...) where known
        self.opset = opset
        self.used = used
        self.nodes: list[Node] = []
        self.translated: list[tuple[OnnxNode, Node | None]] = []  # run-time nodes, each with its layer's
        self.alias: dict[str, str] = {}
        self.graph_constants: dict[str, np.ndarray] = {}
        self.taken: set[str] = set()  # the graph's tensor and layer names, and every name `fresh` gave
        self.shape_folded = False  # a Shape of a run-time tensor became a constant

    def fresh(self, base: str) -> str:
        """A tensor or layer name for a node's auxiliary tensor or layer: ``base`` (e.g. "fc/c"), or
        ``base_2``, ``base_3``, ... when the graph already names a tensor or a node so."""
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def resolve(self, t: str) -> str:
        """The tensor an alias (an Identity's output) stands for."""
        while t in self.alias:
            t = self.alias[t]
        return t

    def const(self, t: str) -> np.ndarray | None:
        """The value of a constant tensor (None for a run-time tensor or an absent input '')."""
        return self.constants.get(t) if t else None

    def dims(self, t: str) -> tuple[int | None, ...] | None:
        """The dimensions shape inference gave ``t`` (None where symbolic); None when its rank is unknown."""
        c = self.const(t)
        return tuple(c.shape) if c is not None else self.shapes.get(t)

    def data(self, t: str) -> str:
        """The name a run-time node reads for input ``t``; a constant becomes a float64 graph constant."""
        c = self.const(t)
        if c is not None:
            self.graph_constants[t] = np.asarray(c, np.float64)
        return t

    def emit(self, layer: Layer, inputs: list[str], outputs: list[str]) -> None:
        """Add a node."""
        self.nodes.append(Node(layer, tuple(inputs), tuple(outputs)))

    def error(self, n: OnnxNode, why: str) -> ValueError:
        """A ValueError naming the operator, the node and the opset."""
        return ValueError(f"from_onnx: {n.op} node {n.name!r} (opset {self.opset}): {why}")

    def first_output_only(self, n: OnnxNode) -> str:
        """The node's first output, after checking that nothing reads its other (optional) outputs."""
        extra = [t for t in n.outputs[1:] if t and t in self.used]
        if extra:
            raise self.error(n, f"its optional outputs {extra} are used; only the first output is supported")
        return n.outputs[0]


def layer_names(nodes: list[tuple[str, str]]) -> list[str]:
    """Layer names for ONNX nodes given as (name, op_type): the name, ``<op_type>_<index>`` when empty,
    ``_2``, ``_3``, ... appended to a name met again.

    >>> layer_names([("fc", "Gemm"), ("", "Relu"), ("fc", "Gemm")])
    ['fc', 'Relu_1', 'fc_2']
    """
    seen: set[str] = set()
    out = []
    for i, (name, op) in enumerate(nodes):
        base = name or f"{op}_{i}"
        cand, k = base, 1
        while cand in seen:
            k += 1
            cand = f"{base}_{k}"
        seen.add(cand)
        out.append(cand)
    return out


def _load(onnx: Any, model: Any) -> Any:
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (str, os.PathLike)):
        return onnx.load(os.fspath(model))
    raise TypeError(f"from_onnx: model={type(model).__name__} must be a path or an onnx.ModelProto")


def _attrs(onnx: Any, node: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode() for s in v]
        out[a.name] = v
    return out


def _check_attributes(onnx: Any, b: Builder, n: OnnxNode) -> None:
    """Refuse an attribute the operator does not define at the model's opset (onnx's checker refuses such
    a model, and a translator would never read it: Clip's min and max are inputs from opset 11 on). An
    operator onnx does not know at that opset is left to the translators, which refuse it."""
    try:
        defined = onnx.defs.get_schema(n.op, b.opset, "").attributes
    except onnx.defs.SchemaError:
        return
    extra = sorted(set(n.attrs) - set(defined))
    if extra:
        raise b.error(n, f"attribute(s) {extra} are not defined for {n.op} at opset {b.opset}; its"
                      f" attributes: {', '.join(sorted(defined)) or 'none'}")


def _sorted_squeeze_axes(onnx: Any, proto: Any) -> Any:
    """proto, or a copy whose Squeeze nodes list their ``axes`` attribute in increasing order: the same
    model (a Squeeze removes the same axes whatever their order), which onnx's shape inference of
    Squeeze-1 gets right only in that order (axes [2, 1] of a (3, 1, 1, 7) input inferred (3, 1, 7),
    which a Shape read from it would carry into the model)."""
    def unsorted(n: Any) -> bool:
        return n.op_type == "Squeeze" and any(a.name == "axes" and list(a.ints) != sorted(a.ints)
                                              for a in n.attribute)
    if not any(unsorted(n) for n in proto.graph.node):
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for n in copy.graph.node:
        if unsorted(n):
            axes = next(a for a in n.attribute if a.name == "axes")
            ordered = sorted(axes.ints)
            del axes.ints[:]
            axes.ints.extend(ordered)
    return copy


def _shapes(onnx: Any, proto: Any) -> tuple[dict[str, tuple[int | None, ...]], dict[str, int]]:
    """The shapes and the element types shape inference gives the graph's tensors."""
    try:
        inferred = onnx.shape_inference.infer_shapes(_sorted_squeeze_axes(onnx, proto))
    except Exception:  # noqa: BLE001 - inference is a help, not a requirement: without it shapes are unknown
        inferred = proto
    g = inferred.graph
    out: dict[str, tuple[int | None, ...]] = {}
    types: dict[str, int] = {}
    for vi in [*g.value_info, *g.input, *g.output]:
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        if t.elem_type:
            types[vi.name] = int(t.elem_type)
    return out, types


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"from_onnx: {name}={value!r} must be True or False")
    return value


def from_onnx(model: Any, *, fold_batchnorm: bool = False, fuse_bias: bool = True,
              loss: str = "cross_entropy") -> Model:
    """A nets `Model` (``Model(Sequential(graph))``, a `nets.graph.Graph`) from an ONNX model.

    Args:
        model: a path to an ``.onnx`` file or an ``onnx.ModelProto``.
        fold_batchnorm: fold every BatchNormalization that follows a Conv or Gemm (and is its only
            reader) into that layer's weights and bias (W' = W gamma / sqrt(var + eps), b' = (b - mean)
            gamma / sqrt(var + eps) + beta), so a policy quantises the folded weights; False keeps it
            as a nets `BatchNorm` with the imported running statistics and gamma, beta. A
            BatchNormalization with no such producer stays a `BatchNorm` either way.
        fuse_bias: turn Add(MatMul(x, W), b), b a constant vector, into one layer with bias b (so b
            takes the ``biases`` role and the accumulator starts at it); False keeps the Add.
        loss: the model's loss (`Model`); the graph's output is what the loss reads (logits for
            ``cross_entropy``).

    Returns:
        The model; its layers are named after the ONNX nodes (module docstring), its parameters are
        the imported values as float64.

    Raises:
        ImportError: onnx is not installed (the message names ``pip install numfmt-emu[onnx]``).
        TypeError: ``model`` neither a path nor a ModelProto.
        ValueError: an operator, attribute or input this importer does not support (naming the
            operator, the node and the opset); a graph with other than one run-time input and one
            output; a bad option.

    A one-node model, y = x W^T + b:

    >>> import onnx
    >>> from onnx import TensorProto, helper, numpy_helper
    >>> w = numpy_helper.from_array(np.array([[1.0, 2.0]], np.float32), "w")
    >>> b = numpy_helper.from_array(np.array([0.5], np.float32), "b")
    >>> g = helper.make_graph([helper.make_node("Gemm", ["x", "w", "b"], ["y"], name="fc", transB=1)], "g",
    ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
    ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])], [w, b])
    >>> m = from_onnx(helper.make_model(g))
    >>> [layer.name for layer in m.layers()], m.layers()[0].params["W"].ravel().tolist()
    (['fc'], [1.0, 2.0])
    >>> import nets
    >>> m.forward(np.array([[1.0, 1.0]]), nets.Context.float64(training=False))
    array([[3.5]])
    """
    onnx = _require_onnx()
    fold_batchnorm = _check_flag(fold_batchnorm, "fold_batchnorm")
    fuse_bias = _check_flag(fuse_bias, "fuse_bias")
    proto = _load(onnx, model)
    opsets = {o.domain: o.version for o in proto.opset_import}
    opset = opsets.get("", opsets.get("ai.onnx"))
    if opset is None:
        raise ValueError("from_onnx: the model imports no version of the default ONNX operator set")
    g = proto.graph
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i.name for i in g.input if i.name not in constants]
    if len(inputs) != 1 or len(g.output) != 1:
        raise ValueError(f"from_onnx: the graph has run-time inputs {inputs} and outputs"
                         f" {[o.name for o in g.output]}; exactly one of each is supported")
    used = {t for node in g.node for t in node.input} | {g.output[0].name}
    shapes, types = _shapes(onnx, proto)
    b = Builder(constants, shapes, int(opset), used, types)
    names = layer_names([(node.name, node.op_type) for node in g.node])
    b.taken.update(names, constants, (i.name for i in g.input), (o.name for o in g.output),
                   (t for node in g.node for t in (*node.input, *node.output)))
    for node, name in zip(g.node, names, strict=True):
        n = OnnxNode(name, node.op_type, tuple(b.resolve(t) for t in node.input), tuple(node.output),
                     _attrs(onnx, node))
        if node.domain not in ("", "ai.onnx"):
            raise b.error(n, f"domain {node.domain!r} is not supported (the default ONNX domain only)")
        _check_attributes(onnx, b, n)
        _add(b, n)
    out = b.resolve(g.output[0].name)
    if out in b.constants:
        raise ValueError(f"from_onnx: the output {g.output[0].name!r} does not depend on the input")
    if out == inputs[0]:
        raise ValueError(f"from_onnx: the output {g.output[0].name!r} is the input itself (the graph"
                         " computes nothing)")
    if fold_batchnorm:
        _fold_batchnorm(b, out)
    if fuse_bias:
        _fuse_bias(b, out)
    nodes = _live(b.nodes, out)
    read = {t for nd in nodes for t in nd.inputs}
    mixer = mixing_node(b.translated, inputs[0], out, b.const, b.dims)
    if out != g.output[0].name:  # the graph ends in Identity: its output keeps the graph's name
        name = g.output[0].name
        nodes = [Node(nd.layer, tuple(name if t == out else t for t in nd.inputs),
                      tuple(name if t == out else t for t in nd.outputs)) for nd in nodes]
        out = name
    dims = b.dims(inputs[0])
    rows = dims[0] if b.shape_folded and dims and isinstance(dims[0], int) else None
    graph = Graph(nodes, inputs[0], out, {k: v for k, v in b.graph_constants.items() if k in read},
                  name=g.name, rows_mixed_by=mixer, input_dims=dims, rows=rows)
    return Model(Sequential(graph), loss=loss, init=None)  # the imported weights stay


def _add(b: Builder, n: OnnxNode) -> None:
    """Fold, alias or translate one node."""
    try:
        if n.op == "Identity":
            b.alias[n.outputs[0]] = n.inputs[0]
            return
        if n.op == "Shape" and b.const(n.inputs[0]) is None:
            dims = b.dims(n.inputs[0])
            if dims is None or None in dims:
                raise b.error(n, f"the shape of {n.inputs[0]!r} is not known at import ({dims}); give the"
                              " graph's input a fixed shape")
            ins: list[np.ndarray | None] = [np.broadcast_to(np.empty(()), dims)]  # type: ignore[arg-type]
            b.constants[n.outputs[0]] = fold("Shape", ins, n.attrs, b.opset)[0]
            b.shape_folded = True
            return
        if n.op in FOLDERS and all(not t or t in b.constants for t in n.inputs):
            outs = fold(n.op, [b.const(t) for t in n.inputs], n.attrs, b.opset)
            for t, v in zip(n.outputs, outs, strict=False):
                b.constants[t] = v
            return
        if n.op not in TRANSLATORS:
            raise b.error(n, "operator not supported; supported: " + ", ".join(sorted(TRANSLATORS)))
        first = len(b.nodes)
        TRANSLATORS[n.op](b, n)
        b.translated.append((n, next((nd for nd in b.nodes[first:] if nd.layer.name == n.name), None)))
    except (ValueError, KeyError, IndexError) as e:
        if str(e).startswith("from_onnx:"):
            raise
        why = (f"attribute {e.args[0]!r} is missing (the operator is read as opset {b.opset} defines it)"
               if isinstance(e, KeyError) else str(e))
        raise b.error(n, why) from e


def _readers(nodes: list[Node]) -> dict[str, int]:
    count: dict[str, int] = {}
    for nd in nodes:
        for t in nd.inputs:
            count[t] = count.get(t, 0) + 1
    return count


def _fold_batchnorm(b: Builder, out: str) -> None:
    readers = _readers(b.nodes)
    producer = {t: i for i, nd in enumerate(b.nodes) for t in nd.outputs}
    drop = set()
    for j, nd in enumerate(b.nodes):
        bn = nd.layer
        if not isinstance(bn, BatchNorm):
            continue
        t = nd.inputs[0]
        i = producer.get(t)
        if i is None or readers.get(t) != 1 or t == out:
            continue
        p = b.nodes[i].layer
        if type(p) not in (Conv2d, GroupedConv2d, Linear):
            continue
        s = bn.params["gamma"] / np.sqrt(bn.running_var + bn.eps)
        w = p.params["W"]
        p.params["W"] = w * s if isinstance(p, Linear) else w * s[:, None, None, None]
        bias = p.params.get("b", np.zeros(s.shape))
        p.params["b"] = (bias - bn.running_mean) * s + bn.params["beta"]
        b.nodes[i] = Node(p, b.nodes[i].inputs, nd.outputs)
        drop.add(j)
    b.nodes = [nd for j, nd in enumerate(b.nodes) if j not in drop]


def _fuse_bias(b: Builder, out: str) -> None:
    readers = _readers(b.nodes)
    producer = {t: i for i, nd in enumerate(b.nodes) for t in nd.outputs}
    drop = set()
    for j, nd in enumerate(b.nodes):
        if type(nd.layer) is not Add:
            continue
        for t, c in (nd.inputs, nd.inputs[::-1]):
            i = producer.get(t)
            if c not in b.graph_constants or i is None or readers.get(t) != 1 or t == out:
                continue
            p = b.nodes[i].layer
            bias = b.graph_constants[c]
            if type(p) is not LinearND or "b" in p.params or bias.shape != (p.n_out,):
                continue
            p.params["b"] = bias.copy()
            b.nodes[i] = Node(p, b.nodes[i].inputs, nd.outputs)
            drop.add(j)
            break
    b.nodes = [nd for j, nd in enumerate(b.nodes) if j not in drop]


def _live(nodes: list[Node], out: str) -> list[Node]:
    """The nodes the output depends on, in order."""
    need = {out}
    keep = []
    for nd in reversed(nodes):
        if any(t in need for t in nd.outputs):
            keep.append(nd)
            need |= set(nd.inputs)
    return keep[::-1]
