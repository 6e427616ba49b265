"""The declaration of a per-layer search (`nets.explore.search`): `SearchSpec`, its settings (`Objective`,
`Method`, `Criterion`), one layer's widths (`LayerWidths`), and the policy and job of a searched point
(`layer_policy`, `run_search_point`).

A `SearchSpec` names the network and its training (``setup``: `SETUP_KEYS`), the ``baseline`` whose
accuracy the tolerance is measured from (a configuration's arithmetic keys, float64 by default), the
``tolerance`` in accuracy points, the candidate word lengths of weights (``weight_bits``) and
activations (``act_bits``), the candidate accumulator widths (``acc_bits``), the ``objective``, the
``method``, the ``criterion`` and the ``seeds``; every field is checked at construction (a ValueError
naming it, a TypeError for a value of the wrong type; `Criterion.INTERVAL` needs two seeds or more).
Example: ``SearchSpec(setup={"sizes": [64, 32, 10]}, tolerance=1.0, weight_bits=[8, 6, 4], act_bits=[8,
6])`` searches a 64-32-10 MLP's two layers within one point of float64.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from numbers import Real
from pathlib import Path
from typing import Any

import emu
from emu.checks import check_int, parse_choice

from ..policy import PrecisionPolicy
from .job import run_point
from .spec import DEFAULT_SEEDS, LAYERS_KEY, POINT_KEYS, SETUP_KEYS, Sweep, build_policy

__all__ = ["Criterion", "Knob", "LayerWidths", "Method", "Objective", "Profile", "SearchSpec", "layer_policy",
           "run_search_point"]


class Objective(StrEnum):
    """What the search minimises (`hwmodel.network_cost`)."""

    #: energy per inference (pJ, compute and memory)
    ENERGY = "energy"
    #: MAC array area (um^2)
    AREA = "area"


class Method(StrEnum):
    """How the per-layer search moves (module docstring)."""

    #: Judd et al.'s greedy descent: each round the move that saves most within tolerance
    GREEDY = "greedy"
    #: knobs lowered in order of their accuracy drop alone, least sensitive first
    SENSITIVITY = "sensitivity"


class Criterion(StrEnum):
    """When a configuration is within tolerance of the baseline (paired over the same seeds)."""

    #: the paired mean difference >= -tolerance
    MEAN = "mean"
    #: the paired 95 % interval's lower end >= -tolerance (two seeds or more)
    INTERVAL = "interval"


class Knob(StrEnum):
    """What one move lowers in one layer."""

    #: the weights' word length
    WEIGHTS = "weights"
    #: the input activations' word length
    ACTIVATIONS = "activations"
    #: the accumulator's width
    ACC = "acc"


@dataclass(frozen=True)
class LayerWidths:
    """One layer's widths in bits: weights, activations and accumulator (None: lossless)."""

    weights: int
    activations: int
    acc: int | None = None


Profile = tuple[tuple[str, LayerWidths], ...]
_SPEC_KEYS = ("name", "method", "objective", "criterion", "tolerance", "seeds", "weight_bits", "act_bits",
              "acc_bits", "weight_int_bits", "act_int_bits", "setup", "baseline")
_BASELINE_KEYS = tuple(k for k in POINT_KEYS if k not in SETUP_KEYS and k != "seed")


def _bits(value: Any, name: str, lo: int, hi: int, empty: bool = False) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or (not value and not empty):
        error = ValueError if isinstance(value, (list, tuple)) else TypeError
        raise error(f"SearchSpec: {name}={value!r} must be a{'' if empty else ' non-empty'} list of"
                    f" widths in bits (ints in [{lo}, {hi}])")
    bits = tuple(check_int(v, "SearchSpec", name, lo, hi) for v in value)
    if len(set(bits)) != len(bits):
        raise ValueError(f"SearchSpec: {name}={list(bits)} repeats a width")
    return tuple(sorted(bits, reverse=True))


@dataclass(frozen=True)
class SearchSpec:
    """A per-layer search (module docstring); every field is checked at construction.

    >>> s = SearchSpec(setup={"sizes": [64, 16, 10], "epochs": 2}, tolerance=1.0, weight_bits=[6, 8],
    ...                act_bits=[8, 6], seeds=[0, 1], method="sensitivity")
    >>> s.weight_bits, str(s.method), s.baseline_point(0)["format"], s.baseline_point(1)["seed"]
    ((8, 6), 'sensitivity', 'float64', 1)
    >>> SearchSpec(tolerance=-1.0)
    Traceback (most recent call last):
    ...
    ValueError: SearchSpec: tolerance=-1.0 outside the allowed range [0, 100) (accuracy points)

    Raises:
        TypeError: a field of the wrong type (``tolerance="1"``, ``act_bits=8``, ``setup=[...]``).
        ValueError: a field's value is not allowed (module docstring).
    """

    name: str = "search"
    setup: Mapping[str, Any] = field(default_factory=dict)
    baseline: Mapping[str, Any] = field(default_factory=lambda: {"format": "float64"})
    tolerance: float = 1.0
    weight_bits: Sequence[int] = (16, 12, 10, 8, 6, 4)
    act_bits: Sequence[int] = (16, 12, 10, 8, 6, 5)
    acc_bits: Sequence[int] = ()
    weight_int_bits: int = 2
    act_int_bits: int = 4
    objective: Objective = Objective.ENERGY
    method: Method = Method.GREEDY
    criterion: Criterion = Criterion.MEAN
    seeds: Sequence[int] = DEFAULT_SEEDS
    #: the baseline's sweep points, one per seed (derived)
    _points: tuple[dict[str, Any], ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            error = ValueError if isinstance(self.name, str) else TypeError
            raise error(f"SearchSpec: name={self.name!r} must be a non-empty string")
        for f, enum in (("objective", Objective), ("method", Method), ("criterion", Criterion)):
            object.__setattr__(self, f, parse_choice(enum, getattr(self, f), "SearchSpec", f))
        t = self.tolerance
        if isinstance(t, bool) or not isinstance(t, Real):
            raise TypeError(f"SearchSpec: tolerance={t!r} must be a number of accuracy points in [0, 100)")
        if not 0 <= t < 100:
            raise ValueError(f"SearchSpec: tolerance={t!r} outside the allowed range [0, 100)"
                             " (accuracy points)")
        object.__setattr__(self, "tolerance", float(t))
        for f in ("weight_int_bits", "act_int_bits"):
            object.__setattr__(self, f, check_int(getattr(self, f), "SearchSpec", f, 1, 16))
        for f, ib in (("weight_bits", self.weight_int_bits), ("act_bits", self.act_int_bits)):
            object.__setattr__(self, f, _bits(getattr(self, f), f, ib + 1, 32))
        object.__setattr__(self, "acc_bits", _bits(self.acc_bits, "acc_bits", 2, 62, empty=True))
        seeds = self.seeds
        if not isinstance(seeds, (list, tuple)) or not seeds:
            error = ValueError if isinstance(seeds, (list, tuple)) else TypeError
            raise error(f"SearchSpec: seeds={seeds!r} must be a non-empty list of seeds (ints >= 0)")
        ss = tuple(check_int(s, "SearchSpec", "seeds", 0) for s in seeds)
        if len(set(ss)) != len(ss):
            raise ValueError(f"SearchSpec: seeds={list(ss)} repeats a seed")
        object.__setattr__(self, "seeds", ss)
        if self.criterion is Criterion.INTERVAL and len(ss) < 2:  # one seed has no interval
            raise ValueError(f"SearchSpec: criterion='interval' needs two seeds or more; seeds={list(ss)}"
                             " has one (give more seeds, or criterion='mean')")
        for f, allowed in (("setup", SETUP_KEYS), ("baseline", _BASELINE_KEYS)):
            d = getattr(self, f)
            if not isinstance(d, Mapping):
                raise TypeError(f"SearchSpec: {f}={d!r} must be a table of point keys")
            bad = sorted(set(d) - set(allowed))
            if bad:
                raise ValueError(f"SearchSpec: {f} has unknown keys {', '.join(bad)};"
                                 f" allowed: {', '.join(allowed)}")
            object.__setattr__(self, f, dict(d))
        try:  # the setup and the baseline, completed and checked as a sweep checks its points
            pts = Sweep.from_dict({"base": dict(self.setup), "points": [dict(self.baseline)],
                                   "seeds": list(ss)}).points
        except (ValueError, TypeError) as e:
            raise type(e)(f"SearchSpec: setup/baseline: {e}") from None
        object.__setattr__(self, "_points", tuple(pts))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchSpec:
        """A spec from a dict of the fields (a TOML ``[search]`` table); unknown keys are refused."""
        if not isinstance(d, Mapping):
            raise TypeError(f"SearchSpec.from_dict: d={d!r} must be a dict of the spec's fields")
        bad = sorted(map(str, set(d) - set(_SPEC_KEYS)))
        if bad:
            raise ValueError(f"SearchSpec: unknown keys {', '.join(bad)}; allowed: {', '.join(_SPEC_KEYS)}")
        return cls(**dict(d))

    @classmethod
    def from_toml(cls, path: str | Path) -> SearchSpec:
        """Read the ``[search]`` table of a TOML file (``name`` defaults to the file's stem). The spec lives
        there only: any other top-level key or table is refused (``[setup]`` written for
        ``[search.setup]``, a top-level ``seeds``), as it would be ignored.

        Raises:
            ValueError: the file is not valid TOML, has no ``[search]`` table or anything beside it, or
                is not a valid spec (a wrong type too); the message names the file.
        """
        try:
            with open(path, "rb") as f:
                doc = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"SearchSpec.from_toml: {path}: {e}") from None
        if not isinstance(doc.get("search"), dict):
            raise ValueError(f"SearchSpec.from_toml: {path} has no [search] table")
        stray = [f"[{k}] should be [search.{k}]" if k in ("setup", "baseline") and isinstance(v, dict)
                 else f"{k} should be under [search]" if k in _SPEC_KEYS
                 else f"{'table [' + k + ']' if isinstance(v, dict) else 'key ' + k} is outside [search]"
                 for k, v in doc.items() if k != "search"]
        if stray:
            raise ValueError(f"SearchSpec.from_toml: {path}: {'; '.join(stray)}; the spec lives under"
                             " [search] (its fields, [search.setup] and [search.baseline]), nothing else is"
                             " read")
        try:  # the file's errors name the file
            return cls.from_dict({"name": Path(path).stem, **doc["search"]})
        except (ValueError, TypeError) as e:
            raise ValueError(f"{path}: [search] {e}") from None

    def baseline_point(self, seed_index: int) -> dict[str, Any]:
        """The baseline's point at the ``seed_index``-th seed (every key of a sweep point)."""
        return dict(self._points[seed_index])


def layer_policy(point: dict[str, Any]) -> PrecisionPolicy | None:
    """A point's policy: the baseline's (`build_policy`), with each layer of ``point["layers"]``
    ({name: {"weights", "activations", "acc", "acc_overflow"}}) given its weight format and forward
    datapath (module docstring).

    >>> p = layer_policy({"format": "float64", "layers": {"linear1": {"weights": "fx<2,6>",
    ...                   "activations": "fx<4,4>", "acc": "fx<8,10>", "acc_overflow": "saturate"}}})
    >>> str(p.for_layer("linear1").weights), str(p.forward_mac("linear1", 64))
    ('fx<2,6>', 'fx<4,4> x fx<2,6> -> fx<8,10> (saturate, sequential)')
    """
    pol = build_policy({k: v for k, v in point.items() if k != LAYERS_KEY})
    layers = point.get(LAYERS_KEY) or {}
    if not layers:
        return pol
    pol = pol or PrecisionPolicy.float64()
    for name, d in layers.items():
        mac = emu.MAC(act=d["activations"], weight=d["weights"], acc=d["acc"],
                      acc_overflow=d.get("acc_overflow", "saturate"))
        lp = pol.for_layer(name)
        # one format per operand: a float64 activations role leaves the conversion to the datapath, any
        # other takes the datapath's operand format
        roles = {} if lp.activations.is_float64 else {"activations": d["activations"]}
        pol = pol.with_layer(name, lp.with_roles(weights=d["weights"], fwd_mac=mac, **roles))
    return replace(pol, name=f"{pol.name}, per-layer")


def run_search_point(point: dict[str, Any]) -> dict[str, Any]:
    """`run_point` with `layer_policy`: the job of every point a search runs."""
    return run_point(point, layer_policy)
