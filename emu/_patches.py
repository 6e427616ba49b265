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

from .threads import PATCH_THREAD_ENTRIES

__all__ = ["conv_geometry", "patches", "patches_t", "patches_t_here", "planes_here"]


def conv_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: tuple[int, int],
                  padding: tuple[int, int]) -> tuple[int, ...]:
    """(n, c, h, w, c_out, kh, kw, oh, ow) of the convolution of x (n, c, h, w) with weights
    (c_out, c, kh, kw): oh = (h + 2 ph - kh) // sh + 1, and ow alike.

    >>> conv_geometry((2, 3, 8, 8), (4, 3, 3, 3), (1, 1), (1, 1))
    (2, 3, 8, 8, 4, 3, 3, 8, 8)
    """
    n, c, h, w = x_shape
    cout, _, kh, kw = w_shape
    (sh, sw), (ph, pw) = stride, padding
    return n, c, h, w, cout, kh, kw, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


@njit(cache=True)
def _interior(w, kw, sw, dw, left, ow):
    """(q_lo, q_hi): the output columns q_lo <= q < q_hi whose kw taps x = q sw + j dw - left all fall
    inside [0, w) (no padding to write)."""
    q_lo = min(ow, (left + sw - 1) // sw)
    last = (kw - 1) * dw - left  # the last tap's x at q = 0
    q_hi = min(ow, (w - 1 - last) // sw + 1) if w - 1 - last >= 0 else q_lo
    return q_lo, max(q_lo, q_hi)


@njit(cache=True)
def _patch_row(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out, row, q_lo, q_hi):
    """The ow patch rows of output row ``row`` = b oh + r of `patches`; the columns in [q_lo, q_hi)
    (`_interior`) copy their taps without testing the border."""
    c, h, w = x.shape[1], x.shape[2], x.shape[3]
    b = row // oh
    r = row % oh
    for q in range(ow):
        o = row * ow + q
        inside = q_lo <= q < q_hi
        x0 = q * sw - left
        for ch in range(c):
            for i in range(kh):
                y = r * sh + i * dh - top
                base = (ch * kh + i) * kw
                if y < 0 or y >= h:
                    for j in range(kw):
                        out[o, base + j] = 0.0
                    continue
                src = x[b, ch, y]
                if inside:
                    for j in range(kw):
                        out[o, base + j] = src[x0 + j * dw]
                else:
                    for j in range(kw):
                        xx = x0 + j * dw
                        out[o, base + j] = src[xx] if 0 <= xx < w else 0.0


@njit(parallel=True, cache=True)
def _patches_threads(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out):
    q_lo, q_hi = _interior(x.shape[3], kw, sw, dw, left, ow)
    for row in prange(x.shape[0] * oh):
        _patch_row(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out, row, q_lo, q_hi)


@njit(cache=True)
def _patches_serial(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out):
    q_lo, q_hi = _interior(x.shape[3], kw, sw, dw, left, ow)
    for row in range(x.shape[0] * oh):
        _patch_row(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out, row, q_lo, q_hi)


def patches(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out) -> None:
    """out[(b oh + r) ow + q, (ch kh + i) kw + j] = x[b, ch, r sh + i dh - top, q sw + j dw - left], or 0
    outside x: the patches of x (N, C, H, W) for output positions (r, q) of an oh x ow grid; rows shared
    among threads when there are at least `PATCH_THREAD_ENTRIES` entries."""
    kernel = _patches_serial if out.size < PATCH_THREAD_ENTRIES else _patches_threads
    kernel(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out)


@njit(cache=True)
def _patch_entry(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out, k):
    """Row k = (ch kh + i) kw + j of `patches_t`."""
    n, h, w = x.shape[0], x.shape[2], x.shape[3]
    ch = k // (kh * kw)
    i = (k // kw) % kh
    j = k % kw
    off = j * dw - left  # xx = q sw + off
    q_lo = min(ow, max(0, (-off + sw - 1) // sw))  # the first q with xx >= 0
    q_hi = max(q_lo, min(ow, (w - 1 - off) // sw + 1)) if w - 1 - off >= 0 else q_lo  # past xx <= w - 1
    for b in range(n):
        for r in range(oh):
            y = r * sh + i * dh - top
            base = (b * oh + r) * ow
            if y < 0 or y >= h:
                for q in range(ow):
                    out[k, base + q] = 0
                continue
            src = x[b, ch, y]
            for q in range(q_lo):
                out[k, base + q] = 0
            for q in range(q_lo, q_hi):
                out[k, base + q] = src[q * sw + off]
            for q in range(q_hi, ow):
                out[k, base + q] = 0


@njit(parallel=True, cache=True)
def _patches_t_threads(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out):
    for k in prange(out.shape[0]):
        _patch_entry(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out, k)


@njit(nogil=True, cache=True)
def _patches_t_serial(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out):
    for k in range(out.shape[0]):
        _patch_entry(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out, k)


def patches_t(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out) -> None:
    """The transpose of `patches`: out[(ch kh + i) kw + j, (b oh + r) ow + q] = x[b, ch, r sh + i dh - top,
    q sw + j dw - left], or 0 outside x; one patch entry k per row, written in order (rows in parallel
    from `PATCH_THREAD_ENTRIES` entries), the positions q inside x without a test. For kernels that run
    along the output positions (a convolution with few output channels)."""
    kernel = _patches_t_serial if out.size < PATCH_THREAD_ENTRIES else _patches_t_threads
    kernel(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out)


def patches_t_here(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out) -> None:
    """`patches_t` on the calling thread, without the GIL: for callers that share a batch among their own
    threads (a block of images each), where a parallel kernel must not be launched."""
    _patches_t_serial(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, out)


@njit(nogil=True, cache=True)
def planes_here(x, top, left, hp, wp, out) -> None:
    """out[ch, b hp wp + (y + top) wp + xx + left] = x[b, ch, y, xx]: the images of x (B, C, H, W) placed in
    zero-padded hp x wp planes, channel after channel (each channel's planes image after image), on the
    calling thread without the GIL. Only the entries that hold x are written: the caller zeroes ``out``
    once, and its borders stay zero from block to block.

    A stride-1 convolution then reads tap (i, j) of every output position as one strided matrix: rows
    ch, columns b hp wp + r wp + q + (i wp + j), so that each tap is one product of (C_out, C) weights and
    a (C, B hp wp) view, with no patches (columns with q >= OW or r >= OH are sums nobody reads)."""
    n, c, h, w = x.shape
    ps = hp * wp
    for ch in range(c):
        for b in range(n):
            for y in range(h):
                o = b * ps + (y + top) * wp + left
                dst, src = out[ch, o:o + w], x[b, ch, y]  # indexed from 0: the copy vectorises
                for q in range(w):
                    dst[q] = src[q]
