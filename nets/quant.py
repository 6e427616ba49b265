"""The converter of one training run: random stream, dynamic fixed point groups, counts.

A `Quantizer` turns a tensor into its role's format with `emu.quantize` (a
block-scaled format with `emu.block_encode` along `block_axis`),
drawing a fresh stream key for every stochastic conversion from one seeded
generator (so a run is reproducible from its seed), keeping the radix point of
every dynamic fixed point group (NUMERICS.md section 7, the rules in
`nets.policy.DynamicFixed`: one group per layer, role and parameter tensor for
the parameter roles, one per statistic for batch normalisation's, one per layer
and role for activations, pre-activations and errors), learning where training
steps end (`Quantizer.end_step`), and
counting, per layer and role, the values converted, overflowed and
underflowed. `Quantizer.for_evaluation` gives the converter evaluation
uses: its own seed, the training run's radix points frozen, and (by default)
nearest-even rounding in place of every stochastic conversion. Imports `emu`
and `nets.policy`.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from numba import njit

import emu
from emu import BinaryFormat, TernaryFormat
from emu.block import ScaleGranularity
from emu.checks import check_bool, check_int
from emu.threads import by_pieces

from .args import check_instance
from .policy import OPTIMIZER_ROLES, DynamicFixed, RoleFormat, has_stochastic_ternary, is_block_format

__all__ = ["TENSOR_ROLES", "Counts", "DynamicGroup", "Pieces", "Quantizer", "all_inside", "block_axis",
           "check_quant", "overflows_at", "scale_axis", "sum_pieces", "whole"]

#: the roles stored in a parameter's own layout (a Linear layer's (n_in, n_out)); a label "<role>.<part>"
#: (Adam's "moments.m", "moments.v") counts as its role
_STORED_ROLES = ("grads", "master", "update", "momentum", "moments")

#: The roles that convert several parameter tensors of one layer (a Linear layer's W and b, batch
#: normalisation's gamma and beta): each tensor has its own dynamic fixed point group (`Quantizer.tensor_of`).
#: ``weights`` and ``biases`` convert one tensor each (W, b); batch normalisation names its two statistics
#: (a group each); activations, pre-activations and errors have one group per layer and role.
TENSOR_ROLES = ("grads", "master", "update", "momentum", "moments", "bn_params")


class Pieces(NamedTuple):
    """A float64 array of ``shape`` given by how to make it: ``fill(lo, hi, buf)`` writes its elements
    lo .. hi - 1 (flat, C order) into buf[:hi - lo], for any 0 <= lo < hi <= its size, the same values
    whichever thread calls it. A layer's output given so is converted piece by piece while each piece is in
    the cache, without the whole array (`emu.Converter.stream`), where the conversion allows; `whole`
    makes it.

    >>> p = Pieces((2, 2), lambda lo, hi, buf: np.multiply(np.arange(lo, hi), 0.3, out=buf[:hi - lo]))
    >>> whole(p)
    array([[0. , 0.3],
           [0.6, 0.9]])
    >>> Quantizer()(p, RoleFormat.parse("fx<2,2>"), "add", "activations")
    array([[0.  , 0.25],
           [0.5 , 1.  ]])
    """

    shape: tuple[int, ...]
    fill: Callable[[int, int, np.ndarray], object]


def whole(x: np.ndarray | Pieces) -> np.ndarray:
    """x made (an array passes unchanged), its pieces shared among threads as `emu.Converter.stream`
    shares them."""
    if type(x) is not Pieces:
        return x  # type: ignore[return-value]
    fill, y = x.fill, np.empty(math.prod(x.shape))
    by_pieces(y.size, lambda: lambda lo, hi: fill(lo, hi, y[lo:hi]))
    return y.reshape(x.shape)


def sum_pieces(a: np.ndarray, b: np.ndarray) -> np.ndarray | Pieces:
    """a + b: as `Pieces` where a and b are float64 arrays of one shape (each piece np.add of theirs, so the
    same values), else made at once (broadcasting, other types).

    >>> whole(sum_pieces(np.ones((2, 2)), np.eye(2)))
    array([[2., 1.],
           [1., 2.]])
    """
    if a.shape != b.shape or a.dtype != np.float64 or b.dtype != np.float64:
        return a + b
    af, bf = np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1)
    return Pieces(a.shape, lambda lo, hi, buf: np.add(af[lo:hi], bf[lo:hi], out=buf[:hi - lo]))


@njit(cache=True)
def all_inside(x: np.ndarray, lo: float, hi: float) -> bool:
    """Whether lo <= v <= hi for every v of the flat array x (False at a NaN): whether a conversion to a
    format of range [lo, hi] leaves every value inside it (what the clipped straight-through rule asks).

    >>> all_inside(np.array([0.5, -1.0]), -1.0, 1.0), all_inside(np.array([0.5, np.nan]), -1.0, 1.0)
    (True, False)
    """
    bad = 0
    for i in range(x.size):  # no early exit and no branch: the loop vectorises
        v = x[i]
        bad |= np.int64(v < lo) | np.int64(v > hi) | np.int64(v != v)
    return bad == 0


def block_axis(role: str, ndim: int) -> int:
    """The axis a block-scaled format's blocks run along: the input dimension, the reduction of the forward
    product.

    4-d tensors (convolution weights (c_out, c_in, kh, kw), maps (n, c, h, w)):
    the channels, axis 1 (an attention tensor (batch, heads, tokens, tokens)
    of an imported model is blocked so too, along the heads: give such
    tensors' roles an element format, or let a block-scaled ``fwd_mac`` block
    its operands along its reduction). 3-d (batch, tokens, features) of
    imported sequence models: the features, axis 2, which their Linear and
    MatMul products reduce. 2-d: weights as a Linear layer converts them,
    transposed to (n_out, n_in), activations, pre-activations and errors
    (batch, features): axis 1; a Linear layer's gradients and master weights,
    stored as (n_in, n_out), and the optimiser's update, momentum and moments
    of them: axis 0. 1-d (biases, batch normalisation's parameters): axis 0.

    >>> block_axis("weights", 2), block_axis("grads", 2), block_axis("errors", 4), block_axis("moments.v", 2)
    (1, 0, 1, 0)
    >>> block_axis("activations", 3)
    2
    """
    if ndim == 3:
        return 2
    if ndim >= 4:
        return 1
    if ndim == 2:
        return 0 if role.split(".")[0] in _STORED_ROLES else 1
    return 0


def scale_axis(fmt: object, role: str, ndim: int) -> int:
    """The ``axis`` `emu.block_encode` takes for a block format on a role's tensor: `block_axis`, except
    for a per-channel scaled integer format (``int8_channel``) on a parameter tensor (``weights`` and the
    roles stored like them: gradients, master weights, update, momentum, moments), which takes one scale
    per output unit, as per-channel weight quantisation does: axis 0 of weights as a layer converts them,
    (n_out, n_in) or (c_out, c_in, kh, kw), and of 4-d stored tensors; axis 1 of a Linear layer's stored
    (n_in, n_out) tensors. Activations, pre-activations and errors keep `block_axis` (one scale per
    feature or channel).

    A Linear layer's weights with int8_channel: one scale per output unit, so a unit with small weights
    keeps 8 bits of them beside a unit with large ones (per input row, they shared its scale).

    >>> f = emu.block_format("int8_channel")
    >>> scale_axis(f, "weights", 2), scale_axis(f, "grads", 2), scale_axis(f, "weights", 4)
    (0, 1, 0)
    >>> scale_axis(f, "activations", 2), scale_axis(emu.block_format("mxfp8_e4m3"), "weights", 2)
    (1, 1)
    """
    axis = block_axis(role, ndim)
    per_channel = isinstance(fmt, emu.ScaledIntFormat) and fmt.granularity is ScaleGranularity.CHANNEL
    if not per_channel or role.split(".")[0] not in ("weights", *_STORED_ROLES) or ndim < 2:
        return axis
    return 1 - axis if ndim == 2 else 0


@dataclass(slots=True)
class Counts:
    """Values converted, overflowed and underflowed (rounded to zero) for one layer and role; ``outside``:
    a layer's outputs (pre-activations, activations) in training outside the format's range [min, max]
    before rounding, whose gradient `nets.STE.CLIPPED` zeroes (counted under that rule, where it acts;
    0 under `nets.STE.IDENTITY`). A value within half a step above max that rounds to max under nearest
    rounding is outside but not an overflow."""

    size: int = 0
    overflow: int = 0
    underflow: int = 0
    outside: int = 0

    def add(self, st: emu.QuantStats | emu.BlockStats) -> None:
        """Add one conversion's counts (a block conversion's saturated elements count as overflows)."""
        if type(st) is emu.QuantStats:
            self.add_counts(st.size, st.overflow, st.underflow)
        else:
            self.add_counts(st.size, st.saturated, 0)

    def add_counts(self, size: int, overflow: int, underflow: int) -> None:
        """Add one conversion's counts given as numbers."""
        self.size += size
        self.overflow += overflow
        self.underflow += underflow


@functools.lru_cache(maxsize=1024)
def _prepared(fmt: emu.Format, rounding: emu.Rounding, overflow: emu.Overflow | None) -> emu.Converter:
    """The `emu.Converter` of these settings, made once per process: a converter holds nothing but its
    settings, so every `Quantizer` (a training run's, and each evaluation's) can share it, and making one
    (its checks) costs more than a small conversion."""
    return emu.Converter(fmt, rounding, overflow)


def _warmup_frac_bits(max_abs: float, word_bits: int) -> int:
    """The FL a warm-up that saw largest magnitude ``max_abs`` > 0 sets: WL - IL, IL the smallest integer with
    max_abs < 2^(IL-1), kept within [WL - 1000, 1000].

    >>> _warmup_frac_bits(3.2, 10), _warmup_frac_bits(4.0, 10), _warmup_frac_bits(0.001, 8)
    (7, 6, 16)
    """
    il = math.frexp(max_abs)[1] + 1  # max_abs = f 2^e with 1/2 <= f < 1: 2^(e-1) <= max_abs < 2^e
    return min(max(word_bits - il, word_bits - 1000), 1000)


def overflows_at(x: np.ndarray, fmt: emu.FixedFormat, rounding: emu.Rounding) -> float:
    """How many values of x would overflow converted to ``fmt`` with ``rounding``: the code R(x 2^FL) outside
    [qmin, qmax], as a conversion counts it (NUMERICS.md section 4); under stochastic rounding, the expected
    number (a value with x 2^FL = qmax + f, 0 < f < 1, rounds up past qmax with probability f), so that no
    random bit is drawn. Dynamic fixed point's s2 (`nets.policy.DynamicFixed`).

    <4,4> holds [-8, 7.9375] (codes -128..127). x = 7.96, -8.02, 7.99 give x 2^4 = 127.36, -128.32,
    127.84: nearest rounding overflows only the last (128), floor only the second (-129), and stochastic
    rounding each with probability 0.36, 0.32 and 0.84 (1.52 expected).

    >>> f = emu.FixedFormat(4, 4)
    >>> x = np.array([7.96, -8.02, 7.99, 3.0])
    >>> overflows_at(x, f, emu.Rounding.NEAREST_EVEN), overflows_at(x, f, emu.Rounding.FLOOR)
    (1, 1)
    >>> round(overflows_at(x, f, emu.Rounding.STOCHASTIC), 2)
    1.52
    """
    if rounding != emu.Rounding.STOCHASTIC:
        return int(emu.quantize(x, fmt, rounding, "saturate", return_stats=True)[1].overflow)
    t = x * np.ldexp(1.0, fmt.frac_bits)  # exact (a power of two), or +-inf beyond float64's range
    return float(np.clip(t - fmt.qmax, 0.0, 1.0).sum() + np.clip(fmt.qmin - t, 0.0, 1.0).sum())


@dataclass
class DynamicGroup:
    """The moving radix point of one dynamic fixed point group (the rules: `nets.policy.DynamicFixed`).

    Attributes:
        spec: the group's `DynamicFixed`.
        frac_bits: FL now.
        warming: in its float64 warm-up (it converts nothing and records ``max_abs``).
        max_abs: the largest finite |x| its warm-up has seen.
        seen, overflow, overflow_if_doubled: since the last update, the values converted, those that
            overflowed, and those whose conversion at FL + 1 would overflow (`overflows_at`: under
            stochastic rounding their expected number).
        history: FL after every update (the end of the warm-up included).
        updated_at: the run's step (1 for the first) of every entry of ``history``.

    >>> g = DynamicGroup(DynamicFixed(8, period=2), 4)
    >>> g.observe(np.full(10, 9.0), emu.QuantStats(10, 10, 0, 0)); g.end_step(1); g.frac_bits
    4
    >>> g.end_step(2); g.frac_bits, g.history, g.updated_at
    (3, [3], [2])
    """

    spec: DynamicFixed
    frac_bits: int
    warming: bool = False
    max_abs: float = 0.0
    seen: int = 0
    overflow: int = 0
    overflow_if_doubled: float = 0
    history: list[int] = field(default_factory=list)
    updated_at: list[int] = field(default_factory=list)

    @property
    def fmt(self) -> emu.FixedFormat:
        """The group's current format <WL - FL, FL>."""
        return emu.FixedFormat(self.spec.word_bits - self.frac_bits, self.frac_bits)

    def frozen_copy(self) -> DynamicGroup:
        """A group at this one's radix point and warm-up state, without counts or history (for evaluation)."""
        return DynamicGroup(self.spec, self.frac_bits, self.warming)

    def record(self, x: np.ndarray) -> None:
        """Record the largest finite |x| of one warm-up conversion."""
        a = np.abs(x)
        m = float(np.max(a, initial=0.0))
        if not math.isfinite(m):
            m = float(np.max(a[np.isfinite(a)], initial=0.0))
        self.max_abs = max(self.max_abs, m)

    def observe(self, x: np.ndarray, st: emu.QuantStats,
                rounding: emu.Rounding = emu.Rounding.NEAREST_EVEN) -> None:
        """Count one conversion (its values x, rounded with ``rounding``): its values, its overflows, and
        the values whose conversion at FL + 1 would overflow (`overflows_at`)."""
        self.seen += st.size
        self.overflow += st.overflow
        if self.frac_bits < 1000:  # FL + 1 exists
            wider = emu.FixedFormat(self.spec.word_bits - self.frac_bits - 1, self.frac_bits + 1)
            self.overflow_if_doubled += overflows_at(x, wider, rounding)

    def end_step(self, step: int) -> None:
        """End the run's training step ``step`` (1 for the first): the warm-up ends at step W, and FL moves
        at every step W + k P (k >= 1), as `nets.policy.DynamicFixed` states."""
        w = self.spec.warmup_batches
        if self.warming:
            if step >= w:
                self.warming = False
                if self.max_abs > 0.0:
                    self.frac_bits = _warmup_frac_bits(self.max_abs, self.spec.word_bits)
                self._close(step)
            return
        if step <= w or (step - w) % self.spec.period:
            return
        if self.seen:
            wl, limit = self.spec.word_bits, self.spec.max_overflow_rate
            if self.overflow / self.seen > limit:
                self.frac_bits = max(self.frac_bits - 1, wl - 1000)
            elif self.overflow_if_doubled / self.seen < limit:  # under the maximum (NUMERICS.md section 7)
                self.frac_bits = min(self.frac_bits + 1, 1000)
        self._close(step)

    def _close(self, step: int) -> None:
        self.history.append(self.frac_bits)
        self.updated_at.append(step)
        self.seen = self.overflow = self.overflow_if_doubled = 0


@functools.lru_cache(maxsize=256)
def _deterministic(mac: emu.MAC) -> emu.MAC:
    """``mac`` with its stochastic roundings to nearest even and stochastic binary operands deterministic
    (`Quantizer.datapath` under ``nearest``); ``mac`` itself when nothing in it is stochastic."""
    sr, ne = emu.Rounding.STOCHASTIC, emu.Rounding.NEAREST_EVEN
    fields = {f: ne for f in ("input_rounding", "product_rounding", "output_rounding")
              if getattr(mac, f) == sr}
    for f in ("act", "weight"):
        fmt = getattr(mac, f)
        if isinstance(fmt, BinaryFormat) and fmt.stochastic:
            fields[f] = replace(fmt, stochastic=False)
    return replace(mac, **fields) if fields else mac


_PLAIN_TYPES = (emu.FixedFormat, emu.FloatFormat, emu.Pow2Format)
_PLAIN_OR_NONE = (*_PLAIN_TYPES, type(None))
#: the conversion outputs a `Quantizer` records (`Quantizer.holds`) before it forgets the dead ones (and all,
#: when as many are alive: an output forgotten is converted again when it comes back, to the same values)
HELD_MAX = 1024
#: the labels of conversions on the gradients' side, whose outputs never come back as ``kept_from`` (only
#: parameters and layer outputs do): not recorded, which saves a weak reference per conversion
_UNHELD = frozenset({"errors", "grads", *OPTIMIZER_ROLES, "moments.m", "moments.v"})  # Adam's two labels
#: stochastic ternary weights rounded to nearest: w clipped to [-1, 1] in this format, ties to even (0)
_TERNARY_NEAREST = emu.FixedFormat(2, 0)


class Quantizer:
    """Converts tensors to role formats for one run; keeps its random stream, groups and counts.

    ``nearest=True`` (an evaluation converter, `for_evaluation`) rounds every
    stochastic conversion to nearest even instead: stochastic fixed, float,
    block-scaled and dynamic fixed roles round to nearest even, stochastic binary weights
    become sign(w), stochastic ternary weights become w clipped to [-1, 1]
    rounded to the nearest of -1, 0, 1 (ties to 0). ``frozen=True`` keeps
    every dynamic group's radix point and warm-up state where they are and
    records nothing in them (a group it creates starts at its
    ``init_frac_bits``, without warm-up). ``seed``: an int >= 0, a numpy
    ``SeedSequence`` or ``Generator``; a bad seed or a flag other than True or
    False is refused by name.

    Dynamic fixed point groups (`nets.policy.DynamicFixed`) are keyed
    (layer, role, tensor): ``tensor`` is "" for a role of one group per layer
    and the parameter's name (``"W"``, ``"b"``, ``"gamma"``...) for the
    parameter roles (`TENSOR_ROLES`, `tensor_of`). The training loop calls
    `end_step` after every optimiser step: warm-ups end and radix points move
    only there, so a group's radix point is constant within a step.

    >>> q = Quantizer(seed=0)
    >>> q(np.array([0.3, 7.0]), RoleFormat.parse("fx<2,2>"), "fc1", "weights")
    array([0.25, 1.75])
    >>> q.counts[("fc1", "weights")].overflow
    1
    >>> stochastic = RoleFormat.parse("fx<2,2>", "stochastic")
    >>> Quantizer(nearest=True)(np.array([0.375]), stochastic, "fc1", "weights")
    array([0.5])
    """

    def __init__(self, seed: int | np.random.SeedSequence | np.random.Generator = 0, *, nearest: bool = False,
                 frozen: bool = False) -> None:
        if not isinstance(seed, (np.random.SeedSequence, np.random.Generator)):
            try:
                seed = check_int(seed, "Quantizer", "seed", 0)
            except TypeError:
                raise TypeError(f"Quantizer: seed={seed!r} must be an int >= 0, a numpy SeedSequence or"
                                " Generator") from None
        self.rng = np.random.default_rng(seed)
        self.nearest = check_bool(nearest, "Quantizer", "nearest")
        self.frozen = check_bool(frozen, "Quantizer", "frozen")
        self.counts: dict[tuple[str, str], Counts] = defaultdict(Counts)
        #: the dynamic fixed point groups by (layer, role, tensor)
        self.groups: dict[tuple[str, str, str], DynamicGroup] = {}
        #: training steps ended so far (`end_step`)
        self.step = 0
        #: each layer's parameter tensors (name, shape) in order (`bind_parameters`)
        self.parameters: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        #: conversions this step of same-shaped parameters, by (layer, role, shape) (`tensor_of`)
        self._order: dict[tuple[str, str, tuple[int, ...]], int] = {}
        #: the prepared conversion of each fixed, float or power-of-two role format met, by identity,
        #: and whether it draws random bits
        self._converters: dict[int, tuple[RoleFormat, emu.Converter, bool]] = {}
        #: the outputs of fixed-point conversions still alive, by identity: a weak reference and the format
        #: (`holds`; shared with the evaluations' converters, `for_evaluation`)
        self._held: dict[int, tuple[weakref.ref, emu.FixedFormat]] = {}

    def for_evaluation(self, seed: int | np.random.SeedSequence, nearest: bool = True) -> Quantizer:
        """The converter of one evaluation: its own generator from ``seed`` (this one's stream is never
        drawn from), this run's dynamic radix points frozen (a group still in its warm-up stays there:
        evaluation passes its values in float64, as training does at that point), its own counts, and
        nearest-even rounding in place of stochastic rounding unless ``nearest=False``.

        >>> q = Quantizer(seed=1)
        >>> state = q.rng.bit_generator.state
        >>> e = q.for_evaluation(seed=0, nearest=False)
        >>> _ = e(np.full(4, 0.3), RoleFormat.parse("fx<2,2>", "stochastic"), "fc1", "weights")
        >>> q.rng.bit_generator.state == state, e.frozen, dict(q.counts)
        (True, True, {})
        """
        q = Quantizer(seed, nearest=nearest, frozen=True)
        q.groups = {k: g.frozen_copy() for k, g in self.groups.items()}
        q.parameters = self.parameters
        q.step = self.step
        q._held = self._held
        return q

    def _rounding(self, rf: RoleFormat) -> emu.Rounding:
        """The role's rounding, nearest even for stochastic rounding where this converter is ``nearest``."""
        nearest = self.nearest and rf.rounding == emu.Rounding.STOCHASTIC
        return emu.Rounding.NEAREST_EVEN if nearest else rf.rounding

    def converter(self, rf: RoleFormat) -> tuple[emu.Converter, np.random.Generator | None]:
        """The prepared conversion of a fixed, float or power-of-two role format (made once per format met,
        by identity, with `_rounding`) and the seed its calls take: this run's stream where it rounds
        stochastically."""
        hit = self._converters.get(id(rf))
        if hit is None or hit[0] is not rf:
            rounding = self._rounding(rf)
            hit = self._converters[id(rf)] = (rf, _prepared(rf.fmt, rounding, rf.overflow),  # type: ignore[arg-type]
                                              rounding == emu.Rounding.STOCHASTIC)
        return hit[1], self.rng if hit[2] else None

    def holds(self, a: np.ndarray, fmt: emu.Format) -> bool:
        """Whether ``a`` (the array itself, not a copy or a view) is an output of this converter's
        conversions to the fixed-point format ``fmt`` that is still alive: its values are fmt's. Outputs of
        the gradients' side (`_UNHELD`: errors, gradients, the optimiser's update and state) are not
        recorded.

        >>> q, rf = Quantizer(), RoleFormat.parse("fx<4,4>")
        >>> y = q(np.array([-0.3, 0.71]), rf, "fc1", "preacts")
        >>> q.holds(y, rf.fmt), q.holds(y.copy(), rf.fmt), q.holds(y, emu.get_format("fx<4,5>"))
        (True, False, False)
        """
        entry = self._held.get(id(a))
        return entry is not None and entry[0]() is a and entry[1] == fmt

    def hold(self, a: np.ndarray, fmt: emu.FixedFormat) -> None:
        """Record ``a`` as an output of a conversion to ``fmt`` (`holds`), forgetting the dead ones first
        once `HELD_MAX` are recorded. A caller outside this class records only values a conversion to fmt
        made, in an array it will not write again (`nets.mlpstep`: its fused update's new parameters)."""
        held = self._held
        if len(held) >= HELD_MAX:
            for k in [k for k, (ref, _) in held.items() if ref() is None]:
                del held[k]
            if len(held) >= HELD_MAX:
                held.clear()
        held[id(a)] = (weakref.ref(a), fmt)

    def datapath(self, mac: emu.MAC) -> tuple[emu.MAC, np.random.Generator]:
        """The datapath a product runs under this converter, and the stream its random bits come from
        (`emu.matmul`'s ``seed``: drawn only where the datapath rounds stochastically, so the same seed
        gives the same bits): ``mac`` itself, or, under ``nearest`` (evaluation), its twin with every
        stochastic rounding (input, product, output) to nearest even and stochastic binary operands
        deterministic (a stochastic ternary operand has no such twin: `nets.PrecisionPolicy` refuses it under
        nearest-even evaluation where its evaluations run it, and this raises ValueError where one is run
        anyway, as `nets.Model.predict` or `nets.evaluate` of a policy evaluated in float64 by `train`;
        under ``eval_rounding="policy"`` it draws from the evaluation's own stream).

        >>> m = emu.MAC(act="fx<4,8>", weight="fx<4,8>", acc="fx<10,16>", output="fx<4,6>",
        ...             output_rounding="stochastic")
        >>> str(Quantizer(nearest=True).datapath(m)[0].output_rounding)
        'nearest_even'
        """
        if self.nearest and has_stochastic_ternary(mac):
            raise ValueError(f"evaluation: the datapath [{mac}] has a stochastic ternary operand, which has"
                             " no nearest-even twin (the policy's eval_rounding='nearest_even'); evaluate it"
                             " with eval_rounding='policy' (drawing from eval_seed) or in float64")
        return (_deterministic(mac) if self.nearest else mac), self.rng

    def bind_parameters(self, parameters: Iterable[tuple[str, str, tuple[int, ...]]]) -> None:
        """Name the parameter tensors of every layer: (layer, parameter name, shape) triples, in order.

        `tensor_of` finds the tensor of a parameter role's conversion among
        them; `nets.train.train` binds the model's parameters.
        """
        bound: dict[str, list[tuple[str, tuple[int, ...]]]] = {}
        for layer, name, shape in parameters:
            bound.setdefault(layer, []).append((name, tuple(int(n) for n in shape)))
        self.parameters = bound

    def tensor_of(self, x: np.ndarray, layer: str, role: str, tensor: str | None = None) -> str:
        """The tensor part of the group key of ``x`` converted for ``layer`` and ``role``.

        ``tensor`` if the caller names it. Else "" (one group for the layer
        and role) unless ``role`` is a parameter role (`TENSOR_ROLES`; a label
        "moments.m" counts as "moments"), whose tensor is the bound parameter
        (`bind_parameters`) of ``layer`` with the shape of ``x``: the only
        one, or, where n > 1 parameters share that shape (batch
        normalisation's gamma and beta), the (k mod n)-th of them in order for
        the k-th such conversion (from 0) since the last `end_step`, the order
        in which layers and optimisers convert their parameters; "" if none
        has that shape.

        >>> q = Quantizer()
        >>> q.bind_parameters([("fc1", "W", (3, 2)), ("fc1", "b", (2,)), ("bn", "gamma", (2,)),
        ...                    ("bn", "beta", (2,))])
        >>> q.tensor_of(np.ones(2), "fc1", "grads"), q.tensor_of(np.ones((3, 2)), "fc1", "moments.v")
        ('b', 'W')
        >>> [q.tensor_of(np.ones(2), "bn", "grads") for _ in range(3)]
        ['gamma', 'beta', 'gamma']
        >>> q.tensor_of(np.ones(2), "fc1", "preacts"), q.tensor_of(np.ones(2), "fc1", "grads", tensor="b2")
        ('', 'b2')
        """
        if tensor is not None:
            return tensor
        params = self.parameters.get(layer)
        if not params or role.split(".")[0] not in TENSOR_ROLES:
            return ""
        shape = x.shape
        same = [name for name, s in params if s == shape]
        if len(same) <= 1:
            return same[0] if same else ""
        key = (layer, role, shape)
        k = self._order.get(key, 0)
        self._order[key] = k + 1
        return same[k % len(same)]

    def end_step(self) -> None:
        """End one training step (batch): warm-ups end and radix points move here (`DynamicFixed`).

        Counts the step, starts the order of same-shaped tensors (`tensor_of`)
        afresh and, unless frozen, lets every group end the step. The same
        conversions and steps always give the same radix points.

        >>> q, rf = Quantizer(), RoleFormat(DynamicFixed(8, period=2))
        >>> for step in range(4):
        ...     _ = q(np.full(10, 100.0), rf, "fc1", "grads")
        ...     q.end_step()
        ...     print(q.step, q.groups[("fc1", "grads", "")].frac_bits)
        1 4
        2 3
        3 3
        4 2
        """
        self.step += 1
        self._order.clear()
        if not self.frozen:
            for g in self.groups.values():
                g.end_step(self.step)

    def format_of(self, rf: RoleFormat, layer: str, role: str, tensor: str = "") -> emu.Format | None:
        """The format a role uses now: a dynamic group's current fixed format (None, float64, while it
        warms up); ``tensor`` as in the group key (`tensor_of`)."""
        if isinstance(rf.fmt, DynamicFixed):
            g = self._group(rf.fmt, layer, role, tensor)
            return None if g.warming else g.fmt
        return rf.fmt

    def _group(self, spec: DynamicFixed, layer: str, role: str, tensor: str) -> DynamicGroup:
        key = (layer, role, tensor)
        g = self.groups.get(key)
        if g is None:
            warming = not self.frozen and self.step < spec.warmup_batches
            g = self.groups[key] = DynamicGroup(spec, int(spec.init_frac_bits), warming)  # type: ignore[arg-type]
        return g

    def __call__(self, x: np.ndarray | Pieces, rf: RoleFormat, layer: str, role: str,
                 scale: object = None, *, tensor: str | None = None,
                 kept_from: np.ndarray | None = None) -> np.ndarray:
        """x converted to the role's format (x itself for float64 roles and warming dynamic groups); x as
        `Pieces` is converted piece by piece where a fixed or float format's fast conversion runs it
        (`emu.Converter.stream`: the same values, counts and random bits), else made first.

        ``tensor`` names the parameter tensor of a dynamic group (`tensor_of`).
        ``kept_from``: x = g(kept_from) for an op g that maps every value of a
        fixed-point format to a value of it: the identity or a transpose (a
        parameter's view), ReLU's max(v, 0) (0 is in every fixed format), max
        pooling. When kept_from is an output of this converter's conversions
        (of any rounding; `holds`) to the same fixed format, x is returned as it
        is and counted as converted with nothing overflowing or underflowing:
        what the conversion would give, without its pass over x. A stochastic
        conversion still takes its key from the stream (`emu.Converter.draw`),
        so the random bits of every later conversion are the same either way.
        kept_from must not have been written in place since its conversion.

        >>> q, rf = Quantizer(), RoleFormat.parse("fx<4,4>")
        >>> y = q(np.array([-0.3, 0.71]), rf, "bn", "activations")
        >>> z = q(np.maximum(y, 0.0), rf, "relu", "activations", kept_from=y)
        >>> z.tolist(), q.counts[("relu", "activations")].size
        ([0.0, 0.6875], 2)
        """
        fmt = rf.fmt
        if fmt is None:
            return whole(x)
        if type(fmt) in _PLAIN_TYPES:  # the common case: a fixed, float or power-of-two role
            conv, seed = self.converter(rf)
            counts = self.counts[(layer, role)]
            if kept_from is not None and self.holds(kept_from, fmt):
                conv.draw(seed)  # the key the conversion would take
                x = whole(x)
                counts.add_counts(x.size, 0, 0)
                self.hold(x, fmt)
                return x
            if type(x) is Pieces:
                n = math.prod(x.shape)
                done = conv.stream(n, x.fill, seed)
                if done is not None:
                    done = (done[0].reshape(x.shape), *done[1:])
                    x = done[0]  # for the count of its size; its values are not read
                else:  # no fast kernel (power of two), or a NaN the format lacks (refused as usual): made
                    x = whole(x)
            else:
                done = conv.values(x, seed)  # the fast path without a stats object (most conversions)
            if done is not None:
                counts.add_counts(x.size, done[1], done[2])
                q = done[0]
            else:
                q, st = conv(x, seed=seed, return_stats=True)
                counts.add(st)
            if type(fmt) is emu.FixedFormat and role not in _UNHELD:
                self.hold(q, fmt)
            return q
        x = whole(x)
        rounding = self._rounding(rf)
        group = None
        if isinstance(fmt, DynamicFixed):
            group = self._group(fmt, layer, role, self.tensor_of(x, layer, role, tensor))
            if group.warming:
                if not self.frozen:
                    group.record(x)
                return x
            fmt = group.fmt
        if is_block_format(fmt):
            axis = scale_axis(fmt, role, x.ndim)
            seed = self.rng if rounding == emu.Rounding.STOCHASTIC else None
            q, st = emu.block_quantize(x, fmt, axis, rounding=rounding, seed=seed, return_stats=True)
            self.counts[(layer, role)].add(st)
            return q
        if self.nearest and isinstance(fmt, BinaryFormat) and fmt.stochastic:
            fmt = replace(fmt, stochastic=False)
        if self.nearest and isinstance(fmt, TernaryFormat) and fmt.method == "stochastic":
            q, st = emu.quantize(np.clip(x, -1.0, 1.0), _TERNARY_NEAREST, emu.Rounding.NEAREST_EVEN,
                                 return_stats=True)
        elif isinstance(fmt, (BinaryFormat, TernaryFormat)):
            stochastic = (isinstance(fmt, BinaryFormat) and fmt.stochastic) or (
                isinstance(fmt, TernaryFormat) and fmt.method == "stochastic")
            seed = self.rng if stochastic else None
            q, st = emu.quantize(x, fmt, seed=seed, scale=scale, return_stats=True)
        else:
            seed = self.rng if rounding == emu.Rounding.STOCHASTIC else None
            q, st = emu.quantize(x, fmt, rounding, rf.overflow, seed=seed, return_stats=True)
        self.counts[(layer, role)].add(st)
        if group is not None and not self.frozen:
            group.observe(x, st, rounding)
        return q

    def update(self, w: np.ndarray, g: np.ndarray, a: float, update: RoleFormat, master: RoleFormat,
               layer: str) -> tuple[np.ndarray, int, int] | None:
        """An optimiser's new value of parameter w, Q_master(w + Q_update(a g)), in one call
        (`emu.rounded_update`): the values, counts and random bits of the two conversions this converter
        makes in turn (counted under (layer, "update") and (layer, "master")), with the updates attempted
        and zeroed; None where a role's format is not a fixed, float or power-of-two one (the caller then
        converts each)."""
        fu, fm = update.fmt, master.fmt
        if type(fu) not in _PLAIN_OR_NONE or type(fm) not in _PLAIN_OR_NONE:
            return None
        r = emu.rounded_update(w, g, a, None if fu is None else self.converter(update)[0],
                               None if fm is None else self.converter(master)[0], seed=self.rng)
        if r.inner is not None:
            self.counts[(layer, "update")].add(r.inner)
        if r.outer is not None:
            self.counts[(layer, "master")].add(r.outer)
            if type(fm) is emu.FixedFormat:
                self.hold(r.values, fm)
        return r.values, r.attempted, r.zeroed

    def radix_history(self) -> dict[str, list[int]]:
        """The fraction lengths each dynamic group chose at every update (its warm-up's end included), by
        ``"layer.role"`` or ``"layer.role.tensor"`` (e.g. ``"fc1.grads.b"``)."""
        return {".".join(p for p in key if p): list(g.history) for key, g in self.groups.items()}


def check_quant(quant: object, func: str) -> None:
    """Refuse a ``quant=`` (the converter whose radix points an evaluation borrows) that is neither None
    nor a `Quantizer`, naming ``func``."""
    check_instance(quant, (Quantizer, type(None)), func, "quant",
                   "None or the training run's nets.Quantizer (History.quantizer)")
