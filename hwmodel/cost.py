"""The `Cost` value: energy, area and delay of a circuit, its sources and its parts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["Cost"]


@dataclass(frozen=True)
class Cost:
    """Energy per operation (pJ), area (um^2), delay (gate levels) and where each number comes from.

    ``breakdown`` maps part names ("multiplier", "accumulator", ...) to the
    parts' own `Cost`; the whole is the sum of its parts. ``sources`` lists,
    for every number, the table entry or the formula it comes from.

    >>> a = Cost("x", 0.2, 282.0, 15, ("table",)); b = Cost("y", 0.1, 137.0, 7, ("table",))
    >>> s = Cost.total("mac", {"multiplier": a, "accumulator": b})
    >>> (round(s.energy_pj, 3), s.area_um2, s.delay)
    (0.3, 419.0, 22)
    """

    name: str
    energy_pj: float
    area_um2: float
    delay: int = 0
    sources: tuple[str, ...] = ()
    breakdown: Mapping[str, Cost] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "breakdown", MappingProxyType(dict(self.breakdown)))

    @classmethod
    def total(cls, name: str, parts: Mapping[str, Cost], delay: int | None = None) -> Cost:
        """The sum of ``parts`` (delay: the parts in series unless given)."""
        srcs: list[str] = []
        for p in parts.values():
            srcs += [s for s in p.sources if s not in srcs]
        return cls(name, sum(p.energy_pj for p in parts.values()), sum(p.area_um2 for p in parts.values()),
                   sum(p.delay for p in parts.values()) if delay is None else delay, tuple(srcs), parts)

    def scaled(self, energy: float = 1.0, area: float = 1.0, name: str | None = None, note: str = "") -> Cost:
        """This cost with energy and area multiplied (e.g. amortised over K MACs)."""
        return Cost(name or self.name, self.energy_pj * energy, self.area_um2 * area, self.delay,
                    self.sources + ((note,) if note else ()),
                    {k: v.scaled(energy, area) for k, v in self.breakdown.items()})

    def table(self) -> str:
        """The breakdown as a text table."""
        rows = [f"{self.name}", f"  {'part':<14} {'energy_pj':>10} {'area_um2':>10} {'levels':>6}  what"]
        for k, v in self.breakdown.items():
            rows.append(f"  {k:<14} {v.energy_pj:>10.4g} {v.area_um2:>10.4g} {v.delay:>6d}  {v.name}")
        rows.append(f"  {'total':<14} {self.energy_pj:>10.4g} {self.area_um2:>10.4g} {self.delay:>6d}")
        return "\n".join(rows)

    def __str__(self) -> str:
        area = "n/a" if math.isnan(self.area_um2) else f"{self.area_um2:.4g} um^2"
        return f"{self.name}: {self.energy_pj:.4g} pJ, {area}, {self.delay} gate levels"
