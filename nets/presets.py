"""The named policies of the papers: `POLICY_PRESETS`, read by `PrecisionPolicy.preset`.

Each preset is a function whose docstring says which paper setting it
reproduces, which straight-through rule it uses (its ``ste`` field, always
set explicitly, and a line ``STE: <rule>``), which roles stay float64 because
the paper is silent about them, and where it departs from the paper.
docs/training.md gathers them in one table. Roles a preset does not name are
float64 (the `LayerPolicy` default).

>>> p = POLICY_PRESETS["gupta fx<4,12> stochastic"]()
>>> str(p.ste), str(p.default.momentum), str(POLICY_PRESETS["twn"]().default.bn_params)
('clipped', 'fx<4,12>/stochastic', 'float64')

Imports `emu` and `nets.policy`.
"""

from __future__ import annotations

from collections.abc import Callable

import emu
from emu import MAC, Rounding

from .policy import ROLES, STE, DynamicFixed, EvaluateWith, LayerPolicy, PrecisionPolicy, RoleFormat

__all__ = ["POLICY_PRESETS"]


def _float64() -> PrecisionPolicy:
    """Every role and product in float64: the baseline, no paper.

    STE: clipped (the default; moot, nothing is converted).

    Departs: no paper to depart from.
    """
    return PrecisionPolicy.float64()


def _gupta(rounding: str) -> PrecisionPolicy:
    r = RoleFormat("fx<4,12>", rounding)
    lp = LayerPolicy(**dict.fromkeys(ROLES, r))
    tag = "stochastic" if rounding == "stochastic" else "nearest"
    return PrecisionPolicy(lp, name=f"gupta fx<4,12> {tag}", ste=STE.CLIPPED)


_GUPTA_DOC = """Gupta et al. 2015, fixed point <4,12> (16 bits) with {rounding} rounding.

    Reproduces: every quantity of training in one fixed-point format:
    weights, biases, activations, pre-activations, back-propagated errors
    (the loss gradient included), gradients, the stored weights, the update
    term and, when SGD runs with momentum, its velocity buffer; saturation
    on overflow (the paper's Convert). Products are exact (float64) and
    rounded once, as the paper's wide accumulator does.

    Float64: nothing. Adam's moments and batch normalisation's parameters and
    statistics, which the paper's networks and optimiser do not have, follow
    its principle that every quantity is fixed point.

    STE: clipped. The paper does not say what the gradient through a
    saturated output is; this preset uses the project's extension (LeNet-5
    on digits loses 33 points to float64 under this preset with the plain
    rule, seeds 0-4; `nets.STE`).
    ``replace(p, ste="identity")`` gives the plain rule.

    Departs: ties round to even (the paper writes ties down; they differ only
    at exact ties); IL stays 4 where the paper sweeps FL at word length 16.
    """


def _gupta_stochastic() -> PrecisionPolicy:
    return _gupta("stochastic")


def _gupta_nearest() -> PrecisionPolicy:
    return _gupta("nearest_even")


_gupta_stochastic.__doc__ = _GUPTA_DOC.format(rounding="stochastic")
_gupta_nearest.__doc__ = _GUPTA_DOC.format(rounding="round-to-nearest")


def _courbariaux(word_bits: int = 10, update_bits: int = 12, *, period: int = 100, warmup_batches: int = 100,
                 init_int_bits: int = 6, max_overflow_rate: float = 1e-4) -> PrecisionPolicy:
    """Courbariaux et al. 2014, dynamic fixed point: 10-bit propagations, 12-bit parameter updates.

    Called without arguments (as `PrecisionPolicy.preset` does) it gives the
    setting of the paper's reference code (its example ``main.py CIFAR10
    DFXP 5 9 11 100 0.0001 2``: 9 and 11 bits plus the sign); the arguments
    change it, e.g. ``POLICY_PRESETS["courbariaux dfx 10/12"](period=10,
    warmup_batches=0)``. The rules of a group: `DynamicFixed`.

    Args:
        word_bits: WL of the propagated weights and biases, pre-activations,
            activations, errors, gradients, update term and velocity (10).
        update_bits: WL of the stored weights (``master``, 12).
        period: training batches between radix-point updates (100, the
            reference code's range update frequency).
        warmup_batches: float64 batches at the start of training whose
            largest magnitudes set each group's initial radix point (100).
        init_int_bits: IL (the sign bit included) of a group no warm-up
            sizes (6, the reference code's initial range of 5 integer bits
            plus the sign): FL = WL - 6, range [-32, 32).
        max_overflow_rate: the overflow share tolerated (1e-4).

    Reproduces: weights and biases as used in propagation, pre-activations,
    activations, errors (the loss gradient included) and gradients in
    ``word_bits`` dynamic fixed point; the stored weights in ``update_bits``;
    the update term and the momentum velocity (one buffer in the reference
    code) in ``word_bits``. One radix point per parameter tensor and role (a
    layer's weights, biases, weight gradients, bias gradients, and the
    update and velocity of each tensor, apart) and one per layer for
    pre-activations, activations and errors, as the reference code keeps
    them; each updated every ``period`` batches from the overflow share of
    those batches, with maximum overflow rate 1e-4; frozen during evaluation.

    Float64 because the paper is silent: Adam's moments (it trains with SGD
    and momentum) and batch normalisation's roles (Maxout networks without
    batch normalisation).

    STE: identity. The reference code back-propagates through every
    conversion as the identity (its gradients are taken with respect to the
    unconverted values), saturated or not.

    Departs: the reference code's warm-up trains 2 epochs (700 to 1000
    batches on its data sets) with 31-bit words and its range updates
    running, then restarts from the initial weights; here the warm-up is
    ``warmup_batches`` float64 batches (100: about 2.2 epochs of a
    cross-validation fold's 1,437 training images at batch size 32, 45
    batches each) whose largest magnitudes set the radix points, and training
    continues from the weights they reached, converted from then on. The
    reference code shares one radix point between the propagated and the
    stored copy of a tensor; here they are two groups (``weights`` or
    ``biases``, and ``master``). Its overflow share is the mean of the
    per-batch shares and its batch counter restarts every epoch; here the
    share is pooled over the period's values and batches count across
    epochs. Velocity and update are two conversions of one value (to groups
    of the same width seeing the same values). Rounding is to nearest even
    in the two's complement range (the reference saturates symmetrically at
    +-(2^(IL-1) - 2^-FL)).

    Raises:
        ValueError: a setting outside its range (the message names it and the range).
    """
    from emu.checks import check_int

    fn = "courbariaux dfx 10/12"
    wl = check_int(word_bits, fn, "word_bits", 2, 62)
    ul = check_int(update_bits, fn, "update_bits", 2, 62)
    il = check_int(init_int_bits, fn, "init_int_bits", max(wl, ul) - 1000, 1000)
    settings = {"period": period, "warmup_batches": warmup_batches, "max_overflow_rate": max_overflow_rate}
    prop = RoleFormat(DynamicFixed(wl, init_frac_bits=wl - il, **settings))
    up = RoleFormat(DynamicFixed(ul, init_frac_bits=ul - il, **settings))
    lp = LayerPolicy(weights=prop, biases=prop, activations=prop, preacts=prop, errors=prop, grads=prop,
                     master=up, update=prop, momentum=prop)
    return PrecisionPolicy(lp, name=f"dynamic fixed point {wl}-bit propagation, {ul}-bit update",
                           ste=STE.IDENTITY)


_BC_DOC = """BinaryConnect (Courbariaux et al. 2015), {kind} binarisation.

    Reproduces: {how} in every propagation (forward and backward); the
    real-valued weights receive the updates and are clipped to [-1, 1] after
    each one (`nets.optim` clips binary weights); the optimiser's state and
    batch normalisation's gamma, beta and statistics are real-valued, as in
    the paper (float64 roles). {evaluation}

    Float64 because the paper keeps them real: every role but ``weights``.

    STE: identity. The paper's gradient with respect to the binary weights
    updates the real ones unchanged; activations are real-valued here, so no
    output saturates and the two rules give the same gradients.

    Departs: the paper's recipe besides the formats (batch normalisation on
    every layer, square hinge loss, Adam with per-layer learning-rate scaling)
    belongs to the model and the optimiser, not to this policy.
    """


def _binary(stochastic: bool) -> PrecisionPolicy:
    w = RoleFormat(emu.BinaryFormat(stochastic=stochastic))
    name = f"binaryconnect {'stochastic' if stochastic else 'det'}"
    return PrecisionPolicy(LayerPolicy(weights=w), name=name, ste=STE.IDENTITY,
                           evaluate_with=EvaluateWith.FLOAT64 if stochastic else EvaluateWith.SAME)


def _binaryconnect_det() -> PrecisionPolicy:
    return _binary(False)


def _binaryconnect_stochastic() -> PrecisionPolicy:
    return _binary(True)


_binaryconnect_det.__doc__ = _BC_DOC.format(
    kind="deterministic", how="weights sign(w) (+1 for w >= 0)",
    evaluation="Evaluation uses the binary weights, as the paper's deterministic variant.")
_binaryconnect_stochastic.__doc__ = _BC_DOC.format(
    kind="stochastic", how="weights +1 with probability clip((w + 1) / 2, 0, 1), else -1,",
    evaluation="Evaluation uses the real-valued weights in float64 (``evaluate_with=float64``), as the"
               " paper tests its stochastic variant.")


def _binarized() -> PrecisionPolicy:
    """Binarized neural networks (Hubara et al. 2016): binary weights; binary activations from the model.

    Reproduces: weights sign(w) in every product, the real-valued weights
    clipped to [-1, 1] after each update; the activations are binarised by
    the model's `nets.layers.Sign` layers (e.g. ``mlp(..., activation="sign")``)
    with the paper's hard-tanh estimator (gradient zero where |x| > 1), which
    keeps the first layer's input real-valued as the paper does. Optimiser
    state and batch normalisation real-valued (float64 roles), as in the paper.

    STE: identity. The weight binarisation passes its gradient straight
    through; the saturation of the activations is the Sign layer's own rule.

    Departs: the paper's shift-based batch normalisation and AdaMax are not
    modelled; the binarised activations are a model choice, not a role.

    Table: `nets.experiments.bnn_table` (``Recipe(activation="sign")``,
    beside Table 1 of arXiv:1602.02830, MNIST).
    """
    lp = LayerPolicy(weights=RoleFormat(emu.BinaryFormat()))
    return PrecisionPolicy(lp, name="binarized (binary weights; Sign activations in the model)",
                           ste=STE.IDENTITY)


def _twn() -> PrecisionPolicy:
    """Ternary weight networks (Li et al. 2016).

    Reproduces: weights {-alpha, 0, +alpha} with threshold 0.7 mean |w| and
    alpha the mean |w| above it, per layer, in every product; the real-valued
    weights receive the updates and are not clipped (unlike BinaryConnect's);
    optimiser state and batch normalisation real-valued (float64 roles), as
    in the paper.

    STE: identity. The paper passes the gradient straight through the
    ternarisation; activations are real-valued, so the rules coincide.

    Departs: arXiv:1605.04711v3 (Algorithm 1) takes the threshold 0.75
    mean |w| and one alpha per filter; this preset keeps 0.7 and one alpha
    per layer. The paper's networks and training (LeNet-5, VGG-like and
    ResNet models with SGD, momentum and weight decay) belong to the model
    and the optimiser, not to this policy.

    Table: `nets.experiments.twn_table` (beside Table 2 of
    arXiv:1605.04711v3, MNIST).
    """
    return PrecisionPolicy(LayerPolicy(weights=RoleFormat("ternary")), name="twn", ste=STE.IDENTITY)


_MIXED_DOC = """Mixed-precision training with {fmt} ({paper}).

    Reproduces: weights, biases, activations, pre-activations, errors (the
    loss gradient included) and gradients in {fmt}; an fp32 master copy of
    the weights receives the updates, the update term in fp32 (the update is
    applied in fp32 to the master copy); gamma and beta in {fmt} like every
    parameter's propagated copy.

    Float64 because the paper is silent: the momentum buffer, Adam's moments
    and batch normalisation's running statistics.

    STE: identity. Casts back-propagate as the identity in the paper.

    Departs: products are exact and rounded once to {fmt} (the paper
    accumulates in fp32 and writes {fmt}: the same value unless the fp32 sum
    rounds); no loss scaling.
    """


def _mixed(fmt: str) -> PrecisionPolicy:
    r, fp32 = RoleFormat(fmt), RoleFormat("fp32")
    roles = ("weights", "biases", "activations", "preacts", "errors", "grads", "bn_params")
    lp = LayerPolicy(**dict.fromkeys(roles, r), master=fp32, update=fp32)
    return PrecisionPolicy(lp, name=f"{fmt} mixed precision, fp32 master", ste=STE.IDENTITY)


def _fp16() -> PrecisionPolicy:
    return _mixed("fp16")


def _bf16() -> PrecisionPolicy:
    return _mixed("bf16")


_fp16.__doc__ = _MIXED_DOC.format(fmt="fp16", paper="Micikevicius et al. 2018")
_bf16.__doc__ = _MIXED_DOC.format(fmt="bf16", paper="Kalamkar et al. 2019: bf16 in place of fp16")


def _fp32() -> PrecisionPolicy:
    """Single precision: every role, the optimiser's state and batch normalisation in fp32; no paper.

    Products are exact and rounded once to fp32 (float64 arithmetic, fp32
    storage), not an fp32 MAC unit.

    STE: identity (fp32 training back-propagates through nothing else).

    Departs: no paper to depart from.
    """
    return PrecisionPolicy(PrecisionPolicy.uniform("fp32", state="master").default, name="uniform fp32",
                           ste=STE.IDENTITY)


def _fp8() -> PrecisionPolicy:
    """FP8 training (Micikevicius et al. 2022): e4m3 forward, e5m2 backward, fp32 accumulation.

    Reproduces: weights and activations in e4m3, errors (the loss gradient
    included) in e5m2, every product through an emu MAC of those operands
    with an fp32 accumulator; the weight gradients kept as that product's
    fp32 output (the paper casts only the inputs of products to FP8, their
    outputs stay in 16 or 32 bits); biases and pre-activations in bf16; an
    fp32 master copy of the weights and the update term in fp32.

    Float64 because the paper is silent: the momentum buffer, Adam's moments
    and batch normalisation's roles.

    STE: identity, as the paper's casts.

    Departs: no per-tensor scaling factors (the paper scales each tensor
    into the FP8 range before the cast).
    """
    fwd = RoleFormat("e4m3")
    bwd = RoleFormat("e5m2")
    fp32 = RoleFormat("fp32")
    lp = LayerPolicy(weights=fwd, biases=RoleFormat("bf16"), activations=fwd, preacts=RoleFormat("bf16"),
                     errors=bwd, grads=fp32, master=fp32, update=fp32,
                     fwd_mac=MAC(act="e4m3", weight="e4m3", acc="fp32"),
                     bwd_mac=MAC(act="e5m2", weight="e4m3", acc="fp32"),
                     grad_mac=MAC(act="e4m3", weight="e5m2", acc="fp32"))
    return PrecisionPolicy(lp, name="e4m3 forward / e5m2 backward, fp32 accumulate", ste=STE.IDENTITY)


_MX_DOC = """OCP MX training (Rouhani et al. 2023): {fwd} forward, mxfp8_e5m2 backward.

    Reproduces: weights and activations in {fwd} (blocks of 32 along the
    reduction axis with a shared power-of-two scale), the forward product
    through the bit-exact block MAC with an fp32 accumulator; errors (the
    loss gradient included) in mxfp8_e5m2; weight gradients in fp32 (the
    paper converts only the inputs of products to MX, their outputs stay in
    fp32); biases and pre-activations in bf16; an fp32 master copy of the
    weights and the update term in fp32.

    Float64 because the paper is silent: the momentum buffer, Adam's moments
    and batch normalisation's roles.

    STE: identity, as the paper's casts.

    Departs: the backward products are float64 sums of the converted values
    rounded once, not block MACs; under mxfp4 the activations are mxfp4 where
    the paper's sub-8-bit run keeps MXFP6 activations and gradients. A
    convolution (other than 1x1) refuses the preset as it stands: its
    forward block MAC blocks the im2col patches along (c_in, kh, kw), while
    the roles block along the channels; give its activations and weights
    roles float64 with ``with_layer`` (the MAC then encodes the patches
    once).
    """


def _mx(elem_fwd: str, elem_bwd: str) -> PrecisionPolicy:
    fwd, bwd, fp32 = RoleFormat(elem_fwd), RoleFormat(elem_bwd), RoleFormat("fp32")
    lp = LayerPolicy(weights=fwd, biases=RoleFormat("bf16"), activations=fwd, preacts=RoleFormat("bf16"),
                     errors=bwd, grads=fp32, master=fp32, update=fp32,
                     fwd_mac=MAC(act=elem_fwd, weight=elem_fwd, acc="fp32"))
    return PrecisionPolicy(lp, name=f"{elem_fwd} forward / {elem_bwd} backward, fp32 accumulate",
                           ste=STE.IDENTITY)


def _mxfp8() -> PrecisionPolicy:
    return _mx("mxfp8_e4m3", "mxfp8_e5m2")


def _mxfp4() -> PrecisionPolicy:
    return _mx("mxfp4", "mxfp8_e5m2")


_mxfp8.__doc__ = _MX_DOC.format(fwd="mxfp8_e4m3")
_mxfp4.__doc__ = _MX_DOC.format(fwd="mxfp4")


def _nvfp4() -> PrecisionPolicy:
    """NVFP4 training (NVIDIA 2025, "Pretraining Large Language Models with NVFP4", arXiv 2509.25149).

    Reproduces: weights, activations and errors (the loss gradient included) in NVFP4 (E2M1 elements in
    blocks of 16 along the reduction axis, an E4M3 scale per block and an fp32 scale per tensor); the
    weights and activations rounded to nearest even, the errors stochastically (the paper's unbiased
    gradient estimate), every forward product through the bit-exact NVFP4 block MAC with an fp32
    accumulator; weight gradients, the fp32 master copy of the weights and the update term in fp32;
    biases and pre-activations in bf16.

    Float64 because the paper is silent: the momentum buffer, Adam's moments and batch normalisation's
    roles.

    STE: identity, as the paper's casts.

    Departs: the weights' blocks are 1 x 16 along the reduction axis, not the paper's 16 x 16 tiles (which
    keep one quantised weight for the forward and the backward product); no random Hadamard transform of
    the weight gradient's operands; every layer is quantised (the paper keeps a few, the last ones among
    them, in BF16); the backward products are float64 sums of the converted values rounded once, not
    NVFP4 block MACs. A convolution (other than 1x1) refuses it as the MX presets are refused.
    """
    fwd, fp32 = RoleFormat("nvfp4"), RoleFormat("fp32")
    lp = LayerPolicy(weights=fwd, biases=RoleFormat("bf16"), activations=fwd, preacts=RoleFormat("bf16"),
                     errors=RoleFormat("nvfp4", Rounding.STOCHASTIC), grads=fp32, master=fp32, update=fp32,
                     fwd_mac=MAC(act="nvfp4", weight="nvfp4", acc="fp32"))
    return PrecisionPolicy(lp, name="nvfp4, stochastic errors, fp32 accumulate", ste=STE.IDENTITY)


_GUPTA_WL16_DOC = """Gupta et al. 2015 at word length 16: fixed point <{il},{fl}> with {rounding} rounding.

    Reproduces: the FL = {fl} curve of the paper's Fig. 2 (MNIST, fully
    connected network, word length 16): every quantity of training in
    fx<{il},{fl}> (IL counts the sign bit, as in the paper: range
    [-{half}, {half}), step 2^-{fl}): weights, biases, activations,
    pre-activations, errors (the loss gradient included), gradients, the
    stored weights, the update term and, when SGD runs with momentum, its
    velocity; saturation on overflow (the paper's Convert). Products are
    exact (float64) and rounded once, as the paper's wide accumulator does.
    `nets.experiments.gupta_wl16_table` trains it on inputs scaled to
    [0, 1] and states its learning rate and batch size.

    Float64: nothing. Adam's moments and batch normalisation's parameters and
    statistics, which the paper's networks and optimiser do not have, follow
    its principle that every quantity is fixed point.

    STE: clipped. The paper does not say what the gradient through a
    saturated output is; this preset uses the project's extension.
    ``replace(p, ste="identity")`` gives the plain rule, and the experiment
    reports both.

    Departs: ties round to even (the paper writes ties down; they differ only
    at exact ties).
    """


def _gupta_wl16(int_bits: int, rounding: str) -> PrecisionPolicy:
    fmt = f"fx<{int_bits},{16 - int_bits}>"
    lp = LayerPolicy(**dict.fromkeys(ROLES, RoleFormat(fmt, rounding)))
    tag = "stochastic" if rounding == "stochastic" else "nearest"
    return PrecisionPolicy(lp, name=f"gupta {fmt} {tag}", ste=STE.CLIPPED)


def _gupta_2_14_stochastic() -> PrecisionPolicy:
    return _gupta_wl16(2, "stochastic")


def _gupta_2_14_nearest() -> PrecisionPolicy:
    return _gupta_wl16(2, "nearest_even")


def _gupta_6_10_stochastic() -> PrecisionPolicy:
    return _gupta_wl16(6, "stochastic")


def _gupta_6_10_nearest() -> PrecisionPolicy:
    return _gupta_wl16(6, "nearest_even")


def _gupta_8_8_stochastic() -> PrecisionPolicy:
    return _gupta_wl16(8, "stochastic")


def _gupta_8_8_nearest() -> PrecisionPolicy:
    return _gupta_wl16(8, "nearest_even")


for _f, _il in ((_gupta_2_14_stochastic, 2), (_gupta_2_14_nearest, 2), (_gupta_6_10_stochastic, 6),
                (_gupta_6_10_nearest, 6), (_gupta_8_8_stochastic, 8), (_gupta_8_8_nearest, 8)):
    _f.__doc__ = _GUPTA_WL16_DOC.format(
        il=_il, fl=16 - _il, half=2 ** (_il - 1),
        rounding="stochastic" if "stochastic" in _f.__name__ else "round-to-nearest")
del _f, _il


#: Named policies (`PrecisionPolicy.preset`): each value builds the policy; its docstring says what it
#: reproduces, its straight-through rule and where it departs.
POLICY_PRESETS: dict[str, Callable[[], PrecisionPolicy]] = {
    "float64": _float64,
    "gupta fx<4,12> stochastic": _gupta_stochastic,
    "gupta fx<4,12> nearest": _gupta_nearest,
    "courbariaux dfx 10/12": _courbariaux,
    "binaryconnect det": _binaryconnect_det,
    "binaryconnect stochastic": _binaryconnect_stochastic,
    "binarized": _binarized,
    "twn": _twn,
    "fp16": _fp16,
    "bf16": _bf16,
    "fp32": _fp32,
    "e4m3 forward / e5m2 backward": _fp8,
    "mxfp8 forward / mxfp8_e5m2 backward": _mxfp8,
    "mxfp4 forward / mxfp8_e5m2 backward": _mxfp4,
    "nvfp4 (nvidia 2025)": _nvfp4,
    "gupta fx<2,14> stochastic": _gupta_2_14_stochastic,
    "gupta fx<2,14> nearest": _gupta_2_14_nearest,
    "gupta fx<6,10> stochastic": _gupta_6_10_stochastic,
    "gupta fx<6,10> nearest": _gupta_6_10_nearest,
    "gupta fx<8,8> stochastic": _gupta_8_8_stochastic,
    "gupta fx<8,8> nearest": _gupta_8_8_nearest,
}
