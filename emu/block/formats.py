"""Block-scaled format descriptions: the family enums, the three format dataclasses, their scale
containers and statistics, and the name parser `block_format` (rules: docs/blockscaled.md)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np

from ..checks import check_int, parse_choice, renamed_refusal
from ..formats import FixedFormat, FloatFormat, Format
from ..registry import get_format

E8M0_BIAS = 127
E8M0_NAN = 255
#: E8M0 scale values by code: 2^(c - 127), code 255 NaN
E8M0_VALUES = np.where(np.arange(256) == E8M0_NAN, np.nan, np.ldexp(1.0, np.arange(256) - E8M0_BIAS))
XMIN, XMAX = -127, 127
E4M3 = FloatFormat(4, 3, special="fn")
E2M1 = FloatFormat(2, 1, special="none")
FP32_TINY = math.ldexp(1.0, -149)


class BlockKind(StrEnum):
    """The family of a block format (``fmt.kind``)."""

    MX = "mx"
    NVFP4 = "nvfp4"
    INT = "int"


class ScaleRule(StrEnum):
    """How an MX block picks its shared exponent X (scale 2^X) from its largest magnitude amax > 0.

    With e = floor(log2 amax), emax = the exponent of the element format's largest power of two
    (`elem_emax`: E4M3 8, E5M2 15, E2M3 2, E3M2 4, E2M1 2, MX INT8 0) and M = the fraction bits of the
    element's top binade (a float's ``man_bits``; W - 2 for W-bit integer elements):

    - ``ocp`` (alias ``floor``; OCP MX v1.0 and torchao FLOOR): X = e - emax. Magnitudes of the top
      binade above the element maximum saturate.
    - ``ceil`` (torchao CEIL): X = ceil(log2 amax) - emax, i.e. e - emax, plus one unless amax is a
      power of two. Nothing clips; up to one bit of resolution is lost even where ``ocp`` would not clip.
    - ``even`` (torchao EVEN): X = floor(log2 r) - emax, where r is amax with its significand rounded to
      M fraction bits, ties to even; so X = e - emax + 1 exactly when amax's significand is at least
      2 - 2^-(M+1), the values that round up out of the element's top binade. Where the element
      maximum has an all-ones significand (E2M1, E2M3, E3M2, E5M2, integers) nothing then clips; E4M3's
      largest significand 1.75 leaves amax significands in (1.8125, 1.9375) saturating, as in torchao.
      (A promise of nearest even: stochastic rounding may round such values up, and they saturate.)
    - ``rceil`` (torchao RCEIL; NVIDIA cuBLAS / Transformer Engine MXFP8 UE8M0 scaling):
      X = ceil(log2(amax / elem_max)), the smallest X with amax <= elem_max * 2^X: nothing clips and no
      scale is coarser than needed.

    All-zero blocks take X = -127; X is then clamped to [-127, 127] (`ScaleOverflow`). Every rule is
    computed exactly from the float64 amax. Differences from torchao / cuBLAS, which work on fp32 (or
    bf16) amax bits: RCEIL there divides amax / elem_max in fp32 and rounds the quotient up to a power of
    two, which can differ from the exact quotient only where fp32 rounding moves it onto a power of two
    (float64 amax within 2^-24 relative above elem_max * 2^k, or quotients below 2^-126); torchao EVEN
    adds half a unit and masks (ties away from zero), which moves the exponent exactly where ties to
    even does (the tie 2 - 2^-(M+1) lies between the all-ones significand and 2, the even one).

    Worked example (E2M1 elements, max 6 = 1.5 * 2^2, emax 2, M 1): amax 7 gives ocp X = 0 (7
    saturates to 6), ceil X = 1, even X = 1 (7 = 1.75 * 2^2 rounds to 2^3), rceil X = 1; amax 5 gives
    ocp 0, ceil 1, even 0 (1.25 * 2^2 rounds to 1.0 * 2^2), rceil 0; amax 6.5 gives ocp 0, ceil 1, even
    0 (1.625 rounds to 1.5), rceil 1.

    >>> [int(block_format(f"mxfp4,{r}").encode(7.0)[0]) - 127 for r in ("ocp", "ceil", "even", "rceil")]
    [0, 1, 1, 1]
    >>> ScaleRule("floor") is ScaleRule.OCP
    True
    """

    OCP = "ocp"
    CEIL = "ceil"
    EVEN = "even"
    RCEIL = "rceil"

    @classmethod
    def _missing_(cls, value: object) -> ScaleRule | None:
        if isinstance(value, str) and value.strip().lower() in _RULE_ALIASES:
            return cls(_RULE_ALIASES[value.strip().lower()])
        return None


#: Other names of scale rules: torchao's FLOOR is the OCP rule.
_RULE_ALIASES = {"floor": "ocp"}


def parse_rule(value: object, func: str) -> ScaleRule:
    """A `ScaleRule` from a member, its name or an alias (``floor``), case ignored.

    >>> parse_rule(" Floor", "f"), parse_rule("rceil", "f")
    (<ScaleRule.OCP: 'ocp'>, <ScaleRule.RCEIL: 'rceil'>)
    """
    if isinstance(value, str) and value.strip().lower() in _RULE_ALIASES:
        return ScaleRule.OCP
    try:
        return parse_choice(ScaleRule, value, func, "rule")
    except ValueError:
        raise ValueError(f"{func}: rule={value!r} is not one of ocp (alias floor), ceil, even,"
                         " rceil") from None


class ScaleGranularity(StrEnum):
    """What one scale of a scaled-integer tensor covers."""

    TENSOR = "tensor"
    CHANNEL = "channel"
    GROUP = "group"


class ScaleKind(StrEnum):
    """How a scaled-integer scale is stored."""

    FP32 = "fp32"
    BF16 = "bf16"
    POW2 = "pow2"
    FIXMUL = "fixmul"


class ScaleOverflow(StrEnum):
    """MX scales above 2^127: ``clamp`` (X = 127, elements saturate) or ``error`` (OverflowError)."""

    CLAMP = "clamp"
    ERROR = "error"


# --- format descriptors --------------------------------------------------------------------------


def elem_emax(el: Format) -> int:
    """Exponent of the largest power of two <= the element format's max."""
    return math.frexp(el.max)[1] - 1


def elem_top_bits(el: Format) -> int:
    """Fraction bits of the element format's top binade: a float's ``man_bits``, W - 2 for a W-bit
    signed fixed format (its top binade [2^emax, 2^(emax+1)) has steps 2^(emax - (W - 2)))."""
    return el.man_bits if isinstance(el, FloatFormat) else el.bits - 2


def _elem_name(el: Format) -> str:
    if isinstance(el, FixedFormat) and el.frac_bits == 0:
        return f"int{el.bits}"
    return el.name


class _BlockMethods:
    """encode / decode / quantize of a block format, along ``axis`` (`block_encode`, `block_decode`)."""

    def encode(self, x: object, axis: int = -1, **kwargs: Any) -> Any:
        """(scales, element codes) of x; keyword arguments as `block_encode`'s."""
        from .convert import block_encode  # the conversion API imports this module

        return block_encode(x, self, axis, **kwargs)

    def decode(self, scales: Any, codes: object, axis: int = -1) -> np.ndarray:
        """Exact float64 values of (scales, codes); see `block_decode`."""
        from .convert import block_decode  # the conversion API imports this module

        return block_decode(scales, codes, self, axis)

    def quantize(self, x: object, axis: int = -1, **kwargs: Any) -> np.ndarray:
        """decode(encode(x)): x rounded to the format."""
        from .convert import block_quantize  # the conversion API imports this module

        return block_quantize(x, self, axis, **kwargs)


@dataclass(frozen=True)
class MXFormat(_BlockMethods):
    """Block floating point with one shared power-of-two scale per block (OCP MX v1.0).

    Layout: per block of ``block_size`` elements along the block axis, one
    8-bit E8M0 scale code c (value 2^(c-127); c = 255 is NaN) and
    ``block_size`` element codes of ``element`` (a `FloatFormat` of at most 16
    bits or a signed `FixedFormat` of 2..16 bits; integer elements are encoded
    symmetrically in [-qmax, qmax], the code -2^(W-1) decodes but is never
    produced). Value of element i: decode(element code) * 2^(c - 127).

    ``rule``: how X is chosen, a `ScaleRule`: ``"ocp"`` (alias ``"floor"``: X =
    floor(log2 amax) - emax_elem, elements saturate), ``"ceil"``, ``"even"`` or
    ``"rceil"`` (the smallest X with amax <= elem_max * 2^X: no element clips).

    >>> f = block_format("mxfp4")
    >>> (str(f), f.block_size, f.element.name, f.bits_per_element)
    ('mxfp4', 32, 'e2m1', 4.25)
    >>> s, c = f.encode([1.0, -0.3, 5.0, 7.5])
    >>> int(s[0]), [int(v) for v in c], f.decode(s, c).tolist()
    (127, [2, 9, 6, 7], [1.0, -0.5, 4.0, 6.0])
    """

    element: Format
    block_size: int = 32
    rule: ScaleRule = ScaleRule.OCP
    kind: ClassVar[BlockKind] = BlockKind.MX

    def __post_init__(self) -> None:
        fn = "MXFormat"
        el = get_format(self.element) if isinstance(self.element, str) else self.element
        if isinstance(el, FloatFormat):
            if el.bits > 16:
                raise ValueError(f"{fn}: element={el} has {el.bits} bits; allowed element widths are"
                                 " 2..16 bits")
            if not el.signed or el.special.startswith("p3109") or not el.zero:
                raise ValueError(f"{fn}: element={el} must be a signed float with a zero and special ieee,"
                                 " fn, fnuz or none (unsigned and P3109 elements are not block elements)")
        elif isinstance(el, FixedFormat):
            if not el.signed or not 2 <= el.bits <= 16:
                raise ValueError(f"{fn}: element={el} must be a signed fixed/integer format of 2..16 bits")
        else:
            raise TypeError(f"{fn}: element={self.element!r} must be a FloatFormat or a signed FixedFormat")
        object.__setattr__(self, "element", el)
        object.__setattr__(self, "block_size", check_int(self.block_size, fn, "block_size", 1, 1 << 24))
        object.__setattr__(self, "rule", parse_rule(self.rule, fn))

    @property
    def name(self) -> str:
        """The MX name (``mxfp8_e4m3`` ..., ``mxfp4,even`` under another rule) or
        ``bfp<element,B[,rule]>``; the rule is written unless it is ``ocp``."""
        rule = "" if self.rule is ScaleRule.OCP else f",{self.rule.value}"
        for key, (el, b) in _MX_DEFS.items():
            if el == self.element and b == self.block_size:
                return key + rule
        return f"bfp<{_elem_name(self.element)},{self.block_size}{rule}>"

    def __str__(self) -> str:
        return self.name

    @property
    def bits_per_element(self) -> float:
        """Storage per element: element bits + 8 / block_size."""
        return self.element.bits + 8 / self.block_size


@dataclass(frozen=True)
class NVFP4Format(_BlockMethods):
    """NVFP4: E2M1 elements, an E4M3 scale per block, an fp32 scale per tensor.

    Layout: per block of ``block_size`` (16) elements one E4M3 code (uint8)
    and 4-bit E2M1 element codes (0bS_EE_M, one per uint8); per tensor one fp32
    bit pattern (uint32). Value = e2m1 * e4m3 * fp32. Recipe (module docstring):
    g = fp32(amax_t)/2688, s = e4m3((amax_b/6)/g), element = e2m1(x/(s g)).

    >>> f = block_format("nvfp4")
    >>> sc, c = f.encode([0.0, 1.0, -3.0, 6.0])   # g = fp32(6 / 2688), s = 448 (0x7E)
    >>> int(sc.block[0]), c.tolist()                # x / (448 g): 1.0 -> 0b0010, -3.0 -> 0b1101
    (126, [0, 2, 13, 7])
    """

    block_size: int = 16
    kind: ClassVar[BlockKind] = BlockKind.NVFP4

    def __post_init__(self) -> None:
        bs = check_int(self.block_size, "NVFP4Format", "block_size", 1, 1 << 24)
        object.__setattr__(self, "block_size", bs)

    @property
    def element(self) -> FloatFormat:
        """E2M1."""
        return E2M1

    @property
    def name(self) -> str:
        """``nvfp4`` (block 16) or ``nvfp4<B>``."""
        return "nvfp4" if self.block_size == 16 else f"nvfp4<{self.block_size}>"

    def __str__(self) -> str:
        return self.name

    @property
    def bits_per_element(self) -> float:
        """4 + 8 / block_size (the per-tensor fp32 scale not counted)."""
        return 4 + 8 / self.block_size


@dataclass(frozen=True)
class ScaledIntFormat(_BlockMethods):
    """W-bit integers with a scale per tensor, per channel or per group of G.

    Layout: element codes are W-bit two's complement patterns (uint8 for W <=
    8, else uint16); scales are an `IntScales`: ``scale`` holds fp32 bit
    patterns (uint32), bf16 bit patterns (uint16), E8M0 codes (uint8, value
    2^(c-127)) or M0 (int32, with ``shift`` int16: value M0 * 2^(shift-31));
    ``zero_point`` (int32) for asymmetric formats. Value = (q - z) * scale.

    ``granularity``: ``tensor`` (one scale), ``channel`` (one scale per index
    along ``axis``), ``group`` (groups of ``group_size`` consecutive elements
    along ``axis``, a last partial group allowed).

    >>> f = block_format("int8_channel")
    >>> (f.bits, f.symmetric, str(f.granularity), str(f.scale))
    (8, True, 'channel', 'fp32')
    >>> block_format("int4_asym_g128_bf16").name
    'int4_asym_g128_bf16'
    """

    bits: int = 8
    symmetric: bool = True
    granularity: ScaleGranularity = ScaleGranularity.TENSOR
    group_size: int | None = None
    scale: ScaleKind = ScaleKind.FP32
    kind: ClassVar[BlockKind] = BlockKind.INT

    def __post_init__(self) -> None:
        fn = "ScaledIntFormat"
        object.__setattr__(self, "bits", check_int(self.bits, fn, "bits", 2, 16))
        gran = parse_choice(ScaleGranularity, self.granularity, fn, "granularity")
        object.__setattr__(self, "granularity", gran)
        if gran is ScaleGranularity.GROUP:
            if self.group_size is None:
                raise ValueError(f"{fn}: granularity='group' needs group_size (an int in [1, 2^24])")
            object.__setattr__(self, "group_size", check_int(self.group_size, fn, "group_size", 1, 1 << 24))
        elif self.group_size is not None:
            raise ValueError(f"{fn}: group_size={self.group_size!r} applies only to granularity='group'")
        object.__setattr__(self, "scale", parse_choice(ScaleKind, self.scale, fn, "scale"))
        if not isinstance(self.symmetric, (bool, np.bool_)):
            raise TypeError(f"{fn}: symmetric={self.symmetric!r} must be a bool")
        object.__setattr__(self, "symmetric", bool(self.symmetric))

    @property
    def name(self) -> str:
        """``int<W>[_asym]_<tensor|channel|g<G>>[_bf16|_pow2|_fixmul]``."""
        g = f"g{self.group_size}" if self.granularity is ScaleGranularity.GROUP else self.granularity.value
        s = "" if self.scale is ScaleKind.FP32 else f"_{self.scale.value}"
        return f"int{self.bits}{'' if self.symmetric else '_asym'}_{g}{s}"

    def __str__(self) -> str:
        return self.name

    @property
    def qmin(self) -> int:
        """Smallest code value: -(2^(W-1) - 1) symmetric, -2^(W-1) asymmetric."""
        return -(1 << (self.bits - 1)) + (1 if self.symmetric else 0)

    @property
    def qmax(self) -> int:
        """Largest code value, 2^(W-1) - 1."""
        return (1 << (self.bits - 1)) - 1


BlockFormat = MXFormat | NVFP4Format | ScaledIntFormat


@dataclass(frozen=True)
class NVFP4Scales:
    """The scales of an NVFP4 tensor: ``tensor`` (0-d uint32, fp32 bits), ``block`` (uint8 E4M3 codes)."""

    tensor: np.ndarray
    block: np.ndarray


@dataclass(frozen=True)
class IntScales:
    """The scales of a scaled-integer tensor (see `ScaledIntFormat`)."""

    scale: np.ndarray
    zero_point: np.ndarray | None = None
    shift: np.ndarray | None = None


@dataclass(frozen=True)
class BlockStats:
    """Conversion accounting: elements that saturated, scales clamped from above, NaN/inf blocks."""

    size: int
    saturated: int
    clamped_scales: int
    nan_blocks: int


_MX_DEFS: dict[str, tuple[Format, int]] = {
    "mxfp8_e4m3": (E4M3, 32),
    "mxfp8_e5m2": (FloatFormat(5, 2), 32),
    "mxfp6_e2m3": (FloatFormat(2, 3, special="none"), 32),
    "mxfp6_e3m2": (FloatFormat(3, 2, special="none"), 32),
    "mxfp4": (E2M1, 32),
    "mxint8": (FixedFormat(2, 6), 32),
}

#: The six OCP MX v1.0 formats by name.
MX_FORMATS: dict[str, MXFormat] = {k: MXFormat(el, b) for k, (el, b) in _MX_DEFS.items()}

_RE_INT = re.compile(r"int(\d+)(_asym)?(?:_(tensor|channel|g(\d+)))?(?:_(fp32|bf16|pow2|fixmul))?")
_RULES = "ocp|floor|ceil|even|rceil"
_GRAMMAR = ("(mxfp8_e4m3 | mxfp8_e5m2 | mxfp6_e2m3 | mxfp6_e3m2 | mxfp4 | mxint8)[,RULE] | bfp<ELEM,B[,RULE]>"
            f" (RULE: {_RULES})"
            " (ELEM an emu float/fixed name or int<W>) | nvfp4 | nvfp4<B> |"
            " int<W>[_asym]_<tensor|channel|g<G>>[_fp32|_bf16|_pow2|_fixmul]")


def _split_top(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += (ch == "<") - (ch == ">")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def block_format(name: str | BlockFormat) -> BlockFormat:
    """The block-scaled format a name stands for (a format passes through).

    Grammar: ``(mxfp8_e4m3 | mxfp8_e5m2 | mxfp6_e2m3 | mxfp6_e3m2 | mxfp4 |
    mxint8)[,RULE] | bfp<ELEM,B[,RULE]> | nvfp4 | nvfp4<B> |
    int<W>[_asym]_<tensor|channel|g<G>>[_fp32|_bf16|_pow2|_fixmul]``; RULE is a
    `ScaleRule` (``ocp``, its alias ``floor``, ``ceil``, ``even``, ``rceil``;
    default ``ocp``); ELEM
    is an `emu.format` name (``e4m3``, ``fp<3,2,none>``, ``fx<2,6>``) or
    ``int<W>`` (plain W-bit integers). A scaled integer names its granularity:
    ``int8`` alone is `emu.format`'s fx<8,0>, so ``block_format("int8")``
    raises and says to write ``int8_tensor``.

    >>> str(block_format("bfp<int8,16>")), str(block_format("bfp<e2m1,32>"))
    ('bfp<int8,16>', 'mxfp4')
    >>> str(block_format("mxfp8_e4m3, even")), str(block_format("bfp<e2m1,32,floor>"))
    ('mxfp8_e4m3,even', 'mxfp4')
    """
    if isinstance(name, (MXFormat, NVFP4Format, ScaledIntFormat)):
        return name
    if not isinstance(name, str):
        raise TypeError(f"block_format: name={name!r} must be a str or a block format")
    key = name.strip().lower()
    if key in MX_FORMATS:
        return MX_FORMATS[key]
    if "," in key and not key.startswith("bfp<") and (base := key.split(",", 1)[0].strip()) in MX_FORMATS:
        mx = MX_FORMATS[base]
        return MXFormat(mx.element, mx.block_size, parse_rule(key.split(",", 1)[1], "block_format"))
    if key == "nvfp4":
        return NVFP4Format()
    if m := re.fullmatch(r"nvfp4<(\d+)>", key):
        return NVFP4Format(int(m[1]))
    if key.startswith("bfp<") and key.endswith(">"):
        parts = _split_top(key[4:-1])
        if len(parts) not in (2, 3) or not parts[1].isdigit():
            raise ValueError(f"block_format: {name!r} must read bfp<ELEM,B[,RULE]> (RULE: {_RULES})")
        el_txt = parts[0]
        if m := re.fullmatch(r"int(\d+)", el_txt):
            el: Format = FixedFormat(check_int(int(m[1]), "block_format", "W", 2, 16), 0)
        else:
            el = get_format(el_txt)
        return MXFormat(el, int(parts[1]), parse_rule(parts[2], "block_format") if len(parts) == 3
                        else ScaleRule.OCP)
    if m := _RE_INT.fullmatch(key):
        if m[3] is None:
            want = f"int{m[1]}{m[2] or ''}_tensor{'_' + m[5] if m[5] else ''}"
            raise ValueError(f"block_format: name={name!r} names no granularity (bare int<W> is emu.format's"
                             f" fx<W,0>); write {want!r}, or _channel / _g<G> in place of _tensor")
        gran, group = m[3], None
        if m[4] is not None:
            gran, group = ScaleGranularity.GROUP, int(m[4])
        return ScaledIntFormat(int(m[1]), symmetric=m[2] is None, granularity=gran, group_size=group,
                               scale=m[5] or ScaleKind.FP32)
    raise ValueError(f"block_format: name={name!r} is not a block-scaled format. Grammar: {_GRAMMAR}")


def block_format_arg(value: object, func: str, param: str) -> BlockFormat:
    """`block_format` (value) for ``func``'s parameter ``param``: its refusals, of the same type, name the
    caller and its parameter in place of ``block_format: name=``, the explanation kept.

    >>> block_format_arg("mxfp8", "block_encode", "fmt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: block_encode: fmt='mxfp8' is not a block-scaled format. Grammar: ...
    """
    if isinstance(value, (MXFormat, NVFP4Format, ScaledIntFormat)):
        return value
    try:
        return block_format(value)  # type: ignore[arg-type]
    except (KeyError, ValueError, TypeError) as e:
        raise renamed_refusal(e, "block_format", value, func, param) from None
