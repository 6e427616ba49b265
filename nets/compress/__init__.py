"""Model compression: pruning, weight sharing, sparse and Huffman storage, low-rank layers.

The methods of Han et al. (2015, "Learning both weights and connections";
2016, "Deep Compression") and truncated-SVD factorisation of dense layers,
each usable alone or chained on a `nets.Model`, in place:

- `prune` / `iterative_prune` / `sensitivity_scan`: magnitude pruning by a
  ratio or by quality x std, masks held through `retrain`;
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
from collections.abc import Sequence
from typing import Any

from ..datasets import Dataset
from ..models import Model
from ..optim import Optimizer
from ..policy import PrecisionPolicy
from ..train import evaluate
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
from .lowrank import low_rank, multiplications
from .prune import iterative_prune, magnitude_mask, prune, retrain, sensitivity_scan
from .record import Codebook, CompressedOptimizer, Compression, weighted_layers
from .share import INITS, init_centroids, kmeans, share_weights

__all__ = [
    "HUFFMAN_HEADER_BITS", "INITS", "Codebook", "CompressedOptimizer", "Compression", "HuffmanCode",
    "SparseCode", "StorageReport", "compress", "fixed_width", "huffman_decode", "huffman_encode",
    "huffman_lengths", "huffman_table_bits", "init_centroids", "iterative_prune", "kmeans", "low_rank",
    "magnitude_mask", "multiplications", "prune", "retrain", "sensitivity_scan", "share_weights",
    "sparse_decode", "sparse_encode", "storage_bits", "weighted_layers",
]

_METHODS = ("prune", "iterative_prune", "share_weights", "low_rank", "retrain")


def compress(model: Model, data: Dataset, steps: Sequence[dict[str, Any]], *,
             policy: PrecisionPolicy | None = None, optimizer: Optimizer | None = None, seed: int = 0,
             comp: Compression | None = None) -> Compression:
    """Apply a chain of compression steps to ``model`` in place; return the record.

    Each step is a dict with ``"method"`` (one of prune, iterative_prune,
    share_weights, low_rank, retrain), the method's keyword arguments, and an
    optional ``"retrain_epochs"`` (default 0): epochs of `retrain` after the
    step (masks and codebooks held, centroids fine-tuned; ``"centroid_lr"``
    passes through). Training runs under ``policy`` with a fresh copy of
    ``optimizer`` per step (default SGD(lr=0.05, momentum=0.9)), so no
    momentum carries from one step to the next. After every step the log gets
    ``{"method": "evaluate", "after": method, "valid_accuracy",
    "test_accuracy"}`` (under ``policy``).

    Example (Deep Compression on an MLP)::

        comp = compress(model, data, [
            {"method": "iterative_prune", "schedule": [0.5, 0.7, 0.9], "epochs": 2},
            {"method": "share_weights", "k": 16, "retrain_epochs": 2},
        ])
        storage_bits(model, comp, index_bits=5, huffman=True).rate
    """
    comp = comp or Compression.start(model)
    for i, st in enumerate(steps):
        kw = dict(st)
        method = kw.pop("method", None)
        if method not in _METHODS:
            raise ValueError(f"compress: step {i} method={method!r} is not one of {', '.join(_METHODS)}")
        epochs = int(kw.pop("retrain_epochs", 0))
        clr = kw.pop("centroid_lr", None)
        if method == "prune":
            prune(model, comp=comp, **kw)
        elif method == "iterative_prune":
            kw.setdefault("policy", policy)
            kw.setdefault("optimizer", copy.deepcopy(optimizer))
            kw.setdefault("seed", seed + 100 * i)
            iterative_prune(model, data, comp=comp, **kw)
        elif method == "share_weights":
            share_weights(model, comp=comp, **kw)
        elif method == "low_rank":
            low_rank(model, comp=comp, **kw)
        else:
            epochs = int(kw.pop("epochs", epochs))
            clr = kw.pop("centroid_lr", clr)
        if epochs:
            retrain(model, data, comp, epochs=epochs, policy=policy, optimizer=copy.deepcopy(optimizer),
                    centroid_lr=clr, seed=seed + 100 * i + 50)
        comp.log.append({"method": "evaluate", "after": method, "valid_accuracy": evaluate(model, data.valid,
                         policy)[1], "test_accuracy": evaluate(model, data.test, policy)[1]})
    return comp
