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

Imports numpy; reads `OnnxNode` records (`nets.onnx.importer`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["mixing_node"]

#: operators applied element by element to their one run-time input
_ELEMENTWISE = {"Relu", "Sigmoid", "Tanh", "Erf", "Gelu", "LeakyRelu", "Clip", "Dropout"}
#: operators over NCHW maps (or (N, C, ...) features) that treat every item of axis 0 alone at inference
_BATCH_FIRST = {"Conv", "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization"}


def _ints(v: Any) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


class _Rows:
    """The row axis of every run-time tensor seen so far (``axis``), and the facts a rule reads."""

    def __init__(self, source: str, const: Callable[[str], np.ndarray | None],
                 dims: Callable[[str], tuple[int | None, ...] | None], opset: int) -> None:
        self.axis: dict[str, int] = {source: 0}
        self.const, self.dims, self.opset = const, dims, opset

    def rank(self, t: str) -> int | None:
        d = self.dims(t)
        return None if d is None else len(d)

    def arg(self, n: Any, i: int, attr: str, since: int) -> list[int] | None:
        """An int list given as attribute ``attr`` before opset ``since`` and as input i from it on."""
        if self.opset < since:
            return _ints(n.attrs[attr]) if attr in n.attrs else None
        if len(n.inputs) <= i or not n.inputs[i]:
            return None
        c = self.const(n.inputs[i])
        return None if c is None else _ints(c)


def _norm(a: int, rank: int | None) -> int | None:
    if a >= 0:
        return a
    return None if rank is None else a + rank


def _binary(n: Any, r: _Rows) -> int | None:
    """Add/Sub/Mul/Div: numpy broadcasting (the importer aligns the legacy ``axis`` form to it)."""
    ranks = [r.rank(t) for t in n.inputs]
    if None in ranks or (r.opset < 7 and "axis" in n.attrs):  # (the legacy alignment: not placed here)
        return None
    out_rank = max(ranks)  # type: ignore[type-var]
    place = {r.axis[t] + out_rank - k for t, k in zip(n.inputs, ranks, strict=True) if t in r.axis}
    if len(place) != 1:
        return None  # two run-time operands with their rows on different axes
    q = place.pop()
    for t, k in zip(n.inputs, ranks, strict=True):  # a constant must not vary along the rows
        c = r.const(t)
        if c is not None and q - (out_rank - k) >= 0 and c.shape[q - (out_rank - k)] != 1:  # type: ignore
            return None
    return q


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
    a, b = n.inputs[0], n.inputs[1]
    if a in r.axis:  # y = A' B': the rows of A' are the output's
        return 0 if r.axis[a] == (1 if int(n.attrs.get("transA", 0)) else 0) else None
    if b in r.axis:  # A constant: the columns of B' are the output's
        return 1 if r.axis[b] == (0 if int(n.attrs.get("transB", 0)) else 1) else None
    return None


def _reshape(n: Any, r: _Rows, p: int) -> int | None:
    spec = _ints(n.attrs["shape"]) if r.opset < 5 else _ints(r.const(n.inputs[1]))  # type: ignore[arg-type]
    if p != 0 or not spec:
        return None
    if spec[0] == 0 and not int(n.attrs.get("allowzero", 0)):
        return 0  # the first axis copied
    d = r.dims(n.inputs[0])
    rest = None if d is None or None in d[1:] else math.prod(d[1:])  # type: ignore[misc]
    if spec[0] == -1 and rest is not None and all(s > 0 for s in spec[1:]) and math.prod(spec[1:]) == rest:
        return 0  # (N, ...) -> (-1, ...) with the same row size: N rows again
    return None


def _moved(n: Any, r: _Rows, p: int, rank: int | None) -> int | None:
    """The shape operators: where the row axis p of the first input lands, None when they touch it."""
    op, at = n.op, n.attrs
    if op == "Transpose":
        perm = _ints(at["perm"]) if "perm" in at else (None if rank is None else list(range(rank))[::-1])
        return None if perm is None else perm.index(p)
    if op == "Flatten":
        a = _norm(int(at.get("axis", 1)), rank)
        return 0 if p == 0 and a is not None and a >= 1 else None
    if op == "Reshape":
        return _reshape(n, r, p)
    if op == "Concat":  # every part a run-time tensor with its rows on p (a constant part has none)
        axis = _norm(int(at["axis"]), rank)
        parts = [t for t in n.inputs if t]
        return p if axis is not None and axis != p and all(r.axis.get(t) == p for t in parts) else None
    if op == "Split":
        axis = _norm(int(at.get("axis", 0)), rank)
        return p if axis is not None and axis != p else None
    if op == "Gather":
        axis = _norm(int(at.get("axis", 0)), rank)
        idx = r.const(n.inputs[1])
        if axis is None or axis == p or idx is None:
            return None
        return p if p < axis else p - 1 + idx.ndim
    if op == "Slice":
        axes = r.arg(n, 3, "axes", 10)
        starts = r.arg(n, 1, "starts", 10)
        axes = list(range(len(starts or []))) if axes is None else axes
        normed = [_norm(a, rank) for a in axes]
        return None if None in normed or p in normed else p
    if op == "Pad":
        pads = r.arg(n, 1, "pads", 11)
        axes = r.arg(n, 3, "axes", 18) if r.opset >= 18 else None
        if pads is None:
            return None
        axes = list(range(len(pads) // 2)) if axes is None else [_norm(a, rank) for a in axes]  # type: ignore
        k = len(axes)
        moved = {a for i, a in enumerate(axes) if pads[i] or pads[i + k]}
        return None if None in axes or p in moved else p
    if op == "Squeeze":
        axes = r.arg(n, 1, "axes", 13)
        normed = None if axes is None else [_norm(a, rank) for a in axes]
        if normed is None or None in normed or p in normed:
            return None
        return p - sum(a < p for a in normed)  # type: ignore[operator]
    if op == "Unsqueeze":
        axes = r.arg(n, 1, "axes", 13)
        out_rank = None if rank is None or axes is None else rank + len(axes)
        normed = None if axes is None else [_norm(a, out_rank) for a in axes]
        if normed is None or None in normed:
            return None
        for a in sorted(normed):  # type: ignore[type-var]
            p += a <= p  # an axis inserted at or before the row axis's new place moves it up
        return p
    return None


def _rule(n: Any, r: _Rows) -> int | None:
    """The row axis of the node's outputs, or None when the node mixes rows."""
    x = n.inputs[0]
    p, rank = r.axis.get(x), r.rank(x)
    if n.op in ("Add", "Sub", "Mul", "Div"):
        return _binary(n, r)
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
    if n.op == "Softmax":
        legacy = r.opset < 13
        a = _norm(int(n.attrs.get("axis", 1 if legacy else -1)), rank)
        if a is None:
            return None
        return p if (p < a if legacy else p != a) else None  # before 13: softmax over axes a..end
    if n.op == "LayerNormalization":
        a = _norm(int(n.attrs.get("axis", -1)), rank)
        return p if a is not None and p < a else None
    return _moved(n, r, p, rank)


def mixing_node(nodes: list[Any], source: str, output: str, const: Callable[[str], np.ndarray | None],
                dims: Callable[[str], tuple[int | None, ...] | None], opset: int) -> str | None:
    """The first node (``"<op> node '<name>'"``) after which the graph's output rows no longer come each
    from its own row of the input ``source`` (axis 0), or a phrase naming the output when its rows are
    not its axis 0; None when they do. ``nodes`` are the run-time nodes in order (`OnnxNode`: inputs
    resolved through aliases), ``const`` gives a constant's value (None for a run-time tensor), ``dims``
    the dimensions shape inference gave a tensor.

    >>> from nets.onnx.importer import OnnxNode
    >>> sm = lambda axis: [OnnxNode("sm", "Softmax", ("x",), ("y",), {"axis": axis})]
    >>> dims = {"x": (None, 3), "y": (None, 3)}.get
    >>> mixing_node(sm(0), "x", "y", lambda t: None, dims, 13), mixing_node(sm(1), "x", "y", lambda t: None,
    ...                                                                    dims, 13)
    ("Softmax node 'sm'", None)
    """
    r = _Rows(source, const, dims, opset)
    for n in nodes:
        q = _rule(n, r)
        if q is None:
            return f"{n.op} node {n.name!r}"
        for t in n.outputs:
            if t:
                r.axis[t] = q
    q = r.axis.get(output)
    return None if q == 0 else f"the output {output!r}, whose rows are along axis {q}"
