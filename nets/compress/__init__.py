"""Model compression: pruning, weight sharing, sparse and Huffman storage, low-rank layers.

The methods of Han et al. (2015, "Learning both weights and connections";
2016, "Deep Compression") and truncated-SVD factorisation of dense layers,
each usable alone or chained on a `nets.Model`, in place:

- `prune` / `iterative_prune` / `sensitivity_scan`: magnitude pruning by a
  ratio (`pruned_count`: exact for the ratio as written) or by quality x std,
  masks held through `retrain`;
- `share_weights` (with `kmeans`): k shared values per layer, centroids
  fine-tuned by `retrain` with gradients summed per cluster, optionally in an
  `emu` format;
- `low_rank`: a Linear layer as two thinner ones;
- `storage_bits`: every stored bit (values or codes, relative indices,
  codebooks, Huffman tables, biases) and the compression rate;
- `compress`: a chain of steps from a list of dicts, with retraining.

A `Compression` records what each step did (``to_dict()`` for JSON). The
compressed model is an ordinary `Model`: `nets.evaluate` runs it under any
`PrecisionPolicy`. Imports numpy, `emu` and `nets` modules.
"""

from __future__ import annotations

import copy
import inspect
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from emu.checks import check_int

from ..datasets import Dataset
from ..models import Model
from ..optim import Optimizer
from ..policy import PrecisionPolicy
from ..train import evaluate
from ..train import train as _train
from .coding import (
    HUFFMAN_HEADER_BITS,
    HuffmanCode,
    SparseCode,
    StorageReport,
    fixed_width,
    huffman_decode,
    huffman_encode,
    huffman_lengths,
    huffman_table_bits,
    sparse_decode,
    sparse_encode,
    storage_bits,
)
from .lowrank import check_low_rank_settings, low_rank, multiplications
from .prune import (
    check_iterative_prune_settings,
    check_prune_settings,
    iterative_prune,
    magnitude_mask,
    prune,
    pruned_count,
    retrain,
    sensitivity_scan,
)
from .record import (
    Codebook,
    CompressedOptimizer,
    Compression,
    check_centroid_lr,
    check_model,
    weighted_layers,
)
from .share import INITS, check_share_settings, init_centroids, kmeans, share_weights

__all__ = [
    "HUFFMAN_HEADER_BITS", "INITS", "Codebook", "CompressedOptimizer", "Compression", "HuffmanCode",
    "SparseCode", "StorageReport", "check_centroid_lr", "check_iterative_prune_settings",
    "check_low_rank_settings", "check_prune_settings", "check_share_settings", "compress", "fixed_width",
    "huffman_decode", "huffman_encode",
    "huffman_lengths", "huffman_table_bits", "init_centroids", "iterative_prune", "kmeans", "low_rank",
    "magnitude_mask", "multiplications", "prune", "pruned_count", "retrain", "sensitivity_scan",
    "share_weights", "sparse_decode", "sparse_encode", "storage_bits", "weighted_layers",
]

_METHODS = ("prune", "iterative_prune", "share_weights", "low_rank", "retrain")


def _keywords(f: Callable[..., Any], *drop: str) -> tuple[str, ...]:
    """The named parameters of ``f`` but those in ``drop`` (``**kwargs`` excluded)."""
    return tuple(n for n, p in inspect.signature(f).parameters.items()
                 if p.kind is not p.VAR_KEYWORD and n not in drop)


_SET = ("model", "data", "comp")  # what compress passes itself
#: The keys a step of each method may hold besides "method", "retrain_epochs" and "centroid_lr".
_STEP_KEYS: dict[str, tuple[str, ...]] = {
    "prune": _keywords(prune, *_SET),
    "iterative_prune": (_keywords(iterative_prune, *_SET)
                        + _keywords(retrain, *_SET, "epochs", "policy", "optimizer", "seed", "centroid_lr")
                        + _keywords(_train, *_SET, "policy", "optimizer", "epochs", "batch_size", "seed")),
    "share_weights": _keywords(share_weights, *_SET),
    "low_rank": _keywords(low_rank, *_SET),
    "retrain": ("epochs",),
}
#: The keys a step of each method must hold (the method's parameters without a default).
_REQUIRED: dict[str, tuple[str, ...]] = {
    m: tuple(n for n, p in inspect.signature(f).parameters.items()
             if n not in _SET and p.default is p.empty and p.kind is not p.VAR_KEYWORD)
    for m, f in (("prune", prune), ("iterative_prune", iterative_prune), ("share_weights", share_weights),
                 ("low_rank", low_rank))
}
#: The model-free checks of each method's settings (the ones the method itself makes first).
_SETTINGS: dict[str, Callable[..., Any]] = {
    "prune": check_prune_settings, "iterative_prune": check_iterative_prune_settings,
    "share_weights": check_share_settings, "low_rank": check_low_rank_settings,
}


def _epochs(value: Any, i: int, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"compress: step {i} {key}={value!r} must be an int in the allowed range [0, inf)")
    return int(value)


def _check_step(i: int, step: Any) -> tuple[str, dict[str, Any], int, float | None]:
    """A step's method, its own arguments, the retraining epochs after it and the centroid_lr, checked."""
    if not isinstance(step, Mapping):
        raise ValueError(f"compress: step {i}={step!r} must be a dict with a 'method' key")
    kw = dict(step)
    method = kw.pop("method", None)
    if method not in _METHODS:
        raise ValueError(f"compress: step {i} method={method!r} is not one of {', '.join(_METHODS)}")
    allowed = ("method", *_STEP_KEYS[method], "retrain_epochs", "centroid_lr")
    unknown = [k for k in kw if k not in allowed]
    if unknown:
        raise ValueError(f"compress: step {i} ({method}) has unknown keys {unknown};"
                         f" allowed keys: {', '.join(allowed)}")
    if method == "retrain" and "epochs" in kw and "retrain_epochs" in kw:
        raise ValueError(f"compress: step {i} (retrain) gives both epochs and retrain_epochs; give one")
    key = "epochs" if method == "retrain" and "epochs" in kw else "retrain_epochs"
    epochs = _epochs(kw.pop(key, 0), i, key)
    kw.pop("retrain_epochs", None)
    clr = kw.pop("centroid_lr", None)
    where = f"compress: step {i} ({method})"
    check_centroid_lr(clr, where)
    if clr is not None and epochs == 0 and method != "iterative_prune":
        raise ValueError(f"compress: step {i} ({method}) gives centroid_lr={clr!r} but no retraining;"
                         f" centroid_lr needs {key} >= 1")
    missing = [k for k in _REQUIRED.get(method, ()) if k not in kw]
    if missing:
        raise ValueError(f"compress: step {i} ({method}) lacks the required keys {missing}")
    if method in _SETTINGS:  # the step function's own checks of its values, before any step runs
        extra = {"centroid_lr": clr} if method == "iterative_prune" and clr is not None else {}
        _SETTINGS[method](where, **kw, **extra)
    return method, kw, epochs, clr


def compress(model: Model, data: Dataset, steps: Sequence[dict[str, Any]], *,
             policy: PrecisionPolicy | None = None, optimizer: Optimizer | None = None, seed: int = 0,
             comp: Compression | None = None) -> Compression:
    """Apply a chain of compression steps to ``model`` in place; return the record.

    Each step is a dict with ``"method"`` (one of prune, iterative_prune,
    share_weights, low_rank, retrain), the method's keyword arguments, and an
    optional ``"retrain_epochs"`` (an int >= 0, default 0): epochs of
    `retrain` after the step (masks and codebooks held, centroids
    fine-tuned). ``"centroid_lr"`` is the centroids' learning rate of that
    retraining (and of iterative_prune's rounds); a step that does not
    retrain refuses it. A retrain step takes only ``"epochs"`` or
    ``"retrain_epochs"`` (not both) and ``"centroid_lr"``; an iterative_prune
    step also takes `retrain`'s ``batch_size`` and `nets.train`'s keyword
    options (early_stopping, eval_policy, ...) for its rounds. Training runs
    under ``policy`` with a fresh copy of ``optimizer`` per step (default
    SGD(lr=0.05, momentum=0.9)), so no momentum carries from one step to the
    next. After every step the log gets ``{"method": "evaluate", "after":
    method, "valid_accuracy", "test_accuracy"}`` (under ``policy``).

    Every step is checked before the first one runs: an unknown method, a
    key the method does not take (a misspelt option), a required key missing
    (share_weights' k), retrain_epochs that is not an int >= 0 (2.5 or True)
    raise a ValueError naming the step and the key (with the allowed keys or
    range); so do the values each method checks itself before it changes a
    model (``check_prune_settings``, ``check_iterative_prune_settings``,
    ``check_share_settings``, ``check_low_rank_settings``: a ratio outside
    [0, 1), an iterative_prune step's epochs of 2.5, a centroid_lr that is
    not a finite number > 0; TypeError for a wrong type). What depends on the
    model as the earlier steps leave it (layer names, k against the unpruned
    weights of a layer, a rank against the layer's size) is checked when the
    step runs, still before that step changes the model.

    Example (Deep Compression on an MLP)::

        comp = compress(model, data, [
            {"method": "iterative_prune", "schedule": [0.5, 0.7, 0.9], "epochs": 2},
            {"method": "share_weights", "k": 16, "retrain_epochs": 2},
        ])
        storage_bits(model, comp, index_bits=5, huffman=True).rate
    """
    check_model(model, "compress")
    if isinstance(steps, (str, bytes, Mapping)) or not isinstance(steps, Sequence):
        raise TypeError(f"compress: steps={steps!r} must be a list of step dicts, e.g. [{{'method': 'prune',"
                        " 'ratio': 0.5}]")
    checked = [_check_step(i, st) for i, st in enumerate(steps)]  # every step before running any
    check_int(seed, "compress", "seed", 0)
    if optimizer is not None and not isinstance(optimizer, Optimizer):
        raise TypeError(f"compress: optimizer={optimizer!r} must be an Optimizer (SGD, Adam) or None")
    model.check_policy(policy, "compress")
    comp = comp or Compression.start(model)
    shared = bool(comp.codebooks)  # a centroid_lr needs shared layers by the time its retraining runs
    for i, (method, _, _, clr) in enumerate(checked):
        shared = shared or method == "share_weights"
        if clr is not None and not shared:
            raise ValueError(f"compress: step {i} ({method}) gives centroid_lr={clr!r}, but no layer is"
                             " shared by then (no share_weights step before it or in it); leave it out")
    for i, (method, kw, epochs, clr) in enumerate(checked):
        if method == "prune":
            prune(model, comp=comp, **kw)
        elif method == "iterative_prune":
            kw.setdefault("policy", policy)
            kw.setdefault("optimizer", copy.deepcopy(optimizer))
            kw.setdefault("seed", seed + 100 * i)
            if clr is not None:  # the rounds' retraining as well as the retraining after the step
                kw["centroid_lr"] = clr
            iterative_prune(model, data, comp=comp, **kw)
        elif method == "share_weights":
            share_weights(model, comp=comp, **kw)
        elif method == "low_rank":
            low_rank(model, comp=comp, **kw)
        if epochs:
            retrain(model, data, comp, epochs=epochs, policy=policy, optimizer=copy.deepcopy(optimizer),
                    centroid_lr=clr, seed=seed + 100 * i + 50)
        comp.log.append({"method": "evaluate", "after": method, "valid_accuracy": evaluate(model, data.valid,
                         policy)[1], "test_accuracy": evaluate(model, data.test, policy)[1]})
    return comp
