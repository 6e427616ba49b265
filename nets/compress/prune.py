"""Magnitude pruning (Han et al. 2015): masks, iterative prune-and-retrain, sensitivity scans.

`prune` zeroes the weights of small magnitude in every weighted layer (Linear,
Conv2d; biases are never pruned) and records a mask per layer in a
`Compression`; `retrain` trains with the masks (and any codebooks) held in
force after every update; `iterative_prune` alternates the two along a
schedule; `sensitivity_scan` prunes one layer at a time without retraining
and measures the accuracy. Imports numpy, `emu.checks` and `nets` modules.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from emu.checks import check_int, real_array

from ..args import check_layer_names
from ..datasets import Dataset
from ..models import Model
from ..optim import SGD, Optimizer
from ..policy import PrecisionPolicy
from ..train import History, evaluate, evaluation_policy, train
from .record import (
    Compression,
    check_centroid_lr,
    check_finite,
    check_model,
    nonfinite_count,
    weighted_layers,
)

__all__ = ["TRAIN_OPTIONS", "check_iterative_prune_settings", "check_prune_settings",
           "check_retrain_settings", "iterative_prune", "magnitude_mask", "prune", "pruned_count", "retrain",
           "sensitivity_scan"]


def _number(value: Any, where: str, name: str, allowed: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name}={value!r} must be a number in the allowed range {allowed}")
    return float(value)


def _check_ratio(ratio: Any, where: str) -> float:
    r = _number(ratio, where, "ratio", "[0, 1)")
    if not 0.0 <= r < 1.0:
        raise ValueError(f"{where}: ratio={r!r} outside the allowed range [0, 1)")
    return r


def _check_quality(quality: Any, where: str) -> float:
    q = _number(quality, where, "quality", "[0, inf)")
    if not (q >= 0.0 and np.isfinite(q)):
        raise ValueError(f"{where}: quality={q!r} outside the allowed range [0, inf)")
    return q


def _as_written(x: Any) -> Fraction:
    """A number as its shortest decimal representation in its own type (a float32's as a float32); an
    exact rational (a Fraction or an int) as itself."""
    if isinstance(x, (Fraction, int, np.integer)):
        return Fraction(int(x)) if isinstance(x, np.integer) else Fraction(x)
    if isinstance(x, np.floating):
        return Fraction(np.format_float_positional(x, unique=True, trim="0"))
    return Fraction(repr(float(x)))


def _plain(v: Any) -> Any:
    """A log value as plain Python (dicts by layer included): numpy numbers as int or float (as written)."""
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, np.floating):
        return float(_as_written(v))
    return float(v) if isinstance(v, numbers.Real) and not isinstance(v, float) else v


def pruned_count(ratio: float, n: int) -> int:
    """How many of n weights a pruning ratio prunes: floor(ratio x n), computed exactly.

    The ratio is read as its shortest decimal representation (``repr`` of the
    float, the number as written; a numpy float's in its own precision, so
    ``np.float32(0.29)`` is 0.29 too), not as the binary float nearest to it:
    0.29 is 29/100, so 0.29 of 100 weights prunes 29, where the float
    product 0.29 * 100 = 28.999999999999996 would floor to 28.

    >>> pruned_count(0.29, 100), pruned_count(0.5, 7), pruned_count(0.0, 10)
    (29, 3, 0)
    >>> pruned_count(np.float32(0.29), 100)  # 0.29 as a float32 is 0.2899999976...: read as 0.29
    29
    >>> pruned_count(Fraction(1, 3), 3)  # an exact ratio as itself
    1

    Raises:
        ValueError: ratio outside [0, 1); n < 0. TypeError: ratio not a number.
    """
    _check_ratio(ratio, "pruned_count")
    r = _as_written(ratio)
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

    Raises:
        TypeError: ``w`` is not an array of real numbers; ``mask`` is not an array of bools (or of 0 and 1).
        ValueError: ``w`` holds NaN or infinite weights (no magnitude ranks them); ``mask`` has another
            shape than ``w`` or ints other than 0 and 1; not exactly one of ``ratio`` and ``quality``, or
            one outside its range.
    """
    if (ratio is None) == (quality is None):
        raise ValueError("magnitude_mask: give exactly one of ratio (in [0, 1)) and quality (>= 0)")
    w = real_array(w, "magnitude_mask", "w")
    bad = nonfinite_count(w.astype(np.float64, copy=False))
    if bad:
        raise ValueError(f"magnitude_mask: w holds {bad} NaN or infinite weight(s); pruning needs finite"
                         " weights")
    keep = np.ones(w.shape, bool) if mask is None else _keep_mask(mask, w.shape)
    a = np.abs(w) * keep
    if ratio is not None:
        _check_ratio(ratio, "magnitude_mask")
        m = pruned_count(ratio, w.size)
        flat = keep.reshape(-1)
        rank = np.where(flat, a.reshape(-1), -1.0)  # the pruned first, then the kept by |w| (zeros too)
        flat[np.argsort(rank, kind="stable")[:m]] = False
        return flat.reshape(w.shape)
    q = _check_quality(quality, "magnitude_mask")  # type: ignore[arg-type]
    return keep & (a > q * float((w * keep).std()))


def _keep_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """An existing keep-mask as a fresh bool array of ``shape``: bools, or ints 0 and 1."""
    m = np.asarray(mask)
    if m.dtype.kind not in "biu":
        raise TypeError(f"magnitude_mask: mask={mask!r} must be an array of bools (True: kept) of w's shape")
    if m.shape != shape:
        raise ValueError(f"magnitude_mask: mask has shape {m.shape}; it must have w's shape {shape}")
    if m.dtype.kind != "b" and not np.isin(m, (0, 1)).all():
        raise ValueError("magnitude_mask: mask holds ints other than 0 and 1; give bools (True: kept)")
    return m.astype(bool)


def _per_layer(value: float | Mapping[str, float] | None, names: list[str], where: str,
               param: str, weighted: list[str] | None = None) -> dict[str, float]:
    """``value`` by layer of ``names`` (the layers selected); ``weighted``: every weighted layer of the
    model (None: ``names``), so that a dict naming a weighted layer left out of ``layers`` says so."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        weighted = names if weighted is None else weighted
        unknown = sorted(set(value) - set(weighted))
        if unknown:
            raise ValueError(f"{where}: {param} names unknown layers {unknown};"
                             f" weighted layers: {weighted}")
        outside = sorted(set(value) - set(names))
        if outside:
            raise ValueError(f"{where}: {param} names layers {outside} that are not among layers={names};"
                             f" name only those, or add them to layers")
        return dict(value)
    return {n: value for n in names}


def _select(model: Model, layers: Sequence[str] | None, where: str) -> list[str]:
    names = list(weighted_layers(model))
    layers = check_layer_names(layers, where)
    if layers is None:
        return names
    bad = [n for n in layers if n not in names]
    if bad:
        raise ValueError(f"{where}: layers={bad} are not weighted layers of the model;"
                         f" weighted layers: {names}")
    return list(layers)


def _each(value: Any, where: str, name: str) -> list[Any]:
    """The values of a setting given as one number or as a dict by layer (an empty dict is refused)."""
    if isinstance(value, Mapping) and not value:
        raise ValueError(f"{where}: {name}={{}} names no layer; give a number for every layer or a dict with"
                         " at least one layer")
    return list(value.values()) if isinstance(value, Mapping) else [value]


def check_prune_settings(where: str = "prune", *, ratio: Any = None, quality: Any = None,
                         layers: Any = None) -> None:
    """The checks of `prune` that need no model (`compress` makes them on every step before the first)."""
    if (ratio is None) == (quality is None):
        raise ValueError(f"{where}: give exactly one of ratio (in [0, 1)) and quality (>= 0)")
    check_layer_names(layers, where)
    for r in _each(ratio, where, "ratio") if ratio is not None else []:
        _check_ratio(r, where)
    for q in _each(quality, where, "quality") if quality is not None else []:
        _check_quality(q, where)


#: `nets.train`'s keyword options that `retrain` passes through.
TRAIN_OPTIONS = ("early_stopping", "progress", "eval_batch_size", "stream", "eval_policy")


def check_retrain_settings(where: str = "retrain", *, epochs: Any = 2, centroid_lr: Any = None,
                           batch_size: Any = 32, **train_kw: Any) -> None:
    """The checks of `retrain` (and of `iterative_prune`'s rounds) that need no model or data."""
    check_int(epochs, where, "epochs", 0)
    check_centroid_lr(centroid_lr, where)
    check_int(batch_size, where, "batch_size", 1)
    unknown = [k for k in train_kw if k not in TRAIN_OPTIONS]
    if unknown:
        raise ValueError(f"{where}: unknown options {unknown}; nets.train options:"
                         f" {', '.join(TRAIN_OPTIONS)}")
    if train_kw.get("early_stopping") is not None:
        check_int(train_kw["early_stopping"], where, "early_stopping", 0)
    if train_kw.get("eval_batch_size") is not None:
        check_int(train_kw["eval_batch_size"], where, "eval_batch_size", 1)
    evaluation_policy(None, train_kw.get("eval_policy"), where)


def check_iterative_prune_settings(where: str = "iterative_prune", *, schedule: Any, by: Any = "ratio",
                                   layers: Any = None, policy: Any = None, optimizer: Any = None,
                                   seed: Any = 0, **retrain_kw: Any) -> list[Any]:
    """The checks of `iterative_prune` that need no model: every round's value and the retraining's
    settings; returns the schedule as a list."""
    if by not in ("ratio", "quality"):
        raise ValueError(f"{where}: by={by!r} is not 'ratio' or 'quality'")
    if isinstance(schedule, (str, bytes, Mapping)) or not isinstance(schedule, Iterable):
        raise TypeError(f"{where}: schedule={schedule!r} must be a list of {by} values")
    values = list(schedule)
    for v in values:
        check_prune_settings(where, layers=layers, **{by: v})
    check_retrain_settings(where, **retrain_kw)
    check_int(seed, where, "seed", 0)
    for name, value, cls in (("policy", policy, PrecisionPolicy), ("optimizer", optimizer, Optimizer)):
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{where}: {name}={value!r} must be None or a {cls.__name__}")
    if retrain_kw.get("centroid_lr") is not None and retrain_kw.get("epochs", 2) == 0:
        raise ValueError(f"{where}: centroid_lr={retrain_kw['centroid_lr']!r} is given but the rounds retrain"
                         " for 0 epochs; centroid_lr needs epochs >= 1")
    return values


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
    check_model(model, "prune")
    check_prune_settings("prune", ratio=ratio, quality=quality, layers=layers)
    comp = comp or Compression.start(model)
    names = _select(model, layers, "prune")
    wl = weighted_layers(model)
    ratios = _per_layer(ratio, names, "prune", "ratio", list(wl))
    quals = _per_layer(quality, names, "prune", "quality", list(wl))
    check_finite(wl, ratios or quals, "prune")
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
    comp.log.append({"method": "prune", "ratio": _plain(ratio), "quality": _plain(quality), "sparsity": sp})
    return comp


def retrain(model: Model, data: Dataset, comp: Compression, *, epochs: int = 2,
            policy: PrecisionPolicy | None = None, optimizer: Optimizer | None = None,
            centroid_lr: float | None = None, seed: int = 0, batch_size: int = 32,
            **train_kw: Any) -> History:
    """`nets.train` with ``comp`` in force after every update (`CompressedOptimizer`).

    ``optimizer`` defaults to SGD(lr=0.05, momentum=0.9); ``centroid_lr``
    is the learning rate of shared centroids (None: the optimiser's divided by
    each layer's mean cluster size, see `CompressedOptimizer`). Logs
    ``{"method": "retrain", "epochs", "valid_accuracy", "test_accuracy"}`` (the validation accuracy of
    the model kept: the best epoch's under early stopping).

    With ``early_stopping``, `nets.train` returns to the best epoch's
    weights, and the shared centroids return to that epoch's too
    (`CompressedOptimizer.restore_centroids`): the weights stay
    ``centroids[labels]``, the model `storage_bits` counts.

    Raises:
        ValueError: epochs < 0, batch_size < 1, centroid_lr not a finite
            number > 0 (None: the default), early_stopping < 0, an unknown
            `nets.train` option; all before training. (TypeError: a
            non-integer epochs or batch_size, a non-number centroid_lr.)
    """
    check_model(model, "retrain")
    check_retrain_settings("retrain", epochs=epochs, centroid_lr=centroid_lr, batch_size=batch_size,
                           **train_kw)
    if centroid_lr is not None and not comp.codebooks:
        raise ValueError(f"retrain: centroid_lr={centroid_lr!r} is given but no layer is shared (no codebook"
                         " in the record); leave it None")
    opt = comp.optimizer(optimizer or SGD(lr=0.05, momentum=0.9), centroid_lr)
    train_kw.setdefault("progress", False)
    hist = train(model, data, policy, opt,  # type: ignore[arg-type]
                 epochs=epochs, batch_size=batch_size, seed=seed, **train_kw)
    if hist.best_epoch >= 0:  # early stopping went back to the best epoch's weights: its centroids too
        opt.restore_centroids(hist.best_epoch, model)
    comp.log.append({"method": "retrain", "epochs": int(epochs), "valid_accuracy": _kept_valid_accuracy(hist),
                     "test_accuracy": hist.test_accuracy})
    return hist


def _kept_valid_accuracy(hist: History) -> float:
    """The validation accuracy of the model retraining kept: the best epoch's under early stopping, else
    the last epoch's (NaN without epochs)."""
    if not hist.records:
        return float("nan")
    return float(hist.records[hist.best_epoch if hist.best_epoch >= 0 else -1]["valid_accuracy"])


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
    check_model(model, "iterative_prune")
    schedule = check_iterative_prune_settings("iterative_prune", schedule=schedule, by=by, layers=layers,
                                              policy=policy, optimizer=optimizer, seed=seed, epochs=epochs,
                                              **train_kw)
    names = _select(model, layers, "iterative_prune")
    for v in schedule:  # the layers a dict of a later round names, before the first round
        _per_layer(v, names, "iterative_prune", by, list(weighted_layers(model)))
    comp = comp or Compression.start(model)
    for i, v in enumerate(schedule):
        prune(model, layers=layers, comp=comp, **{by: v})
        hist = retrain(model, data, comp, epochs=epochs, policy=policy, optimizer=optimizer, seed=seed + i,
                       **train_kw)
        comp.log.append({"method": "iterative_prune", "round": i,
                         by: _plain(v) if isinstance(v, Mapping) else float(_plain(v)),
                         "sparsity": comp.sparsity(model)["total"],
                         "valid_accuracy": _kept_valid_accuracy(hist)})
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
    check_model(model, "sensitivity_scan")
    if split not in ("train", "valid", "test"):
        raise ValueError(f"sensitivity_scan: split={split!r} is not train, valid or test")
    if isinstance(ratios, (str, bytes, Mapping)) or not isinstance(ratios, Iterable):
        raise TypeError(f"sensitivity_scan: ratios={ratios!r} must be a list of pruning ratios, each in"
                        " [0, 1)")
    ratios = list(ratios)
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
