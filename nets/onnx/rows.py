"""Whether an imported graph keeps the rows of its input apart (`mixing_node`).

`Model.predict` and `nets.evaluate` run the rows of x (its axis 0) in batches
and join the outputs along axis 0. That is the whole-input result only when
output row i depends on input row i alone: true of a network built in nets,
not of every ONNX graph (a Softmax over axis 0, a Gemm with transA=1 on the
input, a Flatten at axis 0, a Reshape that moves the first axis, ...).

`mixing_node` follows the input's row axis through the graph, node by node,
and names the first node after which the rows are no longer apart, or the
output whose rows are not its axis 0; None when every output row comes from
its own input row. The rules are conservative: a node they cannot place
(an unknown rank, a Reshape whose first axis they cannot match) counts as
mixing, which costs only batching, never a wrong result.

Worked example: x (N, 3) -> Softmax(axis=0) mixes (each output column is
normalised over all N rows); x (N, 3) -> Softmax(axis=1) does not, nor does
a Transpose of (N, C, L) by (0, 2, 1); a Transpose by (1, 0, 2) moves the
rows to axis 1, which is fine inside the graph but not at its output.

Imports numpy and the translated layers' classes; reads `OnnxNode` records (`nets.onnx.importer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers import Flatten
from .layernorm import LayerNorm
from .pointwise import Softmax
from .shape import Concat, FlattenAt, Gather, Pad, Reshape, Slice, Split, Squeeze, Transpose, Unsqueeze

__all__ = ["mixing_node"]

#: operators applied element by element to their one run-time input
_ELEMENTWISE = {"Relu", "Sigmoid", "Tanh", "Erf", "Gelu", "LeakyRelu", "Clip", "Dropout"}
#: operators over NCHW maps (or (N, C, ...) features) that treat every item of axis 0 alone at inference
_BATCH_FIRST = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization"}


class _Rows:
    """The row axis of every run-time tensor seen so far (``axis``), and the facts a rule reads."""

    def __init__(self, source: str, const: Callable[[str], np.ndarray | None],
                 dims: Callable[[str], tuple[int | None, ...] | None]) -> None:
        self.axis: dict[str, int] = {source: 0}
        self.const, self.dims = const, dims

    def rank(self, t: str) -> int | None:
        d = self.dims(t)
        return None if d is None else len(d)


def _norm(a: int, rank: int | None) -> int | None:
    if a >= 0:
        return a
    return None if rank is None else a + rank


def _broadcast(operands: list[tuple[int | None, int | None, np.ndarray | None]]) -> int | None:
    """The row axis of the result of operands broadcast together as numpy does, each a (rank, row axis or
    None for an operand without rows, constant value or None) triple: the run-time operands must hold
    their rows on one output axis, and no constant may vary along it."""
    ranks = [k for k, _, _ in operands]
    if None in ranks:
        return None
    out_rank = max(ranks)  # type: ignore[type-var]
    place = {p + out_rank - k for k, p, _ in operands if p is not None}  # type: ignore[operator]
    if len(place) != 1:
        return None  # two run-time operands with their rows on different axes
    q = place.pop()
    for k, _, c in operands:  # a constant must not vary along the rows
        if c is not None and q - (out_rank - k) >= 0 and c.shape[q - (out_rank - k)] != 1:  # type: ignore
            return None
    return q


def _binary(inputs: tuple[str, ...], r: _Rows) -> int | None:
    """Add/Sub/Mul/Div on the translated layer's inputs: numpy broadcasting (the translation gives a
    legacy ``axis`` operand the trailing axes that make it so)."""
    return _broadcast([(r.rank(t), r.axis.get(t), r.const(t)) for t in inputs])


def _matmul(n: Any, r: _Rows) -> int | None:
    """A @ B over the last two axes, the leading ones broadcast: the rows of A (axis -2) and the columns of
    B (axis -1) are the output's; the contracted axes (A's -1, B's -2) must not hold the row axis."""
    a, b = n.inputs[0], n.inputs[1]
    ra, rb = r.rank(a), r.rank(b)
    if ra is None or rb is None or ra < 2 or rb < 2:
        return None  # a 1-d operand: its only axis is contracted
    out_rank = max(ra, rb)
    place = set()
    for t, k, kept, contracted in ((a, ra, out_rank - 2, ra - 1), (b, rb, out_rank - 1, rb - 2)):
        if t in r.axis:
            p = r.axis[t]
            if p == contracted:
                return None
            place.add(kept if p >= k - 2 else p + out_rank - k)
    return place.pop() if len(place) == 1 else None


def _gemm(n: Any, r: _Rows) -> int | None:
    """y = A' B' + C, 2-d: the rows of A' (A run-time) or the columns of B' (B run-time) are the output's,
    and C, broadcast to y as numpy does, must not vary along them (`_broadcast`, as for an Add)."""
    a, b, c = n.inputs[0], n.inputs[1], (n.inputs[2] if len(n.inputs) > 2 else "")
    if a in r.axis:  # y = A' B': the rows of A' are the output's
        q = 0 if r.axis[a] == (1 if int(n.attrs.get("transA", 0)) else 0) else None
    elif b in r.axis:  # A constant: the columns of B' are the output's
        q = 1 if r.axis[b] == (0 if int(n.attrs.get("transB", 0)) else 1) else None
    else:
        return None
    cc = r.const(c) if c else None
    if q is None or cc is None:
        return q
    return _broadcast([(2, q, None), (cc.ndim, None, cc)])


def _reshape(layer: Reshape, r: _Rows, x: str, p: int) -> int | None:
    spec = layer.shape
    if p != 0 or not spec:
        return None
    if spec[0] == 0 and not layer.allowzero:
        return 0  # the first axis copied
    d = r.dims(x)
    rest = None if d is None or None in d[1:] else math.prod(d[1:])  # type: ignore[misc]
    if spec[0] == -1 and rest is not None and all(s > 0 for s in spec[1:]) and math.prod(spec[1:]) == rest:
        return 0  # (N, ...) -> (-1, ...) with the same row size: N rows again
    return None


def _moved(layer: Any, node: Any, r: _Rows, p: int, rank: int | None) -> int | None:
    """The shape layers, their parameters as the translation read them: where the row axis p of the first
    input lands, None when they touch it."""
    if isinstance(layer, Transpose):
        perm = layer.perm if layer.perm is not None else (None if rank is None else range(rank)[::-1])
        return None if perm is None else list(perm).index(p)
    if isinstance(layer, (Flatten, FlattenAt)):
        a = _norm(layer.axis if isinstance(layer, FlattenAt) else 1, rank)
        return 0 if p == 0 and a is not None and a >= 1 else None
    if isinstance(layer, Reshape):
        return _reshape(layer, r, node.inputs[0], p)
    if isinstance(layer, Concat):  # every part run-time, with its rows on p (a constant part has none)
        axis = _norm(layer.axis, rank)
        return p if axis is not None and axis != p and all(r.axis.get(t) == p for t in node.inputs) else None
    if isinstance(layer, Split):
        axis = _norm(layer.axis, rank)
        return p if axis is not None and axis != p else None
    if isinstance(layer, Gather):
        axis = _norm(layer.axis, rank)
        return None if axis is None or axis == p else p if p < axis else p - 1 + layer.indices.ndim
    if isinstance(layer, Slice):
        axes = range(len(layer.starts)) if layer.axes is None else layer.axes
        normed = [_norm(a, rank) for a in axes]
        return None if None in normed or p in normed else p
    if isinstance(layer, Pad):
        axes = range(len(layer.pads) // 2) if layer.axes is None else [_norm(a, rank) for a in layer.axes]
        k = len(axes)
        moved = {a for i, a in enumerate(axes) if layer.pads[i] or layer.pads[i + k]}
        return None if None in axes or p in moved else p
    if isinstance(layer, Squeeze):
        normed = None if layer.axes is None else [_norm(a, rank) for a in layer.axes]
        if normed is None or None in normed or p in normed:
            return None
        return p - sum(a < p for a in normed)  # type: ignore[operator]
    if isinstance(layer, Unsqueeze):
        out_rank = None if rank is None else rank + len(layer.axes)
        normed = [_norm(a, out_rank) for a in layer.axes]
        if None in normed:
            return None
        for a in sorted(normed):  # type: ignore[type-var]
            p += a <= p  # an axis inserted at or before the row axis's new place moves it up
        return p
    return None


def _rule(n: Any, node: Any, r: _Rows) -> int | None:
    """The row axis of the node's outputs, or None when the node mixes rows: ``n`` the ONNX node, ``node``
    the nets node its translation emitted under its name (None if none)."""
    x = n.inputs[0]
    p, rank = r.axis.get(x), r.rank(x)
    layer = None if node is None else node.layer
    if n.op in ("Add", "Sub", "Mul", "Div"):
        return _binary(node.inputs, r)
    if n.op == "MatMul":
        return _matmul(n, r)
    if n.op == "Gemm":
        return _gemm(n, r)
    if p is None:
        return None
    if n.op in _ELEMENTWISE:
        return p
    if n.op in _BATCH_FIRST:
        return 0 if p == 0 else None
    if isinstance(layer, Softmax):
        a = _norm(layer.axis, rank)
        if a is None:
            return None
        return p if (p < a if layer.coerce_2d else p != a) else None  # coerced (< 13): over axes a..end
    if isinstance(layer, LayerNorm):
        a = _norm(layer.axis, rank)
        return p if a is not None and p < a else None
    return _moved(layer, node, r, p, rank)


def mixing_node(nodes: list[tuple[Any, Any]], source: str, output: str,
                const: Callable[[str], np.ndarray | None],
                dims: Callable[[str], tuple[int | None, ...] | None]) -> str | None:
    """The first node (``"<op> node '<name>'"``) after which the graph's output rows no longer come each
    from its own row of the input ``source`` (axis 0), or a phrase naming the output when its rows are
    not its axis 0; None when they do. ``nodes`` are the run-time nodes in order, each an (`OnnxNode`,
    the nets `Node` its translation emitted under the node's name) pair, whose layer holds the
    parameters as the translation read them; ``const`` gives a constant's value (None for a run-time
    tensor), ``dims`` the dimensions shape inference gave a tensor.

    >>> from nets.graph import Node
    >>> from nets.onnx.importer import OnnxNode
    >>> from nets.onnx.pointwise import Softmax
    >>> def sm(axis):
    ...     return [(OnnxNode("sm", "Softmax", ("x",), ("y",), {}), Node(Softmax(axis), ("x",), ("y",)))]
    >>> dims, no_const = {"x": (None, 3), "y": (None, 3)}.get, lambda t: None
    >>> mixing_node(sm(0), "x", "y", no_const, dims), mixing_node(sm(1), "x", "y", no_const, dims)
    ("Softmax node 'sm'", None)
    """
    r = _Rows(source, const, dims)
    for n, node in nodes:
        q = _rule(n, node, r)
        if q is None:
            return f"{n.op} node {n.name!r}"
        for t in n.outputs:
            if t:
                r.axis[t] = q
    q = r.axis.get(output)
    return None if q == 0 else f"the output {output!r}, whose rows are along axis {q}"
