"""Precision policies: which format, rounding and datapath each tensor role uses, per layer.

A network's arithmetic is described by roles (Gupta et al. 2015; Courbariaux
et al. 2014): ``weights`` and ``biases`` as used in propagation, ``activations``
(layer outputs), ``preacts`` (the MAC outputs), ``errors`` (back-propagated
gradients of the outputs, the loss gradient included), ``grads`` (weight and
bias gradients), ``master`` (the stored weights that receive updates,
possibly wider than the propagated ones); the optimiser's state: ``update``
(the term added to the stored weights: -lr g, the momentum step or Adam's
step), ``momentum`` (SGD's velocity buffer) and ``moments`` (Adam's first and
second moments); and batch normalisation's ``bn_params`` (gamma and beta as
used in propagation) and ``bn_stats`` (the running mean and variance). Each
role has a `RoleFormat`: an `emu` format (or None for float64), a rounding
and an overflow mode, or a `DynamicFixed` group whose radix point moves during
training (NUMERICS.md section 7). Three `emu.MAC` datapaths (or None for
float64 products) compute the forward product, the error back-propagation
product and the weight-gradient product.

`PrecisionPolicy` holds a default `LayerPolicy`, per-layer overrides (by
layer name, a hashable read-only `LayerOverrides`) and four settings, each an
`enum.StrEnum` parsed from its name at construction: `Granularity`, `STE`,
`EvaluateWith` and `EvalRounding`, plus the seed of evaluation-time
stochastic conversions. Policies are frozen and hashable. The named policies
of the papers (`POLICY_PRESETS`) live in `nets.presets`. Imports `emu` only.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import emu
from emu import MAC
from emu.checks import check_int, parse_choice
from emu.mac import as_mac

from .roleformat import BLOCK_TYPES, DynamicFixed, RoleFormat, is_block_format

__all__ = ["BN_ROLES", "GRANULARITIES", "OPTIMIZER_ROLES", "POLICY_PRESETS", "ROLES", "STE", "STES",
           "DynamicFixed", "EvalRounding", "EvaluateWith", "Granularity", "LayerOverrides", "LayerPolicy",
           "PrecisionPolicy", "RoleFormat", "has_stochastic_ternary", "is_block_format"]

#: The optimiser's roles: the update term, SGD's velocity buffer, Adam's two moments.
OPTIMIZER_ROLES = ("update", "momentum", "moments")

#: Batch normalisation's roles: gamma and beta in propagation, the running mean and variance.
BN_ROLES = ("bn_params", "bn_stats")

#: The tensor roles a policy names.
ROLES = ("weights", "biases", "activations", "preacts", "errors", "grads", "master", *OPTIMIZER_ROLES,
         *BN_ROLES)


class Granularity(StrEnum):
    """Where values are rounded (`PrecisionPolicy.rounds`), from the most rounding points to the fewest.

    >>> Granularity("layer") is Granularity.LAYER, str(Granularity.LAYER)
    (True, 'layer')
    """

    #: after every operation
    OPERATION = "operation"
    #: only where a layer hands its result on
    LAYER = "layer"
    #: only the parameters and their gradients, once per batch
    BATCH = "batch"


class STE(StrEnum):
    """The gradient through a conversion (`PrecisionPolicy.ste`).

    ``identity`` is the plain straight-through estimator: backward through
    every conversion is the identity, including where a layer's output
    (pre-activation or activation) saturated at its format's range. That is
    what the papers reproduced here do where they say anything (the
    reference code of Courbariaux et al. 2014, BinaryConnect, the mixed
    precision papers); Gupta et al. 2015 are silent.

    ``clipped`` is this project's extension, the default: the gradient is
    also zero where a layer's output saturated on conversion, e.g. under
    fx<2,2> (range [-2, 1.75]) an output 2.5 stored as 1.75 passes no
    gradient back. Rationale: saturation is a function whose derivative is
    zero outside the range; the plain estimator keeps pushing a saturated
    value further out although the stored value can no longer follow, so a
    fixed-point network with few integer bits can drift and diverge (LeNet-5
    on digits under the Gupta fx<4,12> stochastic preset, whose convolution
    outputs saturate, falls 33 points below float64 with the plain rule over
    seeds 0-4, where this one's paired difference, -2.44 [-9.60, +4.71]
    points, cannot be told from 0). Binarized networks cancel the gradient of a saturated
    activation the same way (the hard-tanh estimator of `nets.layers.Sign`).
    Every preset states the rule it uses (docs/training.md).

    >>> [str(s) for s in STE]
    ['clipped', 'identity']
    """

    #: the straight-through estimator, and zero where a layer's output saturated (this project's extension)
    CLIPPED = "clipped"
    #: the plain straight-through estimator (the papers' rule)
    IDENTITY = "identity"


class EvaluateWith(StrEnum):
    """What validation and test evaluation use (`PrecisionPolicy.evaluation`).

    Under either, evaluation rounds as `PrecisionPolicy.eval_rounding` says
    (`EvalRounding`: nearest even unless the policy says "policy") and never
    draws from the training run's random stream.

    >>> EvaluateWith("float64") is EvaluateWith.FLOAT64
    True
    """

    #: the training policy itself
    SAME = "same"
    #: float64 arithmetic with the real-valued weights (stochastic BinaryConnect at test time)
    FLOAT64 = "float64"


class EvalRounding(StrEnum):
    """How evaluation rounds what training rounds stochastically (`PrecisionPolicy.eval_rounding`).

    Evaluation never draws from the training run's random stream: its
    stochastic conversions, if any, draw from their own generator seeded by
    `PrecisionPolicy.eval_seed`, fresh for every evaluation.

    >>> EvalRounding("nearest_even") is EvalRounding.NEAREST_EVEN, str(EvalRounding.POLICY)
    (True, 'policy')
    """

    #: every stochastic conversion rounds to nearest even instead: a stochastic fixed, float or dynamic
    #: fixed role rounds to nearest even, stochastic binary weights become sign(w), stochastic ternary
    #: weights become w clipped to [-1, 1] rounded to the nearest of -1, 0, 1 (ties to 0)
    NEAREST_EVEN = "nearest_even"
    #: the roles' own rounding; stochastic conversions draw from the evaluation seed
    POLICY = "policy"


#: The `Granularity` members, from the most rounding points to the fewest.
GRANULARITIES = tuple(Granularity)

#: The `STE` members.
STES = tuple(STE)




_MACS = ("fwd_mac", "bwd_mac", "grad_mac")

#: (datapath, operand, the role whose values it multiplies, blocks of that role run along the datapath's
#: reduction axis): preacts = activations @ weights, errors = errors @ weights^T, grads = activations^T @
#: errors. A role's blocks run along the forward product's reduction axis (`nets.quant.block_axis`).
_OPERAND_ROLES = (("fwd_mac", "act", "activations", True), ("fwd_mac", "weight", "weights", True),
                  ("bwd_mac", "act", "errors", True), ("bwd_mac", "weight", "weights", False),
                  ("grad_mac", "act", "activations", False), ("grad_mac", "weight", "errors", False))


def _check_operands(lp: LayerPolicy) -> None:
    """Refuse a datapath whose operand format is not the format of the role that supplies the operand.

    The product multiplies the role's values: a MAC of another format would round them a second time
    (two sources of truth for one tensor). A float64 role leaves the conversion to the MAC alone. A
    block-scaled role can feed a block-scaled operand only where its blocks run along that product's
    reduction axis (the forward product, and the errors of the backward one).
    """
    for mac_name, operand, role, aligned in _OPERAND_ROLES:
        mac = getattr(lp, mac_name)
        rf = getattr(lp, role)
        if mac is None or rf.is_float64:
            continue
        fmt = getattr(mac, operand)
        if rf.fmt != fmt:
            raise ValueError(f"LayerPolicy: {mac_name}.{operand}={fmt} multiplies the {role} role's values,"
                             f" which are {rf.fmt}; give the datapath the role's format, or leave the role"
                             " float64 and let the datapath convert")
        if is_block_format(fmt) and not aligned:
            raise ValueError(f"LayerPolicy: {mac_name}.{operand}={fmt} would re-block the {role} role's"
                             f" {fmt} values along another axis; leave the {role} role float64 (the datapath"
                             " then encodes the operand) or give the product an element format")


def _role(value: Any) -> RoleFormat:
    return RoleFormat.parse(value)


def _mac(value: Any) -> MAC | None:
    """A datapath field: None (float64 products) or what `emu.mac.as_mac` takes."""
    return None if value is None else as_mac(value, "LayerPolicy")


def has_stochastic_ternary(mac: MAC) -> bool:
    """Whether an operand of ``mac`` is ternary with stochastic rounding (no nearest-even twin exists).

    >>> has_stochastic_ternary(emu.MAC(act="fp32", weight="ternary<stochastic>", acc="fp32"))
    True
    """
    return any(isinstance(f, emu.TernaryFormat) and f.method == "stochastic" for f in (mac.act, mac.weight))


@dataclass(frozen=True)
class LayerPolicy:
    """Formats of every role (`ROLES`) and the three datapaths of one layer.

    ``fwd_mac`` computes preacts = x @ W, ``bwd_mac`` errors = delta @ W^T,
    ``grad_mac`` dW = x^T @ delta; None means float64 products (then the
    result is rounded to the role format). A datapath is an `emu.MAC` or an
    `emu.MAC` of block-scaled operands (e.g. the preset ``"mxfp8"``). A MAC's operand
    format is the format of the role that supplies the operand (``fwd_mac``:
    activations x weights; ``bwd_mac``: errors x weights; ``grad_mac``:
    activations x errors), or that role is float64 and the MAC alone converts
    it; any other pair is refused (ValueError naming the datapath, the operand
    and the role), since the product would round the role's values a second
    time. The operand conversion of a value already in its format is exact.

    Every role defaults to float64 (no conversion). The optimiser's roles
    (`nets.optim`): ``update`` rounds the term added to the stored weights
    (-lr g, SGD's velocity, Adam's step) before it is added, ``momentum`` is
    the format SGD stores its velocity in, ``moments`` the format Adam stores
    both moments in. Batch normalisation (`nets.norm`): ``bn_params`` is the
    format of gamma and beta in propagation, ``bn_stats`` of the stored
    running mean and variance.

    >>> lp = LayerPolicy().with_roles(momentum="fx<4,8>")
    >>> str(lp.momentum), str(lp.update), lp.describe()
    ('fx<4,8>', 'float64', 'momentum fx<4,8>')
    """

    weights: RoleFormat = field(default_factory=RoleFormat)
    biases: RoleFormat = field(default_factory=RoleFormat)
    activations: RoleFormat = field(default_factory=RoleFormat)
    preacts: RoleFormat = field(default_factory=RoleFormat)
    errors: RoleFormat = field(default_factory=RoleFormat)
    grads: RoleFormat = field(default_factory=RoleFormat)
    master: RoleFormat = field(default_factory=RoleFormat)
    update: RoleFormat = field(default_factory=RoleFormat)
    momentum: RoleFormat = field(default_factory=RoleFormat)
    moments: RoleFormat = field(default_factory=RoleFormat)
    bn_params: RoleFormat = field(default_factory=RoleFormat)
    bn_stats: RoleFormat = field(default_factory=RoleFormat)
    fwd_mac: Any = None
    bwd_mac: Any = None
    grad_mac: Any = None

    def __post_init__(self) -> None:
        for r in ROLES:
            object.__setattr__(self, r, _role(getattr(self, r)))
        for m in _MACS:
            object.__setattr__(self, m, _mac(getattr(self, m)))
        _check_operands(self)

    def with_roles(self, **roles: Any) -> LayerPolicy:
        """A copy with some roles (or datapaths) replaced; each value as the constructor takes it.

        >>> str(LayerPolicy().with_roles(update="fx<4,12>", bn_stats="bf16").update)
        'fx<4,12>'

        Raises:
            ValueError: a name that is neither a role nor a datapath.
        """
        bad = [k for k in roles if k not in ROLES and k not in _MACS]
        if bad:
            raise ValueError(f"LayerPolicy.with_roles: {bad[0]}= is not one of {', '.join(ROLES + _MACS)}")
        return replace(self, **roles)

    @property
    def is_float64(self) -> bool:
        """Every role float64 and every product float64."""
        any_mac = self.fwd_mac or self.bwd_mac or self.grad_mac
        return all(getattr(self, r).is_float64 for r in ROLES) and not any_mac

    def describe(self) -> str:
        """Short text: the roles grouped by format (float64 roles left out; "all tensor roles": every role
        but the optimiser's state), and the datapaths.

        >>> PrecisionPolicy.uniform("fx<4,12>").default.describe()
        'all tensor roles fx<4,12>'
        """
        groups: dict[str, list[str]] = {}
        for r in ROLES:
            rf = getattr(self, r)
            if not rf.is_float64:
                groups.setdefault(str(rf), []).append(r)
        tensor_roles = [r for r in ROLES if r not in OPTIMIZER_ROLES]

        def label(v: list[str]) -> str:
            if len(v) == len(ROLES):
                return "all roles"
            return "all tensor roles" if v == tensor_roles else "/".join(v)

        parts = [f"{label(v)} {k}" for k, v in groups.items()]
        parts += [f"{m}=[{getattr(self, m)}]" for m in ("fwd_mac", "bwd_mac", "grad_mac") if getattr(self, m)]
        return ", ".join(parts) or "float64"


class LayerOverrides(Mapping[str, LayerPolicy]):
    """Per-layer policies by layer name (`PrecisionPolicy.layers`): a read-only, hashable mapping.

    Built from a mapping or from (name, `LayerPolicy`) pairs, which it copies.
    It equals any mapping with the same items, and its hash does not depend on
    the order of the names.

    >>> a = LayerOverrides({"fc1": LayerPolicy(weights="fx<2,6>"), "fc2": LayerPolicy()})
    >>> b = LayerOverrides([("fc2", LayerPolicy()), ("fc1", LayerPolicy(weights="fx<2,6>"))])
    >>> a == b, hash(a) == hash(b), list(a), a == dict(a)
    (True, True, ['fc1', 'fc2'], True)
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, LayerPolicy] | Iterable[tuple[str, LayerPolicy]] = ()) -> None:
        try:
            d = dict(items) if not isinstance(items, (str, bytes)) else None
        except (TypeError, ValueError):
            d = None
        if d is None:
            raise TypeError(f"PrecisionPolicy: layers={items!r} must be a dict of layer name -> LayerPolicy"
                            " (or (name, LayerPolicy) pairs)")
        for k, v in d.items():
            if not isinstance(k, str):
                raise TypeError(f"PrecisionPolicy: layers has a key {k!r} that is not a layer name (str)")
            if not isinstance(v, LayerPolicy):
                raise TypeError(f"PrecisionPolicy: layers[{k!r}] is a {type(v).__name__}, not a LayerPolicy")
        self._items = d

    def __getitem__(self, name: str) -> LayerPolicy:
        return self._items[name]

    def get(self, name: str, default: Any = None) -> Any:
        """The override of layer ``name``, or ``default``: one dict lookup (Mapping's own ``get`` catches a
        KeyError for every layer without an override, as most are, several times per training step)."""
        return self._items.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __repr__(self) -> str:
        return f"LayerOverrides({self._items!r})"


_FP32 = emu.FloatFormat(8, 23)


def _hardware_format(rf: RoleFormat) -> Any:
    """A role's format in hardware.

    Float64 counts as fp32; dynamic fixed point as its word at its initial FL.
    """
    f = rf.fmt
    if isinstance(f, DynamicFixed):
        return emu.FixedFormat(f.word_bits - int(f.init_frac_bits), int(f.init_frac_bits))
    return f if isinstance(f, (emu.Format, *BLOCK_TYPES)) else _FP32


@dataclass(frozen=True)
class PrecisionPolicy:
    """A default `LayerPolicy`, per-layer overrides by layer name, four settings and an evaluation seed.

    ``layers`` may be given as a dict (or any mapping, or (name, LayerPolicy)
    pairs); it is stored as a `LayerOverrides`, so a policy is hashable and
    equal policies hash equal. The settings take an enum member or its name and
    are stored as members; another value raises ValueError naming the field and
    the allowed names, at construction (also through `dataclasses.replace`);
    so does an ``eval_seed`` below 0.

    >>> p = PrecisionPolicy.uniform("fx<4,6>", rounding="stochastic")
    >>> str(p.for_layer("fc1").weights)
    'fx<4,6>/stochastic'
    >>> q = replace(p, granularity="layer")
    >>> q.granularity is Granularity.LAYER, {p: 0, q: 1}[replace(p, granularity="layer")]
    (True, 1)
    """

    default: LayerPolicy = field(default_factory=LayerPolicy)
    layers: LayerOverrides = field(default_factory=LayerOverrides)
    name: str = "custom"
    #: `EvaluateWith.SAME` (evaluate under this policy) or `EvaluateWith.FLOAT64` (evaluate with the
    #: real-valued weights, as stochastic BinaryConnect does at test time)
    evaluate_with: EvaluateWith = EvaluateWith.SAME
    #: where values are rounded (`Granularity`): "operation" (after every operation), "layer" (where a
    #: layer hands its result on) or "batch" (the parameters and their gradients, once per batch)
    granularity: Granularity = Granularity.OPERATION
    #: the gradient through a conversion (`STE`): "clipped" (this project's extension, the default: the
    #: straight-through estimator for rounding, zero where a layer's output (pre-activations or
    #: activations) saturated) or "identity" (the plain estimator, the papers' rule)
    ste: STE = STE.CLIPPED
    #: how evaluation rounds what training rounds stochastically (`EvalRounding`): "nearest_even" (the
    #: default) or "policy" (the roles' own rounding, stochastic conversions seeded by ``eval_seed``)
    eval_rounding: EvalRounding = EvalRounding.NEAREST_EVEN
    #: the seed of evaluation's stochastic conversions (never the training run's stream), >= 0
    eval_seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.default, LayerPolicy):
            raise TypeError(f"PrecisionPolicy: default={self.default!r} must be a LayerPolicy (for one format"
                            " everywhere: PrecisionPolicy.uniform)")
        if not isinstance(self.layers, LayerOverrides):
            object.__setattr__(self, "layers", LayerOverrides(self.layers))
        for param, enum in (("evaluate_with", EvaluateWith), ("granularity", Granularity), ("ste", STE),
                            ("eval_rounding", EvalRounding)):
            value = parse_choice(enum, getattr(self, param), "PrecisionPolicy", param)
            object.__setattr__(self, param, value)
        object.__setattr__(self, "eval_seed", check_int(self.eval_seed, "PrecisionPolicy", "eval_seed", 0))
        if self.eval_rounding is EvalRounding.NEAREST_EVEN and self.evaluate_with is EvaluateWith.SAME:
            self._check_nearest_twins()

    def _check_nearest_twins(self) -> None:
        """Refuse a forward datapath with a stochastic ternary operand under nearest-even evaluation: it has
        no deterministic twin (`nets.Quantizer.datapath`)."""
        named = (("default", self.default), *((f"layers[{k!r}]", v) for k, v in self.layers.items()))
        for where, lp in named:
            mac = lp.fwd_mac
            if mac is not None and has_stochastic_ternary(mac):
                raise ValueError(f"PrecisionPolicy: {where}.fwd_mac [{mac}] has a stochastic ternary"
                                 " operand, which has no nearest-even twin for evaluation (eval_rounding="
                                 "'nearest_even'); give eval_rounding='policy' (evaluation then draws from"
                                 " eval_seed), evaluate_with='float64', or ternary<stochastic> as the weights"
                                 " role (evaluated as w clipped to [-1, 1] rounded to the nearest of -1, 0,"
                                 " 1)")

    def rounds(self, role: str, ends_layer: bool, starts_layer: bool) -> bool:
        """Whether a value of ``role`` is converted at this point of the network.

        ``ends_layer``: the value is the output of the last operation of a layer
        (a weighted operation with the activation, pooling, normalisation and
        dropout that follow it, up to the next weighted operation or residual
        block); ``starts_layer``: the value is the error leaving a layer's first
        operation backwards. Parameters, biases and gradients are always
        converted (once per batch); activations, preacts and errors:

        - ``operation``: after every operation;
        - ``layer``: only at layer boundaries: inside a layer the accumulator's
          output passes unrounded through the activation function (a fused
          epilogue), and the value written out is rounded once;
        - ``batch``: never (weight-only quantisation: data flows in float64 or
          in the MAC datapaths' own formats).

        >>> p = PrecisionPolicy(granularity="layer")
        >>> inside, end = p.rounds("activations", False, False), p.rounds("activations", True, False)
        >>> inside, end, p.rounds("grads", False, False)
        (False, True, True)
        """
        if self.granularity is Granularity.OPERATION or role not in ("activations", "preacts", "errors"):
            return True
        if self.granularity is Granularity.BATCH:
            return False
        return starts_layer if role == "errors" else ends_layer

    def evaluation(self) -> PrecisionPolicy | None:
        """The policy validation and test evaluation use: this one (`EvaluateWith.SAME`) or None (float64).

        >>> PrecisionPolicy.preset("binaryconnect stochastic").evaluation() is None
        True
        """
        return self if self.evaluate_with is EvaluateWith.SAME else None

    def for_layer(self, name: str) -> LayerPolicy:
        """The policy of the layer called ``name``."""
        return self.layers.get(name, self.default)

    def hardware_format(self, name: str, role: str) -> Any:
        """The format ``role`` of layer ``name`` takes in hardware, as `forward_mac` reads the roles: float64
        as fp32, a dynamic fixed point group as its word at its initial radix point, else the role's own
        (``hwmodel.network_cost`` stores biases and the values a layer reads so)."""
        return _hardware_format(getattr(self.for_layer(name), role))

    def forward_mac(self, name: str, k: int) -> MAC:
        """The forward datapath of layer ``name`` (dot products of length ``k``) as hardware would build it.

        The layer's ``fwd_mac`` if it has one; else a MAC of its weight and
        activation formats (float64 roles count as fp32, the baseline hardware;
        a dynamic fixed point group as a fixed word of its width at its initial
        radix point), accumulating in fp32 when an operand is a float and in
        the overflow-free fixed accumulator `emu.lossless_acc` gives for K
        otherwise. Two block-scaled roles of one family give a block-scaled `emu.MAC`
        with an fp32 accumulator; one block-scaled role beside another kind
        counts as its element format. This is what a cost model prices (``hwmodel.network_cost``).
        """
        lp = self.for_layer(name)
        if lp.fwd_mac is not None:
            return lp.fwd_mac
        a, w = _hardware_format(lp.activations), _hardware_format(lp.weights)
        if is_block_format(a) and is_block_format(w) and a.kind == w.kind:
            return MAC(act=a, weight=w, acc="fp32")
        a = a.element if is_block_format(a) and a.kind != "int" else a
        w = w.element if is_block_format(w) and w.kind != "int" else w
        # a scaled integer with a non-block partner counts as its integers
        if is_block_format(a) or is_block_format(w):
            a = emu.FixedFormat(a.bits, 0) if is_block_format(a) else a
            w = emu.FixedFormat(w.bits, 0) if is_block_format(w) else w
        if isinstance(a, emu.FloatFormat) or isinstance(w, emu.FloatFormat):
            return MAC(act=a, weight=w, acc=_FP32)
        return MAC(act=a, weight=w, acc=emu.lossless_acc(emu.product_format(a, w), k))

    @classmethod
    def float64(cls) -> PrecisionPolicy:
        """Every role and product in float64 (the baseline)."""
        return cls(name="float64")

    @classmethod
    def uniform(cls, fmt: Any, rounding: Any = "nearest_even", overflow: Any = None, *,
                master: Any = None, master_rounding: Any = None, state: Any = None) -> PrecisionPolicy:
        """Every tensor role in one format (products in float64, rounded to the role formats).

        ``master`` gives the stored weights a different (wider) format and
        ``master_rounding`` their rounding (defaults: ``fmt``, ``rounding``). The optimiser's roles
        (``update``, ``momentum``, ``moments``) stay float64 unless ``state``
        names their format (``state="master"``: the master format), because a
        narrow velocity buffer is a different experiment (fx<4,8> nearest with
        momentum 0.9 trains to about 6 % error with a float64 buffer and does not
        train with the buffer in fx<4,8>); `describe` shows them. Batch
        normalisation's roles take ``fmt``.

        >>> p = PrecisionPolicy.uniform("fx<4,8>", master="fx<4,16>")
        >>> str(p.default.momentum), str(p.default.bn_stats)
        ('float64', 'fx<4,8>')
        >>> str(PrecisionPolicy.uniform("fx<4,8>", master="fx<4,16>", state="master").default.momentum)
        'fx<4,16>'
        """
        r = RoleFormat.parse(fmt, rounding, overflow)
        m = RoleFormat.parse(fmt if master is None else master, master_rounding or rounding, overflow)
        if state is None:
            st = RoleFormat.parse(None)
        elif isinstance(state, str) and state == "master":
            st = m
        else:
            st = RoleFormat.parse(state, rounding, overflow)
        lp = LayerPolicy(**{role: r for role in ROLES if role != "master" and role not in OPTIMIZER_ROLES},
                         master=m, **{role: st for role in OPTIMIZER_ROLES})
        named = master is not None or master_rounding is not None
        return cls(lp, name=f"uniform {r}" + (f", master {m}" if named else "")
                   + (f", optimiser state {st}" if state is not None else ""))

    def with_layer(self, name: str, policy: LayerPolicy) -> PrecisionPolicy:
        """A copy with one layer's policy set."""
        return replace(self, layers={**self.layers, name: policy})

    @classmethod
    def preset(cls, name: str) -> PrecisionPolicy:
        """A named policy reproducing a paper's setting (see `POLICY_PRESETS`); TypeError for a name that
        is not a string, ValueError for an unknown one."""
        if not isinstance(name, str):
            raise TypeError(f"PrecisionPolicy.preset: name={name!r} must be a preset's name (a string), e.g."
                            " 'gupta fx<4,12> stochastic'")
        key = " ".join(name.split()).lower()
        if key not in POLICY_PRESETS:
            raise ValueError(f"PrecisionPolicy.preset: name={name!r} is not a preset; presets: "
                             + ", ".join(POLICY_PRESETS))
        return POLICY_PRESETS[key]()

    def describe(self) -> str:
        """The policy as text: its default and its overrides."""
        lines = [f"{self.name}: {self.default.describe()}"
                 + ("" if self.granularity is Granularity.OPERATION else f"; rounded per {self.granularity}")
                 + ("" if self.ste is STE.CLIPPED else f"; {self.ste} straight-through gradients")
                 + ("" if self.eval_rounding is EvalRounding.NEAREST_EVEN
                    else f"; evaluation rounding {self.eval_rounding}")]
        lines += [f"  {k}: {v.describe()}" for k, v in self.layers.items()]
        return "\n".join(lines)


# the presets build policies of this module; imported last, once every name above exists
from .presets import POLICY_PRESETS  # noqa: E402
