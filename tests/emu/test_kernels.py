"""The numba kernels against the slow exact reference and the outside oracles.

- Every mode (stochastic included, with and without ``random_bits``) and every
  overflow mode, on seeded random values around each format's grid, its ties,
  its range ends and far outside it: the fast values path (`quantize`), the
  general integer path (codes and values) and the stats equal `emu._ref`.
- Integer inputs beyond 2^53 convert exactly.
- The stochastic stream: the rare 64-bit tie is settled by later words exactly
  as the reference does; rounding is unbiased within a binomial bound;
  ``random_bits`` gives P(up) = floor(f 2^r) / 2^r; results do not depend on the
  thread count.
- Millions of random and edge values against ml_dtypes and numpy's float16 /
  float32 (round to nearest even): zero mismatches.
- Binary and ternary conversions against the reference.
"""

from __future__ import annotations

import math
import zlib
from fractions import Fraction

import numba
import numpy as np
import pytest

import emu
from emu import _fast_kernels as FK
from emu import _kernels as K
from emu import _ref
from emu import _rounding as R
from emu.convert import convert_array, seed_key
from emu.modes import Overflow, Rounding
from emu.threads import CONVERT_THREAD_ELEMENTS
from tests.oracles import ORACLES, oracle_codes, oracle_round

WIDE = [emu.format(n) for n in (
    "fx<8,24>", "fx<30,32>", "ufx<62,0>", "fx<62,0>", "fx<-20,40>", "fx<40,-20>", "ufx<20,30>", "fx<54,0>",
    "tf32", "fp32", "fp64", "fp<8,30>", "fp<11,40,bias=1030>", "fp<5,10,ftz>", "fp<7,45,none>",
    "pow2<-100,100>", "upow2<-1074,-1000>",
)]  # fmt: skip
FORMATS = [f for f in emu.SMALL_FORMATS if f.kind in ("fixed", "float", "pow2")] + WIDE
KEY = int(seed_key(12345))


def sample(fmt: emu.Format, n: int, rng: np.random.Generator) -> np.ndarray:
    """Values around the grid of ``fmt``: near its ties and ends, tiny, huge, random."""
    top = max(fmt.max, -fmt.min)
    lo = fmt.smallest_subnormal
    with np.errstate(over="ignore"):
        wide = rng.uniform(-1.2, 1.2, n) * top
    parts = [
        wide,
        np.exp2(rng.uniform(math.log2(lo) - 3, math.log2(top) + 2, n)) * rng.choice([-1, 1], n),
        rng.standard_normal(n),
        np.array([0.0, -0.0, top, -top, lo, -lo, 1.0, -1.0, 0.5, 1e300, -1e300, 5e-324, -5e-324]),
    ]
    # exact ties: midpoints between grid neighbours, and one float64 step either side
    g = np.sort(np.abs(np.concatenate(parts[:2])))
    step = fmt.ulp(g)
    base = np.floor(g / step) * step
    mid = base + step / 2
    parts += [mid, np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf), -mid]
    x = np.concatenate(parts)
    return x[np.isfinite(x)]


def ref_all(x: np.ndarray, fmt: emu.Format, rnd: Rounding, ovf: Overflow, key: int, rbits: int | None):
    res = [_ref.quantize_ref(float(v), fmt, rnd, ovf, key=key, index=i, random_bits=rbits)
           for i, v in enumerate(x)]
    vals = np.array([float(r.value) for r in res])
    codes = np.array([r.code for r in res], dtype=np.uint64)
    return vals, codes, sum(r.overflow for r in res), sum(r.underflow for r in res)


def same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))


def check_against_ref(x: np.ndarray, fmt: emu.Format, rnd: Rounding, ovf: Overflow, rbits: int | None = None):
    want_v, want_c, want_o, want_u = ref_all(x, fmt, rnd, ovf, KEY, rbits)
    seed = np.random.SeedSequence(12345)
    fast, st = emu.quantize(x, fmt, rnd, ovf, seed=seed, random_bits=rbits, return_stats=True)
    bad = ~same(fast, want_v)
    assert not bad.any(), (fmt, rnd, ovf, rbits, x[bad][:5], fast[bad][:5], want_v[bad][:5])
    assert (st.overflow, st.underflow) == (want_o, want_u), (fmt, rnd, ovf, st, want_o, want_u)
    vals, codes, st2 = convert_array(x, fmt, rnd, ovf, np.random.SeedSequence(12345), rbits, None, True, True,
                                     "t")
    bad = ~same(vals, want_v) | (codes.astype(np.uint64) != want_c)
    assert not bad.any(), (fmt, rnd, ovf, rbits, x[bad][:5], vals[bad][:5], want_v[bad][:5])
    assert (st2.overflow, st2.underflow) == (want_o, want_u)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
def test_every_mode_matches_the_reference(fmt: emu.Format) -> None:
    rng = np.random.default_rng(zlib.crc32(str(fmt).encode()))
    x = sample(fmt, 40, rng)
    for rnd in Rounding:
        for ovf in fmt.overflow_modes:
            if ovf == Overflow.ERROR:
                continue
            check_against_ref(x, fmt, rnd, ovf)
    for rbits in (1, 3, 64):
        check_against_ref(x, fmt, Rounding.STOCHASTIC, fmt.default_overflow, rbits)


@pytest.mark.parametrize("name", ["fx<4,12>", "ufx<2,6>", "fx<8,0>"])
def test_stochastic_values_already_on_the_grid(name: str) -> None:
    """An array wholly on the format's grid is copied without drawing (its own path in the fast kernel);
    one element off the grid, out of range, NaN or inf anywhere in a chunk sends that chunk through the
    rounding loop. Both agree with the reference, values and counts, in one chunk and across chunks."""
    fmt = emu.format(name)
    rng = np.random.default_rng(11)
    ovf = fmt.default_overflow
    codes = rng.integers(fmt.qmin, fmt.qmax + 1, 300)
    grid = np.ldexp(codes.astype(np.float64), -fmt.frac_bits)
    grid[:3] = [fmt.min, fmt.max, -0.0]
    off = [fmt.max + fmt.ulp(1.0), fmt.min - fmt.ulp(1.0), fmt.ulp(1.0) / 4, np.nan, np.inf]
    for rbits in (None, 4):
        check_against_ref(grid, fmt, Rounding.STOCHASTIC, ovf, rbits)
        got = emu.quantize(grid, fmt, "stochastic", seed=1, random_bits=rbits)
        assert np.array_equal(got, grid)
        assert not np.signbit(got[got == 0]).any()  # -0 becomes +0
        for pos in (0, 63, 64, 299):
            for v in off:
                x = grid.copy()
                x[pos] = v
                if np.isfinite(v):
                    check_against_ref(x, fmt, Rounding.STOCHASTIC, ovf, rbits)
                    continue
                if np.isnan(v):
                    with pytest.raises(ValueError, match="NaN value"):
                        emu.quantize(x, fmt, "stochastic", seed=1)
                got, st = emu.quantize(x, fmt, "stochastic", seed=1, nan=0, return_stats=True)
                assert np.array_equal(np.delete(got, pos), np.delete(grid, pos))
                assert got[pos] == (0.0 if np.isnan(v) else fmt.max)
                assert (st.overflow, st.nan) == ((0, 1) if np.isnan(v) else (1, 0))
    # across chunks: the chunk with the off-grid value rounds, the others are copied
    big = np.ldexp(rng.integers(fmt.qmin, fmt.qmax + 1, 2 * K.CHUNK + 5).astype(np.float64), -fmt.frac_bits)
    big[K.CHUNK + 7] = fmt.ulp(1.0) / 2  # one value off the grid, in the second chunk
    got, st = emu.quantize(big, fmt, "stochastic", seed=np.random.SeedSequence(12345), return_stats=True)
    at = K.CHUNK + 7
    want = _ref.quantize_ref(float(big[at]), fmt, Rounding.STOCHASTIC, ovf, key=KEY, index=at)
    keep = np.arange(big.size) != at
    assert np.array_equal(got[keep], big[keep])
    assert got[at] == float(want.value)
    assert (st.overflow, st.underflow) == (0, int(want.underflow))


@pytest.mark.parametrize("name", ["fx<62,0>", "ufx<62,0>", "fx<30,10>", "e5m2", "fp32", "pow2<0,70>",
                                  "fx<60,-50>"])
def test_integer_inputs_convert_exactly(name: str) -> None:
    fmt = emu.format(name)
    ints = [0, 1, -1, 2**53 + 1, -(2**53) - 1, 2**61 - 1, -(2**61), 2**62 + 3, -(2**63), 2**63 - 1,
            12345678901234567]
    for rnd in Rounding:
        for ovf in fmt.overflow_modes:
            if ovf == Overflow.ERROR:
                continue
            a = np.array(ints, dtype=np.int64)
            want = [_ref.quantize_ref(v, fmt, rnd, ovf, key=KEY, index=i) for i, v in enumerate(ints)]
            codes = emu.encode(a, fmt, rnd, ovf, seed=np.random.SeedSequence(12345))
            assert [int(c) for c in codes] == [w.code for w in want], (name, rnd, ovf)
    big = np.array([2**64 - 1, 2**63, 2**63 + 2**40], dtype=np.uint64)
    want = [_ref.quantize_ref(int(v), fmt, Rounding.NEAREST_EVEN, None).code for v in big]
    assert [int(c) for c in emu.encode(big, fmt)] == want


def _tie_index(key: int, below: int, complement: bool = False) -> tuple[int, int]:
    """An element index whose first word w0 (or ~w0) is below 2^below, so that a
    float64 fraction can hold it exactly."""
    for i in range(1 << 20):
        w = _ref.random_word(key, i, 0)
        if (w ^ (2**64 - 1) if complement else w) < 1 << below:
            return i, w
    raise AssertionError("no index found")  # pragma: no cover


@pytest.mark.parametrize("negative", [False, True])
def test_stochastic_tie_on_the_first_word_goes_to_the_next_words(negative: bool) -> None:
    """Build t whose first 64 fraction bits equal the element's w0 with a 1 bit below:
    only the second word can decide, in the fast path, the integer path and the reference.
    For negative t the fraction rounded is frac(t) = 1 - |t|, whose first 64 bits are
    ~floor(|t| 2^64) when |t| has bits below them."""
    key = int(seed_key(np.random.SeedSequence(7)))
    i, w0 = _tie_index(key, 51, complement=negative)
    fmt = emu.format("fx<8,8>")
    if negative:
        t = -Fraction(2 * (w0 ^ (2**64 - 1)) + 1, 2**65)
    else:
        t = Fraction(2 * w0 + 1, 2**65)
    x = np.zeros(i + 1)
    x[i] = float(t / 2**8)
    assert Fraction(x[i]) * 2**8 == t
    frac = t - math.floor(t)
    assert math.floor(frac * 2**64) == w0
    assert frac * 2**64 != w0
    want = _ref.quantize_ref(x[i], fmt, Rounding.STOCHASTIC, key=key, index=i)
    fast = emu.quantize(x, fmt, "stochastic", seed=np.random.SeedSequence(7))
    vals, codes, _ = convert_array(x, fmt, "stochastic", None, np.random.SeedSequence(7), None, None, True,
                                   True, "t")
    assert fast[i] == float(want.value) == vals[i]
    assert int(codes[i]) == want.code
    w1 = _ref.random_word(key, i, 1)
    second = math.floor(frac * 2**128) % 2**64
    assert (want.value != math.floor(t) / 256) == (w1 < second)


def test_stochastic_float_tie_settled_by_later_words() -> None:
    """A float far below the target's smallest normal drops more than 64 bits: build
    one whose first 64 dropped bits equal w0 with a 1 bit below (w0 < 2^43 needed)."""
    key = seed_key(np.random.SeedSequence(3))
    u = np.empty(1 << 24)
    K.uniform53(key, u)  # u = (w0 >> 11) 2^-53: w0 < 2^43 <=> u < 2^-21
    i = int(np.flatnonzero(u < 2.0**-21)[0])
    w0 = _ref.random_word(int(key), i, 0)
    fmt = emu.format("e4m3")  # subnormal step 2^(emin - M) = 2^-9
    x = np.zeros(i + 1)
    x[i] = math.ldexp(2 * w0 + 1, -9 - 65)  # frac = (w0 + 1/2) / 2^64 of the step
    for sign in (1, -1):
        want = _ref.quantize_ref(sign * x[i], fmt, Rounding.STOCHASTIC, key=int(key), index=i)
        got = emu.quantize(sign * x, fmt, "stochastic", seed=np.random.SeedSequence(3))
        codes = emu.encode(sign * x, fmt, "stochastic", seed=np.random.SeedSequence(3))
        assert same(got[i:], np.array([float(want.value)])).all()
        assert int(codes[i]) == want.code
        second_word_up = _ref.random_word(int(key), i, 1) < 2**63
        assert (got[i] != 0) == second_word_up


def test_stochastic_is_unbiased_and_random_bits_truncate_the_probability() -> None:
    n = 400_000
    fmt = emu.format("fx<1,7>")
    for value in (0.1, -0.1, 0.3 / 128, -0.7 / 128):
        t = Fraction(value) * 128
        p = float(t - math.floor(t))
        q = emu.quantize(np.full(n, value), fmt, "stochastic", seed=11)
        ups = int(np.count_nonzero(q > math.floor(t) / 128))
        sd = math.sqrt(n * p * (1 - p))
        assert abs(ups - n * p) < 5 * sd, (value, ups, n * p)
        mean_err = q.mean() - value
        assert abs(mean_err) < 5 * sd / n / 128 + 1e-12
    # random_bits=2, frac = 0.3: P(up) = floor(1.2) / 4 = 1/4 exactly
    x = np.full(n, 0.3 / 128)
    q = emu.quantize(x, fmt, "stochastic", seed=5, random_bits=2)
    ups = np.count_nonzero(q > 0)
    assert abs(ups - n / 4) < 5 * math.sqrt(n * 0.25 * 0.75)
    # random_bits=1 with frac < 1/2 never rounds up
    assert not np.any(emu.quantize(x, fmt, "stochastic", seed=5, random_bits=1) > 0)
    # floats round the magnitude: P(magnitude up) = 0.3 for both signs
    y = np.full(n, 1 + 0.3 / 8)  # e4m3: step 1/8 in [1, 2)
    for s in (1, -1):
        qq = emu.quantize(s * y, "e4m3", "stochastic", seed=9)
        ups = np.count_nonzero(np.abs(qq) > 1)
        assert abs(ups - 0.3 * n) < 5 * math.sqrt(n * 0.21)


@pytest.mark.parametrize("name", ["fx<2,14>", "e4m3", "pow2<-8,0>", "fx<4,-2>"])
def test_same_seed_same_result_for_any_thread_count(name: str) -> None:
    x = np.random.default_rng(0).standard_normal(300_000)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = emu.quantize(x, name, "stochastic", seed=42)
        one_c = emu.encode(x, name, "stochastic", seed=42)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = emu.quantize(x, name, "stochastic", seed=42)
        many_c = emu.encode(x, name, "stochastic", seed=42)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(one, many)
    assert np.array_equal(one_c, many_c)
    assert np.array_equal(emu.decode(one_c, name), one)
    other = emu.quantize(x, name, "stochastic", seed=43)
    assert not np.array_equal(one, other)


@pytest.mark.parametrize(("name", "rounding"), [("fx<2,14>", "stochastic"), ("fx<2,14>", "nearest_even"),
                                              ("e4m3", "nearest_even"), ("e4m3", "stochastic")])
def test_conversions_agree_across_the_thread_switch(name: str, rounding: str) -> None:
    """Below `CONVERT_THREAD_ELEMENTS` the fast conversions run chunk after chunk on one thread, from it on
    threads: an input across the switch gives on its prefix what the prefix alone gives (each element
    draws by its index), values, codes and counts."""
    n = CONVERT_THREAD_ELEMENTS
    x = np.random.default_rng(3).standard_normal(n + 1000) * 4.0
    x[::1001] = 1e6  # overflows, on both sides of the switch
    big, st_big = emu.quantize(x, name, rounding, seed=3, return_stats=True)
    small, st_small = emu.quantize(x[:n - 1], name, rounding, seed=3, return_stats=True)
    assert np.array_equal(big[:n - 1], small)
    if rounding != "stochastic":  # the counts add up (a stochastic count near the range's end may not)
        tail = emu.quantize(x[n - 1:], name, rounding, return_stats=True)[1]
        assert st_big.overflow == st_small.overflow + tail.overflow > 0
    assert np.array_equal(emu.encode(x, name, rounding, seed=3)[:n - 1],
                          emu.encode(x[:n - 1], name, rounding, seed=3))


def test_serial_and_threaded_stochastic_kernels_agree() -> None:
    """The fixed stochastic kernel chunk after chunk and over threads: the same values and counts."""
    x = np.random.default_rng(4).standard_normal(3 * K.CHUNK + 17) * 8.0
    x[5 * K.CHUNK // 2:] = np.round(x[5 * K.CHUNK // 2:] * 4096) / 4096  # part of a chunk on the grid
    x[K.CHUNK:2 * K.CHUNK] = np.round(x[K.CHUNK:2 * K.CHUNK] * 4096) / 4096  # a whole chunk on the grid
    args = (12, 16, True, -32768, 32767, 0, np.uint64(99))
    one, many = np.empty_like(x), np.empty_like(x)
    counts = FK.fixed_sr_fast_serial(x, one, *args)
    stats = np.zeros((4, FK.N_FAST_STATS), np.int64)
    FK.fixed_sr_fast(x, many, *args, stats)
    assert np.array_equal(one, many)
    assert counts == tuple(stats.sum(axis=0))
    assert counts[0] > 0  # values beyond 8 saturate


def _edge_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32-range values: random bit patterns, every binade, and ties of 16-bit grids."""
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    with np.errstate(invalid="ignore"):
        f32 = bits.view(np.float32).astype(np.float64)
    scales = np.exp2(rng.uniform(-140, 130, n)) * rng.standard_normal(n)
    g = np.exp2(np.arange(-150, 130, dtype=np.float64))
    ties = np.concatenate([g * (1 + k / 8 + 1 / 16) for k in range(8)]
                          + [g * (1 + k / 1024 + 1 / 2048) for k in range(0, 1024, 37)])
    x = np.concatenate([f32, scales, ties, -ties, np.nextafter(ties, 0), np.nextafter(ties, np.inf)])
    return x[np.isfinite(x)]


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_millions_against_ml_dtypes_and_numpy(name: str) -> None:
    rng = np.random.default_rng(2024)
    x = _edge_values(rng, 1_000_000)
    oracle = ORACLES[name]
    want = oracle_round(x, name)
    got = emu.quantize(x, name, overflow=oracle.overflow)
    bad = ~same(got, want)
    assert not bad.any(), (name, bad.sum(), x[bad][:5], got[bad][:5], want[bad][:5])
    codes = emu.encode(x, name, overflow=oracle.overflow).astype(np.uint64)
    want_c = oracle_codes(x, name)
    fmt = emu.format(name)
    mask = np.uint64((1 << fmt.bits) - 1)
    bad = ((codes & mask) != (want_c & mask)) & ~np.isnan(want)
    assert not bad.any(), (name, bad.sum(), x[bad][:5])
    # float32-exact inputs need no double-rounding correction: ml_dtypes' own cast agrees too
    with np.errstate(over="ignore"):
        x32 = x.astype(np.float32).astype(np.float64)
    x32 = x32[np.isfinite(x32)]
    got32 = emu.quantize(x32, name, overflow=oracle.overflow)
    assert np.all(same(got32, oracle_round(x32, name, direct=True)))


@pytest.mark.parametrize("name", ["binary", "binary<stochastic>", "binary<scale=tensor>",
                                  "binary<scale=channel>", "binary<stochastic,scale=channel>", "ternary",
                                  "ternary<scale=channel>",
                                  "ternary<scale=none>", "ttq", "ttq<threshold=0.2,scale=channel>",
                                  "ternary<stochastic>", "ternary<threshold=0.5>"])
def test_binary_and_ternary_match_the_reference(name: str) -> None:
    fmt = emu.format(name)
    rng = np.random.default_rng(3)
    w = np.concatenate([rng.standard_normal((4, 37)) * 0.3, np.array([[0.0, -0.0, 1.5, -1.5] + [0.1] * 33])])
    seed = np.random.SeedSequence(99)
    key = int(seed_key(np.random.SeedSequence(99)))
    got, st = emu.quantize(w, fmt, seed=seed, return_stats=True)
    rows = [w[c] for c in range(w.shape[0])] if fmt.scale == "channel" else [w.reshape(-1)]
    want = []
    for r, row in enumerate(rows):
        base = r * row.size if fmt.scale == "channel" else 0
        if isinstance(fmt, emu.BinaryFormat):
            alpha = _ref.data_scale_ref(row.tolist(), fmt)
            for j, v in enumerate(row):
                s = _ref.binary_ref(float(v), fmt.stochastic, key=key, index=base + j)
                want.append(s * (alpha if alpha is not None else 1.0))
        else:
            sc = _ref.data_scale_ref(row.tolist(), fmt)
            want += [_ref.ternary_ref(float(v), fmt, sc, key=key, index=base + j) for j, v in enumerate(row)]
    want = np.array(want).reshape(w.shape)
    assert np.array_equal(got, want), (name, got[got != want][:5], want[got != want][:5])
    codes = emu.encode(w, fmt, seed=np.random.SeedSequence(99))
    c, scale = codes if fmt.has_data_scale else (codes, None)
    assert np.array_equal(emu.decode(c, fmt, scale=scale), got)
    assert st.size == w.size


def test_stats_count_overflow_and_underflow_per_the_reference() -> None:
    x = np.array([2.5, -3.0, 1e-9, -1e-9, 0.0, 1.0, np.inf])
    _, st = emu.quantize(x, "fx<2,6>", return_stats=True)
    assert (st.size, st.overflow, st.underflow, st.nan) == (7, 3, 2, 0)
    _, st = emu.quantize(np.array([-0.5, -1e-9, 5.0]), "ufx<2,6>", return_stats=True)
    assert (st.overflow, st.underflow) == (2, 1)  # a clamped negative is an overflow, not an underflow
    _, st = emu.quantize(np.array([1e-9, 500.0, np.nan, -np.inf]), "e4m3", overflow="nan", return_stats=True)
    assert (st.overflow, st.underflow, st.nan) == (2, 1, 1)


def test_kernel_helpers_match_python() -> None:
    for z in (0, 1, 2**63, 2**64 - 1, 0x123456789ABCDEF):
        assert int(R.mix64(np.uint64(z))) == _ref.mix64(z)
    for v in (1, 2, 3, 2**52, 2**53 - 1, 2**53 + 1, 2**63, 2**64 - 1):
        assert R.bitlen(np.uint64(v)) == v.bit_length()


_DET_MODES = [m for m in Rounding if m is not Rounding.STOCHASTIC]


def _halves_and_neighbours(rng: np.random.Generator, n: int) -> np.ndarray:
    """Integers, midpoints, their float64 neighbours and random values, both signs, up to 2^40."""
    k = rng.integers(-(1 << 40), 1 << 40, n).astype(np.float64)
    return np.concatenate([k, k + 0.5, np.nextafter(k + 0.5, np.inf), np.nextafter(k + 0.5, -np.inf),
                           rng.uniform(-4, 4, n), np.ldexp(rng.uniform(-1, 1, n), -30),
                           [0.0, -0.0, 0.5, -0.5]])


@pytest.mark.parametrize("mode", _DET_MODES, ids=str)
def test_rint_mode_matches_the_reference(mode: Rounding) -> None:
    """The fixed conversions' fast integer rounding (`rint_mode`) is `round_fraction` of the exact value."""
    for t in _halves_and_neighbours(np.random.default_rng(int(mode) + 11), 300):
        assert R.rint_mode(float(t), int(mode)) == _ref.round_fraction(Fraction(float(t)), mode), (t, mode)


def test_rint_side_and_div_rne_match_the_reference() -> None:
    """`rint_side` rounds the exact value just beside t, ties to even; `div_rne` rounds the exact
    quotient: both against Fractions."""
    rng = np.random.default_rng(5)
    for t in np.abs(_halves_and_neighbours(rng, 200)):
        t = float(t)
        for dirn, delta in ((-1, Fraction(-1, 1 << 80)), (0, Fraction(0)), (1, Fraction(1, 1 << 80))):
            exact = Fraction(t) + delta
            assert R.rint_side(t, dirn) == _ref.round_fraction(exact, Rounding.NEAREST_EVEN), (t, dirn)
    x = rng.integers(-(1 << 30), 1 << 30, 400).astype(np.float64)
    s = np.ldexp(rng.integers(1, 1 << 20, 400).astype(np.float64), rng.integers(-20, 5, 400))
    for xi, si in zip(np.concatenate([x, s * 7 / 2]), np.concatenate([s, s]), strict=True):
        want = _ref.round_fraction(Fraction(float(xi)) / Fraction(float(si)), Rounding.NEAREST_EVEN)
        assert R.div_rne(float(xi), float(si)) == want, (xi, si)


@pytest.mark.parametrize("name", ["e4m3", "e5m2", "fp<6,0>", "fp<3,2>"])
def test_round_grid_ne_matches_the_reference(name: str) -> None:
    """`round_grid_ne` (the block encoders' float-grid rounding) is `round_float` nearest even with
    saturation, including a tie without fraction bits (significand 3/2) rounding up to 2."""
    f = emu.format(name)
    rng = np.random.default_rng(len(name))
    grid = np.abs(emu.decode(np.arange(1 << f.bits), f))
    grid = np.unique(grid[np.isfinite(grid)])
    mids = (grid[1:] + grid[:-1]) / 2
    vals = np.concatenate([grid, mids, np.nextafter(mids, 0), np.nextafter(mids, np.inf),
                           rng.uniform(0, 2 * f.max, 300)])
    for a in vals:
        got = R.round_grid_ne(float(a), 0, f.man_bits, f.emin, f.max)
        r = _ref.round_float(Fraction(float(a)), f)  # the grid without an upper end
        assert got == (float(min(r, Fraction(f.max))), r > Fraction(f.max)), (a, got, r)
