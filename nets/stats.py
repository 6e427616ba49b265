"""Error bars: the mean of a measurement over seeds with a Student-t confidence interval, the paired
difference of two configurations measured on the same seeds and images, and stratified folds.

Every accuracy this project prints is an `Estimate` over seeds (or folds): a digits test split of 270
images moves by 0.37 points per image, so one run cannot tell a format's effect from noise.

- `mean_ci(values)`: mean and the two-sided t interval mean +- t_{n-1} s / sqrt(n) (s the sample
  standard deviation), cut to the quantity's range when ``bounds`` gives it (accuracies and error
  rates: [0, 1]). One value gives an estimate without an interval (``lo`` = ``hi`` = NaN), which
  prints as such, never as an interval of width 0.
- `paired_difference(a, b)`: the same interval for the per-unit differences a_i - b_i (units: seeds,
  or seed x fold), the right test when both configurations ran on the same seeds and images; it
  `separates` the two when the interval excludes 0.
- `proportion_ci(correct, n)`: one model's accuracy on n test images with its Wilson score
  interval, the error bar of a single trained network (no seeds to average), whose unit is the image.
- `stratified_folds(y, k, seed)`: k disjoint test folds with every class spread as evenly as
  its count allows, from a seed, so each configuration is judged on every example.

Worked example: accuracies 0.95, 0.96, 0.97 give mean 0.96 and s = 0.01; t_2(0.975) = 4.303, so the
95 % interval is 0.96 +- 0.0248:

>>> e = mean_ci([0.95, 0.96, 0.97])
>>> round(e.mean, 4), round(e.lo, 4), round(e.hi, 4), e.n
(0.96, 0.9352, 0.9848, 3)
>>> e.percent()
'96.00 % [93.52, 98.48] (n=3)'

Imports numpy and scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emu.checks import check_int, real_array

__all__ = ["Estimate", "mean_ci", "paired_difference", "proportion_ci", "stratified_folds"]


def _scipy_stats() -> Any:
    """scipy.stats, imported on first use: it takes about 0.4 s to import, and only the intervals need it
    (a process that trains, a sweep's worker, never computes one)."""
    from scipy import stats

    return stats


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` units with its two-sided ``confidence`` interval [lo, hi] (NaN when n = 1)."""

    mean: float
    lo: float
    hi: float
    n: int
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        """(hi - lo) / 2 (NaN without an interval)."""
        return (self.hi - self.lo) / 2

    @property
    def separates(self) -> bool:
        """Whether the interval excludes 0 (for a difference: the data tell the two apart)."""
        return self.n > 1 and (self.lo > 0.0 or self.hi < 0.0)

    def percent(self, digits: int = 2) -> str:
        """The estimate of a proportion in percent: ``"96.00 % [93.52, 98.48] (n=3)"``."""
        if math.isnan(self.lo):  # a mean of one value (a proportion of one trial has a Wilson interval)
            return f"{100 * self.mean:.{digits}f} % (n={self.n}, no interval)"
        return (f"{100 * self.mean:.{digits}f} % [{100 * self.lo:.{digits}f},"
                f" {100 * self.hi:.{digits}f}] (n={self.n})")

    def __str__(self) -> str:
        if math.isnan(self.lo):
            return f"{self.mean:.4g} (n={self.n}, no interval)"
        return f"{self.mean:.4g} [{self.lo:.4g}, {self.hi:.4g}] (n={self.n})"


def _values(values: Sequence[float] | np.ndarray, name: str, param: str = "values") -> np.ndarray:
    """``name``'s parameter ``param`` as a 1-D float64 array of finite values (real numbers: else a
    TypeError naming it, `emu.checks.real_array`)."""
    v = real_array(values, name, param).astype(np.float64)
    if v.ndim > 1:
        raise ValueError(f"{name}: {param} of shape {v.shape}; give one value per unit (a 1-D sequence)")
    v = v.reshape(-1)
    if v.size == 0:
        raise ValueError(f"{name}: no {param}; give at least one value")
    if not np.isfinite(v).all():
        verb = "hold" if param == "values" else "holds"
        raise ValueError(f"{name}: {param} {verb} NaN or inf ({v.tolist()}); a diverged run is reported as"
                         " diverged, not averaged")
    return v


def _check_confidence(confidence: float, name: str) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise ValueError(f"{name}: confidence={confidence!r} outside the allowed range (0, 1)")
    return float(confidence)


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95,
            bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean of ``values`` and its Student-t interval at ``confidence`` (see the module docstring).

    ``bounds`` (lo, hi): the range the quantity cannot leave (an accuracy or an error rate: (0, 1)); the
    interval is cut to it. The true mean lies in that range, so the cut interval holds it whenever the t
    interval does: the coverage stays at least ``confidence``. Over few seeds a t interval of an accuracy
    near 1 otherwise reaches past 100 %.

    >>> str(mean_ci([2.0]))
    '2 (n=1, no interval)'
    >>> mean_ci([0.99, 1.0]).percent(), mean_ci([0.99, 1.0], bounds=(0, 1)).percent()
    ('99.50 % [93.15, 105.85] (n=2)', '99.50 % [93.15, 100.00] (n=2)')

    Raises:
        TypeError: values that are not real numbers, ``bounds`` that is not a tuple or list.
        ValueError: no values, values of more than one dimension or not finite, a confidence outside
            (0, 1), ``bounds`` that is not two numbers lo < hi, values outside ``bounds``.
    """
    confidence = _check_confidence(confidence, "mean_ci")
    v = _values(values, "mean_ci")
    what = "must be (lo, hi), numbers with lo < hi (an end may be infinite), or None"
    if bounds is not None and not isinstance(bounds, (tuple, list, np.ndarray)):
        raise TypeError(f"mean_ci: bounds={bounds!r} {what}")
    if bounds is not None and (len(bounds) != 2
                               or not all(isinstance(b, (int, float)) and not math.isnan(b) for b in bounds)
                               or not bounds[0] < bounds[1]):
        raise ValueError(f"mean_ci: bounds={bounds!r} {what}")
    if bounds is not None and not (bounds[0] <= v.min() and v.max() <= bounds[1]):
        raise ValueError(f"mean_ci: values outside bounds={bounds}: {v.tolist()}")
    m = float(v.mean())
    if v.size == 1:
        return Estimate(m, math.nan, math.nan, 1, confidence)
    t = float(_scipy_stats().t.ppf(0.5 + confidence / 2, v.size - 1))
    h = t * float(v.std(ddof=1)) / math.sqrt(v.size)
    lo, hi = (m - h, m + h) if bounds is None else (max(m - h, bounds[0]), min(m + h, bounds[1]))
    return Estimate(m, lo, hi, int(v.size), confidence)


def paired_difference(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                      confidence: float = 0.95) -> Estimate:
    """`mean_ci` of a_i - b_i over paired units (the same seed, split or fold in both).

    >>> d = paired_difference([0.91, 0.93, 0.92], [0.90, 0.915, 0.905])
    >>> round(d.mean, 4), round(d.lo, 4), d.separates
    (0.0133, 0.0062, True)
    >>> paired_difference([0.91, 0.93, 0.92], [0.90, 0.91, 0.91]).separates  # the interval holds 0
    False

    Raises:
        TypeError: ``a`` or ``b`` not real numbers (named). ValueError: as `mean_ci`'s, naming ``a`` or
            ``b``; a and b of different lengths.
    """
    confidence = _check_confidence(confidence, "paired_difference")
    va, vb = _values(a, "paired_difference", "a"), _values(b, "paired_difference", "b")
    if va.shape != vb.shape:
        raise ValueError(f"paired_difference: a has {va.size} values and b {vb.size}; pairs need the same"
                         " units in both")
    return mean_ci(va - vb, confidence)


def proportion_ci(correct: int, n: int, confidence: float = 0.95) -> Estimate:
    """``correct`` of ``n`` test images as an accuracy with its Wilson score interval at ``confidence``
    (``n`` in `Estimate.n`: the unit is the image): center (c + z^2/2) / (n + z^2) and half width
    z sqrt(c (n - c) / n + z^2 / 4) / (n + z^2), z the normal quantile, the mean being c / n. It keeps
    inside [0, 1] and has a width at 0 or n correct, unlike the normal approximation.

    Worked example: 256 of 270 correct (94.81 %), z = 1.96: center 257.92 / 273.84 = 0.9419, half width
    1.96 sqrt(256 * 14 / 270 + 0.96) / 273.84 = 0.0270, so [91.49, 96.89]; none correct of 10 still
    has an interval:

    >>> proportion_ci(256, 270).percent(), proportion_ci(0, 10).percent()
    ('94.81 % [91.49, 96.89] (n=270)', '0.00 % [0.00, 27.75] (n=10)')
    """
    confidence = _check_confidence(confidence, "proportion_ci")
    for name, v in (("n", n), ("correct", correct)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"proportion_ci: {name}={v!r} must be an int")
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"proportion_ci: correct={correct}, n={n}: needs n >= 1 and 0 <= correct <= n")
    z = float(_scipy_stats().norm.ppf(0.5 + confidence / 2))
    c, n = int(correct), int(n)
    center = (c + z * z / 2) / (n + z * z)
    h = z * math.sqrt(c * (n - c) / n + z * z / 4) / (n + z * z)
    mean = c / n  # rounding can put an end one ulp past 0, 1 or the estimate itself: clamped
    return Estimate(mean, max(0.0, min(center - h, mean)), min(1.0, max(center + h, mean)), n, confidence)


def stratified_folds(y: Sequence[int] | np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """k (train indices, test indices) pairs whose test parts are disjoint and cover every example; each
    class is shuffled by ``seed`` and dealt round-robin, so fold sizes of a class differ by at most one.

    >>> folds = stratified_folds([0, 0, 0, 1, 1, 1], 3, seed=0)
    >>> sorted(int(i) for _, test in folds for i in test)
    [0, 1, 2, 3, 4, 5]
    >>> [sorted(int(v) for v in np.asarray([0, 0, 0, 1, 1, 1])[test]) for _, test in folds]
    [[0, 1], [0, 1], [0, 1]]

    Raises:
        TypeError: k or seed not an int. ValueError: y not 1-D integer labels, k outside [2, len(y)], seed
            below 0.
    """
    labels = np.asarray(y)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("stratified_folds: y must be a 1-D array of integer labels, got dtype"
                         f" {labels.dtype} and shape {labels.shape}")
    if not 2 <= check_int(k, "stratified_folds", "k") <= labels.size:
        raise ValueError(f"stratified_folds: k={k!r} outside the allowed range [2, {labels.size}]"
                         " (the number of examples)")
    rng = np.random.default_rng(check_int(seed, "stratified_folds", "seed", 0))
    fold_of = np.empty(labels.size, np.int64)
    start = 0
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(idx.size)]
        fold_of[idx] = (start + np.arange(idx.size)) % k  # continue the deal across classes
        start = (start + idx.size) % k
    everything = np.arange(labels.size)
    return [(everything[fold_of != f], everything[fold_of == f]) for f in range(int(k))]
