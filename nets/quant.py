"""The converter of one training run: random stream, dynamic fixed point groups, counts.

A `Quantizer` turns a tensor into its role's format with `emu.quantize` (a
block-scaled format with `emu.block_encode` along `block_axis`),
drawing a fresh stream key for every stochastic conversion from one seeded
generator (so a run is reproducible from its seed), keeping the radix point of
every dynamic fixed point group (one per layer and role, NUMERICS.md
section 7) and counting, per layer and role, the values converted, overflowed
and underflowed. `Quantizer.for_evaluation` gives the converter evaluation
uses: its own seed, the training run's radix points frozen, and (by default)
nearest-even rounding in place of every stochastic conversion. Imports `emu`
and `nets.policy`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np

import emu
from emu import BinaryFormat, TernaryFormat

from .policy import DynamicFixed, RoleFormat, is_block_format

__all__ = ["Counts", "DynamicGroup", "Quantizer", "block_axis"]

#: the roles stored in a parameter's own layout (a Linear layer's (n_in, n_out)); a label "<role>.<part>"
#: (Adam's "moments.m", "moments.v") counts as its role
_STORED_ROLES = ("grads", "master", "update", "momentum", "moments")


def block_axis(role: str, ndim: int) -> int:
    """The axis a block-scaled format's blocks run along: the input dimension, the reduction of the forward
    product.

    4-d tensors (convolution weights (c_out, c_in, kh, kw), maps (n, c, h, w)):
    the channels, axis 1. 2-d: weights as a Linear layer converts them,
    transposed to (n_out, n_in), activations, pre-activations and errors
    (batch, features): axis 1; a Linear layer's gradients and master weights,
    stored as (n_in, n_out), and the optimiser's update, momentum and moments
    of them: axis 0. 1-d (biases, batch normalisation's parameters): axis 0.

    >>> block_axis("weights", 2), block_axis("grads", 2), block_axis("errors", 4), block_axis("moments.v", 2)
    (1, 0, 1, 0)
    """
    if ndim >= 3:
        return 1
    if ndim == 2:
        return 0 if role.split(".")[0] in _STORED_ROLES else 1
    return 0


@dataclass
class Counts:
    """Values converted, overflowed and underflowed (rounded to zero) for one layer and role."""

    size: int = 0
    overflow: int = 0
    underflow: int = 0

    def add(self, st: emu.QuantStats | emu.BlockStats) -> None:
        """Add one conversion's counts (a block conversion's saturated elements count as overflows)."""
        self.size += st.size
        if type(st) is emu.QuantStats:
            self.overflow += st.overflow
            self.underflow += st.underflow
        else:
            self.overflow += st.saturated


@dataclass
class DynamicGroup:
    """The moving radix point of one dynamic fixed point group."""

    spec: DynamicFixed
    frac_bits: int
    seen: int = 0
    overflow: int = 0
    overflow_if_doubled: int = 0
    calls: int = 0
    history: list[int] = field(default_factory=list)

    @property
    def fmt(self) -> emu.FixedFormat:
        """The group's current format <WL - FL, FL>."""
        return emu.FixedFormat(self.spec.word_bits - self.frac_bits, self.frac_bits)

    def frozen_copy(self) -> DynamicGroup:
        """A group at this one's radix point, with no counts and no history (for evaluation)."""
        return DynamicGroup(self.spec, self.frac_bits)

    def observe(self, x: np.ndarray, st: emu.QuantStats) -> None:
        """Count one conversion and move the radix point every ``period`` conversions."""
        f = self.fmt
        self.seen += st.size
        self.overflow += st.overflow
        self.overflow_if_doubled += int(np.count_nonzero((2 * x > f.max) | (2 * x < f.min)))
        self.calls += 1
        if self.calls % self.spec.period:
            return
        rate = self.overflow / self.seen if self.seen else 0.0
        rate2 = self.overflow_if_doubled / self.seen if self.seen else 0.0
        wl = self.spec.word_bits
        fl = self.frac_bits
        if rate > self.spec.max_overflow_rate and fl - 1 >= -1000 and wl - (fl - 1) <= 1000:
            self.frac_bits -= 1
        elif rate2 <= self.spec.max_overflow_rate and self.frac_bits + 1 <= 1000:
            self.frac_bits += 1
        self.history.append(self.frac_bits)
        self.seen = self.overflow = self.overflow_if_doubled = 0


_PLAIN_TYPES = (emu.FixedFormat, emu.FloatFormat, emu.Pow2Format)
#: stochastic ternary weights rounded to nearest: w clipped to [-1, 1] in this format, ties to even (0)
_TERNARY_NEAREST = emu.FixedFormat(2, 0)


class Quantizer:
    """Converts tensors to role formats for one run; keeps its random stream, groups and counts.

    ``nearest=True`` (an evaluation converter, `for_evaluation`) rounds every
    stochastic conversion to nearest even instead: stochastic fixed, float
    and dynamic fixed roles round to nearest even, stochastic binary weights
    become sign(w), stochastic ternary weights become w clipped to [-1, 1]
    rounded to the nearest of -1, 0, 1 (ties to 0). ``frozen=True`` keeps
    every dynamic group's radix point where it is.

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
        self.rng = np.random.default_rng(seed)
        self.nearest = bool(nearest)
        self.frozen = bool(frozen)
        self.counts: dict[tuple[str, str], Counts] = defaultdict(Counts)
        self.groups: dict[tuple[str, str], DynamicGroup] = {}
        #: the prepared conversion of each fixed, float or power-of-two role format met, by identity,
        #: and whether it draws random bits
        self._converters: dict[int, tuple[RoleFormat, emu.Converter, bool]] = {}

    def for_evaluation(self, seed: int | np.random.SeedSequence, nearest: bool = True) -> Quantizer:
        """The converter of one evaluation: its own generator from ``seed`` (this one's stream is never
        drawn from), this run's dynamic radix points frozen, its own counts, and nearest-even rounding
        in place of stochastic rounding unless ``nearest=False``.

        >>> q = Quantizer(seed=1)
        >>> state = q.rng.bit_generator.state
        >>> e = q.for_evaluation(seed=0, nearest=False)
        >>> _ = e(np.full(4, 0.3), RoleFormat.parse("fx<2,2>", "stochastic"), "fc1", "weights")
        >>> q.rng.bit_generator.state == state, e.frozen, dict(q.counts)
        (True, True, {})
        """
        q = Quantizer(seed, nearest=nearest, frozen=True)
        q.groups = {k: g.frozen_copy() for k, g in self.groups.items()}
        return q

    def format_of(self, rf: RoleFormat, layer: str, role: str) -> emu.Format | None:
        """The format a role uses now (a dynamic group's current fixed format)."""
        if isinstance(rf.fmt, DynamicFixed):
            return self._group(rf.fmt, layer, role).fmt
        return rf.fmt

    def _group(self, spec: DynamicFixed, layer: str, role: str) -> DynamicGroup:
        key = (layer, role)
        if key not in self.groups:
            self.groups[key] = DynamicGroup(spec, int(spec.init_frac_bits))  # type: ignore[arg-type]
        return self.groups[key]

    def __call__(self, x: np.ndarray, rf: RoleFormat, layer: str, role: str,
                 scale: object = None) -> np.ndarray:
        """x converted to the role's format (x itself for float64 roles)."""
        fmt = rf.fmt
        if fmt is None:
            return x
        rounding = rf.rounding
        if self.nearest and rounding == emu.Rounding.STOCHASTIC:
            rounding = emu.Rounding.NEAREST_EVEN
        if type(fmt) in _PLAIN_TYPES:  # the common case: a fixed, float or power-of-two role
            hit = self._converters.get(id(rf))
            if hit is None or hit[0] is not rf:
                hit = self._converters[id(rf)] = (rf, emu.Converter(fmt, rounding, rf.overflow),
                                                  rounding == emu.Rounding.STOCHASTIC)
            q, st = hit[1](x, seed=self.rng if hit[2] else None, return_stats=True)
            self.counts[(layer, role)].add(st)
            return q
        fmt = self.format_of(rf, layer, role)
        if is_block_format(fmt):
            axis = block_axis(role, x.ndim)
            scales, codes, st = emu.block_encode(x, fmt, axis, return_stats=True)
            self.counts[(layer, role)].add(st)
            return emu.block_decode(scales, codes, fmt, axis)
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
        if isinstance(rf.fmt, DynamicFixed) and not self.frozen:
            self.groups[(layer, role)].observe(x, st)
        return q

    def radix_history(self) -> dict[str, list[int]]:
        """The fraction lengths each dynamic group chose after every update."""
        return {f"{layer}.{role}": list(g.history) for (layer, role), g in self.groups.items()}
