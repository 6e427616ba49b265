"""A priori rounding-error bounds for float layers: unit roundoff and the forward error of a layer.

The layer is y = phi(theta x) with theta a (p, m) weight matrix, x the m inputs
and phi an L-Lipschitz activation, computed as y_hat = phi_hat(fl(theta x)) in
a float format of unit roundoff u (round to nearest). The bound is the one of
M. Caumartin, "Deep Learning and Precision", internship report, Université
Pierre et Marie Curie, 2017, section 7 ("Forward Error Analysis"), which builds
on Higham's inner-product bound |theta x - fl(theta x)| <= gamma_m |theta| |x|
(componentwise) and || |theta| ||_2 <= sqrt(rank theta) ||theta||_2. Symbols
follow that report: m inputs, p outputs, gamma_n = n u / (1 - n u). It assumes
no underflow or overflow (Higham's standard model). Imports `emu.formats` and
`emu.registry`.
"""

from __future__ import annotations

import math

import numpy as np

from .formats import FloatFormat, Format
from .registry import get_format

__all__ = ["forward_error_bound", "unit_roundoff"]


def _float_fmt(func: str, name: str, value: object) -> FloatFormat:
    if not isinstance(value, (str, Format)):
        raise TypeError(f"{func}: {name}={value!r} must be a float format or its name")
    try:
        f = get_format(value)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{func}: {name}={value!r} is not a valid format: {e}") from None
    if not isinstance(f, FloatFormat):
        raise ValueError(f"{func}: {name}={f} is a {f.kind} format; a unit roundoff needs a float format")
    return f


def unit_roundoff(fmt: Format | str) -> float:
    """The unit roundoff u = 2^-(M+1) of a float format with M fraction bits.

    Rounding to nearest maps every real x in the normal range to fl(x) = x (1 +
    delta) with |delta| <= u (half the spacing 2^-M relative to 1). Subnormals
    and flush-to-zero are outside this model (they give absolute errors).

    Args:
        fmt: a `FloatFormat` or its name (``"fp16"``, ``"bf16"``, ``"e4m3"``...).

    Returns:
        u as a float (exact).

    Raises:
        ValueError: a format that is not a float format, or an unknown name.
        TypeError: ``fmt`` is neither a format nor a name.

    >>> unit_roundoff("fp32"), unit_roundoff("fp16"), unit_roundoff("bf16"), unit_roundoff("e4m3")
    (5.960464477539063e-08, 0.00048828125, 0.00390625, 0.0625)
    """
    f = _float_fmt("unit_roundoff", "fmt", fmt)
    return math.ldexp(1.0, -(f.man_bits + 1))


def _matrix(func: str, name: str, x: object, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if arr.dtype == np.bool_ or not numeric:
        raise TypeError(f"{func}: {name} has dtype {arr.dtype}; expected an integer or float array")
    if arr.ndim != ndim:
        raise ValueError(f"{func}: {name} has shape {arr.shape}; expected {ndim} dimension(s)")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{func}: {name} holds {int(np.sum(~np.isfinite(out)))} non-finite values")
    return out


def forward_error_bound(W: object, x: object, u: float | Format | str, lipschitz: float = 1.0,
                        y: object = None) -> float:
    """An upper bound on ||y - y_hat||_2 for one float layer y = phi(W x) (Caumartin 2017, section 7).

    Formula, with m inputs, p outputs, gamma_m = m u / (1 - m u) and L the
    Lipschitz constant of phi:

        ||y - y_hat||_2 <= (1 + u) L sqrt(min(m, p)) gamma_m ||W||_2 ||x||_2 + u ||y||_2

    where ||W||_2 is the spectral norm (largest singular value), y = phi(W x) is
    the exact output and y_hat = phi_hat(fl(W x)) is computed in precision u: the
    m-term dot products accumulate with one rounding per multiplication and
    addition (any order; fused products only help), and phi_hat(z) = phi(z) (1 +
    delta) with |delta| <= u. The first term bounds L ||W x - fl(W x)||_2, the
    second the rounding of phi (u times ||phi(fl(W x))||_2 <= L ||W x - fl(W
    x)||_2 + ||y||_2). Valid when no product or sum underflows or overflows.

    Args:
        W: the weights theta, shape (p, m).
        x: the inputs, shape (m,).
        u: the unit roundoff, or a float format (its `unit_roundoff`).
        lipschitz: L >= 0 (1 for identity and ReLU, 1/4 for the logistic sigmoid).
        y: the exact outputs phi(W x), shape (p,); None for the identity
            activation (y = W x, computed in float64).

    Returns:
        The bound (a float).

    Raises:
        ValueError: m u >= 1 (gamma_m undefined), u <= 0 or not finite, L < 0
            or not finite, shapes that do not match, empty or non-finite arrays.
        TypeError: arrays of bool, complex, object or str; a non-number u or L.

    Worked example: W = [[3, 4]] (p = 1, m = 2, ||W||_2 = 5), x = [1, 0]
    (||x||_2 = 1, y = 3), u = 2^-11 (fp16): gamma_2 = 2u / (1 - 2u) = 1/1023, so
    the bound is (1 + u) * 1 * sqrt(1) * 5/1023 * 1 + 3u ~= 0.006355.

    >>> u = 2.0**-11
    >>> b = forward_error_bound([[3.0, 4.0]], [1.0, 0.0], u)
    >>> math.isclose(b, (1 + u) * 5 / 1023 + 3 * u), round(b, 6)
    (True, 0.006355)
    >>> bool(forward_error_bound([[3.0, 4.0]], [1.0, 0.0], "fp32") < b)  # smaller u, smaller bound
    True
    """
    fn = "forward_error_bound"
    if isinstance(u, (str, Format)):
        uf = unit_roundoff(_float_fmt(fn, "u", u))
    elif isinstance(u, bool) or not isinstance(u, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: u={u!r} must be a number or a float format")
    else:
        uf = float(u)
    if not (math.isfinite(uf) and uf > 0):
        raise ValueError(f"{fn}: u={u!r} must be a finite number > 0")
    if isinstance(lipschitz, bool) or not isinstance(lipschitz, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: lipschitz={lipschitz!r} must be a number")
    L = float(lipschitz)
    if not (math.isfinite(L) and L >= 0):
        raise ValueError(f"{fn}: lipschitz={lipschitz!r} must be a finite number >= 0")
    Wm = _matrix(fn, "W", W, 2)
    xv = _matrix(fn, "x", x, 1)
    p, m = Wm.shape
    if m == 0 or p == 0:
        raise ValueError(f"{fn}: W has shape {Wm.shape}; expected (p, m) with p, m >= 1")
    if xv.shape != (m,):
        raise ValueError(f"{fn}: x has shape {xv.shape}; W has shape {Wm.shape}, so x must have shape ({m},)")
    if m * uf >= 1:
        raise ValueError(f"{fn}: u={uf!r} gives m*u = {m * uf!r} >= 1 for m={m} inputs; gamma_m is undefined")
    yv = Wm @ xv if y is None else _matrix(fn, "y", y, 1)
    if yv.shape != (p,):
        raise ValueError(f"{fn}: y has shape {yv.shape}; W has shape {Wm.shape}, so y must have shape ({p},)")
    gamma = m * uf / (1 - m * uf)
    w_norm = float(np.linalg.norm(Wm, 2))
    return float((1 + uf) * L * math.sqrt(min(m, p)) * gamma * w_norm * float(np.linalg.norm(xv))
                 + uf * float(np.linalg.norm(yv)))
