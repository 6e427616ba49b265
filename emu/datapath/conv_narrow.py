"""Convolutions from the codes of x, without float64 patches (`conv_narrow`).

`emu.conv2d` is the product of the im2col patches (N*OH*OW, C_in*kh*kw) and the
weights (C_in*kh*kw, C_out). For a fixed-point datapath (fixed operands converted
deterministically, exact products aligned by a shift into a signed fixed
accumulator, the sequential order, no product or output format) this module
converts x once per element (not once per patch entry) and takes the patches of its
codes:

- when the formats alone prove every sum exact and inside the accumulator (the
  condition of `emu.datapath.integer.blas_into_acc`: partial sums of codes below
  2^24, or 2^31 on the pair route below), float32 codes of x, then blocks of
  images shared among threads: each block's transposed float32 patches
  (`emu._patches.patches_t_here`), small enough to stay in the cache, and one
  float32 BLAS product; or, for a stride of 1 (and at least `TAP_MIN_CHANNELS`
  input channels), no patches: the block's images in zero-padded planes and one
  BLAS product per kernel tap over a strided view of them (`_tap_sums`; a 3x3
  kernel reads x 9 times from the cache instead of writing and reading 9 copies
  of it). Where the host has the 16-bit pair multiply-add and the codes are
  int16s, neither: the block's int16 codes in planes split into the stride's
  phases, channels interleaved in pairs, and one call of
  `emu._pair_kernels.pair_sums` over every (channel pair, tap), at any stride
  (`_pair_sums`; its int32 sums are exact below 2^31, so it also takes the
  convolutions whose sums float32 would not hold, as 3x3 kernels over 128 or
  more int8 channels). The outputs are written in the NCHW order of the maps
  (the part's rows are a view of them);
- else, for an accumulator of at most 16 bits that the 16-bit-lane kernel runs
  (`emu._fixed_kernels.mac_fixed16`), transposed int16 patches
  (`emu._patches.patches_t`: a quarter of the float64 patches' memory) and the
  kernel with the output channels as its rows and the output positions as its
  columns (a convolution has few channels and many positions, and the kernel's
  vectors run along its columns).

Each output is the same sum, or the same sequence of additions (k = 0 .. K-1 in
(c_in, i, j) order), as on the general path, so values, codes and accumulator
overflow counts are identical, and so is the input overflow count (an element of x
that overflows counts once per patch entry that holds it, as on the general path);
a conversion error (a NaN, an overflow under ``input_overflow="error"``), or codes
too wide for either, leave the product to the general path, which raises the
error only where a patch holds the element, and with its own message.

Worked example: x = [[1, 2], [3, 4]] (one image, one channel) and a 2x2 kernel of
ones into fx<4,0> (codes -8 .. 7) saturating: the one output sums 1 + 2 + 3 + 4 with
the partial sums 1, 3, 6, then 10, which saturates to 7 (one overflow counted).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from .. import _fixed_kernels as FK
from .. import _mac_kernels as MK
from .. import _pair_kernels as PK
from .._fast_kernels import fixed_fast_serial
from .._patches import conv_geometry, patches_t, patches_t_here, planes_here
from ..convert import convert_array
from ..formats import FixedFormat
from ..mac import MAC
from ..modes import Overflow, Rounding
from ..operand_grid import max_code
from ..threads import LANE_THREAD_MACS, share
from .integer import (
    acc_start,
    blas_one_thread,
    blas_proves,
    exact_bound,
    int_plan,
    int_term,
    narrow_lanes,
    pairs_hold,
    term_shifts,
)
from .operands import absmax, one_pass_codes, operand
from .stats import Part

__all__ = ["conv_narrow", "covers"]


#: the patch entries of one block of images in `_exact_blocks` (1 MB of float32, which stays in the L2 cache
#: between its writing and BLAS's reading; measured on ResNet-20's convolutions, a batch of 64: 79 ms for
#: the nineteen in blocks against 224 ms with the whole batch's patches at once)
BLOCK_PATCH_ENTRIES = 1 << 18
#: the fewest patch entries (N*OH*OW x C_in*kh*kw) for which the exact-sum product takes the codes of x:
#: below it the two paths cost the same (measured: 18k entries 0.15 ms either way; 0.29M 0.6 to 8 ms here
#: against 8 to 12 ms on the general path's float64 patches; ResNet-20's first convolution, 1.8M entries,
#: 3.5 against 32 ms)
EXACT_MIN_PATCHES = 1 << 14
#: the values of one block's zero-padded planes or sums in `_tap_sums` (256 KB of float32; measured on
#: ResNet-20's stride-1 convolutions, a batch of 64 on one thread: blocks of 2^14 to 2^18 values took 5 to
#: 9 ms for the first stage's, the fastest about 2^16)
TAP_BLOCK_VALUES = 1 << 16
#: the fewest input channels for which a stride-1 exact-sum convolution takes its sums tap by tap: each tap
#: is a product over the input channels alone
TAP_MIN_CHANNELS = 8


def _coverage(size: int, k: int, stride: int, pad: int, out: int) -> np.ndarray:
    """For each input index along one axis, the number of (output index, kernel tap) pairs that read it."""
    cov = np.zeros(size, np.int64)
    for r in range(out):
        for i in range(k):
            y = r * stride + i - pad
            if 0 <= y < size:
                cov[y] += 1
    return cov


def covers(mac: MAC) -> bool:
    """Whether `conv_narrow` may run a convolution through ``mac`` (the formats and modes alone; the
    operands' codes decide the rest)."""
    acc = mac.acc
    return (not mac.block_scaled and not mac.float_acc and not mac.exact_acc and mac.output is None
            and mac.product is None and isinstance(mac.act, FixedFormat)
            and isinstance(mac.weight, FixedFormat) and isinstance(acc, FixedFormat) and acc.qmin < 0
            and mac.input_rounding != Rounding.STOCHASTIC and mac.order.kind == "sequential")


def _exact_blocks(x: np.ndarray, qw: np.ndarray, bias_q: np.ndarray, mac: MAC, plan: Any, want_codes: bool,
                  geo: tuple[int, ...], reals: bool,
                  pair: bool) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """(values, codes or None, input overflow, NaN count) of the convolution of x (N, C_in, H, W) and the
    codes qw (C_out, K) from the start codes ``bias_q`` ((1, C_out) or one row per output position), where
    `blas_proves` holds: the sums of codes are exact in any order and in any grouping (every partial sum is
    an integer below 2^24 for float32, below 2^31 on the pair route, ``pair``). x holds float32 codes, or
    with ``reals`` the real inputs, which each block converts to its float32 codes itself
    (`in_block_codes`; the counts are the conversion's).

    Blocks of images are shared among `share`'s threads, each block's sums taken on one thread (`_pair_sums`
    with ``pair``, else with BLAS: `_tap_sums` where `shifts_taps` holds, else `_patch_sums`), then acc =
    (sum << shift) + start
    (`MK.exact_sums_maps`) written into the block's maps. Every output is an exact sum, so the blocks, the
    threads and the route change no bit."""
    kh, kw, sh, sw, ph, pw, oh, ow = geo
    n, cout, P = x.shape[0], qw.shape[0], oh * ow
    shift, step = -plan.tprm.sa, 2.0**-plan.fl_acc
    mask = np.uint64((1 << mac.acc.bits) - 1)
    vals = np.empty((n, cout, P))
    codes = np.empty((n, cout, P) if want_codes else (0, 0, 0), np.uint64)
    if pair:
        per, block_sums = _pair_sums(x.shape, qw, geo)
    else:
        sums = _tap_sums if shifts_taps(x.shape[1], (sh, sw), (kh, kw)) else _patch_sums
        per, block_sums = sums(x.shape, np.ascontiguousarray(qw, np.float32), geo)
    act, mode, image = mac.act, int(mac.input_rounding), x[0].size
    counts = np.zeros((numba.get_num_threads(), 2), np.int64)  # per thread: input overflow, NaN

    def work(t: int, threads: int) -> None:
        blocks = block_sums()
        buf = np.empty(per * image if reals else 0, np.float32)
        for b0 in range(t * per, n, threads * per):
            b1 = min(n, b0 + per)
            xb = x[b0:b1]
            if reals:  # the block's codes, converted on this thread (the maps' pass stays in the cache)
                ovf, _, nan = fixed_fast_serial(xb.reshape(-1), buf[:(b1 - b0) * image], act.frac_bits,
                                                   act.qmin, act.qmax, mode, True)
                counts[t] += (ovf, nan)
                xb = buf[:(b1 - b0) * image].reshape(xb.shape)
            s, stride_img, stride_row = blocks(b0, b1, xb)
            MK.exact_sums_maps(s, shift, bias_q, b0 * P, step, mask, vals[b0:b1],
                               codes[b0:b1] if want_codes else codes, want_codes, stride_img, stride_row, ow)

    with blas_one_thread(n * P * qw.size):
        share(work)
    ovf, nan = counts.sum(axis=0).tolist()
    return vals.reshape(n, cout, oh, ow), codes.reshape(n, cout, oh, ow) if want_codes else None, ovf, nan


def in_block_codes(mac: MAC) -> bool:
    """Whether the exact-sum convolution's blocks convert their images of x themselves: where
    `emu.datapath.operands.operand` makes the act codes in one pass (`one_pass_codes`)."""
    return one_pass_codes(mac.act, mac)


def shifts_taps(c_in: int, stride: tuple[int, int], kernel: tuple[int, int]) -> bool:
    """Whether the exact-sum convolution takes its sums tap by tap from zero-padded planes (`_tap_sums`):
    stride 1, a kernel of more than one tap, at least `TAP_MIN_CHANNELS` input channels."""
    return stride == (1, 1) and kernel != (1, 1) and c_in >= TAP_MIN_CHANNELS


def _patch_sums(shape: tuple[int, ...], w32: np.ndarray, geo: tuple[int, ...]) -> tuple[int, Any]:
    """(images per block, a maker of one thread's block function ``blocks(b0, b1, xb)`` of images b0 .. b1
    with float32 codes xb): each block's transposed patches (K, B*P) (`patches_t_here`), written into one
    buffer per thread small enough to stay in the cache, and one float32 product w32 @ patches, whose
    column b P + p is image b's output position p."""
    kh, kw, sh, sw, ph, pw, oh, ow = geo
    n, K, P = shape[0], w32.shape[1], oh * ow
    per = max(1, min(n, BLOCK_PATCH_ENTRIES // (K * P)))

    def block_sums() -> Any:
        cols = np.empty((K, per * P), np.float32)

        def blocks(b0: int, b1: int, xb: np.ndarray) -> tuple[np.ndarray, int, int]:
            block = cols[:, :(b1 - b0) * P]
            patches_t_here(xb, kh, kw, sh, sw, 1, 1, ph, pw, oh, ow, block)
            return w32 @ block, P, ow
        return blocks
    return per, block_sums


def _tap_sums(shape: tuple[int, ...], w32: np.ndarray, geo: tuple[int, ...]) -> tuple[int, Any]:
    """`_patch_sums` for a stride-1 convolution without patches: each block's images in zero-padded
    hp x wp planes (`planes_here`, hp = OH + kh - 1, wp = OW + kw - 1), one row of L = B hp wp + t entries
    per channel (t = (kh - 1) wp + kw - 1 zeros after the planes), the rows one after the other in one
    buffer of C_in L + t entries. The entries of tap (i, j) for every column are then the contiguous
    (C_in, L) matrix that starts i wp + j entries in (column b hp wp + r wp + q: image b's output
    position (r, q); the columns past an image's outputs are sums nobody reads), and the sums are one
    float32 product per tap of its weights (C_out, C_in) with that matrix, added up in float32 (exact:
    every partial sum is one of the sum's subsets). Contiguous operands keep BLAS and the threads apart:
    a strided view made per product held the GIL and ran no faster on two threads than on one."""
    kh, kw, _, _, ph, pw, oh, ow = geo
    n, c, cout = shape[0], shape[1], w32.shape[0]
    hp, wp = oh + kh - 1, ow + kw - 1
    ps, tail = hp * wp, (kh - 1) * wp + kw - 1
    per = max(1, min(n, TAP_BLOCK_VALUES // (max(c, cout) * ps)))
    row = per * ps + tail
    taps = np.ascontiguousarray(w32.reshape(cout, c, kh * kw).transpose(2, 0, 1))  # (kh kw, C_out, C_in)

    def block_sums() -> Any:
        flat = np.zeros(c * row + tail, np.float32)  # the borders and the tails stay zero
        planes = flat[:c * row].reshape(c, row)
        views = [flat[i * wp + j:i * wp + j + c * row].reshape(c, row) for i in range(kh) for j in range(kw)]
        sums, part = np.empty((cout, row), np.float32), np.empty((cout, row), np.float32)

        def blocks(b0: int, b1: int, xb: np.ndarray) -> tuple[np.ndarray, int, int]:
            planes_here(xb, ph, pw, hp, wp, planes)  # a last, smaller block leaves earlier images unread
            np.matmul(taps[0], views[0], out=sums)
            for t in range(1, kh * kw):
                np.matmul(taps[t], views[t], out=part)
                np.add(sums, part, out=sums)
            return sums, ps, wp
        return blocks
    return per, block_sums


def _pair_sums(shape: tuple[int, ...], qw: np.ndarray, geo: tuple[int, ...]) -> tuple[int, Any]:
    """`_patch_sums` without patches, by the CPU's 16-bit pair multiply-add (`emu._pair_kernels.pair_sums`)
    on int16 codes, for any stride: each block's images in zero-padded planes split into the stride's
    phases, with the channels interleaved in pairs (`pair_planes`, one row of ``row`` pairs per channel
    pair), and one call taking every (channel pair, tap) at its offset in them, the weights packed to
    match (`pack_pair_weights` of w (C_out, C_in / 2, taps, 2)). The sums are int32 (C_out rounded up to
    `PK.MR` rows, the block's columns rounded up to `PK.pair_block`); the formats prove every partial sum
    below 2^31 in magnitude, so they are the exact sums."""
    kh, kw, sh, sw, ph, pw, oh, ow = geo
    n, c, cout = shape[0], shape[1], qw.shape[0]
    hp2, wp2 = oh + (kh - 1) // sh, ow + (kw - 1) // sw  # each phase's plane
    ps, tail, taps, c2 = hp2 * wp2, (kh - 1) // sh * wp2 + (kw - 1) // sw, kh * kw, -(-c // 2)
    per = max(1, min(n, TAP_BLOCK_VALUES // (max(c, cout) * ps * sh * sw)))
    cols = -(-per * ps // PK.pair_block()) * PK.pair_block()
    block = cols + tail  # pairs per phase: every read (column < cols, offset <= tail) stays in its phase
    row = sh * sw * block
    w3, pairs = qw.reshape(cout, c, taps), np.zeros((cout, c2, taps, 2), np.int16)
    pairs[:, :, :, 0] = w3[:, 0::2]
    pairs[:, :c // 2, :, 1] = w3[:, 1::2]
    packed = PK.pack_pair_weights(pairs.reshape(cout, -1))
    i, j = np.arange(kh)[:, None], np.arange(kw)[None, :]
    tap_at = (i % sh * sw + j % sw) * block + i // sh * wp2 + j // sw  # (kh, kw)
    offs = (2 * (np.arange(c2)[:, None, None] * row + tap_at)).reshape(-1).astype(np.int64)

    def block_sums() -> Any:
        flat = np.zeros(2 * c2 * row, np.int16)  # the borders, the tails and an odd C's last channel stay 0
        sums = np.empty((packed.shape[0] * PK.MR, cols), np.int32)
        words = flat.view(np.int32)  # each pair one int32, as pair_planes writes them

        def blocks(b0: int, b1: int, xb: np.ndarray) -> tuple[np.ndarray, int, int]:
            PK.pair_planes(xb, ph, pw, sh, sw, kh, kw, hp2, wp2, block, row, words)
            PK.pair_sums(flat, offs, packed, sums)
            return sums, ps, wp2
        return blocks
    return per, block_sums


def conv_narrow(x: np.ndarray, w: np.ndarray, mac: MAC, init: np.ndarray, stride: tuple[int, int],
                padding: tuple[int, int], force_sequential: bool, want_codes: bool) -> Part | None:
    """The `Part` of the convolution of x (N, C_in, H, W) with w (C_out, C_in, kh, kw) from the start
    values ``init`` ((1, C_out) or (N*OH*OW, C_out) reals), rows in (n, oh, ow) order (arrays
    (N*OH*OW, C_out), or on the exact-sum path (N, OH, OW, C_out) views of the NCHW maps); None when the
    general path must run it (see the module docstring); ``force_sequential`` (`emu.matmul`'s
    ``sequential``) leaves out the exact-sum product."""
    if not covers(mac):
        return None
    n, c, h, wd, cout, kh, kw, oh, ow = conv_geometry(x.shape, w.shape, stride, padding)
    K, M = c * kh * kw, n * oh * ow
    (sh, sw), (ph, pw) = stride, padding
    pair = pairs_hold(mac)
    exact = (not force_sequential and M * K >= EXACT_MIN_PATCHES  # int32 sums on the pair route, else float32
             and K * max_code(mac.act) * max_code(mac.weight) < exact_bound(mac))
    if not exact and mac.acc.bits > 16:
        return None  # neither path can run: decided before any conversion
    plan = int_plan(mac)
    term, tprm = int_term(plan.tprm, 0)
    bias_q, ia = acc_start(init, mac, plan, None)
    exact = exact and blas_proves(mac, plan, K, bias_q)  # else float32 patches would be made for nothing
    vals = codes = None
    try:  # an error of either conversion (a NaN, overflow="error") is the general path's to raise or not: it
        # converts x first, and only the entries its patches hold
        qw, _, ovf_w = operand(w.reshape(cout, K), mac.weight, mac, "weight", True)
        if exact and in_block_codes(mac):
            vals, codes, ovf_x, nan = _exact_blocks(np.ascontiguousarray(x, np.float64), qw, bias_q, mac,
                                                    plan, want_codes, (kh, kw, sh, sw, ph, pw, oh, ow), True,
                                                    pair)
            if nan:
                return None
        else:
            qx, _, ovf_x = operand(x, mac.act, mac, "act", True, f32=exact)
    except (ValueError, OverflowError):
        return None
    if ovf_x:  # the general path counts an element of x once per patch entry that holds it
        flags = np.zeros(x.size, np.uint8)
        convert_array(x, mac.act, mac.input_rounding, mac.input_overflow, None, None, None, True, False,
                      "matmul (act)", flags=flags)
        per_element = np.outer(_coverage(h, kh, sh, ph, oh), _coverage(wd, kw, sw, pw, ow))  # (h, w)
        ovf_x = int((flags.reshape(x.shape).sum(axis=(0, 1)) * per_element).sum())
    ia += ovf_x + ovf_w
    if exact:
        if vals is None:
            vals, codes, _, _ = _exact_blocks(np.ascontiguousarray(qx, np.float32), qw, bias_q, mac, plan,
                                              want_codes, (kh, kw, sh, sw, ph, pw, oh, ow), False, pair)
        nhwc = (0, 2, 3, 1)  # the product's rows in (n, oh, ow) order, over the NCHW maps
        return Part(vals.transpose(nhwc), None if codes is None else codes.transpose(nhwc), None, None, None,
                    ia, "exact-sum")
    if narrow_lanes(mac, term, tprm, absmax(qx) * absmax(qw)) != 16:
        return None
    sl, sr = term_shifts(term, tprm)
    cols_t = np.empty((K, M), np.int16)
    patches_t(FK.held_weights(qx, sl, sr, mac.acc.bits), kh, kw, sh, sw, 1, 1, ph, pw, oh, ow, cols_t)
    init_t = np.ascontiguousarray(np.broadcast_to(bias_q.T, (cout, M)), np.int16)
    # the codes as int64 when they are wanted, else as float64 values scaled in place (no second array)
    out, cnt = np.empty((M, cout), np.int64 if want_codes else np.float64), np.empty((M, cout), np.int32)
    kernel = FK.mac_fixed16 if M * K * cout >= LANE_THREAD_MACS else FK.mac_fixed16_serial
    kernel(np.ascontiguousarray(qw, np.int16), cols_t, init_t, out, cnt, sr, mac.acc.bits,
           mac.acc_overflow == Overflow.WRAP, True)
    codes = (out & ((1 << mac.acc.bits) - 1)).astype(np.uint64) if want_codes else None
    vals = out * 2.0**-plan.fl_acc if want_codes else np.multiply(out, 2.0**-plan.fl_acc, out=out)
    return Part(vals, codes, None, cnt if cnt.any() else None, None, ia, "sequential")
