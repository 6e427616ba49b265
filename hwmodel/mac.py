"""The cost of one multiply-accumulate unit for any `emu.MAC` datapath.

`cost(mac)` builds the unit from parts, each priced by `hwmodel.arith`:

- ``multiplier`` (the same for either operand order): fixed x fixed: an
  integer multiplier of the two word widths; a float operand: a float
  multiplier of the significands (hidden bit included) with exponent adders,
  normalise and round; a power-of-two operand: times a fixed operand a
  shifter of its word over the exponent range (plus a sign XOR per bit),
  times a float or a power of two an exponent addition (two adders for a
  float, one for two powers of two), a sign XOR2 and a zero select; a binary
  operand: times a sign-magnitude operand (float, power of two) one XOR2 on
  its sign bit, else a conditional negation (XOR2 per bit of the other
  operand; one XNOR when both are binary); a ternary operand: the same plus
  a zero select (MUX2 per other bit; two's complement: MUX2 + XOR2 per bit).
- ``convert``: a fixed-point product (a fixed operand times a fixed, power-of-two,
  binary or ternary one) into a float accumulator, per MAC: absolute value
  (XOR2 and an incrementer per bit) when signed, a leading-zero counter and a
  normalising shifter of the product's width, an exponent adder, and a
  rounding incrementer when the product is wider than the accumulator's
  significand. A product of powers of two (and +-1) has its exponent already.
- ``product``: rounding the product to a narrower multiplier output (an
  incrementer of the product's width), when the MAC names one that rounds:
  not one that holds every exact product, nor the float operands' own format
  (the multiplier's table price includes that rounding), nor a truncating
  ``product_rounding`` (floor of a fixed word, toward zero of a float:
  wiring). Stochastic rounding is priced as nearest (the incrementer; the
  random bits' source is not priced).
- ``aligner``: a float product into a fixed accumulator: a shifter of the
  accumulator's width over its positions; a power-of-two product (powers of
  two, binary, ternary operands): a shifter of the accumulator's width over
  the product's exponents (a decoder is no larger); a fixed product: wiring (0).
- ``align_rounding``: a product with more fraction bits than a fixed
  accumulator, rounded by an ``align_rounding`` other than floor (floor drops
  the low bits: wiring): an incrementer of the accumulator's width.
- ``accumulator``: a fixed accumulator: an adder of its actual width; a float
  one: a float adder of its format; ``exact`` (Kulisch): an adder as wide as
  the product range plus ceil(log2 K) carry bits (K = ``k`` or 2^20 if not
  given). Plus a ``register`` of the accumulator's width.
- ``overflow``: saturation after every addition: overflow detection (2 XOR2)
  and one MUX2 per accumulator bit; ``wrap``: nothing; ``error``: detection.
  A float accumulator that saturates (or gives NaN): one MUX2 per bit on the
  adder's overflow flag; ``inf`` and ``error``: the adder's flag, nothing.
- ``output``: the output conversion (an incrementer, none for a truncating
  ``output_rounding``, and a saturating MUX per output bit, a normalising
  shifter when a fixed sum becomes a float), once per dot product: its
  energy is divided by ``k`` (default 1: counted in full).

Energy is per MAC, area is one unit's, delay the unit's critical path in gate
levels (multiplier, product rounding, convert, aligner, alignment rounding, accumulator and the
saturation select after it in series; no pipelining). A block-scaled MAC is priced by
`hwmodel.block.block_mac_cost`
(two pipeline stages, the longer setting the delay) with the same
``multiplier`` construction, a fixed accumulator's ``overflow`` logic once per
block sum and the ``output`` part above. ``fused=True`` (FMA): where the exact
product's significand is wider than the float accumulator's, the adder is
one of that width (`_fma_adder`); the multiplier keeps its price, which
includes rounding its product (an upper bound). A part wider than the gate-level constructions take
(`hwmodel.gates.MAX_WIDTH` bits) raises a ValueError that names ``mac``. A matrix
unit's ``fused(n)`` and ``exact(n)`` orders are priced by
`hwmodel.matrix_unit.fused_cost` (its multi-term adder, per product lane); a
``tree(n)`` step (AMD CDNA2) has per product lane one multiplier, its
product rounding and one adder (n - 1 in the tree, one for the addend), a
register per step, and log2(n) + 1 adders in series on its critical path.

>>> c = cost(emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<18,14>"))
>>> round(c.breakdown["multiplier"].energy_pj, 9), round(c.breakdown["accumulator"].energy_pj, 9)
(0.2, 0.1)
"""

from __future__ import annotations

import math

import emu
from emu.checks import check_int
from emu.operand_grid import fixed_view

from .arith import float_adder, int_adder, logic, operand_multiplier, register
from .block import block_mac_cost, overflow_logic
from .cost import Cost
from .gates import Cells, adder, barrel_shifter, check_multiplier, leading_zero_counter
from .matrix_unit import fused_cost
from .tech import TechTable, get_table

__all__ = ["acc_width", "cost"]

_FP32_ACC = emu.FloatFormat(8, 23)


def _kulisch_bits(a: emu.Format, w: emu.Format, k: int) -> int:
    """The bits of an exact accumulator for K = ``k`` products of ``a`` and ``w``: from the smallest
    product's weight to the largest product magnitude (either sign: -1 x -128 = 128), plus carries."""
    hi = math.ceil(math.log2(max(abs(a.max), abs(a.min)) * max(abs(w.max), abs(w.min))))
    lo = math.floor(math.log2(a.smallest_subnormal * w.smallest_subnormal))
    return hi - lo + 2 + math.ceil(math.log2(k))  # K = 1: the product alone, no carry


def acc_width(mac: emu.MAC | str, k: int | None = None) -> int:
    """The accumulator's width in bits (an exact accumulator's Kulisch width for K = ``k``).

    ``mac``: an `emu.MAC` or a preset name (as `cost`). ``k``: the dot-product length, an int >= 1, or
    None (an exact accumulator then counts 2^20 products); it sizes an exact accumulator only: a fixed or
    float accumulator's width is its format's whatever ``k`` (checked all the same).

    >>> acc_width("int8 x int8 -> int32"), acc_width(emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="exact"), 3)
    (32, 18)

    Raises:
        TypeError: ``mac`` is not an `emu.MAC` or a preset name; ``k`` is not an int (nor None).
        ValueError: ``mac`` names no preset; ``k`` is below 1.
    """
    mac = as_mac(mac, "acc_width")
    if k is not None:
        k = check_int(k, "acc_width", "k", 1)
    return _acc_width(mac, k)


def _acc_width(mac: emu.MAC, k: int | None) -> int:
    if mac.acc == "exact":
        return _kulisch_bits(mac.act, mac.weight, k or 2**20)
    return mac.acc.bits


def cost(mac: emu.MAC, tech: str | TechTable = "horowitz45", *, k: int | None = None,
         multiplier: str = "dadda") -> Cost:
    """Energy per MAC (pJ), area (um^2) and delay (gate levels) of the unit for ``mac``, with its parts.

    Args:
        mac: an `emu.MAC` (or a preset name such as ``"int8 x int8 -> int32"``), or an
            `emu.MAC` of block-scaled operands (priced by
            `hwmodel.block.block_mac_cost` with this ``multiplier`` and a fixed accumulator's
            ``acc_overflow``, plus the ``output`` conversion; an exact accumulator counts as fp32
            there). ``fused=True`` (FMA): an adder as wide as the exact product where that is wider
            than the float accumulator (module docstring).
        tech: a table name (``horowitz45``, ``jouppi7``, a registered one) or a `TechTable`.
        k: the dot-product length: amortises the output conversion and sizes
            an exact accumulator (default: output counted in full per MAC).
        multiplier: the integer multiplier's construction: dadda, array or booth.
    """
    mac = as_mac(mac, "cost")
    multiplier = check_multiplier(multiplier, "cost", "multiplier")
    if k is not None:
        k = check_int(k, "cost", "k", 1)
    try:
        return _cost(mac, tech, k, multiplier)
    except ValueError as e:  # a gate-level part's width limit: say which of the caller's arguments needs it
        if " outside the allowed range " not in str(e):
            raise
        kk = "" if not k else f" with k={k}" if k.bit_length() <= 64 else f" with k=2^{math.log2(k):.6g}"
        raise ValueError(f"cost: mac={mac}{kk} needs a part wider than the gate-level constructions allow"
                         f" ({e})") from None


def as_mac(mac: object, fn: str, name: str = "mac") -> emu.MAC:
    """``mac`` (the parameter ``name`` of ``fn``) as an `emu.MAC`: a MAC itself or a preset name
    (`emu.mac_preset`)."""
    if isinstance(mac, str):
        try:
            return emu.mac_preset(mac)
        except ValueError as e:
            rest = str(e).split(" is not a preset", 1)[-1]
            raise ValueError(f"{fn}: {name}={mac!r} is not an emu.MAC preset name{rest}") from None
    if not isinstance(mac, emu.MAC):
        raise TypeError(f"{fn}: {name}={mac!r} must be an emu.MAC or a preset name (emu.MAC_PRESETS)")
    return mac


def _fma_adder(mac: emu.MAC, t: TechTable) -> Cost | None:
    """With ``fused=True``, when the exact product's significand (``pm`` fraction bits: the operands'
    significand bits (`_significand_bits`) less one) is wider than the float accumulator's, the adder that
    takes it unrounded: a
    float adder of the accumulator's exponent and ``pm`` fraction bits (the alignment, addition and
    normalisation of the wider operand; its one rounding into the accumulator's format is that adder's);
    None otherwise (the exact product fits the accumulator: an FMA's adder is the plain one). The
    multiplier keeps its table price, which includes rounding its product: an upper bound for the FMA's
    unrounded multiplier.

    >>> h45 = get_table("horowitz45")
    >>> _fma_adder(emu.MAC(act="fp16", weight="fp16", acc="fp16", fused=True), h45).name[:24]
    'FMA adder: fp<5,21> adde'
    >>> _fma_adder(emu.MAC(act="fp16", weight="fp16", acc="fp32", fused=True), h45) is None
    True
    """
    if not mac.fused:
        return None
    pm = sum(_significand_bits(f) for f in (mac.act, mac.weight)) - 1
    if pm <= mac.acc.man_bits:
        return None
    wide = float_adder(emu.FloatFormat(mac.acc.exp_bits, pm), t)
    return Cost(f"FMA adder: {wide.name} (the exact {pm + 1}-bit product significand aligned, added and"
                f" rounded once into {mac.acc})", wide.energy_pj, wide.area_um2, wide.delay, wide.sources)


def _significand_bits(f: emu.Format) -> int:
    """The bits of an operand's magnitude as a product sees it: a float's significand (hidden bit
    included), a fixed word's magnitude (its bits less the sign: -2^(W-1) is a power of two), one for a
    power of two, binary or ternary operand.

    >>> [_significand_bits(emu.format(n)) for n in ("fp16", "fx<1,7>", "ufx<0,8>", "pow2<-8,0>")]
    [11, 7, 8, 1]
    """
    if isinstance(f, emu.FloatFormat):
        return f.man_bits + 1
    if isinstance(f, emu.FixedFormat):
        return f.bits - int(f.signed)
    return 1


def _truncates(fmt: object, mode: emu.Rounding) -> bool:
    """Whether rounding into ``fmt`` in ``mode`` drops the low bits and nothing more (wiring, no
    incrementer): floor of a two's complement fixed word, toward zero of a sign-magnitude float.

    >>> fl = emu.Rounding.FLOOR
    >>> _truncates(emu.format("fx<2,6>"), fl), _truncates(emu.format("fp16"), fl)
    (True, False)
    """
    if isinstance(fmt, emu.FixedFormat):
        return mode == emu.Rounding.FLOOR
    return isinstance(fmt, emu.FloatFormat) and mode == emu.Rounding.TOWARD_ZERO


def _product_rounds(mac: emu.MAC) -> bool:
    """Whether ``product=`` rounds: not where it holds every exact product of fixed-point-like operands,
    nor where it is the float operands' own format, whose table multiplier's price includes that
    rounding."""
    p, ex = mac.product, mac.exact_product
    if isinstance(p, emu.FixedFormat) and isinstance(ex, emu.FixedFormat):
        d = p.frac_bits - ex.frac_bits
        return not (d >= 0 and ex.qmax << d <= p.qmax and ex.qmin << d >= p.qmin)
    return not (p == mac.act == mac.weight)


def _align_rounding(mac: emu.MAC, width: int, t: TechTable) -> Cost | None:
    """A product rounded into a fixed accumulator with fewer fraction bits by ``align_rounding`` other than
    floor (dropping the low bits, wiring): an incrementer of the accumulator's width; None for floor (an
    `emu.MAC` refuses another mode where nothing is dropped)."""
    if mac.align_rounding == emu.Rounding.FLOOR or mac.exact_acc:
        return None
    return logic(Cells(ha=width, levels=adder(width).levels), t,
                 f"alignment rounding ({mac.align_rounding}) into {mac.acc}: a {width}-bit incrementer")


def _float_overflow(mac: emu.MAC, t: TechTable) -> Cost | None:
    """A float accumulator that saturates (or gives NaN) on overflow: one MUX2 per bit after every addition
    selecting the largest finite value (or NaN) on the adder's overflow flag; inf and error: the adder's own
    flag, nothing more."""
    if str(mac.acc_overflow) not in ("saturate", "nan"):
        return None
    return logic(Cells(mux2=mac.acc.bits, levels=1), t, f"{mac.acc_overflow} after every addition")


def _cost(mac: emu.MAC, tech: str | TechTable, k: int | None, multiplier: str) -> Cost:
    if mac.order.kind in ("fused", "exact"):
        return fused_cost(mac, tech, k=k, multiplier=multiplier)
    t = get_table(tech)
    if mac.block_scaled:
        acc = _FP32_ACC if mac.exact_acc else mac.acc
        ovf = str(mac.acc_overflow) if isinstance(acc, emu.FixedFormat) else None
        c = block_mac_cost(mac.act, mac.weight, acc, t, k=k or 4096, multiplier=multiplier, acc_overflow=ovf)
        out = _output(mac, acc, acc.bits, k, t)
        return c if out is None else Cost.total(c.name, {**c.breakdown, "output": out}, c.delay)
    a, w = mac.act, mac.weight
    parts: dict[str, Cost] = {"multiplier": operand_multiplier(a, w, t, multiplier)}
    float_prod = isinstance(a, emu.FloatFormat) or isinstance(w, emu.FloatFormat)
    if (mac.product is not None and _product_rounds(mac)
            and not _truncates(mac.product, mac.product_rounding)):  # truncation: wiring
        pb = mac.product.bits if isinstance(mac.product, emu.FixedFormat) else mac.product.man_bits + 1
        parts["product"] = logic(Cells(ha=pb, levels=adder(pb).levels), t,
                                 f"rounding to the product format {mac.product}")
    width = _acc_width(mac, k)
    if isinstance(mac.acc, emu.FloatFormat):
        if not float_prod and (isinstance(a, emu.FixedFormat) or isinstance(w, emu.FixedFormat)):
            parts["convert"] = _fixed_to_float(mac, t)
        parts["accumulator"] = _fma_adder(mac, t) or float_adder(mac.acc, t)
        ovf = _float_overflow(mac, t)
        if ovf is not None:
            parts["overflow"] = ovf
    else:
        if float_prod:
            parts["aligner"] = logic(barrel_shifter(width, width), t, f"aligning shifter of {width} bits")
        elif not any(isinstance(f, emu.FixedFormat) for f in (a, w)):  # +-2^e (or +-1): placed at bit e
            pos = 1 + sum(f.emax - f.emin for f in (a, w) if isinstance(f, emu.Pow2Format))
            if pos > 1:
                parts["aligner"] = logic(barrel_shifter(width, pos), t, f"placing the power-of-two product:"
                                         f" {width} bits over {pos} positions")
        rounding = _align_rounding(mac, width, t)
        if rounding is not None:
            parts["align_rounding"] = rounding
        parts["accumulator"] = int_adder(width, t)
        if mac.acc == "exact":
            parts["accumulator"] = Cost(f"{width}-bit Kulisch adder", parts["accumulator"].energy_pj,
                                        parts["accumulator"].area_um2, parts["accumulator"].delay,
                                        parts["accumulator"].sources + (f"exact accumulator: {width} bits",))
    parts["register"] = register(width, t)
    if mac.acc != "exact" and isinstance(mac.acc, emu.FixedFormat):
        ovf = overflow_logic(str(mac.acc_overflow), mac.acc, t, "cost")
        if ovf is not None:
            parts["overflow"] = ovf
    out = _output(mac, mac.acc, width, k, t)
    if out is not None:
        parts["output"] = out
    delay = sum(parts[p].delay for p in ("multiplier", "product", "convert", "aligner", "align_rounding",
                                         "accumulator", "overflow") if p in parts)  # (saturation: in series)
    if mac.order.kind == "tree":  # n - 1 tree adders and one for the addend per step of n products
        n = mac.order.n
        levels = n.bit_length()  # log2(n) tree levels, then the addend
        delay += (levels - 1) * parts["accumulator"].delay
        parts["accumulator"] = parts["accumulator"].scaled(
            1.0, 1.0, note=f"tree({n}): {n - 1} tree adders and one for the addend per step of {n} products,"
            f" one adder per product lane; {levels} adders in series")
        parts["register"] = parts["register"].scaled(1.0 / n, 1.0 / n, note=f"one register per step of {n}"
                                                     " product lanes")
    return Cost.total(f"MAC {_name(mac)} @ {t.name}", parts, delay)


def _output(mac: emu.MAC, acc: object, width: int, k: int | None, t: TechTable) -> Cost | None:
    """The conversion of the sum (in ``acc``, ``width`` bits) to ``mac.output`` once per dot product: an
    incrementer (none for a truncating ``output_rounding``, `_truncates`) and a saturating MUX2 per output
    bit, plus a normalising shifter when a fixed sum becomes a
    float; energy divided by ``k`` (None: counted in full); None when the MAC names no other output."""
    if mac.output is None or mac.output == mac.acc:
        return None
    o = mac.output
    ob = o.bits if not isinstance(o, emu.FloatFormat) else o.man_bits + 1
    inc = 0 if _truncates(o, mac.output_rounding) else ob  # a truncating mode drops bits: no incrementer
    cells = Cells(ha=inc, mux2=ob, levels=(adder(ob).levels if inc else 0) + 1)
    if isinstance(o, emu.FloatFormat) and not isinstance(acc, emu.FloatFormat):
        cells = cells + barrel_shifter(width, width)
    out = logic(cells, t, f"output conversion to {o}")
    return out if not k else out.scaled(1.0 / k, 1.0, note=f"energy amortised over K={k}")


def _fixed_to_float(mac: emu.MAC, t: TechTable) -> Cost:
    """A fixed-point product (of a fixed operand by a fixed, power-of-two, binary or ternary one) converted
    to the float accumulator's format before its adder, per MAC: its absolute value (XOR2 per bit and an
    incrementer) when signed, a leading-zero counter and a normalising shifter of the product's width, an
    exponent adder (the binary point's position minus the leading zeros) and, when the product's magnitude
    has more significant bits (`_significand_bits`, as `_fma_adder` counts them) than the accumulator's
    significand, no product format has rounded it and no FMA (``fused``) takes it exact, a rounding
    incrementer."""
    views = [fixed_view(f) for f in (mac.act, mac.weight)]
    prod = mac.product
    pw = prod.bits if isinstance(prod, emu.FixedFormat) else sum(v.bits for v in views)
    signed = prod.signed if isinstance(prod, emu.FixedFormat) else any(v.signed for v in views)
    cells = leading_zero_counter(pw) + barrel_shifter(pw, pw) + adder(mac.acc.exp_bits + 1)
    what = f"leading-zero count, {pw}-bit normalising shift, exponent"
    if signed:
        cells = Cells(xor2=pw, ha=pw, levels=1 + adder(pw).levels) + cells
        what = "absolute value, " + what
    m = mac.acc.man_bits + 1
    sig = sum(_significand_bits(f) for f in (mac.act, mac.weight))
    if sig > m and prod is None and not mac.fused:  # an FMA's adder rounds the exact product once
        cells = cells + Cells(ha=m, levels=adder(m).levels)
        what += f", rounding to {m} bits"
    return logic(cells, t, f"fixed product of {pw} bits to {mac.acc} ({what})")


def _name(mac: emu.MAC) -> str:
    return f"{mac.act} x {mac.weight} -> {mac.acc}"
