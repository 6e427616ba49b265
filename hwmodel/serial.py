"""Bit-serial datapaths (Stripes: Judd et al., MICRO 2016): time proportional to precision.

A bit-serial inner-product unit takes the activations one bit per cycle
(weights in parallel): each cycle ANDs one activation bit with every bit of
the weight, adds the partial product into the accumulator and shifts. A
p-bit activation takes p cycles where a 16-bit bit-parallel unit takes one
16-bit multiply, so Stripes' time relative to the bit-parallel baseline is
p / 16 and its speedup 16 / p — per layer, with each layer's own p.

`bit_serial_cost(p, weight_bits, acc_bits)`: per MAC, p cycles of a
weight_bits AND row plus an adder of the accumulator's width (with its
register); the area is one such lane. `stripes_speedup(macs, precisions)`:
sum(macs) x 16 / sum(macs x p) over the layers.

>>> round(stripes_speedup([100, 300], [8, 16], baseline_bits=16), 3)
1.143
"""

from __future__ import annotations

from collections.abc import Sequence

from emu.checks import check_int

from .arith import int_adder, logic, register
from .cost import Cost
from .gates import Cells
from .tech import TechTable

__all__ = ["bit_serial_cost", "stripes_speedup"]


def bit_serial_cost(p: int, weight_bits: int, acc_bits: int, tech: str | TechTable = "horowitz45") -> Cost:
    """Energy per MAC (p cycles), area of one lane and delay per cycle of a bit-serial MAC.

    Parts: ``and_row`` (weight_bits AND2 per cycle), ``accumulator`` (an
    acc_bits adder per cycle, shift by wiring) and ``register``; energies are
    per cycle x p. ``delay`` is the gate levels of one cycle; the MAC takes p cycles.
    """
    p = check_int(p, "bit_serial_cost", "p", 1, 64)
    weight_bits = check_int(weight_bits, "bit_serial_cost", "weight_bits", 1, 64)
    acc_bits = check_int(acc_bits, "bit_serial_cost", "acc_bits", 1, 256)
    and_row = logic(Cells(and2=weight_bits, levels=1), tech, f"{weight_bits}-bit AND row")
    acc = int_adder(acc_bits, tech)
    reg = register(acc_bits, tech)
    parts = {name: c.scaled(energy=p, note=f"x {p} cycles (one per activation bit)")
             for name, c in (("and_row", and_row), ("accumulator", acc), ("register", reg))}
    return Cost.total(f"bit-serial MAC, {p}-bit activations x {weight_bits}-bit weights -> {acc_bits} bits",
                      parts, and_row.delay + acc.delay)


def stripes_speedup(macs: Sequence[int], precisions: Sequence[int], baseline_bits: int = 16) -> float:
    """Speedup of bit-serial activations over a ``baseline_bits`` bit-parallel datapath:
    sum(macs) x baseline_bits / sum(macs x p), each layer at its own precision p.

    ``macs``: ints >= 0, not all 0; ``precisions``: ints in [1, baseline_bits]; ``baseline_bits``: an int
    in [1, 64].
    """
    baseline_bits = check_int(baseline_bits, "stripes_speedup", "baseline_bits", 1, 64)
    for name, v in (("macs", macs), ("precisions", precisions)):
        if isinstance(v, (str, bytes)) or not hasattr(v, "__len__") or not hasattr(v, "__iter__"):
            raise TypeError(f"stripes_speedup: {name}={v!r} must be a sequence of ints, one per layer")
    if len(macs) != len(precisions) or not macs:
        raise ValueError(f"stripes_speedup: macs ({len(macs)}) and precisions ({len(precisions)}) must be "
                         "non-empty and of the same length")
    ms = [check_int(m, "stripes_speedup", "macs", 0) for m in macs]
    ps = [check_int(p, "stripes_speedup", "precision", 1, baseline_bits) for p in precisions]
    if sum(ms) == 0:
        raise ValueError(f"stripes_speedup: macs={list(ms)} are all 0; at least one layer needs macs >= 1")
    return sum(ms) * baseline_bits / sum(m * p for m, p in zip(ms, ps, strict=True))
