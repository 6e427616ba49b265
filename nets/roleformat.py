"""The format of one tensor role (`RoleFormat`): an emu format, a block-scaled format, or a dynamic
fixed-point group (`DynamicFixed`), with the rounding and overflow mode its conversion takes, each checked
at construction: a mode the role's conversion would not use is refused, never ignored. Imports `emu`
only."""

from __future__ import annotations

from dataclasses import dataclass, fields
from numbers import Real
from typing import Any

import emu
from emu import Overflow, Rounding
from emu.checks import check_int

__all__ = ["BLOCK_TYPES", "DynamicFixed", "RoleFormat", "is_block_format"]


@dataclass(frozen=True)
class DynamicFixed:
    """Dynamic fixed point (Courbariaux et al. 2014; NUMERICS.md section 7): a word whose radix point moves.

    Each group of values of a training run shares one word length WL and one
    fraction length FL, format <WL - FL, FL> (range [-2^(WL-FL-1),
    2^(WL-FL-1) - 2^-FL]). `nets.quant.Quantizer` keeps one group per
    parameter tensor and role (a layer's weight gradients apart from its
    bias gradients, the update term of each tensor apart) and one per layer
    and role for activations, pre-activations and errors. A step is one
    training batch (ended by `nets.quant.Quantizer.end_step` after the
    optimiser's step); with W = ``warmup_batches`` and P = ``period``:

    1. Initial range. W = 0: FL starts at ``init_frac_bits``. W > 0: during
       the run's first W steps the group converts nothing (its values pass
       in float64) and records M, the largest |x| of the finite values it
       sees; at the end of step W its FL becomes WL - IL for the smallest IL
       with M < 2^(IL-1) (IL = e + 1 where M = f 2^e, 1/2 <= f < 1). A group
       whose warm-up saw only zeros, or that first converts after step W,
       starts at ``init_frac_bits``.
    2. Updates. At the end of every step n with n - W a positive multiple of
       P, let s be the share of the values converted since the group's last
       update (or the end of its warm-up) whose conversion overflowed, and s2
       the share whose conversion at FL + 1 would overflow (its rounded code
       outside the range, as s counts it; under stochastic rounding the
       expected share: `nets.quant.overflows_at`). If
       s > ``max_overflow_rate``, FL decreases by one; else if s2 <
       ``max_overflow_rate`` (strictly under it), FL increases by one; else
       it stays (so with a maximum of 0, FL never increases). With no
       value converted since the last update FL stays. FL stays within
       [WL - 1000, 1000] (`emu.FixedFormat`'s limits).
    3. Evaluation converts at the radix points training reached, frozen
       (`nets.quant.Quantizer.for_evaluation`), and records nothing.

    Example: WL = 10, W = 2, P = 3, maximum rate 1e-4. Steps 1 and 2 see
    M = 3.2 = 0.8 * 2^2: IL = 3, FL = 7 (range [-4, 4 - 2^-7]) from the end
    of step 2. Steps 3, 4 and 5 convert 1000 values each, 2 of them beyond
    4: s = 2/3000 > 1e-4, so FL = 6 at the end of step 5; the next update is
    at the end of step 8.

    >>> d = DynamicFixed(10, period=3, warmup_batches=2)
    >>> d.init_frac_bits, str(d), str(DynamicFixed(10))
    (6, 'dfx<10>(period=3, warmup_batches=2)', 'dfx<10>')
    >>> DynamicFixed(10, period=0)
    Traceback (most recent call last):
    ...
    ValueError: DynamicFixed: period=0 outside the allowed range [1, inf)

    Args:
        word_bits: WL, the word length including the sign bit (2..62).
        max_overflow_rate: the overflow share tolerated, in [0, 1) (default 1e-4).
        period: training steps between radix-point updates, >= 1 (default 1: every step).
        init_frac_bits: FL to start from, in [WL - 1000, 1000] (default WL - 4: range [-8, 8)).
        warmup_batches: float64 steps that set the initial FL, >= 0 (default 0: none; FL starts
            at ``init_frac_bits``).

    Raises:
        ValueError: a value outside its range (the message names the field and the range).
        TypeError: an integer setting that is not an int (a bool included), a rate that is not a
            real number.
    """

    word_bits: int
    max_overflow_rate: float = 1e-4
    period: int = 1
    init_frac_bits: int | None = None
    warmup_batches: int = 0

    def __post_init__(self) -> None:
        wl = check_int(self.word_bits, "DynamicFixed", "word_bits", 2, 62)
        object.__setattr__(self, "word_bits", wl)
        rate = self.max_overflow_rate
        if isinstance(rate, bool) or not isinstance(rate, Real):
            raise TypeError(f"DynamicFixed: max_overflow_rate={rate!r} must be a real number")
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DynamicFixed: max_overflow_rate={rate!r} outside the allowed range [0, 1)")
        object.__setattr__(self, "max_overflow_rate", float(rate))
        object.__setattr__(self, "period", check_int(self.period, "DynamicFixed", "period", 1))
        object.__setattr__(self, "warmup_batches",
                           check_int(self.warmup_batches, "DynamicFixed", "warmup_batches", 0))
        fl = wl - 4 if self.init_frac_bits is None else self.init_frac_bits
        object.__setattr__(self, "init_frac_bits",
                           check_int(fl, "DynamicFixed", "init_frac_bits", wl - 1000, 1000))

    def __str__(self) -> str:
        extra = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)[1:]
                 if getattr(self, f.name) != _DFX_DEFAULTS.get(f.name, self.word_bits - 4)]
        return f"dfx<{self.word_bits}>" + (f"({', '.join(extra)})" if extra else "")


#: the defaults `DynamicFixed.__str__` leaves out (init_frac_bits: WL - 4)
_DFX_DEFAULTS = {"max_overflow_rate": 1e-4, "period": 1, "warmup_batches": 0}


BLOCK_TYPES = (emu.MXFormat, emu.NVFP4Format, emu.ScaledIntFormat)


def is_block_format(fmt: Any) -> bool:
    """Whether ``fmt`` is a block-scaled format (`emu.block_format`: MX, NVFP4, scaled integers)."""
    return isinstance(fmt, BLOCK_TYPES)


def _parse_format(value: Any) -> Any:
    """An emu format or a block-scaled format, from a value or a name."""
    if isinstance(value, (emu.Format, *BLOCK_TYPES)):
        return value
    try:
        return emu.get_format(value)
    except (ValueError, TypeError) as err:
        try:
            return emu.block_format(value)
        except (ValueError, TypeError):
            raise err from None


@dataclass(frozen=True)
class RoleFormat:
    """The format of one role: an emu format (None: float64), rounding, overflow.

    A block-scaled format (``"mxfp8_e4m3"``, ``"nvfp4"``, ``"int8_channel"``...)
    is converted along the tensor's reduction axis (`nets.quant.block_axis`),
    rounding to nearest even.

    >>> str(RoleFormat.parse("fx<4,12>", rounding="stochastic"))
    'fx<4,12>/stochastic'
    """

    fmt: Any = None
    rounding: Rounding = Rounding.NEAREST_EVEN
    overflow: Overflow | None = None

    def __post_init__(self) -> None:
        if self.fmt is not None and not isinstance(self.fmt, DynamicFixed):
            object.__setattr__(self, "fmt", _parse_format(self.fmt))
        object.__setattr__(self, "rounding", emu.modes.parse_rounding(self.rounding, "RoleFormat"))
        if is_block_format(self.fmt) and self.rounding not in (Rounding.NEAREST_EVEN, Rounding.STOCHASTIC):
            raise ValueError(f"RoleFormat: {self.fmt} is a block-scaled format; its elements round to"
                             f" nearest_even or stochastic (rounding={self.rounding} given)")
        if isinstance(self.fmt, emu.ScaledIntFormat) and self.rounding == Rounding.STOCHASTIC:
            raise ValueError(f"RoleFormat: {self.fmt} is a scaled-integer format; it rounds to nearest_even"
                             " only (rounding=stochastic given)")
        rule = isinstance(self.fmt, (emu.BinaryFormat, emu.TernaryFormat))
        if (rule or self.fmt is None) and self.rounding != Rounding.NEAREST_EVEN:  # no rounding mode taken
            kind = "float64 (no conversion)" if self.fmt is None else (
                f"{self.fmt}, whose format names its rule ({type(self.fmt).__name__[:-6].lower()}<stochastic>"
                " rounds stochastically)")
            raise ValueError(f"RoleFormat: rounding={self.rounding} does not apply to {kind}; leave rounding"
                             " at nearest_even")
        if self.overflow is not None:
            object.__setattr__(self, "overflow", emu.modes.parse_overflow(self.overflow, "RoleFormat"))
            if rule or is_block_format(self.fmt) or self.fmt is None:
                raise ValueError(f"RoleFormat: overflow={self.overflow} does not apply to"
                                 f" {self.fmt or 'float64'}, whose conversion has no overflow mode to choose"
                                 " (block formats saturate their elements, binary and ternary clip); leave"
                                 " overflow None")

    @classmethod
    def parse(cls, value: Any, rounding: Any = Rounding.NEAREST_EVEN, overflow: Any = None) -> RoleFormat:
        """A RoleFormat from a RoleFormat, a format (or name), a DynamicFixed or None."""
        if isinstance(value, RoleFormat):
            return value
        if isinstance(value, str) and value[:4] == "dfx<" and value[-1:] == ">" and value[4:-1].isdigit():
            return cls(DynamicFixed(int(value[4:-1])), rounding, overflow)
        return cls(value, rounding, overflow)

    @property
    def is_float64(self) -> bool:
        """No conversion: the role keeps float64 values."""
        return self.fmt is None

    def __str__(self) -> str:
        if self.fmt is None:
            return "float64"
        s = str(self.fmt)
        if self.rounding != Rounding.NEAREST_EVEN:
            s += f"/{self.rounding}"
        if self.overflow is not None:
            s += f"/{self.overflow}"
        return s
