"""Data-movement layers of imported graphs: reshape, transpose, concatenate, split, slice, gather, pad.

None of them converts anything: every value they output is a value of their
input (or a pad constant), already in its format, and every gradient they
return is a gradient they received (summed where a value was read several
times, by Gather or by reflect/edge padding), as nets' `Flatten` does.
Shapes follow the ONNX operators of the same names; the pure shape rules
(`reshape_target`, `slice_index`) serve constant folding as well, and
`slice_disagreement` the import of a Slice, folded or not. Imports numpy
and `nets`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum

import numpy as np

from emu.checks import parse_choice

from ..graph import MultiLayer
from ..layers import Context, Layer

__all__ = ["Concat", "FlattenAt", "Gather", "Pad", "PadMode", "Reshape", "Slice", "Split", "Squeeze",
           "Transpose", "Unsqueeze", "axes_index", "axis_index", "reshape_target", "slice_disagreement",
           "slice_index", "zero_past_rank"]


def zero_past_rank(shape: Sequence[int], rank: int, allowzero: bool) -> str | None:
    """Why a Reshape to ``shape`` of an input of ``rank`` axes is invalid for its zeros (None where it is
    not): without ``allowzero`` a 0 copies the input's dimension at its index, so it must lie within the
    input's axes (onnxruntime refuses the model otherwise).

    >>> zero_past_rank([0, 3, 0], 2, False)
    'shape=[0, 3, 0] has 0 at index 2, past the 2 axes of its input (0 copies the input dimension)'
    """
    past = [i for i, s in enumerate(shape) if s == 0 and i >= rank]
    if past and not allowzero:
        return (f"shape={list(shape)} has 0 at index {past[0]}, past the {rank} axes of its input (0 copies"
                " the input dimension)")
    return None


def reshape_target(in_shape: tuple[int, ...], shape: Sequence[int],
                   allowzero: bool = False, who: str = "Reshape") -> tuple[int, ...]:
    """ONNX Reshape's output shape: 0 copies the input's dimension (unless ``allowzero``), -1 is inferred.

    Raises:
        ValueError: more than one -1, a 0 (without ``allowzero``) past the input's axes, or a size that
            does not match (naming ``who``: the layer).

    >>> reshape_target((2, 3, 4), (0, -1)), reshape_target((2, 3, 4), (4, 0, 2))
    ((2, 12), (4, 3, 2))
    """
    out = [int(s) for s in shape]
    why = zero_past_rank(out, len(in_shape), allowzero)
    if why:
        raise ValueError(f"{who}: {why}")
    if not allowzero:
        out = [in_shape[i] if s == 0 and i < len(in_shape) else s for i, s in enumerate(out)]
    if out.count(-1) > 1:
        raise ValueError(f"{who}: shape={tuple(shape)} has more than one -1")
    total = math.prod(in_shape)
    if -1 in out:
        known = math.prod(s for s in out if s != -1)
        if known == 0 or total % known:
            raise ValueError(f"{who}: cannot reshape {in_shape} to {tuple(shape)}")
        out[out.index(-1)] = total // known
    if math.prod(out) != total:
        raise ValueError(f"{who}: cannot reshape {in_shape} to {tuple(shape)}")
    return tuple(out)


def axis_index(axis: int, ndim: int, who: str, what: str = "axis", end: bool = False) -> int:
    """``axis`` of a rank-``ndim`` tensor as an index in [0, ndim - 1] (``end``: [0, ndim], Flatten's), ONNX's
    negative axes counting from the end; outside [-ndim, ndim - 1] (or [-ndim, ndim]) a ValueError naming
    the layer (``who``), the attribute and the range, as onnxruntime refuses such a model.

    >>> axis_index(-1, 3, "g"), axis_index(3, 3, "f", end=True)
    (2, 3)
    >>> axis_index(3, 3, "g")
    Traceback (most recent call last):
    ValueError: g: axis=3 is outside [-3, 2] for an input of rank 3
    """
    top = ndim if end else ndim - 1
    if not -ndim <= axis <= top:
        raise ValueError(f"{who}: {what}={axis} is outside [-{ndim}, {top}] for an input of rank {ndim}")
    return axis + ndim if axis < 0 else axis


def axes_index(axes: Sequence[int], ndim: int, who: str) -> list[int]:
    """`axis_index` of each of ``axes``; an axis named twice (after counting from the end) is refused.

    >>> axes_index([0, -1], 3, "u")
    [0, 2]
    >>> axes_index([1, -2], 3, "u")
    Traceback (most recent call last):
    ValueError: u: axes=[1, -2] name axis 1 twice
    """
    out = [axis_index(int(a), ndim, who, "axes") for a in axes]
    if len(set(out)) != len(out):
        dup = next(a for a in out if out.count(a) > 1)
        raise ValueError(f"{who}: axes={list(axes)} name axis {dup} twice")
    return out


def slice_index(in_shape: tuple[int, ...], starts: Sequence[int], ends: Sequence[int],
                axes: Sequence[int] | None = None, steps: Sequence[int] | None = None,
                who: str = "Slice") -> tuple[slice, ...]:
    """The numpy index of ONNX Slice: negative starts/ends count from the end, both clamped as ONNX says.

    Raises:
        ValueError: a step of 0, lengths that differ, an axis named twice (naming ``who``: the layer).

    >>> x = np.arange(10)
    >>> x[slice_index((10,), [-3], [2**62])].tolist(), x[slice_index((10,), [8], [-100], None, [-3])].tolist()
    ([7, 8, 9], [8, 5, 2])
    """
    n = len(starts)
    axes = list(range(n)) if axes is None else axes_index(axes, len(in_shape), who)
    steps = [1] * n if steps is None else [int(s) for s in steps]
    if not len(ends) == len(axes) == len(steps) == n:
        raise ValueError(f"{who}: starts, ends, axes, steps have lengths {n}, {len(ends)}, {len(axes)},"
                         f" {len(steps)}; they must agree")
    idx = [slice(None)] * len(in_shape)
    for s, e, a, st in zip(starts, ends, axes, steps, strict=True):
        if st == 0:
            raise ValueError(f"{who}: steps must not be 0")
        d = in_shape[a]
        s, e = int(s), int(e)
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
            idx[a] = slice(s, e, st)
        else:
            s, e = min(max(s, 0), d - 1), min(max(e, -1), d - 1)
            idx[a] = slice(s, e if e >= 0 else None, st)
    return tuple(idx)


#: the ends onnxruntime reads as numpy's None (past index 0 under a negative step): INT32_MAX, INT64_MAX
ORT_NONE_ENDS = (2**31 - 1, 2**63 - 1)


def slice_disagreement(in_shape: Sequence[int | None] | None, ends: Sequence[int],
                       axes: Sequence[int] | None = None, steps: Sequence[int] | None = None) -> str | None:
    """Why onnxruntime and the ONNX definition give different results for this Slice; None where they agree.

    They part only at an end of exactly INT32_MAX or INT64_MAX (`ORT_NONE_ENDS`) with a negative step, on
    an axis that is not empty: onnxruntime slices down to index 0, the definition clamps the end to the
    axis's last index (an empty slice). Any other end (2**31, INT64_MAX - 1) both clamp alike; no start
    and no step is read specially. A dimension that is None (``in_shape`` None: all) is not known to be 0.

    >>> slice_disagreement((0, 4), [2**63 - 1, 2**31], None, [-1, -1]) is None
    True
    >>> slice_disagreement(None, [5, 2**31 - 1], [0, 1], [-1, -2])[:29]
    'ends=2147483647 with steps=-2'
    """
    steps = [1] * len(ends) if steps is None else steps
    for i, (e, st) in enumerate(zip(ends, steps, strict=False)):
        a = i if axes is None or i >= len(axes) else int(axes[i])
        d = in_shape[a] if in_shape is not None and -len(in_shape) <= a < len(in_shape) else None
        if int(st) < 0 and int(e) in ORT_NONE_ENDS and d != 0:
            return (f"ends={e} with steps={st}: onnxruntime reads an end of INT32_MAX or INT64_MAX as past"
                    " index 0 (the slice runs down to index 0) where the ONNX definition clamps it to the"
                    " axis's last index (an empty slice); give ends=-2**63 to reach index 0")
    return None


class _Reshaping(Layer):
    """A layer whose output is its input reshaped; backward reshapes the gradient back."""

    converts = False

    def target(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(self.target(x.shape))

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        return dy.reshape(self._shape)


class Reshape(_Reshaping):
    """x reshaped to ``shape`` (ONNX Reshape with a constant shape; `reshape_target`).

    >>> Reshape((0, -1)).forward(np.zeros((2, 3, 4)), Context.float64()).shape
    (2, 12)
    """

    def __init__(self, shape: Sequence[int], allowzero: bool = False, name: str = "") -> None:
        super().__init__(name)
        self.shape, self.allowzero = tuple(int(s) for s in shape), bool(allowzero)

    def target(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return reshape_target(in_shape, self.shape, self.allowzero, self.name or "Reshape")

    def extra_repr(self) -> str:
        return f"{self.shape}"


class FlattenAt(_Reshaping):
    """(d0, ..., dn) -> (d0 ... d(axis-1), d(axis) ... dn) (ONNX Flatten at any axis).

    >>> FlattenAt(2).forward(np.zeros((2, 3, 4, 5)), Context.float64()).shape
    (6, 20)
    """

    def __init__(self, axis: int = 1, name: str = "") -> None:
        super().__init__(name)
        self.axis = int(axis)

    def target(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        a = axis_index(self.axis, len(in_shape), self.name or "Flatten", end=True)
        return math.prod(in_shape[:a]), math.prod(in_shape[a:])

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Squeeze(_Reshaping):
    """Size-1 axes removed: those of ``axes`` or, when None, all of them.

    >>> Squeeze((1,)).forward(np.zeros((2, 1, 3, 1)), Context.float64()).shape
    (2, 3, 1)
    """

    def __init__(self, axes: Sequence[int] | None = None, name: str = "") -> None:
        super().__init__(name)
        self.axes = None if axes is None else tuple(int(a) for a in axes)

    def target(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.axes is None:
            return tuple(d for d in in_shape if d != 1)
        ax = set(axes_index(self.axes, len(in_shape), self.name or "Squeeze"))
        if any(in_shape[a] != 1 for a in ax):
            raise ValueError(f"{self.name or 'Squeeze'}: axes {self.axes} of shape {in_shape} are not all 1")
        return tuple(d for i, d in enumerate(in_shape) if i not in ax)

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


class Unsqueeze(_Reshaping):
    """Size-1 axes inserted at ``axes`` (positions in the output).

    >>> Unsqueeze((0, -1)).forward(np.zeros((2, 3)), Context.float64()).shape
    (1, 2, 3, 1)
    """

    def __init__(self, axes: Sequence[int], name: str = "") -> None:
        super().__init__(name)
        self.axes = tuple(int(a) for a in axes)

    def target(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        rank = len(in_shape) + len(self.axes)
        ax = sorted(axes_index(self.axes, rank, self.name or "Unsqueeze"))
        out = list(in_shape)
        for a in ax:
            out.insert(a, 1)
        return tuple(out)

    def extra_repr(self) -> str:
        return f"axes={self.axes}"


class Transpose(Layer):
    """x.transpose(perm) (None: the axes reversed); backward with the inverse permutation.

    >>> Transpose((0, 2, 1)).forward(np.zeros((2, 3, 4)), Context.float64()).shape
    (2, 4, 3)
    """

    converts = False

    def __init__(self, perm: Sequence[int] | None = None, name: str = "") -> None:
        super().__init__(name)
        self.perm = None if perm is None else tuple(int(p) for p in perm)

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        perm = self.perm if self.perm is not None else tuple(range(x.ndim))[::-1]
        if sorted(perm) != list(range(x.ndim)):
            raise ValueError(f"{self.name or 'Transpose'}: perm={list(perm)} is not a permutation of the"
                             f" {x.ndim} axes of its input {x.shape}")
        self._inv = tuple(np.argsort(perm))
        return x.transpose(perm)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        return dy.transpose(self._inv)

    def extra_repr(self) -> str:
        return f"perm={self.perm}"


class Concat(MultiLayer):
    """The inputs concatenated along ``axis``; backward splits the gradient.

    >>> Concat(1).forward_many([np.zeros((2, 1)), np.ones((2, 2))], Context.float64())[0].shape
    (2, 3)
    """

    converts = False

    def __init__(self, axis: int, name: str = "") -> None:
        super().__init__(name)
        self.axis = int(axis)

    def forward_many(self, xs: list[np.ndarray], ctx: Context) -> list[np.ndarray]:
        self._sizes = [x.shape[axis_index(self.axis, x.ndim, self.name or "Concat")] for x in xs]
        return [np.concatenate(xs, axis=self.axis)]

    def backward_many(self, dys: list[np.ndarray], ctx: Context) -> list[np.ndarray | None]:
        return list(np.split(dys[0], np.cumsum(self._sizes)[:-1], axis=self.axis))

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Split(MultiLayer):
    """The input split along ``axis`` into parts of ``sizes`` (None: ``n_out`` parts, ONNX's rule from
    opset 18: ceil(d / n_out) each, the last ones smaller, down to empty; with ``equal``, the rule before
    it: d / n_out each, d a multiple of n_out); backward concatenates the gradients.

    Raises:
        ValueError: n_out < 1; in the forward pass, sizes that do not add up to d, or (``equal``) a d
            that n_out does not divide.

    >>> [y.shape for y in Split(1, n_out=2).forward_many([np.zeros((1, 5))], Context.float64())]
    [(1, 3), (1, 2)]
    >>> [y.shape[1] for y in Split(1, n_out=4).forward_many([np.zeros((1, 5))], Context.float64())]
    [2, 2, 1, 0]
    """

    converts = False

    def __init__(self, axis: int, sizes: Sequence[int] | None = None, n_out: int | None = None,
                 equal: bool = False, name: str = "") -> None:
        super().__init__(name)
        self.equal = equal
        self.axis = int(axis)
        self.sizes = None if sizes is None else tuple(int(s) for s in sizes)
        self.n_out = len(self.sizes) if self.sizes is not None else int(n_out or 0)
        if self.n_out < 1:
            raise ValueError(f"Split: n_out={n_out!r} must be >= 1 (or sizes given)")

    def forward_many(self, xs: list[np.ndarray], ctx: Context) -> list[np.ndarray]:
        (x,) = xs
        d = x.shape[axis_index(self.axis, x.ndim, self.name or "Split")]
        if self.sizes is None:
            if self.equal and d % self.n_out:
                raise ValueError(f"{self.name or 'Split'}: {d} values do not split into {self.n_out} equal"
                                 " parts (before opset 18 the parts of a Split without sizes are equal)")
            part = -(-d // self.n_out)
            sizes = [max(0, min(part, d - i * part)) for i in range(self.n_out)]
        else:
            sizes = list(self.sizes)
        if sum(sizes) != d or min(sizes) < 0:
            raise ValueError(f"{self.name or 'Split'}: sizes {sizes} do not split {d} values")
        return list(np.split(x, np.cumsum(sizes)[:-1], axis=self.axis))

    def backward_many(self, dys: list[np.ndarray], ctx: Context) -> list[np.ndarray | None]:
        return [np.concatenate(dys, axis=self.axis)]

    def extra_repr(self) -> str:
        return f"axis={self.axis}, " + (f"sizes={self.sizes}" if self.sizes else f"n_out={self.n_out}")


class Slice(Layer):
    """x[`slice_index`(starts, ends, axes, steps)]; backward scatters the gradient into zeros.

    >>> Slice([1], [3], [1]).forward(np.arange(8.0).reshape(2, 4), Context.float64()).tolist()
    [[1.0, 2.0], [5.0, 6.0]]
    """

    converts = False

    def __init__(self, starts: Sequence[int], ends: Sequence[int], axes: Sequence[int] | None = None,
                 steps: Sequence[int] | None = None, name: str = "") -> None:
        super().__init__(name)
        self.starts, self.ends = tuple(int(v) for v in starts), tuple(int(v) for v in ends)
        self.axes = None if axes is None else tuple(int(v) for v in axes)
        self.steps = None if steps is None else tuple(int(v) for v in steps)

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        self._idx = slice_index(x.shape, self.starts, self.ends, self.axes, self.steps, self.name or "Slice")
        self._shape = x.shape
        return x[self._idx]

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        dx = np.zeros(self._shape)
        dx[self._idx] = dy
        return dx

    def extra_repr(self) -> str:
        return f"starts={self.starts}, ends={self.ends}, axes={self.axes}, steps={self.steps}"


class Gather(Layer):
    """np.take(x, indices, axis) with constant ``indices`` (negative ones count from the end); backward
    adds the gradient of every taken value back to its source.

    >>> Gather(np.array([2, 0, 2]), axis=1).forward(np.arange(3.0)[None], Context.float64()).tolist()
    [[2.0, 0.0, 2.0]]
    """

    converts = False

    def __init__(self, indices: np.ndarray, axis: int = 0, name: str = "") -> None:
        super().__init__(name)
        self.indices = np.asarray(indices, np.int64)
        self.axis = int(axis)

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        a = axis_index(self.axis, x.ndim, self.name or "Gather")
        d = x.shape[a]
        if np.any((self.indices < -d) | (self.indices >= d)):
            raise ValueError(f"{self.name or 'Gather'}: indices outside [-{d}, {d - 1}] on axis {self.axis}")
        self._idx = self.indices % d
        self._shape, self._a = x.shape, a
        return np.take(x, self._idx, axis=a)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        a, k = self._a, self._idx.ndim
        dx = np.zeros(self._shape)
        dym = np.moveaxis(dy, tuple(range(a, a + k)), tuple(range(k)))
        np.add.at(np.moveaxis(dx, a, 0), self._idx, dym)
        return dx

    def extra_repr(self) -> str:
        return f"indices shape {self.indices.shape}, axis={self.axis}"


class PadMode(StrEnum):
    """How `Pad` fills the border (ONNX Pad's ``mode``; numpy's names in brackets).

    >>> PadMode("edge") is PadMode.EDGE
    True
    """

    #: a constant value
    CONSTANT = "constant"
    #: the values mirrored about the edge, the edge itself not repeated (numpy "reflect")
    REFLECT = "reflect"
    #: the edge value repeated (numpy "edge")
    EDGE = "edge"
    #: the values of the other side (numpy "wrap")
    WRAP = "wrap"


class Pad(Layer):
    """x padded by ``pads`` (ONNX layout: the begin counts of ``axes``, then their end counts).

    Backward sums the gradient of every output value into the input value it
    copies (pad constants receive nothing).

    Raises:
        ValueError: a negative pad, an odd number of pad counts, a mode not one of PadMode's; in forward,
            a reflect pad not below its axis's size.

    >>> Pad([0, 1, 0, 2], PadMode.EDGE).forward(np.array([[1.0, 2.0]]), Context.float64()).tolist()
    [[1.0, 1.0, 2.0, 2.0, 2.0]]
    """

    converts = False

    def __init__(self, pads: Sequence[int], mode: PadMode | str = PadMode.CONSTANT, value: float = 0.0,
                 axes: Sequence[int] | None = None, name: str = "") -> None:
        super().__init__(name)
        self.pads = tuple(int(p) for p in pads)
        if len(self.pads) % 2 or min(self.pads, default=0) < 0:
            raise ValueError(f"Pad: pads={self.pads} must be an even number of counts >= 0")
        self.mode = parse_choice(PadMode, mode, "Pad", "mode")
        self.value = float(value)
        self.axes = None if axes is None else tuple(int(a) for a in axes)

    def _width(self, ndim: int) -> list[tuple[int, int]]:
        axes = list(range(ndim)) if self.axes is None else axes_index(self.axes, ndim, self.name or "Pad")
        k = len(self.pads) // 2
        if k != len(axes):
            raise ValueError(f"{self.name or 'Pad'}: {len(self.pads)} pad counts for {len(axes)} axes")
        width = [(0, 0)] * ndim
        for i, a in enumerate(axes):
            width[a] = (self.pads[i], self.pads[k + i])
        return width

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        width = self._width(x.ndim)
        self._shape = x.shape
        if self.mode is PadMode.CONSTANT:
            self._src = None
            self._crop = tuple(slice(b, b + d) for (b, _), d in zip(width, x.shape, strict=True))
            return np.pad(x, width, constant_values=self.value)
        if self.mode is PadMode.REFLECT:
            wide = [(a, w, d) for a, (w, d) in enumerate(zip(width, x.shape, strict=True)) if max(w) >= d]
            if wide:
                a, w, d = wide[0]
                raise ValueError(f"{self.name or 'Pad'}: reflect pads {w} on axis {a} of {d} values; each"
                                 f" must be below {d} (a reflection repeats no value, as ONNX defines it)")
        self._src = np.pad(np.arange(x.size).reshape(x.shape), width, mode=str(self.mode))
        return x.reshape(-1)[self._src]

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        if self._src is None:
            return np.ascontiguousarray(dy[self._crop])
        size = math.prod(self._shape)
        return np.bincount(self._src.reshape(-1), dy.reshape(-1), minlength=size).reshape(self._shape)

    def extra_repr(self) -> str:
        return f"pads={self.pads}, mode={self.mode}" + (f", value={self.value}" if self.value else "")
