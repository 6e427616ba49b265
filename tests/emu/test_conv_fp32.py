"""Convolutions into a binary32 datapath from x rounded once (`emu.datapath.conv_fp32`): `emu.conv2d`
through it gives what the general path gives on the float64 im2col patches (values, per-channel product
and accumulator counts, input overflow), and it hands to the general path what it must not run."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import emu
from emu._ref.mac import mac_dot_ref
from emu.datapath import api

MACS = [emu.mac_preset("e4m3 x e4m3 -> fp32"), emu.mac_preset("e5m2 x e4m3 -> fp32"),
        emu.mac_preset("bf16 x bf16 -> fp32"), emu.MAC(act="fp16", weight="fp16", acc="fp32"),
        emu.MAC(act="e4m3", weight="e5m2", acc="fp32", input_rounding="toward_zero"),
        emu.MAC(act="e5m2", weight="e5m2", acc="fp32", input_rounding="nearest_away")]


def _general(x: np.ndarray, k: np.ndarray, mac: emu.MAC, stride: tuple[int, int], pad: tuple[int, int],
             bias: Any) -> tuple[np.ndarray, Any]:
    """The same convolution as one matmul of the float64 im2col patches (the general path)."""
    n, cout = x.shape[0], k.shape[0]
    cols, oh, ow = api.im2col(x, k.shape[2], k.shape[3], stride, pad)
    y, st = emu.matmul(cols, k.reshape(cout, -1).T, mac, bias, return_stats=True)
    return y.reshape(n, oh, ow, cout).transpose(0, 3, 1, 2), st


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per product, whether conv_fp32 ran it (True) or handed it on (False)."""
    calls: list[bool] = []
    original = api.conv_fp32

    def spy(*args: Any) -> Any:
        part = original(*args)
        calls.append(part is not None)
        return part
    monkeypatch.setattr(api, "conv_fp32", spy)
    return calls


@pytest.mark.parametrize("case", range(30))
def test_conv2d_from_x_rounded_once_is_the_general_path(case: int, ran: list[bool]) -> None:
    rng = np.random.default_rng(7000 + case)
    mac = MACS[case % len(MACS)]
    n, c, h, w = (int(v) for v in rng.integers([1, 1, 3, 3], [4, 5, 12, 12]))
    cout, kh, kw = (int(v) for v in rng.integers([1, 1, 1], [70, 4, 4]))  # both layouts of the kernels
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pad = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    x = rng.standard_normal((n, c, h, w)) * 3
    x.flat[rng.integers(0, x.size, 3)] = [0.0, -0.0, 2.0**-12]  # zeros and a subnormal of e4m3 / e5m2
    k = rng.standard_normal((cout, c, kh, kw)) * 30
    k.flat[0] = 1e6  # a weight beyond e4m3, e5m2 and fp16 (counted once)
    bias = rng.standard_normal(cout) if case % 2 else None
    y, st = emu.conv2d(x, k, mac, stride=stride, padding=pad, bias=bias, return_stats=True)
    assert ran == [True]
    want, st_g = _general(x, k, mac, stride, pad, bias)
    assert np.array_equal(y, want)
    assert np.array_equal(np.signbit(y), np.signbit(want))
    for name, u, v in zip(st._fields, st, st_g, strict=True):
        assert np.array_equal(np.asarray(u), np.asarray(v)), name
    assert st.input_overflow == (mac.weight.max < 1e6)
    cols = api.im2col(x, kh, kw, stride, pad)[0]
    for r, j in zip(rng.integers(0, len(cols), 4), rng.integers(0, cout, 4), strict=True):
        ref = mac_dot_ref(list(cols[r]), list(k.reshape(cout, -1)[j]), mac, 0.0 if bias is None else bias[j])
        b, rest = divmod(int(r), y.shape[2] * y.shape[3])
        assert float(ref.value) == y[b, j].reshape(-1)[rest]


def test_products_that_overflow_are_counted_as_on_the_general_path(ran: list[bool]) -> None:
    """Sums beyond binary32 (inf) are counted per channel, as the general path counts them."""
    mac = emu.mac_preset("bf16 x bf16 -> fp32")
    x = np.full((1, 2, 4, 4), 1e19)
    x[0, 0, 0, 0] = 1.0
    k = np.full((3, 2, 2, 2), 1e19)  # products of 1e38: two of them already leave binary32
    k[1] *= -1
    y, st = emu.conv2d(x, k, mac, return_stats=True)
    assert ran == [True]
    want, st_g = _general(x, k, mac, (1, 1), (0, 0), None)
    assert np.array_equal(y, want)
    assert np.array_equal(st.acc_per_channel, st_g.acc_per_channel)
    assert np.array_equal(st.product_per_channel, st_g.product_per_channel)
    assert st.acc_overflow + st.product_overflow > 0
    assert np.isinf(y).any()


def test_what_the_general_path_must_run_is_handed_on(ran: list[bool]) -> None:
    """An element of x that overflows (counted once per patch entry there), output codes, an addend per
    output, a datapath outside binary32: each runs the general path, with its results. A NaN in a format
    with NaN stays on this path and propagates as there; in a format without NaN the general path
    raises."""
    mac = emu.mac_preset("e4m3 x e4m3 -> fp32")
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    x[0, 0, 2, 2] = 1000.0  # saturates to 448 in e4m3; read by 9 patch entries
    y, st = emu.conv2d(x, k, mac, padding=1, return_stats=True)
    want, st_g = _general(x, k, mac, (1, 1), (1, 1), None)
    assert np.array_equal(y, want)
    assert st.input_overflow == st_g.input_overflow == 9
    x[0, 0, 2, 2] = np.nan  # e4m3 has NaN: it propagates as on the general path
    assert np.array_equal(emu.conv2d(x, k, mac, padding=1), _general(x, k, mac, (1, 1), (1, 1), None)[0],
                          equal_nan=True)
    x[0, 0, 2, 2] = 0.5
    _, codes = emu.conv2d(x, k, mac, padding=1, return_codes=True)
    emu.conv2d(x, k, mac, padding=1, c=rng.standard_normal((2, 3, 5, 5)))
    assert ran == [False, True, False, False]
    assert codes.dtype == np.uint64
    emu.conv2d(x, k, emu.MAC(act="e4m3", weight="e4m3", acc="fp16"), padding=1)  # not binary32: no call
    emu.conv2d(x, k, mac, padding=1)
    assert ran == [False, True, False, False, True]
    x[1, 1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        emu.conv2d(x, k, emu.MAC(act="fp<4,3,none>", weight="e4m3", acc="fp32"), padding=1)
