"""Matplotlib figures of costs: energy/area breakdown bars and speedup against bits."""

from __future__ import annotations

from collections.abc import Sequence

import emu

from .cost import Cost
from .mac import cost
from .network import FP32_MAC

__all__ = ["breakdown_bars", "speedup_vs_bits"]


def breakdown_bars(costs: Sequence[Cost], ax_energy=None, ax_area=None):
    """Stacked bars of each cost's parts: energy per MAC (left) and area (right). Returns the figure."""
    import matplotlib.pyplot as plt

    if ax_energy is None or ax_area is None:
        fig, (ax_energy, ax_area) = plt.subplots(1, 2, figsize=(11, 4))
    else:
        fig = ax_energy.figure
    parts = list(dict.fromkeys(p for c in costs for p in c.breakdown))
    labels = [c.name.replace("MAC ", "").split(" @ ")[0] for c in costs]
    for ax, attr, unit in ((ax_energy, "energy_pj", "energy per MAC (pJ)"),
                           (ax_area, "area_um2", "area (um^2)")):
        bottom = [0.0] * len(costs)
        for p in parts:
            vals = [getattr(c.breakdown[p], attr) if p in c.breakdown else 0.0 for c in costs]
            ax.bar(range(len(costs)), vals, bottom=bottom, label=p)
            bottom = [b + v for b, v in zip(bottom, vals, strict=False)]
        ax.set_xticks(range(len(costs)), labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(unit)
    ax_energy.legend(fontsize=8)
    fig.tight_layout()
    return fig


def speedup_vs_bits(bits: Sequence[int] = tuple(range(2, 33, 2)), tech: str = "horowitz45", ax=None):
    """Speedup over an fp32 MAC at equal area and energy saving of fixed b x b MACs (a wrapping
    accumulator of 2b + 8 bits, at most 62) and of floats (E = b // 3 clamped to 4..8, the rest
    mantissa, accumulating in their own format), against word length."""
    import matplotlib.pyplot as plt

    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    base = cost(FP32_MAC, tech)
    xb = [b for b in bits if b <= 31]  # the exact product of two b-bit words needs 2b <= 62 bits
    fx = [cost(emu.MAC(act=emu.FixedFormat(1, b - 1), weight=emu.FixedFormat(1, b - 1),
                       acc=emu.FixedFormat(min(10, 64 - 2 * b), 2 * b - 2), acc_overflow="wrap"), tech)
          for b in xb]
    ax.plot(xb, [base.area_um2 / c.area_um2 for c in fx], "o-", label="fixed: equal area")
    ax.plot(xb, [base.energy_pj / c.energy_pj for c in fx], "s--", label="fixed: energy saving")
    fb = [b for b in bits if b >= 8]
    fl = [cost(emu.MAC(act=f, weight=f, acc=f), tech)
          for f in (emu.FloatFormat(min(8, max(4, b // 3)), b - 1 - min(8, max(4, b // 3))) for b in fb)]
    ax.plot(fb, [base.area_um2 / c.area_um2 for c in fl], "^-", label="float: equal area")
    ax.plot(fb, [base.energy_pj / c.energy_pj for c in fl], "v--", label="float: energy saving")
    ax.set_yscale("log")
    ax.set_xlabel("word length (bits)")
    ax.set_ylabel(f"x over fp32 MAC ({tech})")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig or ax.figure
