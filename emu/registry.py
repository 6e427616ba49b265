"""Format names: the parser, the named entries and curated lists.

``get_format`` is the only place a name becomes a format; ``str(fmt)`` (the
format's ``name``) gives back a name that parses to an equal format. Grammar:

==========================================  ======================================
name                                        format
==========================================  ======================================
``fx<IL,FL>``, ``ufx<IL,FL>``               FixedFormat(IL, FL, signed)
``int8``, ``uint8`` (any width 1..62)       FixedFormat(8, 0), unsigned (aliases)
``e4m3`` ``e5m2`` ``e4m3fnuz`` ``e5m2fnuz`` the OCP / ml_dtypes fp8 formats
``e2m1`` ``e2m3`` ``e3m2``                  OCP FP4 / FP6 elements (no inf/NaN)
``bf16`` ``fp16`` ``tf32`` ``fp32`` ``fp64``  IEEE-style formats
``e8m0`` (``float8_e8m0fnu``)               unsigned E8M0 scale: no zero, NaN 0xFF, bias 127
``p3109<K,P[,unsigned][,finite]>``          IEEE P3109 binaryKpP (see below)
``fp<E,M[,option...]>``                     FloatFormat(E, M, ...); options below
``pow2<emin,emax>``, ``upow2<emin,emax>``   Pow2Format
``binary[<stochastic,scale=S>]``            BinaryFormat, S in tensor|channel
``ternary[<threshold=T,scale=S>]``          TWN, S in tensor|channel|none
``ttq[<threshold=T,scale=S>]``              TTQ
``ternary<stochastic>``                     ternary connect
==========================================  ======================================

Options of ``fp<E,M,...>``: a special-value rule (``ieee``, the default,
``fn``, ``fnuz``, ``none``, ``p3109``, ``p3109_finite``), ``bias=B``, ``ftz``
(no subnormals), ``unsigned`` (no sign bit), ``nozero`` (unsigned M = 0 only:
the exponent field 0 is 2^-B, as in E8M0).

P3109 formats follow the ``gfloat`` package's ``format_info_p3109(K, P,
signedness, domain)``: K bits in all, precision P (the implicit bit
included), so M = P - 1 fraction bits and E = K - P exponent bits (K - P + 1
unsigned), bias 2^(E-1), subnormals, no negative zero. Signed (the default):
NaN is the code 100..0 (0x80 for K = 8), +-inf the codes 011..1 / 111..1
(extended domain, the default) or the largest finite values (``finite``);
unsigned: NaN is 11..1 and +inf 11..10 (extended). Options may also say
``signed`` or ``extended`` (the defaults). ``p3109<8,3>`` is ``FloatFormat(5, 2, special="p3109")``;
``p3109<8,4,unsigned,finite>`` is ``FloatFormat(5, 3, special="p3109_finite",
signed=False)``. Signed formats need P <= K - 1 (at least one exponent bit).

Imports only ``emu.formats``.
"""

from __future__ import annotations

import difflib
import re

from .checks import renamed_refusal
from .formats import (
    NAMED_FLOATS,
    BinaryFormat,
    FixedFormat,
    FloatFormat,
    Format,
    Pow2Format,
    TernaryFormat,
)

__all__ = ["ALL_FORMATS", "NAMED_FORMATS", "SMALL_FORMATS", "UnknownFormatError", "format_arg", "get_format"]


class UnknownFormatError(KeyError, ValueError):
    """A format name that is neither registered nor of a parametric family."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_ALIASES = {
    "e4m3fn": "e4m3",
    "float8_e4m3fn": "e4m3",
    "float8_e5m2": "e5m2",
    "float8_e4m3fnuz": "e4m3fnuz",
    "float8_e5m2fnuz": "e5m2fnuz",
    "e8m0fnu": "e8m0",
    "float8_e8m0fnu": "e8m0",
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float32": "fp32",
    "single": "fp32",
    "float64": "fp64",
    "double": "fp64",
}

#: Every format with a fixed name (parametric families excluded).
NAMED_FORMATS: dict[str, Format] = {
    name: FloatFormat(e, m, special=sp, signed=sg, zero=z) for name, (e, m, sp, sg, z) in NAMED_FLOATS.items()
}
NAMED_FORMATS.update(
    {
        "binary": BinaryFormat(),
        "ternary": TernaryFormat(),
        "ttq": TernaryFormat("ttq"),
    }
)

_INT = r"\s*([+-]?\d+)\s*"
_RE_FIXED = re.compile(rf"(u?)fx<{_INT},{_INT}>")
_RE_INT = re.compile(r"(u?)int(\d+)")
_RE_POW2 = re.compile(rf"(u?)pow2<{_INT},{_INT}>")
_RE_FP = re.compile(rf"fp<{_INT},{_INT}((?:,[^,<>]+)*)>")
_RE_P3109 = re.compile(rf"p3109<{_INT},{_INT}((?:,[^,<>]+)*)>")
_RE_OPTS = re.compile(r"(binary|ternary|ttq)<([^<>]*)>")

_GRAMMAR = (
    "fx<IL,FL>, ufx<IL,FL>, intN, uintN, fp<E,M[,ieee|fn|fnuz|none|p3109|p3109_finite][,bias=B][,ftz]"
    "[,unsigned][,nozero]>, p3109<K,P[,signed|unsigned][,extended|finite]>, e8m0,"
    " pow2<emin,emax>, upow2<emin,emax>, binary<...>, ternary<...>, ttq<...>"
)


def _opts(text: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, val = part.partition("=")
        out.append((key.strip(), val.strip() if sep else None))
    return out


def _bad(name: str, why: str) -> ValueError:
    return ValueError(f"get_format: name={name!r} {why}")


_SPECIAL_OPTS = ("ieee", "fn", "fnuz", "none", "p3109", "p3109_finite")


def _check_once(name: str, kinds: list[str]) -> None:
    for kind in set(kinds):
        if kinds.count(kind) > 1:
            raise _bad(name, f"names the {kind} option {kinds.count(kind)} times; give it once")


def _parse_float(name: str, e: str, m: str, rest: str) -> FloatFormat:
    special, bias, subnormals, signed, zero = "ieee", None, True, True, True
    opts = _opts(rest)
    _check_once(name, ["special" if v is None and k in _SPECIAL_OPTS else k for k, v in opts])
    for key, val in opts:
        if val is None and key in _SPECIAL_OPTS:
            special = key
        elif val is None and key == "ftz":
            subnormals = False
        elif val is None and key == "unsigned":
            signed = False
        elif val is None and key == "nozero":
            zero = False
        elif key == "bias" and val is not None and re.fullmatch(r"[+-]?\d+", val):
            bias = int(val)
        else:
            allowed = ", ".join((*_SPECIAL_OPTS, "bias=B", "ftz", "unsigned", "nozero"))
            raise _bad(name, f"has an unknown option {key!r}; allowed: {allowed}")
    return FloatFormat(int(e), int(m), bias=bias, subnormals=subnormals, special=special, signed=signed,
                       zero=zero)


def _parse_p3109(name: str, k_text: str, p_text: str, rest: str) -> FloatFormat:
    k, p = int(k_text), int(p_text)
    opts = _opts(rest)
    groups = {"signed": "signedness", "unsigned": "signedness", "extended": "domain", "finite": "domain"}
    _check_once(name, [groups.get(key, key) for key, _ in opts])
    signed, finite = True, False
    for key, val in opts:
        if val is not None or key not in groups:
            raise _bad(name, f"has an unknown option {key!r}; allowed: signed, unsigned, extended, finite")
        signed = signed if groups[key] == "domain" else key == "signed"
        finite = finite if groups[key] == "signedness" else key == "finite"
    if not 1 <= p <= k - int(signed):
        raise _bad(name, f"has P={p}; a {'signed' if signed else 'unsigned'} P3109 format of K={k} bits"
                         f" needs 1 <= P <= {k - int(signed)} (at least one exponent bit)")
    return FloatFormat(k - p + int(not signed), p - 1, special="p3109_finite" if finite else "p3109",
                       signed=signed)


def _parse_scaled(name: str, family: str, text: str) -> Format:
    stochastic, threshold, scale = False, None, "tensor" if family != "binary" else None
    opts = _opts(text)
    keys = [k for k, _ in opts]
    for key in set(keys):
        if keys.count(key) > 1:
            raise _bad(name, f"names the {key} option {keys.count(key)} times; give it once")
    for key, val in opts:
        if key == "stochastic" and val is None:
            stochastic = True
        elif key == "scale" and val in ("tensor", "channel", "none"):
            scale = None if val == "none" else val
        elif key == "threshold" and val is not None and family != "binary":
            try:
                threshold = float(val)
            except ValueError:
                raise _bad(name, f"has threshold={val!r}, not a number") from None
        else:
            raise _bad(name, f"has an unknown option {key}{'=' + val if val else ''!s}")
    if family == "binary":
        return BinaryFormat(stochastic=stochastic, scale=scale)
    if stochastic:
        if family != "ternary" or threshold is not None or text.strip() != "stochastic":
            raise _bad(name, "ternary<stochastic> takes no other option")
        return TernaryFormat("stochastic", scale=None)
    return TernaryFormat("twn" if family == "ternary" else "ttq", threshold=threshold, scale=scale)


def get_format(name: str | Format) -> Format:
    """Return the format a name stands for (a format passes through unchanged).

    >>> get_format("fx<2,14>")
    FixedFormat(int_bits=2, frac_bits=14, signed=True)
    >>> str(get_format("fp<4,3,fn>"))
    'e4m3'

    Raises:
        UnknownFormatError: (a KeyError and a ValueError) for an unknown name,
            listing the closest known names.
        ValueError: a parametric name with parameters out of range.
        TypeError: ``name`` is neither a string nor a format.
    """
    if isinstance(name, Format):
        return name
    if not isinstance(name, str):
        raise TypeError(f"get_format: name={name!r} must be a format name (str) or a format")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in NAMED_FORMATS:
        return NAMED_FORMATS[key]
    if m := _RE_FIXED.fullmatch(key):
        return FixedFormat(int(m[2]), int(m[3]), signed=not m[1])
    if m := _RE_INT.fullmatch(key):
        return FixedFormat(int(m[2]), 0, signed=not m[1])
    if m := _RE_FP.fullmatch(key):
        return _parse_float(name, m[1], m[2], m[3])
    if m := _RE_P3109.fullmatch(key):
        return _parse_p3109(name, m[1], m[2], m[3])
    if m := _RE_POW2.fullmatch(key):
        return Pow2Format(int(m[2]), int(m[3]), signed=not m[1])
    if m := _RE_OPTS.fullmatch(key):
        return _parse_scaled(name, m[1], m[2])
    known = [*NAMED_FORMATS, *_ALIASES, "fx<", "ufx<", "fp<", "p3109<", "pow2<", "int8"]
    close = difflib.get_close_matches(key, known, n=4, cutoff=0.4)
    hint = f"; closest known: {', '.join(close)}" if close else ""
    raise UnknownFormatError(f"get_format: name={name!r} is not a known format{hint}. Grammar: {_GRAMMAR}")


def format_arg(value: object, func: str, param: str) -> Format:
    """`get_format` (value) for ``func``'s parameter ``param``: its refusals, of the same type, name the
    caller and its parameter in place of ``get_format: name=``, the explanation kept.

    >>> format_arg("fx<2,>", "quantize", "fmt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    emu.registry.UnknownFormatError: quantize: fmt='fx<2,>' is not a known format; closest known: ...
    """
    if isinstance(value, Format):
        return value
    try:
        return get_format(value)  # type: ignore[arg-type]
    except (KeyError, ValueError, TypeError) as e:
        raise renamed_refusal(e, "get_format", value, func, param) from None


def _small() -> list[Format]:
    names = [
        "fx<1,7>", "fx<2,14>", "fx<4,4>", "ufx<0,8>", "ufx<4,4>", "fx<-2,10>", "fx<10,-2>",
        "fx<1,0>", "ufx<1,0>", "fx<16,0>", "ufx<3,-1>",
        "e4m3", "e5m2", "e4m3fnuz", "e5m2fnuz", "e2m1", "e2m3", "e3m2", "fp16", "bf16",
        "fp<6,7>", "fp<6,7,none>", "fp<3,2>", "fp<4,3,ftz>", "fp<5,2,fn,bias=11>",
        "fp<2,0,none>", "fp<3,0>", "fp<4,0,fn>", "fp<1,3,none>", "fp<3,3,fnuz,bias=1>", "fp<1,2>", "fp<1,4>",
        "pow2<-8,0>", "upow2<-4,3>", "pow2<-2,-2>",
    ]  # fmt: skip
    return [get_format(n) for n in names]


#: Formats of 16 bits or fewer that the exhaustive tests walk code by code.
SMALL_FORMATS: list[Format] = _small()

#: A curated list of every family (wide formats, P3109 and unsigned floats included) for tests and notebooks.
ALL_FORMATS: list[Format] = [
    *SMALL_FORMATS,
    *(get_format(n) for n in ("fx<8,24>", "fx<30,32>", "ufx<62,0>", "tf32", "fp32", "fp64", "fp<8,30>")),
    *(get_format(n) for n in ("binary", "binary<stochastic>", "binary<scale=tensor>", "ternary", "ttq")),
    *(get_format(n) for n in ("p3109<8,3>", "p3109<8,4,finite>", "p3109<8,1,unsigned>", "e8m0",
                              "fp<4,3,fn,unsigned>")),
]
