"""Sweep declarations: a grid (or a list) of points, each one training job.

A sweep is a dict (or a TOML file with the same keys)::

    name = "formats"
    seeds = [0, 1]               # optional: the seeds of every configuration (default 0, 1, 2, 3, 4)
    time_limit = 600             # optional: seconds a point's job may run (default: no limit)
    [base]                       # settings every point shares
    model = "mlp"                # mlp | lenet5
    sizes = [64, 32, 10]         # mlp only (refused where it would be ignored, below)
    epochs = 4
    [grid]                       # every combination of these lists is a point
    format = ["fp32", "bf16", "fx<4,8>"]
    rounding = ["nearest_even", "stochastic"]
    # or: points = [{format = "e4m3", mac = "e4m3 x e4m3 -> fp32"}, ...] (a list, each merged into base)

A configuration is one combination of the grid (or one entry of ``points``)
merged into ``base``; a point is a configuration at one seed. Every
configuration runs at every seed of ``seeds`` (default `DEFAULT_SEEDS`, five
seeds), so each accuracy has a confidence interval over seeds. A sweep that
sets ``seed`` itself (in ``base``, the grid or a point) runs exactly the seeds
it names instead; giving ``seeds`` as well is refused.

``sizes`` shapes an MLP only (a LeNet-5 takes its shape from the data), so it
is refused where no point honours it: set in a grid or a point entry that
makes a ``lenet5`` point, or set in ``base`` when every point is a ``lenet5``.
(``base`` may set it beside ``lenet5`` points when some point is an ``mlp``:
there it shapes those; a ``lenet5`` point stores the default ``sizes``, so
that its key does not depend on a setting it does not use.)

``time_limit`` (a finite number of seconds above 0; default None, no limit)
bounds each point's job: `nets.explore.run_sweep` stops the worker of a job
that runs longer, counting from the moment the worker starts the job (not its
wait for a worker, nor the worker's start-up), and records the point as failed,
"exceeded the time limit of N s", as it records a point whose worker crashed.
It is a setting of the sweep, not of its points: no point key holds it.

A point is a flat dict of the keys in `POINT_KEYS`. Its precision policy:
``policy`` (a preset name of `PrecisionPolicy.preset`, or "float64") if
given; else the uniform policy of ``format`` with ``rounding`` (every tensor
role), with ``master`` as the stored weights' format and ``state`` as the
optimiser state's (update, momentum, moments: float64 unless named; "master"
for the master format). ``mac`` (a MAC preset name) or
``acc`` (an accumulator format, with ``acc_overflow`` wrap or saturate, the
operands in ``format``) sends every forward product through that `emu`
datapath (a block preset ``mxfp8``, ``mxfp4``, ``nvfp4``: an `emu.MAC` of block-scaled operands).
``granularity`` is the policy's rounding granularity; ``ste``, when given,
sets its gradient through saturated outputs (clipped or identity), otherwise
the policy keeps its own rule (a preset's, or clipped for a uniform policy).
``rounding``, ``master`` and ``state`` are refused beside ``policy``,
``acc_overflow`` without ``acc``, and ``rounding``, ``granularity`` and ``ste``
on a point whose tensor roles all stay float64 (no ``format`` but float64, no
preset ``policy``: a ``mac`` or ``acc`` alone rounds no role): a setting is
honoured or refused.

Every point has a key: the SHA-1 of its canonical JSON, so the same point in
another sweep file, or in the same file after a restart, is recognised. The
formats (``format``, ``master``, ``state``, ``acc``) are stored under their
canonical names (`canonical_format`: "FX<4, 8>" is "fx<4,8>"), ``policy`` and
``mac`` as their presets are looked up (spaces collapsed; a policy preset in
lower case), so two spellings of one point are one point (and refused as a
repeat within one sweep); a name already canonical keeps its key. Likewise the
float64 roles, which a point may spell ``format = "float64"``,
``policy = "float64"`` or neither, are stored as one spelling
(`canonical_float64`): ``format = "float64"`` without ``policy``, the spelling of
every float64 baseline the project ships; beside a ``mac`` datapath, neither
(``mac = "mxfp8"`` alone, as shipped). So the three spellings of the baseline
are one point, and the shipped sweeps' points keep their keys.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

import emu
from emu.checks import check_int, parse_choice

from ..datasets import data_name
from ..models import Model, activation_name, lenet5, mlp
from ..policy import STE, Granularity, LayerPolicy, PrecisionPolicy, RoleFormat

__all__ = ["DEFAULT_SEEDS", "LAYERS_KEY", "POINT_DEFAULTS", "POINT_KEYS", "SETUP_KEYS", "Network", "Sweep",
           "build_model", "build_policy", "canonical_config", "canonical_float64", "canonical_format",
           "check_rates",
           "config_key", "point_key"]


class Network(StrEnum):
    """The network a point trains (`nets.models`)."""

    #: `nets.mlp` with the point's ``sizes`` and ``activation``
    MLP = "mlp"
    #: `nets.lenet5` on images (the data's input shape and classes)
    LENET5 = "lenet5"


#: The seeds every configuration runs at unless the sweep names its own (``seeds`` or a ``seed`` key).
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2, 3, 4)

#: Every key a point may set, with its default (``ste`` None: the policy's own rule).
POINT_DEFAULTS: dict[str, Any] = {
    "model": "mlp", "sizes": [64, 32, 10], "activation": "relu", "data": "digits",
    "policy": None, "format": None, "rounding": "nearest_even", "master": None, "state": None,
    "mac": None, "acc": None, "acc_overflow": "saturate", "granularity": "operation", "ste": None,
    "epochs": 4, "batch_size": 32, "lr": 0.1, "momentum": 0.0, "seed": 0,
}
POINT_KEYS = tuple(POINT_DEFAULTS)
#: The point keys that make a training setup (everything but the arithmetic and the seed): configurations
#: are compared (report) and drawn together (figures) only within a setup.
SETUP_KEYS = ("model", "sizes", "activation", "data", "epochs", "batch_size", "lr", "momentum")
_ACC_OVERFLOWS = (emu.Overflow.WRAP, emu.Overflow.SATURATE)


def point_key(point: dict[str, Any]) -> str:
    """The point's identity: SHA-1 of its canonical JSON (sorted keys)."""
    return hashlib.sha1(json.dumps(point, sort_keys=True, default=str).encode()).hexdigest()


def config_key(point: dict[str, Any]) -> str:
    """The configuration's identity: `point_key` of the point without its seed, so the points of one
    configuration at different seeds share it.

    >>> config_key({"format": "bf16", "seed": 0}) == config_key({"format": "bf16", "seed": 3})
    True
    """
    if not isinstance(point, dict):
        raise TypeError(f"config_key: point={point!r} must be a dict of point keys")
    return point_key({k: v for k, v in point.items() if k != "seed"})


#: The key a search point adds to `POINT_KEYS`: its per-layer formats (`nets.explore.search`), read by
#: `run_search_point` (`layer_policy`) only.
LAYERS_KEY = "layers"


def _refuse_unknown(point: Any, where: str, extra: tuple[str, ...] = ()) -> None:
    """Refuse a ``point`` that is not a dict, or that sets a key outside `POINT_KEYS` (and ``extra``):
    a misspelt key would otherwise leave its setting at the default (a float64 run, stored as done)."""
    if not isinstance(point, dict):
        raise TypeError(f"{where}: point={point!r} must be a dict of point keys ({', '.join(POINT_KEYS)})")
    unknown = sorted(map(str, set(point) - set(POINT_KEYS) - set(extra)))
    if unknown:
        allowed = ", ".join((*POINT_KEYS, *extra))
        raise ValueError(f"{where}: unknown keys {', '.join(unknown)}; allowed: {allowed}")


def _check(point: dict[str, Any], where: str) -> dict[str, Any]:
    _refuse_unknown(point, f"sweep {where}")
    full = {**POINT_DEFAULTS, **point}
    full["model"] = str(parse_choice(Network, full["model"], f"sweep {where}", "model"))
    full["activation"] = activation_name(full["activation"], f"sweep {where}")
    full["data"] = data_name(full["data"], f"sweep {where}")
    full["sizes"] = _sizes(full["sizes"], f"sweep {where}",
                           full["data"] if full["model"] == Network.MLP else None)
    full["rounding"] = parse_choice(emu.Rounding, full["rounding"], f"sweep {where}", "rounding").name.lower()
    if full["policy"] is not None and full["format"] is not None:
        raise ValueError(f"sweep {where}: give policy= or format=, not both")
    if full["policy"] is not None:
        given = [k for k in ("rounding", "master", "state") if k in point]
        if given:
            raise ValueError(f"sweep {where}: {', '.join(given)} set beside policy={full['policy']!r}; a"
                             " preset sets its own roles (use format= for a uniform policy)")
    if isinstance(full["policy"], str):  # a preset's name as `PrecisionPolicy.preset` reads it
        full["policy"] = " ".join(full["policy"].split()).lower()
    if isinstance(full["mac"], str):  # a MAC preset's name as `emu.mac_preset` reads it
        full["mac"] = " ".join(full["mac"].split())
    if isinstance(full["format"], str) and full["format"].strip().lower() == "float64":
        full["format"] = "float64"  # the baseline, in any case (not the fp64 format the name aliases)
    if full["mac"] is not None and full["acc"] is not None:
        raise ValueError(f"sweep {where}: give mac= or acc=, not both")
    if full["acc"] is None and "acc_overflow" in point:
        raise ValueError(f"sweep {where}: acc_overflow={point['acc_overflow']!r} needs acc= (an accumulator"
                         " format)")
    names = {o.name.lower(): o for o in _ACC_OVERFLOWS}
    ovf = full["acc_overflow"]
    if isinstance(ovf, str) and ovf.strip().lower() in names:
        ovf = names[ovf.strip().lower()]
    if ovf not in _ACC_OVERFLOWS:  # only the modes an accumulator has, not every `emu.Overflow`
        raise ValueError(f"sweep {where}: acc_overflow={full['acc_overflow']!r} is not one of"
                         f" {', '.join(names)}")
    full["acc_overflow"] = ovf.name.lower()
    if "ste" in point:  # given: it overrides the policy's rule (None is no rule, refused)
        full["ste"] = str(parse_choice(STE, point["ste"], f"sweep {where}", "ste"))
    full["granularity"] = str(parse_choice(Granularity, full["granularity"], f"sweep {where}", "granularity"))
    for k in ("epochs", "batch_size", "seed"):  # a point trains for one epoch at least
        full[k] = check_int(full[k], f"sweep {where}", k, 0 if k == "seed" else 1)
    check_rates(full, f"sweep {where}")
    full["lr"], full["momentum"] = float(full["lr"]), float(full["momentum"])  # 1 and 1.0 are one rate
    try:  # unknown formats, presets and datapaths fail here, before any job runs
        pol = build_policy(full)
    except (ValueError, TypeError) as e:
        key = _culprit(full)
        named = f"{key}={full[key]!r}: " if key else ""
        raise (TypeError if isinstance(e, TypeError) else ValueError)(f"sweep {where}: {named}{e}") from e
    try:  # the datapath the cost model prices for the point (`forward_mac`), which wide floats lack
        if pol is not None:
            pol.forward_mac("", 1)
    except ValueError as e:
        raise ValueError(f"sweep {where}: the cost model cannot price this point's datapath ({e}); give"
                         " narrower formats, or a mac= it can price") from e
    # checked once the values are known to be valid: a bad value is named as such first
    if full["policy"] in (None, "float64") and full["format"] in (None, "float64"):
        given = [k for k in ("rounding", "granularity", "ste") if k in point]
        if given:  # no tensor role is rounded: these settings would change nothing
            named = ", ".join(f"{k}={point[k]!r}" for k in given)
            raise ValueError(f"sweep {where}: {named} set without a format that rounds (format= other than"
                             " float64, or a policy= preset): the point's roles stay float64, so the setting"
                             " would be ignored; leave it out")
    for k in ("format", "master", "state", "acc"):  # one name per format: spellings of a point are one point
        full[k] = canonical_format(full[k])
    if full["model"] == Network.LENET5:  # shaped by the data: a sizes it does not use stays out of its key
        full["sizes"] = list(POINT_DEFAULTS["sizes"])
    return canonical_config(full)


def canonical_config(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` in one spelling: `canonical_settings`, then `canonical_float64`. The key of a point, and
    what the report, the figures and the names of stored points group stored rows by, so the spellings of
    one configuration (``lr = 1`` and ``lr = 1.0``, the float64 baseline's three) are one.

    >>> canonical_config({"policy": "float64", "lr": 1}) == canonical_config({"format": "float64", "lr": 1.0})
    True
    """
    return canonical_float64(canonical_settings(params))


def canonical_settings(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` (a point, or a configuration without its seed; keys it lacks stay absent) with every
    setting equal to its default in the default's spelling, so that one configuration has one key: the
    rates as floats (``lr = 1`` is ``lr = 1.0``), ``rounding`` by its lower-case name, ``master`` equal to
    ``format`` as None (the master format defaults to ``format``), ``state`` naming the master format as
    "master", ``ste`` equal to the policy's own rule (a preset's, else clipped) as None, ``activation``
    and the kind of ``data`` in lower case. A point spelled so already maps to an equal dict (its key does
    not change). Values it cannot read stay as they are (`Sweep` refuses them first); the report applies it
    to stored rows, which may predate it.

    >>> p = canonical_settings({"format": "fx<4,8>", "master": "fx<4,8>", "state": "fx<4,8>", "lr": 1,
    ...                         "rounding": "STOCHASTIC", "ste": "clipped"})
    >>> p["master"], p["state"], p["lr"], p["rounding"], p["ste"]
    (None, 'master', 1.0, 'stochastic', None)
    """
    out = dict(params)
    for k in ("lr", "momentum"):
        v = out.get(k)
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            out[k] = float(v)
    if isinstance(out.get("rounding"), (str, emu.Rounding)):
        try:
            out["rounding"] = parse_choice(emu.Rounding, out["rounding"], "", "rounding").name.lower()
        except ValueError:
            pass
    for k, spelled in (("activation", activation_name), ("data", data_name)):
        if k in out:
            try:
                out[k] = spelled(out[k], "")
            except ValueError:
                pass
    fmt = out.get("format") if out.get("policy") is None else None
    if fmt is not None and fmt != "float64" and out.get("master") == fmt:
        out["master"] = None  # the master format defaults to the format
    master = out.get("master") or fmt
    if master is not None and master != "float64" and out.get("state") == master:
        out["state"] = "master"
    if out.get("ste") is not None and str(out["ste"]) == str(_own_ste(out)):
        out["ste"] = None  # the rule the policy has anyway
    return out


def _own_ste(params: dict[str, Any]) -> STE | None:
    """The gradient rule of the point's policy without its ``ste`` (None: no policy rounds a role)."""
    policy, fmt = params.get("policy"), params.get("format")
    if isinstance(policy, str) and policy != "float64":
        try:
            return PrecisionPolicy.preset(policy).ste
        except (ValueError, TypeError, KeyError):
            return None
    if policy is None and fmt not in (None, "float64"):
        return PrecisionPolicy.ste  # a uniform policy's rule, the class default
    return None


@functools.lru_cache(maxsize=1)
def _digits_shape() -> tuple[int, int]:
    from ..datasets import digits

    d = digits(seed=0)
    return int(np.prod(d.input_shape)), d.n_classes


def _sizes(value: Any, where: str, data: str | None) -> list[int]:
    """A point's ``sizes``: a list of at least two layer widths (ints >= 1); for an MLP on the digits
    data (``data``: the point's data when it trains an MLP, else None) from its 64 inputs to its 10
    classes (other data are read where the point runs, and checked there)."""
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise ValueError(f"{where}: sizes={value!r} must be a list of at least two layer widths (ints >= 1),"
                         f" e.g. {POINT_DEFAULTS['sizes']}")
    sizes = [check_int(v, where, "sizes", 1) for v in value]
    if data == "digits":
        n_in, n_out = _digits_shape()
        if sizes[0] != n_in or sizes[-1] != n_out:
            raise ValueError(f"{where}: sizes={sizes} must start at the data's {n_in} inputs and end at its"
                             f" {n_out} classes (data='digits'), e.g. [{n_in}, 32, {n_out}]")
    return sizes


def canonical_float64(point: dict[str, Any]) -> dict[str, Any]:
    """``point`` with its float64 roles in one spelling, so that its three spellings give one point key.

    A point whose roles all stay float64 (``policy`` None or "float64" and ``format`` None or "float64")
    gets ``policy`` None and ``format`` "float64", or ``format`` None beside a ``mac`` datapath: the
    spellings of the shipped sweeps, which so keep their keys. Any other point (a preset ``policy``, a
    ``format`` that rounds) is returned unchanged, as is a canonical one (a new dict otherwise). A
    configuration that lacks ``policy`` or ``format`` (a stored row's params, which may predate a key)
    gets both, so ``{"format": "float64"}``, ``{"policy": "float64"}`` and ``{}`` map to one dict.

    >>> [canonical_float64({"policy": p, "format": f, "mac": None})["format"]
    ...  for p, f in ((None, None), ("float64", None), (None, "float64"))]
    ['float64', 'float64', 'float64']
    >>> canonical_float64({"policy": "float64"}) == canonical_float64({}) == canonical_float64(
    ...     {"format": "float64"}) == {"policy": None, "format": "float64"}
    True
    >>> canonical_float64({"policy": "float64", "format": None, "mac": "mxfp8"})
    {'policy': None, 'format': None, 'mac': 'mxfp8'}
    """
    if point.get("policy") not in (None, "float64") or point.get("format") not in (None, "float64"):
        return point
    fmt = None if point.get("mac") is not None else "float64"
    if "policy" in point and point["policy"] is None and "format" in point and point["format"] == fmt:
        return point
    return {**point, "policy": None, "format": fmt}


def canonical_format(name: Any) -> Any:
    """A format's canonical name, the str of the parsed format, so that spellings of one format give one
    point key; "float64", "master" (a ``state``) and None stay as they are. A canonical name maps to
    itself, so the keys of points that spelled their formats so do not change.

    >>> canonical_format("FX<4, 8>"), canonical_format("fx<4,8>"), canonical_format("fp<4,3,fn>")
    ('fx<4,8>', 'fx<4,8>', 'e4m3')
    >>> canonical_format("float64"), canonical_format("dfx<8>"), canonical_format(None)
    ('float64', 'dfx<8>', None)
    """
    if not isinstance(name, str) or name in ("float64", "master"):
        return name
    fmt = RoleFormat.parse(name).fmt
    return name if fmt is None else str(fmt)


def check_rates(cfg: dict[str, Any], where: str, label: Callable[[str], str] = str) -> None:
    """A run's ``lr`` (a finite number above 0) and ``momentum`` (in [0, 1)), as sweep points and
    ``nets train`` check them; ``label`` names a key in the messages (a flag, a file's key).

    >>> check_rates({"lr": float("inf"), "momentum": 0.0}, "sweep point 0")
    Traceback (most recent call last):
    ...
    ValueError: sweep point 0: lr=inf must be a finite number above 0
    """
    for k in ("lr", "momentum"):
        if isinstance(cfg[k], bool) or not isinstance(cfg[k], (int, float)):
            raise TypeError(f"{where}: {label(k)}={cfg[k]!r} must be a number")
    if not 0 < cfg["lr"] < float("inf"):
        raise ValueError(f"{where}: {label('lr')}={cfg['lr']!r} must be a finite number above 0")
    if not 0 <= cfg["momentum"] < 1:
        raise ValueError(f"{where}: {label('momentum')}={cfg['momentum']!r} outside the allowed range [0, 1)")


def _culprit(point: dict[str, Any]) -> str | None:
    """The first name-valued key (policy, format, master, state, mac, acc) refused on its own, if any."""
    for key in ("policy", "format", "master", "state", "mac", "acc"):
        if point[key] is None:
            continue
        alone = {key: point[key]}
        if key in ("master", "state", "acc"):
            if point["format"] is None:
                continue
            alone.update(format=point["format"], acc_overflow=point["acc_overflow"])
        try:
            build_policy(alone)
        except (ValueError, TypeError):
            return key
    return None


def _time_limit(value: Any, where: str) -> float | None:
    """A sweep's ``time_limit``: None (no limit) or a finite number of seconds above 0, as a float."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{where}: time_limit={value!r} must be a number of seconds (a finite number above 0)"
                        " or None (no limit)")
    if not 0 < value < float("inf"):
        raise ValueError(f"{where}: time_limit={value!r} must be a finite number of seconds above 0, or None"
                         " (no limit)")
    return float(value)


def _check_sizes(base: dict[str, Any], combos: list[dict[str, Any]], configs: list[dict[str, Any]]) -> None:
    """Refuse ``sizes`` where no point honours it (module docstring): in a grid or point entry that makes
    a LeNet-5 point, or in ``base`` when every point is a LeNet-5."""
    for i, (combo, c) in enumerate(zip(combos, configs, strict=True)):
        if "sizes" in combo and c["model"] == Network.LENET5:
            raise ValueError(f"sweep point {i}: sizes={combo['sizes']!r} set for model='lenet5', which takes"
                             " its shape from the data; sizes is for model='mlp' only: leave it out")
    if "sizes" in base and configs and all(c["model"] == Network.LENET5 for c in configs):
        raise ValueError(f"sweep [base]: sizes={base['sizes']!r} set but every point has model='lenet5',"
                         " which takes its shape from the data; sizes is for model='mlp' only: leave it out")


def _seeds(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{where}: seeds={value!r} must be a non-empty list of seeds (ints >= 0)")
    seeds = tuple(check_int(v, where, "seeds", 0) for v in value)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{where}: seeds={list(seeds)} repeats a seed")
    return seeds


@dataclass(frozen=True)
class Sweep:
    """A named list of points (complete dicts of `POINT_KEYS`; a search's points add `LAYERS_KEY`):
    configurations x seeds; ``name``: a non-empty string; ``time_limit``: the seconds each point's job may
    run (None: no limit; module docstring); checked at construction, as are the points' keys (an unknown
    or a missing key is refused; their values are checked by `Sweep.from_dict`, which makes the points).

    >>> s = Sweep.from_dict({"base": {"epochs": 1}, "grid": {"format": ["fp16", "bf16"]}, "seeds": [0, 1]})
    >>> len(s.points), s.points[1]["format"], s.points[1]["seed"], s.points[0]["epochs"]
    (4, 'fp16', 1, 1)
    >>> len(Sweep.from_dict({"points": [{"format": "bf16"}]}).points)  # DEFAULT_SEEDS
    5
    >>> Sweep.from_dict({"points": [{"format": "bf16"}], "time_limit": 60}).time_limit
    60.0
    """

    name: str
    points: list[dict[str, Any]] = field(default_factory=list)
    time_limit: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"sweep: name={self.name!r} must be a non-empty string")
        object.__setattr__(self, "time_limit", _time_limit(self.time_limit, "sweep"))
        if not isinstance(self.points, list):
            raise TypeError(f"sweep: points must be a list of dicts of point keys, not"
                            f" {type(self.points).__name__} (Sweep.from_dict makes them)")
        for i, p in enumerate(self.points):  # a misspelt key would run the point at the key's default
            _refuse_unknown(p, f"sweep point {i}", (LAYERS_KEY,))
            missing = [k for k in POINT_KEYS if k not in p]
            if missing:
                raise ValueError(f"sweep point {i}: missing keys {', '.join(missing)}; a Sweep's points are"
                                 " complete (Sweep.from_dict completes and checks them)")

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Sweep:
        """Expand ``base`` x ``grid`` (cartesian product, in the grid's key order) or ``base`` +
        ``points``, each configuration at every seed of ``seeds`` (default `DEFAULT_SEEDS`) unless the
        sweep sets ``seed`` itself; ``time_limit`` as the class's.

        Raises:
            TypeError: ``spec`` is not a dict (a TOML file's tables); as a point's checks raise it.
            ValueError: an unknown section, a section or point that is not valid.
        """
        if not isinstance(spec, dict):
            raise TypeError(f"Sweep.from_dict: spec={spec!r} must be a dict of the sweep's sections (name,"
                            " seeds, base, grid, points, time_limit)")
        unknown = set(spec) - {"name", "base", "grid", "points", "seeds", "time_limit"}
        if unknown:
            raise ValueError(f"sweep: unknown sections {', '.join(sorted(map(str, unknown)))};"
                             " allowed: name, seeds, base, grid, points, time_limit")
        time_limit = _time_limit(spec.get("time_limit"), "sweep")
        base = spec.get("base", {})
        grid = spec.get("grid", {})
        listed = spec.get("points")
        for section, value in (("base", base), ("grid", grid)):
            if not isinstance(value, dict):
                raise ValueError(f"sweep: {section}={value!r} must be a table of point keys ([{section}])")
            unknown = set(value) - set(POINT_DEFAULTS)
            if unknown:
                raise ValueError(f"sweep [{section}]: unknown keys {', '.join(sorted(unknown))};"
                                 f" allowed: {', '.join(POINT_KEYS)}")
        if listed is not None and not (isinstance(listed, list) and all(isinstance(p, dict) for p in listed)):
            raise ValueError(f"sweep: points={listed!r} must be a list of tables of point keys")
        if listed == []:
            raise ValueError("sweep: points=[] lists no point; give at least one table of point keys (or"
                             " leave points out: base alone is one configuration)")
        base = dict(base)
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
        merged = [{**base, **c} for c in combos]
        own_seed = any("seed" in m for m in merged)
        if "seeds" in spec and own_seed:
            raise ValueError("sweep: give seeds= or a seed key (in base, grid or points), not both")
        seeds = _seeds(spec["seeds"], "sweep") if "seeds" in spec else DEFAULT_SEEDS
        configs = [_check(m, f"point {i}") for i, m in enumerate(merged)]
        _check_sizes(base, combos, configs)
        points = [c for m, c in zip(merged, configs, strict=True)
                  for c in ([c] if "seed" in m else [{**c, "seed": s} for s in seeds])]
        return cls(spec.get("name", "sweep"), _unique(points), time_limit)

    @classmethod
    def from_toml(cls, path: str | Path) -> Sweep:
        """Read a sweep file (see the module docstring); its name defaults to the file's stem.

        Every error in the file is one line that starts with ``sweep file <path>:``: a TOML
        syntax error with the parser's line and column, an unknown section or key with the
        allowed ones, a value of the wrong type or range, an unknown format naming its key.

        Raises:
            ValueError: the file is not valid TOML or not a valid sweep (a wrong type too).
            OSError: the file cannot be read (FileNotFoundError when it does not exist).
        """
        try:
            with open(path, "rb") as f:
                spec = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"sweep file {path}: {e}") from e
        spec.setdefault("name", Path(path).stem)
        try:
            return cls.from_dict(spec)
        except (ValueError, TypeError) as e:
            raise ValueError(f"sweep file {path}: {str(e).removeprefix('sweep').lstrip(': ')}") from e

    def keys(self) -> list[str]:
        """The points' keys, in order."""
        return [point_key(p) for p in self.points]

    def seeds(self) -> list[int]:
        """Every seed some point runs at, ascending."""
        return sorted({p["seed"] for p in self.points})

    def override(self, *, seeds: Any = None, epochs: Any = None) -> Sweep:
        """The same configurations at other ``seeds`` (every configuration at each) and/or with
        ``epochs`` training epochs; None keeps the sweep's own. The name and ``time_limit`` stay.

        >>> s = Sweep.from_dict({"points": [{"format": "bf16"}], "seeds": [0, 1, 2]})
        >>> [(p["seed"], p["epochs"]) for p in s.override(seeds=[7], epochs=2).points]
        [(7, 2)]
        """
        points = [dict(p) for p in self.points]
        if epochs is not None:
            e = check_int(epochs, "sweep", "epochs", 1)
            points = [{**p, "epochs": e} for p in points]
            seen: dict[str, int] = {}
            for i, p in enumerate(points):
                j = seen.setdefault(point_key(p), i)
                if j != i:  # the sweep varies epochs: the override would make two of its points one
                    raise ValueError(f"Sweep.override: epochs={e} makes points {j} and {i} of the sweep one"
                                     f" point: they differ only in epochs ({self.points[j]['epochs']} and"
                                     f" {self.points[i]['epochs']}); leave epochs out to keep the sweep's"
                                     " own, or run one sweep per epoch count")
        if seeds is not None:
            ss = _seeds(list(seeds) if isinstance(seeds, tuple) else seeds, "sweep")
            configs = {config_key(p): p for p in points}
            points = [{**p, "seed": s} for p in configs.values() for s in ss]
        return replace(self, points=_unique(points))


def _unique(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, int] = {}
    for i, p in enumerate(points):
        k = point_key(p)
        if k in seen:
            raise ValueError(f"sweep: points {seen[k]} and {i} are the same point (configuration and seed)")
        seen[k] = i
    return points


def build_policy(point: dict[str, Any]) -> PrecisionPolicy | None:
    """The point's `PrecisionPolicy` (None: float64); keys it lacks take their `POINT_DEFAULTS`.

    >>> str(build_policy({"format": "fx<4,8>", "state": "master"}).default.momentum)
    'fx<4,8>'
    >>> str(build_policy({"policy": "gupta fx<4,12> stochastic", "ste": "identity"}).ste)
    'identity'

    Raises:
        ValueError: a key outside `POINT_KEYS` (a search point's ``layers``: `layer_policy` reads them),
            or settings that make no policy.
        TypeError: ``point`` is not a dict.
    """
    _refuse_unknown(point, "build_policy")
    p = {**POINT_DEFAULTS, **point}
    if p["policy"] is not None:
        pol = None if p["policy"] == "float64" else PrecisionPolicy.preset(p["policy"])
    elif p["format"] is not None and p["format"] != "float64":
        pol = PrecisionPolicy.uniform(p["format"], p["rounding"], master=p["master"], state=p["state"])
    else:
        if p["master"] is not None or p["state"] is not None:
            raise ValueError("sweep: master= and state= need format= (a uniform policy)")
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
    if p["ste"] is not None:  # only a rule the point gives replaces the policy's own
        pol = replace(pol or PrecisionPolicy(), ste=p["ste"])
    return pol


def build_model(point: dict[str, Any], input_shape: tuple[int, ...], n_classes: int) -> Model:
    """The point's network, seeded by its ``seed``; keys it lacks take their `POINT_DEFAULTS` (a search
    point's ``layers`` leave the network as it is).

    Raises:
        ValueError: a key outside `POINT_KEYS`, a ``model`` not in `Network`, an ``input_shape`` or
            ``n_classes`` below 1, ``sizes`` that do not fit the data.
        TypeError: ``point`` is not a dict, ``input_shape`` not a tuple of ints, ``n_classes`` not an int.
    """
    _refuse_unknown(point, "build_model", (LAYERS_KEY,))
    p = {**POINT_DEFAULTS, **point}
    model = parse_choice(Network, p["model"], "build_model", "model")
    if not isinstance(input_shape, (tuple, list)) or not input_shape:
        raise TypeError(f"build_model: input_shape={input_shape!r} must be a non-empty tuple of ints (the"
                        " data's input shape)")
    input_shape = tuple(check_int(n, "build_model", "input_shape", 1) for n in input_shape)
    n_classes = check_int(n_classes, "build_model", "n_classes", 1)
    if model == Network.MLP:
        sizes = list(p["sizes"])
        if sizes[0] != input_shape[0] or sizes[-1] != n_classes:
            raise ValueError(f"sweep: sizes={sizes} must start at the data's {input_shape[0]} inputs"
                             f" and end at its {n_classes} classes")
        return mlp(sizes, p["activation"], seed=p["seed"])
    return lenet5(input_shape, n_classes, activation=p["activation"], seed=p["seed"])
