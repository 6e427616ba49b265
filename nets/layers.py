"""Layers with explicit forward and backward passes, every product through `emu`.

Each layer computes its forward output and, from the gradient of that output,
its input gradient and its parameter gradients, side by side (micrograd's
layering, numpy arrays instead of scalars). A `Context` carries the run's
`PrecisionPolicy`, its `Quantizer` and the training flag; a layer asks the
policy for its own `LayerPolicy` by name and converts:

- weights and biases to the ``weights``/``biases`` roles before use;
- matmul and convolution outputs to ``preacts`` (computed by the layer's
  ``fwd_mac`` datapath, or in float64 when it is None);
- nonlinearity, pooling, normalisation outputs to ``activations``;
- every input gradient it returns to ``errors`` (computed by ``bwd_mac``);
- parameter gradients to ``grads`` (computed by ``grad_mac``).

Batch normalisation, with its own roles ``bn_params`` and ``bn_stats``, is in
`nets.norm` (``nets.layers.BatchNorm`` still names it).

Backward through a conversion is the identity (the straight-through
estimator), or, under a policy with ``ste="clipped"``, zero for the output
values (pre-activations, activations) that saturated on conversion: the
derivative of saturation (`Layer.saturation_mask`).

Shapes: dense inputs (n, features); images NCHW. Imports numpy, `emu` and
`nets.context` / `nets.policy` / `nets.product` / `nets.quant`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import emu
from emu import im2col
from emu.checks import check_bool, check_real, int_pair

from .args import check_instance, check_size
from .context import OUTPUT_ROLES, RANGED_FORMATS, Context, format_range
from .policy import LayerPolicy, is_block_format
from .product import mac_product
from .quant import Pieces, all_inside, sum_pieces, whole

__all__ = [
    "AvgPool2d", "Context", "Conv2d", "Dropout", "Elementwise", "Flatten", "Layer", "Linear", "MaxPool2d",
    "Maxout", "ReLU", "Residual", "Sequential", "Sigmoid", "Sign", "Tanh", "check_patch_blocks", "conv_shape",
    "mac_product", "mark_layer_boundaries", "name_layers"]


def _n_params(layer: Layer) -> int:
    return int(sum(v.size for v in layer.params.values()))


def conv_shape(layer: Layer, k: int, x_shape: tuple[int, ...], c_out: int, out: tuple[int, int]
               ) -> dict[str, Any]:
    """`Layer.product_shape` of a convolution: read ``x_shape``, wrote ``c_out`` maps of ``out`` = (oh, ow)
    positions, each a dot product of k terms in k / block_run runs of block_run = c_in/groups (blocks' axis).

    >>> [conv_shape(Conv2d(16, 2, 3), 144, (1, 16, 4, 4), 2, (2, 2))[f] for f in ("macs", "k", "block_run")]
    [1152, 144, 16]
    """
    return dict(kind="conv2d", macs=k * c_out * out[0] * out[1], weights=_n_params(layer), k=k,
                activations_in=int(np.prod(x_shape[1:])), activations_out=c_out * out[0] * out[1],
                block_run=layer.params["W"].shape[1])


def check_patch_blocks(name: str, lp: LayerPolicy, aligned: bool) -> None:
    """Refuse a convolution whose block-scaled ``fwd_mac`` would re-block block-scaled roles.

    The datapath encodes the im2col patches in blocks along (c_in, kh, kw); a
    block-scaled activations or weights role blocks along the channels
    (`nets.quant.block_axis`). Unless the two coincide (``aligned``: a 1x1
    kernel over all the input channels), the datapath would round the role's
    values a second time.

    Raises:
        ValueError: naming the layer, the role and what to give instead.
    """
    mac = lp.fwd_mac
    if mac is None or not mac.block_scaled or aligned:
        return
    for role in ("activations", "weights"):
        fmt = getattr(lp, role).fmt
        if is_block_format(fmt):
            raise ValueError(f"{name}: fwd_mac [{mac}] encodes the im2col patches in blocks along (c_in, kh,"
                             f" kw), but the {role} role's {fmt} blocks run along the channels, so its values"
                             f" would be rounded twice; give this layer's {role} role float64 (the datapath"
                             " then encodes the operand once) or an element format")


class Layer:
    """Base class: a name, parameters and their gradients, forward and backward."""

    #: False for a layer that only moves values (a reshape): a layer boundary after it falls on the layer
    #: before it, which converts the value (`mark_layer_boundaries`)
    converts = True

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        #: False for the network's first operation: the error with respect to the data is never used,
        #: so `backward` skips its product and returns None
        self.needs_input_grad = True
        #: layer boundaries for the "layer" rounding granularity (set by `mark_layer_boundaries`)
        self.ends_layer = True
        self.starts_layer = True
        #: under ``ste="clipped"``: False where the last forward output saturated on conversion
        self.saturation_mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def layers(self) -> list[Layer]:
        """This layer and the layers inside it (for parameters and naming)."""
        return [self]

    def product_shape(self) -> dict[str, Any] | None:
        """The sizes of this layer's product in its last forward pass, or None for a layer without one.

        A dict of kind, macs, weights (biases included), activations_in (values read besides the weights),
        activations_out and k (the dot-product length): the fields of ``hwmodel.LayerSpec`` but its name
        and datapath. `Model.layer_shapes` runs one example through the network and collects them.
        """
        return None

    def product_operands(self) -> list[np.ndarray]:
        """The activations this layer's product read in its last forward pass (a convolution's input as it
        came, not its patches; a product of two activations: both), for a layer with a `product_shape`."""
        return [self._x]

    def product_weights(self) -> np.ndarray:
        """The weights the last forward pass multiplied, as the ``weights`` role converted them."""
        return self._w

    def policy(self, ctx: Context) -> LayerPolicy:
        return ctx.policy.for_layer(self.name)

    def q(self, x: np.ndarray | Pieces, role: str, ctx: Context, scale: Any = None, boundary: bool = False,
          tensor: str | None = None, kept_from: np.ndarray | None = None) -> np.ndarray:
        """x converted to this layer's format for ``role`` where the policy's granularity rounds it
        (``boundary``: x is the network's input, crossing a layer boundary anyway; ``tensor``: the parameter
        x belongs to, which keys a dynamic fixed point group of a parameter role; ``kept_from``: as in
        `Quantizer`; x as `Pieces`: made only where it is not converted on the way). A layer's output
        (``preacts``, ``activations``) under `STE.CLIPPED` also sets `saturation_mask`."""
        if role in OUTPUT_ROLES and not boundary:
            self.saturation_mask = None
        plan = ctx.role_plan(self, role, boundary)
        rf = plan.rf
        if rf is None:
            return whole(x)
        if plan.clipped:
            x, lo, hi = whole(x), plan.lo, plan.hi
            if lo is None:  # a dynamic group's format of the moment (none while it warms up)
                f = ctx.quant.format_of(rf, self.name, role)
                lo, hi = format_range(f) if type(f) in RANGED_FORMATS else (None, None)
            if lo is not None and not all_inside(x.reshape(-1), lo, hi):  # counted: where the rule acts
                self.saturation_mask = (x <= hi) & (x >= lo)
                n = self.saturation_mask.size - int(np.count_nonzero(self.saturation_mask))
                ctx.quant.counts[(self.name, role)].outside += n
        return ctx.quant(x, rf, self.name, role, scale, tensor=tensor, kept_from=kept_from)

    def q_param(self, name: str, role: str, ctx: Context, tensor: str | None = None) -> np.ndarray | None:
        """Parameter ``name`` (None if absent) for ``role``, as is where it holds the role's values."""
        p = self.params.get(name)
        return None if p is None else self.q(p, role, ctx, tensor=tensor, kept_from=p)

    def grad_of_output(self, dy: np.ndarray) -> np.ndarray:
        """The gradient reaching this layer's output: dy, zeroed where the output saturated.

        The mask is set only under `STE.CLIPPED` (`q`); otherwise dy passes unchanged.
        """
        return dy if self.saturation_mask is None else dy * self.saturation_mask

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class Linear(Layer):
    """y = x @ W + b with W of shape (in, out)."""

    def __init__(self, n_in: int, n_out: int, name: str = "", bias: bool = True) -> None:
        super().__init__(name)
        n_in, n_out = check_size(n_in, "Linear", "n_in"), check_size(n_out, "Linear", "n_out")
        self.params["W"] = np.zeros((n_in, n_out))
        if check_bool(bias, "Linear", "bias"):
            self.params["b"] = np.zeros(n_out)
        self.n_in, self.n_out = n_in, n_out

    def product_shape(self) -> dict[str, Any] | None:
        """x (rows, n_in) @ W: rows x n_in x n_out MACs (rows: the tokens of one example for `LinearND`)."""
        rows = self._x.shape[0]
        return dict(kind="linear", macs=rows * self.n_in * self.n_out, weights=_n_params(self),
                    activations_in=rows * self.n_in, activations_out=rows * self.n_out, k=self.n_in)

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"{self.name or 'Linear'}: input shape {x.shape}, expected (n, {self.n_in})")
        lp = self.policy(ctx)
        # a per-channel scale (BWN/TWN) runs over output channels: axis 1 of W (in, out)
        w = self.q(self.params["W"].T, "weights", ctx, kept_from=self.params["W"]).T
        b = self.q_param("b", "biases", ctx)
        self._x, self._w = x, w
        return self.q(mac_product(x, w, lp.fwd_mac, b, ctx, f"{self.name}.fwd"), "preacts", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        lp = self.policy(ctx)
        dw = mac_product(self._x.T, dy, lp.grad_mac, None, ctx, f"{self.name}.grad")
        self.grads["W"] = self.q(dw, "grads", ctx, tensor="W")
        if "b" in self.params:
            self.grads["b"] = self.q(dy.sum(axis=0), "grads", ctx, tensor="b")
        if not self.needs_input_grad:
            return None  # type: ignore[return-value]
        return self.q(mac_product(dy, self._w.T, lp.bwd_mac, None, ctx, f"{self.name}.bwd"), "errors", ctx)

    def extra_repr(self) -> str:
        return f"{self.n_in}, {self.n_out}"


def _col2im(dcols: np.ndarray, x_shape: tuple[int, ...], kh: int, kw: int, stride: tuple[int, int],
            padding: tuple[int, int], oh: int, ow: int) -> np.ndarray:
    """The adjoint of `emu.im2col`: scatter-add patch gradients back to NCHW."""
    n, c, h, w = x_shape
    (ph, pw), (sh, sw) = padding, stride
    dx = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    d = dcols.reshape(n, oh, ow, c, kh, kw)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dx[:, :, ph:ph + h, pw:pw + w]


class Conv2d(Layer):
    """2-D convolution (cross-correlation), NCHW, W of shape (C_out, C_in, kh, kw).

    Forward and weight gradient are dot products over (c_in, kh, kw) and over
    (n, oh, ow) through ``fwd_mac`` / ``grad_mac``. The input gradient is, with
    a ``bwd_mac``, the convolution of the zero-dilated, padded output gradient
    with the flipped kernels (each input gradient one dot product over (c_out,
    kh, kw)); in float64 it is the scatter-add of the patch gradients (the same
    sum)."""

    def __init__(self, c_in: int, c_out: int, kernel: Any, stride: Any = 1, padding: Any = 0, name: str = "",
                 bias: bool = True) -> None:
        super().__init__(name)
        c_in, c_out = check_size(c_in, "Conv2d", "c_in"), check_size(c_out, "Conv2d", "c_out")
        self.kernel, self.stride, self.padding = (int_pair(kernel, "Conv2d", "kernel"),
                                                  int_pair(stride, "Conv2d", "stride"),
                                                  int_pair(padding, "Conv2d", "padding"))
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"Conv2d: bad shape c_in={c_in}, c_out={c_out}, kernel={kernel},"
                             f" stride={stride}, padding={padding}")
        self.c_in, self.c_out = c_in, c_out
        self.params["W"] = np.zeros((c_out, c_in, *self.kernel))
        if check_bool(bias, "Conv2d", "bias"):
            self.params["b"] = np.zeros(c_out)

    def product_shape(self) -> dict[str, Any] | None:
        """One dot product over (c_in, kh, kw) per output channel and position."""
        k = self.c_in * self.kernel[0] * self.kernel[1]
        return conv_shape(self, k, self._x_shape, self.c_out, self._out)

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != self.c_in:
            raise ValueError(f"{self.name or 'Conv2d'}: input shape {x.shape},"
                             f" expected (n, {self.c_in}, h, w)")
        lp = self.policy(ctx)
        check_patch_blocks(self.name or "Conv2d", lp, self.kernel == (1, 1))
        w, b = self.q_param("W", "weights", ctx), self.q_param("b", "biases", ctx)
        kh, kw = self.kernel
        mac, seed = (None, None) if lp.fwd_mac is None else ctx.quant.datapath(lp.fwd_mac)
        direct = mac is not None and not mac.block_scaled and mac.input_rounding != emu.Rounding.STOCHASTIC
        if direct and not ctx.training:  # inference: the patches' sums, without float64 patches where it can
            y, st = emu.conv2d(x, w, mac, self.stride, self.padding, bias=b, return_stats=True, seed=seed)
            ctx.count_mac(f"{self.name}.fwd", int(y.size) * self.c_in * kh * kw, st)
            self._x, self._x_shape, self._cols, self._w, self._out = x, x.shape, None, w, y.shape[2:]
            return self.q(np.ascontiguousarray(y), "preacts", ctx)
        cols, oh, ow = im2col(x, kh, kw, self.stride, self.padding)
        y = mac_product(cols, w.reshape(self.c_out, -1).T, mac, b, ctx, f"{self.name}.fwd")
        self._x, self._x_shape, self._cols, self._w, self._out = x, x.shape, cols, w, (oh, ow)
        y = y.reshape(x.shape[0], oh, ow, self.c_out).transpose(0, 3, 1, 2)
        return self.q(np.ascontiguousarray(y), "preacts", ctx)

    def patches(self) -> np.ndarray:
        """The im2col patches (N*OH*OW, C_in*kh*kw) of the last forward input (made anew after inference)."""
        cols = self._cols
        return cols if cols is not None else im2col(self._x, *self.kernel, self.stride, self.padding)[0]

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        lp = self.policy(ctx)
        n = dy.shape[0]
        oh, ow = self._out
        dyc = dy.transpose(0, 2, 3, 1).reshape(n * oh * ow, self.c_out)
        # activations as grad_mac's act operand, errors as its weight operand, as Linear's
        dw = mac_product(self.patches().T, dyc, lp.grad_mac, None, ctx, f"{self.name}.grad").T
        dw = dw.reshape(self.params["W"].shape)
        self.grads["W"] = self.q(dw, "grads", ctx, tensor="W")
        if "b" in self.params:
            self.grads["b"] = self.q(dy.sum(axis=(0, 2, 3)), "grads", ctx, tensor="b")
        kh, kw = self.kernel
        if not self.needs_input_grad:
            return None  # type: ignore[return-value]
        if lp.bwd_mac is None or lp.bwd_mac.block_scaled:
            # a block datapath sums over the output channels; the kernel taps add up in float64 (col2im)
            dcols = mac_product(dyc, self._w.reshape(self.c_out, -1), lp.bwd_mac, None, ctx,
                                f"{self.name}.bwd")
            dx = _col2im(dcols, self._x_shape, kh, kw, self.stride, self.padding, oh, ow)
        else:
            dx = self._transposed_conv(dy, lp.bwd_mac, ctx)
        return self.q(dx, "errors", ctx)

    def _transposed_conv(self, dy: np.ndarray, mac: emu.MAC, ctx: Context) -> np.ndarray:
        n, _, h, w = self._x_shape
        sh, sw = self.stride
        ph, pw = self.padding
        kh, kw = self.kernel
        oh, ow = self._out
        dil = np.zeros((n, self.c_out, (oh - 1) * sh + 1, (ow - 1) * sw + 1))
        dil[:, :, ::sh, ::sw] = dy
        # pad so that every input position (including the rows the forward never reached) gets its sum
        top, left = kh - 1 - ph, kw - 1 - pw
        bottom = h + kh - 1 - top - dil.shape[2]
        right = w + kw - 1 - left - dil.shape[3]
        pad = [(0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))]
        z = np.pad(dil, pad)
        z = z[:, :, max(-top, 0):z.shape[2] - max(-bottom, 0), max(-left, 0):z.shape[3] - max(-right, 0)]
        wt = self._w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C_in, C_out, kh, kw)
        mac, seed = ctx.quant.datapath(mac)
        dx, st = emu.conv2d(z, np.ascontiguousarray(wt), mac, return_stats=True, seed=seed)
        ctx.count_mac(f"{self.name}.bwd", dx.size * wt.shape[1] * kh * kw, st)
        return dx

    def extra_repr(self) -> str:
        return (f"{self.c_in}, {self.c_out}, kernel={self.kernel}, stride={self.stride},"
                f" padding={self.padding}")


class Elementwise(Layer):
    """y = f(x) converted to ``activations``; dx = f'(x) dy converted to ``errors`` (subclasses give f
    and its derivative df(x, y); ``keeps_fixed``: f maps every value of a fixed-point format to one of it)."""
    keeps_fixed = False

    def f(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def pieces(self, x: np.ndarray) -> Pieces | None:
        """f(x) as `Pieces` (made piece by piece as its conversion takes it), where f allows: None here."""
        return None

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        self._x = x
        y = None if ctx.training else self.pieces(x)  # evaluation: no backward reads y
        self._y = self.f(x) if y is None else None
        kept = x if self.keeps_fixed else None
        return self.q(self._y if y is None else y, "activations", ctx, kept_from=kept)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        return self.q(self.df(self._x, self._y) * dy, "errors", ctx)


class ReLU(Elementwise):
    """max(x, 0); derivative 1 for x > 0."""
    keeps_fixed = True

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0.0)

    def pieces(self, x: np.ndarray) -> Pieces | None:
        """max(x, 0) piece by piece for a C-contiguous float64 x (exact, so any pieces give its values)."""
        if type(x) is not np.ndarray or x.dtype != np.float64 or not x.flags.c_contiguous:
            return None
        xf = x.reshape(-1)
        return Pieces(x.shape, lambda lo, hi, buf: np.maximum(xf[lo:hi], 0.0, out=buf[:hi - lo]))

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x > 0).astype(np.float64)


class Tanh(Elementwise):
    """tanh(x); derivative 1 - tanh(x)^2."""

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.tanh(x)

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 1.0 - y * y


class Sigmoid(Elementwise):
    """1 / (1 + exp(-x)); derivative s (1 - s)."""

    def f(self, x: np.ndarray) -> np.ndarray:
        return 0.5 * (1.0 + np.tanh(0.5 * x))

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return y * (1.0 - y)


class Sign(Elementwise):
    """Binarisation sign(x) (+1 for x >= 0) with the straight-through estimator.

    Backward passes dy where |x| <= 1 and 0 elsewhere (Hubara et al.'s
    "hard tanh" estimator), as binarized networks train.
    """

    def f(self, x: np.ndarray) -> np.ndarray:
        return np.where(x >= 0, 1.0, -1.0)

    def df(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (np.abs(x) <= 1.0).astype(np.float64)


class Maxout(Layer):
    """Maximum over groups of k consecutive features: (n, g*k) -> (n, g) (Goodfellow et al. 2013)."""

    def __init__(self, k: int, name: str = "") -> None:
        super().__init__(name)
        self.k = check_size(k, "Maxout", "k")

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] % self.k:
            raise ValueError(f"{self.name or 'Maxout'}: {x.shape[1] if x.ndim == 2 else x.shape} features are"
                             f" not a multiple of k={self.k}")
        g = x.reshape(x.shape[0], -1, self.k)
        self._arg = g.argmax(axis=2)
        self._shape = x.shape
        return self.q(np.take_along_axis(g, self._arg[:, :, None], 2)[:, :, 0], "activations", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        dx = np.zeros((self._shape[0], self._shape[1] // self.k, self.k))
        np.put_along_axis(dx, self._arg[:, :, None], dy[:, :, None], 2)
        return self.q(dx.reshape(self._shape), "errors", ctx)

    def extra_repr(self) -> str:
        return f"k={self.k}"


class _Pool(Layer):
    def __init__(self, kernel: Any = 2, stride: Any = None, name: str = "") -> None:
        super().__init__(name)
        who = type(self).__name__
        self.kernel = int_pair(kernel, who, "kernel")
        self.stride = self.kernel if stride is None else int_pair(stride, who, "stride")
        if min(self.kernel) < 1 or min(self.stride) < 1:
            raise ValueError(f"{who}: kernel={kernel} and stride={stride} must be >= 1")

    def _patches(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4:
            raise ValueError(f"{self.name or type(self).__name__}: input shape {x.shape}, expected NCHW")
        n, c, h, w = x.shape
        kh, kw = self.kernel
        cols, oh, ow = im2col(x.reshape(n * c, 1, h, w), kh, kw, self.stride, (0, 0))
        self._shape, self._out = x.shape, (oh, ow)
        return cols  # (n*c*oh*ow, kh*kw)

    def _back(self, dcols: np.ndarray) -> np.ndarray:
        (n, c, h, w), (oh, ow), (kh, kw) = self._shape, self._out, self.kernel
        return _col2im(dcols, (n * c, 1, h, w), kh, kw, self.stride, (0, 0), oh, ow).reshape(self._shape)

    def _out_shape(self) -> tuple[int, int, int, int]:
        n, c, _, _ = self._shape
        return (n, c, *self._out)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


class MaxPool2d(_Pool):
    """Maximum over kh x kw windows (first maximum on ties); its values are values of x (`Elementwise`)."""
    keeps_fixed = True

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        cols = self._patches(x)
        self._arg = cols.argmax(axis=1)
        self._ncols = cols.shape
        y = cols[np.arange(cols.shape[0]), self._arg].reshape(self._out_shape())
        return self.q(y, "activations", ctx, kept_from=x if self.keeps_fixed else None)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        d = np.zeros(self._ncols)
        d[np.arange(d.shape[0]), self._arg] = dy.reshape(-1)
        return self.q(self._back(d), "errors", ctx)


class AvgPool2d(_Pool):
    """Mean over kh x kw windows."""

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        cols = self._patches(x)
        self._ncols = cols.shape
        return self.q(cols.mean(axis=1).reshape(self._out_shape()), "activations", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        d = np.repeat(dy.reshape(-1, 1) / self._ncols[1], self._ncols[1], axis=1)
        return self.q(self._back(d), "errors", ctx)


class Flatten(Layer):
    """(n, ...) -> (n, prod(...)); no conversion."""

    converts = False

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        return dy.reshape(self._shape)


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability p and scale the rest by 1/(1-p)."""

    def __init__(self, p: float = 0.5, name: str = "") -> None:
        super().__init__(name)
        check_real(p, "Dropout", "p", 0.0, 1.0, hi_open=True)
        self.p = p

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        if not ctx.training or self.p == 0.0:  # nothing dropped; the output still takes the role
            self._mask = None
            return self.q(x, "activations", ctx)
        if ctx.rng is None:  # (a fallback generator made afresh per call drew the same mask at every step)
            raise ValueError("Dropout: ctx.rng=None in training; the mask is drawn from the context's rng")
        self._mask = (ctx.rng.random(x.shape) >= self.p) / (1.0 - self.p)
        return self.q(x * self._mask, "activations", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        return self.q(dy if self._mask is None else dy * self._mask, "errors", ctx)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Sequential(Layer):
    """Layers applied in order."""

    def __init__(self, *layers: Layer, name: str = "") -> None:
        super().__init__(name)
        self.children = [check_instance(c, Layer, "Sequential", f"layers[{i}]", "a nets Layer (Linear, ReLU,"
                                        " ...)") for i, c in enumerate(layers)]

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        for layer in self.children:
            x = layer.forward(x, ctx)
        return x

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        for layer in reversed(self.children):
            dy = layer.backward(layer.grad_of_output(dy), ctx)
        return dy

    def layers(self) -> list[Layer]:
        out: list[Layer] = []
        for layer in self.children:
            out += layer.layers()
        return out

    def __repr__(self) -> str:
        return "Sequential(\n" + "\n".join(f"  {c.name}: {c!r}" for c in self.children) + "\n)"


class Residual(Layer):
    """y = F(x) + shortcut(x): the residual block of He et al. 2016.

    ``shortcut`` is None for the identity or a layer (e.g. a 1x1 Conv2d) when
    shapes change. The sum is converted to this block's ``activations`` role.
    """

    def __init__(self, body: Sequential, shortcut: Layer | None = None, name: str = "") -> None:
        super().__init__(name)
        self.body = check_instance(body, Sequential, "Residual", "body", "a Sequential")
        self.shortcut = check_instance(shortcut, (Layer, type(None)), "Residual", "shortcut",
                                       "None or a Layer")

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        s = x if self.shortcut is None else self.shortcut.forward(x, ctx)
        return self.q(sum_pieces(self.body.forward(x, ctx), s), "activations", ctx)

    def backward(self, dy: np.ndarray, ctx: Context) -> np.ndarray:
        dx = self.body.backward(self.body.grad_of_output(dy), ctx)
        ds = dy if self.shortcut is None else self.shortcut.backward(self.shortcut.grad_of_output(dy), ctx)
        return self.q(dx + ds, "errors", ctx)

    def layers(self) -> list[Layer]:
        return [self, *self.body.layers(), *([] if self.shortcut is None else self.shortcut.layers())]

    def __repr__(self) -> str:
        return f"Residual(body={self.body!r}, shortcut={self.shortcut!r})"


def name_layers(root: Layer) -> None:
    """Give every unnamed layer of a tree a unique name ``<type><index>`` (conv1, relu2, ...)."""
    counts: dict[str, int] = {}
    seen = {layer.name for layer in root.layers() if layer.name}
    for layer in root.layers():
        if layer.name:
            continue
        t = type(layer).__name__.lower()
        while True:
            counts[t] = counts.get(t, 0) + 1
            candidate = f"{t}{counts[t]}"
            if candidate not in seen:
                break
        layer.name = candidate
        seen.add(candidate)


def mark_layer_boundaries(seq: Sequential, at_end: bool = True) -> None:
    """Set ``ends_layer`` / ``starts_layer`` of the operations of ``seq`` (and
    of the residual blocks in it) for the "layer" rounding granularity.

    A layer boundary lies before every weighted operation (Linear, Conv2d),
    before and after every residual block, and at the end of the network
    (``at_end``). An operation ends a layer when a boundary follows it; it
    starts one when a boundary precedes it (its backward output is then the
    error handed to the previous layer). Inside a residual block the body's
    last operation and the shortcut do not end a layer (the block rounds
    their sum). Example: Linear, ReLU, Linear -> only the ReLU's output and the
    last Linear's output are rounded forwards, only the Linears' input errors
    backwards. Operations that only move values (``converts`` False: Flatten)
    are looked through: ReLU, Flatten, Linear rounds the ReLU's output.
    """
    ch = seq.children
    opens = (Linear, Conv2d, Residual)
    for i, op in enumerate(ch):
        j = i + 1
        while j < len(ch) and not ch[j].converts:
            j += 1
        nxt = ch[j] if j < len(ch) else None
        op.ends_layer = isinstance(op, Residual) or isinstance(nxt, opens) or (nxt is None and at_end)
        after_block = i > 0 and isinstance(ch[i - 1], Residual)
        op.starts_layer = isinstance(op, opens) or after_block or (i == 0 and at_end)
        if isinstance(op, Residual):
            mark_layer_boundaries(op.body, at_end=False)
            if op.shortcut is not None:
                op.shortcut.ends_layer = op.shortcut.starts_layer = False
        elif isinstance(op, Sequential):
            mark_layer_boundaries(op, at_end=op.ends_layer)


def __getattr__(name: str) -> Any:
    """``BatchNorm``, which lives in `nets.norm` (imported on first use: it builds on this module)."""
    if name == "BatchNorm":
        from .norm import BatchNorm

        return BatchNorm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
