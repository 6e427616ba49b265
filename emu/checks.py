"""Argument checks shared by every public function: one rule, one message.

`real_array` admits arrays of real numbers and refuses bool, complex, object,
string and bytes arrays with a one-line TypeError naming the function and the
parameter; `check_int` admits an int (not a bool) inside a stated range;
`parse_choice` turns a setting's name into its enum member; `parse_record` a
dict of a setting's fields into its record; `check_fields` refuses a field
name a record does not have. Imports numpy only.

>>> real_array([1, 2.5], "f", "x").dtype
dtype('float64')
>>> check_int(3, "f", "n", 1, 8)
3
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Iterable
from enum import Enum, IntEnum
from typing import TypeVar

import numpy as np

__all__ = ["check_bool", "check_fields", "check_int", "check_real", "inexact_int", "int_pair",
           "parse_choice", "parse_record", "real_array", "renamed_refusal"]

E = TypeVar("E", bound=Enum)
R = TypeVar("R")

_KIND_NAMES = {"b": "bool", "c": "complex", "O": "object", "U": "str", "S": "bytes", "M": "datetime",
               "m": "timedelta"}


def real_array(x: object, func: str, name: str) -> np.ndarray:
    """``x`` as a numpy array of real numbers (float or integer dtype, or ml_dtypes' floats).

    Raises:
        TypeError: the array's dtype is bool, complex, object, str, bytes or a
            float wider than float64 (``func: name has dtype ...; expected real numbers``).

    >>> real_array([1j], "g", "y")
    Traceback (most recent call last):
    ...
    TypeError: g: y has dtype complex; expected real numbers (float or integer)
    """
    a = np.asarray(x)
    dt = a.dtype
    if dt.kind in "iu":
        first = inexact_int(a.reshape(-1))
        if first is not None:
            raise ValueError(f"{func}: {name} holds integers that float64 cannot hold exactly (first:"
                             f" {a.reshape(-1)[first]}); it computes from float64 values: pass"
                             f" {name}.astype(np.float64) to accept that rounding")
        return a
    if dt.kind == "f" and dt.itemsize <= 8:
        return a
    if (dt.kind == "V" and dt.names is None and dt.type.__module__.startswith("ml_dtypes")
            and "complex" not in dt.name):
        return a  # ml_dtypes' 4- to 16-bit floats and integers (not its complex types)
    what = "complex" if "complex" in dt.name else _KIND_NAMES.get(dt.kind, str(dt))
    raise TypeError(f"{func}: {name} has dtype {what}; expected real numbers (float or integer)")


def inexact_int(ints: np.ndarray) -> int | None:
    """The flat index of the first integer of a flat int or uint array that float64 cannot hold exactly
    (beyond 2^53 and off float64's grid there), or None.

    >>> inexact_int(np.array([2**53, 2**53 + 1, 2**53 + 2])), inexact_int(np.array([2**63 - 1024]))
    (1, None)
    """
    if ints.dtype.itemsize < 8 or not ints.size:
        return None
    f = ints.astype(np.float64)
    big = np.flatnonzero(np.abs(f) >= 2.0**53)  # below 2^53 every integer is exact
    if not big.size:
        return None
    top = 2.0**63 if ints.dtype.kind == "i" else 2.0**64  # a float64 at the top rounded up past the dtype
    fb = f[big]
    back = np.where(fb >= top, 0.0, fb).astype(ints.dtype)
    inexact = big[(fb >= top) | (back != ints[big])]
    return int(inexact[0]) if inexact.size else None


def check_bool(value: object, func: str, name: str) -> bool:
    """``value`` as a bool, refusing anything but True and False (numpy's bools included): a flag given as
    the string "False" or as 0.5 would otherwise switch on by being truthy.

    >>> check_bool(np.True_, "quantize", "return_stats")
    True
    >>> check_bool("False", "quantize", "return_stats")
    Traceback (most recent call last):
    ...
    TypeError: quantize: return_stats='False' must be True or False
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name}={value!r} must be True or False")
    return bool(value)


def _int_range(lo: int | None, hi: int | None) -> str:
    """[lo, hi] as the refusals write it, an open end for None: "[1, inf)"."""
    return ("(-inf" if lo is None else f"[{lo}") + ", " + ("inf)" if hi is None else f"{hi}]")


def check_int(value: object, func: str, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int, refusing bools, non-integers and values outside [lo, hi].

    >>> check_int(True, "g", "n")
    Traceback (most recent call last):
    ...
    TypeError: g: n=True must be an int
    >>> check_int(0, "g", "n", 1)
    Traceback (most recent call last):
    ...
    ValueError: g: n=0 outside the allowed range [1, inf)
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{func}: {name}={value!r} must be an int")
    v = int(value)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"{func}: {name}={v} outside the allowed range {_int_range(lo, hi)}")
    return v


def check_real(value: object, func: str, name: str, lo: float = -math.inf, hi: float = math.inf, *,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a float, refusing bools, non-numbers, NaN and infinities, and values outside [lo, hi]
    (an open end where asked).

    >>> check_real(1.0, "SGD", "momentum", 0.0, 1.0, hi_open=True)
    Traceback (most recent call last):
    ...
    ValueError: SGD: momentum=1.0 outside the allowed range [0, 1)
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**1024:
        raise ValueError(f"{func}: {name} (an int of {value.bit_length()} bits) is beyond float64's range")
    if (isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating))
            or not math.isfinite(value)):
        raise TypeError(f"{func}: {name}={value!r} must be a finite real number")
    v = float(value)
    if v < lo or v > hi or (lo_open and v == lo) or (hi_open and v == hi):
        lo_s = ("(" if lo_open or lo == -math.inf else "[") + f"{lo:g}"
        hi_s = f"{hi:g}" + (")" if hi_open or hi == math.inf else "]")
        raise ValueError(f"{func}: {name}={value!r} outside the allowed range {lo_s}, {hi_s}")
    return v


def parse_choice(enum: type[E], value: object, func: str, param: str) -> E:
    """The member of ``enum`` for a member or its name (case and surrounding spaces ignored).

    A `StrEnum` member is named by its value, an `IntEnum` member by its lowercase name.

    >>> from emu.modes import Rounding
    >>> parse_choice(Rounding, " Floor", "g", "rounding")
    <Rounding.FLOOR: 4>
    >>> from emu.modes import Overflow
    >>> parse_choice(Overflow, "clip", "g", "overflow")
    Traceback (most recent call last):
    ...
    ValueError: g: overflow='clip' is not one of saturate, wrap, error, inf, nan
    """
    if isinstance(value, enum):
        return value
    by_name = issubclass(enum, IntEnum)
    if isinstance(value, str):
        key = value.strip()
        for m in enum:
            if (m.name.lower() if by_name else str(m.value)) == key.lower():
                return m
    allowed = ", ".join(m.name.lower() if by_name else str(m.value) for m in enum)
    raise ValueError(f"{func}: {param}={value!r} is not one of {allowed}")



def parse_record(cls: type[R], value: object, func: str, param: str) -> R | None:
    """None, an instance of ``cls``, or ``cls`` built from a dict of its fields (as the preset tables write
    a setting that has fields of its own).

    >>> from fractions import Fraction
    >>> parse_record(Fraction, {"numerator": 3, "denominator": 4}, "g", "ratio")
    Fraction(3, 4)
    >>> parse_record(Fraction, 5, "g", "ratio")
    Traceback (most recent call last):
    ...
    TypeError: g: ratio=5 must be None, a Fraction or a dict of its fields
    """
    if value is None or isinstance(value, cls):
        return value
    if isinstance(value, dict):
        if dataclasses.is_dataclass(cls):
            check_fields(cls, value, func, param)
        return cls(**value)
    article = "an" if cls.__name__[0] in "AEIOU" else "a"
    raise TypeError(f"{func}: {param}={value!r} must be None, {article} {cls.__name__} or a dict of its"
                    " fields")


def check_fields(cls: type, given: Iterable[str], func: str, param: str | None = None) -> None:
    """Refuse names in ``given`` that are not fields of the dataclass ``cls``, with a ValueError naming
    them, the closest field and every field (a misspelt field would otherwise be Python's TypeError of
    an unexpected keyword).

    >>> from emu.instruction import Instruction
    >>> check_fields(Instruction, ["k", "k_ordr"], "f")
    Traceback (most recent call last):
    ...
    ValueError: f: k_ordr is not a field of Instruction (closest: k_order); fields: k, k_order, addend
    """
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = [k for k in given if k not in names]
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        where = f"{param}: " if param else ""
        near = f" (closest: {close[0]})" if close else ""
        raise ValueError(f"{func}: {where}{', '.join(map(str, unknown))} is not a field of"
                         f" {cls.__name__}{near}; fields: {', '.join(names)}")


def int_pair(value: object, func: str, param: str, lo: int | None = None, hi: int | None = None
             ) -> tuple[int, int]:
    """An int or a pair of ints (a kernel size, a stride) as a pair; anything else (a float such as 2.5,
    a bool, three entries) is refused naming ``param``, not truncated, and so is an entry outside
    [lo, hi] (a ValueError).

    >>> int_pair(3, "Conv2d", "kernel"), int_pair((1, 2), "Conv2d", "stride")
    ((3, 3), (1, 2))
    >>> int_pair(2.5, "Conv2d", "kernel")
    Traceback (most recent call last):
    ...
    TypeError: Conv2d: kernel=2.5 must be an int or a pair of ints
    >>> int_pair((0, 1), "im2col", "stride", 1)
    Traceback (most recent call last):
    ...
    ValueError: im2col: stride=(0, 1) outside the allowed range [1, inf)
    """
    pair = list(value) if isinstance(value, (tuple, list)) else None
    items = [value, value] if np.isscalar(value) else pair
    ok = items is not None and len(items) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items)
    if not ok:
        raise TypeError(f"{func}: {param}={value!r} must be an int or a pair of ints")
    pair = int(items[0]), int(items[1])  # type: ignore[index]
    if any((lo is not None and v < lo) or (hi is not None and v > hi) for v in pair):
        raise ValueError(f"{func}: {param}={value!r} outside the allowed range {_int_range(lo, hi)}")
    return pair


def renamed_refusal(e: Exception, inner: str, value: object, func: str, param: str) -> Exception:
    """The refusal ``e`` of ``inner`` (a parser called as ``inner(name=value)``) restated as ``func``'s,
    of its parameter ``param``: the same type, ``inner: name=value`` (or ``inner:``) replaced, the
    explanation kept.

    >>> str(renamed_refusal(ValueError("get_format: name='fx<2,>' is unknown"), "get_format", "fx<2,>",
    ...                     "quantize", "fmt"))
    "quantize: fmt='fx<2,>' is unknown"
    """
    msg, head = str(e), f"{inner}: name={value!r}"
    tail = msg[len(head):] if msg.startswith(head) else f": {msg.removeprefix(inner + ': ')}"
    return type(e)(f"{func}: {param}={value!r}{tail}")
