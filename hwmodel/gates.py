"""Gate-level constructions of multipliers, adders and shifters, counted cell by cell.

Every count here comes from building the circuit, not from a formula; the
tests check the constructions against the closed forms of the literature
(Dadda: n^2 - 4n + 3 full adders and n - 1 half adders for an n x n tree).

Cells are counted in a `Cells` value (AND2, XOR2, MUX2, HA, FA, OR2) and
converted to NAND2 gate equivalents (GE) with the sizes in `GE` (typical
standard-cell sizes, our stated assumption: a full adder as two XOR2 and a
majority gate, a half adder as an XOR2 and an AND2). Absolute energy and area
come from calibrating GE to a technology table (`hwmodel.arith`), so only the
*ratios* of these sizes matter.

Delay is counted in gate levels: an XOR2 level per full/half-adder sum stage
(two per FA), one per MUX2 stage, and ceil(log2 w) + 2 for a w-bit
parallel-prefix (Kogge-Stone) carry-propagate adder.

>>> c = dadda(8, 8); (c.fa, c.ha, c.cpa_bits)
(35, 7, 14)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from emu.checks import check_int

__all__ = ["GE", "MAX_WIDTH", "MULTIPLIERS", "Cells", "adder", "array_multiplier", "barrel_shifter",
           "booth_multiplier", "check_multiplier", "dadda", "dadda_heights", "leading_zero_counter",
           "multiplier"]

#: The widest word an adder, shifter or leading-zero counter here takes: an exact (Kulisch) sum of two
#: binary64 operands' products spans 2^2048 down to 2^-2148 (4,198 bits with sign and carries, plus
#: ceil(log2 K) carry bits, `hwmodel.mac.acc_width`), the widest exact sum of any `emu` format; 2^13
#: bits cover it for every K up to 2^3994.
MAX_WIDTH = 8192

#: NAND2 gate equivalents per cell (stated assumption; only ratios matter after calibration).
GE = {"and2": 1.33, "or2": 1.33, "xor2": 2.33, "mux2": 2.33, "ha": 3.67, "fa": 7.0}


@dataclass(frozen=True)
class Cells:
    """Counts of cells of one circuit, its final carry-propagate adder width and its depth."""

    and2: int = 0
    or2: int = 0
    xor2: int = 0
    mux2: int = 0
    ha: int = 0
    fa: int = 0
    cpa_bits: int = 0  # a final carry-propagate adder of this width (counted as cpa_bits FA)
    levels: int = 0  # gate levels on the critical path

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"Cells: {f.name}={v!r} must be an int >= 0")

    def __add__(self, other: Cells) -> Cells:
        """Two circuits side by side in cells; in series for the depth."""
        return Cells(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def beside(self, other: Cells) -> Cells:
        """Two circuits side by side in cells and in depth (the deeper one counts).

        >>> adder(8).beside(adder(16)).cpa_bits == 24, adder(8).beside(adder(16)).levels == adder(16).levels
        (True, True)
        """
        return replace(self + other, levels=max(self.levels, other.levels))

    @property
    def ge(self) -> float:
        """Size in NAND2 gate equivalents (the CPA counted as ripple full adders)."""
        return (self.and2 * GE["and2"] + self.or2 * GE["or2"] + self.xor2 * GE["xor2"]
                + self.mux2 * GE["mux2"] + self.ha * GE["ha"] + (self.fa + self.cpa_bits) * GE["fa"])


def _cpa_levels(w: int) -> int:
    return 0 if w <= 0 else math.ceil(math.log2(max(w, 2))) + 2


def adder(w: int) -> Cells:
    """A w-bit two-operand adder: w full adders, Kogge-Stone depth."""
    w = check_int(w, "adder", "w", 1, MAX_WIDTH)
    return Cells(cpa_bits=w, levels=_cpa_levels(w))


def dadda_heights(max_height: int) -> list[int]:
    """Dadda's target heights d_1 = 2, d_{j+1} = floor(1.5 d_j), those below ``max_height``, descending.

    >>> dadda_heights(9)
    [6, 4, 3, 2]

    Raises:
        TypeError: ``max_height`` is not an int. ValueError: it is negative.
    """
    max_height = check_int(max_height, "dadda_heights", "max_height", 0)
    d = [2]
    while math.floor(1.5 * d[-1]) < max_height:
        d.append(math.floor(1.5 * d[-1]))
    return [x for x in reversed(d) if x < max_height]


def _reduce(heights: list[int]) -> Cells:
    """Dadda reduction of a dot diagram (bits per column, LSB first) to two rows, then a CPA."""
    h = list(heights) + [0, 0]
    fa = ha = 0
    stages = dadda_heights(max(h)) if max(h) > 2 else []
    for d in stages:
        for col in range(len(h) - 1):
            while h[col] > d:
                if h[col] >= d + 2:  # a full adder takes 3 bits and leaves 1, carrying 1 up
                    h[col] -= 2
                    fa += 1
                else:  # one too many: a half adder takes 2 and leaves 1, carrying 1 up
                    h[col] -= 1
                    ha += 1
                h[col + 1] += 1
        if h[-1]:
            h.append(0)
    cols = [i for i, x in enumerate(h) if x >= 2]
    top = cols[-1] if cols else 0
    while cols and h[top + 1]:  # the carry out of the top two-bit column meets a bit: one more adder bit
        top += 1
    cpa = top - cols[0] + 1 if cols else 0
    return Cells(fa=fa, ha=ha, cpa_bits=cpa, levels=2 * len(stages) + _cpa_levels(cpa))


def dadda(wa: int, wb: int) -> Cells:
    """A wa x wb Dadda-tree multiplier: wa*wb AND2 partial products, Dadda reduction, a final CPA.

    For n x n this builds n^2 - 4n + 3 full adders, n - 1 half adders and a
    2n - 2 bit CPA (Dadda 1965). Signed operands (Baugh-Wooley) use the same
    cells with some AND2 replaced by NAND2 (same count).
    """
    wa = check_int(wa, "dadda", "wa", 1, 256)
    wb = check_int(wb, "dadda", "wb", 1, 256)
    heights = [sum(1 for i in range(wa) if 0 <= c - i < wb) for c in range(wa + wb)]
    return Cells(and2=wa * wb) + _reduce(heights) + Cells(levels=1)


def array_multiplier(wa: int, wb: int) -> Cells:
    """A ripple-carry array multiplier: wa*wb AND2; each of the wb - 1 further rows added by a
    wa-bit ripple adder row ((wa - 1) full adders and one half adder per row)."""
    wa = check_int(wa, "array_multiplier", "wa", 1, 256)
    wb = check_int(wb, "array_multiplier", "wb", 1, 256)
    rows = wb - 1
    return Cells(and2=wa * wb, fa=rows * (wa - 1), ha=rows, levels=1 + 2 * (wa + wb - 2))


def booth_multiplier(wa: int, wb: int) -> Cells:
    """Radix-4 (modified) Booth: floor(wb/2) + 1 partial products of wa + 1 bits, each bit chosen by
    a Booth selector (MUX2 + XOR2 for 0/+-a/+-2a), one encoder (3 cells) per row, reduced by a Dadda tree.

    Sign-extension constants are ignored (a few cells per row).
    """
    wa = check_int(wa, "booth_multiplier", "wa", 1, 256)
    wb = check_int(wb, "booth_multiplier", "wb", 1, 256)
    rows = wb // 2 + 1
    w = wa + 1
    heights = [0] * (w + 2 * rows + 1)
    for r in range(rows):
        for i in range(w):
            heights[2 * r + i] += 1
        heights[2 * r] += 1  # the +1 of the two's-complement negation
    return (Cells(mux2=rows * w, xor2=rows * w + rows, and2=2 * rows, levels=3)
            + _reduce(heights))


#: the integer multipliers' constructions (`multiplier`)
MULTIPLIERS = {"dadda": dadda, "array": array_multiplier, "booth": booth_multiplier}


def check_multiplier(kind: object, func: str, param: str) -> str:
    """``kind`` (the parameter ``param`` of ``func``) as a construction of `MULTIPLIERS`, else ValueError.

    >>> check_multiplier("wallace", "int_multiplier", "kind")
    Traceback (most recent call last):
    ...
    ValueError: int_multiplier: kind='wallace' is not one of dadda, array, booth
    """
    if not isinstance(kind, str) or kind not in MULTIPLIERS:
        raise ValueError(f"{func}: {param}={kind!r} is not one of {', '.join(MULTIPLIERS)}")
    return kind


def multiplier(wa: int, wb: int, kind: str = "dadda") -> Cells:
    """The wa x wb multiplier of construction ``kind`` (dadda, array, booth), the same for either order:
    the narrower operand gives the array's rows and is the one Booth recodes (as a designer places it).

    >>> multiplier(4, 12, "booth") == multiplier(12, 4, "booth"), multiplier(4, 12, "array").ha
    (True, 3)
    """
    build = MULTIPLIERS[check_multiplier(kind, "multiplier", "kind")]
    return build(max(wa, wb), min(wa, wb))


def barrel_shifter(w: int, positions: int) -> Cells:
    """A w-bit logarithmic shifter over ``positions`` shift amounts: w MUX2 per stage,
    ceil(log2 positions) stages (one position: no shift, no stage)."""
    w = check_int(w, "barrel_shifter", "w", 1, MAX_WIDTH)
    positions = check_int(positions, "barrel_shifter", "positions", 1)
    stages = math.ceil(math.log2(positions)) if positions > 1 else 0
    return Cells(mux2=w * stages, levels=stages)


def leading_zero_counter(w: int) -> Cells:
    """A w-bit leading-zero counter as a tree: about w OR2 and w MUX2 cells, log2 w levels."""
    w = check_int(w, "leading_zero_counter", "w", 1, MAX_WIDTH)
    lv = math.ceil(math.log2(max(w, 2)))
    return Cells(or2=w, mux2=w, levels=lv)
