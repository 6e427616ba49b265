"""Low-rank layers: a dense layer's weights as the product of two thinner factors (truncated SVD).

`low_rank` replaces a `Linear` (n_in x n_out weights) by two Linear layers
of n_in x r and r x n_out, the best rank-r approximation of W (Eckart-Young),
so that r (n_in + n_out) multiplications replace n_in n_out per example;
`multiplications` counts a model's multiplications per example. Imports
numpy and `nets` modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emu.checks import check_bool, check_int

from ..layers import Layer, Linear, Residual, Sequential, mark_layer_boundaries
from ..models import Model
from .record import Compression, check_finite, check_model, weighted_layers

__all__ = ["check_low_rank_settings", "low_rank", "multiplications"]


def _parent(root: Layer, target: Layer) -> Sequential | None:
    if isinstance(root, Sequential):
        if any(c is target for c in root.children):
            return root
        kids = root.children
    elif isinstance(root, Residual):
        kids = [root.body] + ([] if root.shortcut is None else [root.shortcut])
    else:
        return None
    for c in kids:
        p = _parent(c, target)
        if p is not None:
            return p
    return None


def check_low_rank_settings(where: str = "low_rank", *, layer: Any, rank: Any) -> None:
    """The checks of `low_rank` that need no model (`compress` makes them on every step before the
    first): a layer name and an int rank >= 1 (its upper bound, min(n_in, n_out), needs the layer)."""
    _check_layer_name(layer, where)
    check_int(rank, where, "rank", 1)


def _check_layer_name(layer: Any, where: str) -> None:
    if not isinstance(layer, str):
        raise TypeError(f"{where}: layer={layer!r} must be a layer name (str)")


def low_rank(model: Model, layer: str, rank: int, comp: Compression | None = None) -> Compression:
    """Replace the Linear layer ``layer`` by two Linear layers holding its truncated SVD, in place.

    With W = U S V^T (W of shape (n_in, n_out)), the first factor
    ``<layer>_a`` = Linear(n_in, rank, no bias) gets U_r sqrt(S_r) and the
    second ``<layer>_b`` = Linear(rank, n_out) gets sqrt(S_r) V_r^T and the
    old bias, so x W_a W_b + b is the best rank-r approximation of x W + b.
    Multiplications per example drop from n_in n_out to rank (n_in + n_out).
    The new layers take the old one's place in its Sequential (per-layer
    policy overrides must name them). Fine-tune with `retrain`.

    Example: a 64 x 100 layer at rank 16: 6400 multiplications and weights
    become 16 x 164 = 2624.

    Records ``comp.factors[layer] = {"rank", "shape", "layers", "mults_before",
    "mults_after", "relative_error"}`` (Frobenius norm of W - W_a W_b over that of W).

    Raises:
        ValueError: ``layer`` is not a Linear layer of the model, is pruned or
            shared already (factor first), or rank is outside [1, min(n_in, n_out)].
    """
    check_model(model, "low_rank")
    _check_layer_name(layer, "low_rank")
    comp = comp or Compression.start(model)
    wl = weighted_layers(model)
    old = wl.get(layer)
    if not isinstance(old, Linear):
        lin = [n for n, v in wl.items() if isinstance(v, Linear)]
        raise ValueError(f"low_rank: layer={layer!r} is not a Linear layer of the model;"
                         f" Linear layers: {lin}")
    if layer in comp.masks or layer in comp.codebooks:
        raise ValueError(f"low_rank: layer {layer!r} is already pruned or shared; factor it before")
    rmax = min(old.n_in, old.n_out)
    try:
        rank = check_int(rank, "low_rank", "rank", 1, rmax)
    except ValueError as e:
        raise ValueError(f"{e} (min(n_in, n_out) of layer {layer!r})") from None
    check_low_rank_settings("low_rank", layer=layer, rank=rank)
    check_finite(wl, [layer], "low_rank")  # the SVD of NaN or inf weights fails, or never ends (inf)
    w = old.params["W"]
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    r = int(rank)
    root_s = np.sqrt(s[:r])
    a = Linear(old.n_in, r, name=f"{layer}_a", bias=False)
    b = Linear(r, old.n_out, name=f"{layer}_b", bias="b" in old.params)
    a.params["W"] = u[:, :r] * root_s
    b.params["W"] = root_s[:, None] * vt[:r]
    if "b" in old.params:
        b.params["b"] = old.params["b"].copy()
    a.needs_input_grad = old.needs_input_grad
    names = {x.name for x in model.layers()}
    if a.name in names or b.name in names:
        raise ValueError(f"low_rank: the model already has a layer named {a.name!r} or {b.name!r}")
    parent = _parent(model.root, old)
    assert parent is not None
    i = next(j for j, c in enumerate(parent.children) if c is old)
    parent.children[i:i + 1] = [a, b]
    mark_layer_boundaries(model.root)
    err = float(np.linalg.norm(w - a.params["W"] @ b.params["W"]) / max(np.linalg.norm(w), 1e-300))
    comp.factors[layer] = {"rank": r, "shape": [old.n_in, old.n_out], "layers": [a.name, b.name],
                           "mults_before": old.n_in * old.n_out, "mults_after": r * (old.n_in + old.n_out),
                           "relative_error": err}
    comp.log.append({"method": "low_rank", "layer": layer, **comp.factors[layer]})
    return comp


def multiplications(model: Model, input_shape: tuple[int, ...], nonzero_only: bool = False) -> dict[str, int]:
    """Multiplications of one example's forward pass per weighted layer, and their sum (``"total"``).

    A Linear layer does n_in x n_out; a Conv2d c_in kh kw c_out per output
    position. ``nonzero_only``: only products with a nonzero weight (what a
    sparse datapath does), i.e. nnz(W) (x output positions for Conv2d).

    >>> from nets import mlp
    >>> multiplications(mlp([64, 100, 10]), (64,))
    {'linear1': 6400, 'linear2': 1000, 'total': 7400}

    Raises:
        TypeError: ``model`` is not a `nets.Model`; ``input_shape`` is not a tuple of ints;
            ``nonzero_only`` is not True or False. ValueError: an ``input_shape`` entry below 1.
    """
    if not isinstance(model, Model):
        raise TypeError(f"multiplications: model={model!r} must be a nets Model")
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise TypeError(f"multiplications: input_shape={input_shape!r} must be a non-empty tuple of ints (one"
                        " example's shape)")
    input_shape = tuple(check_int(n, "multiplications", "input_shape", 1) for n in input_shape)
    nonzero_only = check_bool(nonzero_only, "multiplications", "nonzero_only")
    shapes = {d["name"]: d for d in model.layer_shapes(input_shape)}
    out: dict[str, int] = {}
    for layer in model.layers():
        if layer.name not in shapes:
            continue
        w = layer.params["W"]
        positions = shapes[layer.name]["macs"] // w.size  # output positions (1 for a Linear layer)
        out[layer.name] = (int(np.count_nonzero(w)) if nonzero_only else int(w.size)) * positions
    out["total"] = sum(out.values())
    return out
