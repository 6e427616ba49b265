"""Models: a named tree of layers with a loss, and builders for MLPs, LeNet-5 and a small ResNet.

A `Model` owns a root `Sequential`, initialises its parameters from a seed,
names every layer uniquely (so a `PrecisionPolicy` can address it), and
prints each layer with the formats a policy gives it. Models are built from
readable Python specs (`from_spec`) or the builders. Imports numpy and the
other `nets` modules.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from emu.checks import check_int, check_real, real_array

from . import init as inits
from .args import MAX_SIZE, check_instance
from .graph import Graph
from .layers import (
    AvgPool2d,
    Context,
    Conv2d,
    Dropout,
    Flatten,
    Layer,
    Linear,
    Maxout,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Sign,
    Tanh,
    mark_layer_boundaries,
    name_layers,
)
from .losses import LOSSES
from .norm import BatchNorm
from .policy import EvalRounding, LayerPolicy, PrecisionPolicy
from .quant import Quantizer, block_axis, check_quant, whole

__all__ = ["Model", "activation_name", "evaluation_context", "from_spec", "lenet5", "mlp", "resnet_small"]

ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid, "sign": Sign}


def activation_name(value: object, where: str) -> str:
    """``value`` as a name of `ACTIVATIONS` (case and surrounding spaces ignored), else a ValueError naming
    ``where``'s ``activation`` and the names.

    >>> activation_name(" ReLU", "mlp")
    'relu'
    """
    if isinstance(value, str) and value.strip().lower() in ACTIVATIONS:
        return value.strip().lower()
    raise ValueError(f"{where}: activation={value!r} is not one of {', '.join(ACTIVATIONS)}")


#: a layer's settings by what it needs to use them: a parameter (any: the gradient and optimiser roles),
#: a weight W, a bias b, normalisation parameters, running statistics, a product (the datapaths)
_NEEDS = {"weights": "W", "biases": "b", "bn_params": "gamma", "grads": "", "master": "", "update": "",
          "momentum": "", "moments": ""}
_MACS = ("fwd_mac", "bwd_mac", "grad_mac")


def _output_role(layer: Layer) -> str | None:
    """The role ``layer`` converts its output to: ``preacts`` for a product, ``activations`` for the other
    layers that compute, None for one that only moves values (a reshape, a concatenation)."""
    if type(layer).product_shape is not Layer.product_shape:
        return "preacts"
    return "activations" if layer.converts else None


def _idle_settings(layer: Layer, lp: LayerPolicy, policy: PrecisionPolicy, first: bool,
                   errors_at_boundary: bool) -> list[str]:
    """The settings of override ``lp`` given (not a `LayerPolicy`'s own default, float64 or None) and
    unlike the policy's default that ``layer`` cannot use: a parameter role of a layer without that
    parameter (any parameter, for the gradient and optimiser roles), running statistics of a layer without
    them (BatchNorm's), a datapath of a layer without a product, an output role (``preacts``,
    ``activations``) the layer does not convert its output to, or does not convert at the policy's
    granularity (the network's ``first`` layer converts the input to its ``activations`` too, and a layer
    whose forward or gradient datapath reads activations names their format by that role: `LayerPolicy`
    holds the two equal), ``errors`` on a layer that neither converts the error it passes back nor, at a
    boundary (``errors_at_boundary``: the loss gradient, a gradient summed at a graph's fork), another."""
    blank, default = LayerPolicy(), policy.default

    def given(f: str) -> bool:
        return getattr(lp, f) != getattr(blank, f) and getattr(lp, f) != getattr(default, f)

    idle = [r for r, need in _NEEDS.items()
            if given(r) and (need not in layer.params if need else not layer.params)]
    if given("bn_stats") and not isinstance(layer, BatchNorm):
        idle.append("bn_stats")
    if type(layer).product_shape is Layer.product_shape:  # no product of its own
        idle += [m for m in _MACS if given(m)]
    out = _output_role(layer)
    for role in ("preacts", "activations"):
        used = role == out and policy.rounds(role, layer.ends_layer, layer.starts_layer)
        if role == "activations":
            used = used or (first and policy.rounds(role, True, True)) or any(
                getattr(lp, m) is not None for m in ("fwd_mac", "grad_mac"))
        if given(role) and not used:
            idle.append(role)
    passes_back = out is not None and policy.rounds("errors", layer.ends_layer, layer.starts_layer)
    if given("errors") and not (passes_back or (errors_at_boundary and policy.rounds("errors", True, True))):
        idle.append("errors")
    return idle


class Model:
    """A network: a root `Sequential`, a loss, and seeded initial parameters.

    Args:
        root: the layers (a `Sequential`; another value is a TypeError naming it).
        loss: ``cross_entropy``, ``mse`` or ``square_hinge``.
        init: initialisation of weights (``glorot``, ``he``, ``orthonormal``,
            ``sparse``, ``glorot_normal``; biases start at 0), or None to keep the
            weights the layers hold (`nets.onnx.from_onnx`).
        seed: seed of the initialisation.
    """

    def __init__(self, root: Sequential, loss: str = "cross_entropy", init: str | None = "glorot",
                 seed: int = 0) -> None:
        if loss not in LOSSES:
            raise ValueError(f"Model: loss={loss!r} is not one of {', '.join(LOSSES)}")
        if init is not None and init not in inits.INITS:
            raise ValueError(f"Model: init={init!r} is not one of {', '.join(inits.INITS)}")
        self.root = root = check_instance(root, Sequential, "Model", "root", "a Sequential of layers")
        self.loss_name = loss
        self.loss = LOSSES[loss]
        name_layers(root)
        mark_layer_boundaries(root)
        if root.children:
            root.children[0].needs_input_grad = False  # nothing uses the error of the data
        names = [layer.name for layer in root.layers()]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"Model: layer names must be unique; repeated: {', '.join(sorted(dup))}")
        if init is None:
            return  # the layers keep the weights they hold (an imported model)
        rng = np.random.default_rng(check_int(seed, "Model", "seed", 0))
        for layer in self.layers():
            if "W" in layer.params:
                layer.params["W"] = inits.INITS[init](layer.params["W"].shape, rng)

    def layers(self) -> list[Layer]:
        """Every layer, in forward order."""
        return self.root.layers()

    def parameters(self) -> list[tuple[Layer, str]]:
        """(layer, parameter name) for every parameter."""
        return [(layer, k) for layer in self.layers() for k in layer.params]

    def n_parameters(self) -> int:
        """Number of scalar parameters."""
        return int(sum(layer.params[k].size for layer, k in self.parameters()))

    def get_flat(self) -> np.ndarray:
        """All parameters as one vector (for the full-batch optimisers)."""
        return np.concatenate([layer.params[k].ravel() for layer, k in self.parameters()])

    def set_flat(self, v: np.ndarray) -> None:
        """Set all parameters from one vector."""
        i = 0
        for layer, k in self.parameters():
            n = layer.params[k].size
            layer.params[k] = v[i:i + n].reshape(layer.params[k].shape).copy()
            i += n

    def grads_flat(self) -> np.ndarray:
        """All gradients of the last backward pass as one vector."""
        return np.concatenate([layer.grads[k].ravel() for layer, k in self.parameters()])

    def forward(self, x: np.ndarray, ctx: Context) -> np.ndarray:
        """The network output; the input is first converted to the first layer's ``activations`` role."""
        first = self.layers()[0]
        return self.root.forward(first.q(np.asarray(x, np.float64), "activations", ctx, boundary=True), ctx)

    def output_layer(self) -> Layer:
        """The layer whose output is the network's output: the last operation of the root (a residual
        block, not its body, when the network ends in one)."""
        layer: Layer = self.root
        while isinstance(layer, Sequential) and layer.children:
            layer = layer.children[-1]
        return layer

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray, ctx: Context) -> tuple[float, np.ndarray]:
        """Forward, loss, backward: returns the loss and the output (the gradients are in the layers).

        The loss gradient dL/dz is converted to the output layer's ``errors``
        role (a layer boundary, so under every granularity but "batch") before
        it is back-propagated: under ``errors="fx<2,8>"`` the last layer's
        backward receives multiples of 2^-8.
        """
        z = self.forward(x, ctx)
        loss, dz = self.loss(z, y)
        dz = self.output_layer().q(dz, "errors", ctx, boundary=True)
        self.root.backward(dz, ctx)
        return loss, z

    def check_policy(self, policy: PrecisionPolicy | None, func: str) -> None:
        """Refuse a policy that is not a `PrecisionPolicy` (or None), or whose per-layer overrides name a
        layer this model does not have, or set (differently from the default) a role or datapath of a
        tensor or product the layer does not have (`_idle_settings`): an override that would change
        nothing, silently.

        >>> from nets.policy import LayerPolicy
        >>> policy = PrecisionPolicy().with_layer("fc2", LayerPolicy())
        >>> mlp([2, 3, 2]).check_policy(policy, "train")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: train: the policy overrides layer(s) ['fc2'], which this model does not have; its ...
        """
        if policy is not None and not isinstance(policy, PrecisionPolicy):
            raise TypeError(f"{func}: policy={policy!r} must be a PrecisionPolicy (e.g."
                            " PrecisionPolicy.uniform or .preset) or None")
        if policy is None or not policy.layers:
            return
        names = [layer.name for layer in self.layers()]
        unknown = sorted(set(policy.layers) - set(names))
        if unknown:
            raise ValueError(f"{func}: the policy overrides layer(s) {unknown}, which this model does not"
                             f" have; its layers: {', '.join(names)}")
        first, last = self.layers()[0], self.output_layer()
        graphs = [g for g in self.root.children if isinstance(g, Graph)]
        boundary = {last.name}.union(*(g.boundary_error_layers() for g in graphs))
        for layer in self.layers():
            lp = policy.layers.get(layer.name)
            idle = [] if lp is None else _idle_settings(layer, lp, policy, layer is first,
                                                        layer.name in boundary)
            if idle:
                raise ValueError(f"{func}: the policy's override of layer {layer.name!r} sets {idle}, which"
                                 f" {type(layer).__name__} {layer.name!r} never uses (no such tensor, product"
                                 " or output conversion), so the setting would change nothing; leave it as"
                                 " the default's")

    def rows_mixed_by(self) -> str | None:
        """The node of an imported graph whose inference output mixes the rows of x (axis 0; see
        `nets.graph.Graph`), or None when every output row comes from its own input row, as in every
        network built in nets."""
        for child in self.root.children:
            if isinstance(child, Graph) and child.rows_mixed_by:
                return child.rows_mixed_by
        return None

    def fixed_rows(self) -> int | None:
        """The rows every input of an imported graph must have (`nets.graph.Graph`'s ``rows``: a batch size
        its folded Shape nodes hold), or None: any number, as in every network built in nets."""
        for child in self.root.children:
            if isinstance(child, Graph) and child.rows is not None:
                return child.rows
        return None

    def rows_per_batch(self, n: int, batch_size: int | None, func: str) -> int:
        """The rows per batch when inference runs n rows: ``batch_size`` (None: 512), or, for a model whose
        outputs mix its rows (`rows_mixed_by`), all n at once; for a graph that holds its batch size
        (`fixed_rows`), that size.

        Raises:
            ValueError: ``batch_size`` below 1, or below n for a model whose outputs mix its rows (batches
                would change its outputs); for a graph that holds its batch size, a ``batch_size`` other
                than it or an n that is not a multiple of it.
        """
        if batch_size is not None:
            check_int(batch_size, func, "batch_size", 1)
        rows = self.fixed_rows()
        if rows is not None:
            if batch_size not in (None, rows) or n % rows:
                raise ValueError(f"{func}: this imported graph holds a batch size of {rows} rows (its ONNX"
                                 f" input's fixed first dimension, folded into constants by its Shape nodes):"
                                 f" x needs a multiple of {rows} rows (it has {n}) and batch_size None or"
                                 f" {rows} (got {batch_size}); or export the model with a dynamic batch"
                                 " dimension")
            return rows
        mixer = self.rows_mixed_by()
        if mixer is None:
            return 512 if batch_size is None else batch_size
        if batch_size is not None and batch_size < n:
            raise ValueError(f"{func}: batch_size={batch_size} would split the {n} rows of x, but this"
                             f" model's outputs mix its rows ({mixer}); pass batch_size=None (all rows at"
                             f" once) or at least {n}")
        return max(n, 1)

    def predict(self, x: np.ndarray, policy: PrecisionPolicy | Context | None = None,
                batch_size: int | None = None, *, quant: Quantizer | None = None,
                seed: int | None = None) -> np.ndarray:
        """The network's outputs for x in evaluation mode: float64 values of the output layer's formats.

        ``policy`` is a `PrecisionPolicy` (None: float64) or a `Context`. x runs
        in batches of ``batch_size`` rows (`rows_per_batch`: None gives 512, or
        all rows at once for an imported graph whose outputs mix its rows). Under a
        policy, batch b runs under
        `evaluation_context` (policy, b, quant, seed): stochastic conversions
        (kept only under ``eval_rounding="policy"``) draw from a stream of their
        own for every batch, so a row's output depends on its batch, never on
        which rows were predicted before (the way `nets.train.evaluate` shards);
        its float64 products are `nets.product.row_product`'s, so without such draws
        (or a scale shared by a whole tensor) a row's output has the same bits for
        any ``batch_size``. A `Context` is used as given, for every batch, its
        stream drawn from in order.

        >>> m = mlp([2, 3, 2], seed=0)
        >>> m.predict(np.ones((4, 2))).shape
        (4, 2)
        >>> z = m.predict(np.ones((4, 2)), PrecisionPolicy.uniform("fx<4,4>"))
        >>> bool(np.all(z * 16 == np.round(z * 16)))
        True

        Raises:
            ValueError: an x of no rows (shape (0, ...)) or a scalar, batch_size below 1 (or below len(x)
                for a model whose outputs mix its rows), or ``quant``/``seed`` given with a `Context`.
            TypeError: an x that is not real numbers (`emu.checks.real_array`), a ``quant`` that is not a
                `Quantizer`.
        """
        x = real_array(x, "Model.predict", "x").astype(np.float64)
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(f"Model.predict: x has shape {x.shape}; it needs at least one row (shape"
                             " (n, ...), n >= 1)")
        batch_size = self.rows_per_batch(len(x), batch_size, "Model.predict")
        if not isinstance(policy, Context):
            self.check_policy(policy, "Model.predict")
        elif quant is not None or seed is not None:
            raise ValueError("Model.predict: quant= and seed= are for a policy; a Context brings its own")
        check_quant(quant, "Model.predict")
        out = []
        for b, i in enumerate(range(0, len(x), batch_size)):
            ctx = policy if isinstance(policy, Context) else evaluation_context(policy, b, quant, seed)
            out.append(self.forward(x[i:i + batch_size], ctx))
        return out[0] if out[0].ndim == 0 else np.concatenate(out)  # a scalar: one batch (it mixes rows)

    def layer_shapes(self, input_shape: tuple[int, ...]) -> list[dict[str, Any]]:
        """Every product layer's sizes for one input of ``input_shape`` (one float64 pass, `_Tracer`).

        Each dict has name and the fields of `nets.layers.Layer.product_shape`:
        kind ("linear", "conv2d", "matmul"), macs, weights (incl. biases),
        activations_in (values read besides the weights), activations_out and k
        (the dot-product length): the fields of ``hwmodel.LayerSpec`` but its
        datapath, so a cost model can take them; and ``biases`` (how many of the
        weights are biases, converted to the ``biases`` role) and ``reads``:
        per operand (a `MatMul` has two), where the values it read were stored,
        as (values, layer, role, run): that many were converted by ``layer`` to
        ``role`` ("activations" or "preacts") in a tensor whose `block_axis`
        has ``run`` elements (a block-scaled role's blocks lie along runs of
        that many), or (values, None, None, None) for values no conversion
        made. Imported layers count as nets' own: a grouped convolution its
        groups' products, a Linear on tokens every token's, a product of two
        activations (attention) both operands as activations.

        >>> [(d["name"], d["macs"]) for d in mlp([4, 3, 2], seed=0).layer_shapes((4,))]
        [('linear1', 12), ('linear2', 6)]
        >>> lenet = lenet5((1, 8, 8), 10, seed=0)
        >>> {d["name"]: d["reads"] for d in lenet.layer_shapes((1, 8, 8))}["linear1"]  # 16 channels of 2 x 2
        (((64, 'relu2', 'activations', 16),),)
        """
        tracer = _Tracer()
        with np.errstate(all="ignore"):  # the stand-in values are large: no output is looked at
            self.forward(np.zeros((1, *input_shape)), Context(_TRACE_POLICY, tracer, training=False))
        out = []
        for layer in self.layers():
            shape = layer.product_shape()
            if shape is None:
                continue
            b = layer.params.get("b")
            out.append(dict(name=layer.name, **shape, biases=0 if b is None else int(b.size),
                            reads=tuple(tracer.sources(x) for x in layer.product_operands())))
        return out

    def describe(self, policy: PrecisionPolicy | None = None) -> str:
        """One line per layer: name, layer, and the formats ``policy`` gives it."""
        lines = [f"Model ({self.n_parameters():,} parameters, loss {self.loss_name})"]
        for layer in self.layers():
            fmt = "" if policy is None else f"  [{policy.for_layer(layer.name).describe()}]"
            lines.append(f"  {layer.name:<14} {layer!r}{fmt}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.describe()


#: the policy of `Model.layer_shapes`' pass: every role converted (by `_Tracer`), products in float64
_TRACE_POLICY = PrecisionPolicy.uniform("fp32")


class _Tracer(Quantizer):
    """The converter of `Model.layer_shapes`' pass: each layer output it converts (``activations``,
    ``preacts``) becomes distinct stand-in values (integers from 2^32 on) and is recorded with the layer,
    the role and the length of the tensor's `block_axis`; other roles pass unchanged. Data movement
    (Flatten, reshape, transpose, split, gather, concatenation) keeps the values, so `sources` tells where
    the values a product reads were stored."""

    def __init__(self) -> None:
        super().__init__(0)
        self._starts: list[float] = []
        self._made: list[tuple[str, str, int]] = []
        self._next = float(2 ** 32)

    def __call__(self, x: Any, rf: Any, layer: str, role: str, scale: object = None, *,
                 tensor: str | None = None, kept_from: np.ndarray | None = None) -> np.ndarray:
        x = whole(x)
        if role not in ("activations", "preacts"):
            return x
        run = x.shape[block_axis(role, x.ndim)] if x.ndim else 1
        self._starts.append(self._next)
        self._made.append((layer, role, int(run)))
        y = np.arange(self._next, self._next + x.size).reshape(x.shape)
        self._next += x.size + 1  # a gap: a value one past a tensor's last is no one's
        return y

    def sources(self, x: np.ndarray) -> tuple[tuple[Any, ...], ...]:
        """(values, layer, role, run) for each conversion whose values x holds, in the order made; then
        (values, None, None, None) for x's other values."""
        v = np.asarray(x, np.float64).reshape(-1)
        starts = np.asarray(self._starts)
        i = np.searchsorted(starts, v, side="right") - 1
        ok = (i >= 0) & (v == np.floor(v))
        ends = np.append(starts[1:], self._next) - 1  # each tensor's values, then its gap
        ok[ok] &= v[ok] < ends[i[ok]]
        counts = np.bincount(i[ok], minlength=len(starts))
        found = tuple((int(n), *self._made[j]) for j, n in enumerate(counts) if n)
        rest = int(v.size - ok.sum())
        return found + (((rest, None, None, None),) if rest else ())


def evaluation_context(policy: PrecisionPolicy | None, batch: int = 0, quant: Quantizer | None = None,
                       seed: int | None = None) -> Context:
    """The context evaluation converts batch number ``batch`` of a data set under (`Model.predict`,
    `nets.train.evaluate`).

    Its `Quantizer` is ``quant.for_evaluation`` (the training run's dynamic
    radix points, frozen) or a fresh frozen one, with nearest-even rounding in
    place of stochastic conversions unless the policy's ``eval_rounding`` is
    "policy"; its stream is the child ``batch`` of ``SeedSequence(seed)``
    (seed: the policy's ``eval_seed``), so every batch draws the same bits
    whichever process converts it and whatever ran before. Its float64 products
    (no datapath) are `nets.product.row_product`'s (``row_independent``), so a
    row's bits do not depend on the other rows of its batch either.

    >>> ctx = evaluation_context(PrecisionPolicy.uniform("fx<2,2>", "stochastic"), 3)
    >>> ctx.training, ctx.quant.nearest, ctx.quant.frozen, ctx.row_independent
    (False, True, True, True)

    Raises:
        ValueError: ``batch`` or ``seed`` below 0 (TypeError: not an int).
    """
    pol = policy or PrecisionPolicy.float64()
    check_int(batch, "evaluation_context", "batch", 0)
    root = pol.eval_seed if seed is None else check_int(seed, "evaluation_context", "seed", 0)
    stream = np.random.SeedSequence(root, spawn_key=(batch,))
    nearest = pol.eval_rounding is EvalRounding.NEAREST_EVEN
    q = quant.for_evaluation(stream, nearest) if quant is not None else Quantizer(stream, nearest=nearest,
                                                                                    frozen=True)
    return Context(pol, q, False, None, row_independent=True)  # (no rng: evaluation draws no dropout mask)


def _check_sizes(func: str, **sizes: int | tuple[int, ...] | list[int]) -> None:
    """Refuse a builder's layer size that is not an int in [1, `nets.args.MAX_SIZE`] (`check_int`), naming
    it (``channels[1]`` for an element of a tuple or list of sizes).

    >>> _check_sizes("lenet5", n_classes=10, channels=(6, 0))
    Traceback (most recent call last):
    ...
    ValueError: lenet5: channels[1]=0 outside the allowed range [1, 2147483648]
    """
    for name, v in sizes.items():
        for i, n in enumerate(v) if isinstance(v, (tuple, list)) else [(None, v)]:
            check_int(n, func, name if i is None else f"{name}[{i}]", 1, MAX_SIZE)


def mlp(sizes: list[int], activation: str = "relu", *, dropout: float = 0.0, batchnorm: bool = False,
        output_batchnorm: bool = False, bn_eps: float = 1e-5, bn_momentum: float = 0.1, maxout: int = 1,
        loss: str = "cross_entropy", init: str = "glorot", seed: int = 0) -> Model:
    """A multilayer perceptron: Linear layers of the given sizes with an activation between them.

    ``maxout=k`` replaces the activation by Maxout over groups of k (the
    Linear layers then have k times as many outputs). ``batchnorm`` puts a
    `BatchNorm` after every hidden Linear layer (before its activation),
    ``output_batchnorm`` one after the output layer too (BinaryConnect's MLP:
    batch normalisation on every layer); ``bn_eps`` and ``bn_momentum`` are
    theirs (`BatchNorm`). ``dropout`` (a number in [0, 1); 0: none) puts a `Dropout` of that probability
    after every hidden activation.

    >>> m = mlp([64, 100, 10], seed=0)
    >>> [layer.name for layer in m.layers()]
    ['linear1', 'relu1', 'linear2']
    >>> [layer.name for layer in mlp([64, 100, 10], batchnorm=True, output_batchnorm=True).layers()]
    ['linear1', 'batchnorm1', 'relu1', 'linear2', 'batchnorm2']
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp: sizes={sizes!r} needs at least an input and an output size, all >= 1")
    _check_sizes("mlp", sizes=sizes)
    check_real(dropout, "mlp", "dropout", 0.0, 1.0, hi_open=True)
    activation = activation_name(activation, "mlp")
    check_int(maxout, "mlp", "maxout", 1)
    for name, flag in (("batchnorm", batchnorm), ("output_batchnorm", output_batchnorm)):
        if not isinstance(flag, bool):
            raise TypeError(f"mlp: {name}={flag!r} must be True or False")
    hidden_only = (("dropout", dropout, dropout != 0.0), ("batchnorm", batchnorm, batchnorm),
                   ("maxout", maxout, maxout > 1))
    unused = [f"{n}={v!r}" for n, v, given in hidden_only if given and len(sizes) < 3]
    if unused:  # they act on hidden layers only
        raise ValueError(f"mlp: {unused[0]} applies to hidden layers; sizes={sizes!r} has none")
    if not (bn_eps > 0 and 0 < bn_momentum <= 1):
        raise ValueError(f"mlp: bn_eps={bn_eps!r} must be > 0 and bn_momentum={bn_momentum!r} in (0, 1]")
    layers: list[Layer] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        last = i == len(sizes) - 2
        layers.append(Linear(a, b * (maxout if not last else 1)))
        if last:
            if output_batchnorm:
                layers.append(BatchNorm(b, eps=bn_eps, momentum=bn_momentum))
            break
        if batchnorm:
            layers.append(BatchNorm(b * maxout, eps=bn_eps, momentum=bn_momentum))
        layers.append(Maxout(maxout) if maxout > 1 else ACTIVATIONS[activation]())
        if dropout:
            layers.append(Dropout(dropout))
    return Model(Sequential(*layers), loss=loss, init=init, seed=seed)


def lenet5(input_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10, *, activation: str = "relu",
           pool: str = "max", loss: str = "cross_entropy", init: str = "glorot", seed: int = 0,
           channels: tuple[int, int] = (6, 16), hidden: tuple[int, int] = (120, 84)) -> Model:
    """A LeNet-5-style CNN: conv 5x5 (padding 2) - pool - conv 5x5 - pool - dense - dense - output.

    For small inputs (the 8x8 digits) the kernels shrink to 3x3 and the second
    pooling is left out, so the layer structure stays the same. ``pool``: "max"
    or "avg" (case and surrounding spaces ignored; another value raises
    ValueError naming the field and the names).
    """
    if len(input_shape) != 3 or len(channels) != 2 or len(hidden) != 2:
        raise ValueError(f"lenet5: input_shape={input_shape!r} must be (C, H, W), channels={channels!r} and"
                         f" hidden={hidden!r} two sizes each")
    _check_sizes("lenet5", n_classes=n_classes, input_shape=input_shape, channels=channels, hidden=hidden)
    c, h, w = input_shape
    small = min(h, w) < 16
    k = 3 if small else 5
    act = ACTIVATIONS[activation_name(activation, "lenet5")]
    pools = {"max": MaxPool2d, "avg": AvgPool2d}
    if not isinstance(pool, str) or pool.strip().lower() not in pools:
        raise ValueError(f"lenet5: pool={pool!r} is not one of {', '.join(pools)}")
    Pool = pools[pool.strip().lower()]
    layers: list[Layer] = [Conv2d(c, channels[0], k, padding=k // 2), act(), Pool(2)]
    h2, w2 = h // 2, w // 2
    layers += [Conv2d(channels[0], channels[1], k), act()]
    h3, w3 = h2 - k + 1, w2 - k + 1
    if not small:
        layers.append(Pool(2))
        h3, w3 = h3 // 2, w3 // 2
    if h3 < 1 or w3 < 1:
        raise ValueError(f"lenet5: input_shape={input_shape} is too small for two convolutions")
    layers += [Flatten(), Linear(channels[1] * h3 * w3, hidden[0]), act(), Linear(hidden[0], hidden[1]),
               act(), Linear(hidden[1], n_classes)]
    return Model(Sequential(*layers), loss=loss, init=init, seed=seed)


def resnet_small(input_shape: tuple[int, int, int] = (1, 8, 8), n_classes: int = 10, *, width: int = 8,
                 blocks: int = 2, loss: str = "cross_entropy", init: str = "he", seed: int = 0) -> Model:
    """A small residual network: conv - [conv-BN-ReLU-conv-BN + identity, ReLU] x blocks - pool - dense."""
    if len(input_shape) != 3:
        raise ValueError(f"resnet_small: input_shape={input_shape!r} must be (C, H, W)")
    _check_sizes("resnet_small", n_classes=n_classes, width=width, input_shape=input_shape)
    c, h, w = input_shape
    if h < 2 or w < 2:
        raise ValueError(f"resnet_small: input_shape={input_shape!r} is too small for the 2x2 pooling"
                         " (H and W >= 2)")
    check_int(blocks, "resnet_small", "blocks", 0)
    layers: list[Layer] = [Conv2d(c, width, 3, padding=1), BatchNorm(width), ReLU()]
    for _ in range(blocks):
        body = Sequential(Conv2d(width, width, 3, padding=1), BatchNorm(width), ReLU(),
                          Conv2d(width, width, 3, padding=1), BatchNorm(width))
        layers += [Residual(body), ReLU()]
    layers += [AvgPool2d(2), Flatten(), Linear(width * (h // 2) * (w // 2), n_classes)]
    return Model(Sequential(*layers), loss=loss, init=init, seed=seed)


_SPEC_LAYERS: dict[str, Any] = {
    "linear": Linear, "conv2d": Conv2d, "maxpool2d": MaxPool2d, "avgpool2d": AvgPool2d, "relu": ReLU,
    "tanh": Tanh, "sigmoid": Sigmoid, "sign": Sign, "maxout": Maxout, "flatten": Flatten, "dropout": Dropout,
    "batchnorm": BatchNorm,
}


def _positional(cls: Any) -> list[str]:
    """The settings of layer class ``cls`` a spec tuple gives by position: those before its ``name``.

    >>> _positional(Linear), _positional(ReLU)
    (['n_in', 'n_out'], [])
    """
    params = list(inspect.signature(cls).parameters)
    return params[:params.index("name")] if "name" in params else params


def from_spec(spec: list[Any], *, loss: str = "cross_entropy", init: str = "glorot", seed: int = 0) -> Model:
    """A model from a readable spec: a list of ``(kind, *args)`` tuples or ``{"kind": ..., **kwargs}`` dicts.

    A tuple gives the layer's settings that come before its name, in order (``linear``: n_in, n_out;
    ``conv2d``: c_in, c_out, kernel, stride, padding; ``relu``: none); a dict gives any by name (``name``,
    ``bias``...).

    >>> m = from_spec([("linear", 64, 32), ("relu",), ("linear", 32, 10)])
    >>> len(m.layers())
    3

    Raises:
        ValueError: an unknown kind, a tuple of more settings than its kind takes by position (the layer's
            name and ``bias`` became them silently), an empty tuple, a dict without ``kind``.
        TypeError: an item that is neither a tuple nor a dict.
    """
    layers: list[Layer] = []
    for item in spec:
        if isinstance(item, dict):
            if "kind" not in item:
                raise ValueError(f"from_spec: {item!r} has no 'kind'; known kinds: {', '.join(_SPEC_LAYERS)}")
            kw = dict(item)
            kind, args = kw.pop("kind"), ()
        elif isinstance(item, (tuple, list)) and item:
            kind, *args_list = item
            args, kw = tuple(args_list), {}
        else:
            raise TypeError(f"from_spec: item {item!r} must be a (kind, *settings) tuple or a dict with a"
                            " 'kind'")
        if not isinstance(kind, str) or kind not in _SPEC_LAYERS:
            raise ValueError(f"from_spec: unknown layer kind {kind!r}; known: {', '.join(_SPEC_LAYERS)}")
        allowed = _positional(_SPEC_LAYERS[kind])
        if len(args) > len(allowed):
            raise ValueError(f"from_spec: {item!r} gives {len(args)} setting(s) by position; {kind} takes at"
                             f" most {len(allowed)} ({', '.join(allowed) or 'none'}); give the others by name"
                             f" in a dict item {{'kind': {kind!r}, ...}}")
        layers.append(_SPEC_LAYERS[kind](*args, **kw))
    return Model(Sequential(*layers), loss=loss, init=init, seed=seed)
