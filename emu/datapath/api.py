"""The datapath calls: `matmul`, `dot`, `conv2d` and `im2col`.

`matmul(a, w, mac)` converts real inputs to the MAC's operand formats, runs
every output's dot product through the datapath (NUMERICS.md section 6,
docs/semantics.md "Multiply-accumulate") and returns the float64 values of the
output codes, optionally with the codes and a `MACStats`. `dot` and `conv2d`
(NCHW, im2col order (c_in, kh, kw)) are built on it. Batched operands split
into 2-D products (`emu.datapath.product.matmul2d`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._patches import conv_geometry, patches
from ..block.convert import finite_range, tensor_scaled
from ..checks import check_bool, check_int, int_pair, real_array
from ..encoded import Encoded, plain_operand
from ..inputs import check_seed
from ..mac import MAC, as_mac
from ..modes import Rounding
from .conv_fp32 import conv_fp32
from .conv_narrow import conv_narrow, covers
from .floating import direct32, matmul_fp32
from .integer import matmul_fixed
from .operands import bias_vector, stochastic_inputs
from .product import matmul2d, raise_errors
from .seeds import NO_SEEDS, RoleSeeds, call_key
from .stats import Part, join, mac_stats


def matmul(a: object, w: object, mac: MAC | str | dict, bias: object = None, *, c: object = None,
           seed: object = None, return_stats: bool = False, return_codes: bool = False,
           sequential: bool = False) -> Any:
    """Matrix product a @ w with every dot product through the datapath ``mac``.

    Args:
        a: activations (..., M, K) or (K,): reals, or an `emu.Encoded` in the MAC's act format, whose finite
            values no conversion changes (no rounding, no input overflow; an infinity code meets
            ``input_overflow`` as a decoded infinity would: saturated and counted, or an error).
        w: weights (K, N), (..., K, N) or (K,), leading dimensions broadcast as in np.matmul: reals, or an
            `emu.Encoded` in the MAC's weight format.
        mac: a `MAC`, a preset name (``"int8 x int8 -> int32"``) or a dict of MAC fields.
        bias: (N,) or a scalar: the accumulator's start value, one per output column (converted to the
            accumulator's format with ``input_rounding`` and saturation).
        c: an addend broadcastable to the output's shape: each accumulator's start value (D = A W + C, as
            matrix units compute it), converted like the bias. Give ``bias`` or ``c``, not both.
        seed: the random stream of every stochastic rounding in the datapath (the input, addend, product
            and output conversions; binary<stochastic> and ternary<stochastic> operands): an int >= 0, a
            SeedSequence, a Generator or None (fresh entropy), checked even where nothing rounds
            stochastically (nothing is drawn from a Generator then). Role r of batch part b (a part is one 2-D
            product: one per batch index when w has batch dimensions, else the whole call) draws with the
            key mix64(k + (2^32 r + b + 1) * 0xD1B54A32D192ED03) of the call's key k (docs/semantics.md),
            roles act 0, weight 1, addend 2, product 3, output 4; an operand's element takes its C-order
            index in the operand, product (i, j, k) the index (i N + j) K + k, output (i, j) i N + j. The
            same seed gives the same bits for any thread count, memory layout or chunking.
        return_stats: also return a `MACStats` (an addend or bias that saturated counts as an input overflow).
        return_codes: also return the output codes (bit patterns of the output format).
        sequential: force the sequential kernel (the exact-sum fast path is off).

    Returns:
        float64 values of the output codes, shape as np.matmul's, then the codes
        and/or the stats when asked.

    Raises:
        ValueError: shape mismatch, formats that cannot be combined, widths beyond 62 bits, a NaN that
            reaches a product, accumulator or output format without NaN, an `emu.Encoded` operand in
            another format than the MAC's.
        OverflowError: an overflow mode ``error`` was hit (the first output is named).
        TypeError: an operand, bias or addend that is not real (bool, complex, object, str); return_stats,
            return_codes or sequential not True or False.

    >>> matmul([[1.0, 2.0]], [[3.0], [4.0]], "int8 x int8 -> int32")
    array([[11.]])
    >>> matmul([[1.0, 2.0]], [[3.0], [4.0]], "int8 x int8 -> int32", c=[[100.0]])
    array([[111.]])
    """
    check_seed(seed, "matmul")
    _check_flags("matmul", return_stats, return_codes, sequential)
    m = mac if type(mac) is MAC else as_mac(mac, "matmul")
    a, a_enc = plain_operand(a, m.act, "matmul", "a", "act")
    w, w_enc = plain_operand(w, m.weight, "matmul", "w", "weight")
    if (c is None and type(a) is np.ndarray and type(w) is np.ndarray and a.ndim == 2 and w.ndim == 2
            and not return_codes and a.shape[1] == w.shape[0]):  # training's common cases
        b = bias_vector(bias, w.shape[1])
        r = matmul_fp32(a, w, m, b) if direct32(m) else matmul_fixed(a, w, m, b)
        if r is not None:
            if not return_stats:
                return r[0]
            return r[0], mac_stats(w.shape[1], r[3], r[1], r[2], None, {"sequential"})
    return matmul_parts(a, w, m, bias, c, call_key(m, seed), return_stats, return_codes, sequential,
                        encoded=(a_enc, w_enc))


def _check_flags(func: str, return_stats: object, return_codes: object, sequential: object) -> None:
    """Refuse a flag that is not True or False (a truthy "False" would switch it on), naming ``func``."""
    check_bool(return_stats, func, "return_stats")
    check_bool(return_codes, func, "return_codes")
    check_bool(sequential, func, "sequential")


def _addend(c: object, A: np.ndarray, Wm: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """The addend as float64 of the full product shape (*batch, M, N), a broadcast view, and whether c as
    passed is one row (every dimension but the columns' of size 1: a scalar, (N,), (1, N)), whose start
    values are then its (1, N) row (`_starts`)."""
    C = real_array(c, "matmul", "c").astype(np.float64, copy=False)
    final = shape[:-2] + (() if A.ndim == 1 else shape[-2:-1]) + (() if Wm.ndim == 1 else shape[-1:])
    try:
        Cb = np.broadcast_to(C, final)
    except ValueError:
        raise ValueError(f"matmul: c has shape {C.shape}; it must broadcast to the output's shape {final}"
                         ) from None
    given = C.reshape((1,) * (len(final) - C.ndim) + C.shape)  # c's own extents, aligned as Cb
    for v_axis, flat in ((-1 if Wm.ndim == 1 else -2, A.ndim == 1), (-1, Wm.ndim == 1)):
        if flat:  # a vector operand: its output axis, of size 1, put back
            Cb, given = np.expand_dims(Cb, v_axis), np.expand_dims(given, v_axis)
    return np.broadcast_to(Cb, shape), all(d == 1 for d in given.shape[:-1])


def _starts(Cf: np.ndarray | None, b: np.ndarray | None, parts: tuple[int, ...], c_row: bool,
            keyed: bool) -> Any:
    """A function giving part p's start values: (1, N) when one row serves every row (a bias, an addend
    passed as one row: ``c_row``), else the part's (M, N) rows of the addend reshaped to ``parts``. An
    addend constant down its rows only by its strides (a broadcast view) gives one row as well where no
    stochastic rounding (``keyed``) draws for start values by their index in the (M, N) array, the layout
    then changing nothing."""
    if Cf is None:
        row = b[None, :]  # type: ignore[index]
        return lambda p: row
    lead = Cf.ndim - 1
    if Cf.size and (c_row or not keyed and all(Cf.strides[i] == 0 or Cf.shape[i] == 1 for i in range(lead))):
        row = np.ascontiguousarray(Cf[(0,) * lead])[None, :]
        return lambda p: row
    full = Cf.reshape(parts)
    return lambda p: full[p]


def _tensor_ranges(m: MAC, a: np.ndarray, w: np.ndarray, padded: bool) -> tuple[Any, Any]:
    """The finite ranges (`finite_range`) of operands a and w whose block format has one scale per tensor
    (NVFP4's fp32 scale, a per-tensor integer), None for the others: a tensor-wide scale spans the operand
    as passed. ``padded``: a's patches also hold zeros (a padded convolution), which the range then holds."""
    def span(x: np.ndarray, f: object, pad: bool) -> tuple[float, float] | None:
        if not (m.block_scaled and tensor_scaled(f)):
            return None
        lo, hi = finite_range(x)
        return (min(lo, 0.0), max(hi, 0.0)) if pad else (lo, hi)

    return span(a, m.act, padded), span(w, m.weight, False)


def matmul_parts(a: object, w: object, m: MAC, bias: object, c: object, key: np.uint64 | None,
            return_stats: bool, return_codes: bool, sequential: bool, pre_overflow: int = 0,
            product: Callable[..., Part] = matmul2d, encoded: tuple[bool, bool] = (False, False),
            ranges: tuple[Any, Any] | None = None) -> Any:
    """`matmul` after the datapath and the call's key are known; ``pre_overflow`` counts input conversions
    made by the caller (`conv2d`), ``product`` (`matmul2d`'s arguments) makes the 2-D product of a
    2-D w (`conv2d`'s, which may not need a's values), ``encoded`` says which of a and w hold values
    already in their formats (`emu.Encoded`), which no stochastic input rounding converts again, and
    ``ranges`` the finite ranges of the tensors whose tensor-wide block scales a and w take (`conv2d`'s
    x and w, not their patches; None: a and w themselves)."""
    A, Wm = real_array(a, "matmul", "a"), real_array(w, "matmul", "w")
    if A.ndim == 0 or Wm.ndim == 0:
        raise ValueError("matmul: a and w must have at least one dimension")
    if bias is not None and c is not None:
        raise ValueError("matmul: give bias= (one start value per output column) or c= (an addend that"
                         " broadcasts to the output), not both")
    a2 = A[None, :] if A.ndim == 1 else A
    w2 = Wm[:, None] if Wm.ndim == 1 else Wm
    if a2.shape[-1] != w2.shape[-2]:
        raise ValueError(f"matmul: a has K={a2.shape[-1]} (shape {A.shape}) but w has K={w2.shape[-2]}"
                         f" (shape {Wm.shape})")
    batch = a2.shape[:-2] if w2.ndim == 2 else np.broadcast_shapes(a2.shape[:-2], w2.shape[:-2])
    M, K, N = a2.shape[-2], a2.shape[-1], w2.shape[-1]
    shape = (*batch, M, N)
    Cf, c_row = (None, True) if c is None else _addend(c, A, Wm, shape)
    keyed = key is not None and m.input_rounding is Rounding.STOCHASTIC
    k0 = RoleSeeds.of(m, None, 0, key) if key is not None else NO_SEEDS
    a2, ovf_a = (a2, 0) if encoded[0] else stochastic_inputs(a2, m.act, m, k0.act, "act")
    w2, ovf_w = (w2, 0) if encoded[1] else stochastic_inputs(w2, m.weight, m, k0.weight, "weight")
    pre_overflow += ovf_a + ovf_w
    b = bias_vector(bias, N) if Cf is None else None
    if w2.ndim == 2:
        rows = math.prod(a2.shape[:-1])
        start = _starts(Cf, b, (rows, N), c_row, keyed)
        parts = [product(a2.reshape(rows, K), w2, m, start(slice(None)), k0, sequential, return_codes,
                          return_stats, *(() if ranges is None else (ranges,)))]
    else:
        nb = math.prod(batch)
        ab = np.broadcast_to(a2, (*batch, M, K)).reshape(nb, M, K)
        wb = np.broadcast_to(w2, (*batch, K, N)).reshape(nb, K, N)
        start = _starts(Cf, b, (nb, M, N), c_row, keyed)
        # a tensor-wide block scale (NVFP4's fp32 scale, a per-tensor integer) spans the operand as passed
        ranges = ranges or _tensor_ranges(m, a2, w2, False)
        parts = [matmul2d(ab[i], wb[i], m, start(i), RoleSeeds.of(m, None, i, key) if key is not None else k0,
                           sequential, return_codes, return_stats, ranges) for i in range(nb)]

    pcnt, acnt = join(parts, "pcnt", np.int32, N), join(parts, "acnt", np.int32, N)
    raise_errors(m, pcnt, acnt)
    vals = join(parts, "vals", np.float64, N).reshape(shape)  # type: ignore[union-attr]
    codes = None if not return_codes else join(parts, "codes", np.uint64, N).reshape(shape)  # type: ignore
    if A.ndim == 1:
        vals = vals[..., 0, :]
        codes = None if codes is None else codes[..., 0, :]
    if Wm.ndim == 1:
        vals = vals[..., 0]
        codes = None if codes is None else codes[..., 0]
    out: list[Any] = [vals]
    if return_codes:
        out.append(codes)
    if return_stats:
        oflag = join(parts, "oflag", bool, N)
        input_overflow = pre_overflow + sum(p.input_overflow for p in parts)
        st = mac_stats(N, input_overflow, pcnt, acnt, oflag, {p.path for p in parts})
        nan_blocks = sum(p.nan_blocks for p in parts)
        out.append(st._replace(nan_blocks=nan_blocks) if nan_blocks else st)
    return out[0] if len(out) == 1 else tuple(out)


def dot(a: object, w: object, mac: MAC | str | dict, bias: object = None, **kwargs: Any) -> Any:
    """The dot product of two vectors through ``mac`` (a 0-d result; see `matmul`, whose operands may be
    `emu.Encoded`)."""
    _check_flags("dot", *(kwargs.get(k, False) for k in ("return_stats", "return_codes", "sequential")))
    A, Wv = (v if type(v) is Encoded else real_array(v, "dot", n) for v, n in ((a, "a"), (w, "w")))
    if len(A.shape) != 1 or len(Wv.shape) != 1:
        raise ValueError(f"dot: a and w must be vectors; got shapes {A.shape} and {Wv.shape}")
    return matmul(A, Wv, mac, bias, **kwargs)


#: the largest kernel size, stride, padding or dilation taken (beyond it no tensor is real)
MAX_EXTENT = 2**31 - 1


def _check_entries(func: str, rows: int, cols: int, stride: object, padding: object) -> None:
    """Refuse (N*OH*OW, cols) patches beyond numpy's largest array, naming the stride and padding."""
    if rows * cols > np.iinfo(np.intp).max:
        raise ValueError(f"{func}: stride={stride!r} and padding={padding!r} give {rows} x {cols} patch"
                         " entries, beyond numpy's largest array")


def im2col(x: object, kh: int, kw: int, stride: object, padding: object,
           dilation: object = (1, 1)) -> tuple[np.ndarray, int, int]:
    """(patches, OH, OW): the (N*OH*OW, C*kh*kw) patches of an NCHW array, k in (c, i, j) C order, with
    ``padding`` zeros on each side and kernel taps ``dilation`` apart (`emu._patches`, one pass).

    x is a real (float or integer) 4-d array, its dtype kept; kh and kw are ints in [1, 2^31 - 1];
    stride, padding and dilation an int or a pair of ints (rows, columns), in [1, 2^31 - 1], [0, 2^31 - 1]
    and [1, 2^31 - 1]. The dilated kernel must fit in the padded input (OH, OW >= 1).

    Raises:
        TypeError: x not real, a size that is not an int (or a pair of ints).
        ValueError: x not 4-d, a size outside its range, a dilated kernel larger than the padded input,
            patches beyond numpy's largest array.

    >>> cols, oh, ow = im2col(np.arange(9.0).reshape(1, 1, 3, 3), 2, 2, (1, 1), (0, 0))
    >>> cols[0].tolist(), oh, ow
    ([0.0, 1.0, 3.0, 4.0], 2, 2)
    >>> im2col(np.arange(9.0).reshape(1, 1, 3, 3), 2, 2, (1, 1), (0, 0), (2, 2))[0].tolist()
    [[0.0, 2.0, 6.0, 8.0]]
    """
    fn = "im2col"
    X = np.asarray(x)
    if X.dtype.kind not in "iu":  # (integers are copied, not computed with: any width is exact)
        real_array(X, fn, "x")
    if X.ndim != 4:
        raise ValueError(f"{fn}: x must be NCHW (4-d); got shape {X.shape}")
    kh, kw = check_int(kh, fn, "kh", 1, MAX_EXTENT), check_int(kw, fn, "kw", 1, MAX_EXTENT)
    sh, sw = int_pair(stride, fn, "stride", 1, MAX_EXTENT)
    ph, pw = int_pair(padding, fn, "padding", 0, MAX_EXTENT)
    dh, dw = int_pair(dilation, fn, "dilation", 1, MAX_EXTENT)
    n, c, h, w_ = X.shape
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    if h + 2 * ph < eh or w_ + 2 * pw < ew:
        raise ValueError(f"{fn}: kernel {kh}x{kw} with dilation {dh}x{dw} spans {eh}x{ew}, larger than the"
                         f" padded input {h + 2 * ph}x{w_ + 2 * pw}")
    oh, ow = (h + 2 * ph - eh) // sh + 1, (w_ + 2 * pw - ew) // sw + 1
    _check_entries(fn, n * oh * ow, c * kh * kw, stride, padding)
    out = np.empty((n * oh * ow, c * kh * kw), X.dtype)
    if out.size:
        patches(np.ascontiguousarray(X), kh, kw, sh, sw, dh, dw, ph, pw, oh, ow, out)
    return out, oh, ow


def conv2d(x: object, w: object, mac: MAC | str | dict, stride: object = 1, padding: object = 0,
           bias: object = None, *, c: object = None, seed: object = None, return_stats: bool = False,
           return_codes: bool = False, sequential: bool = False) -> Any:
    """2-D convolution (cross-correlation) of NCHW x with (C_out, C_in, kh, kw) w through ``mac``.

    Each output is a dot product over k in (c_in, kh, kw) C order (im2col).
    Returns (N, C_out, OH, OW) values (plus codes/stats as `matmul`); the
    stats' per-channel counts are per output channel. ``c`` is an addend
    broadcastable to the output (N, C_out, OH, OW). Under stochastic input
    rounding x and w are converted once, each element by its C-order index
    in x or w (a value shared by several patches is the same in each, and an
    overflow counts once per element; under a deterministic rounding the
    count is the patches' conversions': once per patch entry holding it);
    ``seed`` and the other random streams are `matmul`'s on the
    (N*OH*OW, C_in*kh*kw) patches and the (C_in*kh*kw, C_out) weights. A
    fixed-point datapath runs without float64 patches where the codes allow
    (`emu.datapath.conv_narrow`), and a binary32 one from x rounded once
    (`emu.datapath.conv_fp32`), with the same results and counts.

    x and w may be `emu.Encoded` in the MAC's act and weight formats (see `matmul`). ``stride`` and
    ``padding`` are an int or a pair of ints (rows, columns) in [1, 2^31 - 1] and [0, 2^31 - 1].

    Raises:
        ValueError: as `matmul`; x or w not 4-d, channels that differ, a stride or padding outside its
            range, a kernel larger than the padded input, patches beyond numpy's largest array.
        TypeError: as `matmul`; a stride or padding that is not an int or a pair of ints.

    >>> conv2d(np.ones((1, 1, 3, 3)), np.ones((2, 1, 2, 2)), "int8 x int8 -> int32").shape
    (1, 2, 2, 2)
    """
    check_seed(seed, "conv2d")
    _check_flags("conv2d", return_stats, return_codes, sequential)
    m = mac if type(mac) is MAC else as_mac(mac, "conv2d")
    x, x_enc = plain_operand(x, m.act, "conv2d", "x", "act")
    w, w_enc = plain_operand(w, m.weight, "conv2d", "w", "weight")
    X, Wt = real_array(x, "conv2d", "x"), real_array(w, "conv2d", "w")
    if X.ndim != 4 or Wt.ndim != 4:
        raise ValueError(f"conv2d: x must be NCHW and w (C_out, C_in, kh, kw); got {X.shape} and {Wt.shape}")
    if X.shape[1] != Wt.shape[1]:
        raise ValueError(f"conv2d: x has C_in={X.shape[1]} but w has C_in={Wt.shape[1]}")
    st = int_pair(stride, "conv2d", "stride", 1, MAX_EXTENT)
    pad = int_pair(padding, "conv2d", "padding", 0, MAX_EXTENT)
    cout, cin, kh, kw = Wt.shape
    if X.shape[2] + 2 * pad[0] < kh or X.shape[3] + 2 * pad[1] < kw:
        raise ValueError(f"conv2d: kernel {kh}x{kw} larger than the padded input {X.shape[2:]}")
    rows = X.shape[0] * ((X.shape[2] + 2 * pad[0] - kh) // st[0] + 1) * ((X.shape[3] + 2 * pad[1] - kw)
                                                                       // st[1] + 1)
    _check_entries("conv2d", rows, max(cin * kh * kw, cout), stride, padding)
    key = call_key(m, seed, "conv2d")
    k0 = RoleSeeds.of(m, None, 0, key) if key is not None else NO_SEEDS
    X, ovf_x = (X, 0) if x_enc else stochastic_inputs(X, m.act, m, k0.act, "act")
    Wt, ovf_w = (Wt, 0) if w_enc else stochastic_inputs(Wt, m.weight, m, k0.weight, "weight")
    n = X.shape[0]
    oh, ow = conv_geometry(X.shape, Wt.shape, st, pad)[7:]
    if covers(m) or direct32(m):  # patches of the codes of x (conv_narrow), or of x rounded once (conv_fp32)
        cols = np.broadcast_to(np.float64(0), (n, oh, ow, cin * kh * kw))  # shapes only

        def product(_: np.ndarray, w2: np.ndarray, mac: MAC, init: np.ndarray, keys: RoleSeeds,
                    force_sequential: bool, want_codes: bool, want_flags: bool) -> Part:
            if covers(mac):
                part = conv_narrow(X, Wt, mac, init, st, pad, force_sequential, want_codes)
            else:
                part = conv_fp32(X, Wt, mac, init, st, pad, want_codes) if keys == NO_SEEDS else None
            if part is None:
                cols2 = im2col(X, kh, kw, st, pad)[0]
                part = matmul2d(cols2, w2, mac, init, keys, force_sequential, want_codes, want_flags)
            return part
    else:
        cols, product = im2col(X, kh, kw, st, pad)[0].reshape(n, oh, ow, cin * kh * kw), matmul2d
    c_mat = None
    if c is not None:
        C = real_array(c, "conv2d", "c").astype(np.float64, copy=False)
        try:
            Cb = np.broadcast_to(C, (n, cout, oh, ow))
        except ValueError:
            raise ValueError(f"conv2d: c has shape {C.shape}; it must broadcast to the output's shape"
                             f" {(n, cout, oh, ow)}") from None
        Cb = Cb.transpose(0, 2, 3, 1)  # the product's (N, OH, OW, C_out) layout
        given = C.reshape((1,) * (4 - C.ndim) + C.shape)  # c's own extents: one per channel is one row
        c_mat = Cb[0, 0, 0] if Cb.size and given.shape[0] == given.shape[2] == given.shape[3] == 1 else Cb
    w2 = Wt.reshape(cout, cin * kh * kw).T
    res = matmul_parts(cols, w2, m, bias, c_mat, key, return_stats, return_codes, sequential, ovf_x + ovf_w,
                       product=product, encoded=(x_enc, w_enc),
                       ranges=_tensor_ranges(m, X, Wt, max(pad) > 0) if m.block_scaled else None)

    def back(y: np.ndarray) -> np.ndarray:
        return y.transpose(0, 3, 1, 2)

    if isinstance(res, tuple):
        return tuple(back(r) if isinstance(r, np.ndarray) and r.ndim == 4 else r for r in res)
    return back(res)
