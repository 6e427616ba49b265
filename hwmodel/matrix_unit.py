"""The cost of a matrix unit's multi-term adder (`emu.MAC` with ``order="fused(n)"`` or ``"exact(n)"``).

One step of such a unit (docs/semantics.md, "Matrix-unit steps") multiplies
n operand pairs exactly, aligns the n products and the addend to the largest
exponent, cuts each to ``align_bits`` fraction bits below it, adds them in
one multi-operand adder, normalises once and rounds into the accumulator's
format. `fused_cost` builds that step from gate-level parts (`hwmodel.gates`,
priced by `hwmodel.arith`):

- ``multipliers``: n significand multipliers (sa x sw, hidden bits included;
  a fixed operand's word) with their exponent adders and a sign XOR: the
  products stay exact, so no normalise or round stage.
- ``exponent max``: the largest of the n + 1 exponents: n comparators (an
  adder of the exponent width + 1 and a MUX2 per exponent bit), a tree of
  ceil(log2(n + 1)) comparator levels.
- ``aligners``: n + 1 shifters of W = align_bits + 2 bits (the two integer
  bits of a product's significand) over W positions (a term shifted out
  entirely is zero); the cut toward zero drops wires and costs nothing (a
  floor cut of a negative term: one incrementer of W bits per term).
- ``adder tree``: conditional negation of each term (W XOR2), a carry-save
  reduction of n + 1 rows of W + ceil(log2(n + 1)) bits to two (one full
  adder per row beyond two and column; Dadda stages for the depth), and a
  carry-propagate adder of that width.
- ``normalise, round``: a leading-zero counter and a normalising shifter of
  the sum's width, an incrementer of the accumulator's significand and an
  exponent adjust adder.
- ``register``: the accumulator's bits.
- With a late addend (AMD CDNA3, `emu.late_addend`): only the n products go
  through the aligners and the tree; ``group join`` (odd/even product groups)
  aligns and adds the two groups' sums; ``late addend`` compares the sum's and
  the addend's exponents, shifts each (the addend over ``addend_bits`` + 2
  bits, the sum over ``sum_bits`` + 2 bits and its carries), cuts (one
  incrementer per term for a floor) and adds them; the normaliser takes that
  sum. Both stages lie on the critical path.
- With an instruction whose addend enters last (`emu.instruction`):
  ``instruction addend``, one float adder of the accumulator's format per
  unit (`hwmodel.arith.float_adder`), used once per instruction of k
  products, after its steps (not on a step's critical path). An instruction's
  k order is wiring and costs nothing.

An ``exact(n)`` step (AMD CDNA1: n exact products and the addend, one
rounding) is the same step without the cut: W spans the products' exact
range (from the largest product's top bit to the smallest subnormal
product's last bit, plus carries) and the accumulator's significand with
guard, round and sticky bits, so that an addend far above or below the
products' sum collapses into the sticky bit as in a float adder.
- ``output``: the conversion to an ``output`` format other than the
  accumulator's (as `hwmodel.cost`), once per dot product.

Energy and area are per product lane: the step's totals divided by n (a unit
of n lanes does n MACs per step), so that an array of units counts lanes as
`hwmodel.network_cost` counts MAC units. Every part is built from gates here,
while `hwmodel.cost` prices a scalar MAC's float multiplier and adder at the
table's published figures (Horowitz's mult_fp16 1.1 pJ, add_fp32 0.9 pJ),
which include normalisation and rounding stages and a synthesis's overheads
this gate count leaves out: the H100 fp16 -> fp32 unit's step as ``fused(1)``
(25 alignment bits) costs 0.98 pJ and 1145 um^2 against 2.0 pJ and 5824 um^2
for fp16 x fp16 -> fp32 as a scalar MAC. Compare matrix
units with each other, or with a scalar MAC only knowing that the two are
calibrated differently (the gate-level figure is the lower).

The delay is the step's critical path
in gate levels: multiplier, exponent max, aligner, adder tree, normalise and
round in series. Worked example: the H100 fp16 -> fp32 unit (n = 16,
align_bits 25) has 16 11x11 multipliers, 17 aligners of 27 bits, a tree of
17 rows of 32 bits and an fp32 rounding per step.

>>> import emu
>>> c = fused_cost(emu.mac_preset("H100 fp16 -> fp32"))
>>> sorted(c.breakdown)
['adder tree', 'aligners', 'exponent max', 'multipliers', 'normalise, round', 'register']
>>> c.energy_pj < 1.1 + 0.9  # below a separate fp16 multiplier and fp32 adder per MAC
True
"""

from __future__ import annotations

import math

import emu

from .arith import float_adder, int_multiplier, logic, register
from .cost import Cost
from .gates import Cells, adder, barrel_shifter, check_multiplier, dadda_heights, leading_zero_counter
from .tech import TechTable, get_table

__all__ = ["fused_cost"]


def _sig_exp(f: emu.Format) -> tuple[int, int]:
    """(significand bits with the hidden bit, exponent bits) of an operand format."""
    if isinstance(f, emu.FloatFormat):
        return f.man_bits + 1, f.exp_bits
    return f.bits, 0


def _two_term_alignment(width_a: int, width_b: int, exp_bits: int, floor: bool) -> Cells:
    """Two terms aligned to the larger of their exponents and added: an exponent comparator (an adder of
    exp_bits + 1 and a MUX2 per exponent bit), a shifter for each term over its width, an incrementer per
    term for a floor cut, and an adder one bit wider than the wider term. The two shifters, and the two
    incrementers, work side by side (the deeper one counts for the depth)."""
    cmp_cells = adder(exp_bits + 1) + Cells(mux2=exp_bits, levels=1)
    shifters = barrel_shifter(width_a, width_a).beside(barrel_shifter(width_b, width_b))
    cut = adder(width_a).beside(adder(width_b)) if floor else Cells()
    return cmp_cells + shifters + cut + adder(max(width_a, width_b) + 1)


def _late_stages(mac: emu.MAC, late: emu.LateAddend, sum_bits: int, e_prod: int, t: TechTable,
                 parts: dict[str, Cost]) -> int:
    """The parts of a late-addend step after its product tree (AMD CDNA3, `emu.late_addend`): with
    ``odd_even`` product groups, the join of the two groups' sums (a two-term alignment of their width,
    cut as the addend's rule cuts); then the addend C and the product sum aligned to the larger exponent,
    C cut to ``addend_bits`` and the sum to ``sum_bits`` fraction bits below it, and added. Adds the
    parts to ``parts``; returns the width the normaliser takes."""
    floor = late.rounding is emu.Rounding.FLOOR
    if mac.product_groups is emu.ProductGroups.ODD_EVEN:
        parts["group join"] = logic(_two_term_alignment(sum_bits, sum_bits, e_prod + 1, floor), t,
                                    f"join of the odd and even product sums ({sum_bits} bits each)")
        sum_bits += 1
    acc = mac.acc
    c_width, s_width = late.addend_bits + 2, late.sum_bits + 2 + max(0, sum_bits - mac.align_bits - 2)
    exp_bits = max(acc.exp_bits, e_prod) + 1
    parts["late addend"] = logic(_two_term_alignment(c_width, s_width, exp_bits, floor), t,
                                 f"addend ({late.addend_bits} bits) and product sum ({late.sum_bits} bits)"
                                 " aligned to the larger exponent, cut and added")
    return max(c_width, s_width) + 1


def _exact_width(mac: emu.MAC) -> int:
    """The aligned width of an ``exact(n)`` step: the products' exact span (top bit of the largest
    product, 2^(emax_a + emax_w + 2), down to the last bit of the smallest subnormal product) and the
    accumulator's significand with guard, round and sticky bits."""
    a, w = mac.act, mac.weight
    top = a.emax + w.emax + 2
    last = (a.emin - a.man_bits) + (w.emin - w.man_bits)
    return top - last + mac.acc.man_bits + 1 + 3


def fused_cost(mac: emu.MAC, tech: str | TechTable = "horowitz45", *, k: int | None = None,
               multiplier: str = "dadda") -> Cost:
    """Energy per MAC (pJ), area per product lane (um^2) and step delay (gate levels) of a ``fused(n)``
    or ``exact(n)`` unit, with its parts (module docstring).

    Raises:
        ValueError: ``mac`` is not of order fused(n) or exact(n), or its accumulator is not a float format.
    """
    multiplier = check_multiplier(multiplier, "fused_cost", "multiplier")
    kind = mac.order.kind
    if kind not in ("fused", "exact"):
        raise ValueError(f"fused_cost: order='{mac.order}' is not fused(n) or exact(n); hwmodel.cost prices"
                         " the others")
    if not isinstance(mac.acc, emu.FloatFormat):
        raise ValueError(f"fused_cost: acc={mac.acc} must be a float format (the unit normalises its sum)")
    t = get_table(tech)
    n = mac.order.n
    (sa, ea), (sw, ew) = _sig_exp(mac.act), _sig_exp(mac.weight)
    e_prod = max(ea, ew) + 1
    late = mac.late_addend
    terms = n if late is not None else n + 1  # a late addend meets the products' sum after their tree
    width = mac.align_bits + 2 if kind == "fused" else _exact_width(mac)
    sum_bits = width + math.ceil(math.log2(terms))
    acc = mac.acc
    mult = int_multiplier(sa, sw, t, multiplier)
    exp_add = logic(adder(e_prod) + Cells(xor2=1), t, "exponent adder and sign")
    parts = {
        "multipliers": Cost(f"{n} exact {sa}x{sw} multipliers", n * (mult.energy_pj + exp_add.energy_pj),
                            n * (mult.area_um2 + exp_add.area_um2), mult.delay + exp_add.delay,
                            mult.sources + exp_add.sources)}
    levels = math.ceil(math.log2(terms))
    cmp_cells = adder(e_prod + 1) + Cells(mux2=e_prod, levels=1)
    parts["exponent max"] = logic(Cells(**{f: getattr(cmp_cells, f) * n for f in
                                           ("and2", "or2", "xor2", "mux2", "ha", "fa", "cpa_bits")},
                                        levels=cmp_cells.levels * levels), t,
                                  f"largest of {terms} exponents ({levels} comparator levels)")
    shift = barrel_shifter(width, width)
    floor_cut = kind == "fused" and str(mac.align_rounding) == "floor"
    cut = adder(width) if floor_cut else Cells()
    parts["aligners"] = logic(Cells(mux2=shift.mux2 * terms, cpa_bits=cut.cpa_bits * terms,
                                    levels=shift.levels + cut.levels), t,
                              f"{terms} aligners of {width} bits" + (", floor cut" if floor_cut else ""))
    stages = len(dadda_heights(terms)) if terms > 2 else 0
    csa = Cells(xor2=width * terms, fa=max(0, terms - 2) * sum_bits, levels=1 + 2 * stages)
    parts["adder tree"] = logic(csa + adder(sum_bits), t,
                                f"{terms}-row carry-save tree of {sum_bits} bits, carry-propagate adder")
    if late is not None:
        sum_bits = _late_stages(mac, late, sum_bits, e_prod, t, parts)
    m_acc = acc.man_bits + 1
    norm = (leading_zero_counter(sum_bits) + barrel_shifter(sum_bits, sum_bits)
            + Cells(ha=m_acc, levels=adder(m_acc).levels) + adder(acc.exp_bits + 1))
    parts["normalise, round"] = logic(norm, t, f"normalise {sum_bits} bits, round into {acc}")
    parts["register"] = register(acc.bits, t)
    delay = sum(parts[p].delay for p in ("multipliers", "exponent max", "aligners", "adder tree",
                                         "group join", "late addend", "normalise, round") if p in parts)
    lane = f"a step of {n} products: per product lane"
    parts = {name: p.scaled(1.0 / n, 1.0 / n, note=lane) for name, p in parts.items()}
    ins = mac.instruction
    if ins is not None and ins.addend is emu.AddendEntry.LAST:
        parts["instruction addend"] = float_adder(acc, t).scaled(
            1.0 / ins.k, 1.0 / n,
            note=f"C added once per instruction of {ins.k} products: energy per product, area per lane")
    if mac.output is not None and mac.output != acc:  # once per dot product, as in hwmodel.cost
        o = mac.output
        ob = o.bits if not isinstance(o, emu.FloatFormat) else o.man_bits + 1
        out = logic(Cells(ha=ob, mux2=ob, levels=adder(ob).levels + 1), t, f"output conversion to {o}")
        parts["output"] = out if not k else out.scaled(1.0 / k, 1.0, note=f"energy amortised over K={k}")
    return Cost.total(f"matrix unit {mac} @ {t.name}", parts, delay)
