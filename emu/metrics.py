"""Error metrics of a conversion: absolute, relative, and the literature's summary.

Deng et al. 2015 and the precision study summarise a format's representation
error by the share of values whose relative error exceeds 4 %, 15 % and 100 %;
`error_summary` reports those shares with the usual moments. Imports numpy and `emu.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import check_real, real_array

__all__ = ["ErrorSummary", "absolute_error", "error_summary", "relative_error"]


def absolute_error(x: object, q: object) -> np.ndarray:
    """|q - x| elementwise, in float64."""
    xa, qa = _reals(x, q, "absolute_error")
    return np.abs(qa - xa)


def relative_error(x: object, q: object) -> np.ndarray:
    """(q - x) / x elementwise: 0 where both are 0, +-inf where only x is 0. Scalars give a numpy
    scalar, as `absolute_error`.

    >>> relative_error([2.0, 0.0, 0.0], [2.5, 0.0, 1.0])
    array([0.25, 0.  ,  inf])
    >>> type(relative_error(2.0, 2.5)) is type(absolute_error(2.0, 2.5)) is np.float64
    True
    """
    xa, qa = _reals(x, q, "relative_error")
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (qa - xa) / xa
    return np.where((xa == 0) & (qa == 0), 0.0, r)[()]  # [()]: a 0-d result as a scalar, as numpy's ufuncs


def _reals(x: object, q: object, func: str) -> tuple[np.ndarray, np.ndarray]:
    """x and q as float64 arrays of one shape (q is x converted, value for value), refusing what is not
    real (complex, bool, object, str) and shapes that differ (numpy would broadcast or fail unnamed)."""
    xa, qa = (real_array(v, func, n).astype(np.float64, copy=False) for v, n in ((x, "x"), (q, "q")))
    if xa.shape != qa.shape:
        raise ValueError(f"{func}: x has shape {xa.shape} and q {qa.shape}; q is x converted, value for"
                         " value, so they must match")
    return xa, qa


@dataclass(frozen=True)
class ErrorSummary:
    """Summary of the error of q against x (relative errors in absolute value).

    Attributes:
        n: number of values.
        max_abs, mean_abs: absolute error.
        max_rel, mean_rel, median_rel: |relative error|; a zero that stays zero counts
            as relative error 0 (exact), a zero that becomes nonzero as inf.
        share_above: {threshold: share of values with |relative error| > threshold}.
    """

    n: int
    max_abs: float
    mean_abs: float
    max_rel: float
    mean_rel: float
    median_rel: float
    share_above: dict[float, float]


def error_summary(x: object, q: object, thresholds: tuple[float, ...] = (0.04, 0.15, 1.0)) -> ErrorSummary:
    """Absolute and relative error of q against x, with the share above each threshold.

    ``thresholds`` is a tuple or list of finite relative errors >= 0 (a single
    number is refused, not read as a 1-tuple).

    Raises:
        TypeError: x or q not real; thresholds not a tuple or list, or holding a non-number, NaN or inf.
        ValueError: x and q of different shapes; a threshold negative.

    >>> s = error_summary([1.0, 2.0, 4.0, 8.0], [1.0, 2.5, 4.0, 0.0])
    >>> s.share_above[0.15], s.share_above[1.0]
    (0.5, 0.0)
    """
    xa, qa = _reals(x, q, "error_summary")  # checked once; the arrays below are already float64
    ts = _thresholds(thresholds)
    a = absolute_error(xa, qa).reshape(-1)
    r = np.abs(relative_error(xa, qa)).reshape(-1)
    n = a.size
    if n == 0:
        return ErrorSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, {t: 0.0 for t in ts})
    return ErrorSummary(
        n=n,
        max_abs=float(a.max()),
        mean_abs=float(a.mean()),
        max_rel=float(r.max()),
        mean_rel=float(r.mean()),
        median_rel=float(np.median(r)),
        share_above={t: float(np.count_nonzero(r > t)) / n for t in ts},
    )


def _thresholds(thresholds: object) -> tuple[float, ...]:
    """error_summary's thresholds as floats: a tuple or list of finite numbers >= 0."""
    if not isinstance(thresholds, (tuple, list)):
        raise TypeError(f"error_summary: thresholds={thresholds!r} must be a tuple or list of relative"
                        " errors >= 0, e.g. (0.04, 0.15, 1.0)")
    return tuple(check_real(t, "error_summary", "thresholds element", 0.0) for t in thresholds)
