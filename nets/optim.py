"""Optimisers and schedules; every update is stored in the ``master`` role's format.

`SGD` (momentum with a schedule, per-layer weight decay, learning-rate
schedules) and `Adam` compute an update in float64 from the gradients the
layers left (already in the ``grads`` role), then store the new weights
converted to the layer's ``master`` role: with a narrow master format and
round-to-nearest, small updates round away (the effect Gupta et al. 2015
show), which the optimiser counts. Weights whose propagation role is binary
or ternary are clipped to [-1, 1] after the update, as BinaryConnect does.
Imports numpy and `nets` modules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import njit

from emu import BinaryFormat, TernaryFormat

__all__ = ["SGD", "Adam", "Optimizer", "UpdateCounts", "constant", "exponential", "linear_momentum",
           "schedule_at", "steps"]

Schedule = Callable[[int], float]


def constant(value: float) -> Schedule:
    """value at every epoch."""
    return lambda epoch: value


def exponential(value: float, decay: float) -> Schedule:
    """value * decay^epoch."""
    return lambda epoch: value * decay**epoch


def steps(value: float, milestones: list[int], gamma: float = 0.1) -> Schedule:
    """value times gamma for every milestone epoch already reached."""
    ms = sorted(milestones)
    return lambda epoch: value * gamma ** sum(epoch >= m for m in ms)


def linear_momentum(mu0: float = 0.5, step: float = 0.049, mu_max: float = 0.99) -> Schedule:
    """mu_t = min(mu0 + step * t, mu_max): the momentum schedule of the precision study."""
    return lambda epoch: min(mu0 + step * epoch, mu_max)


def schedule_at(v: float | Schedule, epoch: int) -> float:
    """The value of a number or a schedule at an epoch.

    >>> schedule_at(0.5, 3), schedule_at(exponential(1.0, 0.5), 2)
    (0.5, 0.25)
    """
    return float(v(epoch)) if callable(v) else float(v)


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


@dataclass
class Optimizer:
    """The base of `SGD` and `Adam`: learning rate, weight decay, update counts, epoch and state.

    A subclass computes an update in ``delta``; `step` adds weight decay to the
    gradient, applies the update and stores the result in the ``master`` role's
    format (clipped to [-1, 1] for binary or ternary weights), counting the
    updates that left the stored weight unchanged.
    """

    lr: float | Schedule = 0.1
    weight_decay: float | dict[str, float] = 0.0
    counts: UpdateCounts = field(default_factory=UpdateCounts)
    epoch: int = 0
    state: dict[tuple[str, str], Any] = field(default_factory=dict)

    def _decay(self, layer_name: str, pname: str) -> float:
        if pname not in ("W",):
            return 0.0
        if isinstance(self.weight_decay, dict):
            return float(self.weight_decay.get(layer_name, 0.0))
        return float(self.weight_decay)

    def delta(self, key: tuple[str, str], g: np.ndarray, w: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def step(self, model: Any, ctx: Any) -> None:
        """Update every parameter from its gradient and store it in the master format."""
        for layer, pname in model.parameters():
            w = layer.params[pname]
            g = layer.grads[pname]
            decay = self._decay(layer.name, pname)
            if decay:
                g = g + decay * w
            d = self.delta((layer.name, pname), g, w)
            lp = ctx.policy.for_layer(layer.name)
            new = ctx.quant(w + d, lp.master, layer.name, "master")
            if pname == "W" and isinstance(ctx.quant.format_of(lp.weights, layer.name, "weights"),
                                           (BinaryFormat, TernaryFormat)):
                new = np.clip(new, -1.0, 1.0)
            attempted, zeroed = _update_counts(d.reshape(-1), new.reshape(-1), w.reshape(-1))
            self.counts.attempted += attempted
            self.counts.zeroed += zeroed
            layer.params[pname] = new


@dataclass
class SGD(Optimizer):
    """Stochastic gradient descent with momentum: v = mu v - lr g; w = Q_master(w + v).

    ``lr`` and ``momentum`` are numbers or schedules (functions of the epoch,
    e.g. `linear_momentum`); ``weight_decay`` is a number or a dict by layer.
    """

    momentum: float | Schedule = 0.0

    def delta(self, key: tuple[str, str], g: np.ndarray, w: np.ndarray) -> np.ndarray:
        lr = schedule_at(self.lr, self.epoch)
        mu = schedule_at(self.momentum, self.epoch)
        if mu == 0.0:
            return -lr * g
        v = self.state.get(key)
        v = -lr * g if v is None else mu * v - lr * g
        self.state[key] = v
        return v

    def describe(self) -> str:
        lr, mu = schedule_at(self.lr, self.epoch), schedule_at(self.momentum, self.epoch)
        return f"SGD(lr={lr:g}, momentum={mu:g})"


@dataclass
class Adam(Optimizer):
    """Adam (Kingma and Ba 2015) with bias correction; the step goes through the master format."""

    lr: float | Schedule = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def delta(self, key: tuple[str, str], g: np.ndarray, w: np.ndarray) -> np.ndarray:
        m, v, t = self.state.get(key, (np.zeros_like(g), np.zeros_like(g), 0))
        t += 1
        m = self.beta1 * m + (1 - self.beta1) * g
        v = self.beta2 * v + (1 - self.beta2) * g * g
        self.state[key] = (m, v, t)
        mh = m / (1 - self.beta1**t)
        vh = v / (1 - self.beta2**t)
        return -schedule_at(self.lr, self.epoch) * mh / (np.sqrt(vh) + self.eps)

    def describe(self) -> str:
        return f"Adam(lr={schedule_at(self.lr, self.epoch):g})"
