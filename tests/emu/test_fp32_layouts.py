"""The binary32 datapath's small-product kernel (`mac_fp32_from_reals`) in every operand layout and size of
transposition: outputs equal a sequential binary32 chain written with numpy (e4m3 products are exact in
binary32, and numpy rounds each float32 addition to nearest even), and the transposition copy equals x.T
on both sides of its 2^18-element switch."""

from __future__ import annotations

import numpy as np
import pytest

import emu
from emu import _fp32_kernels as F32


@pytest.mark.parametrize("shape", [(3, 5), (512, 144), (70_000, 5), (600, 500)])
def test_transposed_copy_equals_the_transpose(shape: tuple[int, int]) -> None:
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    got = F32._transposed(x)
    assert got.flags.c_contiguous
    assert np.array_equal(got, x.T)


def _chain(a: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """b + a[:, 0] w[0] + a[:, 1] w[1] + ... in binary32, every addition rounded, in this order."""
    acc = np.broadcast_to(b.astype(np.float32), (a.shape[0], w.shape[1])).copy()
    for k in range(a.shape[1]):
        acc = acc + np.outer(a[:, k], w[k]).astype(np.float32)
    return acc.astype(np.float64)


@pytest.mark.parametrize(("m", "k", "n"), [(20_000, 16, 3), (512, 144, 6), (6, 2048, 9), (32, 120, 84)])
@pytest.mark.parametrize("layout", ["c", "a_t", "w_t"])
def test_small_fp32_products_equal_the_sequential_chain(m: int, k: int, n: int, layout: str) -> None:
    rng = np.random.default_rng(m + k + n)
    a = emu.quantize(rng.standard_normal((m, k)), "e4m3")
    w = emu.quantize(rng.standard_normal((k, n)), "e4m3")
    b = emu.quantize(rng.standard_normal(n), "fp32")
    want = _chain(a, w, b)
    a_in = np.asfortranarray(a) if layout == "a_t" else a  # read through its transpose
    w_in = np.asfortranarray(w) if layout == "w_t" else w
    got = emu.matmul(a_in, w_in, "e4m3 x e4m3 -> fp32", b)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("cols", [False, True])
def test_operands_passed_as_they_are_give_the_converted_products(cols: bool) -> None:
    """`emu.datapath.floating.mac_fp32_kernel` with an operand's packed parameters empty takes its values
    as they are: for values already in the operand's format (the bias's binary32 values), the outputs of
    the converting call, a NaN counted as the conversion counts it; values not in the format pass
    unrounded (the caller's promise broken: the outputs differ)."""
    from emu.datapath.floating import fp32_kernel_args, mac_fp32_kernel

    rng = np.random.default_rng(4)
    mac = emu.MAC(act="e4m3", weight="e5m2", acc="fp32")
    args = fp32_kernel_args(mac)
    assert args is not None
    a = emu.quantize(rng.standard_normal((12, 30)), "e4m3")
    w = emu.quantize(rng.standard_normal((30, 7)), "e5m2")
    b = emu.quantize(rng.standard_normal(7), "bf16")
    none = np.zeros(0, np.uint64)
    want, got = np.empty((12, 7)), np.empty((12, 7))
    c1 = mac_fp32_kernel(a, False, w, False, b, *args, cols, want)
    c2 = mac_fp32_kernel(a, False, w, False, b, none, 0.0, none, 0.0, none, 0.0, cols, got)
    assert np.array_equal(got, want)
    assert np.array_equal(want, emu.matmul(a, w, mac, b))
    assert tuple(c1) == tuple(c2) == (0, 0, 0, 0, 0)
    a[2, 3] = np.nan
    c3 = mac_fp32_kernel(a, False, w, False, b, none, 0.0, *args[2:], cols, got)
    assert tuple(c3)[1:3] == (1, 0)
    assert tuple(c3)[4] > 0
    a[2, 3] = 0.1  # not an e4m3 value: taken as it is
    mac_fp32_kernel(a, False, w, False, b, none, 0.0, *args[2:], cols, got)
    mac_fp32_kernel(a, False, w, False, b, *args, cols, want)
    assert not np.array_equal(got, want)
