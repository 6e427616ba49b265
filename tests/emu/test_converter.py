"""emu.Converter: a prepared conversion gives exactly what quantize gives, errors included."""

from __future__ import annotations

import numpy as np
import pytest

import emu

CASES = [
    ("fx<4,12>", "nearest_even", None), ("fx<4,12>", "stochastic", None), ("fx<4,12>", "floor", "wrap"),
    ("ufx<2,6>", "nearest_away", None), ("e4m3", "nearest_even", None), ("e4m3", "toward_zero", "nan"),
    ("e5m2", "nearest_even", "saturate"), ("e5m2", "stochastic", None), ("bf16", "ceil", None),
    ("fp<5,2,fnuz>", "nearest_even", None), ("pow2<-8,0>", "nearest_even", None),
    ("binary", "nearest_even", None), ("ternary", "nearest_even", None),
]


def _inputs() -> list[object]:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 9)) * 4.0
    x[0, :4] = [0.0, -0.0, 1e-30, 1e30]
    return [x, np.asfortranarray(x), x[:, ::2], x.astype(np.float32), x.reshape(-1)[:5].tolist(), 3, x[0]]


@pytest.mark.parametrize(("fmt", "rounding", "overflow"), CASES)
def test_converter_equals_quantize(fmt: str, rounding: str, overflow: str | None) -> None:
    conv = emu.Converter(fmt, rounding, overflow)
    stochastic = rounding == "stochastic"
    for x in _inputs():
        for seed in ((0, 11) if stochastic else (None,)):
            got, st = conv(x, seed=seed, return_stats=True)
            want, want_st = emu.quantize(x, fmt, rounding, overflow, seed=seed, return_stats=True)
            assert got.shape == want.shape
            assert np.array_equal(got, want, equal_nan=True)
            assert np.array_equal(np.signbit(got), np.signbit(want))  # -0 kept or dropped alike
            assert st == want_st
            assert np.array_equal(conv(x, seed=seed), want, equal_nan=True)
    # a Generator seed draws one key per call, as quantize does
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    x = _inputs()[0]
    assert np.array_equal(conv(x, seed=g1), emu.quantize(x, fmt, rounding, overflow, seed=g2), equal_nan=True)
    assert np.array_equal(conv(x, seed=g1), emu.quantize(x, fmt, rounding, overflow, seed=g2), equal_nan=True)


def test_converter_checks_its_settings_once_and_raises_what_quantize_raises() -> None:
    with pytest.raises(ValueError, match="rounding"):
        emu.Converter("fx<4,12>", "sideways")
    with pytest.raises(ValueError, match="random_bits"):
        emu.Converter("fx<4,12>", "nearest_even", random_bits=8)
    with pytest.raises(ValueError, match="overflow"):
        emu.Converter("binary", overflow="wrap")
    with pytest.raises(ValueError, match="NaN"):
        emu.Converter("fx<4,12>")(np.array([1.0, np.nan]))
    q, st = emu.Converter("fx<4,12>", nan=0)(np.array([1.0, np.nan]), return_stats=True)
    assert q.tolist() == [1.0, 0.0]
    assert st.nan == 1
    with pytest.raises(ValueError, match="scale= applies to scaled binary/ternary formats"):
        emu.Converter("e4m3")(np.array([1.0]), scale=2.0)
    with pytest.raises(OverflowError, match="overflow"):
        emu.Converter("e4m3", overflow="error")(np.array([1.0, 1e6]))
    assert repr(emu.Converter("e4m3")) == "Converter(e4m3, nearest_even, None)"


@pytest.mark.parametrize(("fmt", "rounding", "overflow"), CASES)
def test_the_fast_path_alone_gives_what_a_call_gives(fmt: str, rounding: str, overflow: str | None) -> None:
    """`Converter.values`: a call's values and counts for a float64 ndarray it covers, drawing the same
    random stream; None for other inputs (a list, float32, an integer) and for formats without a fast
    kernel (binary, ternary, powers of two), without drawing."""
    conv = emu.Converter(fmt, rounding, overflow)
    kind = emu.format(fmt).kind  # the fast kernels: fixed saturating, float (stochastic: with its declines)
    covered = (kind == "fixed" and overflow != "wrap") or kind == "float"
    for x in _inputs():
        g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
        done = conv.values(x, seed=g1)
        if not (covered and type(x) is np.ndarray and x.dtype == np.float64):
            assert done is None
            assert g1.bit_generator.state == g2.bit_generator.state  # nothing drawn
            continue
        assert done is not None
        want, st = conv(x, seed=g2, return_stats=True)
        assert np.array_equal(done[0], want, equal_nan=True)
        assert done[1:] == (st.overflow, st.underflow, st.nan)
        assert g1.bit_generator.state == g2.bit_generator.state  # the same draws
    x = np.array([1.0, np.nan])
    assert emu.Converter("fx<4,12>").values(x) is None  # a NaN without a code: the call raises
    assert np.isnan(emu.Converter("e4m3").values(x)[0][1])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("fmt", "rounding"), [("fx<4,6>", "nearest_even"), ("fx<4,6>", "toward_zero"),
                                               ("fx<4,6>", "stochastic"), ("e4m3", "nearest_even"),
                                               ("fp<6,9>", "nearest_even")])
def test_a_stream_of_pieces_is_the_conversion_of_the_whole(fmt: str, rounding: str, threads: int) -> None:
    """`Converter.stream` (an array filled and converted piece by piece, the pieces shared among threads)
    gives `values`' values and counts bit for bit, stochastic rounding's random bits included (the same
    seed: one key, each element's bits from its index), at sizes around the piece and the thread limit;
    None where `values` gives None."""
    import numba

    from emu.threads import PIECE_ELEMENTS, PIECE_THREAD_ELEMENTS

    rng = np.random.default_rng(5)
    c = emu.Converter(fmt, rounding)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        piece = PIECE_ELEMENTS
        for n in (1, 100, piece - 1, piece + 5, PIECE_THREAD_ELEMENTS + 3):
            y = rng.standard_normal(n) * 20  # overflows fx<4,6> (|x| >= 8), underflows some
            fills: list[tuple[int, int]] = []

            def fill(lo: int, hi: int, buf: np.ndarray, y: np.ndarray = y, fills: list = fills) -> None:
                fills.append((lo, hi))
                buf[:hi - lo] = y[lo:hi]
            got = c.stream(n, fill, seed=np.random.default_rng(9))
            want = c.values(y, np.random.default_rng(9))
            assert got is not None
            assert want is not None
            assert np.array_equal(got[0], want[0])
            assert got[1:] == want[1:]
            assert sorted(fills) == [(lo, min(n, lo + piece)) for lo in range(0, n, piece)]
        if fmt == "fx<4,6>":
            assert want[1] > 0
    finally:
        numba.set_num_threads(before)
    nan_fill = lambda lo, hi, buf: buf.__setitem__(slice(0, hi - lo), np.nan)  # noqa: E731
    has_nan = fmt != "fx<4,6>"
    assert (c.stream(10, nan_fill) is None) == (not has_nan)
    assert emu.Converter("pow2<-4,4>").stream(10, nan_fill) is None  # no fast kernel: convert the whole


_PLAIN = [c[0] for c in CASES if emu.format(c[0]).kind in ("fixed", "float", "pow2")]
_SIGNS = [*(c[0] for c in CASES if c[0] not in _PLAIN), emu.BinaryFormat(stochastic=True),
          emu.TernaryFormat(method="stochastic", scale=None)]
DRAW_CASES = ([(f, "nearest_even", None) for f in _PLAIN + _SIGNS] + [(f, "stochastic", None) for f in _PLAIN]
              + [(f, "stochastic", 60) for f in _PLAIN])


@pytest.mark.parametrize(("fmt", "rounding", "random_bits"), DRAW_CASES)
def test_draw_takes_from_the_seed_what_a_call_takes(fmt: object, rounding: str,
                                                    random_bits: int | None) -> None:
    """`Converter.draw` leaves a Generator where a call leaves it (one word for a stochastic conversion,
    with or without a fast kernel; nothing for a deterministic one), converting nothing."""
    conv = emu.Converter(fmt, rounding, random_bits=random_bits)
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    conv(np.linspace(-0.9, 0.9, 7), seed=g1)
    conv.draw(g2)
    assert g1.bit_generator.state == g2.bit_generator.state
    stochastic = rounding == "stochastic" or not isinstance(fmt, str)
    assert (g2.bit_generator.state != np.random.default_rng(3).bit_generator.state) == stochastic
