"""Parametric arithmetic: adders, multipliers and float units of any width, calibrated to a table.

Every model is a gate-level construction (`hwmodel.gates`) whose size X in
gate equivalents (GE) is mapped to energy and area by a piecewise-linear law
through zero and every point of the technology table of that kind, (0, 0),
(X1, E1), ..., (Xn, En) in increasing size, so that each of the table's own
points comes out exactly:

- integer/fixed multipliers: through every ``mult_int<N>`` of the table (an
  N x N multiplier; the published tables have ``mult_int8`` and
  ``mult_int32``), separately for each construction (dadda, array, booth);
- integer adders and accumulators: linear in width, piecewise through the
  table's ``add_int<N>`` points;
- float multipliers, (m_a+1) x (m_b+1) significand tree + exponent adders +
  normalise and round: through every ``mult_<type>`` of the table for the
  float types of `FLOAT_TYPES` (bf16, fp16, fp32, fp64);
- float adders, exponent compare, swap, alignment shifter, sticky, significand
  adder, leading-zero counter, normalisation shifter, round: through every
  ``add_<type>`` of the table for those types;
- other logic (shifters, muxes, saturation) at the integer multiplier's
  marginal energy and area per GE between ``mult_int8`` and ``mult_int32``.

A format the table names itself (fp16, fp32, fp64, bf16; int16 x int16 ...)
takes the table entry directly. Between two neighbouring points E = E1 + (E2 -
E1) (X - X1) / (X2 - X1); the construction decides where a unit falls.
Outside the table's range the law extrapolates and the source says so: below
the smallest point a unit scales with its size (E1 X / X1, "below it"), above
the largest it follows the last segment ("above it"); with one point only,
energy and area are proportional to size.

>>> [s.split(": ", 1)[1] for s in int_adder(64).sources]
['a 64-bit adder linear in width through add_int16 and add_int32, extended beyond add_int32 (above it:\
 extrapolated)']
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import emu
from emu.checks import check_int

from .cost import Cost
from .gates import MAX_WIDTH, Cells, adder, barrel_shifter, check_multiplier, leading_zero_counter, multiplier
from .tech import TechTable, get_table

__all__ = ["FLOAT_TYPES", "float_adder", "float_multiplier", "float_type", "int_adder", "int_multiplier",
           "logic", "operand_multiplier", "register"]

#: The float types a table may name (``add_<type>``, ``mult_<type>``): (exponent bits, mantissa bits) of
#: the IEEE 754 binary formats (IEEE specials, subnormals, default bias) and of bfloat16.
FLOAT_TYPES = {"bf16": (8, 7), "fp16": (5, 10), "fp32": (8, 23), "fp64": (11, 52)}


def float_type(f: emu.Format) -> str | None:
    """The table's name of a float format ("fp16", "fp32", "fp64", "bf16") or None.

    >>> float_type(emu.format("fp64")), float_type(emu.format("e4m3"))
    ('fp64', None)
    """
    if (isinstance(f, emu.FloatFormat) and f.special == "ieee" and f.subnormals and f.signed
            and f.bias == f.default_bias):
        return next((ty for ty, em in FLOAT_TYPES.items() if em == (f.exp_bits, f.man_bits)), None)
    return None


def _law(t: TechTable, points: Iterable[tuple[float, str]], x: float, what: str,
         missing: str, unit: str = "gate equivalents") -> tuple[float, float, str]:
    """Energy, area and source at size x on the piecewise-linear law through (0, 0) and the table's points.

    ``points``: (size, operation) of every operation of this kind, sizes in ``unit``; those the table has
    calibrate the law. ``missing`` names what the table lacks when it has none of them.
    """
    pts = sorted((xs, op) for xs, op in points if op in t)
    if not pts:
        raise ValueError(f"tech table {t.name!r} has {missing}, needed to price {what}")
    for xs, op in pts:
        if x == xs:  # the table's own point
            e = t[op]
            return e.energy_pj, e.area_um2, f"{t.name}: {op} ({what} of that size)"
    (x_lo, op_lo) = pts[0]
    if len(pts) == 1:  # one point: proportional to size
        e = t[op_lo]
        side = "below" if x < x_lo else "above"
        return (e.energy_pj * x / x_lo, e.area_um2 * x / x_lo,
                f"{t.name}: {op_lo} x size ratio ({what}; the table's only point, {side} it: extrapolated)")
    if x < x_lo:  # below the smallest point: proportional to it (zero size costs zero)
        lo = t[op_lo]
        return (lo.energy_pj * x / x_lo, lo.area_um2 * x / x_lo,
                f"{t.name}: {what} proportional in {unit} to {op_lo} (below it: extrapolated)")
    i = next((j for j in range(1, len(pts)) if x <= pts[j][0]), len(pts) - 1)
    (x0, op0), (x1, op1) = pts[i - 1], pts[i]
    lo, hi = t[op0], t[op1]
    s = (x - x0) / (x1 - x0)
    src = f"{t.name}: {what} linear in {unit} through {op0} and {op1}"
    if x > x1:
        src += f", extended beyond {op1} (above it: extrapolated)"
    return (lo.energy_pj + (hi.energy_pj - lo.energy_pj) * s, lo.area_um2 + (hi.area_um2 - lo.area_um2) * s,
            src)


def int_multiplier(wa: int, wb: int, tech: str | TechTable = "horowitz45", kind: str = "dadda") -> Cost:
    """A wa x wb integer multiplier of construction ``kind``, through every ``mult_int<N>`` of the table.

    >>> round(int_multiplier(8, 8).energy_pj, 12), round(int_multiplier(32, 32).area_um2, 9)
    (0.2, 3495.0)
    """
    wa = check_int(wa, "int_multiplier", "wa", 1, 256)
    wb = check_int(wb, "int_multiplier", "wb", 1, 256)
    kind = check_multiplier(kind, "int_multiplier", "kind")
    t = get_table(tech)
    cells = multiplier(wa, wb, kind)
    pts = [(multiplier(n, n, kind).ge, f"mult_int{n}") for n, _ in t.int_points("mult")]
    e, a, src = _law(t, pts, cells.ge, f"{kind} multiplier",
                     "neither mult_int8 nor mult_int32 (no mult_int<N> entry)")
    return Cost(f"{wa}x{wb} {kind} multiplier", e, a, cells.levels, (src,))


@cache
def _logic_rate(t: TechTable) -> tuple[float, float]:
    """pJ and um^2 per gate equivalent: the integer multiplier's marginal rate at 8x8 on the law through the
    table's mult_int<N> points (the published tables: between 8x8 and 32x32; a table with other widths,
    such as mult_int16 and mult_int32 only, prices logic from those)."""
    x8 = multiplier(8, 8).ge
    pts = [(multiplier(n, n).ge, f"mult_int{n}") for n, _ in t.int_points("mult") if n <= MAX_WIDTH]
    missing = "no mult_int<N> entry"
    e1, a1, _ = _law(t, pts, x8 + 1.0, "logic", missing)
    e0, a0, _ = _law(t, pts, x8, "logic", missing)
    return e1 - e0, a1 - a0


def logic(cells: Cells, tech: str | TechTable = "horowitz45", name: str = "logic") -> Cost:
    """Random logic (shifters, muxes, saturation) at the integer multiplier's marginal pJ and um^2 per GE.

    Raises:
        TypeError: ``cells`` is not a `Cells`.
    """
    if not isinstance(cells, Cells):
        raise TypeError(f"logic: cells={cells!r} must be a Cells (the gate counts of hwmodel.gates)")
    t = get_table(tech)
    e, a = _logic_rate(t)
    return Cost(name, e * cells.ge, a * cells.ge, cells.levels,
                (f"{t.name}: {name} at the integer multiplier's marginal rate per gate equivalent at 8x8",))


def int_adder(w: int, tech: str | TechTable = "horowitz45") -> Cost:
    """A w-bit integer adder, linear in width through the table's add_int points.

    >>> round(int_adder(32).energy_pj, 12), round(int_adder(24).energy_pj, 12)
    (0.1, 0.075)
    """
    w = check_int(w, "int_adder", "w", 1, MAX_WIDTH)
    t = get_table(tech)
    pts = [(n, f"add_int{n}") for n, _ in t.int_points("add")]
    e, a, src = _law(t, pts, w, f"a {w}-bit adder", "no add_int<N> entry", unit="width")
    return Cost(f"{w}-bit adder", e, a, adder(w).levels, (src,))


def register(bits: int, tech: str | TechTable = "horowitz45") -> Cost:
    """``bits`` register bits at the table's ``reg_bit`` (0 when the table has none, as the published
    ones).

    >>> register(24).energy_pj
    0.0
    """
    bits = check_int(bits, "register", "bits", 1)
    t = get_table(tech)
    if "reg_bit" in t:
        e = t["reg_bit"]
        return Cost(f"{bits}-bit register", e.energy_pj * bits, e.area_um2 * bits, 1,
                    (f"{t.name}: reg_bit x {bits}",))
    return Cost(f"{bits}-bit register", 0.0, 0.0, 1, (f"{t.name}: no reg_bit entry, registers count 0",))


def _fmul_cells(sa: int, sb: int, e: int) -> Cells:
    """Significands sa x sb (hidden bit included), exponents of e bits."""
    m = max(sa, sb)
    return (multiplier(sa, sb) + adder(e + 1) + adder(e + 1)  # exponent sum, bias subtraction
            + Cells(mux2=m + 1, levels=1)  # normalise by one place
            + Cells(ha=m, levels=0) + Cells(levels=adder(m).levels)  # round: incrementer
            + Cells(xor2=1))  # sign


def _fadd_cells(e: int, m: int) -> Cells:
    w = m + 4  # significand, guard, round, sticky
    return (adder(e) + Cells(mux2=2 * (m + 1), levels=1) + barrel_shifter(w, w) + Cells(or2=w, levels=2)
            + adder(w) + leading_zero_counter(w) + barrel_shifter(w, w)
            + Cells(ha=m + 1, levels=adder(m + 1).levels) + adder(e))


def _sig_exp(f: emu.Format) -> tuple[int, int]:
    """Significand width (hidden bit included) and exponent width of a multiplier operand."""
    if isinstance(f, emu.FloatFormat):
        return f.man_bits + 1, f.exp_bits
    return f.bits, 0


def float_multiplier(fa: emu.Format, fb: emu.Format, tech: str | TechTable = "horowitz45") -> Cost:
    """A float multiplier of two operands (one may be fixed: its significand is its word), through every
    ``mult_<type>`` of the table (`FLOAT_TYPES`).

    >>> float_multiplier(emu.format("fp16"), emu.format("fp16")).energy_pj
    1.1
    """
    for name, f in (("fa", fa), ("fb", fb)):
        if not isinstance(f, (emu.FloatFormat, emu.FixedFormat)):
            raise TypeError(f"float_multiplier: {name}={f!s} must be an emu.FloatFormat or emu.FixedFormat")
    if not (isinstance(fa, emu.FloatFormat) or isinstance(fb, emu.FloatFormat)):
        raise TypeError(f"float_multiplier: fa={fa} and fb={fb} are both fixed point; one must be an"
                        " emu.FloatFormat (int_multiplier prices fixed x fixed)")
    t = get_table(tech)
    ta, tb = float_type(fa), float_type(fb)
    if ta is not None and ta == tb and f"mult_{ta}" in t:
        en = t[f"mult_{ta}"]
        return Cost(f"{ta} multiplier", en.energy_pj, en.area_um2,
                    _fmul_cells(*_sig_exp(fa)[:1], *_sig_exp(fb)).levels, (f"{t.name}: mult_{ta}",))
    (sa, ea), (sb, eb) = _sig_exp(fa), _sig_exp(fb)
    cells = _fmul_cells(sa, sb, max(ea, eb))
    pts = [(_fmul_cells(m + 1, m + 1, e).ge, f"mult_{ty}") for ty, (e, m) in FLOAT_TYPES.items()]
    e, a, src = _law(t, pts, cells.ge, "float multiplier",
                     "neither mult_fp16 nor mult_fp32 (no mult_bf16, mult_fp<N> entry)")
    return Cost(f"{fa}x{fb} float multiplier", e, a, cells.levels, (src,))


def float_adder(f: emu.FloatFormat, tech: str | TechTable = "horowitz45") -> Cost:
    """A float adder of format ``f`` (the accumulator of a float MAC), through every ``add_<type>`` of the
    table (`FLOAT_TYPES`).

    >>> float_adder(emu.format("fp32")).energy_pj
    0.9
    """
    if not isinstance(f, emu.FloatFormat):
        raise TypeError(f"float_adder: f={f!s} must be an emu.FloatFormat")
    t = get_table(tech)
    cells = _fadd_cells(f.exp_bits, f.man_bits)
    ty = float_type(f)
    if ty is not None and f"add_{ty}" in t:
        en = t[f"add_{ty}"]
        return Cost(f"{ty} adder", en.energy_pj, en.area_um2, cells.levels, (f"{t.name}: add_{ty}",))
    pts = [(_fadd_cells(e, m).ge, f"add_{ty}") for ty, (e, m) in FLOAT_TYPES.items()]
    e, a, src = _law(t, pts, cells.ge, "float adder",
                     "neither add_fp16 nor add_fp32 (no add_bf16, add_fp<N> entry)")
    return Cost(f"{f} adder", e, a, cells.levels, (src,))


def _magnitude_bits(f: emu.Format) -> int:
    """The bits of a sign-magnitude operand (float, power of two) below its sign bit."""
    return f.bits - 1 if f.signed else f.bits


def operand_multiplier(a: emu.Format, w: emu.Format, t: TechTable, kind: str = "dadda") -> Cost:
    """The multiplier of a MAC's two operand formats (the rules in `hwmodel.mac`'s docstring); the same
    for either order of the operands.

    A binary (+-1) or ternary (-1, 0, +1) operand against a sign-magnitude one (a float or a power of two)
    flips its sign bit, one XOR2 (ternary: and a MUX2 per other bit to select zero); against a
    two's-complement one (fixed, binary, ternary) it negates every bit. A power of two times a float or a
    power of two adds exponents; times a fixed operand it shifts the fixed word.

    >>> p, b = emu.format("pow2<-8,0>"), emu.format("binary")
    >>> operand_multiplier(p, b, get_table("horowitz45")).name
    'sign flip, one XOR2 (binary x sign-magnitude)'
    """
    fixed_or_float = (emu.FixedFormat, emu.FloatFormat)
    if isinstance(a, emu.FixedFormat) and isinstance(w, emu.FixedFormat):
        return int_multiplier(a.bits, w.bits, t, kind)
    if isinstance(a, fixed_or_float) and isinstance(w, fixed_or_float):
        return float_multiplier(a, w, t)
    sign_kinds = (emu.BinaryFormat, emu.TernaryFormat)
    if isinstance(a, sign_kinds) and isinstance(w, sign_kinds):
        if isinstance(a, emu.BinaryFormat) and isinstance(w, emu.BinaryFormat):
            return logic(Cells(xor2=1, levels=1), t, "XNOR (binary x binary)")
        # binary x ternary: negate the ternary's code; ternary x ternary: select zero and negate
        n = 2
        both = isinstance(a, emu.TernaryFormat) and isinstance(w, emu.TernaryFormat)
        return logic(Cells(mux2=n if both else 0, xor2=n, levels=2 if both else 1), t,
                     f"{'zero gate and ' if both else 'conditional '}negation of {n} bits (ternary code)")
    if isinstance(a, sign_kinds) or isinstance(w, sign_kinds):
        s, other = (a, w) if isinstance(a, sign_kinds) else (w, a)
        ternary = isinstance(s, emu.TernaryFormat)
        if isinstance(other, (emu.FloatFormat, emu.Pow2Format)):  # sign-magnitude: flip the sign bit
            mb = _magnitude_bits(other)
            return logic(Cells(xor2=1, mux2=mb if ternary else 0, levels=2 if ternary else 1), t,
                         f"sign flip, one XOR2{f', and zero select of {mb} bits' if ternary else ''}"
                         f" ({'ternary' if ternary else 'binary'} x sign-magnitude)")
        n = other.bits  # two's complement: negate every bit
        if ternary:
            return logic(Cells(mux2=n, xor2=n, levels=2), t, f"zero gate and negation of {n} bits (ternary)")
        return logic(Cells(xor2=n, levels=1), t, f"conditional negation of {n} bits (binary weight)")
    p, other = (a, w) if isinstance(a, emu.Pow2Format) else (w, a)
    if isinstance(other, emu.FixedFormat):
        n, positions = other.bits, p.emax - p.emin + 1
        return logic(barrel_shifter(n, positions) + Cells(xor2=n, levels=1), t,
                     f"shifter of {n} bits over {positions} positions (power-of-two operand)")
    # a power of two times a float or a power of two: the exponents add, the signs XOR, a zero code
    # (a power of two's K = 0) selects zero
    kp = _magnitude_bits(p)
    if isinstance(other, emu.Pow2Format):
        ko = _magnitude_bits(other)
        e = max(kp, ko) + 1
        cells = adder(e) + Cells(xor2=1, or2=kp + ko, and2=e, levels=1)
        what = f"exponent adder of {e} bits, sign XOR2, zero select (power of two x power of two)"
    else:
        e = max(kp, other.exp_bits) + 1
        mb = _magnitude_bits(other)
        cells = adder(e) + adder(e) + Cells(xor2=1, or2=kp, and2=mb, levels=1)
        what = f"two exponent adders of {e} bits, sign XOR2, zero select (float x power of two)"
    return logic(cells, t, what)
