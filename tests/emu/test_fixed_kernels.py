"""The 32-bit-lane fixed accumulator kernel gives the general int64 kernel's accumulators and overflow
counts bit for bit, across row blocks and column tiles, for wrap and saturate, every shift and start values
per row; and matmul sends exactly the narrow sequential datapaths to it."""

from __future__ import annotations

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
    sa = int(rng.integers(-3, 4))
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


def test_the_range_check() -> None:
    assert FK.fits_int32(30, (1 << 29) - 1)
    assert not FK.fits_int32(31, 1)
    assert not FK.fits_int32(16, 1 << 29)


@pytest.mark.parametrize("mac", [
    emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>"),
    emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", acc_overflow="wrap"),
    emu.MAC(act="int8", weight="int8", acc="fx<16,0>"),
    emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<6,8>"),  # products floored onto the grid
], ids=str)
def test_matmul_through_the_narrow_kernel_matches_the_literal_reference(mac: emu.MAC) -> None:
    from emu._ref.mac import mac_dot_ref

    rng = np.random.default_rng(7)
    a, w = rng.uniform(-2, 2, (5, 40)), rng.uniform(-2, 2, (40, 3))
    y, st = emu.matmul(a, w, mac, sequential=True, return_stats=True)
    acc_counts = np.zeros(3, int)
    for i in range(5):
        for j in range(3):
            ref = mac_dot_ref(list(a[i]), list(w[:, j]), mac)
            assert float(ref.value) == y[i, j]
            acc_counts[j] += ref.acc_overflows
    assert np.array_equal(st.acc_per_channel, acc_counts)
    if mac.acc == emu.format("fx<4,12>"):  # sums reach 8 in a range of [-8, 8): some additions overflow
        assert st.acc_overflow > 0
