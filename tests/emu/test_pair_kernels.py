"""The 16-bit pair multiply-add sums (`emu._pair_kernels`): every sum against numpy's int64 product wrapped
to int32, on the host's vectors and on 8-lane (AVX2) vectors, and the planes the convolutions read."""

from __future__ import annotations

import numpy as np
import pytest
from llvmlite import binding

from emu import _pair_kernels as PK


def _pairs(x: np.ndarray, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """x (K, C) as the flat pair layout of `pair_sums` (pair kp of column j at 2 (kp cols + j)), C padded
    to ``cols`` columns with zeros; and the offsets of its pairs."""
    k, c = x.shape
    kp = -(-k // 2)
    full = np.zeros((2 * kp, cols), np.int16)
    full[:k, :c] = x
    flat = np.ascontiguousarray(full.reshape(kp, 2, cols).transpose(0, 2, 1)).reshape(-1)
    return flat, np.arange(kp, dtype=np.int64) * 2 * cols


def _host_has(feature: str) -> bool:
    return bool(binding.get_host_cpu_features().get(feature, False))


def test_the_host_lanes() -> None:
    """16 lanes where the host has AVX-512BW, else 8 where it has AVX2, else none (and pair_sums refuses);
    none where numba compiles for a named CPU or not at all."""
    import numba

    want = 16 if _host_has("avx512bw") else 8 if _host_has("avx2") else 0
    if numba.config.DISABLE_JIT or numba.config.CPU_NAME is not None or numba.config.CPU_FEATURES is not None:
        want = 0
    assert want == PK.PAIR_LANES
    if not want:
        with pytest.raises(RuntimeError, match="no 16-bit pair multiply-add"):
            PK.pair_sums(np.zeros(4, np.int16), np.zeros(1, np.int64), np.zeros((1, 1, 1, 2), np.int16),
                         np.zeros((1, 1), np.int32))


def test_the_worked_example() -> None:
    if not PK.PAIR_LANES:
        assert not _host_has("avx2")
        return
    c = PK.pair_block()
    x = np.zeros(4 * c, np.int16)
    x[[0, 1]] = 5, 6
    x[2 * c:2 * c + 2] = 7, 8
    s = np.empty((PK.MR, c), np.int32)
    PK.pair_sums(x, np.array([0, 2 * c]), PK.pack_pair_weights(np.array([[1, 2, 3, -1]])), s)
    assert s[0, 0] == 1 * 5 + 2 * 6 + 3 * 7 - 1 * 8 == 30
    assert not s[1:].any()
    assert not s[0, 1:].any()


@pytest.mark.parametrize("lanes", [16, 8])
@pytest.mark.parametrize(("rows", "k", "cols", "lo", "hi"), [
    (16, 144, 100, -128, 128), (5, 7, 33, -(1 << 15) + 1, 1 << 15), (33, 1, 1, -(1 << 15) + 1, 1 << 15),
    (64, 576, 40, -(1 << 15) + 1, 1 << 15), (3, 0, 8, 0, 1), (17, 12, 70, -300, 300)])
def test_sums_against_numpy(lanes: int, rows: int, k: int, cols: int, lo: int, hi: int) -> None:
    """Random codes of up to 16 bits (x above -2^15: no pair of products is 2^31), every sum numpy's int64
    product wrapped to int32, as the 32-bit lanes add; rows not a multiple of the row block, columns not
    a multiple of the vector, K odd or 0. The AVX2 kernel runs where the host has AVX2 (AVX-512 hosts
    have it)."""
    if lanes == 16 and not _host_has("avx512bw") or lanes == 8 and not _host_has("avx2"):
        assert PK.PAIR_LANES < lanes
        return
    mr = 16 if lanes == 16 else 8
    run = PK.compile_pair_sums(lanes, mr) if (lanes, mr) != (PK.PAIR_LANES, PK.MR) else None
    rng = np.random.default_rng(rows * 1000 + k)
    w = rng.integers(-(1 << 15), 1 << 15, (rows, k))
    x = rng.integers(lo, hi, (k, cols))
    block = PK.NV * lanes
    padded = -(-cols // block) * block
    flat, offs = _pairs(x, padded)
    packed = PK.pack_pair_weights(w, mr)
    s = np.full((packed.shape[0] * mr, padded), 7, np.int32)
    if run is None:
        PK.pair_sums(flat, offs, packed, s)
    else:
        run(flat, offs, packed, s, 0, padded)
    want = (w.astype(np.int64) @ x.astype(np.int64)).astype(np.int32)  # numpy wraps to int32
    assert np.array_equal(s[:rows, :cols], want)
    assert not s[rows:].any()  # the padding rows' weights are 0


@pytest.mark.parametrize(("c", "sh", "sw", "kh", "kw", "top", "left"), [
    (3, 2, 3, 3, 3, 1, 2), (4, 1, 1, 3, 3, 1, 1), (5, 2, 2, 1, 1, 0, 0), (2, 3, 1, 2, 4, 2, 0)])
def test_the_planes(c: int, sh: int, sw: int, kh: int, kw: int, top: int, left: int) -> None:
    """pair_planes puts each padded entry at its phase, row and column, channels interleaved in pairs (an
    odd C's missing channel 0), and leaves out the phases no tap reads (a 1x1 kernel at stride 2 reads
    one of four)."""
    rng = np.random.default_rng(c)
    x = rng.integers(-128, 128, (2, c, 5, 7)).astype(np.float32)
    y0, q0 = -top % sh, -left % sw  # an entry in phase (0, 0), which every kernel reads
    x[0, :2, y0, q0] = -(1 << 15), (1 << 15) - 1
    hp2, wp2, block = 4, 3, 40
    row = sh * sw * block
    c2 = -(-c // 2)
    out = np.zeros(2 * c2 * row, np.int16)
    PK.pair_planes(x, top, left, sh, sw, kh, kw, hp2, wp2, block, row, out.view(np.int32))
    want = np.zeros_like(out)
    for b in range(2):
        for ch in range(c):
            for y in range(5):
                for q in range(7):
                    yy, xx = y + top, q + left
                    if yy // sh < hp2 and xx // sw < wp2 and yy % sh < kh and xx % sw < kw:
                        at = (yy % sh * sw + xx % sw) * block + b * hp2 * wp2 + yy // sh * wp2 + xx // sw
                        want[ch // 2 * 2 * row + 2 * at + ch % 2] = x[b, ch, y, q]
    assert np.array_equal(out, want)
    assert (out == -(1 << 15)).any()
    assert (out == (1 << 15) - 1).any()


@pytest.mark.parametrize("pairs", [True, False])
@pytest.mark.parametrize("threads_from", [0, 1 << 40])
@pytest.mark.parametrize(("m", "k", "n"), [(37, 1200, 19), (1, 3, 1), (16, 64, 33)])
def test_matmul_exact_sums_on_the_pair_route(pairs: bool, threads_from: int, m: int, k: int, n: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """emu.matmul's exact sums of int16 codes that float32 cannot hold take the pair kernel (`_pair_product`,
    its columns shared among threads or not), up to int32's bound: with K = 1200 int8 codes the sums pass
    float32's 2^24 (an odd one here), which without the pair route the general path sums in float64;
    smaller products keep float32 BLAS. Values, codes and counts are the sequential kernel's, from a bias
    and from an addend."""
    import emu
    from emu.datapath import integer

    monkeypatch.setattr(integer, "PAIR_SUMS", pairs and PK.PAIR_LANES > 0)
    monkeypatch.setattr(integer, "PAIR_THREAD_MACS", threads_from)
    calls: list[tuple[int, ...]] = []
    original = integer._pair_product

    def spy(qa: np.ndarray, qw: np.ndarray) -> np.ndarray:
        calls.append(qa.shape)
        return original(qa, qw)
    monkeypatch.setattr(integer, "_pair_product", spy)
    mac = emu.MAC(act="fx<8,0>", weight="fx<1,7>", acc="fx<32,7>", acc_overflow="wrap")
    rng = np.random.default_rng(m * k)
    a = np.full((m, k), 127.0)
    a[m // 2:] = rng.integers(-140, 140, (m - m // 2, k))  # some saturate
    a[0, 0] = 126.0  # row 0's sum with an all-127 column: odd
    w = np.full((k, n), 127 / 128)
    w[:, n // 2:] = rng.integers(-128, 128, (k, n - n // 2)) / 128
    bias, c = rng.uniform(-4, 4, n), rng.uniform(-4, 4, (m, n))
    for extra in ({"bias": bias}, {"c": c}):
        y, codes, st = emu.matmul(a, w, mac, return_stats=True, return_codes=True, **extra)
        want, want_codes, want_st = emu.matmul(a, w, mac, return_stats=True, return_codes=True,
                                               sequential=True, **extra)
        assert np.array_equal(y, want)
        assert np.array_equal(codes, want_codes)
        assert st.input_overflow == want_st.input_overflow
        assert want_st.path == "sequential"
        assert st.path == "exact-sum"
    past_float32 = k * 128 * 128 >= 1 << 24  # below, float32 BLAS sums
    assert calls == ([(m, k)] * 2 if integer.PAIR_SUMS and past_float32 else [])
    if k == 1200:
        sums = emu.matmul(a, w, mac, return_codes=True)[1].astype(np.int64)
        assert ((sums > 1 << 24) & (sums % 2 == 1)).any()
