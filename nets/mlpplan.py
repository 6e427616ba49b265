"""The plan of `nets.mlpstep.MLPStep` under one policy (`Plan`): each unit's conversions and datapaths as
the tables `nets.mlpkernels` reads, the keys' positions in the order the layered path draws them, the counts'
grouping by role, the buffers by batch size (`Work`); and where a run's counts go (`Tally`).

Imports numpy, `emu` and nets' context, layers and mlpkernels.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

import emu
from emu.datapath import fixed_kernel_args, fp32_kernel_args, fp32_layout, in_fp32
from emu.update import COPY_KIND, FIXED_KINDS, FLOAT_KIND

from .context import Context
from .layers import Linear, ReLU
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
    group_sums,
)

__all__ = ["BACKWARD", "FORWARD", "UPDATE", "Conv", "Plan", "Shape", "Tally", "Unit", "Work", "conversion"]

FORWARD, BACKWARD, UPDATE = (IN, W, B, PRE, ACT), (E, RE, GW, GB), (UWI, UWO, UBI, UBO)
#: a fixed-point datapath's product of this many MACs or more `emu.matmul` runs on faster kernels than the
#: one-call kernel the step runs (16-bit lanes, exact sums; the same values): the layered path takes it
FIXED_MAX = 1 << 18


class Conv(NamedTuple):
    """A conversion a kernel makes: its format (None: float64, the value passes), its converter (for a
    refusal, raised as the layer's conversion raises it), whether it draws a key, the key of the counts it
    adds to (`nets.quant.Quantizer.counts`)."""

    fmt: emu.FixedFormat | emu.FloatFormat | None
    conv: emu.Converter | None
    draws: bool
    counts: Any


class Unit(NamedTuple):
    """A Linear layer and the ReLU after it (or None)."""

    linear: Linear
    relu: ReLU | None


class Shape(NamedTuple):
    """What a plan keeps of a unit: its Linear layer's name and sizes, and whether a ReLU follows."""

    name: str
    n_in: int
    n_out: int
    relu: bool


def conversion(ctx: Context, layer: Any, role: str, boundary: bool = False, optimiser: bool = False,
               floats: bool = False) -> Conv | None:
    """The conversion of ``role`` at ``layer`` under ``ctx``, where a kernel makes it: a fixed-point
    format with a fast conversion that refuses NaN; with ``floats`` (values that reach only datapaths and
    the optimiser's update, not float64 products) or for an ``optimiser`` role (``update``, ``master``),
    also a float format with a fast conversion that draws nothing, or none (the value passes: a `Conv`
    without a format, not counted); else None. An optimiser role is the layer's policy's, whatever the
    granularity."""
    rf = getattr(ctx.policy.for_layer(layer.name), role) if optimiser else ctx.role_plan(layer, role,
                                                                                          boundary).rf
    if rf is None or rf.fmt is None:
        return Conv(None, None, False, None) if floats or optimiser else None
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
    return Conv(rf.fmt, conv, seed is not None, (layer.name, role))


def _largest_code(f: emu.FixedFormat) -> int:
    """The largest magnitude of a code of f."""
    return max(-f.qmin, f.qmax)


class Work(NamedTuple):
    """A plan's steps at one batch size: each unit's buffers (by name) and the arguments of its kernel calls
    that stay the same from step to step (``fwd``, ``bwd``); the step's key and count tables; the values
    each of the plan's counted roles converts in a step (`Plan.roles`); and the MACs of each datapath's
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


class Plan:
    """What the step does under one policy (the same for every model of the same layers and every context
    of the policy, so shared by them: `nets.mlpstep` keeps them): each unit's conversions (a `Conv` or None
    by row), their kernel tables, the datapaths' tables (`nets.mlpkernels`; tables of size 0 where the
    products run in float64), whether the update is fused (else the optimiser steps itself), the positions
    of the keys in the order the layered path draws them, and the buffers by batch size (`work`)."""

    def __init__(self, units: list[Unit], convs: list[list[Conv | None]], fused: bool,
                 macs: list[tuple[emu.MAC | None, ...]] | None, ctx: Context) -> None:
        self.units = [Shape(lin.name, lin.n_in, lin.n_out, relu is not None) for lin, relu in units]
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
        self.forward_keys = self._positions([(i, r) for i in range(n_units) for r in FORWARD])
        self.backward_keys = self._positions([(i, r) for i in down for r in BACKWARD])
        self.after_keys = np.concatenate([self.backward_keys, self._positions(
            [(i, r) for i in range(n_units) for r in UPDATE])])
        self.draws = bool(len(self.forward_keys) or len(self.after_keys))  # some conversion draws a key
        self._groups()
        self._work: dict[int, Work | None] = {}

    def _datapath_tables(self, macs: list[tuple[emu.MAC | None, ...]]) -> tuple[np.ndarray, ...]:
        """The datapaths' tables of the kernels (`nets.mlpkernels`), by unit and product: the binary32
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
        format already, which its conversion leaves as they are (`nets.mlpkernels`): the output of a
        conversion to that format (the policy asks as much of a role that feeds a datapath), the bias where
        its format's values are binary32 values, and the zero start values of the backward products (a
        fixed-point datapath's kernel converts every operand)."""
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

    def work(self, n: int) -> Work | None:
        """The buffers of a batch of n rows, or None where a float64 product could leave its exact range (a
        code of one operand times a code of the other's, summed over the product's length, at 2^53 or
        beyond), a binary32 datapath's product is large enough to repay threads (`fp32_layout`) or a
        fixed-point one's has `FIXED_MAX` MACs or more (the layered path runs those on faster kernels, with
        the same values)."""
        if n in self._work:
            return self._work[n]
        if self.has_macs:
            kinds = self.macs[3]
            big = {FP32: lambda mkn: fp32_layout(*mkn)[1], FIXED: lambda mkn: math.prod(mkn) >= FIXED_MAX}
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

    def _buffers(self, n: int) -> Work:
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
        counted = self.role_of >= 0
        by_role = np.zeros(len(self.roles), np.int64)
        np.add.at(by_role, self.role_of[counted], sizes[counted])
        return Work(bufs, fwd, bwd, keys, stats, by_role.tolist(), macs)

    def _groups(self) -> None:
        """`roles`, the keys of the counted roles in the order the layered path first counts them (the
        forward's, the first `n_forward`; the backward's; then from `n_updating` on the update's), and the
        groups of the table's rows (flat) the counts are summed in (`nets.mlpkernels.group_sums`):
        `role_of`, the role a row's conversion adds to (-1: none), and `extra_of`, the two sums after the
        roles', of the updates attempted and zeroed (the update's inner and outer rows; -1: neither)."""
        n_units = len(self.convs)
        order = [(i, r) for i in range(n_units) for r in FORWARD]
        order += [(i, r) for i in range(n_units - 1, -1, -1) for r in BACKWARD]
        order += [(i, r) for i in range(n_units) for r in UPDATE]
        self.roles: list[tuple[str, str]] = []
        self.n_updating = self.n_forward = 0
        where = []
        for i, r in order:
            c = self.convs[i][r]
            if c is not None and c.fmt is not None:
                if c.counts not in self.roles:
                    self.roles.append(c.counts)
                    self.n_updating += r not in UPDATE
                    self.n_forward += r in FORWARD
                where.append((self.roles.index(c.counts), i * ROWS + r))
        m = len(self.roles)
        self.role_of = np.full(n_units * ROWS, -1, np.int64)
        self.extra_of = np.full(n_units * ROWS, -1, np.int64)
        for k, col in where:
            self.role_of[col] = k
        for col in range(0, n_units * ROWS, ROWS):
            self.extra_of[col + UWI] = self.extra_of[col + UBI] = m
            self.extra_of[col + UWO] = self.extra_of[col + UBO] = m + 1

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


class Tally:
    """Where the steps of a plan under one context add their counts: the context's converter's role counts
    (fetched, so made, in the order the layered path first makes them) and its MAC counts."""

    def __init__(self, plan: Plan, ctx: Context) -> None:
        self.plan, self.ctx, self.counts = plan, ctx, ctx.quant.counts
        self._counts: list[Any] = []
        self._sums = np.zeros((len(plan.roles) + 2, 4), np.int64)

    def add(self, work: Work, updated: bool, forward: bool = False) -> tuple[int, int]:
        """Add a step's counts (`Work.stats`) to the roles' counts (the update's only where ``updated``,
        the forward's alone with ``forward``); returns the updates attempted and zeroed (0, 0 without the
        update)."""
        plan = self.plan
        group_sums(plan.role_of, plan.extra_of, work.stats, self._sums)
        *tot, attempted, zeroed = self._sums.tolist()
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
