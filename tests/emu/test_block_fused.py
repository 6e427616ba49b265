"""The block MAC's fused nearest-even kernel (`emu.block.mac_kernels.block_mm_float_ne`): MX operands into a
float accumulator rounding to nearest even, block sums formed inside the accumulating loop. Checked
against the exact reference (values and overflow counts) and, on larger products, bit for bit against
the general kernel it stands in for."""

from __future__ import annotations

import numpy as np
import pytest

import emu
from emu._mac_kernels import add_float_params
from emu._ref import block as ref
from emu._rounding import float_params, half_grid_mask
from emu.block import block_format, block_matmul
from emu.block.mac import acc_spec, operand
from emu.block.mac_kernels import block_mm_float_ne, block_mm_kernel
from emu.modes import Overflow, Rounding

PAIRS = [("mxfp8_e4m3", "mxfp8_e4m3"), ("mxfp4", "mxfp4"), ("mxfp6_e2m3", "mxfp6_e3m2"), ("mxint8", "mxint8")]
ACCS = [("fp32", None), ("bf16", None), ("fp16", "inf"), ("fp16", "saturate"), ("e4m3", "saturate"),
        ("e4m3", "nan"), ("fp<6,9>", "inf")]


def _data(rng: np.random.Generator, shape: tuple[int, int], spread: float) -> np.ndarray:
    x = rng.normal(size=shape) * np.exp(rng.normal(size=shape) * spread)
    x.flat[::5] = np.round(x.flat[::5] * 4) / 4  # grid values: exact sums, ties, cancellation
    return x


@pytest.mark.parametrize(("fa", "fb"), PAIRS)
def test_fused_path_matches_the_reference(fa: str, fb: str) -> None:
    """Values and overflow counts against `ref_block_matmul`, for accumulators that overflow (fp16, e4m3)
    and those that do not, with block sizes that leave a partial last block."""
    rng = np.random.default_rng(sum(map(ord, fa + fb)))
    for acc, ovf in ACCS:
        for K in (5, 32, 77):
            a = _data(rng, (4, K), 2.0) * 8.0
            b = _data(rng, (K, 3), 2.0)
            b[:, 2] = -b[:, 1]  # an exact zero sum, +0 under nearest even
            y, st = block_matmul(a, b, fa, fb, acc, acc_overflow=ovf, return_stats=True)
            r, events = ref.ref_block_matmul(a, b, block_format(fa), block_format(fb), acc, "nearest_even",
                                             ovf, return_stats=True)
            assert np.array_equal(y.view(np.uint64), np.asarray(r, np.float64).view(np.uint64)), (acc, ovf, K)
            assert st.acc_overflow == events, (acc, ovf, K)


@pytest.mark.parametrize("acc", ["fp32", "bf16", "fp16"])
def test_fused_kernel_equals_the_general_kernel(acc: str) -> None:
    """On 60 x 300 by 300 x 37 MX products, with start values (a bias) and outputs that overflow fp16:
    the fused kernel and `block_mm_kernel` give the same bits and the same counts."""
    rng = np.random.default_rng(7)
    fmt = emu.get_format(acc)
    for fa in ("mxfp8_e4m3", "mxfp4"):
        f = block_format(fa)
        a = _data(rng, (60, 300), 1.5) * 50.0
        w = _data(rng, (300, 37), 1.5)
        av, sa, _, B, _ = operand(a, f, "a")
        bv, sb, _, _, _ = operand(w, f, "b")
        init = emu.quantize(rng.normal(size=(60, 37)) * 100.0, fmt)
        ovf = Overflow.INF
        spec = acc_spec(fmt, Rounding.NEAREST_EVEN, ovf)
        out1, n1 = np.zeros((60, 37)), np.zeros((60, 37), np.int64)
        av, bv = np.ascontiguousarray(av), np.ascontiguousarray(bv)
        block_mm_float_ne(av, np.ascontiguousarray(bv.T), sa, np.ascontiguousarray(sb.T),
                          B, add_float_params(fmt, int(Rounding.NEAREST_EVEN), int(ovf)), init, out1, n1)
        out2, n2 = np.zeros((60, 37)), np.zeros((60, 37), np.int64)
        fprm = float_params(fmt, int(Rounding.NEAREST_EVEN), int(ovf))
        block_mm_kernel(av, bv, np.zeros((0, 0, 0)), sa, sb, B, True, False, *spec, 1.0, fprm,
                        half_grid_mask(fmt.man_bits), init, np.zeros((1, 1), np.int64), out2, n2)
        assert np.array_equal(out1.view(np.uint64), out2.view(np.uint64)), (acc, fa)
        assert np.array_equal(n1, n2), (acc, fa)
        if acc == "fp16":
            assert n1.sum() > 0  # the case reaches the overflow rule
