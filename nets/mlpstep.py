"""A multilayer perceptron's training step in two compiled calls a layer (`MLPStep`).

`nets.models.Model.loss_and_grad` and the optimiser's step walk the layers and
parameters: each conversion, product and update is a call of its own, with its
Python around it. In a training step of a small network most of the time goes
there, not into the arithmetic. `MLPStep` runs the same step, with the same
results, for a model whose root is a `Sequential` of `Linear` layers (with
biases), each followed by at most one `ReLU` (`nets.mlp` with its default
options), under a policy of one of two kinds:

- no datapaths, every value fixed point: the products run in float64. With
  fixed-point operands every product and partial sum is an integer multiple
  of the operands' joint step, below 2^53 of them (checked for each batch
  size), so they are exact and have the bits of numpy's BLAS product,
  whatever the order of the additions.
- every product (forward, backward, weight gradient) through a datapath that
  one of emu's one-call kernels runs: a binary32 one
  (`emu.datapath.mac_fp32_kernel`: an fp32 accumulator rounding to nearest
  even after every addition, float operands, as FP8 training's e4m3 / e5m2
  with fp32 accumulation) or a fixed-point one
  (`emu.datapath.mac_fixed_kernel`: fixed operands, an accumulator that wraps
  or saturates after every addition, its overflows counted), every role
  fixed point, float (rounding that draws nothing) or float64. The datapath
  converts its operands as `emu.matmul` does, except those the step knows
  are values of a binary32 datapath's operand format already (the output of
  a conversion to it), which pass as they are. A product that meets a NaN or
  makes a value that is not finite (whose counts and NaN the general path
  gives) hands the whole step back.

Each Linear layer and its ReLU (a *unit*) then make one kernel call forward and
one backward (`nets.mlpkernels`):

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
would draw, drawn from the run's stream in the layers' order. So the
parameters, gradients, counts (the datapaths' MAC counts too) and random
stream a step leaves are those of ``Model.loss_and_grad`` and the optimiser's
step, bit for bit (the layers' caches of their last pass, which only their own
backward reads, are not set). The layered path is the reference: a test trains
both ways and compares them. Where the model, the policy or the batch is
outside this, `MLPStep.of` or `MLPStep.step` gives None (nothing drawn,
counted or changed) and the caller takes the layered path.

Imports numpy, `emu` and nets' context, layers, mlpkernels and models.
"""

from __future__ import annotations

import math
import operator
import threading
from collections import OrderedDict
from typing import Any, NamedTuple

import numpy as np

import emu
from emu.datapath import fixed_kernel_args, fp32_kernel_args, fp32_layout, in_fp32
from emu.update import COPY_KIND, FIXED_KINDS, FLOAT_KIND

from .context import Context
from .layers import Linear, ReLU, Sequential
from .mlpkernels import (
    ACT,
    BWD,
    FIXED,
    FP32,
    FWD,
    GB,
    GRAD,
    GW,
    IN,
    PRE,
    RE,
    ROWS,
    UBI,
    UBO,
    UWI,
    UWO,
    B,
    E,
    W,
    unit_backward,
    unit_forward,
)
from .models import Model

__all__ = ["MLPStep"]

_FORWARD, _BACKWARD, _UPDATE = (IN, W, B, PRE, ACT), (E, RE, GW, GB), (UWI, UWO, UBI, UBO)
#: a fixed-point datapath's product of this many MACs or more `emu.matmul` runs on faster kernels than the
#: one-call kernel the step runs (16-bit lanes, exact sums; the same values): the layered path takes it
_FIXED_MAX = 1 << 18


class _Conv(NamedTuple):
    """A conversion a kernel makes: its format (None: float64, the value passes), its converter (for a
    refusal, raised as the layer's conversion raises it), whether it draws a key, the key of the counts it
    adds to (`nets.quant.Quantizer.counts`)."""

    fmt: emu.FixedFormat | emu.FloatFormat | None
    conv: emu.Converter | None
    draws: bool
    counts: Any


class _Unit(NamedTuple):
    """A Linear layer and the ReLU after it (or None)."""

    linear: Linear
    relu: ReLU | None


class _Shape(NamedTuple):
    """What a plan keeps of a unit: its Linear layer's name and sizes, and whether a ReLU follows."""

    name: str
    n_in: int
    n_out: int
    relu: bool


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


def _conv(ctx: Context, layer: Any, role: str, boundary: bool = False, optimiser: bool = False,
          floats: bool = False) -> _Conv | None:
    """The conversion of ``role`` at ``layer`` under ``ctx``, where a kernel makes it: a fixed-point
    format with a fast conversion that refuses NaN; with ``floats`` (values that reach only datapaths and
    the optimiser's update, not float64 products) or for an ``optimiser`` role (``update``, ``master``),
    also a float format with a fast conversion that draws nothing, or none (the value passes: a `_Conv`
    without a format, not counted); else None. An optimiser role is the layer's policy's, whatever the
    granularity."""
    rf = getattr(ctx.policy.for_layer(layer.name), role) if optimiser else ctx.role_plan(layer, role,
                                                                                          boundary).rf
    if rf is None or rf.fmt is None:
        return _Conv(None, None, False, None) if floats or optimiser else None
    if type(rf.fmt) not in (emu.FixedFormat, emu.FloatFormat):
        return None
    conv, seed = ctx.quant.converter(rf)
    spec = conv.spec
    if spec is None:
        return None
    fixed = type(rf.fmt) is emu.FixedFormat and spec.args[0] in FIXED_KINDS and not spec.nan_ok
    if not fixed and not ((floats or optimiser) and type(rf.fmt) is emu.FloatFormat
                          and spec.args[0] == FLOAT_KIND and seed is None):
        return None
    return _Conv(rf.fmt, conv, seed is not None, (layer.name, role))


def _largest_code(f: emu.FixedFormat) -> int:
    """The largest magnitude of a code of f."""
    return max(-f.qmin, f.qmax)


class _Work(NamedTuple):
    """A plan's steps at one batch size: each unit's buffers (by name) and the arguments of its kernel calls
    that stay the same from step to step (``fwd``, ``bwd``); the step's key and count tables; the values
    each of the plan's counted roles converts in a step (`_Plan.roles`); and the MACs of each datapath's
    products in a step, in the order the layered path first counts them (`Context.mac_counts`)."""

    bufs: list[dict[str, np.ndarray]]
    fwd: list[tuple[Any, ...]]
    bwd: list[tuple[Any, ...]]
    keys: np.ndarray
    stats: np.ndarray
    sizes: list[int]
    macs: list[tuple[str, int, int, int]]


def _packed_table(shape: tuple[int, ...], entries: list[tuple[tuple[int, ...], np.ndarray, float]]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(packed parameters, NaN values) tables of float conversions: entries (index, packed, NaN value) in
    tables of ``shape`` and of shape + (the longest packed length,)."""
    packed = np.zeros(shape + (max((len(p) for _, p, _ in entries), default=0),), np.uint64)
    nans = np.zeros(shape)
    for at, p, nan in entries:
        packed[at][:len(p)], nans[at] = p, nan
    return packed, nans


class _Plan:
    """What the step does under one policy (the same for every model of the same layers and every context
    of the policy, so shared by them: `_PLANS`): each unit's conversions (a `_Conv` or None by row), their
    kernel tables, the datapaths' tables (`_mac`; tables of size 0 where the products run in float64),
    whether the update is fused (else the optimiser steps itself), the positions of the keys in the order
    the layered path draws them, and the buffers by batch size (`work`)."""

    def __init__(self, units: list[_Unit], convs: list[list[_Conv | None]], fused: bool,
                 macs: list[tuple[emu.MAC | None, ...]] | None, ctx: Context) -> None:
        self.units = [_Shape(lin.name, lin.n_in, lin.n_out, relu is not None) for lin, relu in units]
        self.convs, self.fused = convs, fused
        n_units = len(units)
        self.kinds = np.zeros((n_units, ROWS), np.int64)
        self.ints = np.zeros((n_units, ROWS, 6), np.int64)
        self.clips = np.zeros((n_units, ROWS), np.bool_)
        self.lo, self.hi = np.zeros((n_units, ROWS)), np.zeros((n_units, ROWS))
        floats = []
        for i, row in enumerate(convs):
            for r, c in enumerate(row):
                if c is not None and c.conv is not None:
                    kind, ints, packed, nan = c.conv.spec.args  # type: ignore[union-attr]
                    self.kinds[i, r], self.ints[i, r, :len(ints)] = kind, ints
                    floats.append(((i, r), packed, nan))
        self.packed, self.nans = _packed_table((n_units, ROWS), floats)
        for i, r in self._copies(macs):
            self.kinds[i, r] = COPY_KIND
        # the weights converted in their own layout, but by a conversion that draws (in `Layer.q`'s order)
        self.wq_t = [c[W].draws for c in convs]  # type: ignore[union-attr]
        self.has_macs = macs is not None
        self.macs = self._datapath_tables(macs or [])
        for i, (lin, relu) in enumerate(units):
            for r, layer, role in ((PRE, lin, "preacts"), (ACT, relu, "activations")):
                plan = None if layer is None else ctx.role_plan(layer, role, False)
                if plan is not None and plan.clipped:
                    self.clips[i, r], self.lo[i, r], self.hi[i, r] = True, plan.lo, plan.hi
        # a ReLU's output of fixed-point preacts is the activations' values where they share the format (the
        # conversion is then skipped, as `Layer.q` skips it for an output of a fixed-point conversion)
        self.kept_a = [relu is not None and type(convs[i][PRE].fmt) is emu.FixedFormat  # type: ignore[union-attr]
                       and convs[i][PRE].fmt == convs[i][ACT].fmt  # type: ignore[union-attr]
                       for i, (_, relu) in enumerate(units)]
        down = range(n_units - 1, -1, -1)
        self.forward_keys = self._positions([(i, r) for i in range(n_units) for r in _FORWARD])
        self.backward_keys = self._positions([(i, r) for i in down for r in _BACKWARD])
        self.after_keys = np.concatenate([self.backward_keys, self._positions(
            [(i, r) for i in range(n_units) for r in _UPDATE])])
        self.draws = bool(len(self.forward_keys) or len(self.after_keys))  # some conversion draws a key
        self._groups()
        self._work: dict[int, _Work | None] = {}

    def _datapath_tables(self, macs: list[tuple[emu.MAC | None, ...]]) -> tuple[np.ndarray, ...]:
        """The datapaths' tables of the kernels (`nets.mlpkernels._mac`), by unit and product: the binary32
        ones' packed conversions and NaN values (by operand) and kept operands (`_kept`), each product's
        kind, the fixed-point ones' arguments (`emu.datapath.fixed_kernel_args`: floats, ints), and room
        for their accumulators' overflow counts."""
        n = len(macs)
        kinds, ff, fi = np.zeros((n, 3), np.int64), np.zeros((n, 3, 10)), np.zeros((n, 3, 10), np.int64)
        entries = []
        for i, unit in enumerate(macs):
            for p, mac in enumerate(unit):
                args = None if mac is None else fp32_kernel_args(mac)
                if args is not None:
                    kinds[i, p] = FP32
                    entries += [((i, p, k), *args[2 * k:2 * k + 2]) for k in range(3)]
                elif mac is not None:
                    d = fixed_kernel_args(mac)
                    kinds[i, p] = FIXED
                    ff[i, p] = (*d.a[:3], *d.w[:3], *d.b[:3], d.step)  # type: ignore[union-attr]
                    fi[i, p] = (d.a[3], d.w[3], d.b[3], d.sl, d.sr, d.lo, d.hi, d.mask, d.wrap, d.lane)  # type: ignore
        packed, nans = _packed_table((n, 3, 3), entries)
        return packed, nans, self._kept(macs), kinds, ff, fi, np.zeros((n, 3), np.int64)

    def _copies(self, macs: list[tuple[emu.MAC | None, ...]] | None) -> list[tuple[int, int]]:
        """The conversions (unit, row) whose inputs are values of their format already, which they would
        leave as they are (counted as converted, nothing overflowing; an infinity or NaN among them reaches
        a datapath, and the step is the layered path's): the weight gradients of a datapath whose
        accumulator has the gradients' format, and a ReLU's errors, of values of its incoming errors'
        format or signed zeros, where the two share a format whose conversion keeps -0."""
        copies = []
        for i, (u, c) in enumerate(zip(self.units, self.convs, strict=True)):
            if macs is not None and c[GW].fmt is not None and c[GW].fmt == macs[i][GRAD].acc:  # type: ignore
                copies.append((i, GW))
            e, re = c[E], c[RE]
            if (u.relu and e is not None and re is not None and e.fmt is not None
                    and e.fmt == re.fmt and np.signbit(re.conv(np.array([-0.0])))[0]):  # type: ignore[misc]
                copies.append((i, RE))
        return copies

    def _kept(self, macs: list[tuple[emu.MAC | None, ...]]) -> np.ndarray:
        """Which operands of each unit's datapaths (by unit, product, operand) are values of the operand's
        format already, which its conversion leaves as they are (`_mac`): the output of a conversion to
        that format (the policy asks as much of a role that feeds a datapath), the bias where its format's
        values are binary32 values, and the zero start values of the backward products (a fixed-point
        datapath's kernel converts every operand)."""
        kept = np.zeros((len(macs), 3, 3), np.bool_)
        for i, (u, c, unit) in enumerate(zip(self.units, self.convs, macs, strict=False)):  # (none, or all)
            below = self.convs[i - 1][ACT if self.units[i - 1].relu else PRE] if i else c[IN]
            h, w, dy, b = (None if x is None else x.fmt for x in (below, c[W], c[RE if u.relu else E], c[B]))
            for p, (act, weight) in ((FWD, (h, w)), (BWD, (dy, w)), (GRAD, (h, dy))):
                mac = unit[p]
                if mac is not None:
                    start = p != FWD or (b is not None and in_fp32(b))
                    kept[i, p] = (act is not None and act == mac.act,
                                  weight is not None and weight == mac.weight, start)
        return kept

    def _positions(self, rows: list[tuple[int, int]]) -> np.ndarray:
        """The flat positions in the key table of the conversions of ``rows`` that draw, in that order."""
        return np.array([i * ROWS + r for i, r in rows if (c := self.convs[i][r]) is not None and c.draws],
                        np.int64)

    def _shapes(self, n: int) -> list[tuple[tuple[int, int, int], ...]]:
        """Each unit's products (forward, backward, weight gradient) at a batch of n rows as (M, K, N)."""
        return [((n, u.n_in, u.n_out), (n, u.n_out, u.n_in), (u.n_in, n, u.n_out)) for u in self.units]

    def work(self, n: int) -> _Work | None:
        """The buffers of a batch of n rows, or None where a float64 product could leave its exact range (a
        code of one operand times a code of the other's, summed over the product's length, at 2^53 or
        beyond), a binary32 datapath's product is large enough to repay threads (`fp32_layout`) or a
        fixed-point one's has `_FIXED_MAX` MACs or more (the layered path runs those on faster kernels, with
        the same values)."""
        if n in self._work:
            return self._work[n]
        if self.has_macs:
            kinds = self.macs[3]
            big = {FP32: lambda mkn: fp32_layout(*mkn)[1], FIXED: lambda mkn: math.prod(mkn) >= _FIXED_MAX}
            if any(kinds[i, p] in big and big[kinds[i, p]](mkn)
                   for i, unit in enumerate(self._shapes(n)) for p, mkn in enumerate(unit)):
                self._work[n] = None
                return None
        else:
            into = self.convs[0][IN]
            for u, c in zip(self.units, self.convs, strict=True):
                errs = max(_largest_code(x.fmt) for x in (c[E], c[RE]) if x is not None)  # type: ignore
                act, wt = _largest_code(into.fmt), _largest_code(c[W].fmt)  # type: ignore[union-attr,arg-type]
                if max(u.n_in * act * wt, n * act * errs, u.n_out * errs * wt) >= 1 << 53:
                    self._work[n] = None
                    return None
                into = c[ACT] if u.relu else c[PRE]
        work = self._work[n] = self._buffers(n)
        return work

    def _buffers(self, n: int) -> _Work:
        """`work`'s buffers, static arguments and count tables of a batch of n rows."""
        n_units = len(self.units)
        keys, stats = np.zeros((n_units, ROWS), np.int64), np.zeros((n_units, ROWS, 4), np.int64)
        tabs = (self.kinds, self.ints, self.packed, self.nans, keys, stats)
        bufs, fwd, bwd = [], [], []
        sizes = np.zeros(n_units * ROWS, np.int64)
        unit_shapes = self._shapes(n)
        for i, (lin, shapes) in enumerate(zip(self.units, unit_shapes, strict=True)):
            shape, empty, rl = (n, lin.n_out), np.zeros((0, 0)), lin.relu
            out = dict(q=np.empty(shape), r=np.empty(shape) if rl else empty,
                       a=np.empty(shape) if rl and not self.kept_a[i] else empty)
            wq = np.empty((lin.n_out, lin.n_in) if self.wq_t[i] else (lin.n_in, lin.n_out))
            b = dict(xq=np.empty((n, lin.n_in)) if i == 0 else empty, wq=wq,
                     bq=np.empty(lin.n_out), y=np.empty(shape), pmask=np.empty(n * lin.n_out, np.bool_),
                     amask=np.empty(n * lin.n_out if rl else 0, np.bool_), e=np.empty(shape),
                     u=np.empty(shape) if rl else empty, v=np.empty(shape) if rl else empty,
                     dy=np.empty(shape),
                     dw=np.empty((lin.n_in, lin.n_out)), db=np.empty(lin.n_out),
                     eraw=np.empty((n, lin.n_in)) if i else empty, **out)
            b["out"] = b["q"] if not rl else b["r"] if self.kept_a[i] else b["a"]
            b["input"] = b["xq"] if i == 0 else bufs[-1]["out"]
            bufs.append(b)
            cols = np.array([fp32_layout(*mkn)[0] for mkn in shapes])
            fwd.append((rl, self.kept_a[i], self.wq_t[i], tabs, self.clips, self.lo, self.hi, self.macs, cols,
                        b["xq"], b["wq"], b["bq"], b["y"], b["pmask"], b["amask"]))
            bwd.append((rl, b["q"], b["input"], tabs, self.macs, cols, np.zeros(lin.n_out),
                        np.zeros(lin.n_in), b["e"], b["u"], b["v"], b["dy"], b["dw"], b["db"], b["eraw"]))
            wsize, osize = lin.n_in * lin.n_out, n * lin.n_out
            for r, size in ((IN, n * lin.n_in), (W, wsize), (B, lin.n_out), (PRE, osize), (ACT, osize),
                            (E, osize), (RE, osize), (GW, wsize), (GB, lin.n_out), (UWI, wsize), (UWO, wsize),
                            (UBI, lin.n_out), (UBO, lin.n_out)):
                sizes[i * ROWS + r] = size
        macs = []
        if self.has_macs:  # as `nets.product.mac_product` counts them: the outputs times the length
            for i, lin in enumerate(self.units):
                macs.append((f"{lin.name}.fwd", math.prod(unit_shapes[i][FWD]), i, FWD))
            for i in range(n_units - 1, -1, -1):
                name = self.units[i].name
                macs += [(f"{name}.{p}", math.prod(unit_shapes[i][k]), i, k)
                         for k, p in ((GRAD, "grad"), (BWD, "bwd")) if k == GRAD or i]
        return _Work(bufs, fwd, bwd, keys, stats, (self.group[:-2] @ sizes).tolist(), macs)

    def _groups(self) -> None:
        """`roles`, the keys of the counted roles in the order the layered path first counts them (the
        forward's, the first `n_forward`; the backward's; then from `n_updating` on the update's), and
        `group`, the matrix (roles x
        table rows) of 1 where a conversion adds to a role, followed by two rows that sum the updates
        attempted and zeroed (the update's inner and outer rows)."""
        n_units = len(self.convs)
        order = [(i, r) for i in range(n_units) for r in _FORWARD]
        order += [(i, r) for i in range(n_units - 1, -1, -1) for r in _BACKWARD]
        order += [(i, r) for i in range(n_units) for r in _UPDATE]
        self.roles: list[tuple[str, str]] = []
        self.n_updating = self.n_forward = 0
        where = []
        for i, r in order:
            c = self.convs[i][r]
            if c is not None and c.fmt is not None:
                if c.counts not in self.roles:
                    self.roles.append(c.counts)
                    self.n_updating += r not in _UPDATE
                    self.n_forward += r in _FORWARD
                where.append((self.roles.index(c.counts), i * ROWS + r))
        m = len(self.roles)
        self.group = np.zeros((m + 2, n_units * ROWS), np.int64)
        for k, col in where:
            self.group[k, col] = 1
        for col in range(0, self.group.shape[1], ROWS):
            self.group[m, col + UWI] = self.group[m, col + UBI] = 1
            self.group[m + 1, col + UWO] = self.group[m + 1, col + UBO] = 1

    def refuse(self, stats: np.ndarray, i: int, rows: tuple[int, ...], inputs: tuple[np.ndarray, ...],
               updates: tuple[np.ndarray, ...] = (), rates: np.ndarray | None = None) -> None:
        """Raise the refusal of a NaN that a conversion of unit i met (stats[i, r, 2]), the one its layer's
        conversion of the same values raises: ``inputs`` the values of its conversions ``rows`` (forward or
        backward), ``updates`` (w and g of W, then of b) and ``rates`` (of W and b) those of the update."""
        for r, x in zip(rows, inputs, strict=True):
            c = self.convs[i][r]
            if c is not None and stats[i, r, 2]:
                c.conv(x, return_stats=True)  # type: ignore[union-attr]
        for k, pair in enumerate(((UWI, UWO), (UBI, UBO)) if rates is not None else ()):
            if stats[i, pair[0], 2] or stats[i, pair[1], 2]:
                inner, outer = (self.convs[i][r].conv for r in pair)  # type: ignore[union-attr]
                emu.rounded_update(updates[2 * k], updates[2 * k + 1], float(rates[k]), inner, outer)


class _Tally:
    """Where the steps of a plan under one context add their counts: the context's converter's role counts
    (fetched, so made, in the order the layered path first makes them) and its MAC counts."""

    def __init__(self, plan: _Plan, ctx: Context) -> None:
        self.plan, self.ctx, self.counts = plan, ctx, ctx.quant.counts
        self._counts: list[Any] = []

    def add(self, work: _Work, updated: bool, forward: bool = False) -> tuple[int, int]:
        """Add a step's counts (`_Work.stats`) to the roles' counts (the update's only where ``updated``,
        the forward's alone with ``forward``); returns the updates attempted and zeroed (0, 0 without the
        update)."""
        plan = self.plan
        *tot, attempted, zeroed = (plan.group @ work.stats.reshape(-1, 4)).tolist()
        m = plan.n_forward if forward else plan.n_updating
        counts = self._counts
        if len(counts) < (len(plan.roles) if updated else m):
            new = plan.roles[len(counts):None if updated else m]
            counts[len(counts):] = [self.counts[k] for k in new]
        for c, (o, u, _, outside), size in zip(counts[:m], tot, work.sizes, strict=False):
            c.size += size
            c.overflow += o
            c.underflow += u
            c.outside += outside  # 0 but in the range-checked rows (a unit's preacts and activations)
        mac_counts, overflows = self.ctx.mac_counts, plan.macs[6]
        for where, macs, i, p in work.macs[:len(plan.units) if forward else None]:
            c = mac_counts.setdefault(where, [0, 0, 0, 0])
            c[0] += macs
            c[2] += int(overflows[i, p])  # a fixed-point accumulator's (a binary32 one's overflowed nowhere)
        if not updated:
            return 0, 0
        for c, (o, u, _, _), size in zip(counts[m:], tot[m:], work.sizes[m:], strict=True):
            c.size += size
            c.overflow += o
            c.underflow += u
        return attempted[3], zeroed[3]


#: the plans made, by (thread, the model's units, policy, converter's nearest rounding, update fused): a
#: plan's buffers serve one step at a time, so each thread has its own; the least recently used go first
_PLANS: OrderedDict[tuple[Any, ...], _Plan | None] = OrderedDict()
_PLANS_KEPT = 8


_EMPTY1, _EMPTY2, _NO_MASK = np.zeros(0), np.zeros((0, 0)), np.zeros(0, np.bool_)


class MLPStep:
    """A training step (`Model.loss_and_grad` and the optimiser's step) of a stack of Linear layers, each
    followed by at most one ReLU, in two kernel calls a layer, under a fixed-point policy or one whose
    products all run through binary32 or fixed-point datapaths (see the module's docstring); `of` gives one
    where the model is such a stack.

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
        #: what a plan depends on of the model: its units' names and sizes, and their ReLUs' names
        self._layers = tuple((lin.name, lin.n_in, lin.n_out, relu and relu.name) for lin, relu in units)
        self._ctx: Context | None = None
        self._epoch = 0
        self._plan: _Plan | None = None
        self._tally: _Tally | None = None
        self._rates: list[np.ndarray] = []  # each unit's rates of W and b in the fused update
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
        """The plan under ``ctx`` (made once per policy for models of these layers, `_PLANS`) with the
        update's rates at the optimiser's epoch (looked up once for each), or None where the policy is not
        one the kernels run."""
        epoch = getattr(self.optimizer, "epoch", 0)
        if ctx is self._ctx and epoch == self._epoch:
            return self._plan
        self._ctx, self._epoch, self._plan = ctx, epoch, None
        if not ctx.training or ctx.row_independent:
            return None
        rates = self._plain_rates(ctx)
        plan = self._shared_plan(ctx, rates is not None)
        if plan is not None:
            self._plan, self._rates = plan, [np.array(r) for r in rates or ()]
            if self._tally is None or self._tally.ctx is not ctx or self._tally.plan is not plan:
                self._tally = _Tally(plan, ctx)
        return self._plan

    def _shared_plan(self, ctx: Context, fuse: bool) -> _Plan | None:
        """The plan of models of these layers under ``ctx``'s policy, from `_PLANS` or made (`_new_plan`)."""
        key = (threading.get_ident(), self._layers, ctx.policy, ctx.training, ctx.quant.nearest, fuse)
        if key in _PLANS:
            _PLANS.move_to_end(key)
            return _PLANS[key]
        plan = _PLANS[key] = self._new_plan(ctx, fuse)
        if len(_PLANS) > _PLANS_KEPT:
            _PLANS.popitem(last=False)
        return plan

    def _new_plan(self, ctx: Context, fuse: bool) -> _Plan | None:
        """The plan of this model's layers under ``ctx``'s policy, the update fused where ``fuse`` and the
        roles allow; None where the kernels do not run the policy."""
        macs = self._datapaths(ctx)
        if macs == ():
            return None
        floats = macs is not None  # values that meet no float64 product: float roles too
        units, convs = self.units, []
        for i, (lin, relu) in enumerate(units):
            row: list[_Conv | None] = [None] * ROWS
            row[IN] = _conv(ctx, lin, "activations", True, floats=floats) if i == 0 else None
            row[W], row[B], row[PRE] = (_conv(ctx, lin, role, floats=floats)
                                        for role in ("weights", "biases", "preacts"))
            row[E] = (_conv(ctx, units[i + 1].linear, "errors", floats=floats) if i + 1 < len(units)
                      else _conv(ctx, self.model.output_layer(), "errors", True, floats=floats))
            row[GW] = row[GB] = _conv(ctx, lin, "grads", floats=floats)
            if relu is not None:
                row[ACT], row[RE] = (_conv(ctx, relu, role, floats=floats)
                                     for role in ("activations", "errors"))
            if any(row[r] is None for r in (W, B, PRE, E, GW, *((IN,) if i == 0 else ()),
                                            *((ACT, RE) if relu is not None else ()))):
                return None
            if fuse:
                row[UWI] = row[UBI] = _conv(ctx, lin, "update", optimiser=True)
                row[UWO] = row[UBO] = _conv(ctx, lin, "master", optimiser=True)
            convs.append(row)
        fused = fuse and all(row[r] is not None for row in convs for r in _UPDATE)
        if not fused:
            for row in convs:
                row[UWI:] = [None] * len(_UPDATE)
        return _Plan(units, convs, fused, macs, ctx)

    def _datapaths(self, ctx: Context) -> list[tuple[emu.MAC | None, ...]] | None | tuple[()]:
        """Each unit's (forward, backward, weight gradient) datapaths where every product the step makes has
        one that the binary32 kernel runs (`fp32_kernel_args`; the first unit's backward product is not
        made: None) and every layer has more than one output (a bias gradient's float sums then run in numpy's
        order); None where no product has a datapath (float64 products); else () (the layered path)."""
        found = []
        for i, (lin, _) in enumerate(self.units):
            lp = ctx.policy.for_layer(lin.name)
            found.append(tuple(None if m is None else ctx.quant.datapath(m)[0]
                               for m in (lp.fwd_mac, lp.bwd_mac if i else None, lp.grad_mac)))
        needed = [m for i, unit in enumerate(found) for p, m in enumerate(unit) if i or p != BWD]
        if all(m is None for m in needed):
            return None
        if any(m is None or (fp32_kernel_args(m) is None and fixed_kernel_args(m) is None)
               for m in needed) or any(lin.n_out < 2 for lin, _ in self.units):
            return ()
        return found  # type: ignore[return-value]

    def _plain_rates(self, ctx: Context) -> list[tuple[float, float]] | None:
        """Each unit's (W, b) rates of the fused update at the optimiser's epoch; None where the optimiser's
        step is not such an update for every parameter (it then steps itself)."""
        plain_rate = getattr(self.optimizer, "plain_rate", None)
        if plain_rate is None:
            return None
        found = []
        for lin, _ in self.units:
            lp = ctx.policy.for_layer(lin.name)
            found.append((plain_rate(lin.name, "W", lp, ctx.quant), plain_rate(lin.name, "b", lp, ctx.quant)))
        return None if any(None in f for f in found) else found  # type: ignore[return-value]

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray | None:
        """The network's output on x under an evaluation context (``ctx.training`` False:
        `nets.models.evaluation_context`), with the values, counts and random draws of `Model.forward`
        under it; None where the kernels do not run it (nothing was drawn or counted)."""
        if ctx.training:
            return None
        plan = self._shared_plan(ctx, False)
        work = self._work(plan, x)
        if work is None:
            return None
        done = self._forward(plan, work, np.asarray(x, np.float64), ctx)  # type: ignore[arg-type]
        if done is None:
            return None
        _Tally(plan, ctx).add(work, False, forward=True)  # type: ignore[arg-type]
        return done[0]

    def _work(self, plan: _Plan | None, x: np.ndarray) -> _Work | None:
        """The plan's buffers for the batch x, or None where the kernels do not take x or the parameters."""
        x = np.asarray(x)
        if plan is None or x.ndim != 2 or x.shape[1] != self.units[0].linear.n_in or not len(x):
            return None
        work = plan.work(len(x))
        params = tuple(p for lin, _ in self.units for p in (lin.params["W"], lin.params["b"]))
        if work is None or (not all(map(operator.is_, params, self._written)) and any(
                type(p) is not np.ndarray or p.dtype != np.float64 or not p.flags.c_contiguous
                for p in params)):
            return None
        return work

    def _forward(self, plan: _Plan, work: _Work, x: np.ndarray, ctx: Context
                 ) -> tuple[np.ndarray, list[tuple[np.ndarray, bool]], Any] | None:
        """The forward of x (float64) in `work`'s buffers, its keys drawn: the output, each unit's weights
        as its product took them ((W, False) or its conversion wq and whether that is W's transpose), and
        the random stream's state before the draws where a datapath runs (else None). None where a
        datapath's product met a NaN or made a value that is not finite (the layered path's: the draws
        undone, nothing counted)."""
        quant = ctx.quant
        stream = quant.rng.bit_generator
        start = stream.state if plan.has_macs and plan.draws else None  # (nothing to undo: None)
        keys, stats = work.keys.reshape(-1), work.stats
        stats.fill(0)
        if len(plan.forward_keys):
            keys[plan.forward_keys] = stream.random_raw(len(plan.forward_keys)).view(np.int64)
        h, last, used_w = np.ascontiguousarray(x), len(self.units) - 1, []
        for i, (lin, _) in enumerate(self.units):
            c, wp, bp, b = plan.convs[i], lin.params["W"], lin.params["b"], work.bufs[i]
            kept_w, kept_b = quant.holds(wp, c[W].fmt), quant.holds(bp, c[B].fmt)  # type: ignore[union-attr]
            out = b["out"] if i < last else np.empty_like(b["out"])  # the network's output leaves the step
            q, r, a = (out if b["out"] is b[k] else b[k] for k in ("q", "r", "a"))
            nans, bad = unit_forward(i, h, wp, bp, kept_w, kept_b, q, r, a, *work.fwd[i])
            if nans:
                plan.refuse(stats, i, _FORWARD, (x, wp.T, bp, b["y"], r))
            if bad:
                if start is not None:
                    stream.state = start
                return None
            used_w.append((wp, False) if kept_w else (b["wq"], plan.wq_t[i]))
            h = out
        return h, used_w, start

    def step(self, x: np.ndarray, y: np.ndarray, ctx: Context) -> tuple[float, np.ndarray, bool] | None:
        """One training step on the batch (x, y): the loss and the output, and whether the parameters were
        updated (else the gradients wait in the layers for the optimiser's step, as after
        `Model.loss_and_grad`; so too where the loss is not finite). None where the step is not one the
        kernels run (the caller then takes the layered path; nothing was drawn, counted or changed: a
        datapath's product that meets a NaN or makes a value that is not finite hands the step back)."""
        plan = self._plan_of(ctx)
        work = self._work(plan, x)
        if work is None:
            return None
        done = self._forward(plan, work, np.asarray(x, np.float64), ctx)  # type: ignore[arg-type]
        if done is None:
            return None
        z, used_w, start = done
        plan, units, quant, stats = self._plan, self.units, ctx.quant, work.stats
        stream = quant.rng.bit_generator
        loss, dz = self.model.loss(z, y)
        updated = plan.fused and math.isfinite(loss)  # type: ignore[union-attr]
        after = plan.after_keys if updated else plan.backward_keys  # type: ignore[union-attr]
        if len(after):
            work.keys.reshape(-1)[after] = stream.random_raw(len(after)).view(np.int64)
        g, done_units, last = np.ascontiguousarray(dz, np.float64), [], len(units) - 1
        for i in range(last, -1, -1):
            lin, b = units[i].linear, work.bufs[i]
            wp, bp = lin.params["W"], lin.params["b"]
            gw, gb = np.empty(wp.shape), np.empty(bp.shape)
            new_w, new_b = (np.empty(wp.shape), np.empty(bp.shape)) if updated else (_EMPTY2, _EMPTY1)
            nans, bad = unit_backward(i, g, *used_w[i], b["amask"] if stats[i, ACT, 3] else _NO_MASK,
                                      b["pmask"] if stats[i, PRE, 3] else _NO_MASK, gw, gb,
                                      self._rates[i] if updated else _EMPTY1, wp, bp, new_w, new_b,
                                      *work.bwd[i])
            if nans:
                plan.refuse(stats, i, _BACKWARD, (g, b["u"], b["dw"], b["db"]), (wp, gw, bp, gb),  # type: ignore
                            self._rates[i] if updated else None)
            if bad:
                if start is not None:
                    stream.state = start
                return None
            done_units.append((lin, gw, gb, new_w, new_b, plan.convs[i][UWO]))  # type: ignore[union-attr]
            g = b["eraw"]
        for lin, gw, gb, new_w, new_b, outer in done_units:
            lin.grads["W"], lin.grads["b"] = gw, gb
            if updated:
                lin.params["W"], lin.params["b"] = new_w, new_b
                if type(outer.fmt) is emu.FixedFormat:  # type: ignore[union-attr]
                    quant.hold(new_w, outer.fmt)  # type: ignore[union-attr]
                    quant.hold(new_b, outer.fmt)  # type: ignore[union-attr]
        attempted, zeroed = self._tally.add(work, updated)  # type: ignore[union-attr]
        if updated:
            self._written = tuple(p for lin, _ in units for p in (lin.params["W"], lin.params["b"]))
            self.optimizer.counts.attempted += attempted
            self.optimizer.counts.zeroed += zeroed
        return loss, z, updated
