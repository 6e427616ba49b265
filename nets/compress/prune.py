"""Magnitude pruning (Han et al. 2015): masks, iterative prune-and-retrain, sensitivity scans.

`prune` zeroes the weights of small magnitude in every weighted layer (Linear,
Conv2d; biases are never pruned) and records a mask per layer in a
`Compression`; `retrain` trains with the masks (and any codebooks) held in
force after every update; `iterative_prune` alternates the two along a
schedule; `sensitivity_scan` prunes one layer at a time without retraining
and measures the accuracy. Imports numpy, `emu.checks` and `nets` modules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from emu.checks import check_int

from ..datasets import Dataset
from ..models import Model
from ..optim import SGD, Optimizer
from ..policy import PrecisionPolicy
from ..train import History, evaluate, train
from .record import Compression, weighted_layers

__all__ = ["iterative_prune", "magnitude_mask", "prune", "pruned_count", "retrain", "sensitivity_scan"]


def _check_ratio(ratio: float, where: str) -> float:
    r = float(ratio)
    if not 0.0 <= r < 1.0:
        raise ValueError(f"{where}: ratio={ratio!r} outside the allowed range [0, 1)")
    return r


def _check_quality(quality: float, where: str) -> float:
    q = float(quality)
    if not (q >= 0.0 and np.isfinite(q)):
        raise ValueError(f"{where}: quality={quality!r} outside the allowed range [0, inf)")
    return q


def pruned_count(ratio: float, n: int) -> int:
    """How many of n weights a pruning ratio prunes: floor(ratio x n), computed exactly.

    The ratio is read as its shortest decimal representation (``repr`` of the
    float, the number as written), not as the binary float nearest to it:
    0.29 is 29/100, so 0.29 of 100 weights prunes 29, where the float
    product 0.29 * 100 = 28.999999999999996 would floor to 28.

    >>> pruned_count(0.29, 100), pruned_count(0.5, 7), pruned_count(0.0, 10)
    (29, 3, 0)

    Raises:
        ValueError: ratio outside [0, 1); n < 0.
    """
    r = Fraction(repr(_check_ratio(ratio, "pruned_count")))
    return (r.numerator * check_int(n, "pruned_count", "n", 0)) // r.denominator


def magnitude_mask(w: np.ndarray, *, ratio: float | None = None, quality: float | None = None,
                   mask: np.ndarray | None = None) -> np.ndarray:
    """The keep-mask of magnitude pruning of one weight array (True: kept).

    Exactly one of:

    - ``ratio`` in [0, 1): the ``floor(ratio * w.size)`` weights of smallest
      |w| are pruned (ties broken by position: the earlier one goes first);
      the ratio counts all the layer's weights, those already pruned
      included, so 0.9 after 0.8 prunes a further 10 % of the layer. The
      count is exact for the ratio as written (`pruned_count`: the ratio is
      read as its shortest decimal representation): 0.29 of 100 weights
      prunes 29, though 0.29 * 100 is 28.999999999999996 in float64.
    - ``quality`` >= 0 (Han et al. 2015): weights with |w| <= quality * std
      are pruned, std being the standard deviation of all the layer's weights
      with the pruned ones counted as 0 (so repeating one quality after
      retraining prunes further, as the threshold follows the weights).

    An existing ``mask`` is kept: a pruned weight stays pruned.

    >>> magnitude_mask(np.array([0.1, -0.5, 0.02, 0.3]), ratio=0.5).tolist()
    [False, True, False, True]
    >>> magnitude_mask(np.array([0.0, 0.0, 0.0, 0.7]), ratio=0.5, mask=np.array([1, 1, 0, 1])).tolist()
    [False, True, False, True]
    >>> w = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])  # std = sqrt(2) = 1.414
    >>> magnitude_mask(w, quality=0.5).tolist()  # threshold 0.707
    [True, True, False, True, True]
    >>> magnitude_mask(w, quality=1.0).tolist()  # threshold 1.414
    [True, False, False, False, True]
    """
    if (ratio is None) == (quality is None):
        raise ValueError("magnitude_mask: give exactly one of ratio (in [0, 1)) and quality (>= 0)")
    keep = np.ones(w.shape, bool) if mask is None else mask.astype(bool).copy()
    a = np.abs(w) * keep
    if ratio is not None:
        r = _check_ratio(ratio, "magnitude_mask")
        m = pruned_count(r, w.size)
        flat = keep.reshape(-1)
        rank = np.where(flat, a.reshape(-1), -1.0)  # the pruned first, then the kept by |w| (zeros too)
        flat[np.argsort(rank, kind="stable")[:m]] = False
        return flat.reshape(w.shape)
    q = _check_quality(quality, "magnitude_mask")  # type: ignore[arg-type]
    return keep & (a > q * float((w * keep).std()))


def _per_layer(value: float | Mapping[str, float] | None, names: list[str], where: str,
               param: str) -> dict[str, float]:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"{where}: {param} names unknown layers {sorted(unknown)};"
                             f" weighted layers: {names}")
        return {k: float(v) for k, v in value.items()}
    return {n: float(value) for n in names}


def _select(model: Model, layers: Sequence[str] | None, where: str) -> list[str]:
    names = list(weighted_layers(model))
    if layers is None:
        return names
    bad = [n for n in layers if n not in names]
    if bad:
        raise ValueError(f"{where}: layers={bad} are not weighted layers of the model;"
                         f" weighted layers: {names}")
    return list(layers)


def prune(model: Model, *, ratio: float | Mapping[str, float] | None = None,
          quality: float | Mapping[str, float] | None = None, layers: Sequence[str] | None = None,
          comp: Compression | None = None) -> Compression:
    """Prune the weights of small magnitude of every weighted layer (or of ``layers``), in place.

    Exactly one of ``ratio`` (share of each layer's weights pruned, in [0, 1))
    and ``quality`` (threshold = quality x the std of each layer's weights,
    Han et al. 2015), each a number for all layers or a dict by layer name
    (`magnitude_mask` gives the exact rule). The masks are combined with
    those already in ``comp`` (a pruned weight stays pruned) and written into
    the weights; a layer with a codebook keeps its shared values (its pruned
    weights get label -1). Returns ``comp`` (a new record when None) with the
    step logged as ``{"method": "prune", ..., "sparsity": {layer: share}}``.

    Example: for a model whose only weighted layer holds [0.1, -0.5, 0.02,
    0.3], ``prune(model, ratio=0.5)`` leaves [0, -0.5, 0, 0.3] and the mask
    [False, True, False, True].

    Raises:
        ValueError: both or neither of ratio and quality; a ratio outside
            [0, 1) or a negative quality; unknown layer names.
    """
    comp = comp or Compression.start(model)
    if (ratio is None) == (quality is None):
        raise ValueError("prune: give exactly one of ratio (in [0, 1)) and quality (>= 0)")
    names = _select(model, layers, "prune")
    ratios = _per_layer(ratio, names, "prune", "ratio")
    quals = _per_layer(quality, names, "prune", "quality")
    for r in ratios.values():
        _check_ratio(r, "prune")
    for q in quals.values():
        _check_quality(q, "prune")
    wl = weighted_layers(model)
    for name in ratios or quals:
        layer = wl[name]
        mask = magnitude_mask(layer.params["W"], ratio=ratios.get(name), quality=quals.get(name),
                              mask=comp.masks.get(name))
        comp.masks[name] = mask
        if name in comp.codebooks:
            cb = comp.codebooks[name]
            cb.labels = np.where(mask, cb.labels, -1)
    comp.enforce(model)
    sp = comp.sparsity(model)
    comp.log.append({"method": "prune", "ratio": ratio if not isinstance(ratio, Mapping) else dict(ratio),
                     "quality": quality if not isinstance(quality, Mapping) else dict(quality),
                     "sparsity": sp})
    return comp


def retrain(model: Model, data: Dataset, comp: Compression, *, epochs: int = 2,
            policy: PrecisionPolicy | None = None, optimizer: Optimizer | None = None,
            centroid_lr: float | None = None, seed: int = 0, batch_size: int = 32,
            **train_kw: Any) -> History:
    """`nets.train` with ``comp`` in force after every update (`CompressedOptimizer`).

    ``optimizer`` defaults to SGD(lr=0.05, momentum=0.9); ``centroid_lr``
    is the learning rate of shared centroids (None: the optimiser's divided by
    each layer's mean cluster size, see `CompressedOptimizer`). Logs
    ``{"method": "retrain", "epochs", "valid_accuracy", "test_accuracy"}``.
    """
    opt = comp.optimizer(optimizer or SGD(lr=0.05, momentum=0.9), centroid_lr)
    train_kw.setdefault("progress", False)
    hist = train(model, data, policy, opt,  # type: ignore[arg-type]
                 epochs=epochs, batch_size=batch_size, seed=seed, **train_kw)
    comp.log.append({"method": "retrain", "epochs": epochs,
                     "valid_accuracy": hist.records[-1]["valid_accuracy"] if hist.records else float("nan"),
                     "test_accuracy": hist.test_accuracy})
    return hist


def iterative_prune(model: Model, data: Dataset, schedule: Sequence[float | Mapping[str, float]], *,
                    by: str = "ratio", epochs: int = 2, policy: PrecisionPolicy | None = None,
                    optimizer: Optimizer | None = None, layers: Sequence[str] | None = None,
                    comp: Compression | None = None, seed: int = 0, **train_kw: Any) -> Compression:
    """Iterative pruning: for each value of ``schedule``, prune then retrain ``epochs`` epochs.

    ``by="ratio"``: the values are pruning ratios of each layer (e.g.
    [0.5, 0.7, 0.8, 0.9] reaches 90 % sparsity in four rounds, each round
    pruning the smallest of the weights that survived); ``by="quality"``:
    quality parameters (each round's threshold is that quality x the std of
    the layer's current weights, pruned ones counted as 0; repeating one
    value, e.g. [1.0, 1.0, 1.0], prunes further each round). Each round is
    logged as
    ``{"method": "iterative_prune", "round", by: value, "sparsity",
    "valid_accuracy"}``.
    """
    if by not in ("ratio", "quality"):
        raise ValueError(f"iterative_prune: by={by!r} is not 'ratio' or 'quality'")
    comp = comp or Compression.start(model)
    for i, v in enumerate(schedule):
        prune(model, layers=layers, comp=comp, **{by: v})
        hist = retrain(model, data, comp, epochs=epochs, policy=policy, optimizer=optimizer, seed=seed + i,
                       **train_kw)
        value = dict(v) if isinstance(v, Mapping) else float(v)
        comp.log.append({"method": "iterative_prune", "round": i, by: value,
                         "sparsity": comp.sparsity(model)["total"],
                         "valid_accuracy": (hist.records[-1]["valid_accuracy"] if hist.records
                                            else float("nan"))})
    return comp


def sensitivity_scan(model: Model, data: Dataset, ratios: Sequence[float], *,
                     layers: Sequence[str] | None = None, policy: PrecisionPolicy | None = None,
                     split: str = "valid") -> dict[str, list[tuple[float, float]]]:
    """Accuracy against the pruning ratio of each layer alone, without retraining (Han et al. 2015, fig. 5).

    For every weighted layer (or each of ``layers``) and every ratio, prunes
    that layer only (`magnitude_mask` with ``ratio``), evaluates on ``split``
    ("train", "valid" or "test") under ``policy`` and restores the weights.
    Returns ``{layer: [(ratio, accuracy), ...]}``; the model is unchanged.
    """
    if split not in ("train", "valid", "test"):
        raise ValueError(f"sensitivity_scan: split={split!r} is not train, valid or test")
    for r in ratios:
        _check_ratio(r, "sensitivity_scan")
    names = _select(model, layers, "sensitivity_scan")
    wl = weighted_layers(model)
    out: dict[str, list[tuple[float, float]]] = {}
    for name in names:
        w0 = wl[name].params["W"]
        curve = []
        for r in ratios:
            wl[name].params["W"] = w0 * magnitude_mask(w0, ratio=r)
            curve.append((float(r), evaluate(model, getattr(data, split), policy)[1]))
        wl[name].params["W"] = w0
        out[name] = curve
    return out
