"""The record of a compression run and the optimiser wrapper that keeps it in force.

A `Compression` holds what the methods decided for a model: pruning masks
(`masks`), shared-weight codebooks (`codebooks`) and low-rank factorisations
(`factors`), the number of parameters the model had before any of them
(`original_params`) and a `log` with one dict per step. `CompressedOptimizer`
wraps an `SGD`/`Adam`: after every update it multiplies each masked layer's
weights by its mask and, for every shared layer, moves each centroid by the
sum of the gradients of the weights in its cluster, then writes the centroids
back into the weights. Imports numpy, `emu` and `nets` modules.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import emu

from ..args import check_instance
from ..layers import Layer
from ..models import Model
from ..optim import Optimizer, schedule_at

__all__ = ["Codebook", "CompressedOptimizer", "Compression", "check_centroid_lr", "check_model",
           "weighted_layers"]


def check_centroid_lr(value: Any, where: str) -> float | None:
    """``centroid_lr`` checked: None (the default rule) or a finite number > 0, as a float.

    >>> check_centroid_lr(0.5, "f"), check_centroid_lr(None, "f")
    (0.5, None)
    >>> check_centroid_lr(-1.0, "f")
    Traceback (most recent call last):
    ...
    ValueError: f: centroid_lr=-1.0 outside the allowed range (0, inf) (or None: the default)
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: centroid_lr={value!r} must be a number in (0, inf) or None")
    v = float(value)
    if not (v > 0.0 and math.isfinite(v)):
        raise ValueError(f"{where}: centroid_lr={value!r} outside the allowed range (0, inf)"
                         " (or None: the default)")
    return v


def check_model(model: object, where: str) -> Model:
    """``model`` if it is a `nets.Model`, else a TypeError naming ``where`` and the parameter.

    >>> check_model(None, "prune")
    Traceback (most recent call last):
    ...
    TypeError: prune: model=None must be a nets Model
    """
    return check_instance(model, Model, where, "model", "a nets Model")


def weighted_layers(model: Model) -> dict[str, Layer]:
    """The layers with a weight matrix ``W`` (Linear, Conv2d), by name, in forward order.

    Raises:
        TypeError: ``model`` is not a `nets.Model`.
    """
    check_model(model, "weighted_layers")
    return {layer.name: layer for layer in model.layers() if "W" in layer.params}


def nonfinite_count(a: np.ndarray) -> int:
    """How many values of ``a`` are NaN or infinite."""
    return int(a.size - np.count_nonzero(np.isfinite(a)))


def check_finite(wl: dict[str, Layer], names: Any, where: str) -> None:
    """Refuse a layer among ``names`` whose weights hold NaN or inf: a magnitude threshold, a standard
    deviation or a cluster mean of them means nothing, and NaN x 0 would leave a pruned weight NaN."""
    for name in names:
        bad = nonfinite_count(wl[name].params["W"])
        if bad:
            raise ValueError(f"{where}: layer {name!r} holds {bad} NaN or infinite weight(s); compression"
                             " needs finite weights")


@dataclass
class Codebook:
    """The shared weights of one layer: k centroids and, per weight, the index of its centroid.

    Attributes:
        centroids: float64 array (k,) of the shared values (already in ``fmt``
            when a format is given).
        labels: int64 array of the layer's weight shape; ``labels[i]`` is the
            centroid of weight i, or -1 for a pruned weight (value 0).
        fmt: the `emu` format the centroids are stored in, or None (they are
            then stored in the storage count's ``weight_bits``).
        init: the centroid initialisation that produced them.

    >>> cb = Codebook(np.array([-0.5, 0.25]), np.array([[0, 1], [-1, 1]]))
    >>> cb.weights().tolist()
    [[-0.5, 0.25], [0.0, 0.25]]
    """

    centroids: np.ndarray
    labels: np.ndarray
    fmt: emu.Format | None = None
    init: str = "linear"

    @property
    def k(self) -> int:
        """Number of shared values."""
        return int(self.centroids.size)

    def weights(self) -> np.ndarray:
        """The weights the codebook stands for: ``centroids[labels]``, 0 where the label is -1."""
        return np.where(self.labels >= 0, self.centroids[np.maximum(self.labels, 0)], 0.0)

    def update(self, grad: np.ndarray, lr: float) -> None:
        """Gradient step on the centroids: c_j -= lr * (sum of grad over the weights with label j).

        The centroids are then rounded to ``fmt`` (round to nearest even,
        saturating) when one is given.
        """
        keep = self.labels >= 0
        g = np.bincount(self.labels[keep], weights=grad[keep], minlength=self.k)
        c = self.centroids - lr * g
        self.centroids = emu.quantize(c, self.fmt, overflow="saturate") if self.fmt is not None else c


@dataclass
class Compression:
    """What compression did to a model, method by method.

    Attributes:
        masks: by layer name, a bool array of the weight shape; False marks a
            pruned weight (held at 0 through training).
        codebooks: by layer name, the layer's `Codebook`.
        factors: by original layer name, the low-rank record (rank, factor
            layer names, shapes, multiplications before and after, relative
            Frobenius error of the truncation).
        original_params: scalar parameters of the model before compression
            (the reference of `storage_bits`' compression rate).
        log: one dict per step (method, its arguments, what it did, accuracy).
    """

    masks: dict[str, np.ndarray] = field(default_factory=dict)
    codebooks: dict[str, Codebook] = field(default_factory=dict)
    factors: dict[str, dict[str, Any]] = field(default_factory=dict)
    original_params: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, model: Model) -> Compression:
        """An empty record of ``model`` (its current parameter count is the reference)."""
        return cls(original_params=model.n_parameters())

    def enforce(self, model: Model) -> None:
        """Write the constraints into the weights: the masks (`apply_masks`), W = codebook values
        (shared)."""
        layers = self.apply_masks(model)
        for name, cb in self.codebooks.items():
            layers[name].params["W"] = cb.weights()

    def apply_masks(self, model: Model) -> dict[str, Layer]:
        """W = 0 where each masked layer's mask prunes (exactly +0: not W x 0, which keeps a NaN); returns
        the weighted layers by name."""
        layers = weighted_layers(model)
        for name, mask in self.masks.items():
            layers[name].params["W"] = np.where(mask, layers[name].params["W"], 0.0)
        return layers

    def sparsity(self, model: Model) -> dict[str, float]:
        """Share of zero weights per weighted layer, and over all of them (key ``"total"``)."""
        out, zeros, total = {}, 0, 0
        for name, layer in weighted_layers(model).items():
            w = layer.params["W"]
            z = int(w.size - np.count_nonzero(w))
            out[name] = z / w.size
            zeros, total = zeros + z, total + w.size
        out["total"] = zeros / total if total else 0.0
        return out

    def optimizer(self, base: Optimizer, centroid_lr: float | None = None) -> CompressedOptimizer:
        """``base`` wrapped so that every update keeps this record's masks and codebooks."""
        return CompressedOptimizer(base, self, centroid_lr)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: mask densities, codebooks (k, centroids, format, init), factors and the
        log."""
        return {
            "original_params": self.original_params,
            "masks": {n: {"weights": int(m.size), "kept": int(m.sum()), "density": float(m.mean())}
                      for n, m in self.masks.items()},
            "codebooks": {n: {"k": cb.k, "centroids": cb.centroids.tolist(), "init": cb.init,
                              "fmt": None if cb.fmt is None else str(cb.fmt)}
                          for n, cb in self.codebooks.items()},
            "factors": {n: dict(f) for n, f in self.factors.items()},
            "log": list(self.log),
        }


class CompressedOptimizer:
    """An optimiser that keeps a `Compression` in force after every update.

    ``step`` runs the wrapped optimiser's update on every parameter, then:

    - masked layers: W = 0 where the mask prunes (pruned weights stay exactly +0, whatever the update);
    - shared layers: with g the weight gradient the layers left for this
      batch, every centroid moves by ``-lr * sum(g over its cluster)`` (the
      gradients of a cluster summed, Han et al. 2016), is rounded to the
      codebook's format if it has one, and W = centroids[labels] (0 where
      pruned). ``lr`` is ``centroid_lr`` or, when None, the wrapped
      optimiser's learning rate for the epoch divided by the layer's mean
      cluster size (unpruned weights / k): the summed gradient of a cluster
      grows with its size, and this keeps the step of a centroid that of one
      weight under the same learning rate (moved at the weights' own learning
      rate, large clusters diverge: k = 2 on a 19,200-weight layer does).

    It passes ``epoch``, ``counts`` and ``state`` through, so `nets.train`
    uses it as any optimiser; it keeps the centroids each epoch starts from,
    so that `restore_centroids` can return them to an earlier epoch's (as
    `retrain` does after an early stop). Example: a layer with weights [0.5, 0.4, -0.3],
    labels [0, 0, 1], centroids [0.45, -0.3] and gradients [0.1, 0.2, -0.5]
    with ``centroid_lr=0.1`` ends the step with centroids
    [0.45 - 0.1 x 0.3, -0.3 + 0.1 x 0.5] = [0.42, -0.25] and weights
    [0.42, 0.42, -0.25], whatever the wrapped optimiser did to the weights.
    With ``centroid_lr=None`` and a wrapped learning rate of 0.15, the lr is
    0.15 / (3 weights / 2 clusters) = 0.1, the same step.
    """

    def __init__(self, base: Optimizer, comp: Compression, centroid_lr: float | None = None) -> None:
        if not isinstance(base, Optimizer):
            raise TypeError(f"CompressedOptimizer: base={base!r} must be an Optimizer (SGD, Adam)")
        if not isinstance(comp, Compression):
            raise TypeError(f"CompressedOptimizer: comp={comp!r} must be a Compression (the record prune,"
                            " share_weights, low_rank or compress return)")
        self.base = base
        self.comp = comp
        self.centroid_lr = check_centroid_lr(centroid_lr, "CompressedOptimizer")
        #: the centroids at the start of each epoch (``nets.train`` sets ``epoch`` as an epoch starts)
        self.epoch_start_centroids: dict[int, dict[str, np.ndarray]] = {}

    @property
    def epoch(self) -> int:
        return self.base.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.base.epoch = value
        if value == 0:  # a new training run
            self.epoch_start_centroids.clear()
        self.epoch_start_centroids[value] = {n: cb.centroids.copy() for n, cb in self.comp.codebooks.items()}

    def restore_centroids(self, epoch: int, model: Model) -> None:
        """Put the centroids back to those at the end of ``epoch`` and write them into ``model``.

        For a training run that returned to an earlier epoch's weights
        (``nets.train``'s ``early_stopping``): the centroids the next epoch
        started from; nothing changes when no later epoch started.
        """
        later = self.epoch_start_centroids.get(epoch + 1)
        if later is None:
            return
        for name, c in later.items():
            if name in self.comp.codebooks:
                self.comp.codebooks[name].centroids = c.copy()
        self.comp.enforce(model)

    @property
    def counts(self) -> Any:
        return self.base.counts

    @property
    def state(self) -> dict[Any, Any]:
        return self.base.state

    def step(self, model: Model, ctx: Any) -> None:
        layers = weighted_layers(model)
        grads = {n: layers[n].grads["W"] for n in self.comp.codebooks}
        self.base.step(model, ctx)
        self.comp.apply_masks(model)
        lr = schedule_at(self.base.lr, self.base.epoch)
        for name, cb in self.comp.codebooks.items():
            kept = int(np.count_nonzero(cb.labels >= 0))
            cb.update(grads[name],
                      self.centroid_lr if self.centroid_lr is not None else lr * cb.k / max(kept, 1))
            layers[name].params["W"] = cb.weights()

    def describe(self) -> str:
        inner = self.base.describe() if hasattr(self.base, "describe") else type(self.base).__name__
        return (f"{inner} + masks on {len(self.comp.masks)} layers, shared weights on"
                f" {len(self.comp.codebooks)} layers")
