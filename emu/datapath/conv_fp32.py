"""Convolutions into a binary32 datapath from x converted once (`conv_fp32`).

`emu.conv2d` is the product of the im2col patches (N*OH*OW, C_in*kh*kw) and the
weights (C_in*kh*kw, C_out). For a datapath of float operands whose values are
binary32 values into a binary32 accumulator (`emu.datapath.floating.direct32`:
e4m3, e5m2, bf16, fp16 operands into fp32, no output conversion), the general
path rounds every entry of the float64 patches to the act format. A conversion
is elementwise and the patches copy elements of x (and zeros, which every
format holds as they are), so rounding x once, straight into binary32, and
taking the float32 patches of the result gives the same operand, bit for bit:
a ninth of the conversions for a 3x3 kernel, and half the patches' memory. The
product is then the binary32 kernels' (`emu.datapath.floating`), so every
output and count is the general path's.

The general path counts an element of x that overflows once per patch entry
that holds it; when an element overflows, this module leaves the convolution
to the general path, which counts it so. A NaN goes there too when the act
format has no code for it (the general path raises); a format with NaN keeps
it, here as there.

Worked example: x = [[0.3, 600.0]] into e4m3 is [[0.3125, 448.0]]: the second
value saturates, so the general path runs; x = [[0.3, 1.7]] gives [[0.3125,
1.75]] once, and a 1x1 kernel of 2.0 gives the outputs 0.625 and 3.5.
"""

from __future__ import annotations

import numpy as np

from .._patches import conv_geometry, patches, patches_t
from ..mac import MAC
from ..modes import Overflow
from .floating import direct32, fp32_layout, operand32, run_fp32
from .stats import Part

__all__ = ["conv_fp32"]


def conv_fp32(x: np.ndarray, w: np.ndarray, mac: MAC, init: np.ndarray, stride: tuple[int, int],
              padding: tuple[int, int], want_codes: bool) -> Part | None:
    """The `Part` of the convolution of x (N, C_in, H, W) with w (C_out, C_in, kh, kw) from the start values
    ``init`` ((1, C_out) reals), rows in (n, oh, ow) order; None when the general path must run it: a
    datapath `direct32` does not take, start values per row, output codes wanted, an element of x that
    overflows the act format or is a NaN it has no code for (see the module docstring), a conversion the
    binary32 rounding does not cover.

    >>> mac = MAC(act="e4m3", weight="e4m3", acc="fp32")
    >>> part = conv_fp32(np.array([[[[0.3, 1.7]]]]), np.full((1, 1, 1, 1), 2.0), mac, np.zeros((1, 1)),
    ...                  (1, 1), (0, 0), False)
    >>> part.vals.ravel().tolist()
    [0.625, 3.5]
    """
    if want_codes or init.shape[0] != 1 or not direct32(mac) or not mac.acc.has_nan:
        return None
    n, c, h, wd, cout, kh, kw, oh, ow = conv_geometry(x.shape, w.shape, stride, padding)
    K, M = c * kh * kw, n * oh * ow
    (sh, sw), (ph, pw) = stride, padding
    rx = operand32(np.ascontiguousarray(x, np.float64).reshape(n * c, h * wd), mac.act, mac.input_rounding,
                   mac.input_overflow)
    if rx is None or rx[1]:
        return None
    rw = operand32(w.reshape(cout, K).T, mac.weight, mac.input_rounding, mac.input_overflow)
    rb = operand32(np.asarray(init, np.float64), mac.acc, mac.input_rounding, Overflow.SATURATE)
    if rw is None or rb is None:
        return None
    x32 = rx[0].reshape(n, c, h, wd)
    cols, parallel = fp32_layout(M, K, cout)
    a32 = np.empty((K, M) if cols else (M, K), np.float32)  # transposed when the chains run down columns
    (patches_t if cols else patches)(x32, kh, kw, sh, sw, 1, 1, ph, pw, oh, ow, a32)
    out = np.empty((M, cout), np.float64)
    pcnt, acnt = run_fp32(a32, rw[0], rb[0], cols, parallel, out)
    counts = [None if v is None or not v.any() else v for v in (pcnt, acnt)]
    return Part(out, None, counts[0], counts[1], None, rw[1] + rb[1], "sequential")
