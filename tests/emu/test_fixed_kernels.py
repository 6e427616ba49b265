"""The 32-bit-lane fixed accumulator kernel gives the general int64 kernel's accumulators and overflow
counts bit for bit, across row blocks and column tiles, for wrap and saturate, every shift and start values
per row; and matmul sends exactly the narrow sequential datapaths to it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import emu
from emu import _fixed_kernels as FK
from emu import _mac_kernels as MK


def _general(A, W, init, lo, hi, bits, wrap, sa):  # type: ignore[no-untyped-def]
    M, N = A.shape[0], W.shape[1]
    out = np.empty((M, N), np.int64)
    p, c = np.zeros((M, N), np.int32), np.zeros((M, N), np.int32)
    if sa == 0:
        term, prm = MK.term_mul, MK.ShiftParams(0, 0)
    else:
        term = MK.term_mul_shl if sa < 0 else MK.term_mul_floor
        prm = MK.ShiftParams(abs(sa), 0)
    aprm = MK.FixedAddParams(lo, hi, (1 << bits) - 1, wrap)
    MK.mac_rows_serial(A, W, init, out, p, c, MK.tag(MK.TERM_CODES[term]), prm,
                       MK.tag(MK.ADD_CODES[MK.add_fixed]), aprm, MK.SEQUENTIAL, 1)
    return out, c


@pytest.mark.parametrize("case", range(24))
def test_the_narrow_kernel_is_the_general_kernel(case: int) -> None:
    rng = np.random.default_rng(case)
    M, K = int(rng.integers(1, 11)), int(rng.integers(0, 40))
    N = int(rng.choice([1, 7, FK.COLS - 1, FK.COLS + 3]))
    bits = int(rng.integers(6, 31))
    sa = int(rng.choice([-3, -2, -1, 0, 1, 2, 3, 12, 31, 33]))  # floors of 30 and more leave 0 and -1
    wrap = bool(rng.integers(2))
    amax = 1 << int(rng.integers(2, 9))
    A = rng.integers(-amax, amax, (M, K))
    W = rng.integers(-amax, amax, (K, N))
    term_max = (int(np.abs(A).max(initial=0)) * int(np.abs(W).max(initial=0))) << max(0, -sa)
    assert FK.fits_int32(bits, term_max)  # the draws stay inside the narrow kernel's range
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    init = rng.integers(lo, hi + 1, (M if rng.integers(2) else 1, N))
    want, want_c = _general(A, W, init, lo, hi, bits, wrap, sa)
    for kernel in (FK.mac_fixed32, FK.mac_fixed32_serial):
        out, c = np.empty((M, N), np.int64), np.zeros((M, N), np.int32)
        kernel(A.astype(np.int32), W.astype(np.int32), init.astype(np.int32), out, c, max(0, -sa), max(0, sa),
               lo, hi, (1 << bits) - 1, wrap)
        assert np.array_equal(out, want)
        assert np.array_equal(c, want_c)


@pytest.mark.parametrize("case", range(40))
def test_the_16_bit_lane_kernel_is_the_general_kernel(case: int) -> None:
    """Accumulators of 2 to 16 bits held at the top of int16, products shifted up or floored, wrap and
    saturate, start values per row or shared, row blocks and column tiles cut short."""
    rng = np.random.default_rng(500 + case)
    M, K = int(rng.integers(1, 2 * FK.ROWS16 + 3)), int(rng.integers(0, 60))
    N = int(rng.choice([1, 7, FK.COLS - 1, FK.COLS + 3]))
    bits = int(rng.integers(2, 17))
    sa = int(rng.choice([-2, -1, 0, 0, 1, 2, 5, 15, 17]))  # floors of 15 and more leave 0 and -1
    wrap = bool(rng.integers(2))
    amax = 1 << int(rng.integers(1, max(2, (bits + 1) // 2)))
    A = rng.integers(-amax, amax + 1, (M, K))
    W = rng.integers(-amax, amax + 1, (K, N))
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    init = rng.integers(lo, hi + 1, (M if rng.integers(2) else 1, N))
    prod_max = int(np.abs(A).max(initial=0)) * int(np.abs(W).max(initial=0))
    if not FK.fits_int16(bits, prod_max, max(0, -sa), max(0, sa)):
        sa = max(sa, 0)
        A, W = np.clip(A, -1, 1), np.clip(W, -1, 1)  # |products| <= 1 fit every width
    assert FK.fits_int16(bits, int(np.abs(A).max(initial=0)) * int(np.abs(W).max(initial=0)), max(0, -sa),
                         max(0, sa))
    want, want_c = _general(A, W, init, lo, hi, bits, wrap, sa)
    for kernel in (FK.mac_fixed16, FK.mac_fixed16_serial):
        out, c = np.empty((M, N), np.int64), np.zeros((M, N), np.int32)
        kernel(A.astype(np.int16), FK.held_weights(W, max(0, -sa), max(0, sa), bits), init.astype(np.int16),
               out, c, max(0, sa), bits, wrap)
        assert np.array_equal(out, want)
        assert np.array_equal(c, want_c)


@pytest.mark.parametrize("wrap", [True, False])
def test_16_bit_lane_counts_beyond_the_int16_range(wrap: bool) -> None:
    """70,000 additions into a 2-bit accumulator: the counts pass 32767 (the int16 counts are chunked)."""
    K = 70_000
    A, W, init = np.ones((1, K), np.int64), np.ones((K, 2), np.int64), np.zeros((1, 2), np.int64)
    want, want_c = _general(A, W, init, -2, 1, 2, wrap, 0)
    out, c = np.empty((1, 2), np.int64), np.zeros((1, 2), np.int32)
    FK.mac_fixed16(A.astype(np.int16), FK.held_weights(W, 0, 0, 2), init.astype(np.int16), out, c, 0, 2, wrap)
    assert np.array_equal(out, want)
    assert np.array_equal(c, want_c)
    assert c.min() > 32767 if not wrap else c.min() == K // 4


def test_the_range_check() -> None:
    assert FK.fits_int16(16, (1 << 15) - 1, 0)
    assert not FK.fits_int16(16, 1 << 15, 0)
    assert not FK.fits_int16(12, 1 << 11, 0)  # held 16 times larger: 2^15
    assert FK.fits_int16(12, (1 << 11) - 1, 0)
    assert not FK.fits_int16(16, 1 << 14, 1)
    assert not FK.fits_int16(17, 1, 0)
    assert FK.fits_int16(12, (1 << 15) - 16, 0, 4)  # floored to at most 2047, held as 32752
    assert not FK.fits_int16(12, (1 << 15) - 15, 0, 4)  # -32753 floors to -2048: held 2^15
    assert FK.fits_int32(30, (1 << 29) - 1)
    assert not FK.fits_int32(31, 1)
    assert not FK.fits_int32(16, 1 << 29)


def _recorded(kernel: Any, name: str, used: list[str]) -> Any:
    """The kernel, appending its name to ``used`` on each call."""
    def call(*args: Any) -> Any:
        used.append(name)
        return kernel(*args)
    return call


@pytest.mark.parametrize("mac", [
    emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>"),
    emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", acc_overflow="wrap"),
    emu.MAC(act="int8", weight="int8", acc="fx<16,0>"),
    emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<6,8>"),  # products floored onto the grid
], ids=str)
@pytest.mark.parametrize("path", ["one call", "16-bit lanes", "32-bit lanes"])
def test_matmul_through_the_narrow_kernel_matches_the_literal_reference(mac: emu.MAC, path: str,
                                                                         monkeypatch) -> None:
    """The one-call kernel of small products (`emu._fixed_small_kernels`) and, with it turned off, the
    general path's narrow kernels in 16-bit and (with the 16-bit check turned off) 32-bit lanes."""
    from emu._ref.mac import mac_dot_ref
    from emu.datapath import api, integer, product

    rng = np.random.default_rng(7)
    a, w = rng.uniform(-2, 2, (5, 40)), rng.uniform(-2, 2, (40, 3))
    assert integer.matmul_fixed(a, w, mac, np.zeros(3)) is not None  # the datapath is one it covers
    used = []
    if path != "one call":
        for module in (api, product):  # matmul's own shortcut, and each 2-D product's
            monkeypatch.setattr(module, "matmul_fixed", lambda *args: None)
        if path == "32-bit lanes":
            monkeypatch.setattr(FK, "fits_int16", lambda *args: False)
        for name in ("mac_fixed16_serial", "mac_fixed32_serial"):
            monkeypatch.setattr(FK, name, _recorded(getattr(FK, name), name, used))
    y, st = emu.matmul(a, w, mac, sequential=True, return_stats=True)
    if path != "one call":
        assert used == ["mac_fixed" + path[:2] + "_serial"]
    acc_counts = np.zeros(3, int)
    for i in range(5):
        for j in range(3):
            ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac)
            assert float(ref.value) == y[i, j]
            acc_counts[j] += ref.acc_overflows
    assert np.array_equal(st.acc_per_channel, acc_counts)
    if mac.acc == emu.format("fx<4,12>"):  # sums reach 8 in a range of [-8, 8): some additions overflow
        assert st.acc_overflow > 0


def _small_case(rng: np.random.Generator) -> tuple[emu.MAC, np.ndarray, np.ndarray, np.ndarray]:
    """A random datapath the one-call kernel covers (signed or unsigned operands, products shifted up,
    kept or floored, wrap or saturate, every deterministic input rounding) and operands that overflow."""
    def fx(il: int, fl: int, signed: bool = True) -> str:
        return f"{'' if signed else 'u'}fx<{il},{fl}>"
    signed = bool(rng.integers(2))
    act = fx(int(rng.integers(1, 5)), int(rng.integers(0, 8)), signed)
    weight = fx(int(rng.integers(1, 5)), int(rng.integers(0, 8)), signed)
    acc = fx(int(rng.integers(2, 12)), int(rng.integers(0, 16)), signed)
    rounding = str(rng.choice(["nearest_even", "nearest_away", "nearest_up", "nearest_down", "floor",
                               "toward_zero", "ceil"]))
    mac = emu.MAC(act=act, weight=weight, acc=acc, acc_overflow=str(rng.choice(["wrap", "saturate"])),
                  input_rounding=rounding)
    M, K, N = (int(v) for v in rng.integers(1, 12, 3))
    a = rng.uniform(-20 if signed else 0, 20, (M, K))
    w = rng.uniform(-20 if signed else 0, 20, (K, N))
    b = rng.uniform(-50 if signed else 0, 50, N)
    return mac, a, w, b


@pytest.fixture
def forced_lanes(monkeypatch: Any) -> Any:
    """A function making the one-call kernel take lanes no narrower than ``widest`` (`SK.LANES_INT64` <
    `LANES_F64` < `LANES_INT32`; None: its own choice). The lanes are part of the cached parameters: the
    cache is cleared before and after."""
    from emu import _fixed_small_kernels as SK
    from emu.datapath import integer

    def force(widest: int | None) -> None:
        own = SK.lanes
        monkeypatch.setattr(SK, "lanes",
                            lambda *args: own(*args) if widest is None else min(own(*args), widest))
        integer._direct_params.cache_clear()

    yield force
    integer._direct_params.cache_clear()


@pytest.mark.parametrize("widest", [None, 1, 0], ids=["own lanes", "at most float64", "int64"])
@pytest.mark.parametrize("case", range(40))
def test_the_one_call_kernel_of_small_fixed_products_matches_the_literal_reference(
        case: int, widest: int | None, forced_lanes: Any) -> None:
    """Values, accumulator overflow counts per output column and input overflows (operands and bias),
    against Python integers, in C and transposed memory orders, on the lanes the kernel picks and on each
    wider kind."""
    from emu._ref.mac import mac_dot_ref
    from emu.datapath import integer

    rng = np.random.default_rng(1000 + case)
    mac, a, w, b = _small_case(rng)
    forced_lanes(widest)
    assert widest is None or integer._direct_params(mac).lane <= widest
    assert integer.matmul_fixed(a, w, mac, b) is not None
    for a_in, w_in in ((a, w), (np.asfortranarray(a), np.asfortranarray(w))):
        y, st = emu.matmul(a_in, w_in, mac, b, return_stats=True)
        counts = np.zeros(w.shape[1], int)
        for i in range(a.shape[0]):
            for j in range(w.shape[1]):
                ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac, float(b[j]))
                assert float(ref.value) == y[i, j], (mac, i, j)
                counts[j] += ref.acc_overflows
        assert np.array_equal(st.acc_per_channel, counts)
        want_inputs = sum(int(emu.quantize(x, f, mac.input_rounding, return_stats=True)[1].overflow)
                          for x, f in ((a, mac.act), (w, mac.weight), (b, mac.acc)))
        assert st.input_overflow == want_inputs


def test_the_one_call_kernel_leaves_what_it_does_not_cover_to_the_general_path() -> None:
    from emu.datapath import integer

    a, w, b = np.ones((2, 3)), np.ones((3, 2)), np.zeros(2)
    covered = emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>")
    assert integer.matmul_fixed(a, w, covered, b) is not None
    for mac in (emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", input_rounding="stochastic"),
                emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,4>", align_rounding="nearest_even"),
                emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", order="pairwise"),
                emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", product="fx<4,6>"),
                emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", output="fx<2,6>"),
                emu.MAC(act="e4m3", weight="fx<2,6>", acc="fx<4,12>")):
        assert integer.matmul_fixed(a, w, mac, b) is None, mac
    wide = emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<8,12>")  # 20 bits: not in 16-bit lanes
    big = np.ones((64, 64))
    assert integer.matmul_fixed(big, big, wide, np.zeros(64)) is not None  # the one-call kernel
    assert integer.matmul_fixed(big, big, covered, np.zeros(64)) is not None  # 16-bit lanes
    huge_a, huge_w = np.ones((1024, 1024)), np.ones((1024, 32))  # 2^25 MACs: the threaded general path
    assert 1024 * 1024 * 32 >= integer._ONE_CALL_MAX_MACS
    assert integer.matmul_fixed(huge_a, huge_w, wide, np.zeros(32)) is None
    with pytest.raises(ValueError, match="NaN"):  # a NaN goes to the general path, which refuses it
        emu.matmul(np.array([[np.nan, 1.0, 1.0]]), w, covered)


@pytest.mark.parametrize("case", range(12))
def test_larger_products_in_16_bit_lanes_from_reals_match_the_reference(case: int) -> None:
    """Products of 2^18 MACs or more whose formats fit 16-bit lanes go from reals to int16 codes and
    `mac_fixed16` in one call (`matmul_fixed`): every output and count equals the general path's (asked
    for codes, it does not take this route), sampled outputs equal Python integers, in both memory
    orders, with overflowing inputs and biases."""
    from emu._ref.mac import mac_dot_ref
    from emu.datapath import integer

    rng = np.random.default_rng(5000 + case)
    while True:  # formats whose largest codes fit 16-bit lanes (products floored, kept or shifted up)
        il_a, fl_a, il_w, fl_w = (int(v) for v in rng.integers(1, 5, 4))
        acc_bits = int(rng.integers(2, 17))
        acc_fl = int(rng.integers(0, acc_bits))
        sl, sr = max(0, acc_fl - fl_a - fl_w), max(0, fl_a + fl_w - acc_fl)
        if FK.fits_int16(acc_bits, 2 ** (il_a + fl_a + il_w + fl_w - 2), sl, sr):
            break
    mac = emu.MAC(act=f"fx<{il_a},{fl_a}>", weight=f"fx<{il_w},{fl_w}>",
                  acc=f"fx<{acc_bits - acc_fl},{acc_fl}>",
                  acc_overflow=str(rng.choice(["wrap", "saturate"])),
                  input_rounding=str(rng.choice(["nearest_even", "nearest_away", "floor", "ceil"])))
    M, K, N = 48, int(rng.integers(120, 200)), 40
    a = rng.uniform(-1.2, 1.2, (M, K)) * 2.0 ** (il_a - 1)
    w = rng.uniform(-1.2, 1.2, (K, N)) * 2.0 ** (il_w - 1) / np.sqrt(K) * 2
    b = rng.uniform(-1.5, 1.5, N) * mac.acc.max
    assert integer.matmul_fixed(a, w, mac, b) is not None
    general, _, st_g = emu.matmul(a, w, mac, b, return_stats=True, return_codes=True)
    for a_in, w_in in ((a, w), (np.asfortranarray(a), np.asfortranarray(w))):
        y, st = emu.matmul(a_in, w_in, mac, b, return_stats=True)
        assert np.array_equal(y, general)
        assert st.input_overflow == st_g.input_overflow > 0
        assert np.array_equal(st.acc_per_channel, st_g.acc_per_channel)
    for i, j in zip(rng.integers(0, M, 12), rng.integers(0, N, 12), strict=True):
        ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac, float(b[j]))
        assert float(ref.value) == general[i, j]
    assert st_g.acc_overflow > 0


@pytest.mark.parametrize(("mac", "lane"), [
    (emu.MAC(act="fx<28,0>", weight="fx<28,0>", acc="fx<50,0>", acc_overflow="wrap"), 0),  # products to 2^54
    (emu.MAC(act="fx<28,0>", weight="fx<28,0>", acc="fx<50,0>", acc_overflow="saturate"), 0),
    (emu.MAC(act="fx<20,10>", weight="fx<20,10>", acc="fx<38,4>", acc_overflow="wrap"), 0),  # floored by 2^16
    (emu.MAC(act="fx<13,13>", weight="fx<13,13>", acc="fx<24,12>", acc_overflow="saturate"), 1),  # 2^50
    (emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<6,12>", acc_overflow="wrap"), 1),  # 2^30 + 2^30 held
    # int32 lanes, at the edge: -8 x -8 is the code product 2^30, the accumulator held 2^12 times larger
    (emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<4,12>", acc_overflow="wrap"), 2),
    (emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<4,12>", acc_overflow="saturate"), 2),
    (emu.MAC(act="fx<3,4>", weight="fx<3,4>", acc="fx<6,10>", acc_overflow="wrap"), 2),  # shifted up by 2
    (emu.MAC(act="ufx<4,4>", weight="ufx<4,4>", acc="ufx<8,6>", acc_overflow="saturate"), 2),
], ids=str)
def test_the_one_call_kernel_on_int64_float64_and_held_int32_codes(mac: emu.MAC, lane: int) -> None:
    """Products of codes beyond 2^52 run on int64 codes, narrower ones on codes held in float64, and those
    whose chains stay below 2^31 with the accumulator held 2^sr times larger in int32 (both vectorise):
    each against Python integers, with the formats' extreme codes, with sums that wrap or saturate, with the
    chains along the output rows (M <= N) and down the columns (M > N, few columns), in one and in two
    tiles of `SK.TILE` columns."""
    from emu import _fixed_small_kernels as SK
    from emu._ref.mac import mac_dot_ref
    from emu.datapath import integer

    assert integer._direct_params(mac).lane == lane
    assert SK.TILE < 1030
    rng = np.random.default_rng(77)
    extremes = np.array([mac.act.min, mac.act.max])
    for m, n in ((4, 3), (3, 5), (70, 6), (1100, 3), (2, 1030)):  # the last two span two column tiles
        a = rng.uniform(-1, 1, (m, 9)) * mac.act.max
        w = rng.uniform(-1, 1, (9, n)) * mac.weight.max
        b = rng.uniform(-1, 1, n) * mac.acc.max
        a[0] = rng.choice(extremes, 9)  # the largest products, with either sign
        w[:, 0] = rng.choice(np.array([mac.weight.min, mac.weight.max]), 9)
        if lane == SK.LANES_INT32:
            a[1, :3], w[:3, 1] = mac.act.min, mac.weight.min  # -8 x -8 three times: 2^30 held, wrapped
        y, _, acnt, _ = integer.matmul_fixed(a, w, mac, b)
        counts = np.zeros(n, int)
        for i in range(m):
            for j in range(n):
                ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac, float(b[j]))
                assert float(ref.value) == y[i, j], (i, j)
                counts[j] += ref.acc_overflows
        assert counts.sum() > 0
        assert np.array_equal(acnt.sum(axis=0), counts)


def test_the_int32_lanes_bound_holds_every_value_of_the_chains() -> None:
    """Whenever `lanes` picks int32, the extreme values of every quantity of a chain, computed with Python
    integers from the operands' largest product and the accumulator's range, fit int32: the shifted
    product, the held term (floored onto multiples of 2^sr), the sum and, for the wrap, the sum less lo;
    and the bound is not loose by more than the 2^sr it adds for the floor."""
    from emu import _fixed_small_kernels as SK

    rng = np.random.default_rng(3)
    picked = 0
    for _ in range(20000):
        p_bits, sl, sr, bits = (int(v) for v in rng.integers(1, 33, 4))
        prod_max = int(rng.integers(1 << max(0, p_bits - 1), (1 << p_bits) + 1))
        signed = bool(rng.integers(2))
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        sl, sr = (sl, 0) if rng.integers(2) else (0, sr)
        p = prod_max << sl
        t_lo, t_hi = (-p >> sr) << sr, (p >> sr) << sr
        extremes = [p, -p, t_lo, t_hi, (lo << sr) + t_lo, (hi << sr) + t_hi, t_lo, ((hi - lo) << sr) + t_hi]
        fits = all(-(1 << 31) <= v < 1 << 31 for v in extremes) and ((hi - lo + 1) << sr) <= 1 << 31
        if SK.lanes(prod_max, sl, sr, lo, hi) == SK.LANES_INT32:
            picked += 1
            assert fits, (prod_max, sl, sr, lo, hi)
        elif ((hi - lo) << sr) + p + 2 * (1 << sr) < 1 << 31 and p < 1 << 31:
            raise AssertionError(("int32 lanes refused", prod_max, sl, sr, lo, hi))
    assert picked > 1000


def test_larger_products_that_16_bit_lanes_do_not_hold_run_the_one_call_kernel() -> None:
    """From 2^18 MACs, a covered datapath whose formats do not fit 16-bit lanes (fx<4,12> x fx<4,12> ->
    fx<4,12> saturating: 32-bit products floored by 2^12) runs the one-call kernel below its limit:
    outputs and counts equal the general path's, and sampled outputs Python integers."""
    from emu._ref.mac import mac_dot_ref
    from emu.datapath import integer

    mac = emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<4,12>", acc_overflow="saturate")
    rng = np.random.default_rng(77)
    M, K, N = 64, 120, 84
    assert (1 << 18) <= M * K * N < integer._ONE_CALL_MAX_MACS
    a, w, b = rng.standard_normal((M, K)) * 2, rng.standard_normal((K, N)) * 0.2, rng.standard_normal(N)
    assert integer._matmul_fixed16(a, w, mac, b, integer._direct_params(mac)) is None
    assert integer.matmul_fixed(a, w, mac, b) is not None
    general, _, st_g = emu.matmul(a, w, mac, b, return_stats=True, return_codes=True)
    y, st = emu.matmul(a, w, mac, b, return_stats=True)
    assert np.array_equal(y, general)
    assert np.array_equal(st.acc_per_channel, st_g.acc_per_channel)
    assert st_g.acc_overflow > 0
    for i, j in zip(rng.integers(0, M, 8), rng.integers(0, N, 8), strict=True):
        assert float(mac_dot_ref(list(a[i]), list(w[:, j]), mac, float(b[j])).value) == general[i, j]


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.int64, np.float64])
@pytest.mark.parametrize("transposed", [False, True])
def test_codes_into_every_type_order_and_mode(dtype: Any, transposed: bool) -> None:
    """The one-call kernels' conversion of reals to codes (`codes_into`: one loop for nearest even, one
    for the other modes, the transposed read through 16 x 16 tiles) against `emu.quantize`: codes, times
    the held factor, overflow counts (inf included) and the NaN flag, on shapes that are not multiples of
    the tile, for every deterministic rounding mode."""
    from emu import _fixed_small_kernels as SK

    fmt = emu.format("fx<3,5>")
    rng = np.random.default_rng(11)
    for shape in ((1, 1), (5, 37), (33, 17)):
        x = rng.uniform(-6, 6, shape)
        x.flat[rng.integers(0, x.size, 3)] = rng.choice([np.inf, -np.inf, 0.515625 + 2**-7], 3)
        for mode in emu.Rounding:
            if mode == emu.Rounding.STOCHASTIC:
                continue
            v, st = emu.quantize(x, fmt, mode, "saturate", return_stats=True)
            want = v * 2.0**fmt.frac_bits * 4
            for nan_at in (None, x.size - 1):
                xi = x.copy()
                if nan_at is not None:
                    xi.flat[nan_at] = np.nan
                    want.flat[nan_at] = 0
                out = np.empty(shape, dtype)
                src = np.ascontiguousarray(xi.T) if transposed else xi
                ovf, nan = SK.codes_into(src, transposed, 2.0**fmt.frac_bits, float(fmt.qmin),
                                         float(fmt.qmax), int(mode), out, 4)
                assert nan == (nan_at is not None)
                lost = 0 if nan_at is None else emu.quantize(x.flat[nan_at], fmt, mode, "saturate",
                                                             return_stats=True)[1].overflow
                assert ovf == st.overflow - lost, mode
                assert np.array_equal(out, want), (shape, mode)


@pytest.mark.parametrize("case", range(8))
def test_larger_products_with_exact_terms_leave_the_one_call_kernel(case: int, monkeypatch: Any) -> None:
    """From `_EXACT_OVER_MACS` MACs a product whose terms are exact (products kept or shifted up) takes the
    general path: exact sums where the formats or each output's L1 bound prove them ("exact-sum"), its
    sequential kernels where a bias leaves no room ("sequential"); outputs and counts equal the one-call
    kernel's (forced by raising the limit) and Python integers on sampled outputs. Products floored onto
    the accumulator's grid stay in the one-call kernel."""
    from emu._ref.mac import mac_dot_ref
    from emu.datapath import integer

    rng = np.random.default_rng(900 + case)
    fl_a, fl_w = int(rng.integers(0, 5)), int(rng.integers(1, 8))
    acc_fl = fl_a + fl_w + int(rng.integers(0, 3))  # products kept exactly, shifted up by 0-2 bits
    mac = emu.MAC(act=f"fx<{8 - fl_a},{fl_a}>", weight=f"fx<{8 - fl_w},{fl_w}>",
                  acc=f"fx<{32 - acc_fl},{acc_fl}>", acc_overflow=str(rng.choice(["wrap", "saturate"])),
                  input_rounding=str(rng.choice(["nearest_even", "floor"])))
    M, K, N = 700, int(rng.integers(20, 200)), int(rng.integers(6, 90))
    assert M * K * N >= integer._EXACT_OVER_MACS
    a = rng.uniform(-1.2, 1.2, (M, K)) * mac.act.max
    w = rng.uniform(-1.2, 1.2, (K, N)) * mac.weight.max
    small, large = rng.uniform(-4, 4, N), np.full(N, mac.acc.max)  # the second leaves no room for the sums
    for b, path in ((small, "exact-sum"), (large, "sequential")):
        assert integer.matmul_fixed(a, w, mac, b) is None
        y, st = emu.matmul(a, w, mac, b, return_stats=True)
        assert st.path == path
        monkeypatch.setattr(integer, "_EXACT_OVER_MACS", 1 << 40)
        y1, st1 = emu.matmul(a, w, mac, b, return_stats=True)
        monkeypatch.undo()
        assert np.array_equal(y, y1)
        assert np.array_equal(st.acc_per_channel, st1.acc_per_channel)
        assert st.input_overflow == st1.input_overflow > 0
        for i, j in zip(rng.integers(0, M, 6), rng.integers(0, N, 6), strict=True):
            assert float(mac_dot_ref(list(a[i]), list(w[:, j]), mac, float(b[j])).value) == y[i, j]
    floored = emu.MAC(act=mac.act, weight=mac.weight, acc=f"fx<{33 - fl_a - fl_w},{fl_a + fl_w - 1}>")
    assert integer.matmul_fixed(a, w, floored, small) is not None
