"""Weight sharing (Han et al. 2016, "Deep Compression"): 1-D k-means of each layer's weights.

`kmeans` clusters values into k centroids from a linear, density-based (CDF)
or random initialisation; `share_weights` replaces each weighted layer's
(unpruned) weights by their centroids and records a `Codebook`, optionally
with the centroids rounded to an `emu` format. Fine-tuning of the centroids
(gradients summed per cluster) is `retrain` with the record. Imports numpy,
`emu` and `nets` modules.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

import emu
from emu.checks import check_int

from ..args import check_layer_names
from ..models import Model
from .record import (
    Codebook,
    Compression,
    check_finite,
    check_model,
    nonfinite_count,
    weighted_layers,
)

__all__ = ["INITS", "check_share_settings", "init_centroids", "kmeans", "share_weights"]

#: Centroid initialisations of `kmeans`.
INITS = ("linear", "density", "random")
#: The bound of the sum of the magnitudes `kmeans` takes: its means (sums over a cluster), the centroids'
#: spans and their midpoints stay finite below it
_MAX_TOTAL = 2.0**1022


def _check_k(k: Any, n: int, where: str, what: str = "the number of values") -> int:
    try:
        return check_int(k, where, "k", 1, n)
    except ValueError as e:
        raise ValueError(f"{e} ({what})") from None


def init_centroids(values: np.ndarray, k: int, init: str = "linear", seed: int = 0) -> np.ndarray:
    """k initial centroids (sorted ascending) for the values.

    - ``linear``: evenly spaced over [min, max]: c_j = min + j (max - min) / (k - 1)
      (k = 1: the midpoint);
    - ``density``: evenly spaced on the CDF: c_j = the (2j + 1) / (2k)
      quantile of the values (linear interpolation between order statistics),
      so dense regions get more centroids;
    - ``random`` (Forgy): k values drawn without replacement (by position) with the seed.

    >>> v = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    >>> init_centroids(v, 3, "linear").tolist()
    [0.0, 5.0, 10.0]
    >>> init_centroids(v, 2, "density").tolist()  # the 0.25 and 0.75 quantiles
    [1.0, 3.0]
    """
    v = np.asarray(values, np.float64).reshape(-1)
    k = _check_k(k, v.size, "init_centroids")
    if init == "linear":
        lo, hi = float(v.min()), float(v.max())
        return np.array([(lo + hi) / 2]) if k == 1 else lo + (hi - lo) * np.arange(k) / (k - 1)
    if init == "density":
        return np.quantile(v, (2 * np.arange(k) + 1) / (2 * k))
    if init == "random":
        return np.sort(v[np.random.default_rng(seed).choice(v.size, k, replace=False)])
    raise ValueError(f"init_centroids: init={init!r} is not one of {', '.join(INITS)}")


def _assign(v: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted centroids c (a value halfway between two goes to the lower),
    decided exactly: v goes above the i-th pair when c_i + c_(i+1) < 2 v. The float64 midpoints decide
    every value farther than two of their units from them; the others are settled in exact arithmetic
    (`fractions.Fraction`), where the rounded midpoint may lie on the wrong side.

    Equal centroids are equally near every value: the value goes to the first of them.

    >>> _assign(np.array([1.25, 0.5]), np.array([-1.25, 0.0, 0.75, 0.75])).tolist()
    [2, 2]
    >>> _assign(np.array([0.5]), np.array([0.0, 1 / 3, 2 / 3, 1.0])).tolist()  # nearer 2/3 than 1/3
    [2]
    """
    mid = c[1:] / 2 + c[:-1] / 2  # halves first: no overflow (`kmeans` bounds the values)
    idx = np.searchsorted(mid, v, side="left")
    if mid.size:
        near = np.zeros(v.size, bool)
        for j in (np.maximum(idx - 1, 0), np.minimum(idx, mid.size - 1)):
            near |= np.abs(v - mid[j]) <= 2 * np.spacing(np.abs(mid[j]))
        if near.any():
            sums = [Fraction(a) + Fraction(b) for a, b in zip(c[:-1].tolist(), c[1:].tolist(), strict=True)]
            for p in np.flatnonzero(near).tolist():
                idx[p] = bisect.bisect_left(sums, 2 * Fraction(float(v[p])))
    return np.searchsorted(c, c, side="left")[idx]  # the identity when the centroids are distinct


def kmeans(values: np.ndarray, k: int, init: str = "linear", *, iters: int = 100,
           seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """1-D k-means (Lloyd's iterations) of ``values``: returns (centroids (k,), labels of values' shape).

    Starts from `init_centroids`; then repeatedly assigns each value to its
    nearest centroid (halfway values to the lower one) and moves each
    centroid to the mean of its values (a centroid with no value stays),
    until no label changes or ``iters`` iterations (an int >= 0; 0 keeps the
    initial centroids, e.g. the uniform grid of ``linear``, and assigns each
    value to the nearest). Centroids stay sorted.

    >>> c, lab = kmeans(np.array([0.0, 0.1, 0.9, 1.0]), 2)
    >>> c.tolist(), lab.tolist()
    ([0.05, 0.95], [0, 0, 1, 1])
    >>> c, lab = kmeans(np.array([0.0, 0.1, 0.9, 1.0]), 2, iters=0)
    >>> c.tolist(), lab.tolist()
    ([0.0, 1.0], [0, 0, 1, 1])

    ``seed``: the random initialisation's (None: 0); another init draws nothing, so a seed with it is
    refused, as `share_weights` refuses it.

    Raises:
        ValueError: k outside [1, number of values]; iters < 0; unknown init; a seed below 0 or with an
            init that draws nothing; NaN or infinite values, or values whose magnitudes sum to 2^1022 or
            more.
    """
    iters = check_int(iters, "kmeans", "iters", 0)
    if seed is not None:
        check_int(seed, "kmeans", "seed", 0)
        if init != "random":
            raise ValueError(f"kmeans: seed={seed!r} is given but init={init!r} draws nothing; the seed"
                             " applies to init='random'")
    v = np.asarray(values, np.float64)
    flat = v.reshape(-1)
    bad = nonfinite_count(flat)
    if bad:
        raise ValueError(f"kmeans: values hold {bad} NaN or infinite value(s); k-means needs finite values")
    with np.errstate(over="ignore"):
        total = float(np.abs(flat).sum())
    if not total < _MAX_TOTAL:  # an overflowing sum is inf
        raise ValueError(f"kmeans: the values' magnitudes sum to {total:.6g}; k-means takes sums below 2^1022"
                         " (about 4.49e307), where its means and midpoints are finite float64 values")
    c = init_centroids(flat, k, init, 0 if seed is None else seed).astype(np.float64)
    lab = _assign(flat, c)
    for _ in range(iters):
        s = np.bincount(lab, weights=flat, minlength=c.size)
        n = np.bincount(lab, minlength=c.size)
        c = np.where(n > 0, s / np.maximum(n, 1), c)
        c = np.sort(c)
        new = _assign(flat, c)
        if np.array_equal(new, lab):
            break
        lab = new
    return c, lab.reshape(v.shape)


def check_share_settings(where: str = "share_weights", *, k: Any, init: Any = "linear", fmt: Any = None,
                         layers: Any = None, iters: Any = 100,
                         seed: Any = None) -> tuple[int | dict[Any, int], Any]:
    """The checks of `share_weights` that need no model (`compress` makes them on every step before the
    first): k an int >= 1 (or a dict of them), a known init, iters >= 0, a known format. Returns k with
    plain ints and the format (None or an `emu` format)."""
    if init not in INITS:
        raise ValueError(f"{where}: init={init!r} is not one of {', '.join(INITS)}")
    check_int(iters, where, "iters", 0)
    if seed is not None:  # the random initialisation's seed (None: 0); another init draws nothing
        check_int(seed, where, "seed", 0)
        if init != "random":
            raise ValueError(f"{where}: seed={seed!r} is given but init={init!r} draws nothing; the seed"
                             " applies to init='random'")
    check_layer_names(layers, where)
    ks = ({n: check_int(v, where, "k", 1) for n, v in k.items()} if isinstance(k, Mapping)
          else check_int(k, where, "k", 1))
    try:
        f = None if fmt is None else emu.get_format(fmt)
    except (TypeError, ValueError, KeyError) as e:
        raise ValueError(f"{where}: fmt={fmt!r} is not an emu format ({e})") from None
    drawn = getattr(f, "stochastic", False) or getattr(f, "method", "") == "stochastic"
    if isinstance(f, (emu.BinaryFormat, emu.TernaryFormat)) and (f.scale is not None or drawn):
        raise ValueError(f"{where}: fmt={f} rounds the centroids stochastically or with a scale its"
                         f" {f.bits}-bit codes do not hold; give a deterministic unscaled format (binary,"
                         " ternary<scale=none>) or a fixed or float one")
    return ks, f


def share_weights(model: Model, k: int | Mapping[str, int], *, init: str = "linear", fmt: Any = None,
                  layers: Sequence[str] | None = None, comp: Compression | None = None, iters: int = 100,
                  seed: int | None = None) -> Compression:
    """Replace each weighted layer's weights by k shared values (k-means), in place.

    For every weighted layer (or each of ``layers``), the weights its mask in
    ``comp`` keeps (all when unpruned) are clustered by `kmeans` into ``k``
    centroids (a number, or a dict by layer: only the layers it names are
    shared, each a weighted layer, and one of ``layers`` when that is
    given); with ``fmt`` (an `emu` format or its name) the centroids are then
    rounded to that format (round to nearest even, saturating; two centroids
    may become equal; ``binary`` and ``ternary<scale=none>`` map them by their
    own rule, and formats that round stochastically or keep a scale are
    refused, `check_share_settings`). The weights become ``centroids[labels]`` (pruned ones
    stay 0) and a `Codebook` is
    recorded; `retrain` then fine-tunes the centroids.

    Example: a layer with weights [0.0, 0.1, 0.9, 1.0] and k = 2 becomes
    [0.05, 0.05, 0.95, 0.95] with centroids [0.05, 0.95], labels [0, 0, 1, 1];
    with ``fmt="fx<2,2>"`` (steps of 0.25) the centroids are [0.0, 1.0].

    Raises:
        ValueError: k outside [1, number of unpruned weights of the layer]
            (the message names the layer); a dict k naming a layer that is
            not one of those shared; iters < 0; unknown init or layer.
    """
    check_model(model, "share_weights")
    comp = comp or Compression.start(model)
    if init not in INITS:
        raise ValueError(f"share_weights: init={init!r} is not one of {', '.join(INITS)}")
    iters = check_int(iters, "share_weights", "iters", 0)
    wl = weighted_layers(model)
    layers = check_layer_names(layers, "share_weights")
    names = list(wl) if layers is None else layers
    bad = [n for n in names if n not in wl]
    if bad:
        raise ValueError(f"share_weights: layers={bad} are not weighted layers; weighted layers: {list(wl)}")
    unknown = [n for n in k if n not in names] if isinstance(k, Mapping) else []
    if unknown:
        which = "weighted layers" if layers is None else "layers given"
        raise ValueError(f"share_weights: k names layers {unknown} that are not among the {which}; allowed:"
                         f" {names}")
    ks = {n: (k[n] if isinstance(k, Mapping) else k) for n in names if not isinstance(k, Mapping) or n in k}
    plans = {}
    check_finite(wl, ks, "share_weights")
    for name, kk in ks.items():  # check every layer before changing any
        w = wl[name].params["W"]
        mask = comp.masks.get(name, np.ones(w.shape, bool))
        plans[name] = (w, mask, _check_k(kk, int(mask.sum()), "share_weights",
                                          f"the number of unpruned weights of layer {name}"))
    _, f = check_share_settings("share_weights", k=k, init=init, fmt=fmt, layers=layers, iters=iters,
                                seed=seed)
    for name, (w, mask, kk) in plans.items():
        c, lab = kmeans(w[mask], kk, init, iters=iters, seed=seed)
        if f is not None:
            c = emu.quantize(c, f, overflow="saturate")
        labels = np.full(w.shape, -1, np.int64)
        labels[mask] = lab
        comp.codebooks[name] = Codebook(c, labels, f, init)
    comp.enforce(model)
    comp.log.append({"method": "share_weights", "k": {n: p[2] for n, p in plans.items()}, "init": init,
                     "fmt": None if f is None else str(f)})
    return comp
