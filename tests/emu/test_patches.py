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


@pytest.mark.parametrize(("args", "error", "match"), [
    pytest.param((3, 3, (-1, 1), (0, 0)), ValueError,
                 r"stride=\(-1, 1\) outside the allowed range \[1, 2147483647\]$",
                 id="negative stride"),
    pytest.param((3, 3, (0, 1), (0, 0)), ValueError,
                 r"stride=\(0, 1\) outside the allowed range", id="stride 0"),
    pytest.param((3, 3, (1, 1), (-1, 0)), ValueError,
                 r"padding=\(-1, 0\) outside the allowed range \[0, 2147",
                 id="negative padding"),
    pytest.param((3, 3, (1, 1), (0, 0), (0, 1)), ValueError,
                 r"dilation=\(0, 1\) outside the allowed range \[1,",
                 id="dilation 0"),
    pytest.param((3, 3, (1, 1), (0, 0), -2), ValueError, r"dilation=-2 outside the allowed range \[1,",
                 id="negative dilation"),
    pytest.param((0, 3, (1, 1), (0, 0)), ValueError, r"kh=0 outside the allowed range \[1, 2147483647\]$",
                 id="kh 0"),
    pytest.param((True, 3, (1, 1), (0, 0)), TypeError, r"kh=True must be an int$", id="kh bool"),
    pytest.param(("3", 3, (1, 1), (0, 0)), TypeError, r"kh='3' must be an int$", id="kh str"),
    pytest.param((3, 3, 1.5, 0), TypeError,
                 r"stride=1.5 must be an int or a pair of ints$", id="float stride"),
    pytest.param((3, 3, (1, 1), (2**40, 0)), ValueError, r"padding=\(1099511627776, 0\) outside the allowed",
                 id="huge padding"),
    pytest.param((3, 3, (2**70, 1), (0, 0)), ValueError, r"stride=\(1180591620717411303424, 1\) outside",
                 id="huge stride"),
    pytest.param((3, 3, (1, 1), (2**30, 2**30)), ValueError, r"stride=\(1, 1\) and padding=\(1073741824,"
                 r" 1073741824\) give \d+ x 9 patch entries, beyond numpy's largest array$",
                 id="huge patches"),
    pytest.param((6, 3, (1, 1), (0, 0)), ValueError,
                 r"kernel 6x3 with dilation 1x1 spans 6x3, larger than the"
                 r" padded input 5x5$", id="kernel too large"),
    pytest.param((3, 3, (1, 1), (0, 0), (3, 1)), ValueError,
                 r"kernel 3x3 with dilation 3x1 spans 7x3, larger",
                 id="dilated kernel too large"),
])
def test_im2col_refuses_bad_sizes_by_name(args: tuple, error: type, match: str) -> None:
    """im2col checked nothing: a negative stride gave empty patches, a negative padding cropped, kh=0 gave
    empty rows, kh=True passed, stride 0 was a ZeroDivisionError, huge sizes raw numpy or numba errors."""
    with pytest.raises(error, match=rf"^im2col: {match}"):
        emu.im2col(np.ones((1, 1, 5, 5)), *args)


def test_im2col_refuses_x_that_is_not_a_real_4d_array_and_takes_int_sizes() -> None:
    with pytest.raises(ValueError, match=r"^im2col: x must be NCHW \(4-d\); got shape \(0,\)$"):
        emu.im2col([], 3, 3, (1, 1), (0, 0))
    with pytest.raises(TypeError, match=r"^im2col: x has dtype bool; expected real numbers"):
        emu.im2col(np.ones((1, 1, 3, 3), bool), 2, 2, (1, 1), (0, 0))
    x = np.arange(50.0).reshape(1, 2, 5, 5)
    got = emu.im2col(x, 3, 2, 2, 1, 2)  # an int stride, padding and dilation: both axes (was a TypeError)
    want = emu.im2col(x, 3, 2, (2, 2), (1, 1), (2, 2))
    assert got[1:] == want[1:] == (2, 3)
    assert np.array_equal(got[0], want[0])
    big = np.full((1, 1, 2, 2), 2**62, np.int64)  # integers are copied, whatever float64 holds of them
    assert emu.im2col(big, 2, 2, 1, 0)[0].tolist() == [[2**62] * 4]
