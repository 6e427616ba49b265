"""The wide exact path: ``acc="exact"`` for operands whose integer products need more than 62 bits but
whose every product float64 holds exactly (`emu.MAC.wide_exact`: fp16 x fp16, bf16 x bf16, e5m2 x e5m2,
fp32 x fp32, ...).

Each product a_k w_k is formed in float64 (exact), the start value and the K products are summed exactly
(an expansion per output: Shewchuk's two-sums, `emu._exact_kernels.grow`), and the exact sum, rounded to
odd at float64's 53 bits, is converted once into ``output`` (a float format of at most 51 significant
bits): round-to-odd followed by one rounding into such a format is the correctly rounded exact sum in
every deterministic mode. The sum is exact, so every ``order`` gives the same bits. The start value (bias
or addend) enters as it is: the register spans float64's whole grid. Non-finite terms follow IEEE 754 (a
NaN operand or inf x 0: NaN; infinities of one sign: that infinity; of both signs: NaN), and an exact zero
sum is -0 only when every term is -0, or, under ``output_rounding="floor"``, unless every term is +0 (the
start value counts as a term: without a bias it is +0). The exact twin is `emu._ref.mac.mac_dot_ref`.

Worked example: fp16 products 2^15 x 2^15, 1 x 1 and -2^15 x 2^15 sum exactly to 1, which fp32 holds;
a float32 accumulator loses the 1 (2^30 + 1 rounds to 2^30) and gives 0.

>>> import emu
>>> m = emu.MAC(act="fp16", weight="fp16", acc="exact", output="fp32")
>>> float(emu.dot([2.0**15, 1.0, -2.0**15], [2.0**15, 1.0, 2.0**15], m))
1.0
>>> float(emu.dot([2.0**15, 1.0, -2.0**15], [2.0**15, 1.0, 2.0**15], "fp16 x fp16 -> fp32"))
0.0
"""

from __future__ import annotations

import math

import numpy as np

from .. import _exact_kernels as XK
from ..mac import MAC
from ..modes import Rounding
from ..operand_grid import exponent_span

#: the bound of every partial sum: below it no two-sum of the expansion overflows
_ROOM_EXP = 1022


def wide_start(init: np.ndarray, mac: MAC, K: int) -> np.ndarray:
    """The start values (bias or addend, (1, N) or (M, N) reals) as float64, entering the sum exactly;
    refused when one is not finite or when they and K products could reach 2^1022 (the expansion's
    two-sums would overflow).

    Raises:
        ValueError: a start value that is not finite (naming how many), or K products and the start
            values that could reach 2^1022 (naming K and the products' bound).
    """
    s = np.asarray(init, np.float64)
    finite = np.isfinite(s)
    if not finite.all():
        raise ValueError(f"matmul: acc=exact with {mac.act} x {mac.weight} holds finite sums, but"
                         f" {int((~finite).sum())} start value(s) (bias or c) are not finite; use a float"
                         " accumulator")
    hi = exponent_span(mac.act)[1] + exponent_span(mac.weight)[1]  # every |product| < 2^hi
    top = float(np.abs(s).max(initial=0.0))
    if top + math.ldexp(float(K), hi) >= math.ldexp(1.0, _ROOM_EXP):
        raise ValueError(f"matmul: acc=exact with {mac.act} x {mac.weight} sums exactly in float64"
                         f" expansions below 2^{_ROOM_EXP}, but {K} products below 2^{hi} and start values"
                         f" (bias or c) up to {top:.6g} could reach it; give each call fewer terms or smaller"
                         " start values")
    return s


def run_wide(a: np.ndarray, w: np.ndarray, start: np.ndarray, mac: MAC) -> np.ndarray:
    """The exact sums start + a @ w of float64 operands in their formats, each rounded to odd at 53 bits
    (non-finite and zero sums as the module says), (M, N); the caller converts them into ``output``.
    Rows run on threads from 2^18 MACs; every output is one thread's, so no bit depends on the count."""
    M, K = a.shape
    N = w.shape[1]
    out = np.empty((M, N), np.float64)
    kernel = XK.wide_rows if M > 1 and M * K * N >= 1 << 18 else XK.wide_rows_serial
    kernel(np.ascontiguousarray(a, np.float64), np.ascontiguousarray(w.T, np.float64),
           np.ascontiguousarray(start, np.float64), out, mac.output_rounding == Rounding.FLOOR)
    return out
