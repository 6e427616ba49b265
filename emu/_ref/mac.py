"""The slow, literal reference of the multiply-accumulate datapath (NUMERICS.md section 6).

One output at a time, in exact arithmetic: operands are converted with the
scalar reference `emu._ref.scalar.quantize_ref`, products are exact
`Fraction`s, every rounding is a call of `quantize_ref` or of
`emu._ref.rounding`, every overflow of a fixed accumulator is an explicit
integer rule, and the accumulation orders are written out as the
documentation states them (docs/semantics.md, "Multiply-accumulate"). An
exact accumulator adds integer codes, or, where they would need more than 62
bits, sums the start value and the products as one Fraction rounded once into
the output (`emu.datapath.wide`'s twin).
Nothing here shares code with `emu.matmul` or its numba kernels, which are
tested against this module bit for bit. The datapath comes in as an
`emu.mac.MAC` object whose fields (formats and modes, already parsed) are
read; nothing of `emu.mac` is imported or called. Imports only the standard
library, `emu.formats`, `emu.modes` and the scalar reference and rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ..formats import BinaryFormat, FixedFormat, FloatFormat, Pow2Format, TernaryFormat
from ..modes import Overflow, Rounding
from .rounding import round_fraction
from .scalar import quantize_ref

__all__ = ["MacRef", "Streams", "mac_dot_ref"]

FP64 = FloatFormat(11, 52)

Value = Fraction | float  # a float only for zeros, infinities and NaN


@dataclass(frozen=True)
class MacRef:
    """One output of a datapath.

    Attributes:
        value: the output (Fraction when finite and nonzero, else a float).
        code: its code in the output format.
        product_overflows, acc_overflows: events counted on the way.
        output_overflow: whether the output conversion overflowed.
    """

    value: Value
    code: int
    product_overflows: int
    acc_overflows: int
    output_overflow: bool


def _exact(v: Value) -> Fraction:
    return v if isinstance(v, Fraction) else Fraction(v)


def _finite(v: Value) -> bool:
    return isinstance(v, Fraction) or math.isfinite(v)


def _signbit(v: Value) -> bool:
    return (v < 0) if isinstance(v, Fraction) else math.copysign(1.0, v) < 0


def _operand(x: float, fmt: object, mac: Any, key: int = 0, index: int = 0) -> Value:
    """An operand's value: converted like `quantize` (element ``index`` of the stream ``key`` under
    stochastic rounding), binary/ternary given as their +-1/0 values."""
    if isinstance(fmt, BinaryFormat):
        return Fraction(1 if x >= 0 else -1)
    if isinstance(fmt, TernaryFormat):
        return Fraction((x > 0) - (x < 0))
    r = quantize_ref(x, fmt, mac.input_rounding, mac.input_overflow,  # type: ignore[arg-type]
                     key=key, index=index)
    if r.overflow and mac.input_overflow == Overflow.ERROR:
        raise OverflowError(f"mac_dot_ref: {x!r} overflows {fmt}")
    return r.value


def _quiet(v: float) -> float:
    """An IEEE result of float arithmetic, a NaN made the positive quiet NaN (`math.nan`): a NaN that
    arithmetic makes has no sign or payload in the datapaths (docs/semantics.md)."""
    return math.nan if math.isnan(v) else v


def _float_mul(a: Value, w: Value) -> Value:
    if not (_finite(a) and _finite(w)):
        return _quiet(float(a) * float(w))
    p = _exact(a) * _exact(w)
    if p == 0:
        return -0.0 if _signbit(a) != _signbit(w) else 0.0
    return p


def _float_add(x: Value, y: Value, mac: Any) -> tuple[Value, bool]:
    """One float accumulator addition: the exact sum rounded once, IEEE special values and signed zeros."""
    if not (_finite(x) and _finite(y)):  # inf or NaN: the IEEE sum, converted like any value
        r = quantize_ref(_quiet(float(x) + float(y)), mac.acc, mac.acc_rounding, mac.acc_overflow)
        return r.value, r.overflow
    s = _exact(x) + _exact(y)
    if s == 0:
        both_neg = _signbit(x) and _signbit(y)
        neg = both_neg or (mac.acc_rounding == Rounding.FLOOR and not (x == 0 and y == 0 and not _signbit(x)
                                                                       and not _signbit(y)))
        return (-0.0 if neg and mac.acc.has_negative_zero else 0.0), False  # type: ignore[union-attr]
    r = quantize_ref(s, mac.acc, mac.acc_rounding, mac.acc_overflow)
    return r.value, r.overflow


def _fixed_add(x: int, y: int, acc: FixedFormat, ovf: Overflow) -> tuple[int, bool]:
    s = x + y
    if acc.qmin <= s <= acc.qmax:
        return s, False
    if ovf == Overflow.WRAP:
        return (s - acc.qmin) % (1 << acc.bits) + acc.qmin, True
    return min(max(s, acc.qmin), acc.qmax), True


def _exact_grid(mac: Any) -> int:
    """Fraction bits of an exact accumulator: the product's step (of the product format, if any)."""
    if mac.product is not None:
        assert isinstance(mac.product, FixedFormat)
        return mac.product.frac_bits

    def fl(f: object) -> int:
        if isinstance(f, FixedFormat):
            return f.frac_bits
        if isinstance(f, Pow2Format):
            return -f.emin
        if isinstance(f, FloatFormat):
            return f.man_bits - f.emin
        return 0

    return fl(mac.act) + fl(mac.weight)


def _code_bits(f: object) -> int:
    """Bits of an operand's signed integer code on the exact accumulator's grid (its whole range)."""
    if isinstance(f, FixedFormat):
        return f.bits
    if isinstance(f, Pow2Format):
        return f.emax - f.emin + 2
    if isinstance(f, FloatFormat):
        return f.emax + 2 + f.man_bits - f.emin
    return 2


def _wide_exact(av: list[Value], wv: list[Value], mac: Any, bias: float | None) -> MacRef:
    """An exact accumulator whose integer products need more than 62 bits: the start value as it is and
    the exact products summed as one Fraction, converted once into ``output``. Non-finite terms give the
    IEEE sum (NaN for a NaN or infinities of both signs); an exact zero sum is -0 when every term is -0,
    or under floor unless every term is +0 (the start value is a term: +0 without a bias)."""
    start = 0.0 if bias is None else float(bias)
    if not math.isfinite(start):
        raise ValueError(f"matmul: acc=exact holds finite sums, but the start value {bias} is not finite")
    terms: list[Value] = [start, *(_float_mul(x, y) for x, y in zip(av, wv, strict=True))]
    value: Value
    if not all(_finite(t) for t in terms):
        value = _quiet(sum(float(t) for t in terms if not _finite(t)))
    else:
        value = sum((_exact(t) for t in terms), Fraction(0))
        if value == 0:
            zeros = [t == 0 and _signbit(t) for t in terms], [t == 0 and not _signbit(t) for t in terms]
            downward = mac.output_rounding == Rounding.FLOOR
            value = -0.0 if all(zeros[0]) or (downward and not all(zeros[1])) else 0.0
    r = quantize_ref(value, mac.output, mac.output_rounding, mac.output_overflow)
    return MacRef(r.value, r.code, 0, 0, r.overflow)


def _pairwise(terms: list, add) -> object:  # type: ignore[no-untyped-def]
    """Level by level: adjacent pairs added, an odd last element carried up unchanged."""
    level = list(terms)
    while len(level) > 1:
        nxt = [add(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


@dataclass(frozen=True)
class Streams:
    """Where one output's random draws come from (stochastic rounding): a key and element indices.

    Attributes:
        act, weight: (key, the index of each operand element a_k / w_k).
        addend: (key, index) of the start value's conversion.
        product: (key, index of product k = 0; product k takes that index + k).
        output: (key, index) of the output conversion.
    """

    act: tuple[int, list[int]] = (0, [])
    weight: tuple[int, list[int]] = (0, [])
    addend: tuple[int, int] = (0, 0)
    product: tuple[int, int] = (0, 0)
    output: tuple[int, int] = (0, 0)


def mac_dot_ref(a: list[float], w: list[float], mac: Any, bias: float | None = None,
                scale: float | None = None, streams: Streams | None = None) -> MacRef:
    """One output: bias + sum_k a_k w_k through the datapath ``mac``, literally.

    Args:
        a, w: equal-length sequences of real operands (binary/ternary operands
            given by their sign).
        mac: the datapath.
        bias: the accumulator's start value (converted to its format with
            saturation; an exact accumulator whose integer products need more
            than 62 bits takes it as it is, `_wide_exact`), or None for 0.
        scale: a binary/ternary weight scale for this output (multiplies the
            final accumulator value in float64), or None.
        streams: the random streams of stochastic roundings (`Streams`).

    Raises:
        ValueError: a NaN reaches a product, accumulator or output format without NaN.
    """
    if len(a) != len(w):
        raise ValueError("mac_dot_ref: a and w differ in length")
    st = streams or Streams()
    counts = {"product": 0, "acc": 0}
    ak, ai = st.act
    wk, wi = st.weight
    av = [_operand(float(x), mac.act, mac, ak, ai[k] if ai else 0) for k, x in enumerate(a)]
    wv = [_operand(float(x), mac.weight, mac, wk, wi[k] if wi else 0) for k, x in enumerate(w)]
    pkey, pidx = st.product
    float_acc = isinstance(mac.acc, FloatFormat)
    exact = mac.acc == "exact"  # a Kulisch-style register
    if exact and _code_bits(mac.act) + _code_bits(mac.weight) > 62:
        return _wide_exact(av, wv, mac, bias)

    if float_acc:
        acc_fmt = mac.acc
        assert isinstance(acc_fmt, FloatFormat)

        def term(x: Value, y: Value, k: int) -> Value:
            p = _float_mul(x, y)
            if mac.fused:
                return p
            pf = mac.product if mac.product is not None else acc_fmt
            pr = mac.product_rounding if mac.product is not None else mac.acc_rounding
            po = mac.product_overflow if mac.product is not None else mac.acc_overflow
            r = quantize_ref(p, pf, pr, po, key=pkey, index=pidx + k)  # type: ignore[arg-type]
            counts["product"] += r.overflow
            return r.value

        def add(x: Value, y: Value) -> Value:
            r, o = _float_add(x, y, mac)
            counts["acc"] += o
            return r

        start = quantize_ref(0.0 if bias is None else bias, acc_fmt, mac.input_rounding, Overflow.SATURATE,
                             key=st.addend[0], index=st.addend[1]).value

        def block_sum(ts: list[Value]) -> Value:
            s: Value = -0.0  # the identity of IEEE addition: a block of -0 terms sums to -0
            for t in ts:  # float64, nearest even, one addition at a time
                if not (_finite(s) and _finite(t)):
                    s = float(s) + float(t)
                    continue
                ex = _exact(s) + _exact(t)
                s = (quantize_ref(ex, FP64).value if ex != 0
                     else (-0.0 if _signbit(s) and _signbit(t) else 0.0))
            return s
    else:
        fl = _exact_grid(mac) if exact else mac.acc.frac_bits  # type: ignore[union-attr]
        acc_fmt = mac.acc

        def term(x: Value, y: Value, k: int) -> int:
            p = _exact(x) * _exact(y)
            if mac.product is not None:
                r = quantize_ref(p, mac.product, mac.product_rounding, mac.product_overflow, key=pkey,
                                 index=pidx + k)
                counts["product"] += r.overflow
                p = _exact(r.value)
            t = p * Fraction(2) ** fl
            return t.numerator if t.denominator == 1 else round_fraction(t, mac.align_rounding)

        def add(x: int, y: int) -> int:
            if exact:
                return x + y
            r, o = _fixed_add(x, y, acc_fmt, mac.acc_overflow)  # type: ignore[arg-type]
            counts["acc"] += o
            return r

        grid = FixedFormat(62 - fl, fl) if exact else acc_fmt
        b = quantize_ref(0.0 if bias is None else bias, grid, mac.input_rounding, Overflow.SATURATE,
                         key=st.addend[0], index=st.addend[1])
        if exact and b.overflow:
            raise ValueError(f"matmul: acc=exact holds sums in {grid}, but the start value {bias} lies"
                             " outside it")
        start = round_fraction(_exact(b.value) * Fraction(2) ** fl, Rounding.NEAREST_EVEN)  # on the grid

        def block_sum(ts: list[int]) -> int:
            return sum(ts)

    terms = [term(x, y, k) for k, (x, y) in enumerate(zip(av, wv, strict=True))]
    kind, n = mac.order.kind, mac.order.n
    if kind == "sequential":
        acc = start
        for t in terms:
            acc = add(acc, t)
    elif kind == "lanes":
        lanes = [start] + [(0.0 if float_acc else 0) for _ in range(n - 1)]
        for k, t in enumerate(terms):
            lanes[k % n] = add(lanes[k % n], t)
        acc = lanes[0]
        for lane in lanes[1:]:
            acc = add(acc, lane)
    elif kind == "pairwise":
        acc = add(start, _pairwise(terms, add)) if terms else start
    else:  # blocks
        acc = start
        for k0 in range(0, len(terms), n):
            acc = add(acc, block_sum(terms[k0:k0 + n]))

    value: Value = acc if float_acc else Fraction(acc) / Fraction(2) ** fl
    # the output format: ``output``, else the accumulator's (an exact accumulator reports float64)
    out_fmt = mac.output if mac.output is not None else (FP64 if exact else mac.acc)
    keep = mac.output is None and not exact and scale is None
    if scale is not None:
        value = float(value) * scale  # the scale multiplies in float64
    if keep:
        if float_acc:
            code = quantize_ref(value, out_fmt, mac.output_rounding, mac.output_overflow).code
        else:
            code = acc % (1 << out_fmt.bits)
        return MacRef(value, code, counts["product"], counts["acc"], False)
    r = quantize_ref(value, out_fmt, mac.output_rounding, mac.output_overflow,  # type: ignore[arg-type]
                     key=st.output[0], index=st.output[1])
    return MacRef(r.value, r.code, counts["product"], counts["acc"], r.overflow)
