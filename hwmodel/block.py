"""The cost of block-scaled MACs (OCP MX, NVFP4, scaled integers) and of their storage.

A block-scaled dot product (``emu.block``) multiplies elements, sums
each block's products exactly, multiplies the block sum by the two blocks'
scales and adds it into the accumulator. `block_mac_cost` prices one unit
that does this for a block of B elements per cycle, per MAC (per element
pair), with the parts:

- ``multiplier``: the element multiplier (`hwmodel.cost`'s rules: a small
  float multiplier for FP8/FP6/FP4 elements, an integer one for INT8/INT4,
  built as ``multiplier=`` asks: dadda, array or booth);
- ``aligner``: float elements: each product shifted into the block's fixed-point
  adder tree (a shifter as wide as the exact product, over as many positions);
- ``adder_tree``: B - 1 adders of the exact product width + ceil(log2 B) bits
  per block, i.e. (B - 1)/B of one adder per MAC;
- ``scale``: per block, the product of the two scales, priced by their kinds
  as `operand_scale_cost` prices one scale: two E8M0 (MX, or an int format's
  power-of-two) scales: a 9-bit exponent adder; a power of two and another
  scale: an adder on the other's exponent (an int32 fixed scale's int16
  shift: 16 bits); NVFP4's two E4M3 scales: an E4M3 multiplier, the product
  kept exact (8 significand bits); two bf16 scales: a bf16 multiplier; two
  fp32 (or mixed float) scales: an fp32 multiplier; two int32 fixed scales
  ("fixmul"): a 32 x 32 integer multiplier; divided by B;
- ``convert``: per block, the block sum normalised to a float (leading-zero
  counter and shifter of the tree's width), divided by B;
- ``scale_apply``: per block, the normalised sum, held in the accumulator's
  format, times the scale product (`operand_scale_cost`'s construction for
  one scale): an E8M0 product: a 9-bit exponent adder (a fixed accumulator:
  a shifter of its width over 256 positions); NVFP4: a float multiplier of
  the sum's format by the exact E4M3 x E4M3 product (fp<5,7>); bf16 or fp32:
  a float multiplier of the sum's format by the product's; fixmul: by an
  int32 (a fixed accumulator: a 32-bit integer multiplier); divided by B;
- ``accumulator``: per block, one addition in the accumulator format (fp32 by
  default; a fixed accumulator: an integer adder), divided by B;
- ``acc_register``: the accumulator's register, written once per block,
  divided by B;
- ``overflow``: a fixed accumulator that saturates (``acc_overflow``): 2 XOR2
  and one MUX2 per bit after each of its additions, one that raises on
  overflow: the 2 XOR2 (`hwmodel.cost`'s rule), divided by B.

`hwmodel.cost` of a block-scaled `emu.MAC` adds, as for any MAC, the
``output`` conversion (when the MAC names an output format) once per dot
product, and passes ``multiplier`` and a fixed accumulator's overflow mode.

Tensor or channel scaled integers (both operands int formats without groups,
e.g. int8 per tensor x int8 per channel) share one scale per dot product, so
there is no block tree: the unit is an integer MAC, the element multiplier
and an integer adder of the exact sum's width (product bits + ceil(log2 K))
per MAC lane, K - 1 additions per dot product of K MACs (part
``int_accumulator``, with its ``register``), and once per dot product of K
MACs the parts above from ``scale`` on (the scales' product, the sum
normalised, the product applied, one addition in the accumulator format),
their energy divided by K and their area too (one such stage serves K MAC
lanes: it takes one dot product per cycle).

A dot product of K terms holds ceil(K / B) blocks along K, the last one
partial when B does not divide K (`emu.matmul` encodes each operand so): the
per-block parts then come once per K / ceil(K / B) MACs, not per B (K = 100,
B = 32: 4 blocks, one per 25 MACs), and the tree adds K - ceil(K / B) times
per K MACs.

Energy is per MAC; area is the block unit's (B multipliers, the tree, the
scale and accumulator logic) divided by B: the area per MAC of throughput,
comparable with `hwmodel.cost`'s one-MAC unit. Delay: the unit has two
pipeline stages and the clock follows the longer: the first is the
multiplier, the aligner and the adder tree (ceil(log2 B) adder levels) in
series (a scaled integer: the multiplier and the integer adder); the second
is the scale product beside the sum's normalisation, then the product
applied, the accumulator's addition and its overflow logic in series. NVFP4
at 45 nm: 16 + 4 + 24 = 44 levels, then max(25, 8) + 36 + 42 = 103, so 103;
MXFP8: 71 and 60 (71); the int8 per tensor x per channel unit: 22 and
max(43, 10) + 43 + 42 = 128 (128).

>>> c = block_mac_cost("nvfp4", "nvfp4", k=64)
>>> sum(c.breakdown[p].delay for p in ("multiplier", "aligner", "adder_tree")), c.delay
(44, 103)

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

`operand_scale_cost` generalises it to block-scaled activations beside a MAC
that is not block-scaled (mxfp8_e4m3 activations beside fp16 weights: the MAC
multiplies e4m3 x fp16), and to both operands so (mxfp4 weights beside nvfp4
activations: e2m1 x e2m1): part ``act_scale`` is the activations' scale,
priced as above per block of Ba activations; with both, each scale is applied
once per its own block (the sums nest) and ``block_add`` is charged once, per
the smaller block. Quantising activations into blocks at run time (the
block maximum, the shared scale, rounding the elements) is not priced, as
`block_mac_cost` does not price encoding its operands.

Block runs: a role's blocks are laid along one axis of its tensor
(`emu.block_encode`'s ``axis``), and an axis of L elements holds ceil(L / B)
blocks, the last one partial when B does not divide L (emu stores one scale
per block, partial or not). Within a dot product of K terms the blocks then
lie along runs of L consecutive terms (K / L runs; a convolution's runs are
its c_in input channels, one per kernel position), so the dot product holds
(K / L) ceil(L / B) blocks, not ceil(K / B). ``run=L`` (`operand_scale_cost`,
`weight_scale_cost`, `bits_per_element`) prices that: one scale application
(and one ``block_add``) per L / ceil(L / B) MACs, exactly B when B divides L,
L when L < B; None: runs of K. An int format's tensor or channel scale is one
per dot product (K MACs), whatever the run; a channel scale is stored once per
K elements (one per output unit), a tensor scale once per tensor
(`hwmodel.network_cost`: once for a layer's weights, once per tensor a layer
reads).

`bits_per_element` gives the storage of a block format, scales included:
MXFP4 4 + 8/32 = 4.25 bits, NVFP4 4 + 8/16 = 4.5 bits (plus one fp32 per
tensor), int8 per group of 128 with fp32 scales 8 + 32/128 = 8.25 bits; along
runs of L elements element bits + scale bits x ceil(L / B) / L: MXFP4 along
runs of 16 (a 3x3 convolution over 16 channels) 4 + 8/16 = 4.5 bits, along
runs of 1 (over one channel) 4 + 8 = 12 bits, along runs of 100 (a Linear
layer of 100 inputs: 4 blocks, the last of 4 elements) 4 + 8 x 4/100 = 4.32.

>>> import emu
>>> (round(bits_per_element(emu.block_format("mxfp4")), 3),
...  round(bits_per_element(emu.block_format("nvfp4")), 3))
(4.25, 4.5)
>>> [bits_per_element(emu.block_format("mxfp4"), run=r) for r in (64, 16, 1, 100)]
[4.25, 4.5, 12.0, 4.32]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import emu
from emu.block import ScaleGranularity
from emu.checks import check_int

from .arith import (
    float_adder,
    float_multiplier,
    int_adder,
    int_multiplier,
    logic,
    operand_multiplier,
    register,
)
from .cost import Cost
from .gates import Cells, barrel_shifter, check_multiplier, leading_zero_counter
from .tech import TechTable, get_table

__all__ = ["bits_per_element", "block_mac_cost", "is_block_format", "operand_scale_cost", "weight_scale_cost"]

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
        return fmt.group_size if fmt.granularity is ScaleGranularity.GROUP else k
    return fmt.block_size


def _run(fn: str, k: int, run: int | None, name: str = "run") -> int:
    """``run`` (the parameter ``name``) checked: an int >= 1 dividing ``k``; None: ``k``."""
    if run is None:
        return k
    run = check_int(run, fn, name, 1)
    if k % run:
        raise ValueError(f"{fn}: {name}={run} must divide k={k} (a dot product of k terms is k / {name} runs"
                         f" of {name} consecutive elements)")
    return run


def _per_scale(f: Any, k: int, run: int, operand: str = "weights") -> tuple[float, str]:
    """MACs per scale application along a dot product of ``k`` terms whose blocks lie along runs of ``run``
    (an int format's tensor or channel scale: ``k``; a channel scale of ``operand`` "activations": 1, since
    nets scales activations per feature or channel, along the reduction (`nets.quant.scale_axis`), so each
    term has its own): run / ceil(run / B), exactly B when B divides run, run when run < B; and the blocks
    in words ("block of 32"; "block: 4 blocks per run of 100")."""
    if operand == "activations" and f.kind == "int" and f.granularity is ScaleGranularity.CHANNEL:
        return 1, "term (a scale per input channel)"
    if f.kind == "int" and f.granularity is not ScaleGranularity.GROUP:
        return k, f"block of {k}"
    B = _block(f, k)
    if run % B == 0 or run < B:
        return min(B, run), f"block of {min(B, run)}"
    n = math.ceil(run / B)
    return run / n, f"block: {n} blocks per run of {run}"


def bits_per_element(fmt: Any, k: int | None = None, *, run: int | None = None) -> float:
    """Stored bits per element, scales (and zero points) included.

    Args:
        fmt: a block format (`emu.block_format` value).
        k: the elements sharing an int format's tensor or channel scale (its share: scale bits / k;
            None: no share), an int >= 1 or None.
        run: the consecutive elements the blocks (or an int format's groups) are laid along, an int >= 1:
            each run holds ceil(run / B) scales, the last block partial when B does not divide run
            (`emu.block_encode`), so element bits + scale bits x ceil(run / B) / run; None: whole blocks,
            element bits + scale bits / B (the format's nominal figure). NVFP4's per-tensor fp32 scale is
            not counted either way; a tensor or channel scale ignores ``run``.

    >>> mxfp4, nvfp4 = emu.block_format("mxfp4"), emu.block_format("nvfp4")
    >>> bits_per_element(mxfp4, run=16), bits_per_element(nvfp4, run=1), bits_per_element(mxfp4, run=100)
    (4.5, 12.0, 4.32)
    >>> bits_per_element(emu.block_format("int8_g32_pow2"), run=100)  # 8 + 8 x 4/100
    8.32
    """
    kind = _kind(fmt, "fmt")
    if k is not None:
        k = check_int(k, "bits_per_element", "k", 1)
    if run is not None:
        run = check_int(run, "bits_per_element", "run", 1)
    if kind in ("mx", "nvfp4"):
        if run is None:
            return float(fmt.bits_per_element)
        return fmt.element.bits + 8 * math.ceil(run / fmt.block_size) / run
    extra = _SCALE_BITS[fmt.scale] + (0 if fmt.symmetric else 32)
    if fmt.granularity is not ScaleGranularity.GROUP:
        return fmt.bits + (extra / k if k else 0.0)
    if run is None:
        return fmt.bits + extra / fmt.group_size
    return fmt.bits + extra * math.ceil(run / fmt.group_size) / run


def _product_bits(a: emu.Format, b: emu.Format) -> int:
    """Width of the exact product of two elements as a fixed-point word (sign included)."""
    if isinstance(a, emu.FixedFormat) and isinstance(b, emu.FixedFormat):
        return a.bits + b.bits
    hi = math.ceil(math.log2(a.max * b.max))
    lo = math.floor(math.log2(a.smallest_subnormal * b.smallest_subnormal))
    return hi - lo + 2


def block_mac_cost(fmt_a: Any, fmt_b: Any, acc: Any = "fp32", tech: str | TechTable = "horowitz45", *,
                   k: int = 4096, multiplier: str = "dadda", acc_overflow: str | None = None) -> Cost:
    """Energy per MAC, area per MAC lane and delay of a block-scaled MAC unit (module docstring).

    Args:
        fmt_a, fmt_b: block formats (`emu.block_format` values or names).
        acc: the accumulator: a float or fixed `emu` format or its name (default fp32; "exact" counts
            as fp32); binary, ternary and power-of-two formats are refused (TypeError).
        tech: the technology table.
        k: the dot-product length (amortises tensor and channel scales).
        multiplier: the construction of an integer element multiplier (INT8/INT4 elements): dadda, array
            or booth (`hwmodel.cost`'s rule; float elements' multipliers take none).
        acc_overflow: a fixed accumulator's overflow handling after each of its additions: "wrap" (nothing),
            "saturate" (overflow detection, 2 XOR2, and one MUX2 per accumulator bit, as `hwmodel.cost`
            prices it) or "error" (detection only), part ``overflow``; None: wrap. A float accumulator
            takes None only (its overflow is the float adder's, as in `hwmodel.cost`).

    >>> c = block_mac_cost("mxfp8_e4m3", "mxfp8_e4m3")
    >>> sorted(c.breakdown)
    ['acc_register', 'accumulator', 'adder_tree', 'aligner', 'convert', 'multiplier', 'scale', 'scale_apply']
    >>> c.delay == max(sum(c.breakdown[p].delay for p in ("multiplier", "aligner", "adder_tree")),
    ...                max(c.breakdown["scale"].delay, c.breakdown["convert"].delay)
    ...                + c.breakdown["scale_apply"].delay + c.breakdown["accumulator"].delay)
    True
    """
    fa, fb = _block_format(fmt_a, "block_mac_cost", "fmt_a"), _block_format(fmt_b, "block_mac_cost", "fmt_b")
    _kind(fa, "fmt_a"), _kind(fb, "fmt_b")
    k = check_int(k, "block_mac_cost", "k", 1)
    multiplier = check_multiplier(multiplier, "block_mac_cost", "multiplier")
    t = get_table(tech)
    acc_f = _acc_format(acc, "block_mac_cost")
    ovf = overflow_logic(acc_overflow, acc_f, t, "block_mac_cost")
    ea, eb = _element(fa), _element(fb)
    if all(f.kind == "int" and f.granularity is not ScaleGranularity.GROUP for f in (fa, fb)):
        return _scaled_int_mac(fa, fb, ea, eb, acc_f, t, k, multiplier, ovf)
    nominal = max(1, min(_block(fa, k), _block(fb, k)))
    B = min(nominal, k)  # the tree's lanes
    n_blocks = math.ceil(k / nominal)  # along K, the last partial when B does not divide k (emu's encoding)
    per = k / n_blocks  # MACs per block
    pw = _product_bits(ea, eb)
    tree_w = pw + math.ceil(math.log2(B)) if B > 1 else pw
    parts: dict[str, Cost] = {"multiplier": operand_multiplier(ea, eb, t, multiplier)}
    if isinstance(ea, emu.FloatFormat) or isinstance(eb, emu.FloatFormat):
        parts["aligner"] = logic(barrel_shifter(pw, pw), t, f"aligning each product into {pw} bits")
    tree = int_adder(tree_w, t)
    share = (per - 1) / per  # a block of n elements takes n - 1 additions
    parts["adder_tree"] = Cost(f"{B - 1}-adder tree of {tree_w} bits per block of {B}",
                               tree.energy_pj * share, tree.area_um2 * (B - 1) / B,
                               tree.delay * math.ceil(math.log2(max(B, 2))),
                               tree.sources + (f"{k} - {n_blocks} additions per {k} MACs ({n_blocks}"
                                               " blocks)",))
    conv = logic(leading_zero_counter(tree_w) + barrel_shifter(tree_w, tree_w), t, "normalise")
    stage2 = _scale_stage(fa, fb, acc_f, t, conv, f"normalise the {tree_w}-bit block sum", ovf)
    for name, (c, note) in stage2.items():
        parts[name] = Cost(f"{note}, once per {per:g} MACs", c.energy_pj / per, c.area_um2 / B, c.delay,
                           c.sources + (f"one per block of {per:g}",))
    # two pipeline stages: multiply, align and the adder tree; then scale, convert and accumulate
    delay = max(sum(parts[p].delay for p in ("multiplier", "aligner", "adder_tree") if p in parts),
                _stage2_delay(parts))
    return Cost.total(f"block MAC {fa} x {fb} -> {acc_f} @ {t.name}", parts, delay)


def _scale_stage(fa: Any, fb: Any, acc_f: Any, t: TechTable, conv: Cost, conv_note: str,
                 ovf: Cost | None) -> dict[str, tuple[Cost, str]]:
    """The parts of a block (or dot product) done once per block sum: ``scale`` (the product of the two
    blocks' scales, `_scale_product`), ``convert`` (the sum normalised), ``scale_apply`` (the normalised sum
    times the scale product, in the accumulator's format, `_times_scale`), ``accumulator`` (one addition in
    the accumulator's format), ``acc_register`` (the accumulator's register, written once per block sum)
    and, for a fixed accumulator that saturates or checks, ``overflow``."""
    sc, what, product = _scale_product(fa, fb, t)
    app, app_what, _ = _times_scale(product, acc_f, t)
    add = float_adder(acc_f, t) if isinstance(acc_f, emu.FloatFormat) else int_adder(acc_f.bits, t)
    out = {"scale": (sc, what), "convert": (conv, conv_note), "scale_apply": (app, app_what),
           "accumulator": (add, add.name), "acc_register": (register(acc_f.bits, t), f"{acc_f} register")}
    if ovf is not None:
        out["overflow"] = (ovf, ovf.name)
    return out


def _stage2_delay(parts: Mapping[str, Cost]) -> int:
    """The second pipeline stage's levels: the scale product beside the sum's normalisation, then the
    product applied, the accumulator's addition and its overflow logic in series."""
    return (max(parts["scale"].delay, parts["convert"].delay)
            + sum(parts[p].delay for p in ("scale_apply", "accumulator", "overflow") if p in parts))


def overflow_logic(mode: str | None, acc_f: Any, t: TechTable, fn: str) -> Cost | None:
    """A fixed accumulator's overflow logic per addition (`hwmodel.cost`'s: saturate 2 XOR2 + one MUX2 per
    bit, error 2 XOR2, wrap nothing), or None; ``mode`` checked (a float accumulator takes None only)."""
    if mode is None:
        return None
    if not isinstance(acc_f, emu.FixedFormat):
        raise ValueError(f"{fn}: acc_overflow={mode!r} applies to a fixed accumulator; acc={acc_f} is a"
                         " float one and takes acc_overflow=None (its overflow is the float adder's)")
    if mode not in ("wrap", "saturate", "error"):
        raise ValueError(f"{fn}: acc_overflow={mode!r} is not one of wrap, saturate, error (or None)")
    if mode == "saturate":
        return logic(Cells(xor2=2, mux2=acc_f.bits, levels=2), t, "saturation after every addition")
    if mode == "error":
        return logic(Cells(xor2=2, levels=1), t, "overflow detection")
    return None


def _scaled_int_mac(fa: Any, fb: Any, ea: emu.Format, eb: emu.Format, acc_f: Any, t: TechTable,
                    k: int, multiplier: str = "dadda", ovf: Cost | None = None) -> Cost:
    """Tensor or channel scaled integers: an integer MAC (the element multiplier and an adder of the exact
    sum's width, product bits + ceil(log2 k), k - 1 additions per dot product of k MACs) and, once per dot
    product, the scale stage of a block (`_scale_stage`: the scales' product, the sum normalised, the
    product applied, the addition in ``acc_f``)."""
    w = _product_bits(ea, eb) + math.ceil(math.log2(k))
    acc = int_adder(w, t)
    parts: dict[str, Cost] = {"multiplier": operand_multiplier(ea, eb, t, multiplier),
                              "int_accumulator": Cost(acc.name, acc.energy_pj * (k - 1) / k, acc.area_um2,
                                                      acc.delay, acc.sources + (
                                                          f"{k} - 1 additions per dot product of {k}",)),
                              "register": register(w, t)}
    conv = logic(leading_zero_counter(w) + barrel_shifter(w, w), t, "normalise")
    for name, (c, note) in _scale_stage(fa, fb, acc_f, t, conv, f"normalise the {w}-bit sum", ovf).items():
        parts[name] = Cost(f"{note}, once per dot product of {k} MACs", c.energy_pj / k, c.area_um2 / k,
                           c.delay, c.sources + (f"one per dot product of {k}; one unit per {k} MAC lanes",))
    delay = max(parts["multiplier"].delay + parts["int_accumulator"].delay, _stage2_delay(parts))
    return Cost.total(f"scaled-int MAC {fa} x {fb} -> {acc_f} @ {t.name}", parts, delay)


def _block_format(fmt: Any, fn: str, name: str) -> Any:
    """A block format or its name (`emu.block_format`), the error naming ``fn``'s parameter ``name``."""
    if not isinstance(fmt, str):
        return fmt
    try:
        return emu.block_format(fmt)
    except ValueError as e:
        raise ValueError(f"{fn}: {name}={fmt!r} is not a block format name ({e})") from None


def _acc_format(acc: Any, fn: str) -> Any:
    """The format a block sum is held in: the MAC's accumulator ("exact" counts as fp32)."""
    try:
        acc_f = _FP32 if isinstance(acc, str) and acc == "exact" else (
            emu.get_format(acc) if isinstance(acc, str) else acc)
    except ValueError as e:
        raise ValueError(f"{fn}: acc={acc!r} is not a format name ({e})") from None
    if not isinstance(acc_f, (emu.FloatFormat, emu.FixedFormat)):
        raise TypeError(f"{fn}: acc={acc!r} must be a float or fixed emu format or 'exact'")
    return acc_f


def _scale_kind(f: Any) -> str:
    """The kind of one scale of block format ``f``: "pow2" (E8M0: MX, an int format's power-of-two scale),
    "e4m3" (NVFP4), or an int format's "fp32", "bf16" or "fixmul" (int32 multiplier and shift)."""
    if f.kind == "mx" or (f.kind == "int" and f.scale == "pow2"):
        return "pow2"
    return "e4m3" if f.kind == "nvfp4" else f.scale


# the format a scale of each kind (or the exact product of two E4M3 scales: 4 x 4 significand bits, one
# exponent bit more) is multiplied in; fixmul: its int32 multiplier
_SCALE_VALUE = {"e4m3": emu.get_format("e4m3"), "e4m3xe4m3": emu.FloatFormat(5, 7), "fp32": _FP32,
                "bf16": emu.get_format("bf16"), "fixmul": emu.FixedFormat(32, 0)}


def _times_scale(kind: str, acc_f: Any, t: TechTable) -> tuple[Cost, str, bool]:
    """A sum (in ``acc_f``) times a scale of ``kind`` (`_scale_kind`, or "e4m3xe4m3": two E4M3 scales'
    product): the cost, what it is, and whether the scaled sum stays an integer (a fixed sum under a
    power-of-two or int32 fixed scale)."""
    fixed_sum = isinstance(acc_f, emu.FixedFormat)
    if kind == "pow2" and not fixed_sum:
        return int_adder(9, t), "E8M0 scale: a 9-bit exponent adder on the block sum", False
    if kind == "pow2":
        shift = logic(barrel_shifter(acc_f.bits, 256), t)
        return shift, f"E8M0 scale: shifting the {acc_f.bits}-bit sum", True
    if kind == "fixmul" and fixed_sum:
        return int_multiplier(acc_f.bits, 32, t), "int32 scale multiplier times the block sum", True
    what = {"e4m3": "E4M3 scale", "e4m3xe4m3": "E4M3 x E4M3 scale product"}.get(kind, f"{kind} scale")
    return float_multiplier(acc_f, _SCALE_VALUE[kind], t), f"{what} times the block sum", False


def _apply_scale(f: Any, acc_f: Any, t: TechTable) -> tuple[Cost, str, bool]:
    """One block sum (in ``acc_f``) times the scale of block format ``f`` (`_times_scale`)."""
    return _times_scale(_scale_kind(f), acc_f, t)


def _scale_product(fa: Any, fb: Any, t: TechTable) -> tuple[Cost, str, str]:
    """The product of one scale of ``fa`` and one of ``fb``: its cost, what it is, and the kind of scale
    the product is (`_times_scale`). Two E8M0 (power-of-two) scales: a 9-bit exponent adder; a power of two
    and another scale: an adder on the other's exponent (9 bits; an int32 fixed scale's int16 shift: 16
    bits); two E4M3 (NVFP4): an E4M3 multiplier, the product kept exact; two int32 fixed scales: a 32 x 32
    integer multiplier (the product kept as an int32 multiplier, the shifts added); other float scales: a
    float multiplier of the two formats (bf16 x bf16 in bf16; mixed kinds in fp32)."""
    ka, kb = _scale_kind(fa), _scale_kind(fb)
    if ka == kb == "pow2":
        return int_adder(9, t), "E8M0 x E8M0: a 9-bit exponent adder", "pow2"
    if "pow2" in (ka, kb):
        other = kb if ka == "pow2" else ka
        w = 16 if other == "fixmul" else 9
        return (int_adder(w, t), f"a power-of-two scale times a {other} scale: a {w}-bit adder on its"
                f" {'shift' if other == 'fixmul' else 'exponent'}", other)
    if ka == kb == "fixmul":
        return int_multiplier(32, 32, t), "int32 x int32 fixed scale multipliers", "fixmul"
    if ka == kb == "e4m3":
        return float_multiplier(_SCALE_VALUE["e4m3"], _SCALE_VALUE["e4m3"], t), "E4M3 x E4M3 block scales", \
            "e4m3xe4m3"
    sc = float_multiplier(_SCALE_VALUE[ka], _SCALE_VALUE[kb], t)
    return sc, f"{ka} x {kb} scales: a float multiplier", ka if ka == kb else "fp32"


def operand_scale_cost(acc: Any = "fp32", tech: str | TechTable = "horowitz45", *, k: int,
                       weights: Any = None, activations: Any = None, run: int | None = None,
                       act_run: int | None = None) -> Cost:
    """Per MAC, the scale arithmetic of block-scaled weights, activations or both whose elements a MAC that
    is not block-scaled multiplies (module docstring): parts ``scale`` (the weights' scales), ``act_scale``
    (the activations') and, when a dot product of ``k`` terms holds more than one block, ``block_add``.

    Each operand's scale is applied once per its own block (Bw weights, Ba activations along the
    reduction; B = K for an int format's tensor scale and for the weights' channel scale, one per output
    unit; B = 1 for the activations' channel scale, one per input feature or channel and so per term, as
    nets converts them), to a sum held in the accumulator's
    format, and priced as `weight_scale_cost` prices the weights' one. With both operands block-scaled the
    sums nest when the smaller block divides the larger (MX's 32, NVFP4's 16, power-of-two groups, a tensor
    or channel scale's K; other sizes: a lower bound, their blocks straddle): each
    min(Bw, Ba) block's sum is scaled by the smaller block's scale, those scaled sums are added over the
    larger block and that sum is scaled by the larger block's scale: two scale applications, one per Bw and
    one per Ba, rather than multiplying the two scales for every min(Bw, Ba) block and applying the product
    (two operations per smallest block: never fewer; for two E8M0 scales over equal blocks both are two
    9-bit exponent additions per block). ``block_add``: one addition per min(Bw, Ba) MACs in the
    accumulator's format (fp32 when a float scale turns a fixed sum into a float), charged once whatever
    the number of block-scaled operands.

    The blocks lie along runs of ``run`` consecutive terms (module docstring, "Block runs"): each run of
    L = ``run`` holds ceil(L / B) blocks of an operand, the last partial when B does not divide L, so "per
    B MACs" above reads per L / ceil(L / B) MACs (exactly B when B divides L; L when L < B) and
    ``block_add`` is charged when the dot product holds more than one block of the smaller kind. The
    activations' blocks lie along the same runs, or along runs of ``act_run`` (a Linear layer reading maps
    blocked along their c channels: k / c runs of c, while its weights run along all k); with runs that
    differ the blocks need not nest, and ``block_add`` per the smaller block is a lower bound.

    Args:
        acc: the MAC's accumulator: a float or fixed `emu` format (default fp32; "exact" counts as fp32).
        tech: the technology table.
        k: the dot-product length, an int >= 1.
        weights, activations: the operands' block formats (`emu.block_format` values or names), or None
            for an operand that is not block-scaled; at least one is given.
        run: the consecutive terms of the dot product the blocks are laid along, an int >= 1 dividing
            ``k`` (a convolution over c_in channels: c_in); None: ``k`` (a Linear layer).
        act_run: the same for the activations' blocks, an int >= 1 dividing ``k``; None: ``run``.

    mxfp4 weights (Bw = 32) and nvfp4 activations (Ba = 16) into an fp32 sum, K = 64: per 32 MACs a 9-bit
    exponent adder (0.0325 pJ, between Horowitz's 8- and 16-bit adders), per 16 MACs an fp32 x E4M3
    multiplier and one fp32 addition (0.9 pJ, Horowitz 2014):

    >>> c = operand_scale_cost(k=64, weights="mxfp4", activations="nvfp4")
    >>> sorted(c.breakdown), round(c.breakdown["scale"].energy_pj * 32, 4)
    (['act_scale', 'block_add', 'scale'], 0.0325)
    >>> round(c.breakdown["block_add"].energy_pj * 16, 4)
    0.9

    mxfp4 weights of a 3x3 convolution over 16 channels (K = 144, runs of 16): one 16-element block per
    run, 9 per dot product, so one exponent addition and one fp32 addition per 16 MACs, not per 32:

    >>> c = operand_scale_cost(k=144, weights="mxfp4", run=16)
    >>> round(c.breakdown["scale"].energy_pj * 16, 4), round(c.breakdown["block_add"].energy_pj * 16, 4)
    (0.0325, 0.9)
    """
    k = check_int(k, "operand_scale_cost", "k", 1)
    run = _run("operand_scale_cost", k, run)
    runs = {"weights": run, "activations": run if act_run is None else _run("operand_scale_cost", k, act_run,
                                                                         "act_run")}
    if weights is None and activations is None:
        raise ValueError("operand_scale_cost: weights=None and activations=None; give the block format of"
                         " one or both (emu.block_format: mx, nvfp4 or scaled int)")
    t = get_table(tech)
    acc_f = _acc_format(acc, "operand_scale_cost")
    out: dict[str, Cost] = {}
    blocks, fixed_after = [], True
    for part, operand, fmt in (("scale", "weights", weights), ("act_scale", "activations", activations)):
        if fmt is None:
            continue
        f = _block_format(fmt, "operand_scale_cost", operand)
        _kind(f, f"operand_scale_cost: {operand}")
        B, blocks_of = _per_scale(f, k, runs[operand], operand)
        sc, what, stays_fixed = _apply_scale(f, acc_f, t)
        fixed_after = fixed_after and stays_fixed
        blocks.append((B, blocks_of, f, operand))
        out[part] = Cost(f"{what}, once per {B:g} MACs", sc.energy_pj / B, sc.area_um2 / B, sc.delay,
                         sc.sources + (f"one per {blocks_of} {operand} ({f})",))
    B, blocks_of, f, operand = min(blocks, key=lambda b: b[0])
    if B < k:
        fixed_sum = isinstance(acc_f, emu.FixedFormat)
        if fixed_sum and fixed_after:
            add = int_adder(acc_f.bits, t)
        else:
            add = float_adder(_FP32 if fixed_sum else acc_f, t)
        out["block_add"] = Cost(f"adding the scaled block sum: {add.name}, once per {B:g} MACs",
                                add.energy_pj / B, add.area_um2 / B, add.delay,
                                add.sources + (f"one per {blocks_of} {operand} ({f})",))
    names = ", ".join(f"{operand} {f}" for _, _, f, operand in blocks)
    return Cost.total(f"scales of {names} @ {t.name}", out)


def weight_scale_cost(fmt: Any, acc: Any = "fp32", tech: str | TechTable = "horowitz45", *, k: int,
                      run: int | None = None) -> Cost:
    """Per MAC, the scale arithmetic of weights stored in block format ``fmt`` whose elements a MAC that is
    not block-scaled multiplies (weight-only block scaling; module docstring): parts ``scale`` and, when a
    dot product of ``k`` terms holds more than one block, ``block_add``.

    Args:
        fmt: the weights' block format (`emu.block_format` value or name).
        acc: the MAC's accumulator: a float or fixed `emu` format (default fp32; "exact" counts as fp32).
        tech: the technology table.
        k: the dot-product length (an int format's tensor or channel scale: one scale per dot product).
        run: the consecutive weights the blocks are laid along, dividing ``k`` (`operand_scale_cost`);
            None: ``k``.

    MXFP4 weights into an fp32 sum, K = 64: a 9-bit exponent adder and one fp32 addition per block of 32.

    >>> c = weight_scale_cost("mxfp4", "fp32", k=64)
    >>> sorted(c.breakdown), round(c.energy_pj * 32, 6) == round(0.9 + int_adder(9).energy_pj, 6)
    (['block_add', 'scale'], True)
    """
    f = _block_format(fmt, "weight_scale_cost", "fmt")
    _kind(f, "fmt")
    k = check_int(k, "weight_scale_cost", "k", 1)
    run = _run("weight_scale_cost", k, run)
    t = get_table(tech)
    _acc_format(acc, "weight_scale_cost")
    parts = operand_scale_cost(acc, t, k=k, weights=f, run=run).breakdown
    return Cost.total(f"weight scales of {f} @ {t.name}", parts)
