"""Optimisers and schedules; the optimiser's state and every update are stored in their roles' formats.

`SGD` (momentum with a schedule, per-layer weight decay, learning-rate
schedules) and `Adam` compute an update from the gradients the layers left
(already in the ``grads`` role). Each layer's `LayerPolicy` names the formats
of the optimiser's state: SGD stores its velocity converted to the
``momentum`` role, Adam both moments converted to the ``moments`` role; the
update term (-lr g, the velocity, or Adam's step) is converted to the
``update`` role, added to the stored weights, and the sum converted to the
``master`` role. Stochastic conversions draw from the training run's
`Quantizer`, so one seed fixes them. With a narrow format and
round-to-nearest, small updates round away (the effect Gupta et al. 2015
show), which the optimiser counts. Binary weights (BinaryConnect, binarized
networks) are clipped to [-1, 1] after the update, as those papers do;
ternary weights are not (TWN does not clip). ``lr_scale=LRScale.GLOROT``
multiplies each layer's weight update by 1 / sqrt(1.5 / (fan_in + fan_out)),
the per-layer learning rates of BinaryConnect's reference code. With every
role float64 (the default) this is plain float64 SGD or Adam. Imports numpy,
numba, `emu` and `nets.init`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numba import njit

from emu import BinaryFormat
from emu.checks import check_int, check_real, parse_choice

from .init import fans

__all__ = ["SGD", "Adam", "Convert", "LRScale", "Optimizer", "UpdateCounts", "clip_binary", "constant",
           "exponential", "glorot_lr_scale", "keep", "linear_momentum", "schedule_at", "steps"]

Schedule = Callable[[int], float]

#: ``convert(x, role, label)``: x converted to the layer's format for ``role`` (one of "momentum",
#: "moments"), counted (and grouped, for dynamic fixed point) under ``label``
Convert = Callable[[np.ndarray, str, str], np.ndarray]


def keep(x: np.ndarray, role: str, label: str) -> np.ndarray:
    """The `Convert` of float64 state: x unchanged.

    >>> keep(np.array([0.1]), "momentum", "momentum")
    array([0.1])
    """
    return x


def constant(value: float) -> Schedule:
    """value at every epoch (a finite real >= 0, as `exponential`'s; else TypeError or ValueError naming it).

    >>> constant(-1.0)
    Traceback (most recent call last):
    ...
    ValueError: constant: value=-1.0 outside the allowed range [0, inf)
    """
    check_real(value, "constant", "value", 0.0)
    return lambda epoch: value


def exponential(value: float, decay: float) -> Schedule:
    """value * decay^epoch (value >= 0, decay > 0, both finite; else ValueError naming the field)."""
    check_real(value, "exponential", "value", 0.0)
    check_real(decay, "exponential", "decay", 0.0, lo_open=True)
    return lambda epoch: value * decay**epoch


def steps(value: float, milestones: list[int], gamma: float = 0.1) -> Schedule:
    """value times gamma for every milestone epoch already reached (value >= 0, gamma > 0, milestones
    epochs >= 0; else ValueError naming the field; milestones that are not a list of ints: TypeError)."""
    check_real(value, "steps", "value", 0.0)
    check_real(gamma, "steps", "gamma", 0.0, lo_open=True)
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
        raise TypeError(f"steps: milestones={milestones!r} must be a list of epochs (ints >= 0)")
    ms = sorted(check_int(m, "steps", "milestones", 0) for m in milestones)
    return lambda epoch: value * gamma ** sum(epoch >= m for m in ms)


def linear_momentum(mu0: float = 0.5, step: float = 0.049, mu_max: float = 0.99) -> Schedule:
    """mu_t = min(mu0 + step * t, mu_max): the momentum schedule of the precision study (mu0 and mu_max in
    [0, 1), step >= 0)."""
    check_real(mu0, "linear_momentum", "mu0", 0.0, 1.0, hi_open=True)
    check_real(step, "linear_momentum", "step", 0.0)
    check_real(mu_max, "linear_momentum", "mu_max", 0.0, 1.0, hi_open=True)
    return lambda epoch: min(mu0 + step * epoch, mu_max)


def schedule_at(v: float | Schedule, epoch: int) -> float:
    """The value of a number or a schedule at an epoch (an int >= 0).

    >>> schedule_at(0.5, 3), schedule_at(exponential(1.0, 0.5), 2)
    (0.5, 0.25)

    Raises:
        TypeError: ``v`` neither a finite real number nor a schedule (callable), ``epoch`` not an int.
        ValueError: ``epoch`` below 0.
    """
    epoch = check_int(epoch, "schedule_at", "epoch", 0)
    if callable(v):
        return float(v(epoch))
    return check_real(v, "schedule_at", "v")


class LRScale(StrEnum):
    """Per-layer learning-rate scaling of the weights (`Optimizer.lr_scale`).

    >>> LRScale("glorot") is LRScale.GLOROT, str(LRScale.NONE)
    (True, 'none')
    """

    #: every parameter moves at the learning rate
    NONE = "none"
    #: each layer's weights W move at lr * `glorot_lr_scale` (BinaryConnect's ``W_LR_scale = "Glorot"``);
    #: biases and batch normalisation's parameters at lr
    GLOROT = "glorot"


def glorot_lr_scale(shape: tuple[int, ...]) -> float:
    """1 / sqrt(1.5 / (fan_in + fan_out)) for a weight of ``shape`` (Linear or Conv2d, as `nets.init.fans`).

    The learning-rate factor of Courbariaux et al. 2015's reference code: the
    inverse of half the Glorot uniform bound sqrt(6 / (fan_in + fan_out)), so
    a wide layer, whose initial weights are small, takes larger steps.
    A 64 x 100 layer: 1 / sqrt(1.5 / 164) = 10.456...

    >>> round(glorot_lr_scale((64, 100)), 3), round(glorot_lr_scale((16, 6, 3, 3)), 3)
    (10.456, 11.489)
    """
    fan_in, fan_out = fans(shape)
    return 1.0 / float(np.sqrt(1.5 / (fan_in + fan_out)))


@dataclass
class UpdateCounts:
    """How many weight updates were attempted and how many left the stored weight unchanged."""

    attempted: int = 0
    zeroed: int = 0

    @property
    def zeroed_share(self) -> float:
        """zeroed / attempted (0 when nothing was attempted)."""
        return self.zeroed / self.attempted if self.attempted else 0.0


@njit(cache=True)
def _update_counts(d: np.ndarray, new: np.ndarray, w: np.ndarray) -> tuple[int, int]:
    """(updates d != 0, those of them that left the stored weight unchanged: new == w), in one pass."""
    attempted = 0
    zeroed = 0
    for i in range(d.size):
        moving = np.int64(d[i] != 0)
        attempted += moving
        zeroed += moving & np.int64(new[i] == w[i])
    return attempted, zeroed


def clips(layer: str, pname: str, lp: Any, quant: Any) -> bool:
    """Whether parameter ``pname`` of ``layer`` is stored clipped to [-1, 1]: the weights W of a layer whose
    ``weights`` role (of `LayerPolicy` ``lp``, its format now in `Quantizer` ``quant``) is binary, as
    BinaryConnect and binarized networks store them."""
    return pname == "W" and isinstance(quant.format_of(lp.weights, layer, "weights"), BinaryFormat)


def clip_binary(new: np.ndarray, layer: str, pname: str, lp: Any, quant: Any) -> np.ndarray:
    """The stored value of parameter ``pname`` of ``layer``: ``new`` (already in the master role's format),
    clipped to [-1, 1] where it `clips`."""
    return np.clip(new, -1.0, 1.0) if clips(layer, pname, lp, quant) else new


def _role_converter(quant: Any, lp: Any, name: str, pname: str) -> Convert:
    """The ``convert`` an optimiser's `Optimizer.delta` stores its state through: parameter ``pname`` of
    layer ``name`` to a role of `LayerPolicy` ``lp`` by the run's `Quantizer` ``quant``."""
    def convert(x: np.ndarray, role: str, label: str) -> np.ndarray:
        return quant(x, getattr(lp, role), name, label, tensor=pname)
    return convert


@dataclass
class Optimizer:
    """The base of `SGD` and `Adam`: learning rate, weight decay, update counts, epoch and state.

    A subclass computes the update term in ``delta``, storing its state
    through ``convert``. `step`, for every parameter w with gradient g:

    1. g += weight_decay * w (weights "W" only);
    2. d = Q_update(s * delta(key, g, w, convert)), the state inside ``delta``
       converted to the ``momentum`` / ``moments`` roles; s is 1, or for the
       weights "W" under ``lr_scale="glorot"`` the layer's `glorot_lr_scale`
       (the state stays unscaled, as the reference code scales Adam's step);
    3. w = Q_master(w + d), then clipped to [-1, 1] if the layer's
       ``weights`` role is binary;

    counting the updates (d before its conversion nonzero) that left the stored
    weight unchanged. Each Q is the layer's role format (float64: no conversion)
    through the run's `Quantizer`, counted under (layer, role). Where the update
    term is a plain a g (`rate`: SGD without momentum), steps 2 and 3 run in one
    call (`nets.quant.Quantizer.update`, `emu.rounded_update`) with the same bits
    and counts.

    ``lr_scale`` is an `LRScale` or its name; another value raises ValueError
    naming the field and the allowed names, at construction, as does a
    negative or non-finite weight decay (a number, or per layer) or learning
    rate (a number; a schedule's value is checked at each step, `lr_now`).
    """

    lr: float | Schedule = 0.1
    weight_decay: float | dict[str, float] = 0.0
    counts: UpdateCounts = field(default_factory=UpdateCounts)
    epoch: int = 0
    state: dict[tuple[str, str], Any] = field(default_factory=dict)
    lr_scale: LRScale = LRScale.NONE

    def __post_init__(self) -> None:
        self.lr_scale = parse_choice(LRScale, self.lr_scale, type(self).__name__, "lr_scale")
        if not callable(self.lr):
            check_real(self.lr, type(self).__name__, "lr", 0.0)
        decays = self.weight_decay.values() if isinstance(self.weight_decay, dict) else [self.weight_decay]
        for d in decays:
            check_real(d, type(self).__name__, "weight_decay", 0.0, math.inf)

    def check_layers(self, names: list[str], func: str) -> None:
        """Refuse a per-layer weight decay naming a layer the model (its layer ``names``) does not have."""
        if isinstance(self.weight_decay, dict):
            unknown = sorted(set(self.weight_decay) - set(names))
            if unknown:
                raise ValueError(f"{func}: weight_decay names layer(s) {unknown}, which this model does not"
                                 f" have; its layers: {', '.join(names)}")

    def _decay(self, layer_name: str, pname: str) -> float:
        if pname not in ("W",):
            return 0.0
        if isinstance(self.weight_decay, dict):
            return float(self.weight_decay.get(layer_name, 0.0))
        return float(self.weight_decay)

    def delta(self, key: tuple[str, str], g: np.ndarray, w: np.ndarray,
              convert: Convert = keep) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def rate(self, pname: str) -> float | None:
        """a where parameter ``pname``'s update term is a g for its gradient g (plain SGD: -lr), so that
        `step` can convert it and the new value in one call; None where it keeps state or scales."""
        return None

    def plain_rate(self, layer: str, pname: str, lp: Any, quant: Any) -> float | None:
        """a where `step`'s update of parameter ``pname`` of ``layer`` (its `LayerPolicy` ``lp``, formats
        now in `Quantizer` ``quant``) is Q_master(w + Q_update(a g)) of its gradient g alone: `rate`, where
        no weight decay adds to g and the weights are not clipped (`clips`); else None. A fused step
        (`nets.mlpstep`) runs such updates itself."""
        a = self.rate(pname)
        if a is None or self._decay(layer, pname) or clips(layer, pname, lp, quant):
            return None
        return a

    def lr_now(self) -> float:
        """The learning rate at this epoch: the number, or the schedule's value, which must be a finite
        real >= 0 (else ValueError, or TypeError, naming the epoch)."""
        if not callable(self.lr):
            return float(self.lr)
        what = f"lr (its schedule at epoch {self.epoch})"
        return check_real(self.lr(self.epoch), type(self).__name__, what, 0.0)

    def _scale_text(self) -> str:
        return "" if self.lr_scale is LRScale.NONE else f", lr_scale={self.lr_scale}"

    def step(self, model: Any, ctx: Any) -> None:
        """Update every parameter: the update term converted to ``update``, the new weights to ``master``."""
        quant = ctx.quant
        for layer, pname in model.parameters():
            w = layer.params[pname]
            g = layer.grads[pname]
            decay = self._decay(layer.name, pname)
            if decay:
                g = g + decay * w
            lp = ctx.policy.for_layer(layer.name)
            name = layer.name
            a = self.rate(pname)
            done = None if a is None or clips(name, pname, lp, quant) else quant.update(w, g, a, lp.update,
                                                                                        lp.master, name)
            if done is None:
                raw = self.delta((name, pname), g, w, _role_converter(quant, lp, name, pname))
                if pname == "W" and self.lr_scale is LRScale.GLOROT:
                    raw = raw * glorot_lr_scale(w.shape)
                d = quant(raw, lp.update, name, "update", tensor=pname)
                new = quant(w + d, lp.master, name, "master", tensor=pname)
                new = clip_binary(new, name, pname, lp, quant)
                done = (new, *_update_counts(raw.reshape(-1), new.reshape(-1), w.reshape(-1)))
            new, attempted, zeroed = done  # (a plain update term a g: both conversions in one call)
            self.counts.attempted += attempted
            self.counts.zeroed += zeroed
            layer.params[pname] = new


@dataclass
class SGD(Optimizer):
    """Stochastic gradient descent with momentum: v = Q_momentum(mu v - lr g); w = Q_master(w + Q_update(v)).

    Without momentum (mu = 0) the update term is -lr g and no velocity is
    kept; a momentum schedule keeps its velocity through epochs where it is 0
    (v = Q_momentum(-lr g) there), so the next nonzero mu meets the last v.
    ``lr`` and ``momentum`` are numbers or schedules (functions of the epoch,
    e.g. `linear_momentum`); ``weight_decay`` is a number or a dict by layer.
    The velocity is stored in the ``momentum`` role's format: under fx<4,8>
    with round-to-nearest its values are multiples of 2^-8.
    """

    momentum: float | Schedule = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not callable(self.momentum):
            check_real(self.momentum, "SGD", "momentum", 0.0, 1.0, hi_open=True)

    def delta(self, key: tuple[str, str], g: np.ndarray, w: np.ndarray,
              convert: Convert = keep) -> np.ndarray:
        """The update term of one parameter; the velocity, if any, stored converted to ``momentum``."""
        lr, mu = self.lr_now(), self.momentum_now()
        if mu == 0.0 and not callable(self.momentum):  # no momentum: no velocity
            return -lr * g
        v = self.state.get(key)  # a schedule's velocity is kept through its epochs at 0 too
        v = convert(-lr * g if v is None else mu * v - lr * g, "momentum", "momentum")
        self.state[key] = v
        return v

    def rate(self, pname: str) -> float | None:
        """-lr without momentum (no velocity) or a Glorot scale on W; else None."""
        if self.momentum != 0.0 or (pname == "W" and self.lr_scale is LRScale.GLOROT):
            return None
        return -self.lr_now()

    def momentum_now(self) -> float:
        """The momentum at this epoch: the number, or the schedule's value, which must be a finite real in
        [0, 1) (else ValueError, or TypeError, naming the epoch), as a number is at construction."""
        if not callable(self.momentum):
            return float(self.momentum)
        what = f"momentum (its schedule at epoch {self.epoch})"
        return check_real(self.momentum(self.epoch), "SGD", what, 0.0, 1.0, hi_open=True)

    def describe(self) -> str:
        lr, mu = schedule_at(self.lr, self.epoch), schedule_at(self.momentum, self.epoch)
        return f"SGD(lr={lr:g}, momentum={mu:g}{self._scale_text()})"


@dataclass
class Adam(Optimizer):
    """Adam (Kingma and Ba 2015) with bias correction.

    m = Q_moments(beta1 m + (1 - beta1) g), v = Q_moments(beta2 v + (1 - beta2) g^2),
    step = -lr m_hat / (sqrt(v_hat) + eps) with the bias-corrected m_hat, v_hat
    (float64); w = Q_master(w + Q_update(step)). The two moments share the
    ``moments`` role's format and are counted (and grouped, for dynamic fixed
    point) apart, as "moments.m" and "moments.v".
    """

    lr: float | Schedule = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("beta1", "beta2"):
            check_real(getattr(self, name), "Adam", name, 0.0, 1.0, hi_open=True)
        check_real(self.eps, "Adam", "eps", 0.0, math.inf, lo_open=True)

    def delta(self, key: tuple[str, str], g: np.ndarray, w: np.ndarray,
              convert: Convert = keep) -> np.ndarray:
        """Adam's step for one parameter; both moments stored converted to ``moments``."""
        m, v, t = self.state.get(key, (np.zeros_like(g), np.zeros_like(g), 0))
        t += 1
        m = convert(self.beta1 * m + (1 - self.beta1) * g, "moments", "moments.m")
        v = convert(self.beta2 * v + (1 - self.beta2) * g * g, "moments", "moments.v")
        self.state[key] = (m, v, t)
        mh = m / (1 - self.beta1**t)
        vh = v / (1 - self.beta2**t)
        return -self.lr_now() * mh / (np.sqrt(vh) + self.eps)

    def describe(self) -> str:
        return f"Adam(lr={schedule_at(self.lr, self.epoch):g}{self._scale_text()})"
