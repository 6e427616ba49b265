"""The convolution paths without float64 patches (`emu.datapath.conv_narrow`: exact sums by the CPU's pair
multiply-add on int16 codes, or float32 codes into exact BLAS products, or int16 patches through the
16-bit-lane kernel): `emu.conv2d` through them gives what the general path gives on the im2col patches
(values, codes, per-channel accumulator counts, input overflow), and they hand to the general path what
they must not run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import emu
from emu import _pair_kernels as PK
from emu.datapath import api, conv_narrow, integer


def _general(x: np.ndarray, k: np.ndarray, mac: emu.MAC, stride: tuple[int, int], pad: tuple[int, int],
             bias: Any) -> tuple[np.ndarray, np.ndarray, Any]:
    """The same convolution as one matmul of the im2col patches (the general path)."""
    n, cout = x.shape[0], k.shape[0]
    cols, oh, ow = api.im2col(x, k.shape[2], k.shape[3], stride, pad)
    y, codes, st = emu.matmul(cols, k.reshape(cout, -1).T, mac, bias, return_stats=True, return_codes=True)
    back = (n, oh, ow, cout)
    return y.reshape(back).transpose(0, 3, 1, 2), codes.reshape(back).transpose(0, 3, 1, 2), st


def _general_from(x: np.ndarray, k: np.ndarray, mac: emu.MAC, stride: tuple[int, int], pad: tuple[int, int],
                  c: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
    """`_general` from start values c (N, C_out, OH, OW) that differ at every output position."""
    n, cout = x.shape[0], k.shape[0]
    cols, oh, ow = api.im2col(x, k.shape[2], k.shape[3], stride, pad)
    y, codes, st = emu.matmul(cols, k.reshape(cout, -1).T, mac, c=c.transpose(0, 2, 3, 1).reshape(-1, cout),
                              return_stats=True, return_codes=True)
    back = (n, oh, ow, cout)
    return y.reshape(back).transpose(0, 3, 1, 2), codes.reshape(back).transpose(0, 3, 1, 2), st


def _record(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[bool]:
    """Replaces ``module.name`` by a spy recording, per call, whether it returned a result (True) or None."""
    calls: list[bool] = []
    original = getattr(module, name)

    def spy(*args: Any) -> Any:
        part = original(*args)
        calls.append(part is not None)
        return part
    monkeypatch.setattr(module, name, spy)
    return calls


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per conv2d call, whether conv_narrow ran the product (True) or handed it on (False)."""
    return _record(monkeypatch, api, "conv_narrow")


@pytest.mark.parametrize("case", range(30))
def test_conv2d_through_16_bit_patches_is_the_general_path(case: int, ran: list[bool],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conv_narrow, "EXACT_MIN_PATCHES", 0)  # the exact-sum path for small patches too
    rng = np.random.default_rng(4000 + case)
    n, c, h, w = (int(v) for v in rng.integers([1, 1, 3, 3], [4, 4, 10, 10]))
    cout, kh, kw = (int(v) for v in rng.integers([1, 1, 1], [20, 4, 4]))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    # fx<6,8>: products floored; fx<12,12>, fx<16,16>: wide enough for the exact sum
    acc = str(rng.choice(["fx<4,12>", "fx<3,9>", "fx<2,6>", "fx<6,8>", "fx<5,11>", "fx<12,12>", "fx<16,16>"]))
    overflow = str(rng.choice(["wrap", "saturate"]))
    mac = emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc=acc, acc_overflow=overflow,
                  input_rounding=str(rng.choice(["nearest_even", "toward_zero", "floor"])))
    x = rng.uniform(-1.9, 1.9, (n, c, h, w)) * (1 if acc != "fx<2,6>" else 0.05)
    k = rng.uniform(-1.9, 1.9, (cout, c, kh, kw)) * (1 if acc != "fx<2,6>" else 0.05)
    bias = rng.uniform(-1, 1, cout) if rng.integers(2) else None
    if bias is not None and case % 2:  # the same start values as an addend c broadcast over the positions
        y, codes, st = emu.conv2d(x, k, mac, stride, pad, c=bias.reshape(1, cout, 1, 1), return_stats=True,
                                  return_codes=True)
    else:
        y, codes, st = emu.conv2d(x, k, mac, stride, pad, bias=bias, return_stats=True, return_codes=True)
    assert ran == [True]
    want, want_codes, want_st = _general(x, k, mac, stride, pad, bias)
    assert np.array_equal(y, want)
    values_only, st_v = emu.conv2d(x, k, mac, stride, pad, bias=bias, return_stats=True)  # without codes
    assert ran == [True, True]
    assert np.array_equal(values_only, want)
    assert np.array_equal(st_v.acc_per_channel, want_st.acc_per_channel)
    assert np.array_equal(codes, want_codes)
    assert np.array_equal(st.acc_per_channel, want_st.acc_per_channel)
    assert st.input_overflow == want_st.input_overflow
    assert st.path == ("exact-sum" if acc in ("fx<12,12>", "fx<16,16>") else "sequential")


def test_the_literal_reference_and_a_counted_saturation(ran: list[bool]) -> None:
    """x = [[1, 2], [3, 4]] and a 2x2 kernel of ones into fx<4,0>: partial sums 1, 3, 6, then 10, which
    saturates to 7, counted once; and a larger case against the literal reference dot by dot."""
    from emu._ref.mac import mac_dot_ref

    mac = emu.MAC(act="fx<4,0>", weight="fx<4,0>", acc="fx<4,0>", acc_overflow="saturate")
    y, st = emu.conv2d(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), np.ones((1, 1, 2, 2)), mac, return_stats=True)
    assert y.tolist() == [[[[7.0]]]]
    assert st.acc_overflow == 1
    rng = np.random.default_rng(5)
    mac = emu.MAC(act="fx<4,4>", weight="fx<1,7>", acc="fx<5,11>", acc_overflow="wrap")
    x, k = rng.uniform(0, 3, (2, 3, 5, 5)), rng.uniform(-1, 1, (4, 3, 3, 3))
    y, st = emu.conv2d(x, k, mac, 1, 1, return_stats=True)
    assert ran == [True, True]
    cols, _, _ = api.im2col(x, 3, 3, (1, 1), (1, 1))
    flat = y.transpose(0, 2, 3, 1).reshape(-1, 4)
    wraps = 0
    for i in range(0, cols.shape[0], 7):  # every 7th position, every channel
        for j in range(4):
            ref = mac_dot_ref(list(cols[i]), list(k[j].reshape(-1)), mac)
            assert float(ref.value) == flat[i, j]
            wraps += ref.acc_overflows
    assert st.acc_overflow >= wraps > 0


def test_what_the_narrow_path_hands_to_the_general_path(ran: list[bool]) -> None:
    """An input that overflows counts once per patch entry that holds it, as the general path counts it;
    codes too wide for 16-bit lanes and datapaths it does not cover go to the general path."""
    mac = emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>")
    x, k = np.full((1, 1, 3, 3), 0.5), np.full((2, 1, 2, 2), 0.25)
    x[0, 0, 1, 1] = 5.0  # beyond fx<2,6>: saturates, in all four patches
    x[0, 0, 0, 0] = -9.0  # and in one
    k[1, 0, 1, 1] = 3.0  # beyond fx<2,6> too: once
    y, st = emu.conv2d(x, k, mac, 1, (1, 0), return_stats=True)
    assert ran == [True]
    assert st.input_overflow == 4 + 2 + 1  # x[1, 1] in 4 patches, x[0, 0] in 2 (rows padded by 1), k once
    y2, _, st2 = _general(x, k, mac, (1, 1), (1, 0), None)
    assert np.array_equal(y, y2)
    assert st.input_overflow == st2.input_overflow
    wide = emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<2,6>")  # held terms of 2^16 and more
    emu.conv2d(np.full((1, 1, 3, 3), 1.5), np.full((1, 1, 2, 2), 1.5), wide)
    assert ran == [True, False]
    for other in (emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", input_rounding="stochastic"),
                  emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="ufx<4,12>"),
                  emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", output="fx<2,6>"),
                  emu.MAC(act="fx<2,6>", weight="fx<2,6>", acc="fx<4,12>", order="pairwise"),
                  emu.MAC(act="e4m3", weight="e4m3", acc="fx<4,12>")):
        assert not conv_narrow.covers(other), other
    emu.conv2d(x, k, "int8 x int8 -> int32")  # 8 patch entries: below EXACT_MIN_PATCHES
    assert ran[-1] is False
    y, st = emu.conv2d(x[:, :, :2, :2], k, "int8 x int8 -> int32", sequential=True, return_stats=True)
    assert ran[-1] is False  # sequential=True asks for the sequential kernels: no exact-sum product
    assert st.path == "sequential"
    with pytest.raises(ValueError, match="NaN"):
        emu.conv2d(np.full((1, 1, 3, 3), np.nan), k, mac)


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_a_convolution_handed_on_runs_the_one_call_kernel(ran: list[bool], overflow: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A fixed datapath whose terms 16-bit lanes do not hold (fx<4,12> x fx<4,12> -> fx<4,12>: 32-bit products
    floored by 2^12) leaves conv_narrow; its patches' product then runs the one-call kernel
    (`emu.datapath.integer.matmul_fixed`): the same values and counts as the general kernels, sampled outputs
    as Python integers."""
    from emu._ref.mac import mac_dot_ref
    from emu.datapath import product

    mac = emu.MAC(act="fx<4,12>", weight="fx<4,12>", acc="fx<4,12>", acc_overflow=overflow)
    rng = np.random.default_rng(11)
    x, k = rng.uniform(-3, 3, (4, 3, 6, 6)), rng.uniform(-1, 1, (5, 3, 3, 3))
    x[0, 0, 0, 0] = 9.0  # an input that overflows fx<4,12>
    calls = _record(monkeypatch, product, "matmul_fixed")
    y, st = emu.conv2d(x, k, mac, 1, 1, return_stats=True)
    assert ran == [False]
    assert calls == [True]
    monkeypatch.setattr(product, "matmul_fixed", lambda *args: None)
    y2, st2 = emu.conv2d(x, k, mac, 1, 1, return_stats=True)
    assert np.array_equal(y, y2)
    assert np.array_equal(st.acc_per_channel, st2.acc_per_channel)
    assert st.acc_overflow == st2.acc_overflow > 0
    assert st.input_overflow == st2.input_overflow > 0
    cols = api.im2col(x, 3, 3, (1, 1), (1, 1))[0]
    flat = y.transpose(0, 2, 3, 1).reshape(-1, 5)
    for i, j in zip(rng.integers(0, cols.shape[0], 10), rng.integers(0, 5, 10), strict=True):
        assert float(mac_dot_ref(list(cols[i]), list(k[j].reshape(-1)), mac).value) == flat[i, j]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("block", [1, 150, 1 << 18])
def test_the_exact_sums_in_blocks_of_images(threads: int, block: int, ran: list[bool],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The exact-sum product runs in blocks of images shared among threads (`BLOCK_PATCH_ENTRIES`: one
    image per block, a few, the whole batch): the values and codes are the general path's on one or two
    threads, also from an addend that differs at every output position (start values row by row), and
    land in the NCHW order of the maps without a copy."""
    import numba

    monkeypatch.setattr(conv_narrow, "EXACT_MIN_PATCHES", 0)
    monkeypatch.setattr(conv_narrow, "BLOCK_PATCH_ENTRIES", block)
    mac = emu.MAC(act="fx<4,4>", weight="fx<1,7>", acc="fx<21,11>", acc_overflow="wrap")
    rng = np.random.default_rng(17 + block)
    x, k = rng.uniform(-9, 9, (5, 3, 7, 6)), rng.uniform(-1.1, 1.1, (4, 3, 3, 3))
    c = rng.uniform(-4, 4, (5, 4, 4, 3))  # stride 2, padding 1: 4 x 3 outputs
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        y, codes, st = emu.conv2d(x, k, mac, 2, 1, c=c, return_stats=True, return_codes=True)
        y_b = emu.conv2d(x, k, mac, 2, 1, bias=c[0, :, 0, 0])
    finally:
        numba.set_num_threads(before)
    assert ran == [True, True]
    assert st.path == "exact-sum"
    assert y.flags.c_contiguous
    assert codes.flags.c_contiguous
    want, want_codes, want_st = _general_from(x, k, mac, (2, 2), (1, 1), c)
    assert np.array_equal(y, want)
    assert np.array_equal(codes, want_codes)
    assert st.input_overflow == want_st.input_overflow > 0
    assert np.array_equal(y_b, _general(x, k, mac, (2, 2), (1, 1), c[0, :, 0, 0])[0])
    x[3, 1, 2, 2] = np.nan  # the general path's own error, on its patches: one entry holds it
    with pytest.raises(ValueError, match=r"x holds 1 NaN value\(s\) \(first at index \(40, 13\)\) and"):
        emu.conv2d(x, k, mac, 2, 1)


@pytest.mark.parametrize("pairs", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("kernel", "pad", "block"), [((3, 3), (1, 1), 1), ((3, 3), (1, 1), 1 << 16),
                                                      ((1, 3), (0, 1), 700), ((5, 5), (2, 2), 1),
                                                      ((2, 2), (0, 0), 1 << 16), ((3, 2), (2, 0), 3000)])
def test_the_exact_sums_tap_by_tap(pairs: bool, threads: int, kernel: tuple[int, int], pad: tuple[int, int],
                                   block: int, ran: list[bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """An exact-sum convolution of int16 codes takes its sums by the CPU's pair multiply-add (`_pair_sums`,
    where the host has it); else a stride-1 one with enough input channels takes them tap by tap from
    zero-padded planes by float32 BLAS (`_tap_sums`), and a stride of 2, or too few channels, takes the
    patches. In blocks of images (one per block, a few, the whole batch) on one or two threads: values,
    codes and counts are the general path's, also from start values that differ at every output position.
    An odd channel count (9) leaves the pair route's last channel pair half empty."""
    import numba

    monkeypatch.setattr(conv_narrow, "EXACT_MIN_PATCHES", 0)
    monkeypatch.setattr(conv_narrow, "TAP_BLOCK_VALUES", block)
    monkeypatch.setattr(integer, "PAIR_SUMS", pairs and PK.PAIR_LANES > 0)
    routes: list[str] = []

    def spy(name: str, original: Any) -> Any:
        def route(*args: Any) -> Any:
            routes.append(name)
            return original(*args)
        return route
    for name in ("_pair_sums", "_tap_sums", "_patch_sums"):
        monkeypatch.setattr(conv_narrow, name, spy(name, getattr(conv_narrow, name)))
    mac = emu.MAC(act="fx<4,4>", weight="fx<1,7>", acc="fx<21,11>", acc_overflow="wrap")
    rng = np.random.default_rng(kernel[0] * 100 + pad[0] * 10 + block % 7)
    x, k = rng.uniform(-9, 9, (5, 9, 7, 6)), rng.uniform(-1.1, 1.1, (4, 9, *kernel))
    oh, ow = 7 + 2 * pad[0] - kernel[0] + 1, 6 + 2 * pad[1] - kernel[1] + 1
    c = rng.uniform(-4, 4, (5, 4, oh, ow))
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        y, codes, st = emu.conv2d(x, k, mac, 1, pad, c=c, return_stats=True, return_codes=True)
        y_b = emu.conv2d(x, k, mac, 1, pad, bias=c[0, :, 0, 0])
        emu.conv2d(x, k, mac, 2, pad)
        emu.conv2d(x[:, :7], k[:, :7], mac, 1, pad)
    finally:
        numba.set_num_threads(before)
    assert ran == [True] * 4
    if pairs and PK.PAIR_LANES:
        assert routes == ["_pair_sums"] * 4
    else:
        assert routes == ["_tap_sums", "_tap_sums", "_patch_sums", "_patch_sums"]
    assert st.path == "exact-sum"
    want, want_codes, want_st = _general_from(x, k, mac, (1, 1), pad, c)
    assert np.array_equal(y, want)
    assert np.array_equal(codes, want_codes)
    assert st.input_overflow == want_st.input_overflow > 0
    assert np.array_equal(st.acc_per_channel, want_st.acc_per_channel)
    assert np.array_equal(y_b, _general(x, k, mac, (1, 1), pad, c[0, :, 0, 0])[0])


@pytest.mark.parametrize(("act", "scale"), [("fx<4,4>", 12), ("fx<9,-1>", 400)])
@pytest.mark.parametrize("stride", [1, 2])
def test_the_blocks_convert_their_own_images(act: str, scale: float, stride: int, ran: list[bool],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An act conversion of FL >= 0 (saturating, deterministic) is made block by block inside the exact-sum
    product (`in_block_codes`); one of FL < 0 before it, over the whole of x. Both give the general path's
    values, codes and input overflow count (x overflows the act format here), on the tap and the patch
    routes."""
    monkeypatch.setattr(conv_narrow, "EXACT_MIN_PATCHES", 0)
    monkeypatch.setattr(conv_narrow, "TAP_BLOCK_VALUES", 2000)  # several blocks
    monkeypatch.setattr(conv_narrow, "BLOCK_PATCH_ENTRIES", 2000)
    mac = emu.MAC(act=act, weight="fx<1,7>", acc="fx<21,11>", acc_overflow="wrap")
    assert conv_narrow.in_block_codes(mac) == (act == "fx<4,4>")
    rng = np.random.default_rng(stride)
    x, k = rng.uniform(-scale, scale, (6, 8, 9, 7)), rng.uniform(-1.1, 1.1, (5, 8, 3, 3))
    y, codes, st = emu.conv2d(x, k, mac, stride, 1, return_stats=True, return_codes=True)
    assert ran == [True]
    want, want_codes, want_st = _general(x, k, mac, (stride, stride), (1, 1), None)
    assert np.array_equal(y, want)
    assert np.array_equal(codes, want_codes)
    assert st.input_overflow == want_st.input_overflow > 0


def _outcome(f: Any) -> tuple[str, str] | np.ndarray:
    """f()'s result, or its error's type and message."""
    try:
        return f()
    except (ValueError, OverflowError) as e:
        return type(e).__name__, str(e)


@pytest.mark.parametrize(("act", "acc"), [("fx<4,4>", "fx<21,11>"), ("fx<9,-1>", "fx<21,11>"),
                                          ("fx<2,6>", "fx<4,12>")])
@pytest.mark.parametrize("input_overflow", ["saturate", "error"])
def test_conversion_errors_are_the_general_paths(act: str, acc: str, input_overflow: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A NaN (or, under input_overflow="error", an overflowing value) raises only where a patch holds it,
    with the general path's message, on every route (exact sums converting in the blocks or before them,
    16-bit lanes); a bad weight beside a bad x raises x's error, which the general path converts first."""
    monkeypatch.setattr(conv_narrow, "EXACT_MIN_PATCHES", 0)
    mac = emu.MAC(act=act, weight=act, acc=acc, input_overflow=input_overflow)
    rng = np.random.default_rng(2)
    x, k = rng.uniform(-1, 1, (2, 3, 9, 10)), rng.uniform(-0.5, 0.5, (4, 3, 1, 1))
    bad = np.inf if input_overflow == "error" else np.nan
    # stride 2, a 1x1 kernel: the patches read the even rows and columns only (row 1 and column 9 never)
    for where, read in (((1, 2, 1, 4), False), ((0, 1, 4, 9), False), ((1, 0, 4, 6), True)):
        xb = x.copy()
        xb[where] = bad
        fast = _outcome(lambda xb=xb: emu.conv2d(xb, k, mac, 2, 0))
        general = _outcome(lambda xb=xb: _general(xb, k, mac, (2, 2), (0, 0), None)[0])
        if read:
            assert isinstance(fast, tuple)
            assert fast == general
        else:
            assert np.array_equal(fast, general)
    kb = k.copy()
    kb[0, 0, 0, 0] = np.nan
    xb = x.copy()
    xb[0, 0, 2, 2] = bad
    fast, general = (_outcome(lambda: emu.conv2d(xb, kb, mac, 2, 0)),
                     _outcome(lambda: _general(xb, kb, mac, (2, 2), (0, 0), None)[0]))
    assert isinstance(fast, tuple)
    assert fast == general


@pytest.mark.parametrize(("stride", "kernel", "pad", "hw"), [
    ((2, 2), (3, 3), (1, 1), (9, 8)), ((2, 1), (3, 2), (0, 1), (7, 6)), ((3, 3), (5, 5), (2, 2), (11, 10)),
    ((2, 2), (1, 1), (0, 0), (8, 8)), ((1, 1), (1, 1), (0, 0), (5, 7)), ((1, 3), (2, 4), (1, 2), (6, 9)),
    ((2, 2), (2, 2), (0, 0), (2, 2))])
@pytest.mark.parametrize(("c_in", "c_out", "block"), [(3, 5, 1), (8, 17, 2000), (7, 16, 1 << 16)])
def test_the_pair_sums_at_any_stride(stride: tuple[int, int], kernel: tuple[int, int], pad: tuple[int, int],
                                     hw: tuple[int, int], c_in: int, c_out: int, block: int, ran: list[bool],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The pair route (`_pair_sums`: planes split into the stride's phases, channels in pairs) gives the
    general path's values, codes, input overflow and per-channel counts for strides of 1 to 3 along either
    axis, kernels of 1x1 to 5x5, paddings of 0 to 2, odd channel counts and output channels that are not a
    multiple of its row block, in one block per image, a few, or the whole batch; the act codes saturate
    at -128 and 127 and the weights reach -128 and 127."""
    routes: list[bool] = []
    original = conv_narrow._pair_sums

    def spy(*args: Any) -> Any:
        routes.append(True)
        return original(*args)
    monkeypatch.setattr(conv_narrow, "_pair_sums", spy)
    monkeypatch.setattr(conv_narrow, "EXACT_MIN_PATCHES", 0)
    monkeypatch.setattr(conv_narrow, "TAP_BLOCK_VALUES", block)
    mac = emu.MAC(act="fx<8,0>", weight="fx<1,7>", acc="fx<21,11>", acc_overflow="wrap")
    rng = np.random.default_rng(stride[0] * 31 + kernel[1] * 7 + c_in)
    x = rng.integers(-130, 130, (3, c_in, *hw)).astype(np.float64)  # some saturate
    x[0, 0, 0, 0] = 200.0  # read by every geometry here
    k = rng.integers(-128, 128, (c_out, c_in, *kernel)) / 128
    k.reshape(-1)[:2] = -1.0, 127 / 128
    y, codes, st = emu.conv2d(x, k, mac, stride, pad, return_stats=True, return_codes=True)
    want, want_codes, want_st = _general(x, k, mac, stride, pad, None)
    assert np.array_equal(y, want)
    assert np.array_equal(codes, want_codes)
    assert st.input_overflow == want_st.input_overflow > 0
    assert np.array_equal(st.acc_per_channel, want_st.acc_per_channel)
    assert ran == [True]
    assert routes == ([True] if PK.PAIR_LANES else [])


def test_codes_wider_than_int16_take_the_float32_route(ran: list[bool],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """An act format whose codes leave int16 (fx<17,0>: -2^16 .. 2^16 - 1), with sums the formats still prove
    exact (27 taps of codes up to 2^16 x 8), takes the float32 patches, not the pair route, and gives the
    general path's values and codes."""
    routes: list[str] = []
    for name in ("_pair_sums", "_tap_sums", "_patch_sums"):
        original = getattr(conv_narrow, name)

        def spy(*args: Any, _name: str = name, _original: Any = original) -> Any:
            routes.append(_name)
            return _original(*args)
        monkeypatch.setattr(conv_narrow, name, spy)
    monkeypatch.setattr(conv_narrow, "EXACT_MIN_PATCHES", 0)
    mac = emu.MAC(act="fx<17,0>", weight="fx<1,3>", acc="fx<32,3>", acc_overflow="wrap")
    rng = np.random.default_rng(5)
    x = rng.integers(-70000, 70000, (2, 3, 6, 5)).astype(np.float64)
    k = rng.integers(-8, 8, (4, 3, 3, 3)) / 8
    y, codes, st = emu.conv2d(x, k, mac, 1, 1, return_stats=True, return_codes=True)
    want, want_codes, want_st = _general(x, k, mac, (1, 1), (1, 1), None)
    assert np.array_equal(y, want)
    assert np.array_equal(codes, want_codes)
    assert st.input_overflow == want_st.input_overflow > 0
    assert ran == [True]
    assert routes == ["_patch_sums"]


@pytest.mark.parametrize("pairs", [True, False])
def test_sums_past_float32_on_the_pair_route(pairs: bool, ran: list[bool],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A 3x3 convolution over 128 int8 channels (K = 1152: sums of codes up to 1152 x 2^14, past float32's
    2^24) takes the pair route, whose int32 sums are exact below 2^31 (here an odd sum above 2^24, which
    float32 would round); without it, the general path. Values and codes are the general path's."""
    monkeypatch.setattr(integer, "PAIR_SUMS", pairs and PK.PAIR_LANES > 0)
    monkeypatch.setattr(conv_narrow, "EXACT_MIN_PATCHES", 0)
    mac = emu.MAC(act="fx<8,0>", weight="fx<1,7>", acc="fx<32,7>", acc_overflow="wrap")
    rng = np.random.default_rng(11)
    x = np.full((2, 128, 5, 4), 127.0)
    x[0, :, :, 1] = rng.integers(-128, 128, (128, 5))
    x[1, 0, 2, 2] = 126.0  # the full sums around it are 128 x 9 x 127^2 - 127: odd, above 2^24
    k = np.full((3, 128, 3, 3), 127 / 128)
    k[1] = rng.integers(-128, 128, (128, 3, 3)) / 128
    y, codes = emu.conv2d(x, k, mac, 1, 1, return_codes=True)
    want, want_codes, _ = _general(x, k, mac, (1, 1), (1, 1), None)
    assert np.array_equal(y, want)
    assert np.array_equal(codes, want_codes)
    sums = want_codes.astype(np.int64)  # fx<32,7> codes of sums of fx<8,0> x fx<1,7> products: the sums
    assert ((sums > 1 << 24) & (sums % 2 == 1) & (sums < 1 << 31)).any()
    assert ran == [bool(integer.PAIR_SUMS)]
