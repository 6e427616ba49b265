"""Sweep declarations: a grid (or a list) of points, each one training job.

A sweep is a dict (or a TOML file with the same keys)::

    name = "formats"
    [base]                       # settings every point shares
    model = "mlp"                # mlp | lenet5
    sizes = [64, 32, 10]         # mlp only
    epochs = 4
    [grid]                       # every combination of these lists is a point
    format = ["fp32", "bf16", "fx<4,8>"]
    rounding = ["nearest_even", "stochastic"]
    seed = [0, 1]
    # or: points = [{format = "e4m3", mac = "e4m3 x e4m3 -> fp32"}, ...] (a list, each merged into base)

A point is a flat dict of the keys in `POINT_KEYS`. Its precision policy:
``policy`` (a preset name of `PrecisionPolicy.preset`, or "float64") if
given; else the uniform policy of ``format`` with ``rounding`` (every role),
with ``master`` as the stored weights' format. ``mac`` (a MAC preset name) or
``acc`` (an accumulator format, with ``acc_overflow`` wrap or saturate, the
operands in ``format``) sends every forward product through that `emu`
datapath (a block preset ``mxfp8``, ``mxfp4``, ``nvfp4``: an `emu.MAC` of block-scaled operands).
``granularity`` is the policy's rounding granularity, ``ste`` its gradient
through saturated outputs (clipped or identity).

Every point has a key: the SHA-1 of its canonical JSON, so the same point in
another sweep file, or in the same file after a restart, is recognised.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import emu
from emu.checks import check_int, parse_choice

from ..models import Model, lenet5, mlp
from ..policy import STE, Granularity, LayerPolicy, PrecisionPolicy

__all__ = ["POINT_DEFAULTS", "POINT_KEYS", "Sweep", "build_model", "build_policy", "point_key"]

#: Every key a point may set, with its default.
POINT_DEFAULTS: dict[str, Any] = {
    "model": "mlp", "sizes": [64, 32, 10], "activation": "relu", "data": "digits",
    "policy": None, "format": None, "rounding": "nearest_even", "master": None,
    "mac": None, "acc": None, "acc_overflow": "saturate", "granularity": "operation", "ste": "clipped",
    "epochs": 4, "batch_size": 32, "lr": 0.1, "momentum": 0.0, "seed": 0,
}
POINT_KEYS = tuple(POINT_DEFAULTS)


def point_key(point: dict[str, Any]) -> str:
    """The point's identity: SHA-1 of its canonical JSON (sorted keys)."""
    return hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()


def _check(point: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = set(point) - set(POINT_DEFAULTS)
    if unknown:
        raise ValueError(f"sweep {where}: unknown keys {', '.join(sorted(unknown))};"
                         f" allowed: {', '.join(POINT_KEYS)}")
    full = {**POINT_DEFAULTS, **point}
    if full["model"] not in ("mlp", "lenet5"):
        raise ValueError(f"sweep {where}: model={full['model']!r} is not mlp or lenet5")
    if full["policy"] is not None and full["format"] is not None:
        raise ValueError(f"sweep {where}: give policy= or format=, not both")
    if full["mac"] is not None and full["acc"] is not None:
        raise ValueError(f"sweep {where}: give mac= or acc=, not both")
    full["ste"] = str(parse_choice(STE, full["ste"], f"sweep {where}", "ste"))
    full["granularity"] = str(parse_choice(Granularity, full["granularity"], f"sweep {where}", "granularity"))
    for k in ("epochs", "batch_size", "seed"):
        full[k] = check_int(full[k], f"sweep {where}", k, 1 if k == "batch_size" else 0)
    build_policy(full)  # unknown formats, presets and datapaths fail here, before any job runs
    return full


@dataclass(frozen=True)
class Sweep:
    """A named list of points (complete dicts of `POINT_KEYS`).

    >>> s = Sweep.from_dict({"base": {"epochs": 1}, "grid": {"format": ["fp16", "bf16"], "seed": [0, 1]}})
    >>> len(s.points), s.points[0]["format"], s.points[0]["epochs"]
    (4, 'fp16', 1)
    """

    name: str
    points: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Sweep:
        """Expand ``base`` x ``grid`` (cartesian product, in the grid's key order) or ``base`` +
        ``points``."""
        unknown = set(spec) - {"name", "base", "grid", "points"}
        if unknown:
            raise ValueError(f"sweep: unknown sections {', '.join(sorted(unknown))};"
                             " allowed: name, base, grid, points")
        base = dict(spec.get("base", {}))
        grid = spec.get("grid", {})
        listed = spec.get("points")
        if grid and listed:
            raise ValueError("sweep: give grid or points, not both")
        for k, v in grid.items():
            if not isinstance(v, list) or not v:
                raise ValueError(f"sweep grid: {k} must be a non-empty list, not {v!r}")
        if listed is not None:
            combos = [dict(p) for p in listed]
        else:
            keys = list(grid)
            combos = [dict(zip(keys, vals, strict=True))
                      for vals in itertools.product(*(grid[k] for k in keys))]
        points = [_check({**base, **c}, f"point {i}") for i, c in enumerate(combos)]
        seen: dict[str, int] = {}
        for i, p in enumerate(points):
            k = point_key(p)
            if k in seen:
                raise ValueError(f"sweep: points {seen[k]} and {i} are the same point")
            seen[k] = i
        return cls(str(spec.get("name", "sweep")), points)

    @classmethod
    def from_toml(cls, path: str | Path) -> Sweep:
        """Read a sweep file (see the module docstring)."""
        with open(path, "rb") as f:
            spec = tomllib.load(f)
        spec.setdefault("name", Path(path).stem)
        return cls.from_dict(spec)

    def keys(self) -> list[str]:
        """The points' keys, in order."""
        return [point_key(p) for p in self.points]


def build_policy(point: dict[str, Any]) -> PrecisionPolicy | None:
    """The point's `PrecisionPolicy` (None: float64)."""
    p = {**POINT_DEFAULTS, **point}
    if p["policy"] is not None:
        pol = None if p["policy"] == "float64" else PrecisionPolicy.preset(p["policy"])
    elif p["format"] is not None and p["format"] != "float64":
        pol = PrecisionPolicy.uniform(p["format"], p["rounding"], master=p["master"])
    else:
        pol = None
    mac = None
    if p["mac"] is not None:
        mac = emu.mac_preset(p["mac"])
    elif p["acc"] is not None:
        if p["format"] is None:
            raise ValueError("sweep: acc= needs format= (the operands' format)")
        mac = emu.MAC(act=p["format"], weight=p["format"], acc=p["acc"], acc_overflow=p["acc_overflow"])
    if mac is not None:
        base = pol.default if pol is not None else LayerPolicy()
        pol = replace(pol or PrecisionPolicy(), default=replace(base, fwd_mac=mac),
                      name=f"{pol.name if pol else 'float64'}, fwd [{mac}]")
    if p["granularity"] != "operation":
        pol = replace(pol or PrecisionPolicy(), granularity=p["granularity"])
    if p["ste"] != "clipped" and pol is not None:
        pol = replace(pol, ste=p["ste"])
    return pol


def build_model(point: dict[str, Any], input_shape: tuple[int, ...], n_classes: int) -> Model:
    """The point's network, seeded by its ``seed``."""
    p = {**POINT_DEFAULTS, **point}
    if p["model"] == "mlp":
        sizes = list(p["sizes"])
        if sizes[0] != input_shape[0] or sizes[-1] != n_classes:
            raise ValueError(f"sweep: sizes={sizes} must start at the data's {input_shape[0]} inputs"
                             f" and end at its {n_classes} classes")
        return mlp(sizes, p["activation"], seed=p["seed"])
    return lenet5(input_shape, n_classes, activation=p["activation"], seed=p["seed"])
