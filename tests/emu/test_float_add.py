"""The float accumulator's addition kernels, bit for bit, on millions of seeded random operand pairs.

`emu._mac_kernels.add_float` (every deterministic rounding mode) and its nearest-even
twin `add_float_ne` against the previous implementation of `add_float` (kept here,
literally), and both against the exact rule of `emu._ref.mac` (the `Fraction` sum
rounded once) on a sample. Accumulators bf16, fp<6,7>, fp16, e5m2 and e4m3fnuz (no
inf, no -0) under overflow to inf and saturation; operands from every code of the
format, with zeros of both signs, subnormals, values at the overflow threshold, inf,
NaN, exact products (a fused datapath's terms), exact cancellations and sums at or
next to a tie. The nearest-even product and exact-span variants are checked against
their general twins.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from numba import njit

import emu
from emu import MAC, Overflow, Rounding
from emu import _mac_kernels as MK
from emu._ref.mac import _float_add, mac_dot_ref
from emu._rounding import (
    _ABS,
    _ONE,
    _ZERO,
    FroundParams,
    float_params,
    fround,
    fround_ne,
    fround_ne_add,
    fround_ne_add_applies,
    fround_ne_add_covers,
)

FORMATS = ["bf16", "fp<6,7>", "fp16", "e5m2", "e4m3fnuz"]
MODES = [Rounding.NEAREST_EVEN, Rounding.NEAREST_AWAY, Rounding.NEAREST_UP, Rounding.NEAREST_DOWN,
         Rounding.FLOOR, Rounding.TOWARD_ZERO, Rounding.CEIL]
N_PAIRS = 120_000  # per (format, mode, overflow): 63 cases, 7.6M pairs
N_REF = 1_500  # pairs per case checked against the exact reference


@njit(cache=False)
def _previous_add_float(x, y, prm):
    """`add_float` as it was before the vectorising rewrite (two-sum, half-grid test, a nudge by a
    float64 step toward the error, `fround`, the signed-zero rule)."""
    fprm = FroundParams(*prm[:19])  # literal indices (numba indexes a mixed tuple by constants only)
    half_mask, half_scale, min_normal, floor_mode = prm[19], prm[20], prm[21], prm[22]
    s = x + y
    bb = s - x
    e = (x - (s - bb)) + (y - bb)
    b = np.float64(s).view(np.uint64)
    a = b & _ABS
    v = np.abs(s) * half_scale
    on_half = ((a & half_mask) == _ZERO) if a >= min_normal else (v == np.floor(v))
    away = (e > 0.0) == (s > 0.0)
    nb = (b + _ONE) if away else (b - _ONE)
    s2 = np.uint64(nb).view(np.float64) if (e != 0.0) & on_half & np.isfinite(s) else s
    r, o = fround(s2, fprm)
    both_pos = (np.float64(x).view(np.uint64) | np.float64(y).view(np.uint64)) == _ZERO
    r = -0.0 if floor_mode & prm[15] & (s == 0.0) & ~both_pos else r
    return r, o


def _previous_params(f: emu.FloatFormat, mode: int, ovf: int) -> tuple:
    """The parameters of `_previous_add_float`."""
    return (*float_params(f, mode, ovf), np.uint64((1 << (51 - f.man_bits)) - 1),
            np.ldexp(1.0, f.man_bits + 1 - f.emin), np.uint64((f.emin + 1023) << 52),
            mode == int(Rounding.FLOOR))


@functools.cache
def _runner(add):  # type: ignore[no-untyped-def]
    """A jitted loop applying ``add`` (a jitted (x, y, prm) -> (value, flag) function) to arrays."""

    @njit(cache=False)
    def run(xs, ys, prm, out, flags):
        for i in range(xs.size):
            r, o = add(xs[i], ys[i], prm)
            out[i] = r
            flags[i] = o

    return run


def _apply(add, xs: np.ndarray, ys: np.ndarray, prm: tuple) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    out = np.empty(xs.size)
    flags = np.empty(xs.size, np.bool_)
    _runner(add)(xs, ys, prm, out, flags)
    return out, flags


@functools.cache
def _values(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(every value of the format, its special values: zeros, inf, NaN, the subnormal and normal
    thresholds and the largest values of either sign, the subnormals and the smallest normal binade)."""
    f = emu.get_format(name)
    v = emu.decode(np.arange(1 << f.bits), f)
    fin = np.sort(np.unique(np.abs(v[np.isfinite(v)])))
    pos = fin[fin > 0]
    edge = np.concatenate([pos[:3], [2.0**f.emin], pos[-6:]])
    specials = np.concatenate([[0.0, -0.0, np.nan], edge, -edge, [np.inf, -np.inf] if f.has_inf else []])
    small = pos[:2 << f.man_bits]
    return v, specials, np.concatenate([small, -small])


def _operands(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n pairs (x, y): x a value of the format (the accumulator; often special, subnormal or in the
    smallest normal binade), y a value, an exact product of two
    values (a fused term), a special value, -x, or a float64 at, or a few float64 steps next to, half
    or a quarter of x's step (sums at and next to ties)."""
    f = emu.get_format(name)
    v, specials, small = _values(name)
    rng = np.random.default_rng(seed)
    x = rng.choice(v, n)
    pick = rng.random(n)
    x = np.where(pick < 0.08, rng.choice(specials, n), np.where(pick > 0.9, rng.choice(small, n), x))
    kind = rng.choice(6, n, p=[0.4, 0.15, 0.1, 0.03, 0.2, 0.12])
    y = rng.choice(v, n)
    with np.errstate(invalid="ignore", divide="ignore"):  # products and multiples of inf and NaN
        y = np.where(kind == 1, rng.choice(v, n) * rng.choice(v, n), y)
        y = np.where(kind == 2, rng.choice(specials, n), y)
        y = np.where(kind == 3, -x, y)
        ex = np.frexp(np.where(np.isfinite(x) & (x != 0), x, 1.0))[1] - 1
        step = np.ldexp(1.0, np.maximum(ex, f.emin) - f.man_bits)
        frac = rng.choice([0.5, 0.25, 0.75, 1.0, 1.5], n) * rng.choice([-1.0, 1.0], n)
        near = frac * step
        nudge = rng.choice([-2, -1, 0, 0, 1, 2], n)
        near = np.where(nudge != 0, near + nudge * np.spacing(near), near)
        y = np.where(kind == 4, near, y)
        y = np.where(kind == 5, rng.choice(v, n) * np.ldexp(1.0, -rng.integers(1, 40, n)), y)
    return x, y


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: the same float64 bits (any NaN counts as the same as any NaN)."""
    return (a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))


def _check_same(what: str, got: tuple, want: tuple, x: np.ndarray, y: np.ndarray) -> None:
    bad = ~_same(got[0], want[0]) | (got[1] != want[1])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AssertionError(f"{what}: {bad.sum()} differ; first x={x[i]!r} y={y[i]!r}: got {got[0][i]!r}"
                             f" ({got[1][i]}), want {want[0][i]!r} ({want[1][i]})")


def _overflows(name: str) -> list[Overflow]:
    return [Overflow.INF, Overflow.SATURATE] if emu.get_format(name).has_inf else [Overflow.SATURATE]


CASES = [(name, mode, ovf) for name in FORMATS for mode in MODES for ovf in _overflows(name)]


@pytest.mark.parametrize(("name", "mode", "ovf"), CASES, ids=[f"{n}-{m}-{o}" for n, m, o in CASES])
def test_add_float_matches_previous_and_reference(name: str, mode: Rounding, ovf: Overflow) -> None:
    f = emu.get_format(name)
    seed = 1000 * FORMATS.index(name) + 10 * int(mode) + int(ovf)
    x, y = _operands(name, N_PAIRS, seed)
    prm = MK.add_float_params(f, int(mode), int(ovf))
    want = _apply(_previous_add_float, x, y, _previous_params(f, int(mode), int(ovf)))
    got = _apply(MK.add_float, x, y, prm)
    _check_same(f"add_float {name} {mode} {ovf}", got, want, x, y)
    if mode == Rounding.NEAREST_EVEN:
        _check_same(f"add_float_ne {name} {ovf}", _apply(MK.add_float_ne, x, y, prm), want, x, y)
    mac = MAC(act=name, weight=name, acc=name, acc_rounding=mode, acc_overflow=ovf)
    for i in range(N_REF):
        r, o = _float_add(float(x[i]), float(y[i]), mac)
        rv = float(r)
        ok = (np.isnan(rv) and np.isnan(got[0][i])) or (
            rv == got[0][i] and np.signbit(rv) == np.signbit(got[0][i]) and o == got[1][i])
        assert ok, (f"{name} {mode} {ovf}: x={x[i]!r} y={y[i]!r}: got {got[0][i]!r} ({got[1][i]}),"
                    f" ref {rv!r} ({o})")


@pytest.mark.parametrize("name", FORMATS)
def test_nearest_even_twins(name: str) -> None:
    """`term_float_round_ne` and `add_float_exact_ne` give what their general twins give under nearest
    even."""
    f = emu.get_format(name)
    ovfs = _overflows(name)
    for ovf in ovfs:
        fprm = float_params(f, int(Rounding.NEAREST_EVEN), int(ovf))
        assert MK.is_ne(fprm)
        x, y = _operands(name, N_PAIRS, 7 + int(ovf))
        _check_same(f"term_float_round_ne {name} {ovf}",
                    _apply(_term_as_add(MK.term_float_round_ne), x, y, fprm),
                    _apply(_term_as_add(MK.term_float_round), x, y, fprm), x, y)
        eprm = MK.AddFloatParams(*fprm, np.uint64(0), False)
        _check_same(f"add_float_exact_ne {name} {ovf}", _apply(MK.add_float_exact_ne, x, y, eprm),
                    _apply(MK.add_float_exact, x, y, eprm), x, y)
    assert not MK.is_ne(float_params(f, int(Rounding.NEAREST_AWAY), int(ovfs[0])))


@functools.cache
def _term_as_add(term):  # type: ignore[no-untyped-def]
    @njit(cache=False)
    def f(a, w, prm):
        return term(a, w, prm, 0)

    return f


def test_matmul_picks_the_nearest_even_kernels() -> None:
    """The plan of a nearest-even float accumulator uses the nearest-even kernels, and results agree with
    the general kernels run on the same operands."""
    from emu.datapath.floating import float_plan

    mac = MAC(act="bf16", weight="bf16", acc="bf16")
    _, term, tprm, add, aprm = float_plan(mac)
    assert term is MK.term_float_round_ne
    assert add is MK.add_float_ne
    rng = np.random.default_rng(3)
    a = emu.quantize(rng.standard_normal((9, 40)), "bf16")
    w = emu.quantize(rng.standard_normal((40, 7)), "bf16")
    out, pc, ac = (np.empty((9, 7)), np.zeros((9, 7), np.int32), np.zeros((9, 7), np.int32))
    init = np.zeros((1, 7))
    for kind in (MK.SEQUENTIAL, MK.LANES, MK.PAIRWISE, MK.BLOCKS):
        MK.mac_rows_serial(a, w, init, out, pc, ac, MK.tag(MK.TERM_CODES[MK.term_float_round]), tprm,
                           MK.tag(MK.ADD_CODES[MK.add_float]), aprm, kind, 3)
        ref = out.copy()
        MK.mac_rows_serial(a, w, init, out, pc, ac, MK.tag(MK.TERM_CODES[term]), tprm,
                           MK.tag(MK.ADD_CODES[add]), aprm, kind, 3)
        assert _same(out, ref).all()


@njit(cache=False)
def _ne_add_as_add(x, y, prm):
    return fround_ne_add(x + y, prm)


@njit(cache=False)
def _ne_as_add(x, y, prm):
    return fround_ne(x + y, prm)


@pytest.mark.parametrize("name", [*FORMATS, "fp<5,3,none>", "fp<6,1>", "e4m3", "fp<8,23>"])
def test_fround_ne_add_matches_fround_ne_exhaustively(name: str) -> None:
    """`fround_ne_add` gives `fround_ne`'s bits and overflow flag at every value of the format (binary32:
    a seeded sample of its codes), at the midpoints beside each, one float64 step either side of them,
    far beyond the range, and at inf and NaN of either sign, for every overflow rule."""
    f = emu.get_format(name)
    if f.bits <= 16:
        v = emu.decode(np.arange(1 << f.bits), f)
    else:
        v = emu.decode(np.random.default_rng(5).integers(0, 1 << f.bits, 200_000), f)
    v = v[np.isfinite(v)]
    ex = np.frexp(np.where(v != 0, v, 1.0))[1] - 1
    half = np.ldexp(1.0, np.maximum(ex, f.emin) - f.man_bits - 1)
    mids = np.concatenate([v + half, v - half])
    xs = np.concatenate([v, mids, np.nextafter(mids, np.inf), np.nextafter(mids, -np.inf), v * 2.0**40,
                         v * 2.0**-40, [np.inf, -np.inf, np.nan, -np.nan, 1e308, -1e308, 5e-324]])
    zeros = np.zeros_like(xs)
    ovfs = [Overflow.INF, Overflow.SATURATE] if f.has_inf else [Overflow.SATURATE]
    if f.has_nan:
        ovfs.append(Overflow.NAN)
    assert fround_ne_add_applies(f)
    for ovf in ovfs:
        prm = float_params(f, int(Rounding.NEAREST_EVEN), int(ovf))
        _check_same(f"fround_ne_add {name} {ovf}", _apply(_ne_add_as_add, xs, zeros, prm),
                    _apply(_ne_as_add, xs, zeros, prm), xs, zeros)


def test_fround_ne_add_covers_the_formats_it_claims() -> None:
    """Formats without fraction bits and grids whose constants
    leave float64's normals are not `fround_ne_add`'s; their nearest-even MACs run the general kernels
    and still agree with the reference."""
    from emu.datapath.floating import float_plan

    assert not fround_ne_add_applies(emu.get_format("fp<5,0>"))
    assert not fround_ne_add_applies(emu.get_format("fp<11,40>"))
    assert fround_ne_add_applies(emu.get_format("bf16"))
    mac = MAC(act="e4m3", weight="e4m3", acc="fp<5,0>")
    _, term, _, add, _ = float_plan(mac)
    assert term is MK.term_float_round
    assert add is MK.add_float_exact
    rng = np.random.default_rng(11)
    a = emu.quantize(rng.standard_normal((5, 30)), "e4m3")
    w = emu.quantize(rng.standard_normal((30, 4)), "e4m3")
    got = emu.matmul(a, w, mac)
    want = np.array([[float(mac_dot_ref(list(a[i]), list(w[:, j]), mac).value) for j in range(4)]
                     for i in range(5)])
    assert _same(got, want).all()


@pytest.mark.parametrize("name", ["fp<5,0>", "p3109<8,1>", "fp<6,1>", "e4m3", "fp<5,3,none>"])
def test_fast_float_conversions_by_rounding_kind(name: str) -> None:
    """`emu.quantize`'s fast float kernel picks its rounding by kind (`_rounding_kind`: one addition for the
    formats `fround_ne_add` covers, `fround_ne` for the other nearest-even ones, `fround` for the rest); each
    kind gives the exact reference's values and overflow counts on every code, the midpoints beside it and
    values far outside the range, under nearest even and toward zero. The covered formats are read the same
    way from the format and from its parameters."""
    from emu._fast_kernels import _rounding_kind, _unpack, float_params_packed
    from emu._ref.scalar import quantize_ref

    f = emu.get_format(name)
    for ovf in _overflows(name):
        prm = float_params(f, int(Rounding.NEAREST_EVEN), int(ovf))
        assert fround_ne_add_covers(prm) == fround_ne_add_applies(f)
    kind = _rounding_kind(_unpack(float_params_packed(f, int(Rounding.NEAREST_EVEN), int(Overflow.SATURATE))))
    assert kind == (2 if fround_ne_add_applies(f) else 1)
    v = emu.decode(np.arange(1 << f.bits), f)
    v = v[np.isfinite(v)]
    ex = np.frexp(np.where(v != 0, v, 1.0))[1] - 1
    half = np.ldexp(1.0, np.maximum(ex, f.emin) - f.man_bits - 1)
    xs = np.concatenate([v, v + half, v - half, v * 3.0, v * 2.0**-30, [1e30, -1e30, 2.0**-200]])
    for mode in (Rounding.NEAREST_EVEN, Rounding.TOWARD_ZERO):
        got, st = emu.quantize(xs, f, mode, "saturate", return_stats=True)
        refs = [quantize_ref(float(x), f, mode, Overflow.SATURATE) for x in xs]
        want = np.array([float(r.value) for r in refs])
        assert _same(got, want).all(), (name, mode)
        assert st.overflow == sum(r.overflow for r in refs), (name, mode)
