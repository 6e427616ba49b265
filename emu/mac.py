"""The multiply-accumulate datapath as an immutable value: `MAC`, `Order`, presets.

A `MAC` says how one dot product y = bias + sum_k a_k w_k is computed in
hardware: operand formats, the multiplier, the alignment of products into the
accumulator, the accumulator (fixed point with wrap/saturate/error after every
addition, a float format rounding every addition, or exact), the order of the
additions and the output conversion. NUMERICS.md section 6 and
docs/semantics.md ("Multiply-accumulate") define every step. The kernels that
run a MAC on whole layers live in `emu.matmul`; this module only describes.
Imports `emu.formats`, `emu.modes`, `emu.operand_grid` and `emu.registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .block.formats import BlockFormat, MXFormat, NVFP4Format, ScaledIntFormat, block_format
from .block.mac import block_datapath
from .checks import check_fields, check_int, parse_record
from .formats import BinaryFormat, FixedFormat, FloatFormat, Format, Pow2Format, TernaryFormat
from .instruction import Instruction
from .late_addend import LateAddend, ProductGroups
from .matrix_units import MATRIX_UNITS
from .modes import Overflow, Rounding, parse_overflow, parse_rounding
from .operand_grid import exponent_span, fixed_view, int_grid, max_code
from .order import Order
from .registry import get_format

__all__ = ["MAC", "MAC_PRESETS", "Order", "as_mac", "mac_preset"]

#: the order kinds whose steps of n products only a float datapath runs (`MAC._check_step_orders`)
_STEP_KINDS = ("tree", "exact")


def _fmt(value: object, param: str, kinds: tuple[str, ...]) -> Format:
    try:
        f = get_format(value)  # type: ignore[arg-type]
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"MAC: {param}={value!r}: {e}") from None
    if f.kind not in kinds:
        raise ValueError(f"MAC: {param}={f} is a {f.kind} format; allowed kinds: {', '.join(kinds)}")
    return f


_BLOCK_TYPES = (MXFormat, NVFP4Format, ScaledIntFormat)
_SIGNS = (BinaryFormat, TernaryFormat)  #: operands whose conversion the format alone defines


def _operand_fmt(value: object, param: str) -> Format | BlockFormat:
    """An operand format: an emu format (fixed, float, pow2, binary, ternary) or a block-scaled format."""
    if isinstance(value, _BLOCK_TYPES):
        return value
    try:
        return _fmt(value, param, ("fixed", "float", "pow2", "binary", "ternary"))
    except ValueError:
        if not isinstance(value, str):
            raise
        try:
            return block_format(value)
        except (ValueError, KeyError):
            raise ValueError(f"MAC: {param}={value!r} is neither an emu format (fx<IL,FL>, e4m3, fp<E,M>,"
                             " pow2<a,b>, binary, ternary, ...) nor a block-scaled format (mxfp8_e4m3, mxfp4,"
                             " nvfp4, int8_channel, ...)") from None


def _sig_bits(f: Format) -> int:
    """Bits of the integer that carries an operand's magnitude (its significand)."""
    if isinstance(f, FixedFormat):
        return f.bits
    if isinstance(f, FloatFormat):
        return f.man_bits + 1
    return 1  # pow2, binary, ternary: a power of two times 1


@dataclass(frozen=True)
class MAC:
    """One multiply-accumulate datapath (NUMERICS.md section 6).

    Args (all formats may be given by name; modes by name):
        act, weight: operand formats (fixed, float, pow2, binary, ternary).
        acc: the accumulator: a fixed format (up to 62 bits), a float format,
            or ``"exact"`` (a Kulisch-style register: integer codes, or, for
            products beyond 62 bits as codes, float64 products summed exactly
            and rounded once into ``output``; see Limits).
        product: a narrower multiplier output format (fixed or float), or None.
        fused: float accumulators only: pass the exact product to the adder (FMA).
        align_rounding: rounding of a product into a fixed accumulator with
            fewer fraction bits (floor: drop the low bits).
        acc_overflow: after every addition: saturate, wrap, error (fixed); inf,
            saturate, error (float).
        acc_rounding: rounding of every float addition (deterministic modes).
        order: ``sequential``, ``lanes(n)``, ``pairwise``, ``blocks(c)``, or
            ``fused(n)``: a matrix unit's steps of n products fused with the
            accumulator (float operands and accumulator; needs ``align_bits``).
        align_bits: ``fused(n)`` only: the fraction bits each term keeps below
            the step's largest exponent; ``align_rounding`` cuts the rest
            (toward_zero: truncation, floor).
        align_min_exp: ``fused(n)`` only, optional: the lowest exponent a step
            aligns to: E = max(E, align_min_exp), so a step whose terms are all
            below 2^align_min_exp still cuts them to multiples of
            2^(align_min_exp - align_bits) (the ``min_exp_limit`` of Khattak &
            Mikaitis' H100 and B200 models). None (the default): no floor.
        late_addend: ``fused(n)`` only, optional: a `LateAddend` (or a dict
            of its fields): the step aligns its products without the
            accumulator and adds the accumulator in a second, two-term
            alignment (AMD CDNA3; `emu.late_addend`). None: the accumulator
            is aligned with the products.
        product_groups: ``all``, or ``odd_even`` (with ``late_addend``): the
            products at even and odd positions of a step are aligned apart
            and joined by a two-term alignment (CDNA3 fp8).
        instruction: ``fused(n)`` only, optional: an `Instruction` (or a
            dict of its fields): the products of one instruction (k, a
            multiple of n), the order its steps take them, and whether the
            accumulator enters its first step or is added after its last
            (`emu.instruction`). None: steps of n in natural K order, the
            accumulator entering each step.
        product_inf: with ``late_addend``: a product of magnitude
            2^(emax + 1) of the accumulator or more makes the step an
            infinity of its sign (NaN for both signs).
        output: the output format, or None to keep the accumulator's.
        output_rounding, output_overflow: the output conversion.
        input_rounding, input_overflow: conversion of real inputs to the operands.
        product_rounding, product_overflow: rounding into ``product``.

    A rounding or overflow field for a step the datapath lacks (``product_rounding``
    without ``product``, ``output_rounding`` or ``output_overflow`` without ``output``, ``acc_rounding``
    with a fixed or exact accumulator, ``align_rounding`` with a float
    accumulator outside ``fused(n)`` or an exact one), or for a step that
    drops no bit (``product_rounding`` into a product keeping every fraction
    bit of the exact products, ``align_rounding`` into a fixed accumulator
    keeping every fraction bit of the products) must keep its default;
    another value raises ValueError rather than changing nothing.

    Limits, checked here rather than at the first product: a float accumulator
    forms each product exactly in float64, so operands' significands total at
    most 53 bits and every exact product lies in [2^-1000, 2^1000]; its
    ``product`` is a float format (at most 50 fraction bits, inside float64's
    exponent range). A fixed or exact accumulator adds integer codes
    (`emu.operand_grid.int_grid`) of at most 62 bits per product; its ``product``
    is fixed, and the largest product aligned to ``product`` or to the
    accumulator's grid (shifted left), or a block of them (``order="blocks(c)"``),
    stays below 2^62; an exact one's grid 2^-F has -938 <= F <= 1000. An exact
    accumulator whose products need more than 62 bits as codes (fp16 x fp16: 82;
    `wide_exact`) forms them in float64 and sums them exactly (`emu.datapath.wide`):
    float, fixed or pow2 operands without ``product``, significands totalling at
    most 53 bits, products within [2^-1074, 2^1000]; ``output`` must be a signed
    float format of at most 50 fraction bits inside float64's exponent range
    (fp32, bf16, fp16, e4m3, ...) with a deterministic ``output_rounding`` (the
    sum is rounded to odd at 53 bits, then once into ``output``).

    >>> m = MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<2,14>")
    >>> str(m)
    'fx<1,7> x fx<1,7> -> fx<2,14> (saturate, sequential)'
    >>> str(m.exact_product)
    'fx<2,14>'
    """

    act: Any
    weight: Any
    acc: Any
    product: Any = None
    fused: bool = False
    align_rounding: Any = Rounding.FLOOR
    acc_overflow: Any = None
    acc_rounding: Any = Rounding.NEAREST_EVEN
    order: Any = field(default_factory=Order)
    output: Any = None
    output_rounding: Any = Rounding.NEAREST_EVEN
    output_overflow: Any = None
    input_rounding: Any = Rounding.NEAREST_EVEN
    input_overflow: Any = Overflow.SATURATE
    product_rounding: Any = Rounding.NEAREST_EVEN
    product_overflow: Any = None
    align_bits: Any = None
    align_min_exp: Any = None
    late_addend: Any = None
    product_groups: Any = ProductGroups.ALL
    product_inf: bool = False
    instruction: Any = None

    def __post_init__(self) -> None:
        a = _operand_fmt(self.act, "act")
        w = _operand_fmt(self.weight, "weight")
        exact = isinstance(self.acc, str) and self.acc.strip().lower() == "exact"
        acc = "exact" if exact else _fmt(self.acc, "acc", ("fixed", "float"))
        set_ = object.__setattr__
        set_(self, "act", a)
        set_(self, "weight", w)
        set_(self, "acc", acc)
        if isinstance(a, _BLOCK_TYPES) or isinstance(w, _BLOCK_TYPES):
            self._block_post_init(a, w)
            return
        for name, f in (("act", a), ("weight", w)):
            if isinstance(f, TernaryFormat) and f.method == "ttq":
                raise ValueError(f"MAC: {name}={f}: TTQ's two scales (positive, negative) are no operand"
                                 " scale of a datapath; quantize the weights with emu.quantize and give a"
                                 f" fixed or float {name} format")
        if a.has_data_scale and isinstance(a, (BinaryFormat, TernaryFormat)) and a.scale == "channel":
            raise ValueError(
                "MAC: act may not be scaled per channel (a channel scale belongs to the weights)"
            )
        if not isinstance(self.fused, bool):
            raise TypeError(f"MAC: fused={self.fused!r} must be a bool")
        prod = None if self.product is None else _fmt(self.product, "product", ("fixed", "float"))
        set_(self, "product", prod)
        for name, f in (("acc", acc), ("product", prod)):  # float arithmetic: no rule for unsigned ones
            if isinstance(f, FloatFormat) and not f.signed:
                raise ValueError(f"MAC: {name}={f} is an unsigned float format; the {name} of a MAC takes"
                                 " signed float formats only (signed=True)")
        for name in ("align_rounding", "acc_rounding", "output_rounding", "input_rounding",
                     "product_rounding"):
            set_(self, name, parse_rounding(getattr(self, name), "MAC", name))
        set_(self, "input_overflow", parse_overflow(self.input_overflow, "MAC", "input_overflow"))
        set_(self, "order", Order.parse(self.order))
        self._parse_output()
        # accumulator overflow and its allowed values
        if exact:
            if self.acc_overflow not in (None, "saturate", Overflow.SATURATE):
                raise ValueError("MAC: acc_overflow does not apply to an exact accumulator")
            set_(self, "acc_overflow", Overflow.SATURATE)
        else:
            ovf = acc.default_overflow if self.acc_overflow is None else parse_overflow(
                self.acc_overflow, "MAC", "acc_overflow")
            allowed = acc.overflow_modes if isinstance(acc, FixedFormat) else tuple(
                m for m in acc.overflow_modes if m != Overflow.NAN)
            if ovf not in allowed:
                raise ValueError(f"MAC: acc_overflow={ovf} is not allowed for {acc}; allowed: "
                                 + ", ".join(str(m) for m in allowed))
            set_(self, "acc_overflow", ovf)
        if self.acc_rounding == Rounding.STOCHASTIC:
            raise ValueError("MAC: acc_rounding='stochastic' is not supported; use a deterministic mode")
        if self.align_rounding == Rounding.STOCHASTIC:
            raise ValueError("MAC: align_rounding='stochastic' is not supported; use a deterministic mode")
        if self.input_overflow not in (Overflow.SATURATE, Overflow.ERROR):
            raise ValueError(f"MAC: input_overflow={self.input_overflow} must be saturate or error")
        self._parse_output_overflow()
        if prod is not None:
            po = prod.default_overflow if self.product_overflow is None else parse_overflow(
                self.product_overflow, "MAC", "product_overflow")
            if po not in prod.overflow_modes or po == Overflow.NAN:
                raise ValueError(f"MAC: product_overflow={po} is not allowed for {prod}")
            set_(self, "product_overflow", po)
        elif self.product_overflow is not None:
            raise ValueError("MAC: product_overflow given without a product format")
        self._check_combination()

    def _parse_output(self) -> None:
        out = None if self.output is None else _fmt(self.output, "output", ("fixed", "float", "pow2"))
        object.__setattr__(self, "output", out)
        rounding = parse_rounding(self.output_rounding, "MAC", "output_rounding")
        object.__setattr__(self, "output_rounding", rounding)

    def _parse_output_overflow(self) -> None:
        final = self.output_format
        oo = final.default_overflow if self.output_overflow is None else parse_overflow(
            self.output_overflow, "MAC", "output_overflow")
        if oo not in final.overflow_modes:
            raise ValueError(f"MAC: output_overflow={oo} is not allowed for {final}; allowed: "
                             + ", ".join(str(m) for m in final.overflow_modes))
        if self.output is None and oo != final.default_overflow:  # no output conversion to apply it to
            raise ValueError(f"MAC: output_overflow={oo} does not apply here (without an output format the"
                             f" accumulator's values are the outputs); allowed: {final.default_overflow}")
        object.__setattr__(self, "output_overflow", oo)

    def _block_post_init(self, a: Any, w: Any) -> None:
        """The fields of a datapath with block-scaled operands: what its engine implements, checked;
        every other field must keep its default (the engine has no such step)."""
        if not (isinstance(a, _BLOCK_TYPES) and isinstance(w, _BLOCK_TYPES)):
            raise ValueError(f"MAC: act={a} and weight={w}: block-scaled operands come in pairs (both block"
                             " formats of one family)")
        fixed_defaults = {"product": None, "fused": False, "order": Order(),
                          "input_rounding": Rounding.NEAREST_EVEN, "input_overflow": Overflow.SATURATE,
                          "product_rounding": Rounding.NEAREST_EVEN, "product_overflow": None,
                          "align_rounding": Rounding.FLOOR, "align_bits": None, "align_min_exp": None,
                          "late_addend": None, "product_groups": ProductGroups.ALL, "product_inf": False,
                          "instruction": None}
        for name, default in fixed_defaults.items():
            value = getattr(self, name)
            if name == "order":
                value = Order.parse(value)
            elif name.endswith("rounding"):
                value = parse_rounding(value, "MAC", name)
            elif name == "input_overflow":
                value = parse_overflow(value, "MAC", name)
            elif name == "product_groups":
                value = ProductGroups.parse(value)
            if value != default:
                raise ValueError(f"MAC: {name}={value} does not apply to block-scaled operands ({a} x {w});"
                                 f" allowed: {default} (elements round to nearest even and saturate, block"
                                 " products are exact, blocks accumulate in increasing K, a fixed accumulator"
                                 " floors each block term)")
            object.__setattr__(self, name, value)
        mode = parse_rounding(self.acc_rounding, "MAC", "acc_rounding")
        object.__setattr__(self, "acc_rounding", mode)
        ovf = None if self.acc_overflow is None else parse_overflow(self.acc_overflow, "MAC", "acc_overflow")
        if self.exact_acc:
            if ovf not in (None, Overflow.SATURATE):
                raise ValueError("MAC: acc_overflow does not apply to an exact accumulator")
            ovf = Overflow.SATURATE
            block_datapath(a, w, None, mode, None)
        else:
            ovf = block_datapath(a, w, self.acc, mode, ovf)
        object.__setattr__(self, "acc_overflow", ovf)
        self._parse_output()
        self._parse_output_overflow()

    @property
    def block_scaled(self) -> bool:
        """Whether the operands are block-scaled formats (`emu.block`): the block engine runs the product."""
        return isinstance(self.act, _BLOCK_TYPES)

    def __hash__(self) -> int:
        """The fields' hash, memoised: datapaths key the plans a product looks up on every call."""
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash(tuple(getattr(self, f.name) for f in fields(self)))
            object.__setattr__(self, "_hash", h)
        return h  # type: ignore[no-any-return]

    def __getstate__(self) -> dict[str, Any]:
        """The fields without the memoised hash (string hashes differ between processes)."""
        return {k: v for k, v in self.__dict__.items() if k != "_hash"}

    # -- derived ---------------------------------------------------------------------------------

    @property
    def exact_acc(self) -> bool:
        """Whether the accumulator is exact (Kulisch-style)."""
        return self.acc == "exact"

    @property
    def wide_exact(self) -> bool:
        """Whether acc="exact" sums float64 products (`emu.datapath.wide`): integer ones beyond 62 bits."""
        wide = not self.block_scaled and int_grid(self.act)[1] + int_grid(self.weight)[1] > 62
        return self.exact_acc and wide

    @property
    def float_acc(self) -> bool:
        """Whether the accumulator is a float format."""
        return isinstance(self.acc, FloatFormat)

    @property
    def output_format(self) -> Format:
        """The format of the result: ``output``, else the accumulator's.

        An exact accumulator without ``output`` keeps its exact value, reported
        in float64 (`exact_sum_format` says when that is exact).
        """
        if self.output is not None:
            return self.output
        if self.exact_acc:
            return FloatFormat(11, 52)
        return self.acc  # type: ignore[no-any-return]

    @property
    def exact_product(self) -> Format | None:
        """The format that holds every exact product, for fixed-point-like operands.

        Fixed x fixed: <ILa + ILw, FLa + FLw> (signed when either is). Powers of
        two, binary and ternary operands count as fixed formats of their codes.
        None when an operand is a float.
        """
        fa, fw = fixed_view(self.act), fixed_view(self.weight)
        if fa is None or fw is None:
            return None
        return FixedFormat(fa.int_bits + fw.int_bits, fa.frac_bits + fw.frac_bits,
                           signed=fa.signed or fw.signed)

    def _check_combination(self) -> None:
        self._check_fused_steps()
        self._check_unused_roundings()
        if self.fused and not self.float_acc:
            raise ValueError("MAC: fused=True applies to float accumulators only")
        if self.fused and self.product is not None:
            raise ValueError("MAC: fused=True passes the exact product; it cannot also round to product=")
        sa, sw = _sig_bits(self.act), _sig_bits(self.weight)
        if sa + sw > 62:
            raise ValueError(
                f"MAC: the exact product of {self.act} and {self.weight} needs {sa + sw} bits; at most 62 are"
                " supported"
            )
        if self.float_acc:
            self._check_float_products(sa + sw)
        else:
            self._check_integer_products()

    def _check_float_products(self, sig_bits: int) -> None:
        """A float accumulator: its products are formed exactly in float64, so they must fit there."""
        acc = self.acc
        assert isinstance(acc, FloatFormat)
        if (acc.man_bits > 50 or acc.emax > 1000 or acc.emin - acc.man_bits < -1000
                or not acc.has_normals):
            raise ValueError(f"MAC: float accumulator {acc} must have normal numbers, at most 50 fraction"
                             " bits and an exponent range inside float64's")
        if sig_bits > 53:
            raise ValueError(f"MAC: products of {self.act} and {self.weight} need {sig_bits}"
                             " significand bits; a float accumulator supports at most 53")
        (la, ha), (lw, hw) = exponent_span(self.act), exponent_span(self.weight)
        if la + lw < -1000 or ha + hw > 1000:
            raise ValueError(f"MAC: the exact products of {self.act} x {self.weight} span 2^{la + lw} to"
                             f" 2^{ha + hw}, outside [2^-1000, 2^1000] where a float accumulator forms them"
                             " exactly (float64)")
        prod = self.product
        if prod is not None and (not isinstance(prod, FloatFormat) or prod.man_bits > 50 or prod.emax > 1000
                                 or prod.emin - prod.man_bits < -1000 or not prod.has_normals):
            raise ValueError(f"MAC: product={prod} with a float accumulator must be a float format with"
                             " normals, at most 50 fraction bits and an exponent range inside float64's")

    def _check_integer_products(self) -> None:
        """A fixed or exact accumulator: products are integer codes of at most 62 bits."""
        prod = self.product
        if prod is not None and not isinstance(prod, FixedFormat):
            raise ValueError(f"MAC: product={prod} with a fixed or exact accumulator must be a fixed format")
        (fa, wa), (fw, ww) = int_grid(self.act), int_grid(self.weight)
        if (prod is not None and self.product_rounding == Rounding.STOCHASTIC
                and fa + fw - prod.frac_bits > 63):
            raise ValueError(f"MAC: product={prod} drops {fa + fw - prod.frac_bits} fraction bits of the"
                             " exact product; stochastic product rounding drops at most 63")
        if wa + ww > 62 and self.exact_acc and prod is None:
            self._check_wide_exact()  # products beyond 62 bits as codes: the wide exact path, if it can
            return
        if wa + ww > 62:
            wide = " (an exact one without product= also sums float64-exact products)" * self.exact_acc
            raise ValueError(f"MAC: the integer product of {self.act} ({wa} bits as codes) and {self.weight}"
                             f" ({ww} bits) needs {wa + ww} bits; at most 62 are supported with a fixed or"
                             f" exact accumulator{wide}")
        # terms are int64 codes aligned by shifts: the largest, shifted left, stays below 2^62
        pmax, fl_t = max_code(self.act) * max_code(self.weight), fa + fw
        self._check_lossless_steps(fl_t)
        if prod is not None:
            if fl_t < prod.frac_bits and pmax << (prod.frac_bits - fl_t) >= 1 << 62:
                raise ValueError(f"MAC: aligning the products of {self.act} and {self.weight} to"
                                 f" product={prod} needs more than 62 bits; give product fewer fraction bits")
            pmax, fl_t = max(-prod.qmin, prod.qmax), prod.frac_bits
        if self.exact_acc and not -938 <= fl_t <= 1000:  # its register: the fixed format <62 - F, F>
            raise ValueError(f"MAC: acc=exact sums the products of {self.act} and {self.weight} on a grid of"
                             f" 2^{-fl_t}; allowed: 2^-1000 to 2^938 (a fixed format's at most 1000 bits)")
        if self.exact_acc:
            return
        up = max(0, self.acc.frac_bits - fl_t)
        if pmax << up >= 1 << 62:
            raise ValueError(f"MAC: aligning the products of {self.act} and {self.weight} into acc={self.acc}"
                             f" shifts them left by {up} bits, beyond 62 bits; give acc fewer fraction bits")
        if self.order.kind == "blocks" and self.order.n * (pmax << up) >= 1 << 62:
            raise ValueError(f"MAC: order={self.order} sums {self.order.n} aligned products in a block, which"
                             " needs more than 62 bits; use smaller blocks")

    def _check_wide_exact(self) -> None:
        """An exact accumulator of products beyond 62 bits as codes (`wide_exact`): float64 must hold every
        product, and ``output`` must be a float format that round-to-odd at 53 bits serves (Limits)."""
        a, w, out = self.act, self.weight, self.output
        pair = f"acc=exact and {a} x {w} (integer products beyond 62 bits: summed as float64 products)"
        for name, f in (("act", a), ("weight", w)):
            if not isinstance(f, (FloatFormat, FixedFormat, Pow2Format)):
                raise ValueError(f"MAC: {name}={f} with {pair}: allowed operand kinds: float, fixed, pow2")
        (la, ha), (lw, hw) = exponent_span(a), exponent_span(w)
        if _sig_bits(a) + _sig_bits(w) > 53 or la + lw < -1074 or ha + hw > 1000:
            raise ValueError(f"MAC: {pair}: the products need {_sig_bits(a) + _sig_bits(w)} significand bits"
                             f" and span 2^{la + lw} to 2^{ha + hw}; allowed: at most 53 bits within"
                             " [2^-1074, 2^1000], where float64 holds every product exactly")
        if out is None:
            raise ValueError(f"MAC: output=None with {pair}: the exact sum is not a float64 in general; give"
                             " output=, e.g. fp32")
        if (not isinstance(out, FloatFormat) or not out.signed or out.man_bits > 50 or out.emax > 1000
                or out.emin - out.man_bits < -1000 or not out.has_normals):
            raise ValueError(f"MAC: output={out} with {pair}: allowed: a signed float format with normals,"
                             " at most 50 fraction bits and an exponent range inside float64's (fp32, bf16,"
                             " fp16, e4m3, ...)")
        if self.output_rounding == Rounding.STOCHASTIC:
            raise ValueError(f"MAC: output_rounding=stochastic with {pair}: the exact sum is rounded to odd"
                             " at 53 bits first, which keeps every deterministic rounding's result but not"
                             " the remainder stochastic rounding needs; allowed: a deterministic mode")

    def _check_lossless_steps(self, fl_exact: int) -> None:
        """A rounding of a step that never drops a bit is refused as an unused one: product_rounding where
        the product format keeps every one of the exact products' ``fl_exact`` fraction bits, and
        align_rounding where a fixed accumulator keeps every fraction bit of the (rounded) products."""
        prod = self.product
        fl_in = fl_exact if prod is None else prod.frac_bits
        if prod is not None and prod.frac_bits >= fl_exact and self.product_rounding != Rounding.NEAREST_EVEN:
            raise ValueError(f"MAC: product_rounding={self.product_rounding} does not apply here"
                             f" (product={prod} keeps all {fl_exact} fraction bits of the exact products);"
                             " allowed: nearest_even")
        if not self.exact_acc and self.acc.frac_bits >= fl_in and self.align_rounding != Rounding.FLOOR:
            raise ValueError(f"MAC: align_rounding={self.align_rounding} does not apply here (acc={self.acc}"
                             f" keeps all {fl_in} fraction bits of the products); allowed: floor")

    def _check_unused_roundings(self) -> None:
        """A rounding given for a step this datapath does not have is refused, not ignored: each must keep
        its default where its step is missing."""
        ne, unused = Rounding.NEAREST_EVEN, []
        if self.product is None and self.product_rounding != ne:
            unused.append(("product_rounding", ne, "without a product format the products are not rounded"))
        if self.output is None and self.output_rounding != ne:
            unused.append(("output_rounding", ne, "without an output format the accumulator's values are the"
                                                  " outputs"))
        if not self.float_acc and self.acc_rounding != ne:
            unused.append(("acc_rounding", ne, "a fixed or exact accumulator's additions are exact"))
        if isinstance(self.act, _SIGNS) and isinstance(self.weight, _SIGNS):  # conversions by their formats
            if self.input_rounding != ne:
                unused.append(("input_rounding", ne, "binary and ternary operands convert as their formats"
                                                     " say"))
            if self.input_overflow != Overflow.SATURATE:
                unused.append(("input_overflow", Overflow.SATURATE, "binary and ternary operands never"
                                                                    " overflow"))
        no_align = self.exact_acc or (self.float_acc and self.order.kind != "fused")
        if no_align and self.align_rounding != Rounding.FLOOR:
            unused.append(("align_rounding", Rounding.FLOOR, "it rounds products into a fixed accumulator or"
                                                             " a fused step's alignment"))
        if unused:
            name, default, why = unused[0]
            raise ValueError(f"MAC: {name}={getattr(self, name)} does not apply here ({why}); allowed:"
                             f" {default}")

    def _check_fused_steps(self) -> None:
        """The fields of a multi-term fused datapath (``order="fused(n)"``), checked; the step orders
        ``tree(n)`` and ``exact(n)`` by `_check_step_orders`."""
        self._parse_late_fields()
        if self.order.kind in _STEP_KINDS:
            self._check_step_orders()
        if self.order.kind != "fused":
            for name in ("align_bits", "align_min_exp", "late_addend", "instruction"):
                if getattr(self, name) is not None:
                    raise ValueError(f"MAC: {name}={getattr(self, name)!r} applies to order='fused(n)' only")
            self._check_late_only()
            return
        for name in ("act", "weight", "acc"):
            if not isinstance(getattr(self, name), FloatFormat):
                raise ValueError(f"MAC: order='{self.order}' needs float formats;"
                                 f" {name}={getattr(self, name)}")
        if self.product is not None or self.fused:
            raise ValueError(f"MAC: order='{self.order}' adds exact products; product= and fused= do not"
                             " apply")
        if self.order.n > 1024:
            raise ValueError(f"MAC: order='{self.order}': at most 1024 products per step")
        if self.align_bits is None:
            raise ValueError(f"MAC: order='{self.order}' needs align_bits (the fraction bits a term keeps"
                             " below the step's largest exponent), an int in [1, 40]")
        object.__setattr__(self, "align_bits", check_int(self.align_bits, "MAC", "align_bits", 1, 40))
        late = self.late_addend
        widest = self.align_bits if late is None else max(self.align_bits, late.addend_bits, late.sum_bits)
        lowest = min(self.act.emin + self.weight.emin, self.acc.emin,
                     *(() if late is None or late.zero_exp is None else (late.zero_exp,))) - widest
        if lowest < -1020 or self.act.emax + self.weight.emax + self.align_bits > 1020:
            raise ValueError(f"MAC: order='{self.order}': the steps' units 2^(E - align_bits) of {self.act} x"
                             f" {self.weight} -> {self.acc} leave float64's normal range (lowest 2^{lowest})")
        if self.align_min_exp is not None:
            object.__setattr__(self, "align_min_exp",
                               check_int(self.align_min_exp, "MAC", "align_min_exp", -1000, 1000))
        if self.align_rounding not in (Rounding.TOWARD_ZERO, Rounding.FLOOR):
            raise ValueError(f"MAC: align_rounding={self.align_rounding} does not apply to"
                             f" order='{self.order}'; allowed: toward_zero, floor")
        if late is None:
            self._check_late_only()
        ins = self.instruction
        if ins is not None and ins.k % self.order.n:
            raise ValueError(f"MAC: instruction={ins}: k must be a multiple of the step's n={self.order.n}")
        if ins is not None and late is not None:
            raise ValueError("MAC: instruction= and late_addend= do not combine; allowed: one of them")

    def _parse_late_fields(self) -> None:
        """``late_addend``, ``instruction``, ``product_groups`` and ``product_inf`` as their types."""
        for name, cls in (("late_addend", LateAddend), ("instruction", Instruction)):
            object.__setattr__(self, name, parse_record(cls, getattr(self, name), "MAC", name))
        object.__setattr__(self, "product_groups", ProductGroups.parse(self.product_groups))
        if not isinstance(self.product_inf, bool):
            raise TypeError(f"MAC: product_inf={self.product_inf!r} must be a bool")

    def _check_late_only(self) -> None:
        """Without a late addend: the fields that only a late-addend step runs keep their defaults."""
        if self.product_groups != ProductGroups.ALL:
            raise ValueError(f"MAC: product_groups={self.product_groups} needs order='fused(n)' with a"
                             " late_addend; allowed here: all")
        if self.product_inf:
            raise ValueError("MAC: product_inf=True needs order='fused(n)' with a late_addend; allowed"
                             " here: False")

    def _check_step_orders(self) -> None:
        """The fields of ``order="tree(n)"`` and ``order="exact(n)"``, checked."""
        kind = self.order.kind
        for name in ("act", "weight", "acc"):
            if not isinstance(getattr(self, name), FloatFormat):
                raise ValueError(f"MAC: order='{self.order}' needs float formats;"
                                 f" {name}={getattr(self, name)}")
        if self.order.n > 1024:
            raise ValueError(f"MAC: order='{self.order}': at most 1024 products per step")
        if self.fused:
            raise ValueError(f"MAC: order='{self.order}' does not take fused=True; allowed: False"
                             + (" (the products are exact)" if kind == "exact" else
                                " (the products round to product=)"))
        if kind == "exact" and self.product is not None:
            raise ValueError(f"MAC: order='{self.order}' adds exact products; product= does not apply")
        if kind == "tree":
            n = self.order.n
            if n & (n - 1):
                raise ValueError(f"MAC: order='{self.order}': the tree needs n a power of two (1, 2, 4, ...)")
            if self.product is not None and not isinstance(self.product, FloatFormat):
                raise ValueError(f"MAC: order='{self.order}' needs a float product=; got {self.product}")
            if self.product_rounding == Rounding.STOCHASTIC:  # the tree kernels round deterministically
                raise ValueError(f"MAC: order='{self.order}' does not take product_rounding='stochastic';"
                                 " allowed: the deterministic roundings (the tree's products round as the"
                                 " unit rounds them)")
        if (self.act.emax + self.weight.emax > 1000
                or self.act.emin + self.weight.emin - self.act.man_bits - self.weight.man_bits < -1000):
            raise ValueError(f"MAC: order='{self.order}': products of {self.act} x {self.weight} leave"
                             " float64's normal range")

    def __str__(self) -> str:
        if self.block_scaled:
            s = f"{self.act} x {self.weight} -> {self.acc}"
            return s if self.output is None else s + f" -> {self.output}"
        acc = "exact" if self.exact_acc else f"{self.acc}"
        mode = "" if self.exact_acc else f"{self.acc_overflow}, "
        order = f"{self.order}, {self.align_bits} bits" if self.order.kind == "fused" else f"{self.order}"
        if self.align_min_exp is not None:
            order += f", E >= {self.align_min_exp}"
        if self.late_addend is not None:
            order += f", {self.late_addend}"
        if self.product_groups != ProductGroups.ALL:
            order += f", {self.product_groups} groups"
        if self.product_inf:
            order += ", inf products"
        if self.instruction is not None:
            order += f", {self.instruction}"
        if self.fused:
            order += ", fma"
        s = f"{self.act} x {self.weight} -> {acc} ({mode}{order})"
        if self.product is not None:
            s = s.replace(" -> ", f" -> {self.product} -> ", 1)
        if self.output is not None:
            s += f" -> {self.output}"
        return s


#: The datapaths users name, by name (`mac_preset`).
MAC_PRESETS: dict[str, dict[str, Any]] = {
    "int8 x int8 -> int32": dict(act="int8", weight="int8", acc="fx<32,0>", acc_overflow="wrap"),
    "int8 x int8 -> int16 sat": dict(act="int8", weight="int8", acc="fx<16,0>", acc_overflow="saturate"),
    "fx<2,14> x fx<2,14> -> exact -> fx<2,14>": dict(act="fx<2,14>", weight="fx<2,14>", acc="exact",
                                                      output="fx<2,14>"),
    "e4m3 x e4m3 -> fp32": dict(act="e4m3", weight="e4m3", acc="fp32"),
    "e5m2 x e4m3 -> fp32": dict(act="e5m2", weight="e4m3", acc="fp32"),
    "bf16 x bf16 -> fp32": dict(act="bf16", weight="bf16", acc="fp32"),
    "fp16 x fp16 -> fp16": dict(act="fp16", weight="fp16", acc="fp16"),
    "fp16 x fp16 -> fp32": dict(act="fp16", weight="fp16", acc="fp32", fused=True),
    "binary x binary -> popcount": dict(act="binary", weight="binary", acc="fx<32,0>", acc_overflow="wrap"),
    "pow2 weights -> shift-and-add": dict(act="fx<4,12>", weight="pow2<-8,0>", acc="fx<10,22>"),
    # block-scaled operands (emu.block): OCP MX, NVFP4, and int8 per tensor x int8 per output channel
    # (the exact integer sum dequantized once into fp32; `int_matmul_requant` is its requantizing path)
    "mxfp8": dict(act="mxfp8_e4m3", weight="mxfp8_e4m3", acc="fp32"),
    "mxfp4": dict(act="mxfp4", weight="mxfp4", acc="fp32"),
    "nvfp4": dict(act="nvfp4", weight="nvfp4", acc="fp32"),
    "int8_requant": dict(act="int8_tensor", weight="int8_channel", acc="fp32"),
    # matrix units as measured, "<GPU> <input> -> <output>" (emu.matrix_units names every source)
    **MATRIX_UNITS,
}


def mac_preset(name: str, **overrides: Any) -> MAC:
    """A named datapath, optionally with fields overridden.

    >>> str(mac_preset("int8 x int8 -> int32"))
    'fx<8,0> x fx<8,0> -> fx<32,0> (wrap, sequential)'

    Raises:
        ValueError: an unknown name (the message lists the presets, first the same unit's other
            instruction paths, e.g. ``B200 e4m3 -> fp16 [tcgen05]`` for ``B200 e4m3 -> fp16``).
        TypeError: a name that is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"mac_preset: name={name!r} must be a preset's name (a string), e.g."
                        " 'e4m3 x e4m3 -> fp32'")
    key = " ".join(name.split())
    if key not in MAC_PRESETS:
        paths = [p for p in MAC_PRESETS if p.startswith(key + " [")]  # the unit on another instruction path
        near = f"; on another instruction path: {', '.join(paths)}" if paths else ""
        raise ValueError(f"mac_preset: name={name!r} is not a preset{near}; presets:"
                         f" {', '.join(MAC_PRESETS)}")
    check_fields(MAC, overrides, "mac_preset")
    return MAC(**{**MAC_PRESETS[key], **overrides})


def as_mac(mac: MAC | str | dict, func: str = "emu") -> MAC:
    """``mac`` as a `MAC`: a MAC itself, a preset name (`mac_preset`) or a dict of MAC fields.

    >>> str(as_mac("int8 x int8 -> int32"))
    'fx<8,0> x fx<8,0> -> fx<32,0> (wrap, sequential)'

    Raises:
        TypeError: anything else (the message names ``func``).
    """
    if isinstance(mac, MAC):
        return mac
    if isinstance(mac, str):
        return mac_preset(mac)
    if isinstance(mac, dict):
        check_fields(MAC, mac, func, "mac")
        return MAC(**mac)
    raise TypeError(f"{func}: mac={mac!r} must be a MAC, a preset name or a dict of MAC fields")
