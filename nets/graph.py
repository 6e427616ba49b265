"""A graph of layers: tensors flow by name between nodes kept in topological order.

`Graph` is a `Layer` whose forward pass evaluates its `Node`s in order, each
node a layer with named input and output tensors, and whose backward pass
runs the nodes in reverse, summing the gradients of a tensor that feeds
several nodes. A plain `Layer` takes one input and gives one output; a
`MultiLayer` (an elementwise sum of two tensors, a concatenation, a split)
takes and gives several. Named constants (non-trainable float64 arrays) may
feed any node; they receive no gradient. Every node keeps its own name, so a
`PrecisionPolicy` addresses it as it addresses a layer of a `Sequential`.
A model is ``Model(Sequential(graph))``. Imports numpy and `nets.layers`.

Conversions the graph itself makes (besides those of its nodes):

- a gradient summed over the several nodes a tensor feeds is converted to
  the ``errors`` role of the node that produced the tensor (of the first
  node when the tensor is the graph's input), as a layer boundary: under
  every granularity but "batch";
- `Graph.q` (what `Model` calls to convert the network's input and the loss
  gradient) converts with the policy of the node that reads the input (for
  the input) or produces the output (for the loss gradient), as it would
  in a `Sequential` whose first and last layers those nodes are.

Layer boundaries for the "layer" granularity (`Layer.ends_layer`,
``starts_layer``) follow `nets.layers.mark_layer_boundaries`: a product
(Linear, Conv2d, or a layer whose ``opens_layer`` is True) opens a layer; a
node ends one when its output feeds a product, feeds several nodes or a
node reading several run-time tensors (a join, like a residual sum), or is
the graph's output; a node starts one when it opens one or reads the
graph's input or a tensor that ends a layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layers import Context, Conv2d, Layer, Linear

__all__ = ["Graph", "MultiLayer", "Node", "opens_layer"]


class MultiLayer(Layer):
    """A layer with several inputs or several outputs: `forward_many` and `backward_many`.

    ``forward_many(xs, ctx)`` returns the list of outputs; ``backward_many(dys,
    ctx)`` takes one gradient per output (zeros for an output nothing read)
    and returns one gradient per input (None where none is computed).
    `forward` and `backward` serve the one-input, one-output case.
    """

    def forward_many(self, xs: list[np.ndarray], ctx: Context) -> list[np.ndarray]:  # pragma: no cover
        raise NotImplementedError

    def backward_many(self, dys: list[np.ndarray],
                      ctx: Context) -> list[np.ndarray | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        (y,) = self.forward_many([x], ctx)
        return y

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        (dx,) = self.backward_many([dy], ctx)
        return dx  # type: ignore[return-value]


def opens_layer(layer: Layer) -> bool:
    """Whether a layer is a product that opens a layer (Linear, Conv2d, or ``opens_layer`` set True)."""
    return isinstance(layer, (Linear, Conv2d)) or bool(getattr(layer, "opens_layer", False))


@dataclass(frozen=True)
class Node:
    """One layer of a graph with the names of the tensors it reads and writes.

    >>> import nets
    >>> Node(nets.ReLU(name="act"), ("x",), ("y",)).layer.name
    'act'
    """

    layer: Layer
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        many = isinstance(self.layer, MultiLayer)
        if not many and (len(self.inputs) != 1 or len(self.outputs) != 1):
            raise ValueError(f"Node: layer {self.layer.name!r} ({type(self.layer).__name__}) takes one input"
                             f" and gives one output; inputs={self.inputs}, outputs={self.outputs}")
        if not self.outputs:
            raise ValueError(f"Node: layer {self.layer.name!r} has no outputs")


class Graph(Layer):
    """Nodes in topological order; tensors flow by name from ``input`` to ``output``.

    Args:
        nodes: the nodes, each reading only the input, constants and tensors of earlier nodes.
        input: the name of the graph's input tensor.
        output: the name of the graph's output tensor.
        constants: named float64 arrays any node may read (they receive no gradient).
        name: the graph's name (it converts nothing under it: see the module docstring).
        rows_mixed_by: for a graph whose output row i does not come from input row i alone (axis 0) at
            inference, the node that mixes them (an imported Softmax over axis 0, say); None: the rows
            are apart, so inference may run them in batches (`Model.predict`).
        input_dims: the input's dimensions where known (a size, or None where symbolic; None for an
            unknown rank), as an imported model's ONNX input declared them (`nets.onnx.to_onnx` declares
            them again).
        rows: the number of rows (axis 0) every input must have, or None: an imported graph whose ONNX
            input has a fixed first dimension and whose Shape nodes were folded with it (a Reshape to
            [1, 3, -1] built from Shape(x) holds that batch size). `Model.predict` and `nets.evaluate`
            then run batches of exactly ``rows`` rows, and `forward` refuses any other count.

    Raises:
        ValueError: a node reading a tensor that no earlier node, constant or the input defines; a tensor
            defined twice; an output no node defines; an input no node reads; layer names that repeat.

    Two branches summed: y = relu(x) + 2 x; the gradient of x sums the two paths.

    >>> import nets
    >>> from nets.onnx.pointwise import Add
    >>> g = Graph([Node(nets.ReLU(name="r"), ("x",), ("a",)),
    ...            Node(Add(name="t"), ("x", "x"), ("two_x",)),
    ...            Node(Add(name="s"), ("a", "two_x"), ("y",))], "x", "y")
    >>> ctx = Context.float64()
    >>> g.forward(np.array([[-1.0, 3.0]]), ctx)
    array([[-2.,  9.]])
    >>> g.backward(np.ones((1, 2)), ctx)
    array([[2., 3.]])
    """

    def __init__(self, nodes: Sequence[Node], input: str, output: str,  # noqa: A002 - the tensor's role
                 constants: Mapping[str, np.ndarray] | None = None, name: str = "",
                 rows_mixed_by: str | None = None, input_dims: Sequence[int | None] | None = None,
                 rows: int | None = None) -> None:
        super().__init__(name)
        self.rows_mixed_by, self.rows = rows_mixed_by, rows
        self.input_dims = None if input_dims is None else tuple(input_dims)
        self.nodes = list(nodes)
        self.input, self.output = input, output
        self.constants = {k: np.asarray(v, np.float64) for k, v in (constants or {}).items()}
        defined = {input, *self.constants}
        if input in self.constants:
            raise ValueError(f"Graph: the input {input!r} is also a constant")
        self._producer: dict[str, Node] = {}
        readers: dict[str, list[Node]] = {}
        for node in self.nodes:
            for t in node.inputs:
                if t not in defined:
                    raise ValueError(f"Graph: node {node.layer.name!r} reads {t!r}, which no earlier node,"
                                     " constant or the input defines (nodes must be in topological order)")
                readers.setdefault(t, []).append(node)
            for t in node.outputs:
                if t in defined:
                    raise ValueError(f"Graph: tensor {t!r} is defined twice (again by {node.layer.name!r})")
                defined.add(t)
                self._producer[t] = node
        if output not in self._producer:
            raise ValueError(f"Graph: no node defines the output {output!r}")
        if input not in readers:
            raise ValueError(f"Graph: no node reads the input {input!r}")
        names = [layer.name for layer in self.layers() if layer.name]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"Graph: layer names must be unique; repeated: {', '.join(dup)}")
        self._readers = readers
        self._mark_boundaries()

    def _mark_boundaries(self) -> None:
        ends: set[str] = {self.input, self.output}
        def joins(node: Node) -> bool:  # reads several run-time tensors (a residual sum, a concatenation)
            return sum(t not in self.constants for t in node.inputs) > 1

        for t, rs in self._readers.items():
            if len(rs) > 1 or any(opens_layer(r.layer) or joins(r) for r in rs):
                ends.add(t)
        for node in reversed(self.nodes):  # a boundary after a layer that only moves values is its input's
            if not node.layer.converts and any(t in ends for t in node.outputs):
                ends.update(t for t in node.inputs if t not in self.constants)
        for node in self.nodes:
            node.layer.ends_layer = any(t in ends for t in node.outputs)
            node.layer.starts_layer = opens_layer(node.layer) or any(t in ends for t in node.inputs)

    def boundary_error_layers(self) -> set[str]:
        """The names of the layers whose ``errors`` role converts a gradient at a boundary: the loss
        gradient (`q`: the output's producer) and a gradient summed at a fork (`backward`: the producers
        of tensors that several nodes read, and the first reader of an input read several times)."""
        forked = {t for t, rs in self._readers.items() if len(rs) > 1 and t not in self.constants}
        out = {n.layer.name for n in self.nodes if any(t in forked for t in n.outputs)}
        out.add(self._producer[self.output].layer.name)
        if self.input in forked:
            out.add(self._readers[self.input][0].layer.name)
        return out

    def layers(self) -> list[Layer]:
        """The layers of every node, in order (the graph itself converts nothing and is not listed)."""
        out: list[Layer] = []
        for node in self.nodes:
            out += node.layer.layers()
        return out

    def q(self, x: np.ndarray, role: str, ctx: Context, scale: Any = None, boundary: bool = False,
          **kw: Any) -> np.ndarray:
        """x converted as the node reading the input (``activations``) or producing the output (other
        roles: the loss gradient's ``errors``) converts it (further keywords passed on to its `Layer.q`)."""
        if role == "activations":
            first = next(n for n in self.nodes if self.input in n.inputs)
            return first.layer.q(x, role, ctx, scale, boundary, **kw)
        return self._producer[self.output].layer.q(x, role, ctx, scale, boundary, **kw)

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if self.rows is not None and (x.ndim == 0 or x.shape[0] != self.rows):
            raise ValueError(f"Graph {self.name!r}: x has shape {x.shape}, but the graph holds a batch size"
                             f" of {self.rows} rows (its ONNX input's fixed first dimension, folded into"
                             f" constants by its Shape nodes): give it {self.rows} rows at a time, or export"
                             " the model with a dynamic batch dimension")
        dims = self.input_dims
        if dims is not None and (x.ndim != len(dims) or any(
                d is not None and d != s for d, s in zip(dims[1:], x.shape[1:], strict=True))):
            declared = "(" + ", ".join("N" if i == 0 else "?" if d is None else str(d)
                                       for i, d in enumerate(dims)) + ")"
            raise ValueError(f"Graph {self.name!r}: x has shape {x.shape}, but the graph's input is declared"
                             f" {declared} (the ONNX input's shape, from which the import worked out padding"
                             " and shapes): give x that shape, or export the model with those dimensions"
                             " dynamic")
        env: dict[str, np.ndarray] = dict(self.constants)
        env[self.input] = x
        for node in self.nodes:
            if node.inputs == (self.input,) and not isinstance(node.layer, MultiLayer):
                node.layer.needs_input_grad = self.needs_input_grad
            xs = [env[t] for t in node.inputs]
            if isinstance(node.layer, MultiLayer):
                ys = node.layer.forward_many(xs, ctx)
            else:
                ys = [node.layer.forward(xs[0], ctx)]
            for t, y in zip(node.outputs, ys, strict=True):
                env[t] = y
        self._shapes = {t: v.shape for t, v in env.items()}
        return env[self.output]

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        grads: dict[str, np.ndarray] = {self.output: dy}
        fanned: set[str] = set()
        for node in reversed(self.nodes):
            layer = node.layer
            dys = []
            for t in node.outputs:
                g = grads.pop(t, None)
                if g is None:
                    g = np.zeros(self._shapes[t])
                elif t in fanned:
                    g = layer.q(g, "errors", ctx, boundary=True)
                dys.append(g)
            if len(dys) == 1:
                dys[0] = layer.grad_of_output(dys[0])
            if isinstance(layer, MultiLayer):
                dxs = layer.backward_many(dys, ctx)
            else:
                dxs = [layer.backward(dys[0], ctx)]
            for t, dx in zip(node.inputs, dxs, strict=True):
                if dx is None or t in self.constants:
                    continue
                if t in grads:
                    grads[t] = grads[t] + dx
                    fanned.add(t)
                else:
                    grads[t] = dx
        g = grads.get(self.input)
        if g is None or not self.needs_input_grad:
            return None  # type: ignore[return-value]
        if self.input in fanned:
            first = next(n for n in self.nodes if self.input in n.inputs)
            g = first.layer.q(g, "errors", ctx, boundary=True)
        return g

    def extra_repr(self) -> str:
        return f"{len(self.nodes)} nodes, {self.input} -> {self.output}"

    def __repr__(self) -> str:
        lines = [f"Graph({self.input} -> {self.output}"]
        lines += [f"  {n.layer.name}: {n.layer!r}  ({', '.join(n.inputs)} -> {', '.join(n.outputs)})"
                  for n in self.nodes]
        return "\n".join(lines) + "\n)"
