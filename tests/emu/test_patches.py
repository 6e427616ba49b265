"""`emu.im2col` (the one-pass patches kernel) against the strided-view construction, with padding,
strides, dilation and kernels larger than the input's border."""

from __future__ import annotations

import numpy as np
import pytest

import emu


def _strided(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], padding: tuple[int, int],
             dilation: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """The patches as a view of the zero-padded array, copied: the obvious construction."""
    (ph, pw), (sh, sw), (dh, dw) = padding, stride, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    n, c, h, w = xp.shape
    oh, ow = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    s = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, c, kh, kw), (s[0], s[2] * sh, s[3] * sw, s[1], s[2] * dh, s[3] * dw))
    return view.reshape(n * oh * ow, c * kh * kw), oh, ow


@pytest.mark.parametrize("case", range(30))
def test_patches_are_the_strided_views(case: int) -> None:
    rng = np.random.default_rng(case)
    n, c = int(rng.integers(1, 4)), int(rng.integers(1, 5))
    h, w = int(rng.integers(3, 10)), int(rng.integers(3, 10))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    x = rng.standard_normal((n, c, h, w))
    want, oh, ow = _strided(x, kh, kw, stride, padding, dilation)
    if oh < 1 or ow < 1:
        return
    got = emu.im2col(x, kh, kw, stride, padding, dilation)
    assert got[1:] == (oh, ow)
    assert np.array_equal(got[0], want)
    # a non-contiguous input and float32 give the same patches
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    assert np.array_equal(emu.im2col(xt, kh, kw, stride, padding, dilation)[0], want)
    assert emu.im2col(x.astype(np.float32), kh, kw, stride, padding, dilation)[0].dtype == np.float32


@pytest.mark.parametrize("transposed", [False, True])
def test_threaded_patches_above_the_serial_size(transposed: bool) -> None:
    """From `emu.threads.PATCH_THREAD_ENTRIES` entries the rows are written by threads: the same patches
    (and their transpose) as the strided views, with padding, stride 2 and dilation."""
    from emu._patches import patches, patches_t
    from emu.threads import PATCH_THREAD_ENTRIES

    x = np.random.default_rng(4).standard_normal((17, 5, 33, 31))
    (kh, kw), stride, padding, dilation = (3, 2), (2, 1), (1, 2), (1, 2)
    want, oh, ow = _strided(x, kh, kw, stride, padding, dilation)
    assert want.size >= PATCH_THREAD_ENTRIES
    out = np.empty(want.T.shape if transposed else want.shape)
    (patches_t if transposed else patches)(x, kh, kw, *stride, *dilation, *padding, oh, ow, out)
    assert np.array_equal(out, want.T if transposed else want)
