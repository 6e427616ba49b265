"""emu.rounded_update: one call giving outer(w + inner(a * g)) bit for bit as the separate conversions do,
with their counts and the count of updates the rounding lost."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import emu
from emu.threads import CONVERT_THREAD_ELEMENTS
from tests.strategies import EDGE_FLOATS, fixed_formats, float_formats, reals

#: (format, rounding, overflow) of the converters: every fast kernel (fixed point deterministic and
#: stochastic, with random bits; float formats deterministic), and conversions without one (stochastic
#: floats, powers of two, wrapping fixed point), which the call composes
SETTINGS = [
    ("fx<4,12>", "stochastic", None), ("fx<4,12>", "nearest_even", None), ("fx<2,6>", "toward_zero", None),
    ("ufx<2,6>", "ceil", None), ("fx<4,12>", "stochastic", None, 8), ("fx<1,30>", "nearest_away", None),
    ("fp32", "nearest_even", None), ("e4m3", "nearest_even", "nan"), ("e5m2", "floor", "saturate"),
    ("bf16", "nearest_even", None), ("fp16", "toward_zero", None), ("bf16", "stochastic", None),
    ("pow2<-8,0>", "nearest_even", None), ("fx<4,4>", "nearest_even", "wrap"),
]  # fmt: skip


def _converter(s: tuple[object, ...] | None) -> emu.Converter | None:
    if s is None:
        return None
    fmt, rounding, overflow, *rbits = s
    return emu.Converter(fmt, rounding, overflow, random_bits=rbits[0] if rbits else None)


def _composed(w: np.ndarray, g: np.ndarray, a: float, inner: object, outer: object, seed: object):
    """The definition: the two conversions in turn by emu.quantize (the same seed object to both)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _composed_values(w, g, a, inner, outer, seed)


def _composed_values(w: np.ndarray, g: np.ndarray, a: float, inner: object, outer: object, seed: object):
    raw = a * g
    d, si = (raw, None) if inner is None else emu.quantize(
        raw, inner.fmt, inner.rounding, inner.overflow, seed=seed, random_bits=inner.random_bits,
        return_stats=True)
    s = w + d
    new, so = (s, None) if outer is None else emu.quantize(
        s, outer.fmt, outer.rounding, outer.overflow, seed=seed, random_bits=outer.random_bits,
        return_stats=True)
    moving = raw != 0
    return new, si, so, int(moving.sum()), int((moving & (new == w)).sum())


def _check(w: np.ndarray, g: np.ndarray, a: float, inner: object, outer: object, seed: int) -> None:
    """The call against the definition: the same bits and counts, or the same refusal."""
    try:
        want = _composed(w, g, a, inner, outer, np.random.default_rng(seed))
    except ValueError as e:  # a NaN a format cannot hold (e4m3 overflowing to NaN, then fixed point)
        with pytest.raises(ValueError, match=re.escape(str(e).split(";")[0])):
            emu.rounded_update(w, g, a, inner, outer, seed=np.random.default_rng(seed))
        return
    got = emu.rounded_update(w, g, a, inner, outer, seed=np.random.default_rng(seed))
    assert got.values.shape == want[0].shape
    assert np.array_equal(got.values.view(np.uint64), np.asarray(want[0], np.float64).view(np.uint64))
    assert (got.inner, got.outer, got.attempted, got.zeroed) == want[1:]


def _inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n) * rng.choice([1e-3, 1.0, 50.0], n)
    g = rng.standard_normal(n) * rng.choice([1e-6, 1.0, 1e3], n)
    if n >= 8:
        g[:2] = [0.0, -0.0]
        w[2:8] = [0.0, -0.0, 7.99, -8.0, 1e30, -1e30]
    return w, g


@pytest.mark.parametrize("outer", [None, *SETTINGS])
@pytest.mark.parametrize("inner", [None, *SETTINGS])
def test_equals_the_two_conversions_in_turn(inner: tuple | None, outer: tuple | None) -> None:
    ci, co = _converter(inner), _converter(outer)
    for n, seed in ((0, 0), (1, 1), (37, 2), (5000, 3)):
        w, g = _inputs(n, seed)
        for a in (-0.05, -1.0, 3.0, 0.0):
            _check(w, g, a, ci, co, seed)


@pytest.mark.parametrize("name", ["fx<2,6>", "ufx<4,4>", "e4m3", "e5m2", "fp<3,4>"])
@pytest.mark.parametrize("rounding", ["nearest_even", "stochastic", "floor"])
def test_exhaustive_over_every_value_of_an_8_bit_format(name: str, rounding: str) -> None:
    """Every finite value of the 8-bit format as w (the stored weight), against 33 gradients spanning
    the grid's steps, the update and the new value both converted to that format."""
    fmt = emu.get_format(name)
    codes = np.arange(256, dtype=np.uint8)
    vals = emu.decode(codes, fmt)
    vals = vals[np.isfinite(vals)]
    gs = np.concatenate([[0.0], np.ldexp(1.0, np.arange(-12, 4)), -np.ldexp(1.5, np.arange(-12, 4))])
    w, g = np.repeat(vals, gs.size), np.tile(gs, vals.size)
    if rounding == "stochastic" and fmt.kind == "float":
        rounding = "toward_zero"  # float stochastic rounding has no fast kernel: test the fused ones
    c = emu.Converter(fmt, rounding, "saturate")
    for a in (-0.5, -1.0 / 3.0):
        _check(w, g, a, c, c, 11)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), fmt=st.one_of(fixed_formats(max_bits=53, min_frac=0), float_formats(max_bits=32)),
       rounding=st.sampled_from(["nearest_even", "nearest_away", "toward_zero", "ceil", "floor",
                                 "stochastic"]),
       a=st.floats(-1e3, 1e3, allow_nan=False))
def test_random_formats_and_values(data: st.DataObject, fmt: emu.Format, rounding: str, a: float) -> None:
    vals = st.lists(reals(fmt), min_size=1, max_size=40)
    w = np.array(data.draw(vals))
    g = np.array(data.draw(st.lists(reals(), min_size=w.size, max_size=w.size)))
    c = emu.Converter(fmt, rounding, "saturate")
    _check(w, g, a, c, c, 5)
    _check(w, g, a, None, c, 6)


def test_a_generator_draws_inner_then_outer_and_an_int_seed_keys_both_alike() -> None:
    c = emu.Converter("fx<2,6>", "stochastic")
    w, g = _inputs(300, 4)
    for seed in (7, np.random.default_rng(7)):
        got = emu.rounded_update(w, g, -0.37, c, c, seed=seed)
        s = np.random.default_rng(7) if isinstance(seed, np.random.Generator) else 7
        d = c(-0.37 * g, seed=s)
        assert np.array_equal(got.values, c(w + d, seed=s))
    g1 = np.random.default_rng(1)
    emu.rounded_update(w, g, -0.37, c, c, seed=g1)
    g2 = np.random.default_rng(1)
    g2.bit_generator.random_raw(2)  # two keys, one per stochastic conversion
    assert g1.random() == g2.random()


def test_large_arrays_run_the_separate_conversions_with_the_same_bits() -> None:
    n = CONVERT_THREAD_ELEMENTS
    w, g = _inputs(n, 9)
    _check(w, g, -0.01, _converter(SETTINGS[0]), _converter(SETTINGS[6]), 3)


def test_shapes_and_layouts_are_kept() -> None:
    c = emu.Converter("fx<4,8>", "nearest_even")
    w, g = _inputs(24, 5)
    w2, g2 = w.reshape(4, 6), np.asfortranarray(g.reshape(4, 6))
    got = emu.rounded_update(w2.T, g2.T, -0.1, c, c)
    assert got.values.shape == (6, 4)
    assert np.array_equal(got.values, c(w2.T + c(-0.1 * g2.T)))
    assert emu.rounded_update(w2.astype(np.float32), g2, -0.1, None, c).values.dtype == np.float64


def test_edge_values() -> None:
    c, f = emu.Converter("fx<4,12>", "stochastic"), emu.Converter("e4m3", "nearest_even", "nan")
    edges = np.array([v for v in EDGE_FLOATS if np.isfinite(v)])
    w, g = np.repeat(edges, edges.size), np.tile(edges, edges.size)
    for inner, outer in ((c, c), (f, f), (None, f), (f, c)):
        _check(w, g, -0.25, inner, outer, 2)
    _check(np.array([np.inf, -np.inf, np.nan, 1.0]), np.array([1.0, 1.0, 0.0, np.nan]), -1.0, f, f, 0)


def test_refusals_name_the_parameter() -> None:
    c = emu.Converter("fx<4,12>")
    with pytest.raises(ValueError, match=r"rounded_update: w has shape \(2,\) and g \(3,\)"):
        emu.rounded_update(np.zeros(2), np.zeros(3), -0.1, c, c)
    with pytest.raises(TypeError, match="rounded_update: a=nan must be a finite real number"):
        emu.rounded_update(np.zeros(2), np.zeros(2), float("nan"), c, c)
    with pytest.raises(ValueError, match=r"^rounded_update: a \(an int of 1329 bits\) is beyond float64's"):
        emu.rounded_update(np.zeros(2), np.zeros(2), 10**400, c, c)  # math.isfinite raised OverflowError
    with pytest.raises(ValueError, match="rounded_update: w holds integers that float64 cannot hold exactly"):
        emu.rounded_update(np.array([2**60 + 1, 3]), np.ones(2), -1.0, None, c)
    with pytest.raises(TypeError, match="rounded_update: outer='fx<4,12>' must be an emu.Converter or None"):
        emu.rounded_update(np.zeros(2), np.zeros(2), -0.1, c, "fx<4,12>")
    with pytest.raises(TypeError, match="rounded_update: g has dtype complex"):
        emu.rounded_update(np.zeros(2), np.zeros(2, complex), -0.1, c, c)
    with pytest.raises(ValueError, match="rounded_update: seed=-1 outside the allowed range"):
        emu.rounded_update(np.zeros(2), np.zeros(2), -0.1, c, c, seed=-1)
    with pytest.raises(ValueError, match=r"quantize: x holds 1 NaN value\(s\) \(first at index \(1,\)\)"):
        emu.rounded_update(np.zeros(2), np.array([0.0, np.nan]), -0.1, None, c)
    with pytest.raises(ValueError, match=r"quantize: x holds 1 NaN value\(s\) \(first at index \(0,\)\)"):
        emu.rounded_update(np.array([np.nan, 0.0]), np.zeros(2), -0.1, emu.Converter("fp32"), c)
