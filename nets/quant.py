"""The converter of one training run: random stream, dynamic fixed point groups, counts.

A `Quantizer` turns a tensor into its role's format with `emu.quantize` (a
block-scaled format with `emu.block_encode` along `block_axis`),
drawing a fresh stream key for every stochastic conversion from one seeded
generator (so a run is reproducible from its seed), keeping the radix point of
every dynamic fixed point group (one per layer and role, NUMERICS.md
section 7) and counting, per layer and role, the values converted, overflowed
and underflowed. Imports `emu` and `nets.policy`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

import emu
from emu import BinaryFormat, TernaryFormat

from .policy import DynamicFixed, RoleFormat, is_block_format

__all__ = ["Counts", "DynamicGroup", "Quantizer", "block_axis"]

_STORED_ROLES = ("grads", "master")


def block_axis(role: str, ndim: int) -> int:
    """The axis a block-scaled format's blocks run along: the input dimension, the reduction of the forward
    product.

    4-d tensors (convolution weights (c_out, c_in, kh, kw), maps (n, c, h, w)):
    the channels, axis 1. 2-d: weights as a Linear layer converts them,
    transposed to (n_out, n_in), activations, pre-activations and errors
    (batch, features): axis 1; a Linear layer's gradients and master weights,
    stored as (n_in, n_out): axis 0. 1-d (biases): axis 0.

    >>> block_axis("weights", 2), block_axis("grads", 2), block_axis("errors", 4)
    (1, 0, 1)
    """
    if ndim >= 3:
        return 1
    if ndim == 2:
        return 0 if role in _STORED_ROLES else 1
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


class Quantizer:
    """Converts tensors to role formats for one run; keeps its random stream, groups and counts.

    >>> q = Quantizer(seed=0)
    >>> q(np.array([0.3, 7.0]), RoleFormat.parse("fx<2,2>"), "fc1", "weights")
    array([0.25, 1.75])
    >>> q.counts[("fc1", "weights")].overflow
    1
    """

    def __init__(self, seed: int | np.random.SeedSequence = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.counts: dict[tuple[str, str], Counts] = defaultdict(Counts)
        self.groups: dict[tuple[str, str], DynamicGroup] = {}
        #: the prepared conversion of each fixed, float or power-of-two role format met, by identity,
        #: and whether it rounds stochastically
        self._converters: dict[int, tuple[RoleFormat, emu.Converter, bool]] = {}

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
        if type(fmt) in _PLAIN_TYPES:  # the common case: a fixed, float or power-of-two role
            hit = self._converters.get(id(rf))
            if hit is None or hit[0] is not rf:
                hit = self._converters[id(rf)] = (rf, emu.Converter(fmt, rf.rounding, rf.overflow),
                                                  rf.rounding == emu.Rounding.STOCHASTIC)
            q, st = hit[1](x, seed=self.rng if hit[2] else None, return_stats=True)
            self.counts[(layer, role)].add(st)
            return q
        fmt = self.format_of(rf, layer, role)
        stochastic = rf.rounding == emu.Rounding.STOCHASTIC or (
            isinstance(fmt, BinaryFormat) and fmt.stochastic) or (
            isinstance(fmt, TernaryFormat) and fmt.method == "stochastic")
        seed = self.rng if stochastic else None
        if is_block_format(fmt):
            axis = block_axis(role, x.ndim)
            scales, codes, st = emu.block_encode(x, fmt, axis, return_stats=True)
            self.counts[(layer, role)].add(st)
            return emu.block_decode(scales, codes, fmt, axis)
        if isinstance(fmt, (BinaryFormat, TernaryFormat)):
            q, st = emu.quantize(x, fmt, seed=seed, scale=scale, return_stats=True)
        else:
            q, st = emu.quantize(x, fmt, rf.rounding, rf.overflow, seed=seed, return_stats=True)
        self.counts[(layer, role)].add(st)
        if isinstance(rf.fmt, DynamicFixed):
            self.groups[(layer, role)].observe(x, st)
        return q

    def radix_history(self) -> dict[str, list[int]]:
        """The fraction lengths each dynamic group chose after every update."""
        return {f"{layer}.{role}": list(g.history) for (layer, role), g in self.groups.items()}
