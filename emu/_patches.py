"""The im2col patches of an NCHW array in one pass (`patches`), padding and dilation included.

numpy's copy of the strided 6-d view (n, oh, ow, c, kh, kw) walks the channels with a stride of
h * w elements for every patch entry; this kernel writes each patch row in order, reading each
input row's taps once, with rows of the output shared among threads. The order of a row is the
documented one: k = (c, i, j) in C order, so the products of a datapath keep their summation order.

Worked example: x = [[0, 1, 2], [3, 4, 5], [6, 7, 8]] (one channel), a 2x2 kernel, stride 1, no
padding: the four patch rows are [0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]; with a
padding of 1 on each side the first row is [0, 0, 0, 0] (the top-left corner of the zero border)
followed by [0, 0, 0, 1].
"""

from __future__ import annotations

from numba import njit, prange

__all__ = ["patches"]


@njit(parallel=True, cache=True)
def patches(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out):
    """out[(b oh + r) ow + q, (ch kh + i) kw + j] = x[b, ch, r sh + i dh - top, q sw + j dw - left], or 0
    outside x: the patches of x (N, C, H, W) for output positions (r, q) of an oh x ow grid."""
    n, c, h, w = x.shape
    for row in prange(n * oh):
        b = row // oh
        r = row % oh
        for q in range(ow):
            o = row * ow + q
            for ch in range(c):
                for i in range(kh):
                    y = r * sh + i * dh - top
                    base = (ch * kh + i) * kw
                    if y < 0 or y >= h:
                        for j in range(kw):
                            out[o, base + j] = 0.0
                        continue
                    for j in range(kw):
                        xx = q * sw + j * dw - left
                        out[o, base + j] = x[b, ch, y, xx] if 0 <= xx < w else 0.0
