"""Product layers of imported graphs: grouped and dilated convolution, matrix products on N-d inputs.

Every product goes through the layer's datapaths as nets' `Linear` and
`Conv2d` do (`mac_product`): ``fwd_mac`` for the forward product, ``bwd_mac``
for the input gradients, ``grad_mac`` for the weight gradients, float64 when
a datapath is None; weights and biases are converted to the ``weights`` and
``biases`` roles before use, outputs to ``preacts``, input gradients to
``errors``, parameter gradients to ``grads``.

- `GroupedConv2d`: ONNX Conv with groups (depthwise when groups = channels),
  dilations and asymmetric pads; one product per group, each a dot product
  over (c_in / groups, kh, kw) as `Conv2d`'s over (c_in, kh, kw).
- `LinearND`: a `Linear` (so every tool that knows Linear layers knows it)
  applied to the last axis of an N-d input (ONNX MatMul with a constant
  weight, e.g. x (batch, tokens, d) @ W (d, d')).
- `MatMul`: the product of two activations (attention's Q K^T and A V): both
  operands come as their producers left them; ``fwd_mac`` (if any) converts
  the left one to its ``act`` and the right one to its ``weight`` operand
  format and accumulates as for any layer; without it the product is float64.

Imports numpy, `emu` and `nets`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import emu
from emu.checks import int_pair

from ..graph import MultiLayer
from ..layers import Context, Layer, Linear, check_patch_blocks, conv_shape, mac_product
from .pointwise import unbroadcast

__all__ = ["GroupedConv2d", "LinearND", "MatMul", "col2im_dilated", "im2col_dilated"]


def im2col_dilated(x: np.ndarray, kh: int, kw: int, stride: tuple[int, int], dilation: tuple[int, int]
                   ) -> tuple[np.ndarray, int, int]:
    """(patches, OH, OW) of an (already padded) NCHW array with kernel taps ``dilation`` apart:
    (N*OH*OW, C*kh*kw), k in (c, i, j) C order, as `emu.im2col` with dilation (which refuses a dilated
    kernel larger than the input, naming it).

    >>> cols, oh, ow = im2col_dilated(np.arange(9.0).reshape(1, 1, 3, 3), 2, 2, (1, 1), (2, 2))
    >>> cols.tolist(), oh, ow
    ([[0.0, 2.0, 6.0, 8.0]], 1, 1)
    """
    cols, oh, ow = emu.im2col(x, kh, kw, stride, (0, 0), dilation)
    return cols, oh, ow


def col2im_dilated(dcols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int, stride: tuple[int, int],
                   dilation: tuple[int, int], oh: int, ow: int) -> np.ndarray:
    """The adjoint of `im2col_dilated`: patch gradients scatter-added (float64) back to NCHW."""
    n, c, h, w = x_shape
    sh, sw = stride
    dh, dw = dilation
    dx = np.zeros(x_shape)
    d = dcols.reshape(n, oh, ow, c, kh, kw)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] += (
                d[:, :, :, :, i, j].transpose(0, 3, 1, 2))
    return dx


class GroupedConv2d(Layer):
    """2-D convolution with groups, dilation and pads, W (C_out, C_in/groups, kh, kw).

    Output channels [g C_out/groups, (g+1) C_out/groups) read input channels
    [g C_in/groups, (g+1) C_in/groups). Every output is one dot product
    through ``fwd_mac`` over (c_in/groups, kh, kw); every weight gradient one
    over (n, oh, ow) through ``grad_mac``. The input gradient is, with a
    ``bwd_mac`` (not block-scaled), the convolution of the zero-dilated,
    padded output gradient with the flipped kernels, each input gradient one
    dot product over (c_out/groups, kh, kw); otherwise (float64 or a block
    datapath) the scatter-add of the patch gradients: as `Conv2d` does.

    Raises:
        ValueError: channels not divisible by groups, a size below 1, a negative pad.

    Depthwise 3x3 on two channels (each its own kernel):

    >>> conv = GroupedConv2d(2, 2, 3, pads=(1, 1, 1, 1), groups=2, bias=False)
    >>> conv.params["W"][:] = np.array([1.0, 2.0])[:, None, None, None]
    >>> conv.forward(np.ones((1, 2, 3, 3)), Context.float64())[0, :, 1, 1].tolist()
    [9.0, 18.0]
    """

    opens_layer = True

    def __init__(self, c_in: int, c_out: int, kernel: Any, stride: Any = 1, pads: Any = (0, 0, 0, 0),
                 dilation: Any = 1, groups: int = 1, bias: bool = True, name: str = "") -> None:
        super().__init__(name)
        self.kernel, self.stride, self.dilation = (int_pair(kernel, "GroupedConv2d", "kernel"),
                                                   int_pair(stride, "GroupedConv2d", "stride"),
                                                   int_pair(dilation, "GroupedConv2d", "dilation"))
        self.pads = tuple(int(p) for p in pads)
        if (len(self.pads) != 4 or min(self.pads) < 0 or min(self.kernel + self.stride + self.dilation) < 1
                or groups < 1 or c_in < 1 or c_out < 1 or c_in % groups or c_out % groups):
            raise ValueError(f"GroupedConv2d: bad shape c_in={c_in}, c_out={c_out}, groups={groups},"
                             f" kernel={kernel}, stride={stride}, pads={pads}, dilation={dilation}")
        self.c_in, self.c_out, self.groups = c_in, c_out, int(groups)
        self.params["W"] = np.zeros((c_out, c_in // groups, *self.kernel))
        if bias:
            self.params["b"] = np.zeros(c_out)

    def product_shape(self) -> dict[str, Any] | None:
        """One dot product over (c_in / groups, kh, kw) per output channel and position."""
        k = self.c_in // self.groups * self.kernel[0] * self.kernel[1]
        return conv_shape(self, k, self._x_shape, self.c_out, self._out)

    def _pad(self, x: np.ndarray) -> np.ndarray:
        t, left, b, r = self.pads
        return np.pad(x, ((0, 0), (0, 0), (t, b), (left, r))) if any(self.pads) else x

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.c_in:
            raise ValueError(f"{self.name or 'GroupedConv2d'}: input shape {x.shape},"
                             f" expected (n, {self.c_in}, h, w)")
        lp = self.policy(ctx)
        check_patch_blocks(self.name or "GroupedConv2d", lp, self.kernel == (1, 1) and self.groups == 1)
        w, b = self.q_param("W", "weights", ctx), self.q_param("b", "biases", ctx)
        g, cg, og = self.groups, self.c_in // self.groups, self.c_out // self.groups
        xp = self._pad(x)
        kh, kw = self.kernel
        cols, ys = [], []
        for i in range(g):
            c, oh, ow = im2col_dilated(xp[:, i * cg:(i + 1) * cg], kh, kw, self.stride, self.dilation)
            cols.append(c)
            bi = None if b is None else b[i * og:(i + 1) * og]
            ys.append(mac_product(c, w[i * og:(i + 1) * og].reshape(og, -1).T, lp.fwd_mac, bi, ctx,
                                 f"{self.name}.fwd"))
        self._x, self._x_shape, self._xp_shape, self._cols = x, x.shape, xp.shape, cols
        self._w, self._out = w, (oh, ow)
        y = np.concatenate(ys, axis=1) if g > 1 else ys[0]
        y = y.reshape(x.shape[0], oh, ow, self.c_out).transpose(0, 3, 1, 2)
        return self.q(np.ascontiguousarray(y), "preacts", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        lp = self.policy(ctx)
        n = dy.shape[0]
        oh, ow = self._out
        g, cg, og = self.groups, self.c_in // self.groups, self.c_out // self.groups
        dyc = dy.transpose(0, 2, 3, 1).reshape(n * oh * ow, self.c_out)
        dw = [mac_product(self._cols[i].T, np.ascontiguousarray(dyc[:, i * og:(i + 1) * og]), lp.grad_mac,
                          None, ctx, f"{self.name}.grad").T for i in range(g)]  # activations as act
        self.grads["W"] = self.q(np.concatenate(dw).reshape(self.params["W"].shape), "grads", ctx, tensor="W")
        if "b" in self.params:
            self.grads["b"] = self.q(dy.sum(axis=(0, 2, 3)), "grads", ctx, tensor="b")
        if not self.needs_input_grad:
            return None  # type: ignore[return-value]
        mac = lp.bwd_mac
        parts = []
        for i in range(g):
            dyg = np.ascontiguousarray(dyc[:, i * og:(i + 1) * og])
            wg = self._w[i * og:(i + 1) * og]
            if mac is None or mac.block_scaled:
                dcols = mac_product(dyg, wg.reshape(og, -1), mac, None, ctx, f"{self.name}.bwd")
                dxp = col2im_dilated(dcols, (n, cg, *self._xp_shape[2:]), *self.kernel, self.stride,
                                     self.dilation, oh, ow)
                t, left = self.pads[:2]
                parts.append(dxp[:, :, t:t + self._x_shape[2], left:left + self._x_shape[3]])
            else:
                parts.append(self._transposed(dyg.reshape(n, oh, ow, og).transpose(0, 3, 1, 2), wg, mac, ctx))
        return self.q(np.concatenate(parts, axis=1) if g > 1 else parts[0], "errors", ctx)

    def _transposed(self, dy: np.ndarray, wg: np.ndarray, mac: emu.MAC, ctx: Context) -> np.ndarray:
        """One group's input gradient: dx[p] = sum over (c, i, j) of w[c, ., i, j] dy[(p + pad - d k) / s]."""
        n, og, oh, ow = dy.shape
        h, w = self._x_shape[2:]
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        t, left = self.pads[:2]
        eh, ew = dh * (kh - 1), dw * (kw - 1)
        hp, wp = self._xp_shape[2:]
        z = np.zeros((n, og, hp + eh, wp + ew))
        z[:, :, eh:eh + sh * (oh - 1) + 1:sh, ew:ew + sw * (ow - 1) + 1:sw] = dy
        z = z[:, :, t:t + h + eh, left:left + w + ew]
        cols, _, _ = im2col_dilated(z, kh, kw, (1, 1), (dh, dw))
        wt = wg[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in/g, C_out/g, kh, kw)
        dx = mac_product(cols, np.ascontiguousarray(wt).reshape(wt.shape[0], -1).T, mac, None, ctx,
                        f"{self.name}.bwd")
        return dx.reshape(n, h, w, -1).transpose(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f"{self.c_in}, {self.c_out}, kernel={self.kernel}, stride={self.stride}, pads={self.pads},"
                f" dilation={self.dilation}, groups={self.groups}")


class LinearND(Linear):
    """`Linear` on the last axis of an input of any rank >= 2: (..., n_in) -> (..., n_out).

    The leading axes are flattened into rows, so every row's products, roles
    and datapaths are exactly those of `Linear`.

    >>> lin = LinearND(3, 2, bias=False)
    >>> lin.forward(np.ones((4, 5, 3)), Context.float64()).shape
    (4, 5, 2)
    """

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if x.ndim < 2 or x.shape[-1] != self.n_in:
            raise ValueError(f"{self.name or 'LinearND'}: input shape {x.shape}, expected (..., {self.n_in})")
        self._lead = x.shape[:-1]
        y = super().forward(x.reshape(-1, self.n_in), ctx).reshape(*self._lead, self.n_out)
        if self.saturation_mask is not None:
            self.saturation_mask = self.saturation_mask.reshape(y.shape)
        return y

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        dx = super().backward(dy.reshape(-1, self.n_out), ctx)
        return None if dx is None else dx.reshape(*self._lead, self.n_in)  # type: ignore[return-value]


class MatMul(MultiLayer):
    """a @ b of two activations (np.matmul's broadcasting, both of rank >= 2), to ``preacts``.

    Forward through ``fwd_mac`` (a as its ``act``, b as its ``weight``
    operand); the two input gradients dy @ b^T and (dy^T @ a)^T through
    ``bwd_mac``, the errors dy (transposed) its ``act`` operand and the other
    activation its ``weight`` (as Linear's dy @ W^T), to ``errors``. No
    parameters.

    >>> MatMul().forward_many([np.ones((2, 1, 3)), np.ones((2, 3, 4))], Context.float64())[0].shape
    (2, 1, 4)
    """

    opens_layer = True

    def forward_many(self, xs: list[np.ndarray], ctx: Context) -> list[np.ndarray]:
        if len(xs) != 2 or xs[0].ndim < 2 or xs[1].ndim < 2:
            raise ValueError(f"{self.name or 'MatMul'}: takes two inputs of rank >= 2, got shapes"
                             f" {[x.shape for x in xs]}")
        a, b = xs
        self._a, self._b = a, b
        y = mac_product(a, b, self.policy(ctx).fwd_mac, None, ctx, f"{self.name}.fwd")
        return [self.q(y, "preacts", ctx)]

    def product_shape(self) -> dict[str, Any] | None:
        """a @ b of two activations: no weights; both operands are read as activations."""
        k = self._a.shape[-1]
        out = int(np.prod(np.broadcast_shapes(self._a.shape[:-1], self._b.shape[:-2] + (1,)))
                  * self._b.shape[-1])
        return dict(kind="matmul", macs=out * k, weights=0, activations_in=self._a.size + self._b.size,
                    activations_out=out, k=k)

    def product_operands(self) -> list[np.ndarray]:
        """The two operands of the last forward pass, a then b (`nets.Model.layer_shapes` reads them)."""
        return [self._a, self._b]

    def backward_many(self, dys: list[np.ndarray], ctx: Context) -> list[np.ndarray | None]:
        (dy,) = dys
        mac = self.policy(ctx).bwd_mac
        a, b = self._a, self._b
        # errors as bwd_mac's act operand and the other activation as its weight, as Linear's dy @ W^T
        da = mac_product(dy, np.ascontiguousarray(np.swapaxes(b, -1, -2)), mac, None, ctx, f"{self.name}.bwd")
        db = np.swapaxes(mac_product(np.ascontiguousarray(np.swapaxes(dy, -1, -2)), a, mac, None, ctx,
                                     f"{self.name}.bwd"), -1, -2)
        return [self.q(unbroadcast(da, a.shape), "errors", ctx),
                self.q(unbroadcast(db, b.shape), "errors", ctx)]
