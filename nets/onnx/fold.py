"""Constant folding for the ONNX importer: operators evaluated once, at import, on constant inputs.

A node whose inputs are all constants (initializers, Constant nodes, or
earlier folded results) is evaluated here with numpy and its outputs become
constants; ``Shape`` folds when the shape of its input is known at import
(ONNX shape inference with no symbolic dimension). The folders follow the
ONNX operators' definitions for the opsets the importer reads (attributes
that became inputs are read from either place). Everything here is exact:
integer shape arithmetic, or float arithmetic on constants the graph would
compute the same way. A Slice onnxruntime computes otherwise than the
definition is refused, as one at run time (`shape.slice_disagreement`).
Imports numpy and `nets.onnx.shape`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .shape import FlattenAt, axis_index, reshape_target, slice_disagreement, slice_index

__all__ = ["FOLDERS", "TENSOR_DTYPES", "fold"]

#: numpy dtypes of ONNX TensorProto data types (the ``to`` of Cast)
TENSOR_DTYPES: dict[int, Any] = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16,
                                 6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64,
                                 12: np.uint32, 13: np.uint64}

Arrays = list[np.ndarray | None]
Folder = Callable[[Arrays, dict[str, Any], int], list[np.ndarray]]


def _ints(v: Any) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _axes(ins: Arrays, attrs: dict[str, Any], opset: int, since: int, pos: int = 1) -> list[int] | None:
    """An ``axes`` argument that moved from an attribute to input ``pos`` at opset ``since``."""
    if opset >= since:
        v = ins[pos] if len(ins) > pos else None
        return None if v is None else _ints(v)
    return None if "axes" not in attrs else _ints(attrs["axes"])


def _constant(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in attrs:
            v = attrs[key]
            dtype = np.float32 if key.startswith("value_float") else (np.int64 if key != "value" else None)
            return [np.asarray(v, dtype=dtype)]
    raise ValueError(f"Constant: none of the supported attributes; has {sorted(attrs)}")


def _shape(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    s = np.asarray(ins[0].shape, np.int64)  # type: ignore[union-attr]
    return [s[attrs.get("start", 0):attrs.get("end", len(s))]]


def _unsqueeze(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    x = ins[0]
    axes = _axes(ins, attrs, opset, 13) or []
    rank = x.ndim + len(axes)  # type: ignore[union-attr]
    return [np.expand_dims(x, tuple(sorted(a % rank for a in axes)))]  # type: ignore[arg-type]


def _squeeze(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    x = ins[0]
    axes = _axes(ins, attrs, opset, 13)
    return [np.squeeze(x, None if axes is None else tuple(axes))]  # type: ignore[arg-type]


def _concat(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    parts = [np.asarray(v) for v in ins if v is not None]
    return [np.concatenate(parts, axis=int(attrs["axis"]))]


def _gather(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    x, idx = np.asarray(ins[0]), np.asarray(ins[1], np.int64)
    a = axis_index(int(attrs.get("axis", 0)), x.ndim, "Gather")
    d = x.shape[a]
    if np.any((idx < -d) | (idx >= d)):
        raise ValueError(f"Gather: indices outside [-{d}, {d - 1}] on axis {a}")
    return [np.take(x, idx % d, axis=a)]


def _slice(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(ins[0])
    if opset < 10:
        starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
    else:
        starts, ends = _ints(ins[1]), _ints(ins[2])
        axes = _ints(ins[3]) if len(ins) > 3 and ins[3] is not None else None
        steps = _ints(ins[4]) if len(ins) > 4 and ins[4] is not None else None
    idx = slice_index(x.shape, starts, ends, axes, steps)
    why = slice_disagreement(x.shape, ends, axes, steps)
    if why is not None:  # the importer names the node, as for a run-time Slice refused by the same rule
        raise ValueError(why)
    return [x[idx]]


def _reshape(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    x = np.asarray(ins[0])
    shape = _ints(ins[1]) if opset >= 5 else _ints(attrs["shape"])
    return [x.reshape(reshape_target(x.shape, shape, bool(attrs.get("allowzero", 0))))]


def _cast(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    to = int(attrs["to"])
    if to not in TENSOR_DTYPES:
        raise ValueError(f"Cast: to={to} is not a numeric ONNX type this importer folds")
    return [np.asarray(ins[0]).astype(TENSOR_DTYPES[to])]


def _constant_of_shape(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    v = np.asarray(attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
    return [np.full(_ints(ins[0]), v[0], dtype=v.dtype)]


def _range(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    """ONNX Range: max(ceil((limit - start) / delta), 0) elements start + i delta in the inputs' type, the
    count taken in float64 from the float inputs (as onnxruntime and the reference evaluator take it:
    float32 -2.8 to 21 by 0.7 has 35 elements, where numpy's float32 arange makes 34), exactly for ints.

    >>> _range([np.float32(-2.8), np.float32(21.0), np.float32(0.7)], {}, 13)[0].shape
    (35,)
    """
    start, limit, delta = (np.asarray(v) for v in ins)
    dtype = np.result_type(start, limit, delta)
    if np.issubdtype(dtype, np.integer):
        n = max(-((int(start) - int(limit)) // int(delta)), 0)
    else:
        n = max(math.ceil((float(limit) - float(start)) / float(delta)), 0)
    return [(start.astype(dtype) + np.arange(n).astype(dtype) * delta.astype(dtype)).astype(dtype)]


def _binary(f: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Folder:
    def fold2(ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
        a, b = np.asarray(ins[0]), np.asarray(ins[1])
        r = f(a, b)
        return [np.asarray(r, dtype=np.result_type(a, b))]
    return fold2


def _int_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        q = np.abs(a) // np.abs(b)  # ONNX integer division truncates toward zero
        return np.where((a < 0) != (b < 0), -q, q)
    return a / b


#: the folded operators: ``folder(inputs, attributes, opset) -> outputs`` (absent optional inputs are None)
FOLDERS: dict[str, Folder] = {
    "Constant": _constant,
    "Shape": _shape,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Concat": _concat,
    "Gather": _gather,
    "Slice": _slice,
    "Reshape": _reshape,
    "Cast": _cast,
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Transpose": lambda ins, attrs, opset: [np.transpose(ins[0], attrs.get("perm"))],
    "Flatten": lambda ins, attrs, opset: [np.asarray(ins[0]).reshape(
        FlattenAt(int(attrs.get("axis", 1))).target(np.asarray(ins[0]).shape))],
    "Identity": lambda ins, attrs, opset: [np.asarray(ins[0])],
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(_int_div),
    "Neg": lambda ins, attrs, opset: [np.negative(ins[0])],
    "Sqrt": lambda ins, attrs, opset: [np.sqrt(ins[0])],
}


def fold(op: str, ins: Arrays, attrs: dict[str, Any], opset: int) -> list[np.ndarray]:
    """The outputs of operator ``op`` on constant inputs (see `FOLDERS`).

    >>> fold("Gather", [np.array([1, 8, 8]), np.array(0)], {}, 13)[0].tolist()
    1
    >>> fold("Div", [np.array([-7]), np.array([2])], {}, 13)[0].tolist()
    [-3]
    """
    return FOLDERS[op](ins, attrs, opset)
