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

Imports numpy, `emu` and nets' context, layers, mlpkernels, mlpplan and models.
"""

from __future__ import annotations

import math
import operator
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

import emu
from emu.datapath import fixed_kernel_args, fp32_kernel_args

from .context import Context
from .layers import Linear, ReLU, Sequential
from .mlpkernels import (
    ACT,
    BWD,
    GB,
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
from .mlpplan import BACKWARD, FORWARD, UPDATE, Conv, Plan, Tally, Unit, Work, conversion
from .models import Model

__all__ = ["MLPStep"]


def _units(model: Any) -> list[Unit] | None:
    """The model's layers as (Linear, ReLU or None) pairs, if it is such a stack whose sizes chain and whose
    first layer alone passes no error to its input."""
    root = getattr(model, "root", None)
    if type(model) is not Model or type(root) is not Sequential or not root.children:
        return None
    units: list[Unit] = []
    for layer in root.children:
        if type(layer) is Linear and "b" in layer.params and layer.needs_input_grad == bool(units):
            if units and units[-1].linear.n_out != layer.n_in:
                return None
            units.append(Unit(layer, None))
        elif type(layer) is ReLU and units and units[-1].relu is None:
            units[-1] = Unit(units[-1].linear, layer)
        else:
            return None
    return units


#: the plans made, by (thread, the model's units, policy, training, converter's nearest rounding, update
#: fused): a plan's buffers serve one step at a time, so each thread has its own; the least recently used
#: go first
_PLANS: OrderedDict[tuple[Any, ...], Plan | None] = OrderedDict()
_PLANS_KEPT = 8
_PLANS_LOCK = threading.Lock()


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

    def __init__(self, model: Model, units: list[Unit], optimizer: Any) -> None:
        self.model, self.units, self.optimizer = model, units, optimizer
        #: what a plan depends on of the model: its units' names and sizes, and their ReLUs' names
        self._layers = tuple((lin.name, lin.n_in, lin.n_out, relu and relu.name) for lin, relu in units)
        self._ctx: Context | None = None
        self._epoch = 0
        self._plan: Plan | None = None
        self._tally: Tally | None = None
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

    def _plan_of(self, ctx: Context) -> Plan | None:
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
                self._tally = Tally(plan, ctx)
        return self._plan

    def _shared_plan(self, ctx: Context, fuse: bool) -> Plan | None:
        """The plan of models of these layers under ``ctx``'s policy, from `_PLANS` or made (`_new_plan`)."""
        key = (threading.get_ident(), self._layers, ctx.policy, ctx.training, ctx.quant.nearest, fuse)
        with _PLANS_LOCK:  # (another thread may evict between a lookup and its use)
            if key in _PLANS:
                _PLANS.move_to_end(key)
                return _PLANS[key]
        plan = self._new_plan(ctx, fuse)
        with _PLANS_LOCK:
            _PLANS[key] = plan
            if len(_PLANS) > _PLANS_KEPT:
                _PLANS.popitem(last=False)
        return plan

    def _new_plan(self, ctx: Context, fuse: bool) -> Plan | None:
        """The plan of this model's layers under ``ctx``'s policy, the update fused where ``fuse`` and the
        roles allow; None where the kernels do not run the policy."""
        macs = self._datapaths(ctx)
        if macs == ():
            return None
        floats = macs is not None  # values that meet no float64 product: float roles too
        units, convs = self.units, []
        for i, (lin, relu) in enumerate(units):
            row: list[Conv | None] = [None] * ROWS
            row[IN] = conversion(ctx, lin, "activations", True, floats=floats) if i == 0 else None
            row[W], row[B], row[PRE] = (conversion(ctx, lin, role, floats=floats)
                                        for role in ("weights", "biases", "preacts"))
            row[E] = (conversion(ctx, units[i + 1].linear, "errors", floats=floats) if i + 1 < len(units)
                      else conversion(ctx, self.model.output_layer(), "errors", True, floats=floats))
            row[GW] = row[GB] = conversion(ctx, lin, "grads", floats=floats)
            if relu is not None:
                row[ACT], row[RE] = (conversion(ctx, relu, role, floats=floats)
                                     for role in ("activations", "errors"))
            if any(row[r] is None for r in (W, B, PRE, E, GW, *((IN,) if i == 0 else ()),
                                            *((ACT, RE) if relu is not None else ()))):
                return None
            if fuse:
                row[UWI] = row[UBI] = conversion(ctx, lin, "update", optimiser=True)
                row[UWO] = row[UBO] = conversion(ctx, lin, "master", optimiser=True)
            convs.append(row)
        fused = fuse and all(row[r] is not None for row in convs for r in UPDATE)
        if not fused:
            for row in convs:
                row[UWI:] = [None] * len(UPDATE)
        return Plan(units, convs, fused, macs, ctx)

    def _datapaths(self, ctx: Context) -> list[tuple[emu.MAC | None, ...]] | None | tuple[()]:
        """Each unit's (forward, backward, weight gradient) datapaths where every product the step makes has
        one that emu's one-call kernels run (`fp32_kernel_args`, `fixed_kernel_args`; the first unit's
        backward product is not made: None) and every layer has more than one output (a bias gradient's
        float sums then run in numpy's order); None where no product has a datapath (float64 products);
        else () (the layered path)."""
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
        done = self._forward(plan, x, ctx)
        if done is None:
            return None
        Tally(plan, ctx).add(done[0], False, forward=True)  # type: ignore[arg-type]
        return done[1]

    def _work(self, plan: Plan | None, x: np.ndarray) -> Work | None:
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

    def _forward(self, plan: Plan | None, x: np.ndarray, ctx: Context
                 ) -> tuple[Work, np.ndarray, list[tuple[np.ndarray, bool]], Any] | None:
        """The forward of x under ``plan`` with its keys drawn: the buffers it ran in (`_work`), the output,
        each unit's weights as its product took them ((W, False) or its conversion wq and whether that is
        W's transpose), and the random stream's state before the draws where a datapath runs (else None).
        None where the kernels do not take x or the parameters, or a datapath's product met a NaN or made a
        value that is not finite (the layered path's: the draws undone, nothing counted)."""
        work = self._work(plan, x)
        if plan is None or work is None:
            return None
        x = np.asarray(x, np.float64)
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
                plan.refuse(stats, i, FORWARD, (x, wp.T, bp, b["y"], r))
            if bad:
                if start is not None:
                    stream.state = start
                return None
            used_w.append((wp, False) if kept_w else (b["wq"], plan.wq_t[i]))
            h = out
        return work, h, used_w, start

    def step(self, x: np.ndarray, y: np.ndarray, ctx: Context) -> tuple[float, np.ndarray, bool] | None:
        """One training step on the batch (x, y): the loss and the output, and whether the parameters were
        updated (else the gradients wait in the layers for the optimiser's step, as after
        `Model.loss_and_grad`; so too where the loss is not finite). None where the step is not one the
        kernels run (the caller then takes the layered path; nothing was drawn, counted or changed: a
        datapath's product that meets a NaN or makes a value that is not finite hands the step back)."""
        plan = self._plan_of(ctx)
        done = self._forward(plan, x, ctx)
        if done is None:
            return None
        work, z, used_w, start = done
        units, quant, stats = self.units, ctx.quant, work.stats
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
                plan.refuse(stats, i, BACKWARD, (g, b["u"], b["dw"], b["db"]), (wp, gw, bp, gb),  # type: ignore
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
