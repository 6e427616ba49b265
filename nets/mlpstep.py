"""A fixed-point multilayer perceptron's training step in two compiled calls a layer (`MLPStep`).

`nets.models.Model.loss_and_grad` and the optimiser's step walk the layers and
parameters: each conversion, product and update is a call of its own, with its
Python around it. In a training step of a small network most of the time goes
there, not into the arithmetic. `MLPStep` runs the same step, with the same
results, for a model whose root is a `Sequential` of `Linear` layers (with
biases), each followed by at most one `ReLU` (`nets.mlp` with its default
options), under a policy whose products run in float64 (no datapaths) and
whose values are all fixed point. Each Linear layer and its ReLU (a *unit*)
then make one kernel call forward and one backward:

- forward: the network's input converted to ``activations`` (first unit);
  the weights and the biases converted to their roles (or kept where the
  stored values already are the role's, as `nets.quant.Quantizer`'s
  ``kept_from`` keeps them); the product and the bias; the range check of
  `nets.STE.CLIPPED`; the conversion to ``preacts``; ReLU, its range check and
  its conversion to ``activations``.
- backward: the gradient reaching the unit's output converted to ``errors``
  (the loss gradient at the network's output, else the errors of the layer
  above); the saturation masks and ReLU's derivative and the conversion to
  the ReLU's ``errors``; the weight and bias gradients, converted to
  ``grads``; the product that carries the error to the unit below; and, where
  the optimiser's update of a parameter is Q_master(w + Q_update(a g))
  (`nets.optim.Optimizer.plain_rate`: SGD without momentum, weight decay or
  clipping), the update, by `emu.update.update_kernel`.

The loss is the model's own, in numpy, between the two passes. The
conversions are the kernels of `emu.Converter`'s fast paths
(`emu.update.convert_kind`), and each takes the key its layer's conversion
would draw, drawn from the run's stream in the layers' order. The products
are numba's float64 matrix products: with fixed-point operands every product
and every partial sum is an integer multiple of the operands' joint step,
below 2^53 of them (checked for each batch size), so they are exact and have
the bits of numpy's BLAS product, whatever the order of the additions. So
the parameters, gradients, counts and random stream a step leaves are those
of ``Model.loss_and_grad`` and the optimiser's step, bit for bit (the layers'
caches of their last pass, which only their own backward reads, are not
set). The layered path is the reference: a test trains both ways and compares
them. Where the model, the policy or the batch is outside this, `MLPStep.of`
or `MLPStep.step` gives None and the caller takes the layered path.

Imports numpy, numba, `emu` and nets' context, layers, models and quant.
"""

from __future__ import annotations

import math
import operator
from typing import Any, NamedTuple

import numpy as np
from numba import njit

import emu
from emu.update import FIXED_KINDS, convert_kind, update_kernel

from .context import Context
from .layers import Linear, ReLU, Sequential
from .models import Model
from .quant import all_inside

__all__ = ["MLPStep"]

#: a unit's conversions (rows of its tables), each in its pass's order: forward (the network's input,
#: weights, biases, preacts, the ReLU's activations), backward (the incoming errors, the ReLU's errors, the
#: weight and bias gradients), and the optimiser's update (the update term and the new value, of W and of b)
IN, W, B, PRE, ACT, E, RE, GW, GB, UWI, UWO, UBI, UBO = range(13)
ROWS = 13
_FORWARD, _BACKWARD, _UPDATE = (IN, W, B, PRE, ACT), (E, RE, GW, GB), (UWI, UWO, UBI, UBO)
_NO_PACKED = np.zeros(0, np.uint64)


@njit(cache=True, nogil=True)
def _convert(x, out, i, r, kinds, ints, keys, stats):
    """out = x converted by conversion r of unit i (flat arrays); its counts into stats[i, r, :3]."""
    o, u, n = convert_kind(kinds[i, r], x, out, ints[i, r], _NO_PACKED, 0.0, keys[i, r])
    stats[i, r, 0] = o
    stats[i, r, 1] = u
    stats[i, r, 2] = n


@njit(cache=True, nogil=True)
def _check(x, lo, hi, mask, stats, i, r):
    """The clipped rule's range check of a layer output (flat), as `Layer.q` makes it: where a value is
    outside [lo, hi] (NaN included; `nets.quant.all_inside`), mask marks the values inside and stats[i, r, 3]
    counts the others."""
    if not all_inside(x, lo, hi):
        inside = 0
        for k in range(x.size):
            mask[k] = (x[k] <= hi) & (x[k] >= lo)
            inside += mask[k]
        stats[i, r, 3] = x.size - inside


@njit(cache=True, nogil=True)
def unit_forward(i, x, w, b, kept_w, kept_b, q, r, a, relu, kept_a, kinds, ints, clips, lo, hi, keys, stats,
                 xq, wq, bq, y, pmask, amask):
    """Unit i forward (see the module's docstring): x (n, n_in) the input, converted into xq where xq is not
    empty (the first unit); w (n_in, n_out) the stored weights, their transpose converted into wq (n_out,
    n_in: the order `Layer.q` converts them in) unless ``kept_w``; b converted into bq unless ``kept_b``;
    y = x W + b; q its conversion; with ``relu``, r = max(q, 0) and a its conversion unless ``kept_a``;
    pmask and amask the range checks' masks (flat). Row r of unit i's kinds, ints (a converter's
    `emu.convert.FastSpec` kind and integers), clips, lo, hi and keys is its conversion r; stats[i, r]
    gets its (overflow, underflow, NaN, outside) counts. Returns the NaNs the conversions met."""
    h = x
    if xq.size:
        _convert(x.reshape(-1), xq.reshape(-1), i, IN, kinds, ints, keys, stats)
        h = xq
    bb = b
    if not kept_b:
        _convert(b, bq, i, B, kinds, ints, keys, stats)
        bb = bq
    if kept_w:
        np.dot(h, w, y)
    else:
        _convert(np.ascontiguousarray(w.T).reshape(-1), wq.reshape(-1), i, W, kinds, ints, keys, stats)
        np.dot(h, wq.T, y)
    for k in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[k, j] = y[k, j] + bb[j]
    yf = y.reshape(-1)
    if clips[i, PRE]:
        _check(yf, lo[i, PRE], hi[i, PRE], pmask, stats, i, PRE)
    _convert(yf, q.reshape(-1), i, PRE, kinds, ints, keys, stats)
    if relu:
        qf = q.reshape(-1)
        rf = r.reshape(-1)
        for k in range(qf.size):
            v = qf[k]
            rf[k] = v if (v > 0.0) | (v != v) else 0.0  # np.maximum(v, 0.0): NaN kept, -0 made +0
        if clips[i, ACT]:
            _check(rf, lo[i, ACT], hi[i, ACT], amask, stats, i, ACT)
        if not kept_a:
            _convert(rf, a.reshape(-1), i, ACT, kinds, ints, keys, stats)
    return stats[i, IN, 2] + stats[i, W, 2] + stats[i, B, 2] + stats[i, PRE, 2] + stats[i, ACT, 2]


@njit(cache=True, nogil=True)
def _update(i, w, g, rate, rows, kinds, ints, keys, stats, out):
    """out = Q_master(w + Q_update(rate g)) by conversions rows = (inner, outer) of unit i; stats gets their
    counts, with the updates attempted in the inner row's fourth column and those zeroed in the outer's."""
    ri, ro = rows
    c = update_kernel(w.reshape(-1), g.reshape(-1), rate, kinds[i, ri], ints[i, ri], _NO_PACKED, 0.0,
                      keys[i, ri], kinds[i, ro], ints[i, ro], _NO_PACKED, 0.0, keys[i, ro], out.reshape(-1))
    for k in range(3):
        stats[i, ri, k] = c[k]
        stats[i, ro, k] = c[3 + k]
    stats[i, ri, 3] = c[6]
    stats[i, ro, 3] = c[7]


@njit(cache=True, nogil=True)
def unit_backward(i, g, w, amask, pmask, gw, gb, rates, wp, bp, new_w, new_b, relu, q, h, kinds, ints, keys,
                  stats, e, u, v, dy, dw, db, eraw):
    """Unit i backward (see the module's docstring): g (n, n_out) the gradient at the unit's output,
    converted into e; with ``relu``, u = (q > 0) (e amask) and v its conversion; dy = v pmask (a mask of
    size 0: none; bools multiply as 1.0 and 0.0, as numpy's); dw = h^T dy and db its column sums,
    converted into gw and gb; where eraw is not empty, eraw = dy w^T (w: the weights (n_in, n_out) the
    forward multiplied); where ``rates`` is not empty, new_w and new_b the stored wp and bp updated by
    `_update` with rates[0] and rates[1]. Tables and the value returned as in `unit_forward`."""
    _convert(g.reshape(-1), e.reshape(-1), i, E, kinds, ints, keys, stats)
    ef = e.reshape(-1)
    vf = ef
    if relu:
        qf = q.reshape(-1)
        uf = u.reshape(-1)
        for k in range(uf.size):
            t = ef[k] * (1.0 if amask[k] else 0.0) if amask.size else ef[k]
            uf[k] = (1.0 if qf[k] > 0.0 else 0.0) * t
        _convert(uf, v.reshape(-1), i, RE, kinds, ints, keys, stats)
        vf = v.reshape(-1)
    df = dy.reshape(-1)
    for k in range(df.size):
        df[k] = vf[k] * (1.0 if pmask[k] else 0.0) if pmask.size else vf[k]
    np.dot(h.T, dy, dw)
    for j in range(dy.shape[1]):
        s = 0.0
        for k in range(dy.shape[0]):
            s += dy[k, j]
        db[j] = s
    _convert(dw.reshape(-1), gw.reshape(-1), i, GW, kinds, ints, keys, stats)
    _convert(db, gb, i, GB, kinds, ints, keys, stats)
    if eraw.size:
        np.dot(dy, w.T, eraw)
    if rates.size:
        _update(i, wp, gw, rates[0], (UWI, UWO), kinds, ints, keys, stats, new_w)
        _update(i, bp, gb, rates[1], (UBI, UBO), kinds, ints, keys, stats, new_b)
    nans = 0
    for r in range(E, ROWS):
        nans += stats[i, r, 2]
    return nans


class _Conv(NamedTuple):
    """A conversion a kernel makes: its format (None: float64, the value passes), its converter (for a
    refusal, raised as the layer's conversion raises it), whether it draws a key, the key of the counts it
    adds to (`nets.quant.Quantizer.counts`)."""

    fmt: emu.FixedFormat | None
    conv: emu.Converter | None
    draws: bool
    counts: Any


class _Unit(NamedTuple):
    """A Linear layer and the ReLU after it (or None)."""

    linear: Linear
    relu: ReLU | None


def _units(model: Any) -> list[_Unit] | None:
    """The model's layers as (Linear, ReLU or None) pairs, if it is such a stack whose sizes chain and whose
    first layer alone passes no error to its input."""
    root = getattr(model, "root", None)
    if type(model) is not Model or type(root) is not Sequential or not root.children:
        return None
    units: list[_Unit] = []
    for layer in root.children:
        if type(layer) is Linear and "b" in layer.params and layer.needs_input_grad == bool(units):
            if units and units[-1].linear.n_out != layer.n_in:
                return None
            units.append(_Unit(layer, None))
        elif type(layer) is ReLU and units and units[-1].relu is None:
            units[-1] = _Unit(units[-1].linear, layer)
        else:
            return None
    return units


def _conv(ctx: Context, layer: Any, role: str, boundary: bool = False,
          optimiser: bool = False) -> _Conv | None:
    """The conversion of ``role`` at ``layer`` under ``ctx``, where a kernel makes it: a fixed-point
    format with a fast conversion; else None. An ``optimiser`` role (``update``, ``master``) is the layer's
    policy's, whatever the granularity, and in float64 passes (a `_Conv` without a format, not counted)."""
    if optimiser:
        rf = getattr(ctx.policy.for_layer(layer.name), role)
        if rf.fmt is None:
            return _Conv(None, None, False, None)
    else:
        rf = ctx.role_plan(layer, role, boundary).rf
        if rf is None:
            return None
    if type(rf.fmt) is not emu.FixedFormat:
        return None
    conv, seed = ctx.quant.converter(rf)
    if conv.spec is None or conv.spec.args[0] not in FIXED_KINDS or conv.spec.nan_ok:
        return None
    return _Conv(rf.fmt, conv, seed is not None, (layer.name, role))


def _largest_code(f: emu.FixedFormat) -> int:
    """The largest magnitude of a code of f."""
    return max(-f.qmin, f.qmax)


class _Work(NamedTuple):
    """A plan's steps at one batch size: each unit's buffers (by name) and the arguments of its kernel calls
    that stay the same from step to step (``fwd``, ``bwd``); the step's key and count tables; and the values
    each of the plan's counted roles converts in a step (`_Plan.roles`)."""

    bufs: list[dict[str, np.ndarray]]
    fwd: list[tuple[Any, ...]]
    bwd: list[tuple[Any, ...]]
    keys: np.ndarray
    stats: np.ndarray
    sizes: list[int]


class _Plan:
    """What the step does under one context: each unit's conversions (a `_Conv` or None by row), their
    kernel tables, the rates of the fused update (None: the optimiser steps itself), the positions of the
    keys in the order the layered path draws them, and the buffers by batch size (`work`)."""

    def __init__(self, units: list[_Unit], convs: list[list[_Conv | None]],
                 rates: list[tuple[float, float]] | None, ctx: Context) -> None:
        self.units, self.convs, self.rates, self.quant = units, convs, rates, ctx.quant
        n_units = len(units)
        self.kinds = np.zeros((n_units, ROWS), np.int64)
        self.ints = np.zeros((n_units, ROWS, 6), np.int64)
        self.clips = np.zeros((n_units, ROWS), np.bool_)
        self.lo, self.hi = np.zeros((n_units, ROWS)), np.zeros((n_units, ROWS))
        for i, row in enumerate(convs):
            for r, c in enumerate(row):
                if c is not None and c.conv is not None:
                    kind, ints = c.conv.spec.args[:2]  # type: ignore[union-attr]
                    self.kinds[i, r], self.ints[i, r, :len(ints)] = kind, ints
        for i, (lin, relu) in enumerate(units):
            for r, layer, role in ((PRE, lin, "preacts"), (ACT, relu, "activations")):
                plan = None if layer is None else ctx.role_plan(layer, role, False)
                if plan is not None and plan.clipped:
                    self.clips[i, r], self.lo[i, r], self.hi[i, r] = True, plan.lo, plan.hi
        self.kept_a = [relu is not None and convs[i][PRE].fmt == convs[i][ACT].fmt  # type: ignore[union-attr]
                       for i, (_, relu) in enumerate(units)]
        down = range(n_units - 1, -1, -1)
        self.forward_keys = self._positions([(i, r) for i in range(n_units) for r in _FORWARD])
        self.backward_keys = self._positions([(i, r) for i in down for r in _BACKWARD])
        self.after_keys = np.concatenate([self.backward_keys, self._positions(
            [(i, r) for i in range(n_units) for r in _UPDATE])])
        self.rate_arrays = [np.zeros(0) if rates is None else np.array(rates[i]) for i in range(n_units)]
        self._groups()
        self._work: dict[int, _Work | None] = {}

    def _positions(self, rows: list[tuple[int, int]]) -> np.ndarray:
        """The flat positions in the key table of the conversions of ``rows`` that draw, in that order."""
        return np.array([i * ROWS + r for i, r in rows if (c := self.convs[i][r]) is not None and c.draws],
                        np.int64)

    def work(self, n: int) -> _Work | None:
        """The buffers of a batch of n rows, or None where a product could leave float64's exact range: an
        operand's codes times the other's, summed over the product's length, at 2^53 or beyond."""
        if n in self._work:
            return self._work[n]
        into = self.convs[0][IN]
        for i, (lin, relu) in enumerate(self.units):
            c = self.convs[i]
            errs = max(_largest_code(x.fmt) for x in (c[E], c[RE]) if x is not None)  # type: ignore[union-attr]
            act, wt = _largest_code(into.fmt), _largest_code(c[W].fmt)  # type: ignore[union-attr]
            if max(lin.n_in * act * wt, n * act * errs, lin.n_out * errs * wt) >= 1 << 53:
                self._work[n] = None
                return None
            into = c[ACT] if relu is not None else c[PRE]
        work = self._work[n] = self._buffers(n)
        return work

    def _buffers(self, n: int) -> _Work:
        """`work`'s buffers, static arguments and count tables of a batch of n rows."""
        n_units = len(self.units)
        keys, stats = np.zeros((n_units, ROWS), np.int64), np.zeros((n_units, ROWS, 4), np.int64)
        bufs, fwd, bwd = [], [], []
        sizes = np.zeros(n_units * ROWS, np.int64)
        for i, (lin, relu) in enumerate(self.units):
            shape, empty, rl = (n, lin.n_out), np.zeros((0, 0)), relu is not None
            out = dict(q=np.empty(shape), r=np.empty(shape) if rl else empty,
                       a=np.empty(shape) if rl and not self.kept_a[i] else empty)
            b = dict(xq=np.empty((n, lin.n_in)) if i == 0 else empty, wq=np.empty((lin.n_out, lin.n_in)),
                     bq=np.empty(lin.n_out), y=np.empty(shape), pmask=np.empty(n * lin.n_out, np.bool_),
                     amask=np.empty(n * lin.n_out if rl else 0, np.bool_), e=np.empty(shape),
                     u=np.empty(shape) if rl else empty, v=np.empty(shape) if rl else empty,
                     dy=np.empty(shape),
                     dw=np.empty((lin.n_in, lin.n_out)), db=np.empty(lin.n_out),
                     eraw=np.empty((n, lin.n_in)) if i else empty, **out)
            b["out"] = b["q"] if not rl else b["r"] if self.kept_a[i] else b["a"]
            b["input"] = b["xq"] if i == 0 else bufs[-1]["out"]
            bufs.append(b)
            fwd.append((rl, self.kept_a[i], self.kinds, self.ints, self.clips, self.lo, self.hi, keys, stats,
                        b["xq"], b["wq"], b["bq"], b["y"], b["pmask"], b["amask"]))
            bwd.append((rl, b["q"], b["input"], self.kinds, self.ints, keys, stats, b["e"], b["u"], b["v"],
                        b["dy"], b["dw"], b["db"], b["eraw"]))
            wsize, osize = lin.n_in * lin.n_out, n * lin.n_out
            for r, size in ((IN, n * lin.n_in), (W, wsize), (B, lin.n_out), (PRE, osize), (ACT, osize),
                            (E, osize), (RE, osize), (GW, wsize), (GB, lin.n_out), (UWI, wsize), (UWO, wsize),
                            (UBI, lin.n_out), (UBO, lin.n_out)):
                sizes[i * ROWS + r] = size
        return _Work(bufs, fwd, bwd, keys, stats, (self.group[:-2] @ sizes).tolist())

    def _groups(self) -> None:
        """`roles`, the keys of the counted roles in the order the layered path first counts them (the
        forward's, the backward's, then from `n_updating` on the update's), and `group`, the matrix (roles x
        table rows) of 1 where a conversion adds to a role, followed by two rows that sum the updates
        attempted and zeroed (the update's inner and outer rows)."""
        n_units = len(self.convs)
        order = [(i, r) for i in range(n_units) for r in _FORWARD]
        order += [(i, r) for i in range(n_units - 1, -1, -1) for r in _BACKWARD]
        order += [(i, r) for i in range(n_units) for r in _UPDATE]
        self.roles: list[tuple[str, str]] = []
        self.n_updating = 0
        where = []
        for i, r in order:
            c = self.convs[i][r]
            if c is not None and c.fmt is not None:
                if c.counts not in self.roles:
                    self.roles.append(c.counts)
                    self.n_updating += r not in _UPDATE
                where.append((self.roles.index(c.counts), i * ROWS + r))
        m = len(self.roles)
        self.group = np.zeros((m + 2, n_units * ROWS), np.int64)
        for k, col in where:
            self.group[k, col] = 1
        for col in range(0, self.group.shape[1], ROWS):
            self.group[m, col + UWI] = self.group[m, col + UBI] = 1
            self.group[m + 1, col + UWO] = self.group[m + 1, col + UBO] = 1
        self._counts: list[Any] = []  # the roles' counts, fetched (so made) as the layered path makes them

    def refuse(self, stats: np.ndarray, i: int, inputs: tuple[np.ndarray, ...],
               updates: tuple[np.ndarray, ...] = ()) -> None:
        """Raise the refusal of a NaN that a conversion of unit i met (stats[i, r, 2]), the one its layer's
        conversion of the same values raises: ``inputs`` the values of its forward (`IN`, `W`, `B`, `PRE`,
        `ACT`) or backward (`E`, `RE`, `GW`, `GB`) conversions, ``updates`` (w and g of W, then of b) those
        of the update."""
        for r, x in zip(_BACKWARD if updates else _FORWARD, inputs, strict=True):
            c = self.convs[i][r]
            if c is not None and stats[i, r, 2]:
                c.conv(x, return_stats=True)  # type: ignore[union-attr]
        for k, rows in enumerate(((UWI, UWO), (UBI, UBO)) if updates else ()):
            if stats[i, rows[0], 2] or stats[i, rows[1], 2]:
                inner, outer = (self.convs[i][r].conv for r in rows)  # type: ignore[union-attr]
                emu.rounded_update(updates[2 * k], updates[2 * k + 1], self.rates[i][k], inner, outer)  # type: ignore[index]

    def count(self, work: _Work, updated: bool) -> tuple[int, int]:
        """Add a step's counts (`_Work.stats`) to the roles' counts (the update's only where ``updated``);
        returns the updates attempted and zeroed (0, 0 without the update)."""
        *tot, attempted, zeroed = (self.group @ work.stats.reshape(-1, 4)).tolist()
        m = self.n_updating
        counts = self._counts
        if len(counts) < (len(self.roles) if updated else m):
            new = self.roles[len(counts):None if updated else m]
            counts[len(counts):] = [self.quant.counts[k] for k in new]
        for c, (o, u, _, outside), size in zip(counts[:m], tot, work.sizes, strict=False):
            c.size += size
            c.overflow += o
            c.underflow += u
            c.outside += outside  # 0 but in the range-checked rows (a unit's preacts and activations)
        if not updated:
            return 0, 0
        for c, (o, u, _, _), size in zip(counts[m:], tot[m:], work.sizes[m:], strict=True):
            c.size += size
            c.overflow += o
            c.underflow += u
        return attempted[3], zeroed[3]


_EMPTY1, _EMPTY2, _NO_MASK = np.zeros(0), np.zeros((0, 0)), np.zeros(0, np.bool_)


class MLPStep:
    """A training step (`Model.loss_and_grad` and the optimiser's step) of a fixed-point stack of Linear
    layers, each followed by at most one ReLU, in two kernel calls a layer (see the module's docstring);
    `of` gives one where the model is such a stack.

    >>> import nets
    >>> model = nets.mlp([4, 3, 2], seed=0)
    >>> ctx = Context(nets.PrecisionPolicy.preset("gupta fx<4,12> stochastic"), nets.Quantizer(0))
    >>> step = MLPStep.of(model, nets.SGD(lr=0.1))
    >>> loss, z, updated = step.step(np.ones((5, 4)), np.array([0, 1, 0, 1, 1]), ctx)
    >>> z.shape, updated, bool(np.all(model.layers()[0].params["W"] * 4096 % 1 == 0))
    ((5, 2), True, True)
    """

    def __init__(self, model: Model, units: list[_Unit], optimizer: Any) -> None:
        self.model, self.units, self.optimizer = model, units, optimizer
        self._ctx: Context | None = None
        self._epoch = 0
        self._plan: _Plan | None = None
        #: the parameters the last update wrote (new float64 arrays: as the kernels take them)
        self._written: tuple[np.ndarray | None, ...] = (None,) * (2 * len(units))

    @classmethod
    def of(cls, model: Any, optimizer: Any) -> MLPStep | None:
        """The step of ``model`` trained by ``optimizer`` (a `nets.optim.Optimizer`) where the model is a
        `Model` whose root is a Sequential of Linear layers with biases, each followed by at most one ReLU;
        else None."""
        units = _units(model)
        return None if units is None else cls(model, units, optimizer)

    def _plan_of(self, ctx: Context) -> _Plan | None:
        """The plan under ``ctx`` at the optimiser's epoch (looked up once for each), or None where the
        policy is not one the kernels run."""
        epoch = getattr(self.optimizer, "epoch", 0)
        if ctx is self._ctx and epoch == self._epoch:
            return self._plan
        self._ctx, self._epoch, self._plan = ctx, epoch, None
        if not ctx.training or ctx.row_independent:
            return None
        units, convs = self.units, []
        for i, (lin, relu) in enumerate(units):
            lp = ctx.policy.for_layer(lin.name)
            if lp.fwd_mac is not None or lp.bwd_mac is not None or lp.grad_mac is not None:
                return None
            row: list[_Conv | None] = [None] * ROWS
            row[IN] = _conv(ctx, lin, "activations", True) if i == 0 else None
            row[W], row[B], row[PRE] = _conv(ctx, lin, "weights"), _conv(ctx, lin, "biases"), _conv(ctx, lin,
                                                                                                  "preacts")
            row[E] = (_conv(ctx, units[i + 1].linear, "errors") if i + 1 < len(units)
                      else _conv(ctx, self.model.output_layer(), "errors", True))
            row[GW] = row[GB] = _conv(ctx, lin, "grads")
            if relu is not None:
                row[ACT], row[RE] = _conv(ctx, relu, "activations"), _conv(ctx, relu, "errors")
            if any(row[r] is None for r in (W, B, PRE, E, GW, *((IN,) if i == 0 else ()),
                                            *((ACT, RE) if relu is not None else ()))):
                return None
            convs.append(row)
        rates = self._rates(ctx, convs)
        self._plan = _Plan(units, convs, rates, ctx)
        return self._plan

    def _rates(self, ctx: Context, convs: list[list[_Conv | None]]) -> list[tuple[float, float]] | None:
        """Each unit's (W, b) rates of the fused update, its conversions entered in ``convs``; None where
        the optimiser's step is not such an update for every parameter (it then steps itself)."""
        plain_rate = getattr(self.optimizer, "plain_rate", None)
        if plain_rate is None:
            return None
        found = []
        for lin, _ in self.units:
            lp = ctx.policy.for_layer(lin.name)
            rates = (plain_rate(lin.name, "W", lp, ctx.quant), plain_rate(lin.name, "b", lp, ctx.quant))
            found.append((*rates, _conv(ctx, lin, "update", optimiser=True),
                          _conv(ctx, lin, "master", optimiser=True)))
        if any(None in f for f in found):
            return None
        for row, (_, _, inner, outer) in zip(convs, found, strict=True):
            row[UWI], row[UWO], row[UBI], row[UBO] = inner, outer, inner, outer
        return [(aw, ab) for aw, ab, _, _ in found]  # type: ignore[misc]

    def step(self, x: np.ndarray, y: np.ndarray, ctx: Context) -> tuple[float, np.ndarray, bool] | None:
        """One training step on the batch (x, y): the loss and the output, and whether the parameters were
        updated (else the gradients wait in the layers for the optimiser's step, as after
        `Model.loss_and_grad`; so too where the loss is not finite). None where the step is not one the
        kernels run (the caller then takes the layered path; nothing was drawn or counted)."""
        plan = self._plan_of(ctx)
        units = self.units
        x = np.asarray(x, np.float64)
        if plan is None or x.ndim != 2 or x.shape[1] != units[0].linear.n_in or not len(x):
            return None
        work = plan.work(len(x))
        params = tuple(p for lin, _ in units for p in (lin.params["W"], lin.params["b"]))
        if work is None or (not all(map(operator.is_, params, self._written)) and any(
                type(p) is not np.ndarray or p.dtype != np.float64 or not p.flags.c_contiguous
                for p in params)):
            return None
        quant = ctx.quant
        draw = quant.rng.bit_generator.random_raw
        keys, stats = work.keys.reshape(-1), work.stats
        stats.fill(0)
        keys[plan.forward_keys] = draw(len(plan.forward_keys)).view(np.int64)
        h, last, used_w = np.ascontiguousarray(x), len(units) - 1, []
        for i, (lin, _) in enumerate(units):
            c, wp, bp, b = plan.convs[i], lin.params["W"], lin.params["b"], work.bufs[i]
            kept_w, kept_b = quant.holds(wp, c[W].fmt), quant.holds(bp, c[B].fmt)  # type: ignore[union-attr]
            out = b["out"] if i < last else np.empty_like(b["out"])  # the network's output leaves the step
            q, r, a = (out if b["out"] is b[k] else b[k] for k in ("q", "r", "a"))
            if unit_forward(i, h, wp, bp, kept_w, kept_b, q, r, a, *work.fwd[i]):
                plan.refuse(stats, i, (x, wp.T, bp, b["y"], r))
            used_w.append(wp if kept_w else b["wq"].T)
            h = out
        z = h
        loss, dz = self.model.loss(z, y)
        updated = plan.rates is not None and math.isfinite(loss)
        after = plan.after_keys if updated else plan.backward_keys
        keys[after] = draw(len(after)).view(np.int64)
        g = np.ascontiguousarray(dz, np.float64)
        for i in range(last, -1, -1):
            lin, b = units[i].linear, work.bufs[i]
            wp, bp = lin.params["W"], lin.params["b"]
            gw, gb = np.empty(wp.shape), np.empty(bp.shape)
            new_w, new_b = (np.empty(wp.shape), np.empty(bp.shape)) if updated else (_EMPTY2, _EMPTY1)
            if unit_backward(i, g, used_w[i], b["amask"] if stats[i, ACT, 3] else _NO_MASK,
                             b["pmask"] if stats[i, PRE, 3] else _NO_MASK, gw, gb,
                             plan.rate_arrays[i] if updated else _EMPTY1, wp, bp, new_w, new_b, *work.bwd[i]):
                plan.refuse(stats, i, (g, b["u"], b["dw"], b["db"]), (wp, gw, bp, gb))
            lin.grads["W"], lin.grads["b"] = gw, gb
            if updated:
                lin.params["W"], lin.params["b"] = new_w, new_b
                master = plan.convs[i][UWO].fmt  # type: ignore[union-attr]
                if master is not None:
                    quant.hold(new_w, master)
                    quant.hold(new_b, master)
            g = b["eraw"]
        attempted, zeroed = plan.count(work, updated)
        if updated:
            self._written = tuple(p for lin, _ in units for p in (lin.params["W"], lin.params["b"]))
            self.optimizer.counts.attempted += attempted
            self.optimizer.counts.zeroed += zeroed
        return loss, z, updated
