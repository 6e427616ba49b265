"""The cost of block-scaled MACs (OCP MX, NVFP4, scaled integers) and of their storage.

A block-scaled dot product (``emu.block``) multiplies elements, sums
each block's products exactly, multiplies the block sum by the two blocks'
scales and adds it into the accumulator. `block_mac_cost` prices one unit
that does this for a block of B elements per cycle, per MAC (per element
pair), with the parts:

- ``multiplier``: the element multiplier (`hwmodel.cost`'s rules: a small
  float multiplier for FP8/FP6/FP4 elements, an integer one for INT8/INT4);
- ``aligner``: float elements: each product shifted into the block's fixed-point
  adder tree (a shifter as wide as the exact product, over as many positions);
- ``adder_tree``: B - 1 adders of the exact product width + ceil(log2 B) bits
  per block, i.e. (B - 1)/B of one adder per MAC;
- ``scale``: per block, the product of the two scales (E8M0: an exponent
  adder of 9 bits; NVFP4's E4M3 scales: an E4M3 multiplier; an integer
  format's fp32/bf16 scales: a float multiplier per dot product (tensor or
  channel scales, amortised over ``k``) or per group; power-of-two scales: an
  exponent adder) — divided by B;
- ``convert``: per block, the block sum normalised to a float (leading-zero
  counter and shifter of the tree's width), divided by B;
- ``accumulator``: per block, one addition in the accumulator format (fp32 by
  default; a fixed accumulator: an integer adder), divided by B.

Energy is per MAC; area is the block unit's (B multipliers, the tree, the
scale and accumulator logic) divided by B: the area per MAC of throughput,
comparable with `hwmodel.cost`'s one-MAC unit. Delay: the multiplier, the
aligner and the adder tree (ceil(log2 B) adder levels) in series; scaling and
accumulation are a second pipeline stage.

`weight_scale_cost` prices weight-only block scaling: block-scaled weights
beside activations that are not (mxfp4 weights, fp16 activations), where a
MAC that is not block-scaled multiplies the weights' elements. Per block of B
weights along the reduction (an int format's group; its tensor or channel
scale: the whole dot product, B = K), the block's sum is multiplied by the
weight block's scale:

- ``scale``: an E8M0 scale (MX; an int format's power-of-two scale) on a float
  sum: a 9-bit exponent adder; on a fixed sum: a shifter of the sum's width
  over its 256 positions; NVFP4's E4M3 scale: a float multiplier of the sum's
  format by E4M3; an int format's fp32/bf16 scale: a float multiplier of the
  sum's format by the scale's (its int32 fixed multiplier: an integer
  multiplier of the fixed sum by 32 bits); divided by B;
- ``block_add``: when a dot product holds more than one block (B < K), the
  scaled block sum added into the running sum, one addition in the
  accumulator's format (fp32 when a float scale turns a fixed sum into a
  float), divided by B.

Energy is per MAC and area per MAC lane (shared by the B MACs of a block), as
above; the delay is that of the scaling stage, a second pipeline stage after
the MAC. An exact accumulator counts as fp32; the zero points of asymmetric
int formats are stored (`bits_per_element`) but their correction is not
priced, as in `block_mac_cost`.

`bits_per_element` gives the storage of a block format, scales included:
MXFP4 4 + 8/32 = 4.25 bits, NVFP4 4 + 8/16 = 4.5 bits (plus one fp32 per
tensor), int8 per group of 128 with fp32 scales 8 + 32/128 = 8.25 bits.

>>> import emu
>>> (round(bits_per_element(emu.block_format("mxfp4")), 3),
...  round(bits_per_element(emu.block_format("nvfp4")), 3))
(4.25, 4.5)
"""

from __future__ import annotations

import math
from typing import Any

import emu
from emu.checks import check_int

from .arith import float_adder, float_multiplier, int_adder, int_multiplier, logic, operand_multiplier
from .cost import Cost
from .gates import barrel_shifter, leading_zero_counter
from .tech import TechTable, get_table

__all__ = ["bits_per_element", "block_mac_cost", "is_block_format", "weight_scale_cost"]

_SCALE_BITS = {"fp32": 32, "bf16": 16, "pow2": 8, "fixmul": 48}  # fixmul: int32 M0 + int16 shift, as stored
_FP32 = emu.FloatFormat(8, 23)


def is_block_format(fmt: Any) -> bool:
    """Whether ``fmt`` is a block-scaled format (`emu.block_format`: kind mx, nvfp4 or int).

    >>> is_block_format(emu.block_format("mxfp4")), is_block_format(emu.format("e2m1"))
    (True, False)
    """
    return getattr(fmt, "kind", None) in ("mx", "nvfp4", "int") and not isinstance(fmt, emu.Format)


def _kind(fmt: Any, name: str) -> str:
    kind = getattr(fmt, "kind", None)
    if kind not in ("mx", "nvfp4", "int"):
        raise TypeError(f"{name}={fmt!r} is not a block-scaled format"
                        " (emu.block_format: mx, nvfp4 or scaled int)")
    return kind


def _element(fmt: Any) -> emu.Format:
    return emu.FixedFormat(fmt.bits, 0) if fmt.kind == "int" else fmt.element


def _block(fmt: Any, k: int) -> int:
    """Elements sharing one scale along the reduction (an int format's tensor/channel scale: the whole K)."""
    if fmt.kind == "int":
        return fmt.group_size if fmt.granularity == "group" else k
    return fmt.block_size


def bits_per_element(fmt: Any, k: int | None = None) -> float:
    """Stored bits per element, scales (and zero points) included; per-tensor scales need no share
    (a tensor/channel scale of an int format is amortised over ``k`` elements when given)."""
    kind = _kind(fmt, "fmt")
    if kind in ("mx", "nvfp4"):
        return float(fmt.bits_per_element)
    extra = _SCALE_BITS[fmt.scale] + (0 if fmt.symmetric else 32)
    per = fmt.group_size if fmt.granularity == "group" else k
    return fmt.bits + (extra / per if per else 0.0)


def _product_bits(a: emu.Format, b: emu.Format) -> int:
    """Width of the exact product of two elements as a fixed-point word (sign included)."""
    if isinstance(a, emu.FixedFormat) and isinstance(b, emu.FixedFormat):
        return a.bits + b.bits
    hi = math.ceil(math.log2(a.max * b.max))
    lo = math.floor(math.log2(a.smallest_subnormal * b.smallest_subnormal))
    return hi - lo + 2


def block_mac_cost(fmt_a: Any, fmt_b: Any, acc: Any = "fp32", tech: str | TechTable = "horowitz45", *,
                   k: int = 4096) -> Cost:
    """Energy per MAC, area per MAC lane and delay of a block-scaled MAC unit (module docstring).

    Args:
        fmt_a, fmt_b: block formats (`emu.block_format` values or names).
        acc: the accumulator: a float or fixed `emu` format (default fp32).
        tech: the technology table.
        k: the dot-product length (amortises tensor and channel scales).

    >>> c = block_mac_cost("mxfp8_e4m3", "mxfp8_e4m3")
    >>> sorted(c.breakdown)
    ['accumulator', 'adder_tree', 'aligner', 'convert', 'multiplier', 'scale']
    """
    fa = emu.block_format(fmt_a) if isinstance(fmt_a, str) else fmt_a
    fb = emu.block_format(fmt_b) if isinstance(fmt_b, str) else fmt_b
    ka, kb = _kind(fa, "fmt_a"), _kind(fb, "fmt_b")
    k = check_int(k, "block_mac_cost", "k", 1)
    t = get_table(tech)
    acc_f = emu.get_format(acc) if isinstance(acc, str) else acc
    ea, eb = _element(fa), _element(fb)
    B = max(1, min(_block(fa, k), _block(fb, k), k))
    pw = _product_bits(ea, eb)
    tree_w = pw + math.ceil(math.log2(B)) if B > 1 else pw
    parts: dict[str, Cost] = {"multiplier": operand_multiplier(ea, eb, t)}
    if isinstance(ea, emu.FloatFormat) or isinstance(eb, emu.FloatFormat):
        parts["aligner"] = logic(barrel_shifter(pw, pw), t, f"aligning each product into {pw} bits")
    tree = int_adder(tree_w, t)
    share = (B - 1) / B
    parts["adder_tree"] = Cost(f"{B - 1}-adder tree of {tree_w} bits per block of {B}",
                               tree.energy_pj * share, tree.area_um2 * share,
                               tree.delay * math.ceil(math.log2(max(B, 2))),
                               tree.sources + (f"{B - 1} adders per block of {B} MACs",))
    # the product of the two scales, once per block (or per dot product)
    if ka == kb == "mx" or (ka == kb == "int" and fa.scale == fb.scale == "pow2"):
        sc, what = int_adder(9, t), "E8M0 x E8M0: a 9-bit exponent adder"
    elif ka == kb == "nvfp4":
        e4m3 = emu.get_format("e4m3")
        sc, what = float_multiplier(e4m3, e4m3, t), "E4M3 x E4M3 block scales"
    else:
        sc, what = float_multiplier(_FP32, _FP32, t), "an fp32 scale multiply"
    conv = logic(leading_zero_counter(tree_w) + barrel_shifter(tree_w, tree_w), t, "normalise")
    add = float_adder(acc_f, t) if isinstance(acc_f, emu.FloatFormat) else int_adder(acc_f.bits, t)
    for name, c, note in (("scale", sc, what), ("convert", conv, f"normalise the {tree_w}-bit block sum"),
                          ("accumulator", add, f"{add.name}")):
        parts[name] = Cost(f"{note}, once per {B} MACs", c.energy_pj / B, c.area_um2 / B, c.delay,
                           c.sources + (f"one per block of {B}",))
    # critical path: multiply, align, the adder tree; scaling and accumulation form a second pipeline stage
    delay = sum(parts[p].delay for p in ("multiplier", "aligner", "adder_tree") if p in parts)
    return Cost.total(f"block MAC {fa} x {fb} -> {acc_f} @ {t.name}", parts, delay)


def weight_scale_cost(fmt: Any, acc: Any = "fp32", tech: str | TechTable = "horowitz45", *, k: int) -> Cost:
    """Per MAC, the scale arithmetic of weights stored in block format ``fmt`` whose elements a MAC that is
    not block-scaled multiplies (weight-only block scaling; module docstring): parts ``scale`` and, when a
    dot product of ``k`` terms holds more than one block, ``block_add``.

    Args:
        fmt: the weights' block format (`emu.block_format` value or name).
        acc: the MAC's accumulator: a float or fixed `emu` format (default fp32; "exact" counts as fp32).
        tech: the technology table.
        k: the dot-product length (an int format's tensor or channel scale: one scale per dot product).

    MXFP4 weights into an fp32 sum, K = 64: a 9-bit exponent adder and one fp32 addition per block of 32.

    >>> c = weight_scale_cost("mxfp4", "fp32", k=64)
    >>> sorted(c.breakdown), round(c.energy_pj * 32, 6) == round(0.9 + int_adder(9).energy_pj, 6)
    (['block_add', 'scale'], True)
    """
    f = emu.block_format(fmt) if isinstance(fmt, str) else fmt
    kind = _kind(f, "fmt")
    k = check_int(k, "weight_scale_cost", "k", 1)
    t = get_table(tech)
    acc_f = _FP32 if isinstance(acc, str) and acc == "exact" else (
        emu.get_format(acc) if isinstance(acc, str) else acc)
    if not isinstance(acc_f, (emu.FloatFormat, emu.FixedFormat)):
        raise TypeError(f"weight_scale_cost: acc={acc!r} must be a float or fixed emu format or 'exact'")
    B = max(1, min(_block(f, k), k))
    fixed_sum = isinstance(acc_f, emu.FixedFormat)
    pow2 = kind == "mx" or (kind == "int" and f.scale == "pow2")
    if pow2 and not fixed_sum:
        sc, what = int_adder(9, t), "E8M0 scale: a 9-bit exponent adder on the block sum"
    elif pow2:
        sc, what = logic(barrel_shifter(acc_f.bits, 256), t), f"E8M0 scale: shifting the {acc_f.bits}-bit sum"
    elif kind == "nvfp4":
        sc, what = float_multiplier(acc_f, emu.get_format("e4m3"), t), "E4M3 scale times the block sum"
    elif kind == "int" and f.scale == "fixmul" and fixed_sum:
        sc, what = int_multiplier(acc_f.bits, 32, t), "int32 scale multiplier times the block sum"
    else:
        scale_f = {"fp32": _FP32, "bf16": emu.get_format("bf16")}.get(f.scale, emu.FixedFormat(32, 0))
        sc, what = float_multiplier(acc_f, scale_f, t), f"{f.scale} scale times the block sum"
    parts = {"scale": (sc, what)}
    if B < k:
        if fixed_sum and (pow2 or (kind == "int" and f.scale == "fixmul")):
            add = int_adder(acc_f.bits, t)
        else:
            add = float_adder(_FP32 if fixed_sum else acc_f, t)
        parts["block_add"] = (add, f"adding the scaled block sum: {add.name}")
    out = {name: Cost(f"{what}, once per {B} MACs", c.energy_pj / B, c.area_um2 / B, c.delay,
                      c.sources + (f"one per block of {B} weights ({f})",))
           for name, (c, what) in parts.items()}
    return Cost.total(f"weight scales of {f} @ {t.name}", out)
