"""Conversion of real numbers to formats: quantize, encode, decode, bits.

Thin wrappers: they validate the arguments, resolve the format into plain
integers and call a kernel of ``emu._kernels``; the semantics are NUMERICS.md
sections 1-5 and 8 with the choices of docs/semantics.md. Imports ``emu``'s
own modules only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from . import _fast_kernels as FK
from . import _kernels as K
from . import _update_kernels as UK
from .checks import check_bool, check_int
from .formats import BinaryFormat, FixedFormat, FloatFormat, Format, Pow2Format, TernaryFormat
from .inputs import as_bits, as_word, check_seed, flat_index, seed_key, seed_word
from .modes import Overflow, Rounding, parse_overflow, parse_rounding
from .registry import format_arg
from .signs import check_scale, resolve_scale, scaled_values, sign_codes
from .stats import QuantStats
from .threads import CONVERT_THREAD_ELEMENTS, PIECE_ELEMENTS, by_pieces

__all__ = ["Converter", "bits", "decode", "encode", "quantize", "seed_key"]

_KEY0 = np.uint64(0)
_F64 = np.dtype(np.float64)
_GENERATOR = np.random.Generator
_MASK64 = (1 << 64) - 1


def _code_dtype(nbits: int) -> type[np.unsignedinteger[Any]]:
    for dt, w in ((np.uint8, 8), (np.uint16, 16), (np.uint32, 32)):
        if nbits <= w:
            return dt
    return np.uint64


def _range_text(fmt: Format) -> str:
    return f"finite range [{fmt.min!r}, {fmt.max!r}]"


class _Fast(NamedTuple):
    """The values-only fast kernel of a conversion: ``serial(x, vals, *args[, key, base])`` on one thread
    without the GIL (inputs below `CONVERT_THREAD_ELEMENTS`, and each piece of `Converter.stream`, x[0]
    being element ``base`` of the random stream), ``threaded(x, vals, *args[, key], stats)`` over
    `K.CHUNK`-element chunks; the key (an int64 word) and base only where ``keyed``. A kernel that
    ``declines`` some inputs (stochastic floats: `emu._fast_kernels.float_sr_fast_serial`) counts them
    in its third count, and the caller (`convert_array`, `Converter.values`) then runs the general kernel
    with the same key; `Converter.stream` and the fused update (`FastSpec`) do not take such a kernel."""

    serial: Callable[..., tuple[int, int, int]]
    threaded: Callable[..., None]
    args: tuple[Any, ...]
    keyed: bool
    declines: bool = False


class FastSpec(NamedTuple):
    """A converter's fast kernel as a fused kernel takes it (`emu.update.rounded_update`): ``args``, the
    kind (an ``emu._update_kernels`` KIND), a fixed-point kernel's integer arguments and a float kernel's
    packed parameters and NaN value; whether a NaN input is no error; whether a call draws a key
    (stochastic rounding)."""

    args: tuple[int, np.ndarray, np.ndarray, float]
    nan_ok: bool
    stochastic: bool


def _fast_spec(cfg: _Settings | None) -> FastSpec | None:
    """The `FastSpec` of settings with a fast kernel (None without one)."""
    if cfg is None or cfg.fast is None or cfg.fast.declines:  # (the fused update cannot hand on a key)
        return None
    fast, no_ints, no_packed = cfg.fast, np.zeros(0, np.int64), np.zeros(0, np.uint64)
    if fast.serial is FK.fixed_sr_fast_serial:
        return FastSpec((UK.KIND_FIXED_SR, np.array(fast.args, np.int64), no_packed, 0.0), cfg.nan_ok, True)
    if fast.serial is FK.fixed_fast_serial:
        return FastSpec((UK.KIND_FIXED, np.array(fast.args, np.int64), no_packed, 0.0), cfg.nan_ok, False)
    return FastSpec((UK.KIND_FLOAT, no_ints, *fast.args), cfg.nan_ok, False)


class _Settings(NamedTuple):
    """The validated settings of a conversion and its values-only fast kernel (None: no fast kernel)."""

    rounding: Rounding
    overflow: Overflow
    random_bits: int
    nan_zero: bool
    nan_ok: bool  # a NaN input is no error: the format has NaN, or nan=0
    fast: _Fast | None


def checked_settings(fmt: Format, rounding: object, overflow: object, random_bits: object, nan: object,
              func: str) -> _Settings:
    """`_Settings` for a conversion (memoised: a training step converts with
    the same few settings thousands of times; bad settings raise every time)."""
    try:
        return _settings_cached(fmt, rounding, overflow, random_bits, nan, func)
    except TypeError as e:
        if "unhashable" not in str(e):
            raise
        return _settings_uncached(fmt, rounding, overflow, random_bits, nan, func)


def _settings_uncached(fmt: Format, rounding: object, overflow: object, random_bits: object, nan: object,
                       func: str) -> _Settings:
    rnd, ovf, rbits = _check_modes(fmt, rounding, overflow, random_bits, func)
    nan_zero = _check_nan(nan, func)
    if nan_zero and isinstance(fmt, FloatFormat) and not fmt.zero and not fmt.has_nan:
        raise ValueError(f"{func}: nan=0 asks for a zero, which {fmt} lacks; pass nan=None")
    nan_ok = nan_zero or (isinstance(fmt, FloatFormat) and fmt.has_nan)
    fast = None if ovf == Overflow.ERROR else _fast_kernel(fmt, rnd, ovf, rbits)
    return _Settings(rnd, ovf, rbits, nan_zero, nan_ok, fast)


_settings_cached = functools.lru_cache(maxsize=1024, typed=True)(_settings_uncached)


def _check_modes(fmt: Format, rounding: object, overflow: object, random_bits: object,
                 func: str) -> tuple[Rounding, Overflow, int]:
    """(rounding, overflow, random bits) validated for ``fmt``."""
    rnd = parse_rounding(rounding, func)
    ovf = fmt.default_overflow if overflow is None else parse_overflow(overflow, func)
    if ovf not in fmt.overflow_modes:
        allowed = ", ".join(str(m) for m in fmt.overflow_modes)
        raise ValueError(f"{func}: overflow={ovf} is not allowed for {fmt}; allowed: {allowed}")
    if random_bits is None:
        return rnd, ovf, 0
    if rnd != Rounding.STOCHASTIC:
        raise ValueError(f"{func}: random_bits={random_bits!r} applies only to rounding='stochastic'")
    return rnd, ovf, check_int(random_bits, func, "random_bits", 1, 64)


def _check_nan(nan: object, func: str) -> bool:
    if nan is None:
        return False
    if isinstance(nan, (int, float, np.integer, np.floating)) and not isinstance(nan, bool) and nan == 0:
        return True
    raise ValueError(f"{func}: nan={nan!r}; the only allowed values are None (raise) and 0")


def convert_array(x: object, fmt: Format, rounding: object, overflow: object, seed: object,
             random_bits: object, nan: object, want_val: bool, want_code: bool,
             func: str, e_off: int = 0, flags: np.ndarray | None = None,
             nan_hint: bool = True, key: np.uint64 | None = None
                  ) -> tuple[np.ndarray | None, np.ndarray | None, QuantStats]:
    """Run the kernel of a fixed, float or power-of-two format on x.

    For integer x, ``e_off`` makes each element stand for x * 2^e_off (exact
    scaling of integer codes). ``flags`` (uint8, x's size, zeroed) receives 1
    for every element that overflowed. ``func`` names the caller in errors;
    ``nan_hint``: the NaN refusal suggests ``nan=0`` (a caller that has no such
    parameter, a datapath's operand conversion, leaves it out). ``key``: the
    random stream's key already drawn from ``seed`` (`Converter.values` after a
    declining kernel), which the general kernel then takes.
    """
    cfg = checked_settings(fmt, rounding, overflow, random_bits, nan, func)
    rnd, ovf, rbits, nan_zero = cfg.rounding, cfg.overflow, cfg.random_bits, cfg.nan_zero
    stochastic = rnd == Rounding.STOCHASTIC
    if cfg.fast is not None and want_val != want_code and flags is None and key is None:
        a = x if type(x) is np.ndarray else np.asarray(x)
        if a.dtype is not _F64:
            _, xb, kind = as_bits(a, func)
            a = xb.view(np.float64).reshape(a.shape) if kind == 0 else None
        if a is not None:
            key = seed_key(seed, func) if stochastic else _KEY0
            done = _run_fast(cfg, a, as_word(key))
            if done is not None:
                vals, st = done[0], QuantStats(a.size, *done[1:])
                if want_val:
                    return vals, None, st
                return None, codes_of_values(vals.reshape(-1), fmt, True).reshape(vals.shape), st
            # an error to report (the general kernel below finds the first offending index), or inputs a
            # declining kernel leaves to the general one, which takes the same key
    if flags is None:
        flags = np.zeros(0, np.uint8)
    a, xb, kind = as_bits(x, func)
    n = xb.size
    if key is None:
        key = seed_key(seed, func) if stochastic else _KEY0
    nchunks = max(1, -(-n // K.CHUNK))
    vals = np.empty(n if want_val else 0, np.float64)
    codes = np.empty(n if want_code else 0, np.uint64)
    stats = np.zeros((nchunks, K.N_STATS), np.int64)
    if isinstance(fmt, FixedFormat):
        K.quantize_fixed(xb, kind, vals, codes, fmt.frac_bits, fmt.bits, fmt.signed, int(rnd), int(ovf),
                         key, rbits, stats, e_off, flags)
    elif isinstance(fmt, FloatFormat):
        pmin = fmt.emin - fmt.man_bits
        pow2 = np.ldexp(1.0, np.arange(pmin, fmt.emax - fmt.man_bits + 1))
        K.quantize_float(xb, kind, vals, codes, fmt.exp_bits, fmt.man_bits, fmt.bias, fmt.emax,
                         fmt.subnormals, fmt.has_inf, fmt.has_nan, fmt.has_negative_zero,
                         np.uint64(_nan_code(fmt)), fmt.special == "ieee",
                         np.uint64(fmt.inf_code if fmt.has_inf else 0),
                         fmt.max_significand, None if fmt.signed else not fmt.zero, fmt.ties_by_code,
                         int(rnd), int(ovf), key, rbits, pow2, stats, e_off, flags)
    elif isinstance(fmt, Pow2Format):
        K.quantize_pow2(xb, kind, vals, codes, fmt.emin, fmt.emax, fmt.signed, fmt.k_bits, int(rnd),
                        int(ovf), key, rbits, stats, e_off, flags)
    else:  # pragma: no cover - callers dispatch binary/ternary elsewhere
        raise TypeError(f"{func}: no kernel for {fmt!r}")
    st = QuantStats(n, int(stats[:, K.ST_OVERFLOW].sum()), int(stats[:, K.ST_UNDERFLOW].sum()),
                    int(stats[:, K.ST_NAN].sum()))
    has_nan = isinstance(fmt, FloatFormat) and fmt.has_nan
    if st.nan and not has_nan and not nan_zero:
        first = _first(stats[:, K.ST_FIRST_NAN])
        raise ValueError(
            f"{func}: x holds {st.nan} NaN value(s) (first at index {flat_index(a.shape, first)}) and {fmt}"
            " has no NaN" + ("; pass nan=0 to map NaN to 0" if nan_hint else "")
        )
    if stats[:, K.ST_BAD].sum():
        first = _first(stats[:, K.ST_FIRST_BAD])
        raise ValueError(
            f"{func}: x holds +-inf (first at index {flat_index(a.shape, first)}), which overflow=wrap"
            f" cannot convert to {fmt}; use overflow='saturate' or 'error'"
        )
    if st.overflow and ovf == Overflow.ERROR:
        first = _first(stats[:, K.ST_FIRST_OVERFLOW])
        idx = flat_index(a.shape, first)
        v = a[idx] if a.ndim else a[()]
        if e_off:  # an integer code standing for code * 2^e_off: its value
            v = np.ldexp(np.float64(v), e_off)
        raise OverflowError(
            f"{func}: {st.overflow} of {n} value(s) overflow {fmt} ({_range_text(fmt)});"
            f" first at index {idx}: x={v!r}"
        )
    shape = a.shape
    return (vals.reshape(shape) if want_val else None,
            codes.astype(_code_dtype(fmt.bits)).reshape(shape) if want_code else None, st)


def convert_operand(x: object, fmt: Format, rounding: object, overflow: object, seed: object, func: str,
                    codes: bool = False) -> tuple[np.ndarray, QuantStats]:
    """(values, or with ``codes`` the integer codes, and stats) of a datapath's conversion of one operand,
    bias or addend to a fixed, float or power-of-two format: `quantize`'s (`encode`'s) results, its
    refusals naming ``func`` (e.g. "matmul (act)") and suggesting no ``nan=`` the datapath does not take.

    >>> convert_operand(np.array([0.3, 9.0]), FixedFormat(4, 2), "nearest_even", "saturate", None,
    ...                 "matmul (act)")[0]
    array([0.25, 7.75])
    """
    vals, code, st = convert_array(x, fmt, rounding, overflow, seed, None, None, not codes, codes, func,
                                   nan_hint=False)
    return (code if codes else vals), st  # type: ignore[return-value]


def _run_fast(cfg: _Settings, a: np.ndarray, word: int) -> tuple[np.ndarray, int, int, int] | None:
    """(values, overflow, underflow, NaN counts) of a float64 array by the settings' fast kernel, with the
    random stream's key as its int64 word (`seed_word`; ignored by deterministic kernels); None when x
    holds a NaN the settings do not accept (the general kernel then finds it and raises)."""
    fast = cfg.fast
    xf = a.reshape(-1)  # a copy in C order when a is not C-ordered
    vals = np.empty(a.shape)
    args = (*fast.args, word) if fast.keyed else fast.args  # type: ignore[union-attr]
    if xf.size < CONVERT_THREAD_ELEMENTS:
        n_ovf, n_unf, n_nan = fast.serial(xf, vals.reshape(-1), *args)  # type: ignore[union-attr]
    else:
        stats = np.zeros((-(-xf.size // K.CHUNK), FK.N_FAST_STATS), np.int64)
        fast.threaded(xf, vals.reshape(-1), *args, stats)  # type: ignore[union-attr]
        n_ovf, n_unf, n_nan = stats.sum(axis=0).tolist()
    if n_nan and (fast.declines or not cfg.nan_ok):  # (a declining kernel's third count: declined)
        return None
    return vals, n_ovf, n_unf, n_nan


def _fast_kernel(fmt: Format, rnd: Rounding, ovf: Overflow, rbits: int) -> _Fast | None:
    """The values-only fast kernel of a conversion (float64 x, any overflow mode but error), or None when
    none covers the case."""
    if isinstance(fmt, FixedFormat) and fmt.frac_bits >= 0 and fmt.bits <= 53 and ovf == Overflow.SATURATE:
        fl, wl, signed, qmin, qmax = fmt.frac_bits, fmt.bits, fmt.signed, fmt.qmin, fmt.qmax
        if rnd == Rounding.STOCHASTIC:
            if rbits > 53:  # the fast kernel compares at most 53 random bits at once
                return None
            return _Fast(FK.fixed_sr_fast_serial, FK.fixed_sr_fast, (fl, wl, signed, qmin, qmax, rbits), True)
        return _Fast(FK.fixed_fast_serial, FK.fixed_fast, (fl, qmin, qmax, int(rnd)), False)
    if (isinstance(fmt, FloatFormat) and fmt.signed and rnd == Rounding.STOCHASTIC and fmt.man_bits <= 51
            and fmt.has_normals and fmt.emin - fmt.man_bits >= -1022 and fmt.emax + 1 - fmt.man_bits <= 1022
            and rbits <= 53):  # (every power of two `float_sr_fast_serial` scales by: a normal float64)
        args = (fmt.man_bits, fmt.emin, fmt.emax, fmt.max, fmt.subnormals, fmt.has_negative_zero, int(ovf),
                rbits)
        return _Fast(FK.float_sr_fast_serial, FK.float_sr_fast, args, True, declines=True)
    if (isinstance(fmt, FloatFormat) and fmt.signed and rnd != Rounding.STOCHASTIC and fmt.man_bits <= 51
            and fmt.emin >= -1022 and fmt.man_bits - fmt.emin <= 1023):  # 2^(M - emin) is a float64
        packed = FK.float_params_packed(fmt, int(rnd), int(ovf), conversion=True)
        nan_value = np.nan if fmt.has_nan else 0.0  # NaN: the conversion's own (`nan_keep_mask`)
        return _Fast(FK.float_fast_serial, FK.float_fast, (packed, nan_value), False)
    return None


def codes_of_values(v: np.ndarray, fmt: Format, conversion: bool = False) -> np.ndarray:
    """Codes of values already in ``fmt`` (the output of a fast kernel). A NaN's code keeps its sign and
    payload as the format can (`emu._nans.nan_code_of`) where the values are a ``conversion``'s; a
    NaN that arithmetic made (a datapath's output) gives the canonical NaN code."""
    out = np.empty(v.size, np.uint64)
    kernel = K.codes_of_values if v.size >= CONVERT_THREAD_ELEMENTS else K.codes_block
    if isinstance(fmt, FixedFormat):
        kernel(v, out, True, fmt.frac_bits, fmt.bits, 0, 0, 0, 0, False, np.uint64(0), np.uint64(0), False,
               np.uint64(0))
    else:
        assert isinstance(fmt, FloatFormat)
        assert fmt.signed  # unsigned formats take the general kernel
        inf_code = np.uint64(fmt.inf_code if fmt.has_inf else 0)
        kernel(v, out, False, 0, fmt.bits, fmt.man_bits, fmt.exp_bits, fmt.bias, fmt.emin,
               fmt.has_negative_zero, np.uint64(_nan_code(fmt)),
               np.uint64(1 << (fmt.bits - 1) if conversion and fmt.has_negative_zero else 0),
               conversion and fmt.special == "ieee", inf_code)
    return out.astype(_code_dtype(fmt.bits))


def _first(col: np.ndarray) -> int:
    hits = col[col >= 0]
    return int(hits.min())


def _nan_code(fmt: FloatFormat) -> int:
    """The canonical NaN code (`FloatFormat.nan_code`), or 0 for a format without NaN."""
    return fmt.nan_code if fmt.has_nan else 0


def quantize(x: object, fmt: str | Format, rounding: str | Rounding = "nearest_even",
             overflow: str | Overflow | None = None, *, seed: object = None,
             random_bits: int | None = None, nan: object = None, scale: Any = None,
             return_stats: bool = False) -> Any:
    """Round x to the nearest value of ``fmt`` under a rounding and an overflow mode.

    Args:
        x: any real array-like (ints, float16/32/64, 0-d, non-contiguous).
        fmt: a format or its name (``"fx<2,14>"``, ``"e4m3"``, ``"pow2<-8,0>"``...).
        rounding: a `Rounding` or its name (NUMERICS.md section 3).
        overflow: an `Overflow` or its name; None takes the format's default
            (saturate; inf for formats with inf: IEEE, P3109 extended).
        seed: for stochastic rounding: int >= 0, SeedSequence, Generator or None (checked under every
            rounding; a deterministic one draws nothing from a Generator).
        random_bits: stochastic rounding with r random bits (P(up) = floor(f 2^r) / 2^r).
        nan: None raises on NaN for formats without NaN; 0 maps NaN to 0 there (a format with NaN keeps
            NaN whatever ``nan`` is).
        scale: the scale of a scaled binary/ternary format (else computed from x).
        return_stats: also return a `QuantStats`.

    Returns:
        float64 array of the exact represented values, the shape of x (and the
        stats when asked).

    Raises:
        ValueError: bad mode, NaN into a format without NaN, +-inf under wrap.
        OverflowError: ``overflow="error"`` and some value overflowed.
        TypeError: x is not real (complex, object, str, bool); return_stats not True or False.

    >>> quantize([0.3, 2.5, -7.0], "fx<2,2>")
    array([ 0.25,  1.75, -2.  ])
    >>> quantize([1.0, 300.0, 465.0], "e4m3", overflow="nan")
    array([  1., 288.,  nan])
    >>> quantize([3.0, -1.0, 0.0], "e8m0", overflow="nan")  # unsigned, no zero; 3 = 1.5 * 2 ties up to 4
    array([ 4., nan, nan])
    """
    check_seed(seed, "quantize")
    check_bool(return_stats, "quantize", "return_stats")
    f = format_arg(fmt, "quantize", "fmt")
    if isinstance(f, (BinaryFormat, TernaryFormat)):
        s, xf, st = sign_codes(x, f, rounding, overflow, seed, random_bits, nan, "quantize")
        vals = scaled_values(s, f, resolve_scale(xf, f, scale, "quantize"))
        st = _zeroed(st, xf, vals)
    else:
        if scale is not None:
            raise ValueError(f"quantize: scale= applies to scaled binary/ternary formats, not {f}")
        vals, _, st = convert_array(x, f, rounding, overflow, seed, random_bits, nan, True, False, "quantize")
    return (vals, st) if return_stats else vals


class Converter:
    """`quantize` prepared once for repeated calls: the format and modes are
    checked and the kernel chosen at construction, so a call on a float64
    array costs little more than the kernel (a training step converts the same
    few tensor roles thousands of times). The results and stats are exactly
    `quantize`'s, and so are the errors a call raises (NaN into a format
    without NaN, ``overflow="error"``). ``spec`` is its fast kernel as a fused
    kernel takes it (`FastSpec`; `emu.update.rounded_update`), None where no
    fast kernel covers its settings.

    >>> to_e4m3 = Converter("e4m3")
    >>> to_e4m3(np.array([0.3, 500.0]))
    array([3.125e-01, 4.480e+02])
    >>> to_e4m3(np.array([0.3, 500.0]), return_stats=True)[1].overflow
    1
    """

    __slots__ = ("fmt", "rounding", "overflow", "random_bits", "nan", "spec", "_cfg", "_stochastic", "_draws")

    def __init__(self, fmt: str | Format, rounding: str | Rounding = "nearest_even",
                 overflow: str | Overflow | None = None, *, random_bits: int | None = None,
                 nan: object = None) -> None:
        self.fmt = format_arg(fmt, "Converter", "fmt")
        quantize(np.zeros(0), self.fmt, rounding, overflow, random_bits=random_bits, nan=nan)  # check, raise
        self.rounding, self.overflow, self.random_bits, self.nan = rounding, overflow, random_bits, nan
        self._cfg = None
        if isinstance(self.fmt, BinaryFormat):
            self._draws = self.fmt.stochastic
        elif isinstance(self.fmt, TernaryFormat):
            self._draws = self.fmt.method == "stochastic"
        else:
            cfg = checked_settings(self.fmt, rounding, overflow, random_bits, nan, "quantize")
            self._cfg = cfg if cfg.fast is not None else None
            self._draws = cfg.rounding == Rounding.STOCHASTIC
        self._stochastic = self._cfg is not None and self._draws
        self.spec = _fast_spec(self._cfg)

    def __call__(self, x: object, *, seed: object = None, scale: Any = None,
                 return_stats: bool = False) -> Any:
        """`quantize` (x, seed, scale, return_stats as there) with this converter's format and modes."""
        check_bool(return_stats, "quantize", "return_stats")
        done = self.values(x, seed) if scale is None else None
        if done is not None:
            vals = done[0]
            return (vals, QuantStats(vals.size, *done[1:])) if return_stats else vals
        return quantize(x, self.fmt, self.rounding, self.overflow, seed=seed, random_bits=self.random_bits,
                        nan=self.nan, scale=scale, return_stats=return_stats)

    def values(self, x: object, seed: object = None) -> tuple[np.ndarray, int, int, int] | None:
        """A call's fast path alone: (values, overflow, underflow, NaN counts) of a float64 ndarray, exactly
        as a call gives them (the random stream drawn from ``seed`` the same way, only when the fast path
        runs), or None when no fast kernel covers x or x holds a NaN the format has no code for (a call
        then converts x, or raises, as `quantize` does). The inputs a stochastic float kernel declines are
        converted here by the general kernel with the key already drawn (raising where `quantize` raises).
        A loop converting many small arrays, as a training step does, saves the stats object and the
        keywords.

        >>> Converter("fx<2,2>").values(np.array([0.3, 7.0]))
        (array([0.25, 1.75]), 1, 0, 0)
        """
        if seed is not None and type(seed) is not _GENERATOR:  # (the hot path's seeds: two comparisons)
            check_seed(seed, "quantize")
        cfg = self._cfg
        if cfg is None or type(x) is not np.ndarray or x.dtype is not _F64:
            return None
        word = seed_word(seed, "quantize") if self._stochastic else 0
        done = _run_fast(cfg, x, word)
        if done is None and cfg.fast.declines:  # type: ignore[union-attr]
            # the inputs the kernel declined: the general kernel with the key already drawn (it raises
            # where `quantize` would)
            vals, _, st = convert_array(x, self.fmt, self.rounding, self.overflow, None, self.random_bits,
                                        self.nan, True, False, "quantize", key=np.uint64(word & _MASK64))
            return vals, st.overflow, st.underflow, st.nan  # type: ignore[return-value]
        return done

    def draw(self, seed: object = None) -> None:
        """Take from ``seed`` what one call takes, and convert nothing: one 64-bit word of a Generator when
        this converter rounds stochastically (`seed_key`), else nothing (a bad seed is refused either way,
        as a call refuses it). A caller that knows its x already
        holds values of the format (a conversion's output, or max(y, 0) of one into a fixed-point format)
        can use x as the call's result, nothing overflowing or underflowing, and still leave the random
        stream where the call would.

        >>> c, g, h = Converter("fx<2,2>", "stochastic"), np.random.default_rng(0), np.random.default_rng(0)
        >>> y = c(np.array([0.3, 0.6]), seed=g)
        >>> c.draw(h)
        >>> g.random() == h.random()
        True
        """
        if self._draws:
            seed_word(seed, "quantize")  # seed_key's draw, without a numpy scalar
        else:
            check_seed(seed, "quantize")

    def stream(self, n: int, fill: Callable[[int, int, np.ndarray], object],
               seed: object = None) -> tuple[np.ndarray, int, int, int] | None:
        """`values` of the float64 array y of n elements that ``fill(lo, hi, buf)`` writes piece by piece
        (buf[:hi - lo] = y[lo:hi]), without making y: each piece (`emu.threads.by_pieces`: shared among
        threads from `emu.threads.PIECE_THREAD_ELEMENTS` elements) is filled and converted while it is in
        the cache. ``fill`` must not depend on the thread that calls it (and gains from the threads only
        where it releases the GIL, as numpy's and nogil numba kernels do).

        The values and counts are exactly values(y)'s: the random stream is drawn from ``seed`` once, and
        each element's random bits come from its index in y whatever the piece. None where values(y)
        would give None (no fast kernel, or a NaN the format has no code for: convert y then).

        >>> c = Converter("fx<2,2>")
        >>> c.stream(3, lambda lo, hi, buf: np.multiply(np.arange(lo, hi), 0.3, out=buf[:hi - lo]))
        (array([0.  , 0.25, 0.5 ]), 0, 0, 0)
        """
        check_seed(seed, "quantize")
        cfg = self._cfg
        if cfg is None or cfg.fast.declines:  # type: ignore[union-attr]
            return None  # (nothing drawn: the caller converts the whole array)
        fast = cfg.fast
        word = seed_word(seed, "quantize") if self._stochastic else 0
        out = np.empty(n)
        counts = np.zeros((-(-n // PIECE_ELEMENTS), 3), np.int64)

        def worker() -> Callable[[int, int], None]:
            buf = np.empty(min(n, PIECE_ELEMENTS))

            def run(lo: int, hi: int) -> None:
                fill(lo, hi, buf)
                tail = (word, lo) if fast.keyed else ()  # type: ignore[union-attr]
                counts[lo // PIECE_ELEMENTS] = fast.serial(buf[:hi - lo], out[lo:hi], *fast.args, *tail)  # type: ignore[union-attr]
            return run

        by_pieces(n, worker)
        ovf, unf, nan = counts.sum(axis=0).tolist()
        if nan and not cfg.nan_ok:
            return None
        return out, ovf, unf, nan

    def __repr__(self) -> str:
        return f"Converter({self.fmt}, {self.rounding!s}, {self.overflow!s})"


def encode(x: object, fmt: str | Format, rounding: str | Rounding = "nearest_even",
           overflow: str | Overflow | None = None, *, seed: object = None,
           random_bits: int | None = None, nan: object = None, scale: Any = None,
           return_stats: bool = False) -> Any:
    """Round x into ``fmt`` (as `quantize`) and return the codes (bit patterns).

    Codes are unsigned integers of the smallest numpy type holding the word
    (uint8 for 8-bit formats). For scaled binary/ternary formats the result is
    ``(codes, scale)``.

    >>> encode([1.0, -1.0, 0.5], "fx<2,6>")
    array([ 64, 192,  32], dtype=uint8)
    >>> encode(448.0, "e4m3")
    array(126, dtype=uint8)
    >>> encode([1.0, -1.0, float("nan")], "p3109<8,4>")
    array([ 64, 192, 128], dtype=uint8)
    """
    return _encode(x, fmt, rounding, overflow, seed=seed, random_bits=random_bits, nan=nan, scale=scale,
                   return_stats=return_stats, func="encode")


def _encode(x: object, fmt: str | Format, rounding: Any, overflow: Any, *, seed: object = None,
            random_bits: int | None = None, nan: object = None, scale: Any = None, return_stats: bool = False,
            func: str = "encode") -> Any:
    check_seed(seed, func)
    check_bool(return_stats, func, "return_stats")
    f = format_arg(fmt, func, "fmt")
    if isinstance(f, (BinaryFormat, TernaryFormat)):
        s, xf, st = sign_codes(x, f, rounding, overflow, seed, random_bits, nan, func)
        codes = np.asarray((s > 0) if isinstance(f, BinaryFormat) else (s.astype(np.int16) & 3), np.uint8)
        sc = resolve_scale(xf, f, scale, func)
        st = _zeroed(st, xf, scaled_values(s, f, sc))
        out: Any = (codes, sc) if f.has_data_scale else codes
    else:
        if scale is not None:
            raise ValueError(f"{func}: scale= applies to scaled binary/ternary formats, not {f}")
        _, out, st = convert_array(x, f, rounding, overflow, seed, random_bits, nan, False, True, func)
    return (out, st) if return_stats else out


def _zeroed(st: QuantStats, xf: np.ndarray, vals: np.ndarray) -> QuantStats:
    """A binary or ternary conversion's stats with ``underflow`` counting every nonzero finite input whose
    value (code times scale) is 0: the codes' zeros, and every code under a scale of 0."""
    return st._replace(underflow=int(np.count_nonzero((vals == 0) & (xf != 0) & np.isfinite(xf))))


def decode(codes: object, fmt: str | Format, *, scale: Any = None) -> np.ndarray:
    """Values (float64) of codes of ``fmt``: the inverse of `encode`.

    Args:
        codes: integer array of bit patterns in [0, 2^bits).
        fmt: the format or its name.
        scale: the scale of a scaled binary/ternary format (required there; refused for any other format).

    Raises:
        TypeError: codes are not integers.
        ValueError: a code outside [0, 2^bits) or unused by the format; ``scale`` given for a format
            without a data scale.

    >>> decode([64, 192, 32], "fx<2,6>")
    array([ 1. , -1. ,  0.5])
    """
    return decode_codes(codes, format_arg(fmt, "decode", "fmt"), scale, "decode")


def decode_codes(codes: object, f: Format, scale: Any, func: str) -> np.ndarray:
    """`decode` of codes of the format ``f``, its errors naming ``func`` (`emu.Encoded` checks its codes
    so, naming itself)."""
    if scale is not None and not isinstance(f, (BinaryFormat, TernaryFormat)):
        raise ValueError(f"{func}: scale= applies to scaled binary/ternary formats, not {f}")
    c = np.asarray(codes)
    if c.dtype.kind not in "iu":
        raise TypeError(f"{func}: codes have dtype {c.dtype}; expected an integer array of bit patterns")
    n = 1 << f.bits
    bad = (c < 0) | (c >= n) if c.dtype.kind == "i" else (c >= n)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1))[0])
        raise ValueError(
            f"{func}: code {c.reshape(-1)[first]} at index {flat_index(c.shape, first)}"
            f" outside [0, {n - 1}] for {f}"
        )
    u = c.astype(np.uint64)
    if isinstance(f, FixedFormat):
        q = u.astype(np.int64)
        if f.signed:
            q = np.where(q >= (1 << (f.bits - 1)), q - (1 << f.bits), q)
        return np.asarray(q.astype(np.float64) * f.eps)
    if isinstance(f, FloatFormat):
        return _decode_float(u, f)
    if isinstance(f, Pow2Format):
        sign = (u >> np.uint64(f.k_bits)).astype(bool) if f.signed else np.zeros(u.shape, bool)
        k = (u & np.uint64((1 << f.k_bits) - 1)).astype(np.int64)
        unused = (k > f.n_exponents) | (sign & (k == 0))
        if unused.any():
            first = int(np.flatnonzero(unused.reshape(-1))[0])
            raise ValueError(f"{func}: code {c.reshape(-1)[first]} is not a code of {f}")
        v = np.where(k == 0, 0.0, np.ldexp(1.0, f.emin + k - 1))
        return np.where(sign, -v, v)
    if isinstance(f, BinaryFormat):
        s = np.where(u == 1, 1, -1).astype(np.int8)
    else:
        if (u == 2).any():
            raise ValueError(f"{func}: code 2 (0b10) is not a code of {f}")
        s = np.where(u == 1, 1, np.where(u == 3, -1, 0)).astype(np.int8)
    if f.has_data_scale and scale is None:
        raise ValueError(f"{func}: {f} is scaled; pass the scale returned by encode as scale=")
    if not f.has_data_scale and scale is not None:
        raise ValueError(f"{func}: scale= given but {f} is unscaled")
    return scaled_values(s, f, None if scale is None else check_scale(scale, f, s.shape, func))


def _decode_float(u: np.ndarray, f: FloatFormat) -> np.ndarray:
    m = f.man_bits
    sign = (u >> np.uint64(f.bits - 1)).astype(bool) if f.signed else np.zeros(u.shape, bool)
    field = ((u >> np.uint64(m)) & np.uint64((1 << f.exp_bits) - 1)).astype(np.int64)
    frac = (u & np.uint64((1 << m) - 1)).astype(np.int64)
    with np.errstate(over="ignore", under="ignore"):  # field 0 and the special fields are replaced below
        normal = np.ldexp((frac + (1 << m)).astype(np.float64), field - f.bias - m)
    sub = np.ldexp(frac.astype(np.float64), f.emin - m) if f.subnormals else np.zeros(u.shape)
    v = normal if not f.zero else np.where(field == 0, sub, normal)
    v = np.where(sign, -v, v)
    mag = u & np.uint64((1 << (f.exp_bits + m)) - 1)  # the code without its sign bit
    if f.has_inf:
        v = np.where(mag == np.uint64(f.inf_code), np.where(sign, -np.inf, np.inf), v)
    # NaN codes: float64 NaNs with the code's sign and (ieee) its fraction at the top of float64's, as a
    # conversion gives them (`nan_keep_mask`), so that code -> value -> code is the identity
    nan_bits = (np.uint64(0x7FF0000000000000) | (frac.astype(np.uint64) << np.uint64(52 - m))
                if f.special == "ieee" else np.full(u.shape, np.uint64(0x7FF8000000000000)))
    if f.has_negative_zero:  # ieee and fn: NaN codes of both signs
        nan_bits = nan_bits | (sign.astype(np.uint64) << np.uint64(63))
    if f.special == "ieee":
        is_nan = (field == (1 << f.exp_bits) - 1) & (frac != 0)
    elif f.special == "fn":  # either sign
        is_nan = mag == np.uint64(f.nan_code)
    else:  # the one NaN code, if any
        is_nan = u == np.uint64(f.nan_code) if f.has_nan else np.zeros(u.shape, bool)
    return np.where(is_nan, nan_bits.view(np.float64), v)


def bits(x: object, fmt: str | Format, rounding: str | Rounding = "nearest_even",
         overflow: str | Overflow | None = None, *, seed: object = None, random_bits: int | None = None,
         nan: object = None, scale: Any = None) -> Any:
    """Bit strings of x in ``fmt``, grouped for reading; ``rounding``, ``overflow``, ``seed``,
    ``random_bits``, ``nan`` and ``scale`` as `encode`'s.

    Floats as ``sign|exponent|mantissa``, fixed point as ``integer|fraction``
    (bits the radix point implies outside the word shown in parentheses: sign
    copies when IL < 0, zeros when FL < 0), powers of two as ``sign|K``.
    Returns a str for a scalar x, else an array of str.

    >>> bits(-1.5, "e4m3"), bits(0.75, "fx<2,6>"), bits(6.0, "fx<4,-1>")
    ('1|0111|100', '00|110000', '011(0)|')
    """
    f = format_arg(fmt, "bits", "fmt")
    enc = _encode(x, f, rounding, overflow, seed=seed, random_bits=random_bits, nan=nan, scale=scale,
                  func="bits")
    codes = enc[0] if isinstance(enc, tuple) else enc
    flat = [_bit_string(int(c), f) for c in np.asarray(codes).reshape(-1)]
    out = np.array(flat, dtype=object).reshape(np.shape(codes)).astype(str) if flat else np.array([], str)
    return str(out[()]) if out.ndim == 0 else out


def _bit_string(code: int, f: Format) -> str:
    w = format(code, f"0{f.bits}b")
    if isinstance(f, FloatFormat):
        e, sb = f.exp_bits, int(f.signed)
        return f"{w[0] + '|' if sb else ''}{w[sb:sb + e]}|{w[sb + e:]}"
    if isinstance(f, FixedFormat):
        il, fl = f.int_bits, f.frac_bits
        if il < 0:
            fill = w[0] if f.signed else "0"
            return f"|({fill * -il}){w}"
        if fl < 0:
            return f"{w}({'0' * -fl})|"
        return f"{w[:il]}|{w[il:]}"
    if isinstance(f, Pow2Format) and f.signed:
        return f"{w[0]}|{w[1:]}"
    return w
